//! Reads Gitcord's `state.db` without ever changing it.
//!
//! The database belongs to a running bot, so the reader opens it read-only (it can neither
//! create nor migrate it), waits out a writer holding the lock, and reads every table inside
//! one read transaction so the seven snapshot files describe one consistent state. Older
//! Gitcord databases that lack a newer table or column still export: what is missing reads
//! as empty, with a warning.
//!
//! Contributions are the one large table (millions of rows). They are streamed to the
//! caller's closure, never held in memory; Gitcord's `SELECT DISTINCT` is reproduced with a
//! fingerprint set that is exact (a fingerprint match is confirmed against the stored row).
//! The scan runs on the calling thread and hands the rows, in batches, to a worker thread
//! that fingerprints, deduplicates and calls the closure; the result, errors included, is
//! the one a sequential read gives.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use crate::time::{self, Instant};

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

/// An SQLite value copied into a snapshot with its type intact.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// SQL NULL, written as `null`.
    Null,
    /// INTEGER, written as a JSON number.
    Int(i64),
    /// REAL, written as Python writes floats.
    Real(f64),
    /// TEXT, written as a JSON string.
    Text(String),
}

impl Cell {}

/// Rows copied from one table, columns in code-point order (the order they are written in).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Column names, sorted.
    pub columns: Vec<String>,
    /// One cell per column, in `columns` order.
    pub rows: Vec<Vec<Cell>>,
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
    pub period_start: Instant,
    /// End of the period, re-read as an instant.
    pub period_end: Instant,
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

