//! Reads Gitcord's `state.db` without ever changing it.
//!
//! The database belongs to a running bot, so the reader opens it read-only (it can neither
//! create nor migrate it), waits out a writer holding the lock, and reads every table inside
//! one read transaction so the seven snapshot files describe one consistent state. Older
//! Gitcord databases that lack a newer table or column still export: what is missing reads
//! as empty, with a warning.
//!
//! Contributions are the one large table (millions of rows). They are counted as they are
//! read, never held in memory, on several connections at once that all read the same state;
//! [`window`] says how, and why Gitcord's `SELECT DISTINCT` is still reproduced exactly.

pub mod backup;
mod raw;
mod window;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use window::{Accumulator, Sharing};

use crate::table::{Cell, Table};
use crate::time::{self, Timestamp};

/// Why `state.db` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// There is no file at the path (wrong `--state-db` or `runtime.data_dir`).
    #[error("state database {0} does not exist")]
    Missing(PathBuf),
    /// The file exists but SQLite cannot open it at all.
    #[error("state database {path} cannot be opened: {reason}")]
    Unopenable {
        /// The database file.
        path: PathBuf,
        /// SQLite's explanation.
        reason: String,
    },
    /// Not an SQLite file, or damaged.
    #[error("state database {path} is corrupt or not an SQLite database: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's explanation.
        reason: String,
    },
    /// A Gitcord run held the lock longer than we were willing to wait.
    #[error(
        "state database {path} stayed locked by another process for {waited:?}; try again later"
    )]
    Locked {
        /// The database file.
        path: PathBuf,
        /// The busy timeout that ran out.
        waited: Duration,
    },
    /// A readable database whose content is not Gitcord's.
    #[error("state database {path}: {reason}")]
    BadData {
        /// The database file.
        path: PathBuf,
        /// What is wrong, naming the table and column.
        reason: String,
    },
}

/// A verified Discord ↔ GitHub link.
#[derive(Clone, Debug, PartialEq)]
pub struct IdentityRow {
    /// Discord user id as stored.
    pub discord_user_id: Cell,
    /// GitHub login as stored.
    pub github_user: Cell,
}

/// A row of the newest scoring period.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreRow {
    /// GitHub login as stored.
    pub github_user: Cell,
    /// Start of the period, re-read as an instant.
    pub period_start: Timestamp,
    /// End of the period, re-read as an instant.
    pub period_end: Timestamp,
    /// Points as stored (INTEGER, or REAL if Gitcord ever wrote one).
    pub points: Cell,
}

/// One distinct contribution inside the period, borrowed from SQLite's row buffer.
#[derive(Clone, Copy, Debug)]
pub struct Contribution<'a> {
    /// GitHub login.
    pub github_user: &'a str,
    /// `pr_merged`, `pr_opened`, `issue_opened`, `pr_reviewed`, `comment`, ...
    pub event_type: &'a str,
    /// The event's JSON payload text.
    pub payload_json: &'a str,
}

/// What a snapshot needs from the database besides contributions, already selected and ordered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tables {
    /// `identity_links` with `verified = 1`, by Discord id then GitHub login.
    pub identities: Vec<IdentityRow>,
    /// Scores of the latest period, by points descending then login.
    pub scores: Vec<ScoreRow>,
    /// Pending issue requests, oldest first.
    pub issue_requests: Table,
    /// The 1000 most recent sent notifications.
    pub notifications: Table,
}

/// What to read: the contribution window, as Gitcord's text bounds, how long to wait, and on
/// how many connections.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Lower bound, formatted with [`time::isoformat`]; compared as text, as Gitcord does.
    pub period_start: String,
    /// Upper bound, likewise.
    pub period_end: String,
    /// How long to wait for a Gitcord run holding the lock.
    pub busy_timeout: Duration,
    /// How the window is shared out between connections.
    pub sharing: Sharing,
}

/// The columns of Gitcord's `issue_requests` that a snapshot copies (and restore writes back).
pub(crate) const ISSUE_REQUEST_COLUMNS: &[&str] = &[
    "created_at",
    "discord_user_id",
    "github_user",
    "issue_number",
    "issue_url",
    "owner",
    "repo",
    "request_id",
    "status",
];
/// The columns of Gitcord's `notifications_sent` that a snapshot copies.
pub(crate) const NOTIFICATION_COLUMNS: &[&str] = &[
    "channel_id",
    "dedupe_key",
    "discord_user_id",
    "event_type",
    "github_user",
    "repo",
    "sent_at",
    "target",
];

