//! Gitcord's audit trail, `<data_dir>/audit_events.jsonl`, appended to as Gitcord does: one
//! compact JSON object per line, keys in insertion order, non-ASCII escaped (Python's
//! `json.dumps(event, separators=(",", ":"))`), with a top-level `timestamp` of the moment
//! the line is written.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::time;

/// The file name Gitcord uses inside its data directory.
pub const FILE_NAME: &str = "audit_events.jsonl";

/// The context of a snapshot event, in Gitcord's field order plus what the push adds.
#[derive(Clone, Debug, Serialize)]
pub struct SnapshotContext {
    /// `github.org`.
    pub org: String,
    /// `owner/repo` of the data repository (or its URL when no repo_path is set).
    pub repo: String,
    /// `snapshots/<name>`.
    pub snapshot_dir: String,
    /// The run id.
    pub run_id: String,
    /// How many files the snapshot has (always 7 here: never a partial snapshot).
    pub files_written: usize,
    /// The snapshot time.
    pub timestamp: String,
    /// The commit holding the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Snapshot commits still waiting for a push.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<usize>,
    /// Why the push failed (never contains a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize)]
struct Line<'a> {
    event_type: &'a str,
    context: &'a SnapshotContext,
    timestamp: String,
}

/// Appends one event to `<data_dir>/audit_events.jsonl`.
pub fn append(data_dir: &Path, event_type: &str, context: &SnapshotContext) -> io::Result<PathBuf> {
    let line = Line {
        event_type,
        context,
        timestamp: time::isoformat(&time::now()),
    };
    let mut bytes = Vec::with_capacity(256);
    line.serialize(&mut serde_json::Serializer::with_formatter(
        &mut bytes,
        AsciiFormatter,
    ))
    .map_err(io::Error::other)?;
    bytes.push(b'\n');
    std::fs::create_dir_all(data_dir)?;
    let path = data_dir.join(FILE_NAME);
    // One write of one line with O_APPEND: concurrent writers (Gitcord) never interleave.
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?
        .write_all(&bytes)?;
    Ok(path)
}

/// serde_json's compact output with Python's `ensure_ascii=True` escaping.
struct AsciiFormatter;

impl serde_json::ser::Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut units = [0u16; 2];
        for ch in fragment.chars() {
            if ch.is_ascii() {
                writer.write_all(&[ch as u8])?;
            } else {
                for unit in ch.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_gitcords() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = SnapshotContext {
            org: "Ørg 🚀".into(),
            repo: "o/r".into(),
            snapshot_dir: "snapshots/x".into(),
            run_id: "r".into(),
            files_written: 7,
            timestamp: "2024-01-31T12:00:00+00:00".into(),
            commit: None,
            queued: None,
            error: None,
        };
        let path = append(dir.path(), "snapshot_written", &ctx).unwrap();
        append(dir.path(), "snapshot_pushed", &ctx).unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let prefix = r#"{"event_type":"snapshot_written","context":{"org":"\u00d8rg \ud83d\ude80","repo":"o/r","snapshot_dir":"snapshots/x","run_id":"r","files_written":7,"timestamp":"2024-01-31T12:00:00+00:00"},"timestamp":""#;
        assert!(lines[0].starts_with(prefix), "{}", lines[0]);
        assert!(lines[0].ends_with("+00:00\"}"));
    }
}
