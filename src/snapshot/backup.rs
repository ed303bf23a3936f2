//! The backup format: a full copy of `state.db` (every table, every row, exact SQLite types)
//! and of Gitcord's audit log, laid out as git objects that stay the same from run to run.
//!
//! One type per format, written and read here:
//!
//! * `backup.json`, the [`Manifest`]: the snapshot it belongs to, `PRAGMA user_version`, the
//!   schema as `sqlite_master` rows (verbatim, in rowid order), and per table its columns, row
//!   and chunk counts and the git tree id of its directory; the redacted columns; the audit
//!   log's size, line count and tree id.
//! * `tables/<table>/<6 levels>/<lo>-<hi>.jsonl`: rows in rowid order, one JSON array per line,
//!   `[rowid, v1, v2, ...]`. Rows are grouped by rowid *range* ([`RANGE_ROWIDS`] rowids per
//!   range, keyed by rowid, never by position), so an append touches the tail range only and an
//!   update the one range holding the row. A range whose lines would pass [`CHUNK_CAP`] becomes
//!   a directory `<lo>-<hi>/` holding its two halves, split again as needed, so every file stays
//!   far below GitHub's 1 MB recommendation. The six directory levels are the bytes of the range
//!   number (the rowid's high bits, negative rowids mapped order-preservingly), so no directory
//!   ever has more than 256 entries, whatever the rowids.
//! * `audit/<4 hex>/<8 digits>.jsonl`: `audit_events.jsonl` cut at the first line end after
//!   every [`AUDIT_CHUNK`] bytes, so an appended log changes its last chunk only.
//!
//! Values keep their SQLite type: INTEGER is a JSON integer, valid UTF-8 TEXT a JSON string,
//! NULL `null`; REAL, BLOB and TEXT that is not UTF-8 are tagged objects holding exact bits
//! (`{"real":"<16 hex digits>"}`, `{"blob":"<hex>"}`, `{"text":"<hex>"}`). A secret column
//! ([`SECRET_COLUMNS`]) publishes only whether it was NULL: `null` or `{"redacted":true}`.

use std::fmt::Write as _;

use rusqlite::types::{Value, ValueRef};
use serde::{Deserialize, Serialize};

/// The manifest's `format`; a reader refuses any other.
pub const FORMAT: u32 = 1;
/// The manifest's file name at the root of a backup commit.
pub const MANIFEST: &str = "backup.json";
/// The directory holding one directory per table.
pub const TABLES_DIR: &str = "tables";
/// The directory holding the audit log's chunks.
pub const AUDIT_DIR: &str = "audit";
/// Gitcord's audit log in `runtime.data_dir`.
pub const AUDIT_FILE: &str = "audit_events.jsonl";
/// log2 of the rowids per range.
pub const RANGE_BITS: u32 = 8;
/// Rowids per range: a range's lines are a few dozen KB for Gitcord's rows.
pub const RANGE_ROWIDS: i64 = 1 << RANGE_BITS;
/// A range's file is split in halves while it is larger than this.
pub const CHUNK_CAP: usize = 512 * 1024;
/// The audit log is cut at the first line end after every this many bytes.
pub const AUDIT_CHUNK: usize = 64 * 1024;
/// The default branch backups are committed to.
pub const DEFAULT_BRANCH: &str = "gitcord-backup";
/// `(table, column)` pairs that never leave the host: a pending identity claim's code, which
/// proves a GitHub account to Gitcord for minutes. Not even a hash is published (a 6-digit
/// code's hash is brute-forced in a second): only whether it was NULL.
pub const SECRET_COLUMNS: &[(&str, &str)] = &[("identity_links", "verification_code")];

/// Whether `table.column` is published only as NULL / not NULL.
pub fn is_secret(table: &str, column: &str) -> bool {
    SECRET_COLUMNS
        .iter()
        .any(|(t, c)| *t == table && *c == column)
}

/// The range a rowid falls in: the rowid mapped order-preservingly onto `u64`, high bits.
pub fn range_of(rowid: i64) -> u64 {
    ((rowid as u64) ^ (1 << 63)) >> RANGE_BITS
}

/// The first and last rowid of range `range`.
pub fn range_bounds(range: u64) -> (i64, i64) {
    let lo = ((range << RANGE_BITS) ^ (1 << 63)) as i64;
    (lo, lo + (RANGE_ROWIDS - 1))
}

