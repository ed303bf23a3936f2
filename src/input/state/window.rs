//! The contributions window: Gitcord's `SELECT DISTINCT` over millions of rows, read on
//! several connections at once and never held in memory.
//!
//! **Why several connections.** The window is one table scan (Gitcord's schema has no index
//! on `created_at`), and SQLite steps a statement on one thread. Cut into rowid ranges
//! ("chunks"), the table is shared out between one thread per connection: each takes the
//! next chunk when it is done with the last, so a thread slowed by other work simply takes
//! fewer. The other tables are one more task in the same queue, taken first.
//!
//! **Why they all read one state.** In rollback-journal mode (Gitcord's), a writer must hold
//! the EXCLUSIVE lock to commit, which it cannot get while any connection holds SHARED. The
//! first connection holds SHARED for its whole read transaction, and every further one takes
//! its own SHARED while the first still holds it, so no commit can fall between them. A
//! further connection that cannot get its lock at once (a writer is waiting to commit,
//! holding PENDING) is given up, never waited for: that writer is waiting for us, so waiting
//! would only run out the clock. A WAL database gives each connection its own snapshot, so it
//! is read on one connection.
//!
//! **Why the result is exact.** Every row is fingerprinted and added to its thread's
//! [`Accumulator`], duplicates included. After the scan, rows that share a fingerprint are
//! compared as stored, and every row equal to an earlier one is removed again. What is left is
//! what a sequential `SELECT DISTINCT` gives, and a hash collision can never drop a row. Errors
//! match too: the failure at the lowest rowid is the one reported (a duplicate fails exactly as
//! the earlier row it copies, which comes first).
//!
//! **For the backup.** When the backup has a previous one to compare with
//! ([`super::backup::Hook::prescan`]), the same scan reads every row and column, evaluates the
//! window's condition as a column instead of a filter, and fingerprints each rowid range
//! ([`PrescanPlan`]); chunks then start at range boundaries, so each range is read whole by
//! one thread. What is counted, and which error wins, are the same either way.

use std::ffi::c_int;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rusqlite::types::{Value, ValueRef};

use super::backup::{Fingerprint, Prescan, RangeDigest};
use super::raw::RawStatement;
use super::{checked_text, Contribution, Db, ReadOptions, StateError};
use crate::threads;

/// What the reader feeds the window's rows to: one per reading thread, merged at the end.
///
/// Every row is added, duplicates included, and each duplicate is removed again once the scan
/// has found it, so `remove` must undo exactly what `add` did for an equal row, and `merge`
/// must not depend on which thread saw which row. A `remove` may land on another thread's
/// accumulator than the `add` it undoes, so one accumulator's counts can dip below zero;
/// only the merged total is meaningful.
pub trait Accumulator: Send {
    /// Counts one row. A reason fails the read, naming the row.
    fn add(&mut self, c: Contribution<'_>) -> Result<(), String>;
    /// Takes back one earlier `add` of an equal row.
    fn remove(&mut self, c: Contribution<'_>) -> Result<(), String>;
    /// Folds another thread's rows into this one.
    fn merge(&mut self, other: Self);
}

/// How the window is shared out. [`Sharing::with_connections`] suits production; tests use
/// small chunks so that a few rows already cross chunk boundaries.
#[derive(Clone, Copy, Debug)]
pub struct Sharing {
    /// Connections (and threads) reading at once. 1 reads everything on one connection.
    pub connections: usize,
    /// The smallest chunk, in rowids: a chunk costs one statement reset and one range seek.
    pub min_chunk_rowids: i64,
}

/// More connections than this stop paying: the scan is bounded by reading pages.
const MAX_CONNECTIONS: usize = 4;
/// At most this many chunks: enough to balance two to four threads within a few percent.
const MAX_CHUNKS: i128 = 64;
/// Fingerprints are kept in 2^8 buckets by their top bits, so that grouping them after the
/// scan sorts many small, cache-sized arrays instead of one large one.
const BUCKET_BITS: u32 = 8;

impl Sharing {
    /// `connections` if given, else one per CPU; never more than [`MAX_CONNECTIONS`].
    pub fn with_connections(connections: Option<usize>) -> Sharing {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Sharing {
            connections: connections.unwrap_or(cores).clamp(1, MAX_CONNECTIONS),
            min_chunk_rowids: 16_384,
        }
    }
}

/// The rowid ranges of the window's chunks, in scan order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Chunks {
    first: i128,
    /// Where chunk 0 would start were it not cut to `first`.
    grid: i128,
    size: i128,
    last: i128,
    count: usize,
}

impl Chunks {
    /// Chunks covering rowids `lo..=hi` (none when the table is empty). Every chunk but the
    /// first starts at a multiple of `align` (a power of two), so that a backup range of
    /// `align` rowids is always read whole by one thread, in order.
    pub(super) fn new(bounds: Option<(i64, i64)>, min_size: i64, align: i64) -> Chunks {
        let Some((lo, hi)) = bounds.filter(|(lo, hi)| lo <= hi) else {
            return Chunks {
                first: 0,
                grid: 0,
                size: 1,
                last: -1,
                count: 0,
            };
        };
        // i128: a rowid range can span all of i64.
        let (lo, hi) = (i128::from(lo), i128::from(hi));
        let align = i128::from(align.max(1));
        // The grid starts at the multiple of `align` at or below `lo`; the first chunk is
        // cut to start at `lo`.
        let grid = lo - lo.rem_euclid(align);
        let span = hi - grid + 1;
        let size = (span + MAX_CHUNKS - 1) / MAX_CHUNKS;
        let size = size.max(i128::from(min_size.max(1)));
        let size = (size + align - 1) / align * align;
        Chunks {
            first: lo,
            grid,
            size,
            last: hi,
            count: ((span + size - 1) / size) as usize,
        }
    }

