//! A read-only statement stepped through SQLite's C API, for the scans that hand every column
//! of every row to the backup's fingerprints: the window scan with a prescan, and
//! [`super::backup::Reader::rows`]. At a large organisation they read 1.3 million rows of
//! about eight values each on every run.
//!
//! Why not rusqlite's `Row::get_ref`: it makes four C calls per value (`column_count`,
//! `column_type`, then `column_text` and `column_bytes`). Each `sqlite3_column_*` call
//! looks up the result column and enters and leaves the connection's mutex, even a
//! no-op one. [`RawStatement::value`] takes the column's value once (`sqlite3_column_value`)
//! and reads its type, bytes and length from it. Those are plain field reads. The values are
//! the same ones, as the tests check against rusqlite.
//!
//! Safety rests on three things the types enforce:
//! - the statement borrows its [`Connection`], so it cannot outlive it;
//! - it is neither `Send` nor `Sync`, like the `&Connection` it holds. The connection is
//!   `!Sync`, so only one thread steps it. That is the condition under which SQLite allows
//!   reading a value from `sqlite3_column_value` ("unprotected" values need no mutex on a
//!   connection no other thread uses);
//! - a value borrows the statement, and stepping, resetting or binding needs it mutably. So
//!   no value is read after SQLite has moved past its row.

use std::ffi::{c_int, CStr, CString};
use std::marker::PhantomData;
use std::ptr::NonNull;

use rusqlite::ffi;
use rusqlite::types::ValueRef;
use rusqlite::Connection;

/// A prepared statement, finalized on drop.
pub(super) struct RawStatement<'c> {
    stmt: NonNull<ffi::sqlite3_stmt>,
    db: *mut ffi::sqlite3,
    /// Ties the statement to its connection, and keeps it on the connection's thread.
    _conn: PhantomData<&'c Connection>,
}

impl<'c> RawStatement<'c> {
    /// Prepares `sql` (one statement) on `conn`.
    pub(super) fn prepare(conn: &'c Connection, sql: &str) -> rusqlite::Result<RawStatement<'c>> {
        let text = CString::new(sql).map_err(|_| refusal("the SQL holds a NUL byte"))?;
        // SAFETY: `handle` is the live connection `conn` borrows for 'c; the statement is
        // finalized in `drop`, within 'c.
        unsafe {
            let db = conn.handle();
            let mut stmt = std::ptr::null_mut();
            let rc =
                ffi::sqlite3_prepare_v2(db, text.as_ptr(), -1, &mut stmt, std::ptr::null_mut());
            if rc != ffi::SQLITE_OK {
                if !stmt.is_null() {
                    ffi::sqlite3_finalize(stmt);
                }
                return Err(error(db, rc));
            }
            match NonNull::new(stmt) {
                Some(stmt) => Ok(RawStatement {
                    stmt,
                    db,
                    _conn: PhantomData,
                }),
                // Only whitespace or a comment: not a statement this module is used with.
                None => Err(refusal("the SQL holds no statement")),
            }
        }
    }

    /// Rewinds the statement for new parameters.
    pub(super) fn reset(&mut self) {
        // SAFETY: a live statement. The result repeats the last step's error, already
        // reported by `step`.
        unsafe {
            ffi::sqlite3_reset(self.stmt.as_ptr());
        }
    }

    /// Binds parameter `index` (from 1) to an integer.
    pub(super) fn bind_int(&mut self, index: c_int, value: i64) -> rusqlite::Result<()> {
        // SAFETY: a live statement, not being stepped (this borrows it mutably).
        let rc = unsafe { ffi::sqlite3_bind_int64(self.stmt.as_ptr(), index, value) };
        self.check(rc)
    }

    /// Binds parameter `index` (from 1) to a text; SQLite takes its own copy.
    pub(super) fn bind_text(&mut self, index: c_int, value: &str) -> rusqlite::Result<()> {
        let len = c_int::try_from(value.len())
            .map_err(|_| refusal("a text of more than 2 GB cannot be bound"))?;
        // SAFETY: `value` is valid for `len` bytes during the call, and SQLITE_TRANSIENT has
        // SQLite copy it before returning.
        let rc = unsafe {
            ffi::sqlite3_bind_text(
                self.stmt.as_ptr(),
                index,
                value.as_ptr().cast(),
                len,
                ffi::SQLITE_TRANSIENT(),
            )
        };
        self.check(rc)
    }

    /// Steps to the next row: `true` when there is one.
    pub(super) fn step(&mut self) -> rusqlite::Result<bool> {
        // SAFETY: a live statement; values of the previous row cannot be held across this
        // call (they borrow `self`).
        match unsafe { ffi::sqlite3_step(self.stmt.as_ptr()) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            rc => Err(error(self.db, rc)),
        }
    }

    /// Column `index` (from 0) of the current row, as SQLite holds it. Only meaningful after
    /// `step` returned `true`, and `index` must be below the statement's column count: an
    /// index out of range reads as NULL (SQLite's own answer), never out of bounds.
    #[inline]
    pub(super) fn value(&self, index: c_int) -> ValueRef<'_> {
        // SAFETY: see the module doc: the statement and connection are live and used by this
        // thread only, and the returned slices borrow `self`, so they end before the next
        // step, reset or bind. SQLite returns a NULL value for a column out of range.
        unsafe {
            let v = ffi::sqlite3_column_value(self.stmt.as_ptr(), index);
            match ffi::sqlite3_value_type(v) {
                ffi::SQLITE_INTEGER => ValueRef::Integer(ffi::sqlite3_value_int64(v)),
                ffi::SQLITE_FLOAT => ValueRef::Real(ffi::sqlite3_value_double(v)),
                // The pointer first, then the length, as SQLite asks.
                ffi::SQLITE_TEXT => ValueRef::Text(bytes(
                    ffi::sqlite3_value_text(v).cast(),
                    ffi::sqlite3_value_bytes(v),
                )),
                ffi::SQLITE_BLOB => ValueRef::Blob(bytes(
                    ffi::sqlite3_value_blob(v).cast(),
                    ffi::sqlite3_value_bytes(v),
                )),
                _ => ValueRef::Null,
            }
        }
    }

