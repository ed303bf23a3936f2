//! Writing a backup's git objects: a range's lines as one file or a directory of halves
//! ([`write_range`]), new objects gathered in memory and packed ([`Sink`]), trees built from
//! their entries ([`Node`]) and the audit log's chunks ([`write_audit`]).

use std::collections::BTreeMap;

use git2::{Oid, Repository};
use rusqlite::types::ValueRef;

use crate::publish::clone::{GitContext, RepoError};
use crate::snapshot::backup::{self as format, AuditEntry};

/// A range's lines and where each row starts.
#[derive(Default)]
pub(super) struct Lines {
    pub(super) buf: Vec<u8>,
    pub(super) rows: Vec<(i64, usize)>,
}

impl Lines {
    pub(super) fn push(&mut self, rowid: i64, values: &[ValueRef<'_>], secret: &[bool]) {
        self.rows.push((rowid, self.buf.len()));
        format::encode_row(&mut self.buf, rowid, values, secret);
    }
}

/// Where a run's new objects go: into memory (libgit2's mempack backend, which the handle
/// writes to first), then into the clone as one pack per [`FLUSH_BYTES`] and at the end: a few
/// files, each synced once, instead of thousands of loose objects synced one by one, and
/// memory bounded even for a first backup.
pub(super) struct Sink<'a, 'r> {
    repo: &'r Repository,
    odb: &'a git2::Odb<'r>,
    /// Where new objects are written first, emptied once they are packed.
    mempack: &'a git2::Mempack<'a>,
    objects: Vec<Oid>,
    pending: usize,
}

/// How many bytes of new objects are held in memory before they are packed.
const FLUSH_BYTES: usize = 64 << 20;

impl<'a, 'r> Sink<'a, 'r> {
    pub(super) fn new(
        repo: &'r Repository,
        odb: &'a git2::Odb<'r>,
        mempack: &'a git2::Mempack<'a>,
    ) -> Sink<'a, 'r> {
        Sink {
            repo,
            odb,
            mempack,
            objects: Vec::new(),
            pending: 0,
        }
    }

    fn wrote(&mut self, oid: Oid, bytes: usize) -> Result<(), git2::Error> {
        self.objects.push(oid);
        self.pending += bytes;
        if self.pending >= FLUSH_BYTES {
            self.flush()
                .map_err(|e| git2::Error::from_str(&e.to_string()))?;
        }
        Ok(())
    }