    /// How many chunks there are.
    pub(super) fn count(&self) -> usize {
        self.count
    }

    /// The rowids of chunk `i` (from 0), inclusive.
    fn range(&self, i: usize) -> (i64, i64) {
        let start = self.grid + self.size * i as i128;
        let lo = start.max(self.first);
        let hi = (start + self.size - 1).min(self.last);
        // Both lie within the table's own i64 rowids.
        (lo as i64, hi as i64)
    }
}

/// One reading thread's share: its rows added up, and their fingerprints.
struct Shard<A> {
    acc: A,
    /// `(fingerprint, rowid)` of every row read, by the fingerprint's top bits.
    buckets: Vec<Vec<(u64, i64)>>,
    /// The backup's fingerprints of the ranges this thread read ([`Prescan`]).
    digests: Vec<RangeDigest>,
}

impl<A> Shard<A> {
    fn new(acc: A) -> Shard<A> {
        Shard {
            acc,
            buckets: vec![Vec::new(); 1 << BUCKET_BITS],
            digests: Vec::new(),
        }
    }
}

/// Reads the window on `dbs` (all holding SHARED in one state, `dbs[0]` first) and runs
/// `tables` once on one of them, at the same time. A failure of `tables` comes first, as when
/// the tables were read before the window. With `prescan`, every row of the table is also
/// fingerprinted by rowid range; those fingerprints come back in range order (none without it).
pub(super) fn read<A, T>(
    dbs: &mut [Db],
    opts: &ReadOptions,
    prescan: Option<&PrescanPlan>,
    chunks: Chunks,
    new_acc: &(dyn Fn() -> A + Sync),
    tables: impl FnOnce(&Db) -> Result<T, StateError> + Send,
) -> Result<(T, A, Vec<RangeDigest>), StateError>
where
    A: Accumulator,
    T: Send,
{
    let state = foldhash::quality::RandomState::default();
    let tables = Mutex::new(Some(tables));
    // Task 0 is the tables; task i + 1 is chunk i.
    let next = AtomicUsize::new(0);
    // The lowest task that failed: later tasks are not started.
    let stop = AtomicUsize::new(usize::MAX);
    type Outcome<A, T> = (
        Shard<A>,
        Option<Result<T, StateError>>,
        Option<(usize, StateError)>,
    );
    let outcomes: Vec<Outcome<A, T>> = std::thread::scope(|scope| {
        let handles: Vec<_> = dbs
            .iter_mut()
            .map(|db| {
                let (state, tables, next, stop) = (&state, &tables, &next, &stop);
                threads::spawn(scope, move || {
                    let mut shard = Shard::new(new_acc());
                    let mut table_result = None;
                    let mut failure = None;
                    let mut statements = Statements::default();
                    loop {
                        let task = next.fetch_add(1, Ordering::Relaxed);
                        if task > chunks.count || task > stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if task == 0 {
                            let run = tables.lock().ok().and_then(|mut t| t.take());
                            let result = run.map(|run| run(db));
                            if matches!(result, Some(Err(_))) {
                                // The tables' failure is the one reported: stop everything.
                                stop.fetch_min(0, Ordering::Relaxed);
                            }
                            table_result = result;
                            continue;
                        }
                        let range = chunks.range(task - 1);
                        if let Err(e) =
                            scan_chunk(db, &mut statements, opts, prescan, range, state, &mut shard)
                        {
                            stop.fetch_min(task, Ordering::Relaxed);
                            failure = Some((task, e));
                            break;
                        }
                    }
                    (shard, table_result, failure)
                })
            })
            .collect();
        // A thread that never ran took no task: its share is empty.
        let idle = || (Shard::new(new_acc()), None, None);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(idle))
            .collect()
    });

