//! Reading backups back: [`restore`] rebuilds `state.db` (and the audit log) exactly as it was
//! when a snapshot was taken, and [`verify_branch`] checks every backup commit's integrity.
//!
//! Restore creates the schema from the manifest's `sqlite_master` rows, in their order and with
//! their stored text, inserts every row with its rowid and its SQLite type in one transaction,
//! and sets `user_version`, so `sqlite3 .dump` of the result equals the original's (except the
//! secret column, which comes back NULL). It builds under a temporary name beside the
//! destination and renames into place only once committed; nothing existing is overwritten.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Oid, Repository, Tree};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};

use crate::input::state::backup::quote;
use crate::maintenance::restore::RestoreError;
use crate::maintenance::verify::Problem;
use crate::publish::backup::{read_manifest, Found};
use crate::snapshot::backup::{self as format, decode_row, Decoded, Manifest};

/// What a restore from a backup wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Restored {
    /// The backup commit restored from.
    pub commit: String,
    /// Rows per table, in schema order.
    pub tables: Vec<(String, u64)>,
    /// `(discord_user_id, github_user)` of pending identity claims whose code was not
    /// published: they must be started again.
    pub pending_verifications: Vec<(String, String)>,
    /// The audit log written, and its line count.
    pub audit_log: Option<(PathBuf, u64)>,
}

fn invalid(file: impl Into<String>, reason: impl Into<String>) -> RestoreError {
    RestoreError::Invalid {
        file: file.into(),
        reason: reason.into(),
    }
}

fn git_err(what: &str, e: git2::Error) -> RestoreError {
    invalid(what, e.message().to_owned())
}

/// Every chunk file under a table's (or the audit log's) tree: `(path, blob id)`, in path
/// order.
fn files_under(
    repo: &Repository,
    tree: &Tree<'_>,
    prefix: &str,
    out: &mut Vec<(String, Oid)>,
) -> Result<(), git2::Error> {
    for e in tree.iter() {
        let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
        let path = format!("{prefix}/{name}");
        match e.kind() {
            Some(ObjectType::Tree) => {
                let sub = repo.find_tree(e.id())?;
                files_under(repo, &sub, &path, out)?;
            }
            _ => out.push((path, e.id())),
        }
    }
    Ok(())
}

/// A table's chunk files in rowid order: `(path, lo, hi, blob)`.
fn table_chunks(
    repo: &Repository,
    manifest_tree: &str,
    dir: &str,
) -> Result<Vec<(String, i64, i64, Oid)>, RestoreError> {
    let what = format!("{}/{dir}", format::TABLES_DIR);
    let oid = Oid::from_str(manifest_tree).map_err(|e| git_err(&what, e))?;
    let tree = repo.find_tree(oid).map_err(|e| git_err(&what, e))?;
    let mut files = Vec::new();
    files_under(repo, &tree, &what, &mut files).map_err(|e| git_err(&what, e))?;
    let mut out = Vec::with_capacity(files.len());
    for (path, blob) in files {
        let name = path.rsplit('/').next().unwrap_or_default();
        let (lo, hi) = format::parse_range_name(name)
            .filter(|_| name.ends_with(".jsonl"))
            .ok_or_else(|| invalid(&path, "is not a chunk file of this format"))?;
        out.push((path, lo, hi, blob));
    }
    out.sort_by_key(|c| c.1);
    Ok(out)
}

/// Rebuilds the database of backup `found` at `to`, and its audit log at `audit_to`. Neither
/// may exist.
pub fn restore(
    repo: &Repository,
    found: &Found,
    to: &Path,
    audit_to: &Path,
) -> Result<Restored, RestoreError> {
    let m = &found.manifest;
    if to.symlink_metadata().is_ok() {
        return Err(RestoreError::Exists(to.to_owned()));
    }
    if m.audit.is_some() && audit_to.symlink_metadata().is_ok() {
        return Err(RestoreError::Exists(audit_to.to_owned()));
    }
    let (tmp, dir) = crate::maintenance::restore::temp_database(to)?;
    let mut out = fill(repo, m, &tmp)?;
    out.commit = found.commit.to_string();
    if let Ok(f) = std::fs::File::open(&tmp) {
        let _ = f.sync_all();
    }
    let audit = match &m.audit {
        Some(entry) => Some(audit_bytes(repo, entry)?),
        None => None,
    };
    crate::maintenance::restore::persist_new(tmp, to)?;
    if let Some((bytes, lines)) = audit {
        write_new(audit_to, &bytes)?;
        out.audit_log = Some((audit_to.to_owned(), lines));
    }
    if let Ok(d) = std::fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(out)
}

