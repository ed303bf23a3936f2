//! Per-user contribution summaries (`contributors.json`): Gitcord's
//! `list_contribution_summaries` applied to a stream of distinct contribution rows.
//!
//! Scoring follows the conformance rules: a merged PR is worth the highest difficulty weight
//! whose key matches one of its labels (case-insensitively, non-string labels by their Python
//! text form), else `scoring.weights.pr_merged`.

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::input::state::{Accumulator, Contribution};
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
///
/// The reader runs one tally per reading thread, adds duplicates and takes them back once
/// found, then merges the tallies ([`Accumulator`]); so every sum here is exact in any order,
/// and a score is only checked against the 64-bit range once, when the tally is finished.
#[derive(Clone)]
pub struct Tally {
    /// Lower-cased difficulty label → weight; a later config key wins, as in Python.
    difficulty: HashMap<String, i64>,
    pr_merged_weight: i64,
    /// Looked up once per contribution row.
    users: Users,
}

/// Login → counts, laid out for the one lookup made per contribution row.
///
/// A `HashMap<String, Counts>` of 20,000 users spends most of each lookup on two cache misses
/// (the entry, then the login it points to; perf: 10% of an export). Here the table holds only
/// an index and the logins sit back to back in one arena, so both stay in L2 cache; only
/// the counts themselves are a miss.
#[derive(Clone, Default)]
struct Users {
    table: hashbrown::HashTable<usize>,
    hasher: foldhash::fast::RandomState,
    /// Every login, back to back.
    arena: String,
    /// Where each user's login lies in `arena`.
    spans: Vec<(usize, usize)>,
    counts: Vec<Counts>,
}

impl Users {
    /// The counts of `login`, created empty if new.
    fn get(&mut self, login: &str) -> &mut Counts {
        let hash = self.hasher.hash_one(login);
        let Users {
            table,
            hasher,
            arena,
            spans,
            counts,
        } = self;
        let login_of = |i: &usize| {
            let (start, len) = spans[*i];
            &arena[start..start + len]
        };
        let found = table.find(hash, |i| login_of(i) == login).copied();
        let i = match found {
            Some(i) => i,
            None => {
                let i = counts.len();
                spans.push((arena.len(), login.len()));
                arena.push_str(login);
                counts.push(Counts::default());
                table.insert_unique(hash, i, |j| {
                    let (start, len) = spans[*j];
                    hasher.hash_one(&arena[start..start + len])
                });
                i
            }
        };
        &mut counts[i]
    }

    /// Every user with their counts, in no particular order.
    fn entries(&self) -> impl Iterator<Item = (&str, &Counts)> {
        self.spans
            .iter()
            .zip(&self.counts)
            .map(|(&(start, len), c)| (&self.arena[start..start + len], c))
    }
}

