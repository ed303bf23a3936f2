//! A database value and a table of them, as a snapshot keeps them: the snapshot model's cells
//! and tables (re-exported by [`crate::snapshot::model`], which is where the format, diff and
//! restore take them from).
//!
//! A leaf that imports nothing of the crate, rather than a part of `snapshot`, because
//! `input::state` fills them from SQLite and `input` comes before `snapshot` in the layer
//! order: `input` may not import `snapshot`, and both may import a leaf.

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

/// Rows copied from one table, columns in code-point order (the order they are written in).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Column names, sorted.
    pub columns: Vec<String>,
    /// One cell per column, in `columns` order.
    pub rows: Vec<Vec<Cell>>,
}
