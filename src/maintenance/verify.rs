//! The rules `verify` enforces on a data repository: every snapshot matches the published
//! format, and the history is append-only.
//!
//! Consumers (Org Explorer and the like) trust the data repository because nothing in it is
//! ever rewritten and every file follows `schemas/`. This module checks both, in two layers:
//!
//! - [`Schemas::check_snapshot`] is pure: one snapshot directory's entries and bytes in, the
//!   problems out. File contents are checked against the JSON Schemas shipped in `schemas/`,
//!   embedded here with `include_str!`, so the published contract and the check are one
//!   text and cannot drift. What a schema cannot say (the seven files agree with each other
//!   and with the directory name) is checked in Rust next to it.
//! - [`verify_history`] walks the branch's first-parent history oldest to newest and compares
//!   each commit's `snapshots/` tree with its parent's. Only changed entries are looked at, and
//!   each snapshot directory's content is checked once (keyed by name and tree id: an
//!   unchanged directory is the same object in every later commit), so a long history costs
//!   about one tree comparison per commit.

use std::collections::{HashMap, HashSet};

use jsonschema::paths::LocationSegment;
use jsonschema::{Draft, Resource, Validator};
use serde_json::Value;

use crate::publish::clone::{DataRepo, RepoError};
use crate::publish::history::{Entry, EntryId};
use crate::publish::signing::AllowedSigners;
use serde::Deserialize;

use crate::snapshot::format::{self, Header, READABLE_VERSIONS};
use crate::snapshot::{self, FILE_NAMES, SNAPSHOTS_DIR};
use crate::time;

/// The commit-message trailer that marks a prune: the one kind of commit allowed to remove
/// snapshots, and only whole directories (`Gitcord-Snapshot-Prune: keep-last 30`).
pub const PRUNE_TRAILER: &str = "Gitcord-Snapshot-Prune";

/// Where the schemas say they live; `$ref`s between them resolve against it.
const SCHEMA_BASE: &str = "https://gitcord.dev/schemas/snapshot/1.0.0/";

/// The shared definitions every file schema refers to.
const COMMON_SCHEMA: (&str, &str) = (
    "common.schema.json",
    include_str!("../../schemas/common.schema.json"),
);

/// The readers' index at the repository root (`latest.json`).
const LATEST_SCHEMA: (&str, &str) = (
    format::LATEST_FILE,
    include_str!("../../schemas/latest.schema.json"),
);

/// One schema per snapshot file, in [`FILE_NAMES`] order: (file it checks, schema text).
const FILE_SCHEMAS: [(&str, &str); 7] = [
    (format::META, include_str!("../../schemas/meta.schema.json")),
    (
        format::IDENTITIES,
        include_str!("../../schemas/identities.schema.json"),
    ),
    (
        format::SCORES,
        include_str!("../../schemas/scores.schema.json"),
    ),
    (
        format::CONTRIBUTORS,
        include_str!("../../schemas/contributors.schema.json"),
    ),
    (
        format::ROLES,
        include_str!("../../schemas/roles.schema.json"),
    ),
    (
        format::ISSUE_REQUESTS,
        include_str!("../../schemas/issue_requests.schema.json"),
    ),
    (
        format::NOTIFICATIONS,
        include_str!("../../schemas/notifications.schema.json"),
    ),
];

/// How many schema violations of one file are listed before the rest are only counted, so a
/// systematically wrong file (1000 rows with the same fault) does not bury everything else.
const MAX_SCHEMA_PROBLEMS_PER_FILE: usize = 10;

/// Why `verify` could not finish (as opposed to the problems it found).
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// An embedded schema does not compile: a defect of this build, caught by its tests.
    #[error("embedded schema {file} is unusable: {reason}")]
    Schema {
        /// The schema file.
        file: &'static str,
        /// The validator's complaint.
        reason: String,
    },
    /// Reading the history failed (a damaged or partial clone).
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// One thing wrong in one snapshot, independent of the commit it was found in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The path inside the data repository, e.g. `snapshots/<name>/scores.json`.
    pub path: String,
    /// What is wrong, one line.
    pub problem: String,
}

