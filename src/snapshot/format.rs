//! Bytes exactly as Gitcord's Python writer produces them:
//! `json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)`, no trailing newline.
//!
//! serde_json's pretty printer with a two-space indent already matches Python's indent mode
//! (`,` + newline between items, `": "` after keys, `[]` and `{}` when empty) and its string
//! escaping matches `ensure_ascii=False` (only `"`, `\` and controls below U+0020, lower-case
//! hex). Two things are ours: key order, which the model guarantees by declaring struct
//! fields in code-point order, and floats, which Python writes with `repr()` (`1e+16`,
//! `1e-05`, `2.0`) where serde_json would write `1e16`, `0.00001`, `2.0`.

use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};

use crate::input::state::{Cell, IdentityRow, ScoreRow, Table};
use crate::snapshot::contributors::Summary;
use crate::snapshot::python::python_float_repr;
use crate::snapshot::{Snapshot, FILE_NAMES, SCHEMA_VERSION};
use crate::time::isoformat;
use serde_json::ser::PrettyFormatter;
use serde_json::value::RawValue;

/// Serializes `value` the way Gitcord's writer does.
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(1024);
    let mut ser =
        serde_json::Serializer::with_formatter(&mut out, PrettyFormatter::with_indent(b"  "));
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Writes a float as Python's `json.dumps` does, so REAL values survive byte for byte.
pub fn serialize_python_float<S: Serializer>(x: f64, s: S) -> Result<S::Ok, S::Error> {
    RawValue::from_string(python_float_repr(x))
        .map_err(S::Error::custom)?
        .serialize(s)
}

/// Renders the seven files of `snapshot`, in Gitcord's order, as the bytes to write.
pub fn render(snapshot: &Snapshot) -> Result<Vec<(&'static str, Vec<u8>)>, serde_json::Error> {
    let generated_at = isoformat(&snapshot.at);
    let period_start = isoformat(&snapshot.period_start);
    let run_id = snapshot.run_id.hyphenated().to_string();
    let envelope = |data| Envelope {
        data,
        generated_at: &generated_at,
        org: &snapshot.org,
        run_id: &run_id,
        schema_version: SCHEMA_VERSION,
    };
    let meta = Meta {
        generated_at: &generated_at,
        org: &snapshot.org,
        period_end: &generated_at,
        period_start: &period_start,
        run_id: &run_id,
        schema_version: SCHEMA_VERSION,
    };
    let identities: Vec<Data<'_>> = snapshot.identities.iter().map(Data::Identity).collect();
    let scores: Vec<Data<'_>> = snapshot.scores.iter().map(Data::Score).collect();
    let contributors: Vec<Data<'_>> = snapshot
        .contributors
        .iter()
        .map(|s| Data::Contributor(s, &period_start, &generated_at))
        .collect();
    let roles: Vec<Data<'_>> = snapshot
        .roles
        .iter()
        .map(|(id, names)| Data::Roles(id, names))
        .collect();
    let [f_meta, f_identities, f_scores, f_contributors, f_roles, f_issues, f_notifications] =
        FILE_NAMES;
    Ok(vec![
        (f_meta, to_python_json(&meta)?),
        (
            f_identities,
            to_python_json(&envelope(DataRef::Rows(&identities)))?,
        ),
        (f_scores, to_python_json(&envelope(DataRef::Rows(&scores)))?),
        (
            f_contributors,
            to_python_json(&envelope(DataRef::Rows(&contributors)))?,
        ),
        (f_roles, to_python_json(&envelope(DataRef::Rows(&roles)))?),
        (
            f_issues,
            to_python_json(&envelope(DataRef::Table(&snapshot.issue_requests)))?,
        ),
        (
            f_notifications,
            to_python_json(&envelope(DataRef::Table(&snapshot.notifications)))?,
        ),
    ])
}

// Field order below is the written order: every struct declares its fields in code-point order,
// which is what `sort_keys=True` produces.