/// The name of a file or directory holding rowids `lo..=hi`, without `.jsonl`.
pub fn range_name(lo: i64, hi: i64) -> String {
    format!("{lo}-{hi}")
}

/// The rowids a name made by [`range_name`] (with or without `.jsonl`) covers.
pub fn parse_range_name(name: &str) -> Option<(i64, i64)> {
    let name = name.strip_suffix(".jsonl").unwrap_or(name);
    // The separator is the first '-' that is not a leading minus sign.
    let at = name.char_indices().skip(1).find(|(_, c)| *c == '-')?.0;
    let lo = name[..at].parse().ok()?;
    let hi = name[at + 1..].parse().ok()?;
    (lo <= hi && range_name(lo, hi) == name).then_some((lo, hi))
}

/// The directories (below `tables/<table>/`) holding range `range`'s entry: its number's
/// bytes above the lowest, most significant first, two hex digits each.
pub fn range_dirs(range: u64) -> [String; 6] {
    let high = range >> 8;
    std::array::from_fn(|i| format!("{:02x}", (high >> (8 * (5 - i))) & 0xff))
}

/// A table's directory name under `tables/`: the name itself when it is plain (letters,
/// digits, `_`), else `x-` and its bytes in hex, so no name can escape or collide.
pub fn table_dir(table: &str) -> String {
    if !table.is_empty()
        && table
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        table.to_owned()
    } else {
        let mut s = "x-".to_owned();
        for b in table.bytes() {
            let _ = write!(s, "{b:02x}");
        }
        s
    }
}

/// Appends one row's line (`[rowid, v1, ...]\n`) to `out`. `secret[i]` says column `i` is
/// published only as NULL or not.
pub fn encode_row(out: &mut Vec<u8>, rowid: i64, values: &[ValueRef<'_>], secret: &[bool]) {
    out.push(b'[');
    out.extend_from_slice(rowid.to_string().as_bytes());
    for (i, v) in values.iter().enumerate() {
        out.push(b',');
        if secret.get(i).copied().unwrap_or(false) {
            match v {
                ValueRef::Null => out.extend_from_slice(b"null"),
                _ => out.extend_from_slice(b"{\"redacted\":true}"),
            }
            continue;
        }
        encode_value(out, *v);
    }
    out.extend_from_slice(b"]\n");
}

fn encode_value(out: &mut Vec<u8>, v: ValueRef<'_>) {
    match v {
        ValueRef::Null => out.extend_from_slice(b"null"),
        ValueRef::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        ValueRef::Real(x) => {
            let _ = write_fmt(out, format_args!("{{\"real\":\"{:016x}\"}}", x.to_bits()));
        }
        ValueRef::Text(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => {
                // A string cannot fail to serialize.
                let _ = serde_json::to_writer(&mut *out, s);
            }
            Err(_) => tagged_hex(out, "text", bytes),
        },
        ValueRef::Blob(bytes) => tagged_hex(out, "blob", bytes),
    }
}

fn write_fmt(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) -> std::io::Result<()> {
    std::io::Write::write_fmt(out, args)
}

fn tagged_hex(out: &mut Vec<u8>, tag: &str, bytes: &[u8]) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b"\":\"");
    push_hex(out, bytes);
    out.extend_from_slice(b"\"}");
}

/// Appends `bytes` to `out` as lowercase hex digits, two a byte.
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
}

/// One value read back from a chunk line.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// The value as it was stored.
    Value(Value),
    /// A secret column that was not NULL: restored as NULL.
    Redacted,
    /// TEXT whose bytes are not UTF-8, kept as they were.
    RawText(Vec<u8>),
}

/// Parses one chunk line into its rowid and values, or says why it is not one.
pub fn decode_row(line: &[u8]) -> Result<(i64, Vec<Decoded>), String> {
    let items: Vec<serde_json::Value> =
        serde_json::from_slice(line).map_err(|e| format!("not a JSON array: {e}"))?;
    let mut items = items.into_iter();
    let rowid = items
        .next()
        .and_then(|v| v.as_i64())
        .ok_or("the first item is not an integer rowid")?;
    let values = items.map(decode_value).collect::<Result<Vec<_>, _>>()?;
    Ok((rowid, values))
}