/// One thing wrong in the history: a [`Finding`] and the commit that introduced it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The commit that introduced the problem (its full id).
    pub commit: String,
    /// The path inside the data repository; empty for a problem of the commit itself.
    pub path: String,
    /// What is wrong, one line.
    pub problem: String,
}

/// What [`verify_history`] looked at and found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Commits walked (the branch's first-parent history).
    pub commits: usize,
    /// Distinct snapshot directories seen anywhere in that history (pruned ones included).
    pub snapshots: usize,
    /// Everything wrong, oldest commit first.
    pub problems: Vec<Problem>,
}

/// The compiled schemas of the seven files.
pub struct Schemas {
    validators: Vec<(&'static str, Validator)>,
}

/// What one file said about the snapshot, for the cross-file checks.
struct FileResult<'a> {
    name: &'a str,
    header: Vec<(&'static str, String)>,
    clean: bool,
}

impl Schemas {
    /// Compiles the embedded schemas, resolving their `$ref`s to `common.schema.json` in
    /// memory: nothing is fetched, ever.
    pub fn load() -> Result<Schemas, VerifyError> {
        let parse = |file: &'static str, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| VerifyError::Schema {
                file,
                reason: e.to_string(),
            })
        };
        let common = parse(COMMON_SCHEMA.0, COMMON_SCHEMA.1)?;
        let mut validators = Vec::with_capacity(FILE_SCHEMAS.len());
        for (file, text) in FILE_SCHEMAS.into_iter().chain([LATEST_SCHEMA]) {
            let schema = parse(file, text)?;
            let validator = jsonschema::options()
                .with_draft(Draft::Draft202012)
                .with_resource(
                    format!("{SCHEMA_BASE}{}", COMMON_SCHEMA.0),
                    Resource::from_contents(common.clone()),
                )
                .build(&schema)
                .map_err(|e| VerifyError::Schema {
                    file,
                    reason: e.to_string(),
                })?;
            validators.push((file, validator));
        }
        Ok(Schemas { validators })
    }

    /// Checks one file's bytes against its schema and returns the problems, each one line
    /// (`data[3].points: "150" is not of type "number"`). A file name that is not one of the
    /// seven is itself the problem.
    pub fn check_file(&self, file_name: &str, bytes: &[u8]) -> Vec<String> {
        self.check_file_inner(file_name, bytes).0
    }

    fn check_file_inner(&self, file_name: &str, bytes: &[u8]) -> (Vec<String>, Option<Value>) {
        let Some((_, validator)) = self.validators.iter().find(|(n, _)| *n == file_name) else {
            return (
                vec!["unexpected file; a snapshot holds exactly the seven files".to_owned()],
                None,
            );
        };
        let value: Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => return (vec![format!("not valid JSON: {e}")], None),
        };
        if let Some(version) = value.get("schema_version").and_then(Value::as_str) {
            if !READABLE_VERSIONS.contains(&version) {
                let known = READABLE_VERSIONS.join(", ");
                return (
                    vec![format!(
                        "schema_version {version:?} is not one this verify knows ({known})"
                    )],
                    Some(value),
                );
            }
        }
        if validator.is_valid(&value) {
            return (Vec::new(), Some(value));
        }
        let mut problems = Vec::new();
        let mut more = 0usize;
        for error in validator.iter_errors(&value) {
            if problems.len() < MAX_SCHEMA_PROBLEMS_PER_FILE {
                let at = json_path(error.instance_path());
                problems.push(if at.is_empty() {
                    error.to_string()
                } else {
                    format!("{at}: {error}")
                });
            } else {
                more += 1;
            }
        }
        if more > 0 {
            problems.push(format!(
                "{more} more schema problem(s) in this file not listed"
            ));
        }
        (problems, Some(value))
    }

    /// Checks one snapshot directory: exactly the seven files, each valid against its schema,
    /// their headers in agreement, and the directory named after `generated_at` and `run_id`.
    /// `name` is the directory's name under `snapshots/`.
    pub fn check_snapshot(&self, name: &str, entries: &[(String, Entry)]) -> Vec<Finding> {
        let dir = format!("{SNAPSHOTS_DIR}/{name}");
        let mut findings = Vec::new();
        let mut found = |path: String, problem: String| findings.push(Finding { path, problem });
        let mut results: Vec<FileResult<'_>> = Vec::new();
        for (entry_name, entry) in entries {
            let path = format!("{dir}/{entry_name}");
            match entry {
                Entry::Other(kind) => {
                    found(
                        path,
                        format!("unexpected {kind}; a snapshot holds exactly the seven files"),
                    );
                }
                Entry::File(_) if !FILE_NAMES.contains(&entry_name.as_str()) => {
                    found(
                        path,
                        "unexpected file; a snapshot holds exactly the seven files".to_owned(),
                    );
                }
                Entry::File(_) => {}
            }
        }
        for file in FILE_NAMES {
            let bytes = entries.iter().find_map(|(n, e)| match e {
                Entry::File(bytes) if n == file => Some(bytes),
                _ => None,
            });
            let Some(bytes) = bytes else {
                if !entries.iter().any(|(n, _)| n == file) {
                    found(format!("{dir}/{file}"), "missing".to_owned());
                }
                continue;
            };
            let (problems, value) = self.check_file_inner(file, bytes);
            let clean = problems.is_empty();
            for problem in problems {
                found(format!("{dir}/{file}"), problem);
            }
            if let Some(value) = value {
                let header = Header::deserialize(&value)
                    .unwrap_or_default()
                    .fields()
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v.to_owned())))
                    .collect();
                results.push(FileResult {
                    name: file,
                    header,
                    clean,
                });
            }
        }
        // The reference is meta.json when it could be read, else the first file that could.
        let Some(reference) = results.first() else {
            return findings;
        };
        let get = |r: &FileResult<'_>, key: &str| {
            r.header
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.clone())
        };
        for other in &results[1..] {
            for key in Header::default().fields().map(|(k, _)| k) {
                if let (Some(want), Some(got)) = (get(reference, key), get(other, key)) {
                    if want != got {
                        found(
                            format!("{dir}/{}", other.name),
                            format!(
                                "{key} {got:?} does not agree with {} ({want:?})",
                                reference.name
                            ),
                        );
                    }
                }
            }
        }
        // The directory name: only judged from a reference whose header passed its schema.
        if reference.clean {
            if let (Some(generated_at), Some(run_id)) =
                (get(reference, "generated_at"), get(reference, "run_id"))
            {
                let at = time::parse_rfc3339(&generated_at)
                    .filter(|t| time::isoformat(t) == generated_at);
                let id = uuid::Uuid::try_parse(&run_id).ok();
                match (at, id) {
                    (Some(at), Some(id)) => {
                        let expected = snapshot::snapshot_name(&at, &id);
                        if expected != name {
                            found(dir.clone(), format!("name does not agree with generated_at and run_id (expected {expected})"));
                        }
                    }
                    (None, _) => found(
                        format!("{dir}/{}", reference.name),
                        format!("generated_at {generated_at:?} is not a valid time"),
                    ),
                    (_, None) => found(
                        format!("{dir}/{}", reference.name),
                        format!("run_id {run_id:?} is not a UUID"),
                    ),
                }
            }
        }
        findings
    }
}

