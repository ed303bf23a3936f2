//! Rebuilds Gitcord's `state.db` from a snapshot, for when the database itself is lost.
//!
//! A snapshot is a published copy of most of Gitcord's state, so it can be turned back into a
//! database Gitcord runs on: the same schema ([`GITCORD_SCHEMA`], Gitcord's own statements),
//! with the verified identity links, the latest scores, the pending issue requests and the
//! sent notifications (which stop Gitcord from notifying twice). What a snapshot does not hold
//! cannot come back: raw contributions (the snapshot has only per-user summaries) and the
//! ingestion cursor stay empty, and roles live in Discord, not in the database.
//!
//! The database is built under a temporary name beside the destination and renamed into place
//! only after the transaction has committed, so a crash never leaves a half-written database
//! where Gitcord would open it, and an existing file is never replaced.
//!
//! Every value keeps its JSON type (number → INTEGER or REAL, string → TEXT, null → NULL), so
//! exporting the restored database with the same roles, run id and time gives back the
//! snapshot's identities, scores, issue requests and notifications byte for byte.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::input::state::{ISSUE_REQUEST_COLUMNS, NOTIFICATION_COLUMNS};
use crate::snapshot::format::{
    Published, RowRead, IDENTITIES, ISSUE_REQUESTS, META, NOTIFICATIONS, SCORES,
};
#[cfg(test)]
use crate::snapshot::format::{CONTRIBUTORS, ROLES};
use crate::snapshot::model::Cell;
use crate::time;
use rusqlite::types::Value;
use rusqlite::{params, Connection, ErrorCode, OpenFlags};

/// Gitcord's schema: its `CREATE TABLE` / `CREATE INDEX` statements and migrations, verbatim,
/// so that a restored database is indistinguishable from one Gitcord created.
pub const GITCORD_SCHEMA: &str = include_str!("gitcord_schema.sql");

/// Why a database could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Restoring never replaces a file: it may be the database someone meant to keep.
    #[error(
        "{0} already exists; restore never overwrites a file (choose a path that does not exist)"
    )]
    Exists(PathBuf),
    /// There is no clone to restore from: the host lost it along with the database.
    #[error(
        "no clone of the data repository at {0}; if it was lost too, make one with \
         `git clone --bare <data repository URL> {0}/.git` (or pass --clone-dir)"
    )]
    NoClone(PathBuf),
    /// A snapshot file is missing or its content is not what the exporter writes.
    #[error("snapshot file {file}: {reason}")]
    Invalid {
        /// The file's name inside the snapshot, e.g. `scores.json`.
        file: String,
        /// What is wrong, with the JSON path and line where there is one.
        reason: String,
    },
    /// The filesystem refused (missing permission, full disk, ...).
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path being created or renamed.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// SQLite could not build the database.
    #[error("cannot write the database {path}: {source}")]
    Sqlite {
        /// The temporary file being written.
        path: PathBuf,
        /// SQLite's explanation.
        source: rusqlite::Error,
    },
}

/// How many rows of each kind were restored, for the operator's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct RestoreCounts {
    /// Verified identity links written.
    pub identities: usize,
    /// Identities left out because an earlier row already links the same Discord user to the
    /// same GitHub login (Gitcord's unique index allows only one).
    pub duplicate_identities: usize,
    /// Score rows written.
    pub scores: usize,
    /// Pending issue requests written.
    pub issue_requests: usize,
    /// Sent notifications written.
    pub notifications: usize,
}

/// Writes a new Gitcord database at `to` from a snapshot's files, given as (file name, bytes).
///
/// Every file is validated before anything is created. `to` must not exist; the database is
/// written into a temporary file in the same directory and renamed to `to` only once complete
/// and committed (journal mode `delete`, so no `-journal` file remains).
pub fn write_database(
    files: &[(String, Vec<u8>)],
    to: &Path,
) -> Result<RestoreCounts, RestoreError> {
    let snapshot = Parsed::from_files(files)?;
    if to.symlink_metadata().is_ok() {
        return Err(RestoreError::Exists(to.to_owned()));
    }
    let (tmp, dir) = temp_database(to)?;
    let counts = fill(&tmp, &snapshot)?;
    persist_new(tmp, to)?;
    // The rename is durable only once the directory is.
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    log::warn!(
        "contributions cannot be restored (a snapshot holds only per-user summaries): {} has no \
         contributions and no cursors",
        to.display()
    );
    Ok(counts)
}