/// Reads everything a snapshot needs in one read transaction.
///
/// Each distinct contribution with `period_start <= created_at <= period_end` (text
/// comparison) is counted exactly once, into accumulators made by `new_acc` (one per reading
/// thread) and merged into the one returned; the other tables are returned beside it. A reason
/// returned by the accumulator fails the read, naming the row.
pub fn read<A: Accumulator>(
    path: &Path,
    opts: &ReadOptions,
    new_acc: &(dyn Fn() -> A + Sync),
) -> Result<(Tables, A), StateError> {
    read_with(path, opts, new_acc, None)
}

/// How the window scan fingerprints the contributions for the backup, or `None` when it
/// cannot, and the backup reads the table itself as a first backup does ([`backup::Hook::read`]):
/// - the scan addresses rows as `rowid` (its bounds, chunks, duplicates and messages), so a
///   table with a column of that name is scanned by that column; the backup must address the
///   real rowid, and the scan's chunks would not cover its rows;
/// - the backup's reader refuses the table (a generated column, no rowid): its refusal comes
///   from the hook's read, in its usual place among the errors, not before the tables'.
fn prescan_plan(db: &Db, spec: backup::Prescan) -> Option<window::PrescanPlan> {
    let reader = backup::Reader::new(db);
    let columns = reader.columns(backup::PRESCANNED_TABLE).ok()?;
    if reader.rowid_column(&columns) != "rowid" {
        log::info!(
            "{}: contributions has a column named rowid; the backup reads the table itself",
            db.path.display()
        );
        return None;
    }
    window::PrescanPlan::new(spec, columns, &CONTRIBUTION_COLUMNS).ok()
}

/// [`read`], running `hook` inside the same read transaction (see [`backup::Hook`]): its
/// `read` once the snapshot's tables are read (on the connection that read them, while the
/// others scan the contributions), its `finish` after the scan, so what it reads describes the
/// same moment as the snapshot. The backup reads every table this way.
pub fn read_with<A: Accumulator>(
    path: &Path,
    opts: &ReadOptions,
    new_acc: &(dyn Fn() -> A + Sync),
    mut hook: Option<&mut dyn backup::Hook>,
) -> Result<(Tables, A), StateError> {
    let first_id = file_id(path);
    let db = Db::open(path, opts.busy_timeout)?;
    db.conn
        .execute_batch("BEGIN DEFERRED")
        .map_err(|e| db.err(e))?;
    // The first read takes SHARED, held until COMMIT: from here on no writer can commit.
    let schema = db.schema()?;
    // Every table and column is checked first, in the order the files are written, so a
    // database missing one fails the same way whatever else is wrong with it.
    db.require(
        &schema,
        "identity_links",
        &["discord_user_id", "github_user", "verified"],
        false,
    )?;
    db.require(&schema, "scores", &SCORE_COLUMNS, false)?;
    db.require(&schema, "contributions", &CONTRIBUTION_COLUMNS, false)?;
    // The backup's fingerprints of every contributions range, made by the window scan.
    let prescan = hook
        .as_ref()
        .and_then(|h| h.prescan())
        .and_then(|spec| prescan_plan(&db, spec));
    let align = prescan.as_ref().map_or(1, |plan| plan.range_rowids());
    let chunks = window::Chunks::new(db.rowid_bounds()?, opts.sharing.min_chunk_rowids, align);
    let mut dbs = vec![db];
    let more = opts
        .sharing
        .connections
        .min(chunks.count())
        .saturating_sub(1);
    dbs.extend(dbs[0].companions(more)?);
    // Companions open the file by its path. Had the path been renamed over since the first
    // connection opened it (a backup put back with `mv`), the first connection's lock would
    // not cover theirs (or if that cannot be told): read on the first alone.
    if dbs.len() > 1 && (first_id.is_none() || file_id(path) != first_id) {
        log::debug!(
            "{} was replaced while it was opened; reading on one connection",
            path.display()
        );
        dbs.truncate(1);
    }
    log::debug!(
        "reading {} on {} connection(s), {} chunk(s)",
        path.display(),
        dbs.len(),
        chunks.count()
    );
    let (tables, acc, digests) = window::read(
        &mut dbs,
        opts,
        prescan.as_ref(),
        chunks,
        new_acc,
        |db: &Db| {
            let tables = Tables {
                identities: db.identities(&schema)?,
                scores: db.latest_scores(&schema)?,
                issue_requests: db.copy_table(
                    &schema,
                    "issue_requests",
                    ISSUE_REQUEST_COLUMNS,
                    "WHERE status = 'pending' ORDER BY created_at, request_id",
                )?,
                notifications: db.copy_table(
                    &schema,
                    "notifications_sent",
                    NOTIFICATION_COLUMNS,
                    "ORDER BY sent_at DESC, dedupe_key ASC LIMIT 1000",
                )?,
            };
            if let Some(hook) = hook.as_deref_mut() {
                hook.read(&backup::Reader::new(db), prescan.is_some())?;
            }
            Ok(tables)
        },
    )?;
    // The companions only read; dropping them ends their transactions.
    let db = dbs.swap_remove(0);
    drop(dbs);
    if let Some(hook) = hook {
        let prescanned = prescan.map(|plan| backup::Prescanned {
            columns: plan.columns().to_vec(),
            ranges: digests,
        });
        // Still inside the transaction: the first connection holds SHARED until COMMIT.
        hook.finish(&backup::Reader::new(&db), prescanned)?;
    }
    db.conn.execute_batch("COMMIT").map_err(|e| db.err(e))?;
    Ok((tables, acc))
}