/// `data[3].points` for the JSON pointer `/data/3/points`: how people name a place in a file.
fn json_path(location: &jsonschema::paths::Location) -> String {
    let mut out = String::new();
    for segment in location.iter() {
        match segment {
            LocationSegment::Index(i) => out.push_str(&format!("[{i}]")),
            LocationSegment::Property(p) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&p);
            }
        }
    }
    out
}

/// Whether `message` carries the [`PRUNE_TRAILER`] line with a value.
pub fn is_prune_message(message: &str) -> bool {
    message.lines().any(|line| {
        line.strip_prefix(PRUNE_TRAILER)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|value| !value.trim().is_empty())
    })
}

/// Walks the branch's first-parent history, oldest to newest, and reports every problem:
/// invalid snapshots, any change to an existing snapshot, deletions outside a prune commit, and
/// merge commits. `progress(i, n)` is called before commit `i` of `n`.
pub fn verify_history(
    repo: &DataRepo,
    schemas: &Schemas,
    signers: Option<&AllowedSigners>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, VerifyError> {
    let mut history = repo.history()?;
    let total = history.len();
    let mut report = Report {
        commits: total,
        ..Report::default()
    };
    let mut names: HashSet<String> = HashSet::new();
    let mut checked: HashSet<(String, EntryId)> = HashSet::new();
    let mut first_seen: HashMap<String, EntryId> = HashMap::new();
    let mut i = 0;
    while let Some(step) = history.next_commit()? {
        i += 1;
        progress(i, total);
        let mut problem = |path: String, problem: String| {
            report.problems.push(Problem {
                commit: step.commit.clone(),
                path,
                problem,
            })
        };
        if step.parents > 1 {
            problem(
                String::new(),
                format!(
                    "merge commit with {} parents; the history must be linear",
                    step.parents
                ),
            );
        }
        if let (Some(signers), true) = (signers, step.touches_ours) {
            if let Err(why) = repo.check_signature(&step.commit, signers) {
                problem(
                    String::new(),
                    format!("changes snapshots but its signature is not accepted: {why}"),
                );
            }
        }
        if step.snapshots_not_a_directory {
            problem(SNAPSHOTS_DIR.to_owned(), "not a directory".to_owned());
        }
        for latest in &step.latest {
            for p in schemas.check_file(format::LATEST_FILE, &latest.committed) {
                problem(latest.path.clone(), p);
            }
            if latest.expected.as_deref() != Some(latest.committed.as_slice()) {
                let names = |bytes: &[u8]| {
                    serde_json::from_slice::<format::Latest>(bytes)
                        .map(|l| l.snapshot_dir)
                        .ok()
                };
                let why = match (&latest.expected, names(&latest.committed)) {
                    (None, _) => "the commit holds no snapshot for it to name".to_owned(),
                    (Some(want), Some(got)) if names(want).as_deref() != Some(got.as_str()) => {
                        format!(
                            "names {got} but the newest snapshot is {}",
                            names(want).unwrap_or_default()
                        )
                    }
                    _ => "does not match the files of the snapshot it names".to_owned(),
                };
                let stale = match latest.configured {
                    true => "",
                    false => " (an index snapshots.latest_file no longer names, left in the tree)",
                };
                problem(
                    latest.path.clone(),
                    format!("does not match its commit's tree: {why}{stale}"),
                );
            }
        }
        let prune = is_prune_message(&step.message);
        for (path, what) in &step.file_changes {
            let what = if prune {
                format!("{what} (a prune may only remove whole snapshot directories)")
            } else {
                what.clone()
            };
            problem(format!("{SNAPSHOTS_DIR}/{path}"), what);
        }
        for name in &step.removed {
            if !prune {
                problem(
                    format!("{SNAPSHOTS_DIR}/{name}"),
                    format!("snapshot deleted by a commit without a {PRUNE_TRAILER} trailer; snapshots are append-only"),
                );
            }
        }
        for added in &step.added {
            let path = format!("{SNAPSHOTS_DIR}/{}", added.name);
            if prune {
                problem(
                    path.clone(),
                    "added by a prune commit; a prune may only remove whole snapshot directories"
                        .to_owned(),
                );
            }
            if !added.dir {
                problem(
                    path,
                    "not a snapshot directory (a snapshot is a directory of seven files)"
                        .to_owned(),
                );
                continue;
            }
            // A name is published once: re-adding it later (after a prune) with other content
            // would rewrite what readers already saw.
            match first_seen.get(&added.name) {
                Some(id) if *id != added.id => {
                    problem(
                        path.clone(),
                        "re-added with different content than when it was first published"
                            .to_owned(),
                    );
                }
                Some(_) => {}
                None => {
                    first_seen.insert(added.name.clone(), added.id.clone());
                }
            }
            names.insert(added.name.clone());
            if !checked.insert((added.name.clone(), added.id.clone())) {
                continue;
            }
            let entries = history.read_dir(&added.id)?;
            for finding in schemas.check_snapshot(&added.name, &entries) {
                problem(finding.path, finding.problem);
            }
        }
    }
    report.snapshots = names.len();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish::history::tests::Scratch;
    use std::path::{Path, PathBuf};

    fn conformance() -> Vec<(String, Vec<(String, Entry)>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance");
        let mut out = Vec::new();
        let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        cases.sort();
        for case in cases.iter().filter(|c| c.join("case.json").is_file()) {
            for dir in std::fs::read_dir(case.join("expected/snapshots")).unwrap() {
                let dir = dir.unwrap().path();
                let name = dir.file_name().unwrap().to_string_lossy().into_owned();
                let mut entries: Vec<(String, Entry)> = std::fs::read_dir(&dir)
                    .unwrap()
                    .map(|f| {
                        let f = f.unwrap();
                        (
                            f.file_name().to_string_lossy().into_owned(),
                            Entry::File(std::fs::read(f.path()).unwrap()),
                        )
                    })
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                out.push((name, entries));
            }
        }
        assert!(out.len() >= 5, "conformance cases not found");
        out
    }

    fn basic() -> (String, Vec<(String, Entry)>) {
        conformance()
            .into_iter()
            .find(|(n, _)| n.ends_with("abc12345"))
            .unwrap()
    }

    /// Replaces one file of `entries` with `edit` applied to its JSON.
    fn edited(
        entries: &[(String, Entry)],
        file: &str,
        edit: impl FnOnce(&mut Value),
    ) -> Vec<(String, Entry)> {
        let mut out = entries.to_vec();
        let (_, entry) = out.iter_mut().find(|(n, _)| n == file).unwrap();
        let Entry::File(bytes) = entry else {
            unreachable!()
        };
        let mut v: Value = serde_json::from_slice(bytes).unwrap();
        edit(&mut v);
        *entry = Entry::File(serde_json::to_vec_pretty(&v).unwrap());
        out
    }

    fn problems_of(name: &str, entries: &[(String, Entry)]) -> Vec<String> {
        let schemas = Schemas::load().unwrap();
        schemas
            .check_snapshot(name, entries)
            .into_iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.path.trim_start_matches(&format!("snapshots/{name}/")),
                    f.problem
                )
            })
            .collect()
    }

    #[test]
    fn the_embedded_schemas_are_the_shipped_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
        let mut shipped: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".schema.json"))
            .collect();
        shipped.sort();
        let mut embedded: Vec<String> = FILE_SCHEMAS
            .iter()
            .chain([&LATEST_SCHEMA])
            .map(|(f, _)| f.replace(".json", ".schema.json"))
            .chain([COMMON_SCHEMA.0.to_owned()])
            .collect();
        embedded.sort();
        assert_eq!(shipped, embedded);
        assert_eq!(FILE_SCHEMAS.map(|(f, _)| f), FILE_NAMES);
        for (file, text) in FILE_SCHEMAS
            .iter()
            .chain([&LATEST_SCHEMA])
            .map(|(f, t)| (f.replace(".json", ".schema.json"), *t))
            .chain([(COMMON_SCHEMA.0.to_owned(), COMMON_SCHEMA.1)])
        {
            let schema: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
                "{file}"
            );
            assert_eq!(schema["$id"], format!("{SCHEMA_BASE}{file}"), "{file}");
            assert_eq!(
                std::fs::read_to_string(dir.join(&file)).unwrap(),
                text,
                "{file}"
            );
        }
    }

    #[test]
    fn every_conformance_file_validates_against_its_schema() {
        let schemas = Schemas::load().unwrap();
        for (name, entries) in conformance() {
            for (file, entry) in &entries {
                let Entry::File(bytes) = entry else {
                    unreachable!()
                };
                assert_eq!(
                    schemas.check_file(file, bytes),
                    Vec::<String>::new(),
                    "{name}/{file}"
                );
            }
            assert_eq!(schemas.check_snapshot(&name, &entries), vec![], "{name}");
        }
    }

    #[test]
    fn schema_violations_name_the_place_in_the_file() {
        let (name, entries) = basic();
        type Edit = Box<dyn FnOnce(&mut Value)>;
        let cases: Vec<(&str, Edit, &str)> = vec![
            ("scores.json", Box::new(|v| v["data"][1]["points"] = "20".into()), r#"scores.json: data[1].points: "20" is not of type "number""#),
            ("scores.json", Box::new(|v| v["data"][0]["period_end"] = "2024-01-31T12:00:00Z".into()), "scores.json: data[0].period_end: \"2024-01-31T12:00:00Z\" does not match"),
            ("issue_requests.json", Box::new(|v| v["data"][0]["issue_number"] = "42".into()), r#"issue_requests.json: data[0].issue_number: "42" is not of type "integer""#),
            ("issue_requests.json", Box::new(|v| v["data"][0]["status"] = "done".into()), r#"issue_requests.json: data[0].status: "pending" was expected"#),
            ("notifications.json", Box::new(|v| v["data"][0]["channel_id"] = 5.into()), "notifications.json: data[0].channel_id: 5 is not of types \"null\", \"string\""),
            ("notifications.json", Box::new(|v| { v["data"][1].as_object_mut().unwrap().remove("sent_at"); }), r#"notifications.json: data[1]: "sent_at" is a required property"#),
            ("roles.json", Box::new(|v| v["data"][1]["roles"][0] = Value::Null), r#"roles.json: data[1].roles[0]: null is not of type "string""#),
            ("contributors.json", Box::new(|v| v["data"][0]["comments"] = (-1).into()), "contributors.json: data[0].comments: -1 is less than the minimum of 0"),
            ("identities.json", Box::new(|v| v["data"][0]["extra"] = 1.into()), "identities.json: data[0]: Additional properties are not allowed ('extra' was unexpected)"),
            ("meta.json", Box::new(|v| { v.as_object_mut().unwrap().remove("period_start"); }), r#"meta.json: "period_start" is a required property"#),
            ("contributors.json", Box::new(|v| v["data"] = Value::Null), r#"contributors.json: data: null is not of type "array""#),
        ];
        for (file, edit, want) in cases {
            let got = problems_of(&name, &edited(&entries, file, edit));
            assert_eq!(got.len(), 1, "{want}: {got:?}");
            assert!(got[0].starts_with(want), "want {want:?}, got {:?}", got[0]);
        }
    }

    #[test]
    fn headers_must_agree_and_match_the_directory_name() {
        let (name, entries) = basic();
        let other_run = "abc12345-def6-4890-a1b2-000000000000";
        let got = problems_of(
            &name,
            &edited(&entries, "scores.json", |v| v["run_id"] = other_run.into()),
        );
        assert_eq!(
            got,
            [format!(
                r#"scores.json: run_id "{other_run}" does not agree with meta.json ("abc12345-def6-4890-a1b2-c3d4e5f60718")"#
            )]
        );
        let got = problems_of(
            &name,
            &edited(&entries, "roles.json", |v| v["org"] = "other".into()),
        );
        assert_eq!(
            got,
            [r#"roles.json: org "other" does not agree with meta.json ("my-org")"#]
        );
        let got = problems_of("2024-01-31T12-00-01-abc12345", &entries);
        assert_eq!(
            got,
            ["snapshots/2024-01-31T12-00-01-abc12345: name does not agree with generated_at and run_id (expected 2024-01-31T12-00-00-abc12345)"]
        );
        // A well-formed but impossible time, and Python never writes ".000000".
        for bad in [
            "2024-13-31T12:00:00+00:00",
            "2024-01-31T12:00:00.000000+00:00",
        ] {
            let broken: Vec<(String, Entry)> = entries
                .iter()
                .map(|(n, e)| match e {
                    Entry::File(b) => {
                        let text = String::from_utf8(b.clone())
                            .unwrap()
                            .replace("2024-01-31T12:00:00+00:00", bad);
                        (n.clone(), Entry::File(text.into_bytes()))
                    }
                    other => (n.clone(), other.clone()),
                })
                .collect();
            assert_eq!(
                problems_of(&name, &broken),
                [format!(
                    "meta.json: generated_at {bad:?} is not a valid time"
                )]
            );
        }
    }

    #[test]
    fn unknown_versions_bad_json_and_wrong_entries_are_reported_once() {
        let (name, entries) = basic();
        let got = problems_of(
            &name,
            &edited(&entries, "meta.json", |v| {
                v["schema_version"] = "2.0.0".into()
            }),
        );
        assert_eq!(
            got,
            [
                r#"meta.json: schema_version "2.0.0" is not one this verify knows (1.0.0)"#,
                r#"identities.json: schema_version "1.0.0" does not agree with meta.json ("2.0.0")"#,
                r#"scores.json: schema_version "1.0.0" does not agree with meta.json ("2.0.0")"#,
                r#"contributors.json: schema_version "1.0.0" does not agree with meta.json ("2.0.0")"#,
                r#"roles.json: schema_version "1.0.0" does not agree with meta.json ("2.0.0")"#,
                r#"issue_requests.json: schema_version "1.0.0" does not agree with meta.json ("2.0.0")"#,
                r#"notifications.json: schema_version "1.0.0" does not agree with meta.json ("2.0.0")"#,
            ]
        );
        let mut broken = entries.clone();
        broken.retain(|(n, _)| n != "roles.json");
        broken.push(("notes.txt".into(), Entry::File(b"hi".to_vec())));
        broken.push(("old".into(), Entry::Other("subdirectory")));
        broken
            .iter_mut()
            .find(|(n, _)| n == "scores.json")
            .unwrap()
            .1 = Entry::File(b"{\"data\": [".to_vec());
        let got = problems_of(&name, &broken);
        assert_eq!(
            got,
            [
                "notes.txt: unexpected file; a snapshot holds exactly the seven files",
                "old: unexpected subdirectory; a snapshot holds exactly the seven files",
                "scores.json: not valid JSON: EOF while parsing a list at line 1 column 10",
                "roles.json: missing",
            ]
        );
    }

    #[test]
    fn a_systematically_wrong_file_lists_ten_problems_then_counts() {
        let (name, entries) = basic();
        let got = problems_of(
            &name,
            &edited(&entries, "roles.json", |v| {
                v["data"] = Value::Array((0..25).map(|_| Value::Null).collect())
            }),
        );
        assert_eq!(got.len(), 11, "{got:?}");
        assert_eq!(
            got[10],
            "roles.json: 15 more schema problem(s) in this file not listed"
        );
    }

    #[test]
    fn a_prune_commit_may_not_add_and_history_is_walked_oldest_first() {
        let (name, entries) = basic();
        let files: Vec<(String, Vec<u8>)> = entries
            .iter()
            .map(|(f, e)| match e {
                Entry::File(b) => (format!("snapshots/{name}/{f}"), b.clone()),
                Entry::Other(_) => unreachable!(),
            })
            .collect();
        let refs: Vec<(&str, &[u8])> = files
            .iter()
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect();
        let s = Scratch::new();
        s.commit("snapshot", &refs);
        let prune = s.commit(
            "prune\n\nGitcord-Snapshot-Prune: keep-last 0\n",
            &[("snapshots/stray", b"x"), ("README.md", b"hi")],
        );
        let schemas = Schemas::load().unwrap();
        let mut seen = Vec::new();
        let report = verify_history(&s.data_repo(), &schemas, None, &mut |i, n| {
            seen.push((i, n))
        })
        .unwrap();
        assert_eq!(seen, [(1, 2), (2, 2)]);
        assert_eq!((report.commits, report.snapshots), (2, 1));
        let got: Vec<(&str, &str, &str)> = report
            .problems
            .iter()
            .map(|p| (p.commit.as_str(), p.path.as_str(), p.problem.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    prune.as_str(),
                    "snapshots/stray",
                    "added by a prune commit; a prune may only remove whole snapshot directories"
                ),
                (
                    prune.as_str(),
                    "snapshots/stray",
                    "not a snapshot directory (a snapshot is a directory of seven files)"
                ),
            ]
        );
    }

    #[test]
    fn prune_trailer_needs_the_key_and_a_value() {
        assert!(is_prune_message(
            "Prune snapshots\n\nGitcord-Snapshot-Prune: keep-last 2\n"
        ));
        assert!(is_prune_message("Gitcord-Snapshot-Prune: older-than 90d"));
        assert!(!is_prune_message(
            "Prune snapshots\n\nGitcord-Snapshot-Prune:\n"
        ));
        assert!(!is_prune_message(
            "Prune snapshots\n\nGitcord-Snapshot-Prune keep-last 2\n"
        ));
        assert!(!is_prune_message("mentions Gitcord-Snapshot-Prune: inline"));
    }
}