    fn check(&self, rc: c_int) -> rusqlite::Result<()> {
        match rc {
            ffi::SQLITE_OK => Ok(()),
            _ => Err(error(self.db, rc)),
        }
    }
}

impl Drop for RawStatement<'_> {
    fn drop(&mut self) {
        // SAFETY: finalized exactly once, while the connection ('c) is still open.
        unsafe {
            ffi::sqlite3_finalize(self.stmt.as_ptr());
        }
    }
}

/// `len` bytes at `ptr` (an empty slice for a null pointer, SQLite's answer for an empty
/// blob, and for a text it could not convert from a UTF-16 database for want of memory: that
/// one never completes a read, as the statement's next step then fails with SQLITE_NOMEM, which
/// was checked with `sqlite3_hard_heap_limit64` on a 5 MB text).
///
/// # Safety
/// `ptr` must be valid for `len` bytes for as long as the returned slice is used.
unsafe fn bytes<'a>(ptr: *const u8, len: c_int) -> &'a [u8] {
    match usize::try_from(len) {
        Ok(len) if len > 0 && !ptr.is_null() => std::slice::from_raw_parts(ptr, len),
        _ => &[],
    }
}

/// What this module refuses before SQLite sees it, named (rusqlite's `InvalidQuery` would read
/// "Query is not read-only").
fn refusal(what: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_MISUSE), Some(what.to_owned()))
}

