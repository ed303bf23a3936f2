//! The one snapshot format, both directions: the seven files' names, their version policy,
//! their types, the exact bytes the writer produces, and [`Published::read`], the reader that
//! diff, restore and skip-unchanged go through. `verify` does not stop at the first problem as
//! that reader does: it checks the same version policy ([`READABLE_VERSIONS`]) and header
//! ([`Header`]) itself, against the files' JSON schemas, so that it can list every problem.
//!
//! Bytes are exactly what Gitcord's Python writer produces:
//! `json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False)`, no trailing newline.
//!
//! serde_json's pretty printer with a two-space indent already matches Python's indent mode
//! (`,` + newline between items, `": "` after keys, `[]` and `{}` when empty) and its string
//! escaping matches `ensure_ascii=False` (only `"`, `\` and controls below U+0020, lower-case
//! hex). Two things are ours: key order, which the model guarantees by declaring struct
//! fields in code-point order, and floats, which Python writes with `repr()` (`1e+16`,
//! `1e-05`, `2.0`) where serde_json would write `1e16`, `0.00001`, `2.0`.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{Error as _, SerializeMap};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::ser::PrettyFormatter;
use serde_json::value::RawValue;

use crate::input::state::{IdentityRow, ScoreRow};
use crate::snapshot::contributors::Summary;
use crate::snapshot::model::Snapshot;
use crate::snapshot::model::{Cell, Table};
use crate::snapshot::python::python_float_repr;
use crate::threads;
use crate::time::isoformat;

/// `meta.json`: the run's header and period.
pub const META: &str = "meta.json";
/// `identities.json`: verified GitHub ↔ Discord links.
pub const IDENTITIES: &str = "identities.json";
/// `scores.json`: the latest scoring period.
pub const SCORES: &str = "scores.json";
/// `contributors.json`: per-user counts over the period.
pub const CONTRIBUTORS: &str = "contributors.json";
/// `roles.json`: Discord role names per user.
pub const ROLES: &str = "roles.json";
/// `issue_requests.json`: pending issue requests, as stored.
pub const ISSUE_REQUESTS: &str = "issue_requests.json";
/// `notifications.json`: the last sent notifications, as stored.
pub const NOTIFICATIONS: &str = "notifications.json";

/// The seven files of a snapshot, in the order Gitcord writes them; the only list of them.
pub const FILE_NAMES: [&str; 7] = [
    META,
    IDENTITIES,
    SCORES,
    CONTRIBUTORS,
    ROLES,
    ISSUE_REQUESTS,
    NOTIFICATIONS,
];

/// Written into every file; readers use it to refuse formats they do not know.
pub const SCHEMA_VERSION: &str = "1.0.0";

/// The version policy, one for every reader: the `schema_version`s read. A file of another
/// version is refused, naming it, rather than misread.
pub const READABLE_VERSIONS: &[&str] = &[SCHEMA_VERSION];

/// `meta.json`; `S` is `&str` when writing, `String` when reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Meta<S = String> {
    /// The snapshot time.
    pub generated_at: S,
    /// `github.org`.
    pub org: S,
    /// The end of the contribution period (the snapshot time).
    pub period_end: S,
    /// The start of the contribution period.
    pub period_start: S,
    /// The run's UUID.
    pub run_id: S,
    /// The format version.
    pub schema_version: S,
}

/// Every other file: the header and the rows under `data`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataFile<D, S = String> {
    /// The rows.
    pub data: D,
    /// As in `meta.json`.
    pub generated_at: S,
    /// As in `meta.json`.
    pub org: S,
    /// As in `meta.json`.
    pub run_id: S,
    /// As in `meta.json`.
    pub schema_version: S,
}

/// The default name of the readers' index at the root of the data repository.
pub const LATEST_FILE: &str = "latest.json";

/// `latest.json`: where the newest snapshot is and what its files hold, so a reader finds it
/// with one raw-file request however many snapshots `snapshots/` lists (GitHub's contents
/// API and web view list at most 1,000 entries of a directory).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latest {
    /// Each of the seven files: its size and SHA-256, so a reader can check what it fetched.
    pub files: BTreeMap<String, FileDigest>,
    /// As in the snapshot's files.
    pub generated_at: String,
    /// As in the snapshot's files.
    pub org: String,
    /// As in the snapshot's files.
    pub run_id: String,
    /// As in the snapshot's files.
    pub schema_version: String,
    /// `snapshots/<name>`.
    pub snapshot_dir: String,
    /// How many snapshot directories the commit's tree holds.
    pub snapshots: usize,
}