fn decode_value(v: serde_json::Value) -> Result<Decoded, String> {
    use serde_json::Value as J;
    Ok(Decoded::Value(match v {
        J::Null => Value::Null,
        J::String(s) => Value::Text(s),
        J::Number(n) => Value::Integer(
            n.as_i64()
                .ok_or_else(|| format!("{n} is not a 64-bit integer (REAL is tagged)"))?,
        ),
        J::Object(m) if m.len() == 1 => {
            let (tag, inner) = m.into_iter().next().ok_or("an empty object")?;
            match (tag.as_str(), inner) {
                ("redacted", J::Bool(true)) => return Ok(Decoded::Redacted),
                ("real", J::String(h)) if h.len() == 16 => Value::Real(f64::from_bits(
                    u64::from_str_radix(&h, 16).map_err(|_| format!("bad REAL bits {h:?}"))?,
                )),
                ("blob", J::String(h)) => Value::Blob(unhex(&h)?),
                ("text", J::String(h)) => return Ok(Decoded::RawText(unhex(&h)?)),
                (tag, _) => return Err(format!("unknown tagged value {tag:?}")),
            }
        }
        other => return Err(format!("{other} is not a value of this format")),
    }))
}

/// The bytes of hex digits `h` (either case).
pub(crate) fn unhex(h: &str) -> Result<Vec<u8>, String> {
    if !h.len().is_multiple_of(2) || !h.is_ascii() {
        return Err(format!("{h:?} is not hex"));
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|_| format!("bad hex {h:?}")))
        .collect()
}

/// Where the audit log is cut: the end offsets of its chunks, each the first line end at or
/// after [`AUDIT_CHUNK`] bytes past the previous cut (the last chunk ends with the file).
pub fn audit_cuts(bytes: &[u8]) -> Vec<usize> {
    let mut cuts = Vec::new();
    let mut start = 0;
    while start < bytes.len() {
        let from = (start + AUDIT_CHUNK - 1).min(bytes.len() - 1);
        let end = match memchr_newline(&bytes[from..]) {
            Some(i) => from + i + 1,
            None => bytes.len(),
        };
        cuts.push(end);
        start = end;
    }
    cuts
}

fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

/// The directory and file name of audit chunk `i`.
pub fn audit_path(i: usize) -> (String, String) {
    (format!("{:04x}", i >> 8), format!("{i:08}.jsonl"))
}

/// The snapshot a backup belongs to: its name is what restore looks for (the snapshot commit's
/// id can change on a replay, the name cannot).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    /// The directory name under `snapshots/`.
    pub name: String,
    /// The run id.
    pub run_id: String,
    /// The snapshot time, as in `meta.json`.
    pub generated_at: String,
}

/// One `sqlite_master` row, verbatim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRow {
    /// `table`, `index`, `view` or `trigger`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The table it belongs to.
    pub tbl_name: String,
    /// Its `CREATE` statement as stored; `null` for automatic indexes.
    pub sql: Option<String>,
}

/// One table in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// The table's name.
    pub name: String,
    /// Its directory under `tables/`.
    pub dir: String,
    /// Its columns, in declaration order (the order of values in a line).
    pub columns: Vec<String>,
    /// Rows in the table.
    pub rows: u64,
    /// Chunk files under its directory.
    pub chunks: u64,
    /// The git tree id of its directory; `null` for an empty table (no directory).
    pub tree: Option<String>,
}

/// A column published only as NULL / not NULL.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redacted {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
}

/// The audit log in the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its size in bytes.
    pub bytes: u64,
    /// Its line count (newline characters).
    pub lines: u64,
    /// Chunk files.
    pub chunks: u64,
    /// The git tree id of `audit/`; `null` for an empty log.
    pub tree: Option<String>,
}

/// `backup.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The snapshot this backup was read with, in the same read transaction.
    pub snapshot: SnapshotRef,
    /// `PRAGMA user_version`.
    pub user_version: i64,
    /// `sqlite_master`, in rowid order.
    pub schema: Vec<SchemaRow>,
    /// Every table (rowid tables; `sqlite_sequence` included), in schema order.
    pub tables: Vec<TableEntry>,
    /// Columns published only as NULL / not NULL.
    pub redacted: Vec<Redacted>,
    /// The audit log; `null` when there is no `audit_events.jsonl`.
    pub audit: Option<AuditEntry>,
}

impl Manifest {
    /// The manifest's bytes: pretty-printed, so that a diff between two backups reads well.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Reads a manifest, refusing another format.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head =
            serde_json::from_slice(bytes).map_err(|e| format!("{MANIFEST} is not valid: {e}"))?;
        if head.format != FORMAT {
            return Err(format!(
                "{MANIFEST} has format {} (this version reads {FORMAT})",
                head.format
            ));
        }
        serde_json::from_slice(bytes).map_err(|e| format!("{MANIFEST} is not valid: {e}"))
    }
}

