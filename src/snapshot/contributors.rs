//! Per-user contribution summaries (`contributors.json`): Gitcord's
//! `list_contribution_summaries` applied to a stream of distinct contribution rows.
//!
//! Scoring follows the conformance rules: a merged PR is worth the highest difficulty weight
//! whose key matches one of its labels (case-insensitively, non-string labels by their Python
//! text form), else `scoring.weights.pr_merged`.

use std::collections::HashMap;

use serde_json::Value;

use crate::input::state::Contribution;
use crate::snapshot::python::python_float_repr;

/// One user's counts over the period, in the order they are written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// GitHub login.
    pub github_user: String,
    /// `issue_opened` rows.
    pub issues_opened: i64,
    /// `pr_opened` and `pr_merged` rows (Gitcord counts a merge as an opened PR too).
    pub prs_opened: i64,
    /// `pr_reviewed` rows.
    pub prs_reviewed: i64,
    /// `comment` rows.
    pub comments: i64,
    /// Points from merged PRs.
    pub total_score: i64,
}

/// Accumulates summaries one contribution at a time, so the table is never held in memory.
pub struct Tally {
    /// Lower-cased difficulty label → weight; a later config key wins, as in Python.
    difficulty: HashMap<String, i64>,
    pr_merged_weight: i64,
    users: HashMap<String, Summary>,
}

impl Tally {
    /// A tally with the run's scoring rules.
    pub fn new(difficulty_weights: &[(String, i64)], pr_merged_weight: i64) -> Tally {
        let difficulty = difficulty_weights
            .iter()
            .map(|(k, v)| (k.to_lowercase(), *v))
            .collect();
        Tally {
            difficulty,
            pr_merged_weight,
            users: HashMap::new(),
        }
    }

    /// Counts one distinct contribution. Fails, as Gitcord does, on a merged PR whose payload
    /// cannot be read for difficulty labels.
    pub fn add(&mut self, c: Contribution<'_>) -> Result<(), String> {
        let points = if c.event_type == "pr_merged" {
            self.merged_pr_points(c.payload_json)?
        } else {
            0
        };
        let summary = match self.users.get_mut(c.github_user) {
            Some(s) => s,
            None => self
                .users
                .entry(c.github_user.to_owned())
                .or_insert_with(|| Summary {
                    github_user: c.github_user.to_owned(),
                    ..Summary::default()
                }),
        };
        match c.event_type {
            "issue_opened" => summary.issues_opened += 1,
            "pr_opened" => summary.prs_opened += 1,
            "pr_merged" => summary.prs_opened += 1,
            "pr_reviewed" => summary.prs_reviewed += 1,
            "comment" => summary.comments += 1,
            _ => {}
        }
        summary.total_score = summary.total_score.checked_add(points).ok_or_else(|| {
            format!(
                "total_score of {} overflows a 64-bit integer",
                c.github_user
            )
        })?;
        Ok(())
    }

    /// The summaries, ordered by login in code-point order.
    pub fn finish(self) -> Vec<Summary> {
        let mut rows: Vec<Summary> = self.users.into_values().collect();
        rows.sort_unstable_by(|a, b| a.github_user.as_bytes().cmp(b.github_user.as_bytes()));
        rows
    }

    fn merged_pr_points(&self, payload_json: &str) -> Result<i64, String> {
        if self.difficulty.is_empty() {
            return Ok(self.pr_merged_weight);
        }
        let payload: Value = serde_json::from_str(payload_json)
            .map_err(|e| format!("payload_json is not valid JSON ({e})"))?;
        let Value::Object(payload) = payload else {
            return Err("payload_json is not a JSON object".into());
        };
        let labels = labels_as_python_iterates_them(payload.get("difficulty_labels"))?;
        let best = labels
            .iter()
            .filter_map(|label| self.difficulty.get(label))
            .max();
        Ok(best.copied().unwrap_or(self.pr_merged_weight))
    }
}

/// The lower-cased label texts Gitcord's `for label in difficulty_labels` sees: a list gives
/// its items, a string its characters, an object its keys; a falsy value gives none.
fn labels_as_python_iterates_them(labels: Option<&Value>) -> Result<Vec<String>, String> {
    let Some(labels) = labels else {
        return Ok(Vec::new());
    };
    if !python_truthy(labels) {
        return Ok(Vec::new());
    }
    Ok(match labels {
        Value::Array(items) => items.iter().map(|v| python_str(v).to_lowercase()).collect(),
        Value::String(s) => s.chars().map(|c| c.to_lowercase().collect()).collect(),
        Value::Object(map) => map.keys().map(|k| k.to_lowercase()).collect(),
        other => return Err(format!("difficulty_labels is {other}, which is not a list")),
    })
}