    /// Packs the objects held in memory into the clone (no delta search: see
    /// [`Backup::open`]). libgit2's own mempack dump packs only what commits reach, so the
    /// objects are packed one by one.
    pub(super) fn flush(&mut self) -> Result<(), String> {
        if self.objects.is_empty() {
            return Ok(());
        }
        let git = |e: git2::Error| e.message().to_owned();
        let mut pb = self.repo.packbuilder().map_err(git)?;
        for oid in &self.objects {
            pb.insert_object(*oid, None).map_err(git)?;
        }
        let mut writer = self.odb.packwriter().map_err(git)?;
        let mut failed = None;
        pb.foreach(
            |bytes| match std::io::Write::write_all(&mut writer, bytes) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        )
        .map_err(git)?;
        if let Some(e) = failed {
            return Err(e.to_string());
        }
        writer.commit().map_err(git)?;
        self.mempack.reset().map_err(git)?;
        self.objects.clear();
        self.pending = 0;
        Ok(())
    }
}

/// Writes the rows `lo..=hi` (`buf`, rows starting at the offsets in `rows`): one blob, or a
/// tree of halves while the blob would pass the cap. Returns the object, whether it is a tree,
/// and how many files it holds.
pub(super) fn write_range(
    sink: &mut Sink<'_, '_>,
    lo: i64,
    hi: i64,
    buf: &[u8],
    rows: &[(i64, usize)],
) -> Result<(Oid, bool, u64), git2::Error> {
    if buf.len() <= format::CHUNK_CAP || lo == hi || rows.len() <= 1 {
        if buf.len() > 1_000_000 {
            log::warn!(
                "the backup file of rowids {lo}..{hi} holds {} bytes (one row larger than GitHub's 1 MB recommendation)",
                buf.len()
            );
        }
        let oid = sink.repo.blob(buf)?;
        sink.wrote(oid, buf.len())?;
        return Ok((oid, false, 1));
    }
    let mid = lo + (hi - lo) / 2;
    let cut = rows.partition_point(|(id, _)| *id <= mid);
    let at = rows.get(cut).map_or(buf.len(), |(_, off)| *off);
    let mut tree = sink.repo.treebuilder(None)?;
    let mut files = 0;
    for (a, b, part, part_rows) in [
        (lo, mid, &buf[..at], &rows[..cut]),
        (mid + 1, hi, &buf[at..], &rows[cut..]),
    ] {
        if part_rows.is_empty() {
            continue;
        }
        let shifted: Vec<(i64, usize)> = part_rows
            .iter()
            .map(|(id, off)| (*id, off - part_rows[0].1))
            .collect();
        let (oid, split, n) = write_range(sink, a, b, part, &shifted)?;
        let name = match split {
            true => format::range_name(a, b),
            false => format!("{}.jsonl", format::range_name(a, b)),
        };
        tree.insert(name, oid, if split { 0o040000 } else { 0o100644 })?;
        files += n;
    }
    let oid = tree.write()?;
    sink.wrote(oid, 0)?;
    Ok((oid, true, files))
}

/// A directory being assembled: files (and finished subtrees) and subdirectories.
#[derive(Default)]
pub(super) struct Node {
    pub(super) files: BTreeMap<String, (Oid, i32)>,
    pub(super) dirs: BTreeMap<String, Node>,
}

impl Node {
    /// Writes the tree and its subtrees, each only when the clone does not have it: its bytes
    /// built and hashed here (about 30 trees a run, most unchanged), instead of libgit2's tree
    /// builder, which looks up every entry's object (5,000 ranges at 1M contributions) and
    /// rewrites or touches every tree.
    pub(super) fn write(&self, repo: &Repository) -> Result<Oid, RepoError> {
        let odb = repo.odb().ctx("open the object database")?;
        self.write_into(&odb)
    }

    fn write_into(&self, odb: &git2::Odb<'_>) -> Result<Oid, RepoError> {
        let mut subtrees = Vec::with_capacity(self.dirs.len());
        for (name, node) in &self.dirs {
            subtrees.push((name, node.write_into(odb)?));
        }
        let mut entries: Vec<(&[u8], u32, Oid)> = self
            .files
            .iter()
            .map(|(name, (oid, mode))| (name.as_bytes(), *mode as u32, *oid))
            .chain(
                subtrees
                    .iter()
                    .map(|(name, oid)| (name.as_bytes(), 0o040000, *oid)),
            )
            .collect();
        let bytes =
            crate::publish::rawtree::tree_bytes(&mut entries).ok_or_else(|| RepoError::Git {
                context: "build tree".into(),
                source: git2::Error::from_str("a backup tree entry has a name no tree can hold"),
            })?;
        let id = Oid::hash_object(git2::ObjectType::Tree, &bytes).ctx("build tree")?;
        if odb.exists(id) {
            return Ok(id);
        }
        odb.write(git2::ObjectType::Tree, &bytes).ctx("write tree")
    }
}

/// The audit log's chunks written as blobs (only those git does not have yet cost a write),
/// its manifest entry, and the `audit/` tree.
pub(super) fn write_audit(
    repo: &Repository,
    bytes: &[u8],
) -> Result<(AuditEntry, Option<Oid>), RepoError> {
    let mut node = Node::default();
    let mut start = 0;
    let cuts = format::audit_cuts(bytes);
    for (i, end) in cuts.iter().enumerate() {
        let (dir, file) = format::audit_path(i);
        let oid = repo.blob(&bytes[start..*end]).ctx("write audit chunk")?;
        node.dirs
            .entry(dir)
            .or_default()
            .files
            .insert(file, (oid, 0o100644));
        start = *end;
    }
    let tree = if cuts.is_empty() {
        None
    } else {
        Some(node.write(repo)?)
    };
    Ok((
        AuditEntry {
            bytes: bytes.len() as u64,
            lines: bytes.iter().filter(|b| **b == b'\n').count() as u64,
            chunks: cuts.len() as u64,
            tree: tree.map(|t| t.to_string()),
        },
        tree,
    ))
}