/// Writes a file that must not exist yet: whole (temporary file, renamed without clobbering)
/// or not at all.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), RestoreError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let io = |source| RestoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-restore-")
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(io)?;
    tmp.persist_noclobber(path)
        .map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => RestoreError::Exists(path.to_owned()),
            _ => io(e.error),
        })?;
    Ok(())
}

/// The audit log's bytes, checked against the manifest, and its line count.
fn audit_bytes(
    repo: &Repository,
    entry: &format::AuditEntry,
) -> Result<(Vec<u8>, u64), RestoreError> {
    let what = format::AUDIT_DIR;
    let mut bytes = Vec::with_capacity(entry.bytes as usize);
    if let Some(tree) = &entry.tree {
        let oid = Oid::from_str(tree).map_err(|e| git_err(what, e))?;
        let tree = repo.find_tree(oid).map_err(|e| git_err(what, e))?;
        let mut files = Vec::new();
        files_under(repo, &tree, what, &mut files).map_err(|e| git_err(what, e))?;
        for (path, blob) in files {
            let blob = repo.find_blob(blob).map_err(|e| git_err(&path, e))?;
            bytes.extend_from_slice(blob.content());
        }
    }
    let lines = bytes.iter().filter(|b| **b == b'\n').count() as u64;
    if bytes.len() as u64 != entry.bytes || lines != entry.lines {
        return Err(invalid(
            what,
            format!(
                "holds {} bytes in {lines} lines, the manifest says {} in {}",
                bytes.len(),
                entry.bytes,
                entry.lines
            ),
        ));
    }
    Ok((bytes, lines))
}