#[derive(Serialize)]
struct Meta<'a> {
    generated_at: &'a str,
    org: &'a str,
    period_end: &'a str,
    period_start: &'a str,
    run_id: &'a str,
    schema_version: &'a str,
}

#[derive(Serialize)]
struct Envelope<'a> {
    data: DataRef<'a>,
    generated_at: &'a str,
    org: &'a str,
    run_id: &'a str,
    schema_version: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DataRef<'a> {
    Rows(&'a [Data<'a>]),
    Table(&'a Table),
}

/// One row of a data file.
enum Data<'a> {
    Identity(&'a IdentityRow),
    Score(&'a ScoreRow),
    Contributor(&'a Summary, &'a str, &'a str),
    Roles(&'a String, &'a Vec<String>),
}

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            Data::Identity(row) => {
                map.serialize_entry("discord_user_id", &row.discord_user_id)?;
                map.serialize_entry("github_user", &row.github_user)?;
            }
            Data::Score(row) => {
                map.serialize_entry("github_user", &row.github_user)?;
                map.serialize_entry("period_end", &isoformat(&row.period_end))?;
                map.serialize_entry("period_start", &isoformat(&row.period_start))?;
                map.serialize_entry("points", &row.points)?;
            }
            Data::Contributor(summary, period_start, period_end) => {
                map.serialize_entry("comments", &summary.comments)?;
                map.serialize_entry("github_user", &summary.github_user)?;
                map.serialize_entry("issues_opened", &summary.issues_opened)?;
                map.serialize_entry("period_end", period_end)?;
                map.serialize_entry("period_start", period_start)?;
                map.serialize_entry("prs_opened", &summary.prs_opened)?;
                map.serialize_entry("prs_reviewed", &summary.prs_reviewed)?;
                map.serialize_entry("total_score", &summary.total_score)?;
            }
            Data::Roles(id, names) => {
                map.serialize_entry("discord_user_id", id)?;
                map.serialize_entry("roles", names)?;
            }
        }
        map.end()
    }
}

impl Serialize for Cell {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Cell::Null => s.serialize_none(),
            Cell::Int(n) => s.serialize_i64(*n),
            Cell::Real(x) => serialize_python_float(*x, s),
            Cell::Text(t) => s.serialize_str(t),
        }
    }
}

impl Serialize for Table {
    /// A list of objects; `columns` is sorted, so keys come out in `sort_keys` order.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Row<'a>(&'a [String], &'a [Cell]);
        impl Serialize for Row<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut map = s.serialize_map(Some(self.0.len()))?;
                for (column, cell) in self.0.iter().zip(self.1) {
                    map.serialize_entry(column, cell)?;
                }
                map.end()
            }
        }
        s.collect_seq(self.rows.iter().map(|cells| Row(&self.columns, cells)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn layout_and_escaping_match_python_indent_mode() {
        // Expected bytes from: json.dumps(v, indent=2, sort_keys=True, ensure_ascii=False)
        let mut map = BTreeMap::new();
        map.insert("b", serde_json::json!([]));
        map.insert(
            "a",
            serde_json::json!({"x": [1, "é\u{7f}\u{2028}\"\\\n\t\u{1}"], "e": {}}),
        );
        let got = String::from_utf8(to_python_json(&map).unwrap()).unwrap();
        let want = "{\n  \"a\": {\n    \"e\": {},\n    \"x\": [\n      1,\n      \"é\u{7f}\u{2028}\\\"\\\\\\n\\t\\u0001\"\n    ]\n  },\n  \"b\": []\n}";
        assert_eq!(got, want);
    }

    #[test]
    fn float_fields_use_python_repr_inside_documents() {
        #[derive(Serialize)]
        struct Row {
            #[serde(serialize_with = "ser_f")]
            points: f64,
        }
        fn ser_f<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
            serialize_python_float(*x, s)
        }
        let got = to_python_json(&[Row { points: 1e16 }]).unwrap();
        assert_eq!(got, b"[\n  {\n    \"points\": 1e+16\n  }\n]");
    }
}