/// SQLite's error `rc` on `db` as rusqlite reports it (code and message), so that callers
/// name failures the same way whichever path met them.
fn error(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Error {
    // SAFETY: `db` is a live connection; its message is read before any other call on it.
    let message = unsafe {
        let text = if ffi::sqlite3_errcode(db) == rc {
            ffi::sqlite3_errmsg(db)
        } else {
            ffi::sqlite3_errstr(rc)
        };
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of value, as rusqlite reads it, including the edges: empty text and blob,
    /// NUL bytes, extreme integers and reals, and a column index out of range.
    #[test]
    fn values_are_what_rusqlite_reads() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (a, b, c);
             INSERT INTO t VALUES (NULL, 0, '');
             INSERT INTO t VALUES (-9223372036854775808, 9223372036854775807, x'');
             INSERT INTO t VALUES (1.5, -0.0, x'00ff00');
             INSERT INTO t VALUES ('é' || char(0) || 'x', 1e308, 'text');
             INSERT INTO t VALUES (x'', 'a', 3);",
        )
        .unwrap();
        let sql = "SELECT rowid, a, b, c FROM t WHERE rowid >= ?1 AND c IS NOT ?2 ORDER BY rowid";
        let mut raw = RawStatement::prepare(&conn, sql).unwrap();
        raw.bind_int(1, 1).unwrap();
        raw.bind_text(2, "nothing").unwrap();
        let mut expected = conn.prepare(sql).unwrap();
        let mut rows = expected.query(rusqlite::params![1, "nothing"]).unwrap();
        let mut n = 0;
        while let Some(row) = rows.next().unwrap() {
            assert!(raw.step().unwrap());
            for i in 0..4 {
                assert_eq!(
                    raw.value(i as c_int),
                    row.get_ref(i).unwrap(),
                    "row {n} col {i}"
                );
            }
            assert_eq!(raw.value(4), ValueRef::Null);
            n += 1;
        }
        assert_eq!(n, 5);
        assert!(!raw.step().unwrap());
        // Reset and bound again: the statement runs again with the new parameters.
        raw.reset();
        raw.bind_int(1, 5).unwrap();
        assert!(raw.step().unwrap());
        assert_eq!(raw.value(0), ValueRef::Integer(5));
        assert!(!raw.step().unwrap());
    }

    /// A database stored as UTF-16 (SQLite converts text to UTF-8 as it is read, in place):
    /// the text and its length are still the UTF-8 ones rusqlite reads.
    #[test]
    fn utf16_databases_read_as_utf8() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "PRAGMA encoding = 'UTF-16le';
             CREATE TABLE t (a);
             INSERT INTO t VALUES ('déjà vu ✓'), (''), (x'c3a9'), (NULL);",
        )
        .unwrap();
        let sql = "SELECT a, a FROM t ORDER BY rowid";
        let mut raw = RawStatement::prepare(&conn, sql).unwrap();
        let mut expected = conn.prepare(sql).unwrap();
        let mut rows = expected.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            assert!(raw.step().unwrap());
            for i in 0..2 {
                assert_eq!(raw.value(i), row.get_ref(i as usize).unwrap());
            }
        }
        assert!(!raw.step().unwrap());
    }

    /// What the statement refuses before SQLite sees it is named as it is: rusqlite's
    /// `InvalidQuery` reads "Query is not read-only", which none of these is.
    #[test]
    fn refusals_name_their_cause() {
        let conn = Connection::open_in_memory().unwrap();
        for (sql, cause) in [
            ("SELECT 'a\0b'", "holds a NUL byte"),
            ("  -- nothing", "holds no statement"),
        ] {
            let Err(e) = RawStatement::prepare(&conn, sql) else {
                panic!("prepared {sql:?}");
            };
            let text = e.to_string();
            assert!(
                text.contains(cause) && !text.contains("read-only"),
                "{sql:?}: {text}"
            );
        }
    }

    #[test]
    fn errors_carry_sqlite_code_and_message() {
        let conn = Connection::open_in_memory().unwrap();
        let Err(e) = RawStatement::prepare(&conn, "SELECT * FROM missing") else {
            panic!("prepared a query of a missing table");
        };
        assert_eq!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::Unknown));
        assert!(e.to_string().contains("no such table: missing"), "{e}");
        let mut stmt = RawStatement::prepare(&conn, "SELECT ?1").unwrap();
        let e = stmt.bind_int(2, 1).unwrap_err();
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::ParameterOutOfRange)
        );
    }
}