fn fill(repo: &Repository, m: &Manifest, path: &Path) -> Result<Restored, RestoreError> {
    let sql = |source| RestoreError::Sqlite {
        path: path.to_owned(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(sql)?;
    // The file is renamed into place only once complete and synced: no journal needed.
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .map_err(sql)?;
    // The rows are written as they were, not as the database's own triggers would change them
    // (a trigger is schema, and comes back as schema); defensive mode, so nothing in a backup
    // can write SQLite's internals.
    use rusqlite::config::DbConfig;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)
        .map_err(sql)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .map_err(sql)?;
    let tx = conn.transaction().map_err(sql)?;
    for row in &m.schema {
        // `ANALYZE` is what makes sqlite_stat1 (its rows are replaced below); SQLite makes its
        // other own objects (sqlite_sequence, automatic indexes) itself.
        if row.kind == "table" && row.name == "sqlite_stat1" {
            tx.execute_batch("ANALYZE sqlite_schema").map_err(sql)?;
            continue;
        }
        if row.name.starts_with("sqlite_") {
            continue;
        }
        if let Some(text) = &row.sql {
            // One CREATE statement each, as SQLite stores them: nothing else in a backup (which
            // anyone able to push to the data repository could have written) is run.
            let create = text
                .trim_start()
                .get(..7)
                .is_some_and(|w| w.eq_ignore_ascii_case("CREATE "));
            let made = match create {
                true => tx.execute(text, []).map(|_| ()),
                false => Err(rusqlite::Error::InvalidQuery),
            };
            made.map_err(|e| {
                invalid(
                    format::MANIFEST,
                    format!("the schema of {} cannot be created: {e}", row.name),
                )
            })?;
        }
    }
    tx.pragma_update(None, "user_version", m.user_version)
        .map_err(sql)?;
    let mut out = Restored::default();
    // sqlite_sequence and sqlite_stat1 last: inserting rows into AUTOINCREMENT tables updates
    // the one, and the other is what ANALYZE found then, not now.
    let mut order: Vec<&format::TableEntry> = m.tables.iter().collect();
    order.sort_by_key(|t| matches!(t.name.as_str(), "sqlite_sequence" | "sqlite_stat1"));
    let mut counts = HashMap::new();
    for t in order {
        let n = restore_table(repo, &tx, t, &mut out.pending_verifications)?;
        counts.insert(t.name.clone(), n);
    }
    out.tables = m
        .tables
        .iter()
        .map(|t| (t.name.clone(), counts.get(&t.name).copied().unwrap_or(0)))
        .collect();
    // The schema must have come out exactly as it was (`.schema`, `.dump`).
    let mut stmt = tx
        .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
        .map_err(sql)?;
    let made: Vec<(String, String, String, Option<String>)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    drop(stmt);
    let want: Vec<(String, String, String, Option<String>)> = m
        .schema
        .iter()
        .map(|r| {
            (
                r.kind.clone(),
                r.name.clone(),
                r.tbl_name.clone(),
                r.sql.clone(),
            )
        })
        .collect();
    if made != want {
        return Err(invalid(
            format::MANIFEST,
            "the restored schema differs from the backed-up sqlite_master".to_owned(),
        ));
    }
    tx.commit().map_err(sql)?;
    conn.close().map_err(|(_, e)| sql(e))?;
    Ok(out)
}

fn restore_table(
    repo: &Repository,
    tx: &rusqlite::Transaction<'_>,
    t: &format::TableEntry,
    pending: &mut Vec<(String, String)>,
) -> Result<u64, RestoreError> {
    let sqlerr =
        |e: rusqlite::Error| invalid(format!("{}/{}", format::TABLES_DIR, t.dir), e.to_string());
    let made: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")
            .map_err(sqlerr)?;
        let names = stmt
            .query_map([&t.name], |r| r.get(0))
            .map_err(sqlerr)?
            .collect::<Result<Vec<String>, _>>()
            .map_err(sqlerr)?;
        names
    };
    if made != t.columns {
        return Err(invalid(
            format::MANIFEST,
            format!(
                "table {} has columns {:?} in the schema but {:?} in its entry",
                t.name, made, t.columns
            ),
        ));
    }
    if matches!(t.name.as_str(), "sqlite_sequence" | "sqlite_stat1") {
        tx.execute_batch(&format!("DELETE FROM {}", t.name))
            .map_err(sqlerr)?;
    }
    let Some(tree) = &t.tree else {
        return match t.rows {
            0 => Ok(0),
            n => Err(invalid(
                format::MANIFEST,
                format!("table {} has {n} rows but no tree", t.name),
            )),
        };
    };
    let rowid = ["rowid", "_rowid_", "oid"]
        .into_iter()
        .find(|n| !t.columns.iter().any(|c| c.eq_ignore_ascii_case(n)))
        .unwrap_or("rowid");
    let cols: Vec<String> = t.columns.iter().map(|c| quote(c)).collect();
    let placeholders = vec!["?"; t.columns.len() + 1].join(", ");
    let insert_sql = format!(
        "INSERT INTO {} ({rowid}, {}) VALUES ({placeholders})",
        quote(&t.name),
        cols.join(", ")
    );
    let mut insert = tx.prepare(&insert_sql).map_err(sqlerr)?;
    let who = (
        t.columns.iter().position(|c| c == "discord_user_id"),
        t.columns.iter().position(|c| c == "github_user"),
    );
    let mut rows = 0u64;
    let mut last: Option<i64> = None;
    for (path, lo, hi, blob) in table_chunks(repo, tree, &t.dir)? {
        let blob = repo.find_blob(blob).map_err(|e| git_err(&path, e))?;
        for (i, line) in blob.content().split(|b| *b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let bad = |reason: String| invalid(&path, format!("line {}: {reason}", i + 1));
            let (id, values) = decode_row(line).map_err(bad)?;
            if id < lo || id > hi || last.is_some_and(|l| id <= l) {
                return Err(bad(format!(
                    "rowid {id} is out of order or outside {lo}..{hi}"
                )));
            }
            last = Some(id);
            if values.len() != t.columns.len() {
                return Err(bad(format!(
                    "{} values for {} columns",
                    values.len(),
                    t.columns.len()
                )));
            }
            let mut params: Vec<Value> = Vec::with_capacity(values.len() + 1);
            params.push(Value::Integer(id));
            let mut raw_text = Vec::new();
            let mut redacted = false;
            for (c, v) in values.into_iter().enumerate() {
                params.push(match v {
                    Decoded::Value(v) => v,
                    Decoded::Redacted => {
                        redacted = true;
                        Value::Null
                    }
                    Decoded::RawText(bytes) => {
                        raw_text.push(c + 1);
                        Value::Blob(bytes)
                    }
                });
            }
            if redacted {
                if let (Some(d), Some(g)) = who {
                    let text = |v: &Value| match v {
                        Value::Text(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    pending.push((text(&params[d + 1]), text(&params[g + 1])));
                }
            }
            if raw_text.is_empty() {
                insert
                    .execute(rusqlite::params_from_iter(params.iter()))
                    .map_err(|e| bad(e.to_string()))?;
            } else {
                // TEXT whose bytes are not UTF-8: bound as bytes and cast, which keeps them.
                let values: Vec<String> = (0..params.len())
                    .map(|i| match raw_text.contains(&i) {
                        true => "CAST(? AS TEXT)".to_owned(),
                        false => "?".to_owned(),
                    })
                    .collect();
                let one = format!(
                    "INSERT INTO {} ({rowid}, {}) VALUES ({})",
                    quote(&t.name),
                    cols.join(", "),
                    values.join(", ")
                );
                tx.execute(&one, rusqlite::params_from_iter(params.iter()))
                    .map_err(|e| bad(e.to_string()))?;
            }
            rows += 1;
        }
    }
    if rows != t.rows {
        return Err(invalid(
            format!("{}/{}", format::TABLES_DIR, t.dir),
            format!("holds {rows} rows, the manifest says {}", t.rows),
        ));
    }
    Ok(rows)
}

/// Checks every backup commit reachable from `tip`: everything its manifest names is present
/// and is what it names (git ids; every blob is read, which checks its hash), every chunk parses
/// and holds rowids in its range, and the counts add up. Trees already checked are not read
/// again. Returns how many commits were checked.
pub fn verify_branch(
    repo: &Repository,
    tip: Oid,
    problems: &mut Vec<Problem>,
) -> Result<usize, git2::Error> {
    let mut walk = repo.revwalk()?;
    walk.push(tip)?;
    let mut seen: HashMap<(Oid, usize), Result<(u64, u64), String>> = HashMap::new();
    let mut blobs = BlobChecks::new();
    let mut commits = 0;
    for oid in walk {
        let oid = oid?;
        commits += 1;
        let commit = repo.find_commit(oid)?;
        let mut problem = |path: &str, what: String| {
            problems.push(Problem {
                commit: oid.to_string(),
                path: path.to_owned(),
                problem: what,
            })
        };
        let tree = commit.tree()?;
        let m = match read_manifest(repo, &tree) {
            Ok(m) => m,
            Err(e) => {
                problem(format::MANIFEST, e.to_string());
                continue;
            }
        };
        let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
        if format::snapshot_of_message(&message) != Some(m.snapshot.name.as_str()) {
            problem(
                "",
                format!(
                    "the commit message does not name snapshot {}",
                    m.snapshot.name
                ),
            );
        }
        let tables_tree = tree
            .get_name(format::TABLES_DIR)
            .and_then(|e| repo.find_tree(e.id()).ok());
        let mut named = 0;
        for t in &m.tables {
            let path = format!("{}/{}", format::TABLES_DIR, t.dir);
            let actual = tables_tree
                .as_ref()
                .and_then(|tt| tt.get_name(&t.dir))
                .map(|e| e.id());
            let Some(want) = &t.tree else {
                if actual.is_some() || t.rows != 0 {
                    problem(
                        &path,
                        "the manifest names no tree for this table but it has rows or a directory"
                            .into(),
                    );
                }
                continue;
            };
            named += 1;
            if actual.map(|a| a.to_string()).as_deref() != Some(want.as_str()) {
                problem(
                    &path,
                    format!("is missing or is not tree {want} as the manifest says"),
                );
                continue;
            }
            let key = (actual.unwrap_or_else(Oid::zero), t.columns.len());
            let result = seen
                .entry(key)
                .or_insert_with(|| check_table(repo, want, &t.dir, t.columns.len(), &mut blobs))
                .clone();
            match result {
                Err(e) => problem(&path, e),
                Ok((rows, chunks)) => {
                    if rows != t.rows || chunks != t.chunks {
                        problem(
                            &path,
                            format!(
                                "holds {rows} rows in {chunks} chunks, the manifest says {} in {}",
                                t.rows, t.chunks
                            ),
                        );
                    }
                }
            }
        }
        if let Some(tt) = &tables_tree {
            if tt.len() != named {
                problem(
                    format::TABLES_DIR,
                    format!("holds {} directories, the manifest names {named}", tt.len()),
                );
            }
        }
        let audit_tree = tree.get_name(format::AUDIT_DIR).map(|e| e.id().to_string());
        match (&m.audit, audit_tree) {
            (Some(a), entry) => {
                if a.tree != entry {
                    problem(
                        format::AUDIT_DIR,
                        "is missing or is not the tree the manifest names".into(),
                    );
                } else if let Err(e) = audit_bytes(repo, a) {
                    problem(format::AUDIT_DIR, e.to_string());
                }
            }
            (None, Some(_)) => problem(format::AUDIT_DIR, "is not named in the manifest".into()),
            (None, None) => {}
        }
    }
    Ok(commits)
}

/// Reads every chunk of one table tree: rows and chunks, or the first problem.
fn check_table(
    repo: &Repository,
    tree: &str,
    dir: &str,
    columns: usize,
    blobs: &mut BlobChecks,
) -> Result<(u64, u64), String> {
    let chunks = table_chunks(repo, tree, dir).map_err(|e| e.to_string())?;
    let mut rows = 0;
    let mut last_hi: Option<i64> = None;
    for (path, lo, hi, blob) in &chunks {
        // Sorted by their first rowid, ranges must not overlap: then every rowid of the
        // table is in exactly one place, in order.
        if last_hi.is_some_and(|h| *lo <= h) {
            return Err(format!("{path}: overlaps the chunk before it"));
        }
        last_hi = Some(*hi);
        rows += blobs
            .entry((*blob, *lo, *hi, columns))
            .or_insert_with(|| check_chunk(repo, path, *blob, *lo, *hi, columns))
            .clone()?;
    }
    Ok((rows, chunks.len() as u64))
}

/// Chunks already checked, by (blob, range, columns): unchanged chunks are shared by most
/// backups, and each is read once.
type BlobChecks = HashMap<(Oid, i64, i64, usize), Result<u64, String>>;

/// Reads one chunk (which checks its hash) and checks every line: its rows.
fn check_chunk(
    repo: &Repository,
    path: &str,
    blob: Oid,
    lo: i64,
    hi: i64,
    columns: usize,
) -> Result<u64, String> {
    let blob = repo
        .find_blob(blob)
        .map_err(|e| format!("{path}: {}", e.message()))?;
    if blob.size() > 1_000_000 && lo != hi {
        return Err(format!("{path}: {} bytes, over 1 MB", blob.size()));
    }
    let mut rows = 0;
    let mut last: Option<i64> = None;
    for (i, line) in blob.content().split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let (id, values) = decode_row(line).map_err(|e| format!("{path} line {}: {e}", i + 1))?;
        if id < lo || id > hi || last.is_some_and(|l| id <= l) {
            return Err(format!(
                "{path} line {}: rowid {id} is out of order or outside its range",
                i + 1
            ));
        }
        last = Some(id);
        if values.len() != columns {
            return Err(format!(
                "{path} line {}: {} values for {columns} columns",
                i + 1,
                values.len()
            ));
        }
        rows += 1;
    }
    Ok(rows)
}

/// The outcome of [`prove`] for one snapshot.
#[derive(Clone, Debug)]
pub struct Proof {
    /// The backup commit restored.
    pub commit: String,
    /// Files of the snapshot that came out different (or missing), by name; empty: proven.
    pub differing: Vec<String>,
    /// How long the restore and the export took.
    pub seconds: f64,
}

/// The restore-then-export proof for snapshot `name`: its backup restored into a temporary
/// directory and exported with the snapshot's own run id, time and roles (its `roles.json`) under
/// `config`; every one of the seven files must come out byte for byte. `None` when no backup
/// names the snapshot.
pub fn prove(
    config: &crate::input::config::Config,
    data: &crate::publish::clone::DataRepo,
    branch: &str,
    name: &str,
) -> Result<Option<Proof>, String> {
    use crate::snapshot::build::{self, Inputs};
    let started = std::time::Instant::now();
    let repo = data.git();
    let Some(found) =
        crate::publish::backup::find(repo, branch, name).map_err(|e| e.to_string())?
    else {
        return Ok(None);
    };
    let files = data.read_snapshot(name).map_err(|e| e.to_string())?;
    let file = |n: &str| {
        files
            .iter()
            .find(|(f, _)| f == n)
            .map(|(_, b)| b.as_slice())
            .ok_or_else(|| format!("snapshots/{name} has no {n}"))
    };
    let meta: serde_json::Value =
        serde_json::from_slice(file("meta.json")?).map_err(|e| format!("meta.json: {e}"))?;
    let run_id = meta["run_id"]
        .as_str()
        .and_then(|s| uuid::Uuid::try_parse(s).ok())
        .ok_or("meta.json has no run_id")?;
    let at = meta["generated_at"]
        .as_str()
        .and_then(crate::time::parse_rfc3339)
        .ok_or("meta.json has no generated_at")?;
    // The published roles.json back into the roles file export reads.
    let roles: serde_json::Value =
        serde_json::from_slice(file("roles.json")?).map_err(|e| format!("roles.json: {e}"))?;
    let mut map = serde_json::Map::new();
    for item in roles["data"]
        .as_array()
        .ok_or("roles.json has no data list")?
    {
        let id = item["discord_user_id"]
            .as_str()
            .ok_or("roles.json: an entry without discord_user_id")?;
        map.insert(id.to_owned(), item["roles"].clone());
    }
    let dir = tempfile::tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?;
    let roles_file = dir.path().join("roles.json");
    std::fs::write(&roles_file, serde_json::Value::Object(map).to_string())
        .map_err(|e| format!("cannot write {}: {e}", roles_file.display()))?;
    let db = dir.path().join("state.db");
    restore(repo, &found, &db, &dir.path().join("audit_events.jsonl"))
        .map_err(|e| e.to_string())?;
    let inputs = Inputs {
        state_db: Some(db),
        roles_file: Some(roles_file),
        run_id: Some(run_id),
        at: Some(at),
        busy_timeout: std::time::Duration::from_secs(10),
        read_threads: None,
    };
    let snapshot = build::build(config, &inputs).map_err(|e| e.to_string())?;
    let rendered =
        crate::snapshot::format::render(&snapshot).map_err(|e| format!("cannot render: {e}"))?;
    let mut differing = Vec::new();
    for (n, bytes) in &rendered {
        if files.iter().find(|(f, _)| f == n).map(|(_, b)| b) != Some(bytes) {
            differing.push((*n).to_owned());
        }
    }
    for (n, _) in &files {
        if !rendered.iter().any(|(r, _)| r == n) {
            differing.push(n.clone());
        }
    }
    Ok(Some(Proof {
        commit: found.commit.to_string(),
        differing,
        seconds: started.elapsed().as_secs_f64(),
    }))
}