    let mut shards = Vec::with_capacity(outcomes.len());
    let mut table_result = None;
    let mut failure: Option<(usize, StateError)> = None;
    for (shard, tables, failed) in outcomes {
        shards.push(shard);
        if tables.is_some() {
            table_result = tables;
        }
        if let Some((task, e)) = failed {
            if failure.as_ref().is_none_or(|(t, _)| task < *t) {
                failure = Some((task, e));
            }
        }
    }
    let Some(tables) = table_result else {
        return Err(dbs[0].bad("the other tables were never read".into()));
    };
    let tables = tables?;
    if let Some((_, e)) = failure {
        return Err(e);
    }
    let mut digests: Vec<RangeDigest> = Vec::new();
    for shard in &mut shards {
        digests.append(&mut shard.digests);
    }
    digests.sort_unstable_by_key(|d| d.range);
    let acc = remove_duplicates(dbs, shards)?;
    Ok((tables, acc, digests))
}

/// The backup's fingerprinting of every contributions row during the window scan
/// ([`Prescan`]): the rows outside the window are read too (SQLite evaluates the window's
/// condition as before, as a column), fingerprinted by rowid range, and only the rows inside it
/// are counted.
pub(super) struct PrescanPlan {
    spec: Prescan,
    /// The table's columns, in declaration order.
    columns: Vec<String>,
    secret: Vec<bool>,
    /// Where the window's five columns are in `columns`.
    window: [usize; 5],
    sql: String,
}

impl PrescanPlan {
    /// A plan for `columns` (all of the table's, checked by the backup's reader; none of them
    /// named `rowid`, so the rowid is read, ranged and ordered by that name, as the plain scan
    /// does).
    pub(super) fn new(
        spec: Prescan,
        columns: Vec<String>,
        window_columns: &[&str; 5],
    ) -> Result<PrescanPlan, String> {
        let mut window = [0; 5];
        for (slot, name) in window.iter_mut().zip(window_columns) {
            *slot = columns
                .iter()
                .position(|c| c.eq_ignore_ascii_case(name))
                .ok_or_else(|| format!("contributions has no column {name}"))?;
        }
        let table = super::backup::PRESCANNED_TABLE;
        let secret = columns.iter().map(|c| (spec.is_secret)(table, c)).collect();
        let mut sql = "SELECT rowid".to_owned();
        for c in &columns {
            sql.push_str(", ");
            sql.push_str(&super::backup::quote(c));
        }
        // The window's condition exactly as the plain scan's WHERE has it (same affinity and
        // collation), as a column: 1 inside the window, 0 or NULL outside.
        sql.push_str(&format!(
            ", (created_at >= ?3 AND created_at <= ?4) FROM {table} NOT INDEXED \
             WHERE rowid >= ?1 AND rowid <= ?2 ORDER BY rowid"
        ));
        Ok(PrescanPlan {
            spec,
            columns,
            secret,
            window,
            sql,
        })
    }

    /// The table's columns.
    pub(super) fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Rowids per range: the chunks must hold whole ranges.
    pub(super) fn range_rowids(&self) -> i64 {
        self.spec.range_rowids
    }
}

/// A reading thread's statement, prepared at its first chunk and reused for the next.
#[derive(Default)]
struct Statements<'db> {
    window: Option<rusqlite::Statement<'db>>,
    prescan: Option<RawStatement<'db>>,
}