/// Creates the schema and inserts every row in one transaction, then closes the database.
fn fill(path: &Path, snapshot: &Parsed) -> Result<RestoreCounts, RestoreError> {
    let sql = |source| RestoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    // The file exists (tempfile made it, empty); SQLite must not create anything else.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch(GITCORD_SCHEMA).map_err(sql)?;
    let mut counts = RestoreCounts::default();
    let at = &snapshot.generated_at;

    let mut seen = HashSet::new();
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO identity_links (discord_user_id, github_user, verified, verification_code, \
                 expires_at, created_at, verified_at, unlinked_at, github_user_normalized) \
                 VALUES (?1, ?2, 1, NULL, NULL, ?3, ?3, NULL, ?4)",
            )
            .map_err(sql)?;
        for (i, row) in snapshot.identities.iter().enumerate() {
            let normalized = normalize_login(&row.github_user);
            if !seen.insert((row.discord_user_id.as_str(), normalized.clone())) {
                counts.duplicate_identities += 1;
                continue;
            }
            insert
                .execute(params![
                    row.discord_user_id,
                    row.github_user,
                    at,
                    normalized
                ])
                .map_err(|e| row_err(IDENTITIES, i, e, path))?;
            counts.identities += 1;
        }
    }
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO scores (github_user, period_start, period_end, points, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(sql)?;
        for (i, row) in snapshot.scores.iter().enumerate() {
            insert
                .execute(params![
                    row.github_user,
                    row.period_start,
                    row.period_end,
                    row.points,
                    at
                ])
                .map_err(|e| row_err(SCORES, i, e, path))?;
            counts.scores += 1;
        }
    }
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO issue_requests (request_id, discord_user_id, github_user, owner, repo, \
                 issue_number, issue_url, created_at, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(sql)?;
        for (i, r) in snapshot.issue_requests.iter().enumerate() {
            insert
                .execute(params![
                    r.request_id,
                    r.discord_user_id,
                    r.github_user,
                    r.owner,
                    r.repo,
                    r.issue_number,
                    r.issue_url,
                    r.created_at,
                    r.status
                ])
                .map_err(|e| row_err(ISSUE_REQUESTS, i, e, path))?;
            counts.issue_requests += 1;
        }
    }
    {
        let mut insert = tx
            .prepare(
                "INSERT INTO notifications_sent (dedupe_key, event_type, github_user, discord_user_id, \
                 repo, target, channel_id, sent_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(sql)?;
        for (i, n) in snapshot.notifications.iter().enumerate() {
            insert
                .execute(params![
                    n.dedupe_key,
                    n.event_type,
                    n.github_user,
                    n.discord_user_id,
                    n.repo,
                    n.target,
                    n.channel_id,
                    n.sent_at
                ])
                .map_err(|e| row_err(NOTIFICATIONS, i, e, path))?;
            counts.notifications += 1;
        }
    }
    tx.commit().map_err(sql)?;
    conn.close().map_err(|(_, e)| sql(e))?;

    if counts.duplicate_identities > 0 {
        log::warn!(
            "{IDENTITIES}: left out {} row(s) linking a Discord user to a GitHub login already linked \
             in an earlier row (Gitcord keeps one link per pair)",
            counts.duplicate_identities
        );
    }
    Ok(counts)
}

/// Removes what a killed restore left beside its destination: temporary databases under our
/// own prefix (and their SQLite journals), which nothing else creates.
fn remove_leftovers(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    // Only files older than a minute: a restore running next to this one keeps its own.
    let old = |e: &std::fs::DirEntry| {
        e.metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() >= 60)
    };
    for e in entries.filter_map(Result::ok) {
        if e.file_name().to_string_lossy().starts_with(prefix) && old(&e) {
            log::warn!(
                "removing {} left by an interrupted restore",
                e.path().display()
            );
            if let Err(err) = std::fs::remove_file(e.path()) {
                log::warn!("cannot remove {}: {err}", e.path().display());
            }
        }
    }
}