/// One user's running counts. Wider than [`Summary`]'s, so that no order of adds, removes
/// and merges can overflow before the final check.
#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    issues_opened: i64,
    prs_opened: i64,
    prs_reviewed: i64,
    comments: i64,
    total_score: i128,
    /// Rows counted (net of removals): a user whose rows were all taken back is dropped.
    rows: i64,
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
            users: Users::default(),
        }
    }

    /// Adds `sign` (1 or -1) times the row's counts.
    fn count(&mut self, c: Contribution<'_>, sign: i64) -> Result<(), String> {
        let kind = EventKind::of(c.event_type);
        let points = if kind == EventKind::PrMerged {
            self.merged_pr_points(c.payload_json)?
        } else {
            0
        };
        let counts = self.users.get(c.github_user);
        match kind {
            EventKind::IssueOpened => counts.issues_opened += sign,
            EventKind::PrOpened => counts.prs_opened += sign,
            EventKind::PrMerged => counts.prs_opened += sign,
            EventKind::PrReviewed => counts.prs_reviewed += sign,
            EventKind::Comment => counts.comments += sign,
            EventKind::Other => {}
        }
        counts.total_score += i128::from(points) * i128::from(sign);
        counts.rows += sign;
        Ok(())
    }

    /// The summaries, ordered by login in code-point order. Fails if a user's score does not
    /// fit the 64-bit integer the format promises.
    pub fn finish(self) -> Result<Vec<Summary>, String> {
        // Sorted first, so that of several users beyond 64 bits the first in order is named,
        // whichever thread counted whom.
        let mut users: Vec<(&str, &Counts)> =
            self.users.entries().filter(|(_, c)| c.rows != 0).collect();
        users.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        users
            .into_iter()
            .map(|(github_user, c)| {
                let total_score = i64::try_from(c.total_score).map_err(|_| {
                    format!("total_score of {github_user} overflows a 64-bit integer")
                })?;
                Ok(Summary {
                    github_user: github_user.to_owned(),
                    issues_opened: c.issues_opened,
                    prs_opened: c.prs_opened,
                    prs_reviewed: c.prs_reviewed,
                    comments: c.comments,
                    total_score,
                })
            })
            .collect()
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

impl Accumulator for Tally {
    /// Counts one contribution. Fails, as Gitcord does, on a merged PR whose payload cannot be
    /// read for difficulty labels.
    fn add(&mut self, c: Contribution<'_>) -> Result<(), String> {
        self.count(c, 1)
    }

    fn remove(&mut self, c: Contribution<'_>) -> Result<(), String> {
        self.count(c, -1)
    }

    fn merge(&mut self, other: Tally) {
        for (user, c) in other.users.entries() {
            let mine = self.users.get(user);
            mine.issues_opened += c.issues_opened;
            mine.prs_opened += c.prs_opened;
            mine.prs_reviewed += c.prs_reviewed;
            mine.comments += c.comments;
            mine.total_score += c.total_score;
            mine.rows += c.rows;
        }
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
        t.finish().unwrap()
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
            .map(|()| t.finish().unwrap()[0].total_score)
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

    fn row<'a>(user: &'a str, event: &'a str, payload: &'a str) -> Contribution<'a> {
        Contribution {
            github_user: user,
            event_type: event,
            payload_json: payload,
        }
    }

    #[test]
    fn removes_and_merges_in_any_order_give_the_sequential_tally() {
        let weights = [("easy".to_string(), 5)];
        let rows = [
            row("a", "pr_merged", r#"{"difficulty_labels":["easy"]}"#),
            row("b", "comment", "{}"),
            row("a", "pr_merged", "{}"),
            row("c", "issue_opened", "{}"),
        ];
        let mut want = Tally::new(&weights, 2);
        for r in rows {
            want.add(r).unwrap();
        }
        let want = want.finish().unwrap();
        // Two threads: each sees some rows, one sees a duplicate of "a"'s first merge and
        // of all of "c"'s rows, and takes them back.
        let mut one = Tally::new(&weights, 2);
        let mut two = Tally::new(&weights, 2);
        one.add(rows[0]).unwrap();
        one.add(rows[3]).unwrap();
        two.add(rows[1]).unwrap();
        two.add(rows[2]).unwrap();
        two.add(rows[0]).unwrap();
        two.add(rows[3]).unwrap();
        two.remove(rows[0]).unwrap();
        two.remove(rows[3]).unwrap();
        two.merge(one);
        assert_eq!(two.finish().unwrap(), want);
        // A user whose every row was a duplicate taken back leaves no summary.
        let mut t = Tally::new(&weights, 2);
        t.add(rows[1]).unwrap();
        t.remove(rows[1]).unwrap();
        assert_eq!(t.finish().unwrap(), []);
    }

    #[test]
    fn a_score_beyond_64_bits_fails_when_finished_not_on_the_way() {
        let mut t = Tally::new(&[("big".to_string(), i64::MAX)], i64::MIN);
        let big = r#"{"difficulty_labels":["big"]}"#;
        // MAX + MAX + MIN fits, though the first two alone do not.
        t.add(row("a", "pr_merged", big)).unwrap();
        t.add(row("a", "pr_merged", big)).unwrap();
        t.add(row("a", "pr_merged", "{}")).unwrap();
        assert_eq!(t.clone().finish().unwrap()[0].total_score, i64::MAX - 1);
        t.add(row("a", "pr_merged", big)).unwrap();
        let e = t.finish().unwrap_err();
        assert_eq!(e, "total_score of a overflows a 64-bit integer");
    }
}