/// Reads one chunk into `shard`, stopping at its first failing row.
fn scan_chunk<'db, A: Accumulator>(
    db: &'db Db,
    statements: &mut Statements<'db>,
    opts: &ReadOptions,
    prescan: Option<&PrescanPlan>,
    (lo, hi): (i64, i64),
    state: &foldhash::quality::RandomState,
    shard: &mut Shard<A>,
) -> Result<(), StateError> {
    if let Some(plan) = prescan {
        return prescan_chunk(
            db,
            &mut statements.prescan,
            opts,
            plan,
            (lo, hi),
            state,
            shard,
        );
    }
    // NOT INDEXED: the rowid range is the plan, whatever index a deployment may have added on
    // created_at (SQLite still seeks by rowid under NOT INDEXED).
    let stmt = match &mut statements.window {
        Some(stmt) => stmt,
        None => statements.window.insert(
            db.conn
                .prepare(
                    "SELECT rowid, github_user, event_type, repo, created_at, payload_json \
                     FROM contributions NOT INDEXED WHERE rowid >= ?1 AND rowid <= ?2 \
                     AND created_at >= ?3 AND created_at <= ?4",
                )
                .map_err(|e| db.err(e))?,
        ),
    };
    let mut rows = stmt
        .query(rusqlite::params![
            lo,
            hi,
            opts.period_start,
            opts.period_end
        ])
        .map_err(|e| db.err(e))?;
    while let Some(row) = rows.next().map_err(|e| db.err(e))? {
        let rowid = match row.get_ref(0).map_err(|e| db.err(e))? {
            ValueRef::Integer(n) => n,
            other => return Err(bad_rowid(db, other)),
        };
        let values: [ValueRef<'_>; 5] = [
            row.get_ref(1).map_err(|e| db.err(e))?,
            row.get_ref(2).map_err(|e| db.err(e))?,
            row.get_ref(3).map_err(|e| db.err(e))?,
            row.get_ref(4).map_err(|e| db.err(e))?,
            row.get_ref(5).map_err(|e| db.err(e))?,
        ];
        count_row(db, state, shard, rowid, values)?;
    }
    Ok(())
}

/// Reads one chunk with every column ([`PrescanPlan`]), fingerprinting its ranges, and counts
/// the rows inside the window into `shard`. Through [`RawStatement`]: this loop reads every
/// value of the table on every run.
fn prescan_chunk<'db, A: Accumulator>(
    db: &'db Db,
    stmt: &mut Option<RawStatement<'db>>,
    opts: &ReadOptions,
    plan: &PrescanPlan,
    (lo, hi): (i64, i64),
    state: &foldhash::quality::RandomState,
    shard: &mut Shard<A>,
) -> Result<(), StateError> {
    let stmt = match stmt {
        Some(stmt) => {
            stmt.reset();
            stmt
        }
        None => stmt.insert(RawStatement::prepare(&db.conn, &plan.sql).map_err(|e| db.err(e))?),
    };
    stmt.bind_int(1, lo).map_err(|e| db.err(e))?;
    stmt.bind_int(2, hi).map_err(|e| db.err(e))?;
    stmt.bind_text(3, &opts.period_start)
        .map_err(|e| db.err(e))?;
    stmt.bind_text(4, &opts.period_end).map_err(|e| db.err(e))?;
    let n = plan.columns.len();
    // Result columns: the rowid, the table's columns, the window's flag.
    let flag =
        c_int::try_from(n + 1).map_err(|_| db.bad(format!("contributions has {n} columns")))?;
    // The range being fingerprinted: its number, fingerprint and rows. A chunk holds whole
    // ranges (see [`Chunks::new`]), so a range never continues in another chunk.
    let mut current: Option<(u64, Fingerprint, u64)> = None;
    while stmt.step().map_err(|e| db.err(e))? {
        let rowid = match stmt.value(0) {
            ValueRef::Integer(n) => n,
            other => return Err(bad_rowid(db, other)),
        };
        let range = (plan.spec.range_of)(rowid);
        if current.as_ref().is_none_or(|c| c.0 != range) {
            if let Some((range, fp, rows)) = current.take() {
                shard.digests.push(RangeDigest {
                    range,
                    fingerprint: fp.finish(),
                    rows,
                });
            }
            let fp = Fingerprint::new(&plan.spec.key, plan.spec.format, &plan.columns);
            current = Some((range, fp, 0));
        }
        // Result column `i + 1` is the table's column `i` (column 0 is the rowid); an index
        // past the columns reads as NULL, and `i < n` here.
        let column = |i: usize| stmt.value(c_int::try_from(i + 1).unwrap_or(c_int::MAX));
        if let Some((_, fp, rows)) = current.as_mut() {
            fp.row_from(rowid, n, column, &plan.secret);
            *rows += 1;
        }
        if matches!(stmt.value(flag), ValueRef::Integer(1)) {
            let window = plan.window.map(column);
            count_row(db, state, shard, rowid, window)?;
        }
    }
    if let Some((range, fp, rows)) = current {
        shard.digests.push(RangeDigest {
            range,
            fingerprint: fp.finish(),
            rows,
        });
    }
    Ok(())
}