/// One file's size and content hash in [`Latest`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileDigest {
    /// Its length in bytes.
    pub bytes: u64,
    /// SHA-256 of its bytes, lower-case hex.
    pub sha256: String,
}

impl Latest {
    /// Describes snapshot `name` from its files; `None` when one of the seven is missing or
    /// `meta.json` does not parse as a header of strings: the index then names an older one.
    /// The other six files are hashed, not parsed, and `schema_version` is copied, not checked:
    /// the index describes what the directory holds, whichever version that is.
    pub fn describe<N: AsRef<str>>(
        name: &str,
        files: &[(N, Vec<u8>)],
        snapshots: usize,
    ) -> Option<Latest> {
        use sha2::Digest as _;
        let get = |file: &str| {
            files
                .iter()
                .find(|(n, _)| n.as_ref() == file)
                .map(|(_, b)| b)
        };
        let meta: Meta = serde_json::from_slice(get(META)?).ok()?;
        let mut digests = BTreeMap::new();
        for file in FILE_NAMES {
            let bytes = get(file)?;
            let sha256 = sha2::Sha256::digest(bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            digests.insert(
                file.to_owned(),
                FileDigest {
                    bytes: bytes.len() as u64,
                    sha256,
                },
            );
        }
        Some(Latest {
            files: digests,
            generated_at: meta.generated_at,
            org: meta.org,
            run_id: meta.run_id,
            schema_version: meta.schema_version,
            snapshot_dir: format!("{}/{name}", crate::snapshot::model::SNAPSHOTS_DIR),
            snapshots,
        })
    }

    /// The file's bytes, formatted exactly like the snapshot files.
    pub fn render(&self) -> Result<Vec<u8>, serde_json::Error> {
        to_python_json(self)
    }
}

/// The header fields every file carries, as far as a damaged file has them (for `verify`,
/// which reports what it finds rather than refusing at the first problem).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Header {
    /// `schema_version`, if present as text.
    pub schema_version: Option<String>,
    /// `generated_at`, likewise.
    pub generated_at: Option<String>,
    /// `org`, likewise.
    pub org: Option<String>,
    /// `run_id`, likewise.
    pub run_id: Option<String>,
}

impl Header {
    /// The fields by name, in the order problems are reported.
    pub fn fields(&self) -> [(&'static str, Option<&str>); 4] {
        [
            ("schema_version", self.schema_version.as_deref()),
            ("generated_at", self.generated_at.as_deref()),
            ("org", self.org.as_deref()),
            ("run_id", self.run_id.as_deref()),
        ]
    }
}

/// A row of `identities.json` as read back.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct IdentityRead {
    /// The Discord user id (TEXT in Gitcord's schema).
    pub discord_user_id: Cell,
    /// The GitHub login.
    pub github_user: Cell,
    /// Fields this version does not know (a later 1.x may add some): kept, so that a
    /// consumer that must not lose data (restore) can refuse them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A row of `scores.json` as read back.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ScoreRead {
    /// The GitHub login.
    pub github_user: Cell,
    /// The scoring period's end.
    pub period_end: Cell,
    /// The scoring period's start.
    pub period_start: Cell,
    /// Points in the period.
    pub points: Cell,
    /// Fields this version does not know (a later 1.x may add some): kept, so that a
    /// consumer that must not lose data (restore) can refuse them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A row of `contributors.json` as read back.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ContributorRead {
    /// `comment` events.
    pub comments: Cell,
    /// The GitHub login.
    pub github_user: Cell,
    /// `issue_opened` events.
    pub issues_opened: Cell,
    /// The period's end.
    pub period_end: Cell,
    /// The period's start.
    pub period_start: Cell,
    /// `pr_opened` and `pr_merged` events.
    pub prs_opened: Cell,
    /// `pr_reviewed` events.
    pub prs_reviewed: Cell,
    /// Difficulty-weighted points of merged PRs.
    pub total_score: Cell,
    /// Fields this version does not know (a later 1.x may add some): kept, so that a
    /// consumer that must not lose data (restore) can refuse them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A row of `roles.json` as read back.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RolesRead {
    /// The Discord user id.
    pub discord_user_id: Cell,
    /// Role names, sorted, duplicates kept.
    pub roles: Vec<Cell>,
    /// Fields this version does not know (a later 1.x may add some): kept, so that a
    /// consumer that must not lose data (restore) can refuse them.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// A row copied from a `state.db` table (`issue_requests.json`, `notifications.json`):
/// column name → value, each keeping its SQLite type.
pub type RowRead = BTreeMap<String, Cell>;

/// A published snapshot as every reader sees it.
///
/// The policy: every file must be there, be JSON of its file's shape, carry a version in
/// [`READABLE_VERSIONS`], and agree with `meta.json` on `generated_at`, `org` and `run_id`.
/// Fields this version does not know are ignored (a later 1.x may add some); every field
/// it knows must be present. Values keep their JSON type ([`Cell`]): what a value must be
/// (text, a number) is each consumer's own rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Published {
    /// `meta.json`.
    pub meta: Meta,
    /// `identities.json` rows.
    pub identities: Vec<IdentityRead>,
    /// `scores.json` rows.
    pub scores: Vec<ScoreRead>,
    /// `contributors.json` rows.
    pub contributors: Vec<ContributorRead>,
    /// `roles.json` rows.
    pub roles: Vec<RolesRead>,
    /// `issue_requests.json` rows.
    pub issue_requests: Vec<RowRead>,
    /// `notifications.json` rows.
    pub notifications: Vec<RowRead>,
}