/// A repeated primary key is the snapshot's fault (exit 65, naming the file); anything else
/// is a failure to write.
fn row_err(file: &str, i: usize, e: rusqlite::Error, path: &Path) -> RestoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => invalid(
            file,
            format!("data[{i}] repeats the key of an earlier row ({e})"),
        ),
        _ => RestoreError::Sqlite {
            path: path.to_owned(),
            source: e,
        },
    }
}

/// `github_user_normalized` as Gitcord computes it when it links an identity:
/// Python's `github_user.strip().lower()` (full Unicode lower-casing), so Gitcord's lookups
/// by normalized login find the restored rows.
fn normalize_login(login: &str) -> String {
    // Python's str.isspace() also counts the separators U+001C..U+001F.
    login
        .trim_matches(|c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c))
        .to_lowercase()
}

fn invalid(file: &str, reason: impl Into<String>) -> RestoreError {
    RestoreError::Invalid {
        file: file.to_owned(),
        reason: reason.into(),
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RestoreError + '_ {
    move |source| RestoreError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A verified identity link, as the database stores it.
struct Identity {
    discord_user_id: String,
    github_user: String,
}

/// A score row, as the database stores it.
struct Score {
    github_user: String,
    period_start: String,
    period_end: String,
    points: Value,
}

/// A pending issue request, as the database stores it.
struct IssueRequest {
    created_at: String,
    discord_user_id: String,
    github_user: String,
    issue_number: Value,
    issue_url: String,
    owner: String,
    repo: String,
    request_id: String,
    status: String,
}

/// A sent notification, as the database stores it.
struct Notification {
    channel_id: Option<String>,
    dedupe_key: String,
    discord_user_id: String,
    event_type: String,
    github_user: String,
    repo: String,
    sent_at: String,
    target: String,
}

/// What a restored column must hold. Restoring is stricter than reading: a value that would
/// change type in the database, or a column Gitcord's schema has no place for, is refused.
fn text(file: &str, i: usize, column: &str, cell: &Cell) -> Result<String, RestoreError> {
    match cell {
        Cell::Text(t) => Ok(t.clone()),
        other => Err(invalid(
            file,
            format!(
                "data[{i}].{column}: expected a string, found {}",
                kind(other)
            ),
        )),
    }
}

fn optional_text(
    file: &str,
    i: usize,
    column: &str,
    cell: &Cell,
) -> Result<Option<String>, RestoreError> {
    match cell {
        Cell::Null => Ok(None),
        other => text(file, i, column, other).map(Some),
    }
}

/// A number as SQLite stores it: INTEGER when it is one, else REAL.
fn number(file: &str, i: usize, column: &str, cell: &Cell) -> Result<Value, RestoreError> {
    match cell {
        Cell::Int(n) => Ok(Value::Integer(*n)),
        Cell::Real(x) if x.is_finite() => Ok(Value::Real(*x)),
        other => Err(invalid(
            file,
            format!(
                "data[{i}].{column}: expected a number, found {}",
                kind(other)
            ),
        )),
    }
}

fn kind(cell: &Cell) -> &'static str {
    match cell {
        Cell::Null => "null",
        Cell::Int(_) | Cell::Real(_) => "a number",
        Cell::Text(_) => "a string",
    }
}

/// Refuses fields of a newer format that the database has no column for.
fn no_extra(
    file: &str,
    i: usize,
    extra: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<(), RestoreError> {
    match extra.keys().next() {
        Some(unknown) => Err(invalid(
            file,
            format!("data[{i}]: unknown field {unknown:?}; Gitcord's schema has no place for it"),
        )),
        None => Ok(()),
    }
}

/// The columns of a copied row, each present, none unknown.
fn columns<'r>(
    file: &str,
    i: usize,
    row: &'r RowRead,
    known: &[&str],
) -> Result<impl Fn(&str) -> &'r Cell + 'r, RestoreError> {
    if let Some(unknown) = row.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(invalid(
            file,
            format!("data[{i}]: unknown column {unknown:?}; Gitcord's schema has no place for it"),
        ));
    }
    if let Some(missing) = known.iter().find(|k| !row.contains_key(**k)) {
        return Err(invalid(
            file,
            format!("data[{i}]: missing field `{missing}`"),
        ));
    }
    Ok(move |column: &str| row.get(column).unwrap_or(&Cell::Null))
}