/// The first line of a backup commit's message, naming its snapshot.
pub fn commit_subject(snapshot: &str) -> String {
    format!("Backup of state.db for snapshots/{snapshot}")
}

/// The snapshot a backup commit's message names, if it is one.
pub fn snapshot_of_message(message: &str) -> Option<&str> {
    let first = message.lines().next()?;
    first.strip_prefix("Backup of state.db for snapshots/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_ordered_and_cover_every_rowid() {
        for rowid in [
            i64::MIN,
            -257,
            -256,
            -1,
            0,
            1,
            255,
            256,
            1_000_000,
            i64::MAX,
        ] {
            let r = range_of(rowid);
            let (lo, hi) = range_bounds(r);
            assert!(lo <= rowid && rowid <= hi, "{rowid}");
            assert_eq!(hi - lo, RANGE_ROWIDS - 1);
            assert_eq!(parse_range_name(&range_name(lo, hi)), Some((lo, hi)));
        }
        assert!(range_of(-1) < range_of(0));
        assert!(range_of(i64::MIN) < range_of(i64::MAX));
        assert_eq!(range_bounds(range_of(0)), (0, 255));
        assert_eq!(range_bounds(range_of(-1)), (-256, -1));
        assert_eq!(parse_range_name("-256--1.jsonl"), Some((-256, -1)));
        assert_eq!(parse_range_name("5-3"), None);
        assert_eq!(parse_range_name("05-7"), None);
        assert_eq!(range_dirs(range_of(0)).join("/"), "80/00/00/00/00/00");
    }

    #[test]
    fn values_round_trip_with_their_types() {
        let mut line = Vec::new();
        let values = [
            ValueRef::Null,
            ValueRef::Integer(-7),
            ValueRef::Real(0.1),
            ValueRef::Text("zoë \"q\"\n".as_bytes()),
            ValueRef::Blob(&[0, 255]),
            ValueRef::Text(b"code"),
            ValueRef::Integer(i64::MAX),
        ];
        let secret = [false, false, false, false, false, true, false];
        encode_row(&mut line, 42, &values, &secret);
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(!text.contains("code"), "{text}");
        let (rowid, back) = decode_row(line.trim_ascii_end()).unwrap();
        assert_eq!(rowid, 42);
        assert_eq!(
            back,
            vec![
                Decoded::Value(Value::Null),
                Decoded::Value(Value::Integer(-7)),
                Decoded::Value(Value::Real(0.1)),
                Decoded::Value(Value::Text("zoë \"q\"\n".into())),
                Decoded::Value(Value::Blob(vec![0, 255])),
                Decoded::Redacted,
                Decoded::Value(Value::Integer(i64::MAX)),
            ]
        );
        assert!(decode_row(b"[1,1.5]").is_err());
        assert!(decode_row(b"[1,{\"what\":1}]").is_err());
        assert!(decode_row("[1,{\"blob\":\"é0\"}]".as_bytes()).is_err());
        assert!(decode_row(b"[1,{\"blob\":\"0\"}]").is_err());
    }

    #[test]
    fn audit_cuts_fall_after_line_ends() {
        assert!(audit_cuts(b"").is_empty());
        let line = b"{\"e\":1}\n";
        let mut log = Vec::new();
        while log.len() < 3 * AUDIT_CHUNK {
            log.extend_from_slice(line);
        }
        let cuts = audit_cuts(&log);
        assert_eq!(*cuts.last().unwrap(), log.len());
        let mut start = 0;
        for &end in &cuts {
            assert_eq!(log[end - 1], b'\n');
            assert!(end - start >= AUDIT_CHUNK || end == log.len());
            start = end;
        }
        // An append changes only the last chunk's end.
        let mut longer = log.clone();
        longer.extend_from_slice(line);
        let more = audit_cuts(&longer);
        assert_eq!(more[..cuts.len() - 1], cuts[..cuts.len() - 1]);
    }

    #[test]
    fn table_dirs_cannot_escape() {
        assert_eq!(table_dir("scores"), "scores");
        assert_eq!(table_dir("a/b"), "x-612f62");
        assert_eq!(table_dir(".."), "x-2e2e");
    }
}