/// A snapshot file that is missing or not in the format.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct FormatError {
    /// The file's name inside the snapshot, e.g. `scores.json`.
    pub file: &'static str,
    /// What is wrong, with the JSON path (`data[3].points`) where there is one.
    pub reason: String,
}

impl Published {
    /// Reads a snapshot's files, given as (file name, bytes) in any order.
    pub fn read<N: AsRef<str>>(files: &[(N, Vec<u8>)]) -> Result<Published, FormatError> {
        let find = |file: &'static str| {
            files
                .iter()
                .find(|(n, _)| n.as_ref() == file)
                .map(|(_, bytes)| bytes.as_slice())
                .ok_or(FormatError {
                    file,
                    reason: "is missing from the snapshot".into(),
                })
        };
        let meta: Meta = parse(META, find(META)?)?;
        check_version(META, &meta.schema_version)?;
        fn rows<R: de::DeserializeOwned>(
            file: &'static str,
            bytes: &[u8],
            meta: &Meta,
        ) -> Result<Vec<R>, FormatError> {
            let parsed: DataFile<Vec<R>> = parse(file, bytes)?;
            check_version(file, &parsed.schema_version)?;
            for (key, got, want) in [
                ("generated_at", &parsed.generated_at, &meta.generated_at),
                ("org", &parsed.org, &meta.org),
                ("run_id", &parsed.run_id, &meta.run_id),
            ] {
                if got != want {
                    return Err(FormatError {
                        file,
                        reason: format!("{key} {got:?} differs from meta.json's {want:?}"),
                    });
                }
            }
            Ok(parsed.data)
        }
        Ok(Published {
            identities: rows(IDENTITIES, find(IDENTITIES)?, &meta)?,
            scores: rows(SCORES, find(SCORES)?, &meta)?,
            contributors: rows(CONTRIBUTORS, find(CONTRIBUTORS)?, &meta)?,
            roles: rows(ROLES, find(ROLES)?, &meta)?,
            issue_requests: rows(ISSUE_REQUESTS, find(ISSUE_REQUESTS)?, &meta)?,
            notifications: rows(NOTIFICATIONS, find(NOTIFICATIONS)?, &meta)?,
            meta,
        })
    }

    /// Whether two snapshots say the same thing: equal in everything except what each run
    /// sets itself (`generated_at`, `run_id`, and the periods derived from the snapshot
    /// time), so `--skip-unchanged` can skip a commit that would only restate the last one.
    pub fn same_data(&self, other: &Published) -> bool {
        let counts = |rows: &[ContributorRead]| -> Vec<[Cell; 6]> {
            rows.iter()
                .map(|r| {
                    [
                        r.github_user.clone(),
                        r.comments.clone(),
                        r.issues_opened.clone(),
                        r.prs_opened.clone(),
                        r.prs_reviewed.clone(),
                        r.total_score.clone(),
                    ]
                })
                .collect()
        };
        self.meta.org == other.meta.org
            && self.meta.schema_version == other.meta.schema_version
            && self.identities == other.identities
            && self.scores == other.scores
            && counts(&self.contributors) == counts(&other.contributors)
            && self.roles == other.roles
            && self.issue_requests == other.issue_requests
            && self.notifications == other.notifications
    }
}