/// A snapshot's files, validated and ready to insert.
struct Parsed {
    /// The snapshot time in Gitcord's `isoformat()`, used for every "when written" column.
    generated_at: String,
    identities: Vec<Identity>,
    scores: Vec<Score>,
    issue_requests: Vec<IssueRequest>,
    notifications: Vec<Notification>,
}

impl Parsed {
    fn from_files(files: &[(String, Vec<u8>)]) -> Result<Parsed, RestoreError> {
        let published = Published::read(files).map_err(|e| invalid(e.file, e.reason))?;
        let meta = &published.meta;
        let at = time::parse_stored(&meta.generated_at).ok_or_else(|| {
            invalid(
                META,
                format!("generated_at {:?} is not a timestamp", meta.generated_at),
            )
        })?;
        let mut identities = Vec::new();
        for (i, r) in published.identities.iter().enumerate() {
            no_extra(IDENTITIES, i, &r.extra)?;
            identities.push(Identity {
                discord_user_id: text(IDENTITIES, i, "discord_user_id", &r.discord_user_id)?,
                github_user: text(IDENTITIES, i, "github_user", &r.github_user)?,
            });
        }
        // String order is byte order, SQLite's BINARY collation, the exporter's order.
        let ordered = |a: &Identity, b: &Identity| {
            (&a.discord_user_id, &a.github_user) <= (&b.discord_user_id, &b.github_user)
        };
        if !identities.windows(2).all(|w| ordered(&w[0], &w[1])) {
            log::warn!(
                "{IDENTITIES} is not in state.db order, so it probably came from the config's identity_mappings \
                 (Gitcord's fallback when no link is verified); restoring its rows as verified links"
            );
        }
        let mut scores = Vec::new();
        for (i, r) in published.scores.iter().enumerate() {
            no_extra(SCORES, i, &r.extra)?;
            scores.push(Score {
                github_user: text(SCORES, i, "github_user", &r.github_user)?,
                period_start: text(SCORES, i, "period_start", &r.period_start)?,
                period_end: text(SCORES, i, "period_end", &r.period_end)?,
                points: number(SCORES, i, "points", &r.points)?,
            });
        }
        for (i, s) in scores.iter().enumerate() {
            for (column, text) in [
                ("period_start", &s.period_start),
                ("period_end", &s.period_end),
            ] {
                if time::parse_stored(text).is_none() {
                    return Err(invalid(
                        SCORES,
                        format!("data[{i}].{column} {text:?} is not a timestamp"),
                    ));
                }
            }
        }
        let mut issue_requests = Vec::new();
        for (i, row) in published.issue_requests.iter().enumerate() {
            let get = columns(ISSUE_REQUESTS, i, row, ISSUE_REQUEST_COLUMNS)?;
            let t = |c: &str| text(ISSUE_REQUESTS, i, c, get(c));
            issue_requests.push(IssueRequest {
                created_at: t("created_at")?,
                discord_user_id: t("discord_user_id")?,
                github_user: t("github_user")?,
                issue_number: number(ISSUE_REQUESTS, i, "issue_number", get("issue_number"))?,
                issue_url: t("issue_url")?,
                owner: t("owner")?,
                repo: t("repo")?,
                request_id: t("request_id")?,
                status: t("status")?,
            });
        }
        if let Some((i, r)) = issue_requests
            .iter()
            .enumerate()
            .find(|(_, r)| r.status != "pending")
        {
            return Err(invalid(
                ISSUE_REQUESTS,
                format!(
                    "data[{i}].status is {:?}; a snapshot holds only pending requests",
                    r.status
                ),
            ));
        }
        let mut notifications = Vec::new();
        for (i, row) in published.notifications.iter().enumerate() {
            let get = columns(NOTIFICATIONS, i, row, NOTIFICATION_COLUMNS)?;
            let t = |c: &str| text(NOTIFICATIONS, i, c, get(c));
            notifications.push(Notification {
                channel_id: optional_text(NOTIFICATIONS, i, "channel_id", get("channel_id"))?,
                dedupe_key: t("dedupe_key")?,
                discord_user_id: t("discord_user_id")?,
                event_type: t("event_type")?,
                github_user: t("github_user")?,
                repo: t("repo")?,
                sent_at: t("sent_at")?,
                target: t("target")?,
            });
        }
        Ok(Parsed {
            generated_at: time::isoformat(&at),
            identities,
            scores,
            issue_requests,
            notifications,
        })
    }
}