/// A scanned row whose rowid is not an integer (a `rowid` column of another type).
fn bad_rowid(db: &Db, value: ValueRef<'_>) -> StateError {
    db.bad(format!("contributions has a rowid of {value:?}"))
}

/// Counts one row of the window into `shard`, keeping its fingerprint for the duplicates.
fn count_row<A: Accumulator>(
    db: &Db,
    state: &foldhash::quality::RandomState,
    shard: &mut Shard<A>,
    rowid: i64,
    values: [ValueRef<'_>; 5],
) -> Result<(), StateError> {
    let fp = fingerprint(state, &values);
    shard.buckets[(fp >> (64 - BUCKET_BITS)) as usize].push((fp, rowid));
    let c = contribution(&values).map_err(|reason| db.bad(reason))?;
    shard
        .acc
        .add(c)
        .map_err(|reason| db.bad(format!("contributions row {rowid}: {reason}")))
}

/// The row as a contribution, or which column is not text.
fn contribution<'a>(values: &[ValueRef<'a>; 5]) -> Result<Contribution<'a>, String> {
    Ok(Contribution {
        github_user: checked_text(values[0], "contributions.github_user")?,
        event_type: checked_text(values[1], "contributions.event_type")?,
        payload_json: checked_text(values[4], "contributions.payload_json")?,
    })
}

/// Groups the fingerprints, confirms each repeated one against the stored rows and removes
/// every true duplicate; returns all the shards' rows merged. The buckets are shared out
/// between the connections as the chunks were.
fn remove_duplicates<A: Accumulator>(
    dbs: &mut [Db],
    shards: Vec<Shard<A>>,
) -> Result<A, StateError> {
    let mut accs = Vec::with_capacity(shards.len());
    let mut buckets = Vec::with_capacity(shards.len());
    for shard in shards {
        accs.push(shard.acc);
        buckets.push(shard.buckets);
    }
    let buckets = &buckets;
    let next = AtomicUsize::new(0);
    let path = dbs.first().map(|db| db.path.clone()).unwrap_or_default();
    let lost = || StateError::BadData {
        path: path.clone(),
        reason: "a thread removing duplicates never ran".into(),
    };
    // One shard per connection: each connection removes duplicates from its own accumulator
    // (counts may dip below zero there; the merged total is exact).
    let results: Vec<Result<A, StateError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = dbs
            .iter_mut()
            .zip(accs)
            .map(|(db, mut acc)| {
                let next = &next;
                threads::spawn(scope, move || {
                    let mut by_rowid = db
                        .conn
                        .prepare(
                            "SELECT github_user, event_type, repo, created_at, payload_json \
                             FROM contributions WHERE rowid = ?1",
                        )
                        .map_err(|e| db.err(e))?;
                    let mut group: Vec<(u64, i64)> = Vec::new();
                    loop {
                        let b = next.fetch_add(1, Ordering::Relaxed);
                        if b >= 1 << BUCKET_BITS {
                            break;
                        }
                        group.clear();
                        for shard in buckets {
                            group.extend_from_slice(&shard[b]);
                        }
                        group.sort_unstable();
                        for run in group.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
                            let rowids = run.iter().map(|&(_, rowid)| rowid);
                            let stored = |rowid| stored_row(db, &mut by_rowid, rowid);
                            for (rowid, dup) in duplicates(rowids, stored)? {
                                let values: [ValueRef<'_>; 5] =
                                    std::array::from_fn(|i| ValueRef::from(&dup[i]));
                                let named =
                                    |reason| db.bad(format!("contributions row {rowid}: {reason}"));
                                let c = contribution(&values).map_err(&named)?;
                                acc.remove(c).map_err(named)?;
                            }
                        }
                    }
                    Ok(acc)
                })
            })
            .collect();
        // Unreachable (see `threads::Handle::join`), but an accumulator lost would be a wrong
        // count, so it fails the read rather than pass unnoticed.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|| Err(lost())))
            .collect()
    });
    let mut merged: Option<A> = None;
    for acc in results.into_iter().collect::<Result<Vec<_>, _>>()? {
        match &mut merged {
            Some(m) => m.merge(acc),
            None => merged = Some(acc),
        }
    }
    merged.ok_or_else(|| dbs[0].bad("no connection read the window".into()))
}

