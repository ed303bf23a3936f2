//! Raw access to every table of `state.db` for the backup, inside the snapshot's own read
//! transaction (see [`super::read_with`]): the schema as stored, and rows in rowid order, whole
//! tables or one rowid range at a time, as SQLite's own values (no conversion, no copy).

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::StateError;

/// Reads the database for the backup; lives only inside the read transaction.
pub struct Reader<'c> {
    conn: &'c Connection,
    path: &'c Path,
}

/// What runs inside the read transaction, after the snapshot's tables were read on the same
/// connection: it sees exactly the state the snapshot describes.
pub type Hook<'h> = &'h mut (dyn FnMut(&Reader<'_>) -> Result<(), StateError> + Send);

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
    pub(super) fn new(conn: &'c Connection, path: &'c Path) -> Reader<'c> {
        Reader { conn, path }
    }

    fn err(&self, e: rusqlite::Error) -> StateError {
        StateError::BadData {
            path: self.path.to_owned(),
            reason: e.to_string(),
        }
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
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = match range {
            Some((lo, hi)) => stmt.query([lo, hi]),
            None => stmt.query([]),
        }
        .map_err(|e| self.err(e))?;
        // The values of one row, without an allocation per row for Gitcord's narrow tables.
        const INLINE: usize = 16;
        let n = columns.len();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let id: i64 = row.get(0).map_err(|e| self.err(e))?;
            if n <= INLINE {
                let mut values = [ValueRef::Null; INLINE];
                for (i, v) in values.iter_mut().take(n).enumerate() {
                    *v = row.get_ref(i + 1).map_err(|e| self.err(e))?;
                }
                each(id, &values[..n])?;
            } else {
                let values = (1..=n)
                    .map(|i| row.get_ref(i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| self.err(e))?;
                each(id, &values)?;
            }
        }
        Ok(())
    }
}

/// An SQL identifier, quoted.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