/// The rows of a data file whose header matches `meta.json`.
/// An empty temporary file beside `to` (its directory created if need be) for a database to be
/// built in and then renamed to `to` ([`persist_new`]); leftovers of a killed restore with the
/// same prefix are removed first. Returns the file's path and its directory.
pub(crate) fn temp_database(to: &Path) -> Result<(tempfile::TempPath, PathBuf), RestoreError> {
    let dir = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let name = to
        .file_name()
        .map_or_else(|| "state.db".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.restore-");
    remove_leftovers(dir, &prefix);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    // What SQLite itself would create (0644, less the umask), not tempfile's private 0600.
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    // Only the path is kept: an open descriptor of ours on the file, closed while SQLite
    // holds it, would drop SQLite's POSIX locks. Dropping the path removes the file.
    let tmp = builder
        .tempfile_in(dir)
        .map_err(io_err(dir))?
        .into_temp_path();
    Ok((tmp, dir.to_owned()))
}

/// Renames the finished temporary database `tmp` to `to`, which must not exist: restore never
/// overwrites (a file that appeared meanwhile is [`RestoreError::Exists`]).
pub(crate) fn persist_new(tmp: tempfile::TempPath, to: &Path) -> Result<(), RestoreError> {
    tmp.persist_noclobber(to).map_err(|e| match e.error.kind() {
        std::io::ErrorKind::AlreadyExists => RestoreError::Exists(to.to_owned()),
        _ => RestoreError::Io {
            path: to.to_owned(),
            source: e.error,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2024-01-31T12:00:00+00:00";

    fn file(data: &str) -> Vec<u8> {
        format!(r#"{{"data": {data}, "generated_at": "{AT}", "org": "o", "run_id": "r", "schema_version": "1.0.0"}}"#)
            .into_bytes()
    }

    /// A snapshot with these `data` arrays (JSON text) for the four restored files.
    fn snapshot(
        identities: &str,
        scores: &str,
        issues: &str,
        notifications: &str,
    ) -> Vec<(String, Vec<u8>)> {
        let meta = format!(
            r#"{{"generated_at": "{AT}", "org": "o", "period_end": "{AT}", "period_start": "{AT}", "run_id": "r", "schema_version": "1.0.0"}}"#
        );
        vec![
            (META.into(), meta.into_bytes()),
            (IDENTITIES.into(), file(identities)),
            (SCORES.into(), file(scores)),
            (CONTRIBUTORS.into(), file("[]")),
            (ROLES.into(), file("[]")),
            (ISSUE_REQUESTS.into(), file(issues)),
            (NOTIFICATIONS.into(), file(notifications)),
        ]
    }

    fn score(user: &str, points: &str) -> String {
        let start = "2024-01-01T12:00:00+00:00";
        format!(
            r#"{{"github_user": "{user}", "period_end": "{AT}", "period_start": "{start}", "points": {points}}}"#
        )
    }

    type Files = Vec<(String, Vec<u8>)>;

    fn restore(
        files: &[(String, Vec<u8>)],
    ) -> (tempfile::TempDir, Result<RestoreCounts, RestoreError>) {
        let dir = tempfile::tempdir().unwrap();
        let result = write_database(files, &dir.path().join("state.db"));
        (dir, result)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn invalid_file(result: Result<RestoreCounts, RestoreError>) -> (String, String) {
        match result {
            Err(RestoreError::Invalid { file, reason }) => (file, reason),
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn numbers_keep_their_sqlite_type() {
        let scores = format!(
            "[{}, {}, {}]",
            score("a", "1.5"),
            score("b", "9007199254740993"),
            score("c", "-3")
        );
        let issues = r#"[{"created_at": "x", "discord_user_id": "1", "github_user": "a", "issue_number": 7,
            "issue_url": "u", "owner": "o", "repo": "r", "request_id": "q", "status": "pending"}]"#;
        let notes = r#"[{"channel_id": null, "dedupe_key": "k", "discord_user_id": "1", "event_type": "e",
            "github_user": "a", "repo": "r", "sent_at": "s", "target": ""}]"#;
        let (dir, result) = restore(&snapshot("[]", &scores, issues, notes));
        let counts = result.unwrap();
        assert_eq!(
            (counts.scores, counts.issue_requests, counts.notifications),
            (3, 1, 1)
        );
        let conn = Connection::open(dir.path().join("state.db")).unwrap();
        let points: Vec<(String, String)> = conn
            .prepare("SELECT typeof(points), CAST(points AS TEXT) FROM scores ORDER BY github_user")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            points,
            [
                ("real".into(), "1.5".into()),
                ("integer".into(), "9007199254740993".into()),
                ("integer".into(), "-3".into())
            ]
        );
        let row: (String, String, String) = conn
            .query_row(
                "SELECT typeof(issue_number), (SELECT typeof(channel_id) || typeof(target) FROM notifications_sent), \
                 (SELECT updated_at FROM scores LIMIT 1) FROM issue_requests",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(row, ("integer".into(), "nulltext".into(), AT.into()));
    }

    #[test]
    fn shapes_that_are_not_the_exporters_are_refused_naming_the_file() {
        let mut trailing = snapshot("[]", "[]", "[]", "[]");
        trailing[6].1.extend_from_slice(b" {}");
        let cases: [(Files, &str, &str); 8] = [
            (
                snapshot("[]", &format!("[{}]", score("a", "\"5\"")), "[]", "[]"),
                SCORES,
                "data[0].points",
            ),
            (
                snapshot(
                    "[]",
                    &format!("[{}]", score("a", "18446744073709551615")),
                    "[]",
                    "[]",
                ),
                SCORES,
                "64-bit",
            ),
            (
                snapshot(
                    r#"[{"discord_user_id": 1, "github_user": "a"}]"#,
                    "[]",
                    "[]",
                    "[]",
                ),
                IDENTITIES,
                "data[0].discord_user_id",
            ),
            (
                snapshot(
                    r#"[{"discord_user_id": "1", "github_user": "a", "x": 1}]"#,
                    "[]",
                    "[]",
                    "[]",
                ),
                IDENTITIES,
                "x",
            ),
            (
                snapshot(
                    "[]",
                    &format!("[{}]", score("a", "1").replace(AT, "soon")),
                    "[]",
                    "[]",
                ),
                SCORES,
                "period_end",
            ),
            (snapshot("{}", "[]", "[]", "[]"), IDENTITIES, "data"),
            (
                snapshot("[]", "[]", "[]", "[] x"),
                NOTIFICATIONS,
                "line 1 column",
            ),
            (trailing, NOTIFICATIONS, "trailing"),
        ];
        for (files, want_file, fragment) in cases {
            let (dir, result) = restore(&files);
            let (file, reason) = invalid_file(result);
            assert_eq!(file, want_file, "{reason}");
            assert!(reason.contains(fragment), "{fragment:?} not in {reason:?}");
            assert!(
                names(dir.path()).is_empty(),
                "nothing is created for an invalid snapshot"
            );
        }
    }

    #[test]
    fn header_problems_are_refused() {
        let mut files = snapshot("[]", "[]", "[]", "[]");
        files[2].1 = String::from_utf8(files[2].1.clone())
            .unwrap()
            .replace("1.0.0", "2.0.0")
            .into_bytes();
        assert!(invalid_file(restore(&files).1)
            .1
            .contains("schema_version \"2.0.0\""));
        let mut files = snapshot("[]", "[]", "[]", "[]");
        files.retain(|(n, _)| n != NOTIFICATIONS);
        assert_eq!(
            invalid_file(restore(&files).1),
            (
                NOTIFICATIONS.to_owned(),
                "is missing from the snapshot".to_owned()
            )
        );
        let issue = r#"[{"created_at": "x", "discord_user_id": "1", "github_user": "a", "issue_number": 7,
            "issue_url": "u", "owner": "o", "repo": "r", "request_id": "q", "status": "approved"}]"#;
        let (file, reason) = invalid_file(restore(&snapshot("[]", "[]", issue, "[]")).1);
        assert_eq!(file, ISSUE_REQUESTS);
        assert!(reason.contains("\"approved\""), "{reason}");
    }

    #[test]
    fn a_repeated_key_fails_without_leaving_a_file() {
        let scores = format!("[{}, {}]", score("a", "1"), score("a", "2"));
        let (dir, result) = restore(&snapshot("[]", &scores, "[]", "[]"));
        let (file, reason) = invalid_file(result);
        assert_eq!(file, SCORES);
        assert!(reason.starts_with("data[1] repeats the key"), "{reason}");
        assert!(names(dir.path()).is_empty(), "left {:?}", names(dir.path()));
    }

    #[test]
    fn one_link_per_discord_user_and_login_regardless_of_case() {
        let ids = r#"[{"discord_user_id": "1", "github_user": "Alice"}, {"discord_user_id": "1", "github_user": "alice "},
            {"discord_user_id": "2", "github_user": "alice"}]"#;
        let (dir, result) = restore(&snapshot(ids, "[]", "[]", "[]"));
        let counts = result.unwrap();
        assert_eq!((counts.identities, counts.duplicate_identities), (2, 1));
        let conn = Connection::open(dir.path().join("state.db")).unwrap();
        let rows: Vec<(String, String, String)> = conn
            .prepare("SELECT discord_user_id, github_user, github_user_normalized FROM identity_links ORDER BY 1")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            rows,
            [
                ("1".into(), "Alice".into(), "alice".into()),
                ("2".into(), "alice".into(), "alice".into())
            ]
        );
    }

    #[test]
    fn logins_normalize_like_python_strip_lower() {
        assert_eq!(normalize_login("  Zoë\t"), "zoë");
        assert_eq!(normalize_login("\u{1f}ØRG\u{3000}"), "ørg");
        assert_eq!(normalize_login("İ"), "i\u{307}");
    }

    #[test]
    fn an_existing_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let to = dir.path().join("state.db");
        std::fs::write(&to, b"keep").unwrap();
        let err = write_database(&snapshot("[]", "[]", "[]", "[]"), &to).unwrap_err();
        assert!(matches!(err, RestoreError::Exists(_)), "{err}");
        assert_eq!(std::fs::read(&to).unwrap(), b"keep");
        assert_eq!(names(dir.path()), ["state.db"]);
    }

    #[test]
    fn the_schema_is_gitcords() {
        let (dir, result) = restore(&snapshot("[]", "[]", "[]", "[]"));
        assert_eq!(result.unwrap(), RestoreCounts::default());
        let sql = |path: &Path| -> Vec<Option<String>> {
            let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
            let mut stmt = conn
                .prepare("SELECT sql FROM sqlite_master ORDER BY rowid")
                .unwrap();
            stmt.query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        let gitcord =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance/empty/state.db");
        assert_eq!(sql(&dir.path().join("state.db")), sql(&gitcord));
        assert_eq!(names(dir.path()), ["state.db"]);
    }
}