/// What to read: the contribution window, as Gitcord's text bounds, and how long to wait.
#[derive(Clone, Debug)]
pub struct ReadOptions {
    /// Lower bound, formatted with [`time::isoformat`]; compared as text, as Gitcord does.
    pub period_start: String,
    /// Upper bound, likewise.
    pub period_end: String,
    /// How long to wait for a Gitcord run holding the lock.
    pub busy_timeout: Duration,
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
/// comparison) is passed to `on_contribution` exactly once; the other tables are returned.
/// A reason returned by `on_contribution` fails the read, naming the row.
pub fn read(
    path: &Path,
    opts: &ReadOptions,
    on_contribution: impl FnMut(Contribution<'_>) -> Result<(), String> + Send,
) -> Result<Tables, StateError> {
    let db = Db::open(path, opts.busy_timeout)?;
    db.conn
        .execute_batch("BEGIN DEFERRED")
        .map_err(|e| db.err(e))?;
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
    // The contributions are scanned while a worker thread deduplicates and tallies them; the
    // other tables are read on this thread after the scan, while the worker catches up.
    let (contributions, tables) = db.contributions(opts, on_contribution, |db| {
        Ok(Tables {
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
        })
    });
    // A failure reading the other tables is reported first, as when they were read first.
    let tables = tables?;
    contributions?;
    db.conn.execute_batch("COMMIT").map_err(|e| db.err(e))?;
    Ok(tables)
}

const SCORE_COLUMNS: [&str; 4] = ["github_user", "period_start", "period_end", "points"];
const CONTRIBUTION_COLUMNS: [&str; 5] = [
    "github_user",
    "event_type",
    "repo",
    "created_at",
    "payload_json",
];

/// Rows handed from the scanning thread to the worker in one message.
const BATCH_ROWS: usize = 4096;
/// Batches in flight between the two threads (a few MB at most).
const BATCHES_IN_FLIGHT: usize = 4;

/// Window rows packed by the scanning thread: the five compared columns of each row with
/// their SQLite types, back to back in `bytes`. Reused, never freed.
///
/// The scanning thread only copies; fingerprinting, the set, the UTF-8 checks and the tally
/// run on the worker, which balances the two threads (SQLite's scan is the larger half).
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    /// Each row's rowid and the end of its values in `bytes` (each starts where the last ended).
    rows: Vec<(i64, usize)>,
}

impl Batch {
    fn push(&mut self, rowid: i64, values: &[ValueRef<'_>; 5]) {
        for v in values {
            match *v {
                ValueRef::Null => self.bytes.push(0),
                ValueRef::Integer(n) => {
                    self.bytes.push(1);
                    self.bytes.extend_from_slice(&n.to_le_bytes());
                }
                ValueRef::Real(x) => {
                    self.bytes.push(2);
                    self.bytes.extend_from_slice(&x.to_bits().to_le_bytes());
                }
                ValueRef::Text(t) => self.push_bytes(3, t),
                ValueRef::Blob(b) => self.push_bytes(4, b),
            }
        }
        self.rows.push((rowid, self.bytes.len()));
    }

    fn push_bytes(&mut self, tag: u8, bytes: &[u8]) {
        self.bytes.push(tag);
        self.bytes
            .extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(bytes);
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.rows.clear();
    }

    /// The rows as they were pushed.
    fn rows(&self) -> impl Iterator<Item = (i64, [ValueRef<'_>; 5])> {
        let mut start = 0;
        self.rows.iter().map(move |&(rowid, end)| {
            let mut rest = &self.bytes[start..end];
            start = end;
            let mut next = || {
                let (tag, tail) = rest.split_first().expect("a packed value");
                let word = |tail: &[u8]| u64::from_le_bytes(tail[..8].try_into().expect("8 bytes"));
                let (value, tail) = match tag {
                    0 => (ValueRef::Null, tail),
                    1 => (ValueRef::Integer(word(tail) as i64), &tail[8..]),
                    2 => (ValueRef::Real(f64::from_bits(word(tail))), &tail[8..]),
                    _ => {
                        let len = word(tail) as usize;
                        let bytes = &tail[8..8 + len];
                        let value = if *tag == 3 {
                            ValueRef::Text(bytes)
                        } else {
                            ValueRef::Blob(bytes)
                        };
                        (value, &tail[8 + len..])
                    }
                };
                rest = tail;
                value
            };
            (rowid, [next(), next(), next(), next(), next()])
        })
    }
}

/// Passes one distinct row to `on_contribution`; the error names the column or the row.
/// (A free function: the worker thread cannot share the connection.)
fn contribute(
    path: &Path,
    rowid: i64,
    values: &[ValueRef<'_>; 5],
    on_contribution: &mut impl FnMut(Contribution<'_>) -> Result<(), String>,
) -> Result<(), StateError> {
    let bad = |reason| StateError::BadData {
        path: path.to_owned(),
        reason,
    };
    let contribution = Contribution {
        github_user: checked_text(values[0], "contributions.github_user").map_err(bad)?,
        event_type: checked_text(values[1], "contributions.event_type").map_err(bad)?,
        payload_json: checked_text(values[4], "contributions.payload_json").map_err(bad)?,
    };
    on_contribution(contribution)
        .map_err(|reason| bad(format!("contributions row {rowid}: {reason}")))
}

/// The value as text, or why it is not.
fn checked_text<'a>(value: ValueRef<'a>, what: &str) -> Result<&'a str, String> {
    match value {
        ValueRef::Text(bytes) => {
            utf8(bytes).ok_or_else(|| format!("{what} holds text that is not UTF-8"))
        }
        other => Err(format!("{what} holds {}, not text", type_name(other))),
    }
}

/// What the worker thread hands back: the set, the rows whose fingerprint was already in it
/// (to be confirmed against the stored rows), and the first distinct row that failed.
struct WorkerResult {
    seen: DistinctRows,
    pending: Vec<(i64, u64)>,
    failed: Option<StateError>,
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
        let sql = "SELECT discord_user_id, github_user FROM identity_links WHERE verified = 1 ORDER BY discord_user_id, github_user";
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
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let period_end = self.instant(row, 2, "scores.period_end")?;
            if latest.first().is_some_and(|r| period_end < r.period_end) {
                continue;
            }
            if latest.first().is_some_and(|r| period_end > r.period_end) {
                latest.clear();
            }
            latest.push(ScoreRow {
                github_user: self.cell(row, 0, "scores.github_user")?,
                period_start: self.instant(row, 1, "scores.period_start")?,
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

    /// Scans the window on this thread and passes each distinct row to `on_contribution` on a
    /// worker thread; runs `then` on this thread after the scan, while the worker finishes.
    ///
    /// The result is the one a sequential reader would give: a row is new unless it equals an
    /// earlier one (a fingerprint match is confirmed against the stored rows, after the scan,
    /// so a hash collision can never drop a contribution), and of several failures the one
    /// at the earliest row wins.
    fn contributions<F, T>(
        &self,
        opts: &ReadOptions,
        mut on_contribution: F,
        then: impl FnOnce(&Db) -> Result<T, StateError>,
    ) -> (Result<(), StateError>, Result<T, StateError>)
    where
        F: FnMut(Contribution<'_>) -> Result<(), String> + Send,
    {
        let state = foldhash::quality::RandomState::default();
        let (scanned, worker) = std::thread::scope(|scope| {
            let (to_worker, from_reader) = mpsc::sync_channel::<Batch>(BATCHES_IN_FLIGHT);
            let (to_reader, returned) = mpsc::channel::<Batch>();
            let on_contribution = &mut on_contribution;
            let (path, state) = (&self.path, &state);
            let worker = scope.spawn(move || {
                let mut out = WorkerResult {
                    seen: DistinctRows::default(),
                    pending: Vec::new(),
                    failed: None,
                };
                'batches: for mut batch in from_reader {
                    for (rowid, values) in batch.rows() {
                        let fp = fingerprint(state, &values);
                        if !out.seen.insert_unconfirmed(fp, rowid) {
                            out.pending.push((rowid, fp));
                        } else if let Err(e) = contribute(path, rowid, &values, on_contribution) {
                            out.failed = Some(e);
                            break 'batches;
                        }
                    }
                    batch.clear();
                    // The scanning thread may have finished and gone: nothing to recycle for.
                    let _ = to_reader.send(batch);
                }
                out
            });
            let scanned = self.scan(opts, &to_worker, &returned);
            drop(to_worker);
            let tables = then(self);
            let worker = worker
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e));
            ((scanned, tables), worker)
        });
        let (scanned, tables) = scanned;
        let WorkerResult {
            mut seen,
            pending,
            failed,
        } = worker;
        let contributions = (|| {
            // Rows whose fingerprint was seen before, confirmed in scan order: all come
            // before any row the worker refused, and before any error of the scan.
            if !pending.is_empty() {
                let mut by_rowid = self
                    .conn
                    .prepare("SELECT github_user, event_type, repo, created_at, payload_json FROM contributions WHERE rowid = ?1")
                    .map_err(|e| self.err(e))?;
                for (rowid, fingerprint) in pending {
                    let mine = self.stored_row(&mut by_rowid, rowid)?;
                    let is_new = seen.confirm(fingerprint, rowid, |earlier| {
                        let theirs = self.stored_row(&mut by_rowid, earlier)?;
                        Ok(mine.is_some() && theirs == mine)
                    })?;
                    if !is_new {
                        continue;
                    }
                    let Some(values) = mine else {
                        return Err(self.bad(format!(
                            "contributions row {rowid} vanished inside a read transaction"
                        )));
                    };
                    let values: [ValueRef<'_>; 5] =
                        std::array::from_fn(|i| ValueRef::from(&values[i]));
                    contribute(&self.path, rowid, &values, &mut on_contribution)?;
                }
            }
            if let Some(e) = failed {
                return Err(e);
            }
            scanned
        })();
        (contributions, tables)
    }

    /// The scan: packs each window row into batches for the worker, in scan order. Stops at
    /// the first failure, or when the worker has stopped (it refused a row).
    fn scan(
        &self,
        opts: &ReadOptions,
        to_worker: &mpsc::SyncSender<Batch>,
        returned: &mpsc::Receiver<Batch>,
    ) -> Result<(), StateError> {
        let sql = "SELECT rowid, github_user, event_type, repo, created_at, payload_json FROM contributions \
                   WHERE created_at >= ?1 AND created_at <= ?2";
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query([&opts.period_start, &opts.period_end])
            .map_err(|e| self.err(e))?;
        let mut batch = Batch::default();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let rowid: i64 = row.get(0).map_err(|e| self.err(e))?;
            let values: [ValueRef<'_>; 5] = [
                row.get_ref(1).map_err(|e| self.err(e))?,
                row.get_ref(2).map_err(|e| self.err(e))?,
                row.get_ref(3).map_err(|e| self.err(e))?,
                row.get_ref(4).map_err(|e| self.err(e))?,
                row.get_ref(5).map_err(|e| self.err(e))?,
            ];
            batch.push(rowid, &values);
            if batch.rows.len() == BATCH_ROWS {
                let next = returned.try_recv().unwrap_or_default();
                if to_worker.send(std::mem::replace(&mut batch, next)).is_err() {
                    return Ok(()); // the worker refused a row; it reports that
                }
            }
        }
        if !batch.rows.is_empty() {
            let _ = to_worker.send(batch);
        }
        Ok(())
    }

    /// A contribution row's five compared columns, or `None` if there is no such row.
    fn stored_row(
        &self,
        by_rowid: &mut rusqlite::Statement<'_>,
        rowid: i64,
    ) -> Result<Option<Vec<Value>>, StateError> {
        let mut found = by_rowid.query([rowid]).map_err(|e| self.err(e))?;
        let Some(row) = found.next().map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        (0..5)
            .map(|i| row.get::<_, Value>(i).map_err(|e| self.err(e)))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
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

    fn instant(
        &self,
        row: &rusqlite::Row<'_>,
        i: usize,
        what: &str,
    ) -> Result<Instant, StateError> {
        let value = row.get_ref(i).map_err(|e| self.err(e))?;
        let text = self.text(value, what)?;
        time::parse_stored(text)
            .ok_or_else(|| self.bad(format!("{what} holds {text:?}, which is not a timestamp")))
    }
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

/// The set of contribution rows seen so far, as 64-bit fingerprints mapped to a rowid.
///
/// Memory is 16 bytes per distinct row in the window instead of the row itself. A fingerprint
/// that is already present is confirmed by comparing the stored row, so a hash collision can
/// never drop a contribution.
///
/// Speed: every row of the window is fingerprinted and looked up once, so both hashes are on
/// the hot path. The fingerprint is foldhash's `quality` hasher (a folded 64x64→128-bit
/// multiply per 16 bytes, seeded randomly per process, so rows cannot be crafted to collide
/// on purpose) instead of std's SipHash-1-3, which was ~6% of an export on its own; the map
/// then uses the fingerprint as its own hash ([`PassThrough`]) rather than hashing it again.
#[derive(Default)]
struct DistinctRows {
    first: HashMap<u64, i64, BuildHasherDefault<PassThrough>>,
    /// Rows whose fingerprint collided with a different earlier row (practically never used).
    collided: HashMap<u64, Vec<i64>>,
}

impl DistinctRows {
    /// Records the row if its fingerprint is new and returns `true`; `false` means the
    /// fingerprint was seen before and the row must go through [`DistinctRows::confirm`].
    fn insert_unconfirmed(&mut self, fingerprint: u64, rowid: i64) -> bool {
        match self.first.entry(fingerprint) {
            Entry::Vacant(slot) => {
                slot.insert(rowid);
                true
            }
            Entry::Occupied(_) => false,
        }
    }

    /// For a row whose fingerprint was seen before: whether it is new after all (a hash
    /// collision), recording it if so. `same_as(rowid)` says whether the row stored under
    /// `rowid` equals this one.
    fn confirm<E>(
        &mut self,
        fingerprint: u64,
        rowid: i64,
        mut same_as: impl FnMut(i64) -> Result<bool, E>,
    ) -> Result<bool, E> {
        let Some(&earliest) = self.first.get(&fingerprint) else {
            self.first.insert(fingerprint, rowid);
            return Ok(true);
        };
        if same_as(earliest)? {
            return Ok(false);
        }
        let others = self.collided.entry(fingerprint).or_default();
        for &earlier in others.iter() {
            if same_as(earlier)? {
                return Ok(false);
            }
        }
        others.push(rowid);
        Ok(true)
    }
}

/// A 64-bit hash of the values with their SQLite types, so that rows `SELECT DISTINCT`
/// tells apart (an INTEGER and a TEXT of the same digits, `"ab","c"` and `"a","bc"`)
/// almost always get different fingerprints.
fn fingerprint(state: &foldhash::quality::RandomState, values: &[ValueRef<'_>]) -> u64 {
    let mut h = state.build_hasher();
    for v in values {
        match v {
            ValueRef::Null => h.write_u8(0),
            ValueRef::Integer(n) => {
                h.write_u8(1);
                h.write_i64(*n);
            }
            ValueRef::Real(x) => {
                h.write_u8(2);
                h.write_u64(x.to_bits());
            }
            // Type tag and length in one word: SQLite values are shorter than 2^56 bytes.
            ValueRef::Text(t) => {
                h.write_u64((t.len() as u64) << 8 | 3);
                h.write(t);
            }
            ValueRef::Blob(b) => {
                h.write_u64((b.len() as u64) << 8 | 4);
                h.write(b);
            }
        }
    }
    h.finish()
}

/// The hasher of a map whose keys are already good 64-bit hashes: passes the key through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed with this; anything else still gets a valid hash.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal Gitcord database with `rows` as contributions (all inside the window).
    fn db_with(name: &str, rows: &[(rusqlite::types::Value, &str, &str)]) -> PathBuf {
        let path = std::env::temp_dir().join(format!(
            "gitcord-snapshot-state-{name}-{}.db",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE identity_links (discord_user_id TEXT, github_user TEXT, verified INTEGER);
             CREATE TABLE scores (github_user TEXT, period_start TEXT, period_end TEXT, points INTEGER);
             CREATE TABLE contributions (id INTEGER PRIMARY KEY, github_user TEXT, event_type TEXT,
                 repo TEXT, created_at TEXT, payload_json TEXT);",
        )
        .unwrap();
        let mut insert = conn
            .prepare("INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json) VALUES (?1, ?2, ?3, '2024-01-10T00:00:00+00:00', ?4)")
            .unwrap();
        conn.execute_batch("BEGIN").unwrap();
        for (user, repo, payload) in rows {
            insert
                .execute(rusqlite::params![user, "pr_merged", repo, payload])
                .unwrap();
        }
        conn.execute_batch("COMMIT").unwrap();
        path
    }

    fn read_all(path: &Path, fail_on: Option<&str>) -> Result<Vec<String>, StateError> {
        let opts = ReadOptions {
            period_start: "2024-01-01T00:00:00+00:00".into(),
            period_end: "2024-01-31T00:00:00+00:00".into(),
            busy_timeout: Duration::from_secs(1),
        };
        let mut seen = Vec::new();
        read(path, &opts, |c| {
            if Some(c.payload_json) == fail_on {
                return Err("refused".into());
            }
            seen.push(format!("{}|{}", c.github_user, c.payload_json));
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn the_pipelined_scan_passes_each_distinct_row_once_in_order() {
        use rusqlite::types::Value::Text;
        // Enough rows for several batches; every third row repeats an earlier one, across
        // batch boundaries too, and rows differing only in `repo` are both kept.
        let mut rows = Vec::new();
        for i in 0..(3 * BATCH_ROWS) {
            let n = if i % 3 == 2 { i / 7 } else { i };
            rows.push((Text(format!("u{}", n % 50)), "r", format!("{{\"n\":{n}}}")));
        }
        rows.push((Text("u1".into()), "other", "{\"n\":1}".into()));
        let refs: Vec<_> = rows
            .iter()
            .map(|(u, r, p)| (u.clone(), *r, p.as_str()))
            .collect();
        let path = db_with("distinct", &refs);
        let mut want = Vec::new();
        let mut distinct = HashSet::new();
        for (u, r, p) in &rows {
            let Text(u) = u else { unreachable!() };
            if distinct.insert((u.clone(), *r, p.clone())) {
                want.push(format!("{u}|{p}"));
            }
        }
        assert_eq!(read_all(&path, None).unwrap(), want);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn the_pipelined_scan_reports_the_earliest_failing_row() {
        use rusqlite::types::Value::{Blob, Text};
        let path = db_with(
            "errors",
            &[
                (Text("a".into()), "r", "{}"),
                (Text("a".into()), "r", "{}"),
                (Text("b".into()), "r", "bad"),
                (Blob(vec![7]), "r", "{}"),
            ],
        );
        let e = read_all(&path, Some("bad")).unwrap_err().to_string();
        assert!(e.contains("contributions row 3: refused"), "{e}");
        let e = read_all(&path, None).unwrap_err().to_string();
        assert!(
            e.contains("contributions.github_user holds a BLOB, not text"),
            "{e}"
        );
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn distinct_rows_confirms_collisions_against_the_stored_row() {
        let mut seen = DistinctRows::default();
        let fp = 42;
        assert!(seen.insert_unconfirmed(fp, 1));
        assert!(!seen.insert_unconfirmed(fp, 2));
        // Same fingerprint, and the stored row is equal: a duplicate.
        assert!(!seen.confirm::<()>(fp, 2, |_| Ok(true)).unwrap());
        // Same fingerprint but the stored row differs: a collision, kept.
        assert!(seen.confirm::<()>(fp, 3, |_| Ok(false)).unwrap());
        assert_eq!(seen.collided[&fp], [3]);
        // A later copy of the colliding row is found among the collided rows.
        assert!(!seen
            .confirm::<()>(fp, 4, |earlier| Ok(earlier == 3))
            .unwrap());
    }

    #[test]
    fn fingerprints_tell_types_apart_like_distinct_does() {
        let state = foldhash::quality::RandomState::default();
        let fingerprint = |values: &[ValueRef<'_>]| fingerprint(&state, values);
        assert_ne!(
            fingerprint(&[ValueRef::Integer(1)]),
            fingerprint(&[ValueRef::Text(b"1")])
        );
        assert_ne!(
            fingerprint(&[ValueRef::Text(b"ab"), ValueRef::Text(b"c")]),
            fingerprint(&[ValueRef::Text(b"a"), ValueRef::Text(b"bc")])
        );
        assert_eq!(
            fingerprint(&[ValueRef::Text(b"same"), ValueRef::Null]),
            fingerprint(&[ValueRef::Text(b"same"), ValueRef::Null])
        );
    }

    #[test]
    fn utf8_accepts_ascii_and_utf8_and_refuses_the_rest() {
        assert_eq!(utf8(b"alice"), Some("alice"));
        assert_eq!(utf8("zoë 漢字".as_bytes()), Some("zoë 漢字"));
        assert_eq!(utf8(b""), Some(""));
        assert_eq!(utf8(b"bad \xff"), None);
        assert_eq!(utf8(b"\xc3"), None);
    }

    #[test]
    fn cells_order_like_sqlite_binary_collation() {
        use std::cmp::Ordering::*;
        assert_eq!(
            compare_cells(&Cell::Text("Z".into()), &Cell::Text("a".into())),
            Less
        );
        assert_eq!(
            compare_cells(&Cell::Text("é".into()), &Cell::Text("z".into())),
            Greater
        );
        assert_eq!(compare_cells(&Cell::Int(9), &Cell::Text("1".into())), Less);
        assert_eq!(compare_numbers(&Cell::Int(2), &Cell::Real(1.5)), Greater);
    }
}