fn python_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|x| x != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// Python's `str()` of a value that `json.loads` produced.
fn python_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => python_repr(other),
    }
}

fn python_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => python_float_repr(f),
            _ => n.to_string(),
        },
        Value::String(s) => format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'")),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(python_repr).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!(
                    "{}: {}",
                    python_repr(&Value::String(k.clone())),
                    python_repr(v)
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tally_of(
        rows: &[(&str, &str, &str)],
        weights: &[(&str, i64)],
        pr_merged: i64,
    ) -> Vec<Summary> {
        let weights: Vec<(String, i64)> =
            weights.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let mut t = Tally::new(&weights, pr_merged);
        for (user, event, payload) in rows {
            t.add(Contribution {
                github_user: user,
                event_type: event,
                payload_json: payload,
            })
            .unwrap();
        }
        t.finish()
    }

    #[test]
    fn counts_events_and_orders_users_by_code_point() {
        let rows = tally_of(
            &[
                ("émile", "pr_opened", "{}"),
                ("Zed", "comment", "{}"),
                ("alice", "pr_merged", "{}"),
                ("alice", "pr_opened", "{}"),
                ("alice", "issue_opened", "{}"),
                ("alice", "pr_reviewed", "{}"),
                ("bob", "issue_assigned", "{}"),
            ],
            &[],
            5,
        );
        let users: Vec<&str> = rows.iter().map(|s| s.github_user.as_str()).collect();
        assert_eq!(users, ["Zed", "alice", "bob", "émile"]);
        assert_eq!(
            rows[1],
            Summary {
                github_user: "alice".into(),
                issues_opened: 1,
                prs_opened: 2,
                prs_reviewed: 1,
                comments: 0,
                total_score: 5
            }
        );
        assert_eq!(
            rows[2],
            Summary {
                github_user: "bob".into(),
                ..Summary::default()
            }
        );
    }

    #[test]
    fn difficulty_takes_the_highest_matching_weight_case_insensitively() {
        let w = [
            ("Easy", 2),
            ("medium", 5),
            ("HARD", 10),
            ("1", 7),
            ("true", 1),
        ];
        let score = |payload: &str| tally_of(&[("a", "pr_merged", payload)], &w, 3)[0].total_score;
        assert_eq!(score(r#"{"difficulty_labels":["easy"]}"#), 2);
        assert_eq!(score(r#"{"difficulty_labels":["Hard","EASY"]}"#), 10);
        assert_eq!(score(r#"{"difficulty_labels":["unknown"]}"#), 3);
        assert_eq!(score(r#"{"difficulty_labels":[]}"#), 3);
        assert_eq!(score(r#"{"pr_number":6}"#), 3);
        assert_eq!(score(r#"{"difficulty_labels":[1]}"#), 7);
        assert_eq!(score(r#"{"difficulty_labels":[true]}"#), 1);
        assert_eq!(score(r#"{"difficulty_labels":null}"#), 3);
    }

    #[test]
    fn payloads_are_only_read_when_difficulty_weights_exist() {
        assert_eq!(
            tally_of(&[("a", "pr_merged", "not json")], &[], 4)[0].total_score,
            4
        );
        let mut t = Tally::new(&[("easy".into(), 1)], 0);
        let err = t
            .add(Contribution {
                github_user: "a",
                event_type: "pr_merged",
                payload_json: "not json",
            })
            .unwrap_err();
        assert!(err.contains("not valid JSON"), "{err}");
        let err = t
            .add(Contribution {
                github_user: "a",
                event_type: "pr_merged",
                payload_json: r#"{"difficulty_labels":7}"#,
            })
            .unwrap_err();
        assert!(err.contains("not a list"), "{err}");
    }

    #[test]
    fn string_labels_iterate_by_character_as_in_python() {
        let score =
            |payload: &str| tally_of(&[("a", "pr_merged", payload)], &[("e", 9)], 1)[0].total_score;
        assert_eq!(score(r#"{"difficulty_labels":"Easy"}"#), 9);
        assert_eq!(score(r#"{"difficulty_labels":{"E":1}}"#), 9);
    }
}
