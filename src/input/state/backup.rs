//! Raw access to every table of `state.db` for the backup, inside the snapshot's own read
//! transaction (see [`super::read_with`]): the schema as stored, and rows in rowid order, whole
//! tables or one rowid range at a time, as SQLite's own values (no conversion, no copy).

use std::cell::RefCell;
use std::ffi::c_int;
use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::raw::RawStatement;
use super::StateError;

/// Reads the database for the backup; lives only inside the read transaction.
pub struct Reader<'c> {
    conn: &'c Connection,
    path: &'c Path,
    db: &'c super::Db,
    /// The statement [`Reader::rows`] ran last, by its SQL.
    last: RefCell<Option<(String, RawStatement<'c>)>>,
}

/// The one table the contributions window already scans whole: the backup can have its
/// fingerprints made by that scan ([`Hook::prescan`]) instead of reading it a second time.
pub const PRESCANNED_TABLE: &str = "contributions";

/// What runs inside the snapshot's read transaction (the backup), so that it sees exactly the
/// state the snapshot describes.
///
/// Why two steps: the window scan reads every row of [`PRESCANNED_TABLE`] anyway (a million
/// rows at a year of a large organisation), so when [`Hook::prescan`] asks for it, that scan
/// also fingerprints each rowid range of the table, and the hook gets the fingerprints in
/// [`Hook::finish`] instead of scanning the table again. [`Hook::read`] runs beside the scan
/// (on the connection that read the snapshot's tables) and reads everything else.
pub trait Hook: Send {
    /// Fingerprint [`PRESCANNED_TABLE`] during the window scan, with this key; `None` when
    /// [`Hook::read`] reads it itself (a first backup, which writes every range as it reads).
    fn prescan(&self) -> Option<Prescan>;
    /// Runs beside the window scan; `prescanned` says whether the scan fingerprints
    /// [`PRESCANNED_TABLE`]. It may decline what [`Hook::prescan`] asked (a table the scan
    /// does not address by its real rowid, or one the hook's own read refuses, so that the
    /// refusal comes in its usual place): then the hook reads the table itself, as without a
    /// prescan.
    fn read(&mut self, reader: &Reader<'_>, prescanned: bool) -> Result<(), StateError>;
    /// Runs after the window scan, still in the transaction, with what it fingerprinted
    /// (`None` when nothing was asked or the scan declined).
    fn finish(
        &mut self,
        reader: &Reader<'_>,
        prescanned: Option<Prescanned>,
    ) -> Result<(), StateError>;
}

/// How the window scan fingerprints [`PRESCANNED_TABLE`]: as [`Fingerprint`] under `key` and
/// `format`, one per rowid range.
#[derive(Clone, Copy)]
pub struct Prescan {
    /// The fingerprints' key.
    pub key: [u8; 32],
    /// The version of the files the fingerprints stand for.
    pub format: u32,
    /// Rowids per range, a power of two: every range starts at a multiple of it.
    pub range_rowids: i64,
    /// The range a rowid falls in (ranges are numbered in rowid order).
    pub range_of: fn(i64) -> u64,
    /// Whether a column is published as NULL / not NULL only.
    pub is_secret: fn(&str, &str) -> bool,
}

/// What the window scan fingerprinted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prescanned {
    /// The table's columns, as [`Reader::columns`] gives them.
    pub columns: Vec<String>,
    /// Every range holding rows, in order.
    pub ranges: Vec<RangeDigest>,
}

/// One rowid range of a table as fingerprinted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeDigest {
    /// Its number ([`Prescan::range_of`]).
    pub range: u64,
    /// [`Fingerprint::finish`] over its rows.
    pub fingerprint: [u8; 16],
    /// How many rows it holds.
    pub rows: u64,
}

