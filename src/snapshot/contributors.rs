//! Per-user contribution summaries (`contributors.json`): Gitcord's
//! `list_contribution_summaries` applied to a stream of distinct contribution rows.
//!
//! Scoring follows the conformance rules: a merged PR is worth the highest difficulty weight
//! whose key matches one of its labels (case-insensitively, non-string labels by their Python
//! text form), else `scoring.weights.pr_merged`.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
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

/// The event types Gitcord counts, told apart once per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EventKind {
    IssueOpened,
    PrOpened,
    PrMerged,
    PrReviewed,
    Comment,
    Other,
}

impl EventKind {
    fn of(event_type: &str) -> EventKind {
        match event_type {
            "issue_opened" => EventKind::IssueOpened,
            "pr_opened" => EventKind::PrOpened,
            "pr_merged" => EventKind::PrMerged,
            "pr_reviewed" => EventKind::PrReviewed,
            "comment" => EventKind::Comment,
            _ => EventKind::Other,
        }
    }
}

/// Accumulates summaries one contribution at a time, so the table is never held in memory.
pub struct Tally {
    /// Lower-cased difficulty label → weight; a later config key wins, as in Python.
    difficulty: HashMap<String, i64>,
    pr_merged_weight: i64,
    /// Looked up once per contribution row, so hashed with foldhash rather than SipHash.
    users: HashMap<String, Summary, foldhash::fast::RandomState>,
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
            users: HashMap::default(),
        }
    }

    /// Counts one distinct contribution. Fails, as Gitcord does, on a merged PR whose payload
    /// cannot be read for difficulty labels.
    pub fn add(&mut self, c: Contribution<'_>) -> Result<(), String> {
        let kind = EventKind::of(c.event_type);
        let points = if kind == EventKind::PrMerged {
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
        match kind {
            EventKind::IssueOpened => summary.issues_opened += 1,
            EventKind::PrOpened => summary.prs_opened += 1,
            EventKind::PrMerged => summary.prs_opened += 1,
            EventKind::PrReviewed => summary.prs_reviewed += 1,
            EventKind::Comment => summary.comments += 1,
            EventKind::Other => {}
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
        let labels = match difficulty_labels(payload_json) {
            Ok(Payload::Object(labels)) => labels,
            Ok(Payload::NotAnObject) => return Err("payload_json is not a JSON object".into()),
            Err(e) => return Err(format!("payload_json is not valid JSON ({e})")),
        };
        let labels = labels_as_python_iterates_them(labels.as_ref())?;
        let best = labels
            .iter()
            .filter_map(|label| self.difficulty.get(label))
            .max();
        Ok(best.copied().unwrap_or(self.pr_merged_weight))
    }
}

/// What a merged PR's payload holds for scoring.
enum Payload {
    /// A JSON object, with its `difficulty_labels` value if it has one (the last one, when
    /// the key repeats, as `json.loads` keeps it).
    Object(Option<Value>),
    /// Valid JSON, but not an object.
    NotAnObject,
}

/// Reads `payload_json` the way `json.loads(...).get("difficulty_labels")` sees it, building
/// only that one value.
///
/// Building the whole payload as a [`Value`] (a map, a `String` per key and per string) for
/// every merged PR was the largest allocation cost of an export; the other members are now
/// checked and skipped in place (`IgnoredAny`), so the whole text must still be one valid
/// JSON value or the row fails as before.
fn difficulty_labels(payload_json: &str) -> Result<Payload, serde_json::Error> {
    struct PayloadVisitor;

    impl<'de> Visitor<'de> for PayloadVisitor {
        type Value = Payload;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Payload, A::Error> {
            let mut labels = None;
            while let Some(key) = map.next_key::<KeyIsLabels>()? {
                if key.0 {
                    labels = Some(map.next_value::<Value>()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Payload::Object(labels))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Payload, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(Payload::NotAnObject)
        }

        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Payload, E> {
            Ok(Payload::NotAnObject)
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Payload, E> {
            Ok(Payload::NotAnObject)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Payload, E> {
            Ok(Payload::NotAnObject)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Payload, E> {
            Ok(Payload::NotAnObject)
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Payload, E> {
            Ok(Payload::NotAnObject)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Payload, E> {
            Ok(Payload::NotAnObject)
        }
    }

    impl<'de> DeserializeSeed<'de> for PayloadVisitor {
        type Value = Payload;
        fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Payload, D::Error> {
            d.deserialize_any(self)
        }
    }

    /// A member name, decoded (escapes included) and compared without being kept.
    struct KeyIsLabels(bool);

    impl<'de> de::Deserialize<'de> for KeyIsLabels {
        fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<KeyIsLabels, D::Error> {
            struct KeyVisitor;
            impl Visitor<'_> for KeyVisitor {
                type Value = KeyIsLabels;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a member name")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyIsLabels, E> {
                    Ok(KeyIsLabels(v == "difficulty_labels"))
                }
            }
            d.deserialize_str(KeyVisitor)
        }
    }

    let mut de = serde_json::Deserializer::from_str(payload_json);
    let payload = PayloadVisitor.deserialize(&mut de)?;
    de.end()?;
    Ok(payload)
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
    fn logins_of_any_length_are_counted() {
        let long = "a-login-longer-than-twenty-three-bytes";
        let rows = tally_of(
            &[
                ("abcdefghijklmnopqrstuvw", "comment", "{}"), // 23 bytes: inline
                (long, "comment", "{}"),
                ("abcdefghijklmnopqrstuvw", "comment", "{}"),
                (long, "issue_opened", "{}"),
                ("", "comment", "{}"),
                ("a", "comment", "{}"),
            ],
            &[],
            0,
        );
        let got: Vec<(&str, i64, i64)> = rows
            .iter()
            .map(|s| (s.github_user.as_str(), s.comments, s.issues_opened))
            .collect();
        assert_eq!(
            got,
            [
                ("", 1, 0),
                ("a", 1, 0),
                (long, 1, 1),
                ("abcdefghijklmnopqrstuvw", 2, 0)
            ]
        );
    }

    #[test]
    fn payloads_are_read_like_json_loads_then_get() {
        let w = [("easy", 2), ("hard", 10)];
        let score = |payload: &str| {
            let weights: Vec<(String, i64)> = w.iter().map(|(k, v)| (k.to_string(), *v)).collect();
            let mut t = Tally::new(&weights, 3);
            t.add(Contribution {
                github_user: "a",
                event_type: "pr_merged",
                payload_json: payload,
            })
            .map(|()| t.finish()[0].total_score)
        };
        // The last of repeated keys wins, as in json.loads; escapes in names are decoded.
        assert_eq!(
            score(r#"{"difficulty_labels":["hard"],"difficulty_labels":["easy"]}"#),
            Ok(2)
        );
        assert_eq!(score(r#"{"difficulty\u005flabels":["hard"]}"#), Ok(10));
        // Other members are skipped but must be valid JSON, and so must the rest of the text.
        assert_eq!(
            score(r#"{"x":{"y":[1,2.5,"\"",null,true]},"difficulty_labels":["Easy"]}"#),
            Ok(2)
        );
        for bad in [
            r#"{"x":[1,}"#,
            r#"{"x":tru}"#,
            r#"{"difficulty_labels":[]} x"#,
            "",
        ] {
            let err = score(bad).unwrap_err();
            assert!(err.contains("not valid JSON"), "{bad}: {err}");
        }
        for not_object in ["[1]", "7", "\"s\"", "null", "true"] {
            let err = score(not_object).unwrap_err();
            assert!(err.contains("not a JSON object"), "{not_object}: {err}");
        }
    }

    #[test]
    fn string_labels_iterate_by_character_as_in_python() {
        let score =
            |payload: &str| tally_of(&[("a", "pr_merged", payload)], &[("e", 9)], 1)[0].total_score;
        assert_eq!(score(r#"{"difficulty_labels":"Easy"}"#), 9);
        assert_eq!(score(r#"{"difficulty_labels":{"E":1}}"#), 9);
    }
}