const SCORE_COLUMNS: [&str; 4] = ["github_user", "period_start", "period_end", "points"];
const CONTRIBUTION_COLUMNS: [&str; 5] = [
    "github_user",
    "event_type",
    "repo",
    "created_at",
    "payload_json",
];

/// The value as text, or why it is not.
fn checked_text<'a>(value: ValueRef<'a>, what: &str) -> Result<&'a str, String> {
    match value {
        ValueRef::Text(bytes) => {
            utf8(bytes).ok_or_else(|| format!("{what} holds text that is not UTF-8"))
        }
        other => Err(format!("{what} holds {}, not text", type_name(other))),
    }
}

/// Table name → its column names, as found in this database.
type Schema = HashMap<String, HashSet<String>>;

struct Db {
    conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
}

impl Db {
    fn open(path: &Path, busy_timeout: Duration) -> Result<Db, StateError> {
        match path.metadata() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::Missing(path.to_owned()))
            }
            Ok(m) if m.is_dir() => {
                return Err(StateError::Unopenable {
                    path: path.to_owned(),
                    reason: "it is a directory".into(),
                })
            }
            _ => {}
        }
        // READ_ONLY without CREATE: SQLite can neither create nor write the file.
        //
        // SQLite's I/O settings stay at their defaults, on purpose (measured with `sqlite3
        // -readonly` scanning the 1M-row bench database's 93 MB contributions table):
        // `PRAGMA mmap_size` saved no CPU (the read() copies it removes come back as page
        // faults) and every mapped page touched counts as resident, so peak RSS grew by the
        // table's size (6 → 99 MB); `cache_size` (2 MB) only serves the rare lookups that
        // confirm a duplicate, since the scan reads each page once; and no query here builds
        // a temporary b-tree big enough for `temp_store` to matter. There is no index on
        // `contributions.created_at` in Gitcord's schema (and a read-only reader cannot add
        // one), so the window is one sequential table scan, as it is for `sqlite3` itself.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).map_err(|e| StateError::Unopenable {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let db = Db {
            conn,
            path: path.to_owned(),
            busy_timeout,
        };
        db.conn.busy_timeout(busy_timeout).map_err(|e| db.err(e))?;
        Ok(db)
    }

    /// Up to `n` more connections reading the same state as this one, which must already hold
    /// its SHARED lock (see [`window`]). Fewer when a writer is waiting to commit, and none
    /// for a WAL database, whose connections could each see a different commit.
    fn companions(&self, n: usize) -> Result<Vec<Db>, StateError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if mode.eq_ignore_ascii_case("wal") {
            log::debug!("{}: WAL mode, read on one connection", self.path.display());
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            // Never wait: a writer holding PENDING waits for our first connection, so a wait
            // here would only end in its timeout. Reading on fewer connections is as correct.
            let companion = Db::open(&self.path, Duration::ZERO).and_then(|db| {
                db.conn
                    .execute_batch("BEGIN DEFERRED")
                    .map_err(|e| db.err(e))?;
                db.conn
                    .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                        r.get::<_, i64>(0)
                    })
                    .map_err(|e| db.err(e))?;
                Ok(db)
            });
            match companion {
                Ok(db) => out.push(db),
                Err(e) => {
                    log::debug!(
                        "reading on {} connection(s): another could not start ({e})",
                        out.len() + 1
                    );
                    break;
                }
            }
        }
        Ok(out)
    }

    /// The lowest and highest rowid of `contributions`, if it has rows. Two subqueries: SQLite
    /// answers a lone `min()` or `max()` with one b-tree seek, but both in one SELECT with a
    /// scan of the whole table.
    fn rowid_bounds(&self) -> Result<Option<(i64, i64)>, StateError> {
        let sql =
            "SELECT (SELECT min(rowid) FROM contributions), (SELECT max(rowid) FROM contributions)";
        self.conn
            .query_row(sql, [], |r| {
                Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?))
            })
            .map_err(|e| self.err(e))
    }

    /// Turns an SQLite error into the kind of failure an operator can act on.
    fn err(&self, e: rusqlite::Error) -> StateError {
        let path = self.path.clone();
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StateError::Locked {
                path,
                waited: self.busy_timeout,
            },
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StateError::Corrupt {
                path,
                reason: e.to_string(),
            },
            _ => StateError::BadData {
                path,
                reason: e.to_string(),
            },
        }
    }

    fn bad(&self, reason: String) -> StateError {
        StateError::BadData {
            path: self.path.clone(),
            reason,
        }
    }

    fn schema(&self) -> Result<Schema, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p WHERE m.type = 'table'")
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut schema = Schema::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let table: String = row.get(0).map_err(|e| self.err(e))?;
            let column: String = row.get(1).map_err(|e| self.err(e))?;
            schema.entry(table).or_default().insert(column);
        }
        Ok(schema)
    }

    /// Checks that `table` has `columns`. A table that older Gitcord versions lack reads as
    /// empty (`Ok(false)`, with a warning); anything else missing is an error.
    fn require(
        &self,
        schema: &Schema,
        table: &str,
        columns: &[&str],
        optional: bool,
    ) -> Result<bool, StateError> {
        let Some(have) = schema.get(table) else {
            if optional {
                log::warn!(
                    "{}: no table {table} (an older Gitcord?); exporting it as empty",
                    self.path.display()
                );
                return Ok(false);
            }
            return Err(self.bad(format!(
                "no table {table}; is this Gitcord's state database?"
            )));
        };
        match columns.iter().find(|c| !have.contains(**c)) {
            Some(missing) => Err(self.bad(format!("table {table} has no column {missing}"))),
            None => Ok(true),
        }
    }

    fn identities(&self, schema: &Schema) -> Result<Vec<IdentityRow>, StateError> {
        self.require(
            schema,
            "identity_links",
            &["discord_user_id", "github_user", "verified"],
            false,
        )?;
        for column in ["unlinked_at", "github_user_normalized"] {
            if !schema["identity_links"].contains(column) {
                log::warn!(
                    "{}: table identity_links has no column {column} (an older Gitcord?); exporting without it",
                    self.path.display()
                );
            }
        }
        // NOT INDEXED: a scan and one sort. Through `idx_identity_links_verified` SQLite
        // would look up every verified row in the table, one random page read each.
        let sql = "SELECT discord_user_id, github_user FROM identity_links NOT INDEXED WHERE verified = 1 ORDER BY discord_user_id, github_user";
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            out.push(IdentityRow {
                discord_user_id: self.cell(row, 0, "identity_links.discord_user_id")?,
                github_user: self.cell(row, 1, "identity_links.github_user")?,
            });
        }
        Ok(out)
    }

    /// The rows whose `period_end` is the latest instant in the table, found in one pass.
    fn latest_scores(&self, schema: &Schema) -> Result<Vec<ScoreRow>, StateError> {
        self.require(
            schema,
            "scores",
            &["github_user", "period_start", "period_end", "points"],
            false,
        )?;
        let sql = "SELECT github_user, period_start, period_end, points FROM scores";
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut latest: Vec<ScoreRow> = Vec::new();
        // A period's rows all carry the same two timestamps: parse each text once.
        let mut memo: Vec<(String, Timestamp)> = Vec::new();
        let mut instant = |row: &rusqlite::Row<'_>, i: usize, what: &str| {
            let value = row.get_ref(i).map_err(|e| self.err(e))?;
            let text = self.text(value, what)?;
            if let Some((_, t)) = memo.iter().find(|(seen, _)| seen == text) {
                return Ok(*t);
            }
            let t = self.instant(text, what)?;
            if memo.len() == 8 {
                memo.remove(0);
            }
            memo.push((text.to_owned(), t));
            Ok::<_, StateError>(t)
        };
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let period_end = instant(row, 2, "scores.period_end")?;
            if latest.first().is_some_and(|r| period_end < r.period_end) {
                continue;
            }
            if latest.first().is_some_and(|r| period_end > r.period_end) {
                latest.clear();
            }
            latest.push(ScoreRow {
                github_user: self.cell(row, 0, "scores.github_user")?,
                period_start: instant(row, 1, "scores.period_start")?,
                period_end,
                points: self.cell(row, 3, "scores.points")?,
            });
        }
        latest.sort_by(|a, b| {
            compare_numbers(&b.points, &a.points)
                .then_with(|| compare_cells(&a.github_user, &b.github_user))
        });
        Ok(latest)
    }

    fn copy_table(
        &self,
        schema: &Schema,
        table: &str,
        columns: &[&str],
        tail: &str,
    ) -> Result<Table, StateError> {
        let mut out = Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        };
        if !self.require(schema, table, columns, true)? {
            return Ok(out);
        }
        let sql = format!("SELECT {} FROM {table} {tail}", columns.join(", "));
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let cells = columns
                .iter()
                .enumerate()
                .map(|(i, c)| self.cell(row, i, &format!("{table}.{c}")))
                .collect::<Result<Vec<_>, _>>()?;
            out.rows.push(cells);
        }
        Ok(out)
    }

    fn text<'a>(&self, value: ValueRef<'a>, what: &str) -> Result<&'a str, StateError> {
        checked_text(value, what).map_err(|reason| self.bad(reason))
    }

    fn cell(&self, row: &rusqlite::Row<'_>, i: usize, what: &str) -> Result<Cell, StateError> {
        Ok(match row.get_ref(i).map_err(|e| self.err(e))? {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(n) => Cell::Int(n),
            ValueRef::Real(x) => Cell::Real(x),
            v @ ValueRef::Text(_) => Cell::Text(self.text(v, what)?.to_owned()),
            ValueRef::Blob(_) => {
                return Err(self.bad(format!("{what} holds a BLOB, which JSON cannot carry")))
            }
        })
    }

    fn instant(&self, text: &str, what: &str) -> Result<Timestamp, StateError> {
        time::parse_stored(text)
            .ok_or_else(|| self.bad(format!("{what} holds {text:?}, which is not a timestamp")))
    }
}