/// What [`Reader::rows`] calls for each row: its rowid and values.
pub type EachRow<'e> = &'e mut dyn FnMut(i64, &[ValueRef<'_>]) -> Result<(), StateError>;

/// One `sqlite_master` row, verbatim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterRow {
    /// `table`, `index`, `view`, `trigger`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its table.
    pub tbl_name: String,
    /// Its SQL as stored.
    pub sql: Option<String>,
}

impl<'c> Reader<'c> {
    pub(super) fn new(db: &'c super::Db) -> Reader<'c> {
        Reader {
            conn: &db.conn,
            path: &db.path,
            db,
            last: RefCell::new(None),
        }
    }

    /// As the export names SQLite's failures (a damaged page is "corrupt" whichever read
    /// meets it first, the backup's or the export's scan).
    fn err(&self, e: rusqlite::Error) -> StateError {
        self.db.err(e)
    }

    /// A failure found while reading, naming the database.
    pub fn bad(&self, reason: String) -> StateError {
        StateError::BadData {
            path: self.path.to_owned(),
            reason,
        }
    }

    /// `PRAGMA user_version`.
    pub fn user_version(&self) -> Result<i64, StateError> {
        self.conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| self.err(e))
    }

    /// `sqlite_master` in rowid order (the order `.schema` and `.dump` print it in).
    pub fn master(&self) -> Result<Vec<MasterRow>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY rowid")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(MasterRow {
                    kind: r.get(0)?,
                    name: r.get(1)?,
                    tbl_name: r.get(2)?,
                    sql: r.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }

    /// A table's columns in declaration order. A table whose rows cannot be copied value by
    /// value (generated or hidden columns, no rowid) is refused, naming it.
    pub fn columns(&self, table: &str) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, hidden FROM pragma_table_xinfo(?1) ORDER BY cid")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([table], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, hidden) = row.map_err(|e| self.err(e))?;
            if hidden != 0 {
                return Err(self.bad(format!(
                    "table {table} has a hidden or generated column {name}, which the backup cannot copy (snapshots.backup: false publishes without a backup)"
                )));
            }
            out.push(name);
        }
        if self.rowid_name(&out).is_none() {
            return Err(self.bad(format!(
                "table {table} has columns named rowid, _rowid_ and oid; the backup cannot address its rows (snapshots.backup: false publishes without a backup)"
            )));
        }
        let probe = format!(
            "SELECT {} FROM {} LIMIT 0",
            self.rowid_name(&out).unwrap_or("rowid"),
            quote(table)
        );
        if self.conn.prepare(&probe).is_err() {
            return Err(self.bad(format!(
                "table {table} has no rowid (WITHOUT ROWID); the backup cannot copy it (snapshots.backup: false publishes without a backup)"
            )));
        }
        Ok(out)
    }

    /// The name a table with `columns` (as [`Reader::columns`] accepted them) has its rowid
    /// under.
    pub(super) fn rowid_column(&self, columns: &[String]) -> &'static str {
        self.rowid_name(columns).unwrap_or("rowid")
    }

    fn rowid_name(&self, columns: &[String]) -> Option<&'static str> {
        ["rowid", "_rowid_", "oid"]
            .into_iter()
            .find(|n| !columns.iter().any(|c| c.eq_ignore_ascii_case(n)))
    }

    /// Calls `each(rowid, values)` for every row of `table` with `lo <= rowid <= hi` (all rows
    /// when `range` is `None`), in rowid order; `values` in `columns` order.
    pub fn rows(
        &self,
        table: &str,
        columns: &[String],
        range: Option<(i64, i64)>,
        each: EachRow<'_>,
    ) -> Result<(), StateError> {
        let rowid = self.rowid_name(columns).unwrap_or("rowid");
        let mut sql = format!("SELECT {rowid}");
        for c in columns {
            sql.push_str(", ");
            sql.push_str(&quote(c));
        }
        sql.push_str(" FROM ");
        sql.push_str(&quote(table));
        if range.is_some() {
            sql.push_str(&format!(" WHERE {rowid} BETWEEN ?1 AND ?2"));
        }
        sql.push_str(&format!(" ORDER BY {rowid}"));
        // The last statement is kept: re-reading changed ranges asks for the same one again
        // and again. It is taken out while in use, so a nested call prepares its own.
        let (sql, mut stmt) = match self.last.take() {
            Some((text, mut stmt)) if text == sql => {
                stmt.reset();
                (text, stmt)
            }
            _ => {
                let stmt = RawStatement::prepare(self.conn, &sql).map_err(|e| self.err(e))?;
                (sql, stmt)
            }
        };
        if let Some((lo, hi)) = range {
            stmt.bind_int(1, lo).map_err(|e| self.err(e))?;
            stmt.bind_int(2, hi).map_err(|e| self.err(e))?;
        }
        let n = columns.len();
        let count = c_int::try_from(n + 1)
            .map_err(|_| self.bad(format!("table {table} has {n} columns")))?;
        // The values of one row, without an allocation per row for Gitcord's narrow tables.
        const INLINE: usize = 16;
        while stmt.step().map_err(|e| self.err(e))? {
            let id = match stmt.value(0) {
                ValueRef::Integer(id) => id,
                other => return Err(self.bad(format!("table {table} has a rowid of {other:?}"))),
            };
            if n <= INLINE {
                let mut values = [ValueRef::Null; INLINE];
                for (i, v) in (1..).zip(values.iter_mut().take(n)) {
                    *v = stmt.value(i);
                }
                each(id, &values[..n])?;
            } else {
                let values: Vec<ValueRef<'_>> = (1..count).map(|i| stmt.value(i)).collect();
                each(id, &values)?;
            }
        }
        self.last.replace(Some((sql, stmt)));
        Ok(())
    }
}