/// Parses one file, naming the JSON path of the first thing that does not fit.
fn parse<T: de::DeserializeOwned>(file: &'static str, bytes: &[u8]) -> Result<T, FormatError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = match path.as_str() {
            // "?" is serde_path_to_error's "not inside any value yet" (a syntax error).
            "." | "" | "?" => inner.to_string(),
            _ => format!("{path}: {inner}"),
        };
        FormatError { file, reason }
    })?;
    de.end().map_err(|e| FormatError {
        file,
        reason: e.to_string(),
    })?;
    Ok(value)
}

fn check_version(file: &'static str, found: &str) -> Result<(), FormatError> {
    if READABLE_VERSIONS.contains(&found) {
        return Ok(());
    }
    let known = READABLE_VERSIONS.join(", ");
    Err(FormatError {
        file,
        reason: format!("schema_version {found:?} is not one this version reads ({known})"),
    })
}

impl<'de> Deserialize<'de> for Cell {
    /// A JSON scalar, keeping its type: null, an integer (64-bit), a float, a string.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cell, D::Error> {
        struct CellVisitor;
        impl Visitor<'_> for CellVisitor {
            type Value = Cell;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("null, a number or a string")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Cell, E> {
                Ok(Cell::Null)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Cell, E> {
                Ok(Cell::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Cell, E> {
                i64::try_from(v)
                    .map(Cell::Int)
                    .map_err(|_| E::custom(format!("{v} does not fit a 64-bit integer")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Cell, E> {
                Ok(Cell::Real(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Cell, E> {
                Ok(Cell::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Cell, E> {
                Ok(Cell::Text(v))
            }
        }
        d.deserialize_any(CellVisitor)
    }
}

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
    let envelope = |data| DataFile {
        data,
        generated_at: generated_at.as_str(),
        org: snapshot.org.as_str(),
        run_id: run_id.as_str(),
        schema_version: SCHEMA_VERSION,
    };
    let meta: Meta<&str> = Meta {
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
    // Rendered on two threads, split by size: the largest file (one row per score) and the
    // contributors on a second thread, the rest here (roles, one row per Discord member, the
    // next largest, among them).
    // Each file keeps its own result, so a failure is reported for the first file in order.
    let big = || {
        (
            to_python_json(&envelope(DataRef::Rows(&contributors))),
            to_python_json(&envelope(DataRef::Rows(&scores))),
        )
    };
    let (contributors, scores, rest) = std::thread::scope(|scope| {
        let on_second = threads::spawn(scope, big);
        let rest = [
            to_python_json(&meta),
            to_python_json(&envelope(DataRef::Rows(&identities))),
            to_python_json(&envelope(DataRef::Rows(&roles))),
            to_python_json(&envelope(DataRef::Table(&snapshot.issue_requests))),
            to_python_json(&envelope(DataRef::Table(&snapshot.notifications))),
        ];
        let (contributors, scores) = on_second.join().unwrap_or_else(big);
        (contributors, scores, rest)
    });
    let [meta, identities, roles, issues, notifications] = rest;
    Ok(vec![
        (f_meta, meta?),
        (f_identities, identities?),
        (f_scores, scores?),
        (f_contributors, contributors?),
        (f_roles, roles?),
        (f_issues, issues?),
        (f_notifications, notifications?),
    ])
}

// Field order below is the written order: every struct declares its fields in code-point order,
// which is what `sort_keys=True` produces.

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
    use crate::input::roles::RoleMap;
    use crate::input::state::Tables;
    use crate::snapshot::model::RunInfo;
    use crate::time;
    use uuid::Uuid;

    fn run() -> RunInfo {
        RunInfo {
            run_id: Uuid::parse_str("abc12345-def6-4890-a1b2-c3d4e5f60718").unwrap(),
            at: time::parse_rfc3339("2024-01-31T12:00:00.25Z").unwrap(),
            org: "o".into(),
            period_days: 30,
        }
    }

    fn same(a: &[(&str, Vec<u8>)], b: &[(&str, Vec<u8>)]) -> bool {
        Published::read(a)
            .unwrap()
            .same_data(&Published::read(b).unwrap())
    }

    #[test]
    fn the_readers_index_describes_the_files() {
        let files = render(&Snapshot::assemble(
            run(),
            Tables::default(),
            vec![],
            RoleMap::new(),
            Vec::new,
        ))
        .unwrap();
        let latest = Latest::describe("2024-01-31T12-00-00-abc12345", &files, 3).unwrap();
        assert_eq!(
            latest.snapshot_dir,
            "snapshots/2024-01-31T12-00-00-abc12345"
        );
        assert_eq!(latest.files.len(), 7);
        assert_eq!(latest.files[META].bytes, files[0].1.len() as u64);
        let bytes = String::from_utf8(latest.render().unwrap()).unwrap();
        assert!(
            bytes.starts_with("{\n  \"files\": {\n    \"contributors.json\": {\n      \"bytes\": "),
            "{bytes}"
        );
        assert!(bytes.ends_with("\"snapshots\": 3\n}"), "{bytes}");
        let missing: Vec<(&str, Vec<u8>)> =
            files.iter().filter(|(n, _)| *n != ROLES).cloned().collect();
        assert!(Latest::describe("x", &missing, 1).is_none());
    }

    #[test]
    fn what_is_written_reads_back() {
        let contributors = vec![Summary {
            github_user: "a".into(),
            comments: 2,
            total_score: 5,
            ..Summary::default()
        }];
        let roles = RoleMap::from([("1".to_owned(), vec!["x".into()])]);
        let files = render(&Snapshot::assemble(
            run(),
            Tables::default(),
            contributors,
            roles,
            Vec::new,
        ))
        .unwrap();
        let read = Published::read(&files).unwrap();
        assert_eq!(read.meta.run_id, "abc12345-def6-4890-a1b2-c3d4e5f60718");
        assert_eq!(read.contributors[0].comments, Cell::Int(2));
        assert_eq!(read.contributors[0].total_score, Cell::Int(5));
        assert_eq!(read.roles[0].roles, [Cell::Text("x".into())]);
    }

    #[test]
    fn other_versions_and_disagreeing_headers_are_refused() {
        let files = render(&Snapshot::assemble(
            run(),
            Tables::default(),
            vec![],
            RoleMap::new(),
            Vec::new,
        ))
        .unwrap();
        let edit = |file: &str, from: &str, to: &str| -> Vec<(&str, Vec<u8>)> {
            files
                .iter()
                .map(|(n, b)| {
                    let text = String::from_utf8(b.clone()).unwrap();
                    (
                        *n,
                        if *n == file {
                            text.replacen(from, to, 1).into_bytes()
                        } else {
                            b.clone()
                        },
                    )
                })
                .collect()
        };
        let err = Published::read(&edit(SCORES, "\"1.0.0\"", "\"2.0.0\"")).unwrap_err();
        assert_eq!(err.file, SCORES);
        assert!(err.reason.contains("\"2.0.0\""), "{err}");
        let err = Published::read(&edit(ROLES, "\"org\": \"o\"", "\"org\": \"p\"")).unwrap_err();
        assert!(
            err.to_string().starts_with("roles.json: org \"p\" differs"),
            "{err}"
        );
        let missing: Vec<(&str, Vec<u8>)> = files
            .iter()
            .filter(|(n, _)| *n != NOTIFICATIONS)
            .cloned()
            .collect();
        assert_eq!(Published::read(&missing).unwrap_err().file, NOTIFICATIONS);
    }

    #[test]
    fn same_data_ignores_only_the_run_fields() {
        let run2 = RunInfo {
            run_id: Uuid::nil(),
            at: time::parse_rfc3339("2024-02-01T00:00:00Z").unwrap(),
            ..run()
        };
        let contributors = vec![Summary {
            github_user: "a".into(),
            comments: 1,
            ..Summary::default()
        }];
        let a = render(&Snapshot::assemble(
            run(),
            Tables::default(),
            contributors.clone(),
            RoleMap::new(),
            Vec::new,
        ))
        .unwrap();
        let b = render(&Snapshot::assemble(
            run2.clone(),
            Tables::default(),
            contributors,
            RoleMap::new(),
            Vec::new,
        ))
        .unwrap();
        assert_ne!(a, b);
        assert!(same(&a, &b));
        let roles = RoleMap::from([("1".to_owned(), vec!["x".into()])]);
        let c = render(&Snapshot::assemble(
            run2,
            Tables::default(),
            vec![],
            roles,
            Vec::new,
        ))
        .unwrap();
        assert!(!same(&a, &c));
    }

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