/// The rows among `rowids` (sharing one fingerprint, in scan order) that equal an earlier one,
/// with their rowids, as stored. Rows that differ despite the fingerprint (a collision) are
/// all kept.
fn duplicates(
    rowids: impl Iterator<Item = i64>,
    mut stored: impl FnMut(i64) -> Result<Vec<Value>, StateError>,
) -> Result<Vec<(i64, Vec<Value>)>, StateError> {
    let mut distinct: Vec<Vec<Value>> = Vec::new();
    let mut dups = Vec::new();
    for rowid in rowids {
        let row = stored(rowid)?;
        if distinct.contains(&row) {
            dups.push((rowid, row));
        } else {
            distinct.push(row);
        }
    }
    Ok(dups)
}

/// A contribution row's five compared columns, as stored.
fn stored_row(
    db: &Db,
    by_rowid: &mut rusqlite::Statement<'_>,
    rowid: i64,
) -> Result<Vec<Value>, StateError> {
    let mut found = by_rowid.query([rowid]).map_err(|e| db.err(e))?;
    let Some(row) = found.next().map_err(|e| db.err(e))? else {
        return Err(db.bad(format!(
            "contributions row {rowid} vanished inside a read transaction"
        )));
    };
    (0..5)
        .map(|i| row.get::<_, Value>(i).map_err(|e| db.err(e)))
        .collect()
}

/// A 64-bit hash of the values with their SQLite types, so that rows `SELECT DISTINCT`
/// tells apart (an INTEGER and a TEXT of the same digits, `"ab","c"` and `"a","bc"`)
/// almost always get different fingerprints.
///
/// foldhash's `quality` hasher (a folded 64x64→128-bit multiply per 16 bytes), seeded randomly
/// per process so rows cannot be crafted to collide on purpose; std's SipHash-1-3 was ~6% of
/// an export on its own. A collision costs one comparison, never a row.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_rowids_once_in_order() {
        let c = Chunks::new(Some((5, 104)), 10, 1);
        assert_eq!(c.count, 10);
        assert_eq!(c.range(0), (5, 14));
        assert_eq!(c.range(9), (95, 104));
        // At most MAX_CHUNKS chunks, however small the minimum.
        let c = Chunks::new(Some((1, 1_000_000)), 1, 1);
        assert_eq!(c.count, 64);
        assert_eq!(c.range(63).1, 1_000_000);
        // The whole of i64 without overflow.
        let c = Chunks::new(Some((i64::MIN, i64::MAX)), 16_384, 1);
        assert_eq!(c.range(0).0, i64::MIN);
        assert_eq!(c.range(c.count - 1).1, i64::MAX);
        // An empty table has no chunks.
        assert_eq!(Chunks::new(None, 10, 1).count, 0);
    }

    #[test]
    fn aligned_chunks_hold_whole_ranges() {
        for (lo, hi, min) in [
            (5, 100_000, 1_000),
            (-300, 70_000, 16_384),
            (256, 257, 1),
            (i64::MIN, i64::MAX, 16_384),
            (i64::MAX - 10, i64::MAX, 1),
        ] {
            let c = Chunks::new(Some((lo, hi)), min, 256);
            assert!(c.count >= 1 && c.count <= MAX_CHUNKS as usize);
            let mut next = lo;
            for i in 0..c.count {
                let (a, b) = c.range(i);
                assert_eq!(a, next, "chunk {i} of {lo}..={hi}");
                assert!(a <= b);
                if i > 0 {
                    assert_eq!(
                        a.rem_euclid(256),
                        0,
                        "chunk {i} of {lo}..={hi} starts mid-range"
                    );
                }
                next = b.wrapping_add(1);
            }
            assert_eq!(c.range(c.count - 1).1, hi);
        }
    }

    #[test]
    fn equal_stored_rows_are_duplicates_and_collisions_are_kept() {
        use rusqlite::types::Value::Text;
        let rows = |rowid: i64| -> Result<Vec<Value>, StateError> {
            // Rows 1 and 3 are equal; row 2 only shares their fingerprint; row 4 copies row 2.
            Ok(vec![Text(if rowid % 2 == 1 { "a" } else { "b" }.into())])
        };
        let dups = duplicates([1, 2, 3, 4].into_iter(), rows).unwrap();
        assert_eq!(
            dups,
            vec![(3, vec![Text("a".into())]), (4, vec![Text("b".into())])]
        );
        let none = duplicates([1, 2].into_iter(), rows).unwrap();
        assert!(none.is_empty());
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
}