/// A keyed 128-bit fingerprint of one range's rows, over exactly what its file would hold
/// (rowids, type tags, lengths and bytes; a secret column as NULL / not NULL only), so equal fingerprints
/// mean equal files. BLAKE3 in its keyed mode (a PRF), with a random key kept in the clone, so
/// that nobody who can put text into Gitcord's rows (GitHub payloads) can craft two ranges with
/// one fingerprint. It is the cost of every run's look at every row, and BLAKE3 hashes them
/// several times faster than SHA-256 (the fingerprint this replaced).
pub struct Fingerprint {
    hasher: blake3::Hasher,
    /// The rows' bytes, hashed a block at a time: one hash call per row value cost more than
    /// the hashing itself (1.3 million rows, ten values each, per run at 1M contributions).
    buf: Vec<u8>,
}

/// How many bytes a fingerprint gathers before hashing them.
const FINGERPRINT_BLOCK: usize = 64 * 1024;

thread_local! {
    /// The buffer of the last fingerprint this thread finished, for its next one.
    static SPARE_BUFFER: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

impl Fingerprint {
    /// A fingerprint under `key` for a table with these `columns` (a changed column list
    /// changes every fingerprint), and `format`, the version of the files it stands for (a new
    /// format changes every fingerprint too). The number of columns comes first: without it,
    /// a name could be read as the start of a row (a column dropped, a row changed, and the
    /// range would hash the same bytes).
    pub fn new(key: &[u8; 32], format: u32, columns: &[String]) -> Fingerprint {
        let mut hasher = blake3::Hasher::new_keyed(key);
        hasher.update(&format.to_le_bytes());
        hasher.update(&(columns.len() as u64).to_le_bytes());
        for c in columns {
            hasher.update(&(c.len() as u64).to_le_bytes());
            hasher.update(c.as_bytes());
        }
        // The previous fingerprint's buffer, if this thread finished one: a fresh 68 KB buffer
        // per range (5,000 ranges a run at 1M contributions) had the allocator hand memory back
        // and the kernel zero new pages for every one.
        let mut buf = SPARE_BUFFER.with(|spare| spare.take());
        buf.clear();
        buf.reserve(FINGERPRINT_BLOCK + 4096);
        Fingerprint { hasher, buf }
    }

    /// Adds one row.
    pub fn row(&mut self, rowid: i64, values: &[ValueRef<'_>], secret: &[bool]) {
        self.row_from(rowid, values.len(), |i| values[i], secret);
    }

    /// Adds one row of `n` values, value `i` being `value(i)`: the window scan hands them
    /// over straight from SQLite, without gathering them first.
    pub(super) fn row_from<'v>(
        &mut self,
        rowid: i64,
        n: usize,
        value: impl Fn(usize) -> ValueRef<'v>,
        secret: &[bool],
    ) {
        let buf = &mut self.buf;
        buf.extend_from_slice(&rowid.to_le_bytes());
        for i in 0..n {
            let secret = secret.get(i).copied().unwrap_or(false);
            match value(i) {
                ValueRef::Null => buf.push(0),
                _ if secret => buf.push(5),
                ValueRef::Integer(n) => {
                    buf.push(1);
                    buf.extend_from_slice(&n.to_le_bytes());
                }
                ValueRef::Real(x) => {
                    buf.push(2);
                    buf.extend_from_slice(&x.to_bits().to_le_bytes());
                }
                ValueRef::Text(b) => {
                    buf.push(3);
                    push_length(buf, b.len());
                    buf.extend_from_slice(b);
                }
                ValueRef::Blob(b) => {
                    buf.push(4);
                    push_length(buf, b.len());
                    buf.extend_from_slice(b);
                }
            }
        }
        if buf.len() >= FINGERPRINT_BLOCK {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }

    /// The fingerprint.
    pub fn finish(mut self) -> [u8; 16] {
        self.hasher.update(&self.buf);
        let full = self.hasher.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full.as_bytes()[..16]);
        let buf = std::mem::take(&mut self.buf);
        SPARE_BUFFER.with(|spare| spare.replace(buf));
        out
    }
}

/// A length as LEB128 (seven bits a byte, low first, the high bit saying more follow): one
/// byte for most of Gitcord's values, where eight fixed bytes made a third of what every run
/// hashes. Prefix-free, so a row's bytes still decode one way only.
fn push_length(buf: &mut Vec<u8>, len: usize) {
    let mut n = len as u64;
    while n >= 0x80 {
        buf.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    buf.push(n as u8);
}

/// An SQL identifier, quoted.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the column list ends and the rows begin is part of what is fingerprinted: a
    /// table of two columns and one of its first column only, whose rows spell the same bytes
    /// once the second column's name is read as the start of a row, differ. (The second name
    /// is text tag 3 and a length of 10, the first table's row is read as the second's
    /// text.)
    #[test]
    fn a_column_list_cannot_be_read_as_rows() {
        let key = [7u8; 32];
        let two = vec!["a".to_string(), "\u{3}\n".to_string()];
        let mut f = Fingerprint::new(&key, 1, &two);
        f.row(5, &[ValueRef::Null, ValueRef::Null], &[false, false]);
        let one = vec!["a".to_string()];
        let mut text = 5i64.to_le_bytes().to_vec();
        text.extend_from_slice(&[0, 0]);
        let mut g = Fingerprint::new(&key, 1, &one);
        g.row(2, &[ValueRef::Text(&text)], &[false]);
        assert_ne!(f.finish(), g.finish());
    }

    #[test]
    fn fingerprints_see_type_value_and_secret_nullness_only() {
        let key = [7u8; 32];
        let cols = vec!["a".to_string()];
        let fp = |v: ValueRef<'_>, secret: bool| {
            let mut f = Fingerprint::new(&key, 1, &cols);
            f.row(1, &[v], &[secret]);
            f.finish()
        };
        assert_ne!(
            fp(ValueRef::Integer(1), false),
            fp(ValueRef::Text(b"1"), false)
        );
        assert_ne!(
            fp(ValueRef::Text(b"a"), false),
            fp(ValueRef::Text(b"b"), false)
        );
        assert_eq!(
            fp(ValueRef::Text(b"a"), true),
            fp(ValueRef::Text(b"b"), true)
        );
        assert_ne!(fp(ValueRef::Null, true), fp(ValueRef::Text(b"b"), true));
        // Where one value ends and the next begins is part of what is fingerprinted, at any
        // length (LEB128 lengths of one to three bytes here).
        let two = vec!["a".to_string(), "b".to_string()];
        let pair = |a: &[u8], b: &[u8]| {
            let mut f = Fingerprint::new(&key, 1, &two);
            f.row(1, &[ValueRef::Text(a), ValueRef::Text(b)], &[false, false]);
            f.finish()
        };
        for len in [0, 1, 127, 128, 300, 16_384, 70_000] {
            let long = vec![b'x'; len + 1];
            assert_ne!(pair(&long[..len], b"xy"), pair(&long, b"y"), "{len}");
            if len > 0 {
                assert_ne!(pair(&long[..len], b""), pair(b"", &long[..len]), "{len}");
            }
        }
        let mut buf = Vec::new();
        for (len, bytes) in [
            (0usize, &[0u8][..]),
            (127, &[0x7f]),
            (128, &[0x80, 1]),
            (16_384, &[0x80, 0x80, 1]),
        ] {
            buf.clear();
            push_length(&mut buf, len);
            assert_eq!(buf, bytes, "{len}");
        }
        let mut other = Fingerprint::new(&[8u8; 32], 1, &cols);
        other.row(1, &[ValueRef::Integer(1)], &[false]);
        assert_ne!(other.finish(), fp(ValueRef::Integer(1), false));
    }
}