/// Which file `path` names now (device and inode), if it can be told.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The bytes as text if they are UTF-8. Gitcord's rows are almost always ASCII, and
/// `is_ascii` checks a word at a time where `from_utf8` walks short strings byte by byte; on
/// the three columns of every contribution row this took ~9% of an export (perf, 1M rows).
fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

fn type_name(value: ValueRef<'_>) -> &'static str {
    match value {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "an INTEGER",
        ValueRef::Real(_) => "a REAL",
        ValueRef::Text(_) => "TEXT",
        ValueRef::Blob(_) => "a BLOB",
    }
}

/// SQLite's BINARY order for the values a key column can hold: NULL < numbers < text.
fn compare_cells(a: &Cell, b: &Cell) -> std::cmp::Ordering {
    fn rank(c: &Cell) -> u8 {
        match c {
            Cell::Null => 0,
            Cell::Int(_) | Cell::Real(_) => 1,
            Cell::Text(_) => 2,
        }
    }
    match (a, b) {
        (Cell::Text(x), Cell::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Cell::Int(_) | Cell::Real(_), Cell::Int(_) | Cell::Real(_)) => compare_numbers(a, b),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Numeric order of two number cells (integers exactly, mixed pairs as floats).
fn compare_numbers(a: &Cell, b: &Cell) -> std::cmp::Ordering {
    match (a, b) {
        (Cell::Int(x), Cell::Int(y)) => x.cmp(y),
        (Cell::Int(x), Cell::Real(y)) => (*x as f64).total_cmp(y),
        (Cell::Real(x), Cell::Int(y)) => x.total_cmp(&(*y as f64)),
        (Cell::Real(x), Cell::Real(y)) => x.total_cmp(y),
        _ => compare_cells(a, b),
    }
}

#[cfg(test)]
mod tests;
