//! Trees as git stores them (their bytes), for the one tree of the data repository that grows
//! with the history: `snapshots/`, about 55 bytes per snapshot directory, 480 KB after a year
//! of hourly snapshots.
//!
//! A run reads the tip's `snapshots/` (health check, commit), writes the next one (one entry
//! more), names the newest snapshot in it (readers' index, working copy) and sends it as a
//! delta against the remote's (push). Through libgit2 each read of such a tree inflates it,
//! hashes it with the collision-detecting SHA-1 and parses it into entries; a tree this run
//! wrote is read back the same way. Here a tree is read once, checked against its id with a
//! plain SHA-1 (a loose object is read straight from its file; a packed one through
//! libgit2), and kept for the rest of the run with the offsets of its entries. A tree's bytes
//! are a function of its id, so the cache can never hand out stale bytes: it is keyed by id,
//! holds only large trees (the small ones are cheap to read again), and only a few of them.
//! A leaf of the publishing stage, like [`crate::publish::tree`]: git2 and the object format.

use std::cmp::Ordering;
use std::io::Read as _;
use std::path::Path;
use std::sync::{Arc, Mutex};

use git2::{ObjectType, Oid, Repository};
use sha1::{Digest, Sha1};

/// A tree's bytes and where each of its entries ends.
#[derive(Debug)]
pub(crate) struct RawTree {
    pub(crate) id: Oid,
    pub(crate) bytes: Vec<u8>,
    ends: Vec<usize>,
}

/// One entry of a [`RawTree`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct RawEntry<'a> {
    /// The mode as written (octal digits).
    pub(crate) mode_text: &'a [u8],
    pub(crate) name: &'a [u8],
    id: &'a [u8],
}

/// The modes git writes, each exactly as libgit2's tree builder writes it back.
const CANONICAL_MODES: [&[u8]; 5] = [b"40000", b"100644", b"100755", b"120000", b"160000"];

impl RawEntry<'_> {
    /// The object the entry points at.
    pub(crate) fn id(&self) -> Oid {
        Oid::from_bytes(self.id).unwrap_or_else(|_| Oid::zero())
    }

    /// The mode as a number.
    pub(crate) fn mode(&self) -> u32 {
        self.mode_text
            .iter()
            .fold(0, |m, d| (m << 3) | u32::from(d.wrapping_sub(b'0') & 7))
    }

    /// What the entry points at, as libgit2 tells it from the mode (`git_tree_entry_type`).
    pub(crate) fn kind(&self) -> Option<ObjectType> {
        Some(match self.mode() & 0o170000 {
            0o040000 => ObjectType::Tree,
            0o160000 => ObjectType::Commit,
            _ => ObjectType::Blob,
        })
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.mode() & 0o170000 == 0o040000
    }

    /// Whether the mode is written as git and libgit2 write it.
    pub(crate) fn canonical_mode(&self) -> bool {
        CANONICAL_MODES.contains(&self.mode_text)
    }
}

impl RawTree {
    /// Tree `id` of `bytes` whose entries end at `ends` (as [`RawTree::parse`] finds them).
    pub(crate) fn from_parts(id: Oid, bytes: Vec<u8>, ends: Vec<usize>) -> RawTree {
        RawTree { id, bytes, ends }
    }

    /// Tree `id` of `bytes` (not checked here), its entries found; `None` when malformed.
    pub(crate) fn parse(id: Oid, bytes: Vec<u8>) -> Option<RawTree> {
        let mut ends = Vec::with_capacity(bytes.len() / 56 + 1);
        let mut at = 0;
        while at < bytes.len() {
            let rest = &bytes[at..];
            let space = rest.iter().position(|&b| b == b' ')?;
            if space == 0 || !rest[..space].iter().all(|d| (b'0'..=b'7').contains(d)) {
                return None;
            }
            let nul = space + 1 + rest[space + 1..].iter().position(|&b| b == 0)?;
            let end = at + nul + 1 + 20;
            if end > bytes.len() {
                return None;
            }
            ends.push(end);
            at = end;
        }
        Some(RawTree { id, bytes, ends })
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Entry `i` (tree order).
    pub(crate) fn entry(&self, i: usize) -> RawEntry<'_> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let e = &self.bytes[start..self.ends[i]];
        let space = e.iter().position(|&b| b == b' ').unwrap_or(0);
        let nul = e.len() - 21;
        RawEntry {
            mode_text: &e[..space],
            name: &e[space + 1..nul],
            id: &e[nul + 1..],
        }
    }

    /// Where entry `i` ends in [`RawTree::bytes`].
    pub(crate) fn end_of(&self, i: usize) -> usize {
        self.ends[i]
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = RawEntry<'_>> + '_ {
        (0..self.len()).map(|i| self.entry(i))
    }

    /// The entry named `name` (of any kind).
    pub(crate) fn get(&self, name: &[u8]) -> Option<RawEntry<'_>> {
        self.iter().find(|e| e.name == name)
    }
}

/// git's order of tree entries: names compared as bytes, a directory's as if it ended in `/`.
pub(crate) fn git_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> Ordering {
    let key = |name: &[u8], dir: bool, i: usize| match name.get(i) {
        Some(&c) => Some(c),
        None if dir && i == name.len() => Some(b'/'),
        None => None,
    };
    let common = a.len().min(b.len());
    match a[..common].cmp(&b[..common]) {
        Ordering::Equal => {}
        other => return other,
    }
    let mut i = common;
    loop {
        match (key(a, a_dir, i), key(b, b_dir, i)) {
            (None, None) => return Ordering::Equal,
            (x, y) if x != y => return x.cmp(&y),
            _ => i += 1,
        }
    }
}

/// The bytes of a tree holding `entries` (name, mode, object), as git and libgit2's tree
/// builder write them: in git's order, each `<octal mode> <name>\0<20-byte id>`. `None` when
/// a name is empty, holds `/` or NUL, or comes twice: no tree can hold those.
pub(crate) fn tree_bytes(entries: &mut [(&[u8], u32, Oid)]) -> Option<Vec<u8>> {
    let is_dir = |mode: u32| mode == 0o040000;
    entries.sort_by(|a, b| git_order(a.0, is_dir(a.1), b.0, is_dir(b.1)));
    let mut names: Vec<&[u8]> = entries.iter().map(|e| e.0).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1])
        || names
            .iter()
            .any(|n| n.is_empty() || n.contains(&b'/') || n.contains(&0))
    {
        return None;
    }
    let mut bytes = Vec::with_capacity(entries.iter().map(|e| e.0.len() + 28).sum());
    for (name, mode, id) in entries.iter() {
        bytes.extend_from_slice(format!("{mode:o} ").as_bytes());
        bytes.extend_from_slice(name);
        bytes.push(0);
        bytes.extend_from_slice(id.as_bytes());
    }
    Some(bytes)
}

/// One way two trees differ.
pub(crate) enum RawDifference<'a> {
    /// An entry only the old tree has (which one does not matter to the push).
    Removed,
    Added(RawEntry<'a>),
    /// Same name (and kind) on both sides, different object or mode: (old, new).
    Changed(RawEntry<'a>, RawEntry<'a>),
}

/// Merges two trees' listings in git's order into what differs between them. The common
/// beginning is skipped as bytes (a new snapshot directory is added at the end).
pub(crate) fn differences<'a>(old: &'a RawTree, new: &'a RawTree) -> Vec<RawDifference<'a>> {
    let same = common_prefix(&old.bytes, &new.bytes);
    // The entries wholly inside the common bytes are equal on both sides.
    let skip = |t: &RawTree| t.ends.partition_point(|&end| end <= same);
    let (mut i, mut j) = (skip(old), skip(new));
    let mut out = Vec::new();
    loop {
        let order = match (i < old.len(), j < new.len()) {
            (false, false) => break,
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (true, true) => {
                let (a, b) = (old.entry(i), new.entry(j));
                git_order(a.name, a.is_dir(), b.name, b.is_dir())
            }
        };
        match order {
            Ordering::Less => {
                out.push(RawDifference::Removed);
                i += 1;
            }
            Ordering::Greater => {
                out.push(RawDifference::Added(new.entry(j)));
                j += 1;
            }
            Ordering::Equal => {
                let (a, b) = (old.entry(i), new.entry(j));
                if a.id != b.id || a.mode() != b.mode() {
                    out.push(RawDifference::Changed(a, b));
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// How many bytes `a` and `b` begin with in common (compared a block at a time).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    const BLOCK: usize = 4096;
    let mut same = 0;
    while same + BLOCK <= a.len().min(b.len()) && a[same..same + BLOCK] == b[same..same + BLOCK] {
        same += BLOCK;
    }
    same + a[same..]
        .iter()
        .zip(&b[same..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Trees smaller than this are not kept: reading them again costs little.
const KEEP_FROM: usize = 16 * 1024;
/// How many trees are kept: the tip's `snapshots/`, the next one, the remote's.
const KEEP: usize = 4;

static CACHE: Mutex<Vec<Arc<RawTree>>> = Mutex::new(Vec::new());

/// Keeps `tree` for the rest of the run (if large) and returns it shared.
pub(crate) fn remember(tree: RawTree) -> Arc<RawTree> {
    let tree = Arc::new(tree);
    if tree.bytes.len() >= KEEP_FROM {
        if let Ok(mut cache) = CACHE.lock() {
            cache.retain(|t| t.id != tree.id);
            if cache.len() >= KEEP {
                cache.remove(0);
            }
            cache.push(Arc::clone(&tree));
        }
    }
    tree
}

/// Keeps inflated loose object `object` (`<type> <size>\0<content>`), read for another
/// purpose, if it is a large tree and hashes to `id`.
pub(crate) fn offer(id: Oid, mut object: Vec<u8>) {
    if object.len() < KEEP_FROM || !object.starts_with(b"tree ") || cached(id).is_some() {
        return;
    }
    if Sha1::digest(&object).as_slice() != id.as_bytes() {
        return;
    }
    let Some(nul) = object.iter().take(32).position(|&b| b == 0) else {
        return;
    };
    object.drain(..=nul);
    if let Some(tree) = RawTree::parse(id, object) {
        remember(tree);
    }
}

fn cached(id: Oid) -> Option<Arc<RawTree>> {
    CACHE.lock().ok()?.iter().find(|t| t.id == id).cloned()
}

/// Tree `id` of `repo`, checked against its id: kept from earlier in the run, or read from
/// its loose object file, or from libgit2 (a packed one).
pub(crate) fn read(repo: &Repository, id: Oid) -> Result<Arc<RawTree>, git2::Error> {
    if let Some(tree) = cached(id) {
        return Ok(tree);
    }
    let bytes = match read_loose(&repo.path().join("objects"), id) {
        Some(bytes) => bytes,
        None => {
            let odb = repo.odb()?;
            let object = odb.read(id)?;
            if object.kind() != ObjectType::Tree {
                return Err(git2::Error::from_str(&format!(
                    "object {id} is a {}, not a tree",
                    object.kind()
                )));
            }
            object.data().to_vec()
        }
    };
    let tree = RawTree::parse(id, bytes)
        .ok_or_else(|| git2::Error::from_str(&format!("tree {id} is malformed")))?;
    Ok(remember(tree))
}

/// The content of loose tree object `id` under `objects`, when its file is there, inflates
/// into a tree and hashes to `id`; `None` otherwise (packed, or not whole: libgit2 then reads
/// it, or reports why it cannot).
fn read_loose(objects: &Path, id: Oid) -> Option<Vec<u8>> {
    let hex = id.to_string();
    let file = std::fs::read(objects.join(&hex[..2]).join(&hex[2..])).ok()?;
    let mut inflated = Vec::with_capacity(file.len() + file.len() / 2);
    flate2::read::ZlibDecoder::new(&file[..])
        .read_to_end(&mut inflated)
        .ok()?;
    let nul = inflated.iter().take(32).position(|&b| b == 0)?;
    let size: usize = std::str::from_utf8(inflated[..nul].strip_prefix(b"tree ")?)
        .ok()?
        .parse()
        .ok()?;
    if size != inflated.len() - nul - 1 || Sha1::digest(&inflated).as_slice() != id.as_bytes() {
        return None;
    }
    inflated.drain(..=nul);
    Some(inflated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trees_read_as_stored_and_differences_found() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let other = repo.blob(b"y").unwrap();
        let mut sub = repo.treebuilder(None).unwrap();
        sub.insert("f.json", blob, 0o100644).unwrap();
        let sub = sub.write().unwrap();
        let build = |entries: &[(&str, Oid, i32)]| {
            let mut b = repo.treebuilder(None).unwrap();
            for (n, id, mode) in entries {
                b.insert(n, *id, *mode).unwrap();
            }
            b.write().unwrap()
        };
        let old = build(&[
            ("a", sub, 0o040000),
            ("a.b", blob, 0o100644),
            ("c", blob, 0o100755),
            ("d", blob, 0o100644),
        ]);
        let new = build(&[
            ("a", sub, 0o040000),
            ("a.b", other, 0o100644),
            ("b", sub, 0o040000),
            ("c", blob, 0o100755),
        ]);
        for id in [old, new, sub] {
            let raw = read(&repo, id).unwrap();
            assert_eq!(raw.bytes, repo.odb().unwrap().read(id).unwrap().data());
            let tree = repo.find_tree(id).unwrap();
            assert_eq!(raw.len(), tree.len());
            for (r, t) in raw.iter().zip(tree.iter()) {
                assert_eq!(r.name, t.name_bytes());
                assert_eq!(r.id(), t.id());
                assert_eq!(r.mode(), t.filemode_raw() as u32);
                assert_eq!(r.kind(), t.kind());
                assert!(r.canonical_mode());
            }
        }
        let (old, new) = (read(&repo, old).unwrap(), read(&repo, new).unwrap());
        let found: Vec<String> = differences(&old, &new)
            .iter()
            .map(|d| match d {
                RawDifference::Removed => "-".to_owned(),
                RawDifference::Added(e) => format!("+{}", String::from_utf8_lossy(e.name)),
                RawDifference::Changed(_, e) => format!("~{}", String::from_utf8_lossy(e.name)),
            })
            .collect();
        assert_eq!(found, ["~a.b", "+b", "-"]);
        // A damaged loose file is not read as the tree: libgit2 reports it.
        let hex = old.id.to_string();
        let path = dir.path().join("objects").join(&hex[..2]).join(&hex[2..]);
        assert!(read_loose(&dir.path().join("objects"), old.id).is_some());
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        std::fs::write(&path, b"garbage").unwrap();
        assert!(read_loose(&dir.path().join("objects"), old.id).is_none());
    }

    /// The bytes are those libgit2's tree builder writes for the same entries, in any order
    /// given; names a tree cannot hold are refused.
    #[test]
    fn tree_bytes_are_the_tree_builders() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let sub = repo.treebuilder(None).unwrap().write().unwrap();
        let entries: Vec<(&[u8], u32, Oid)> = vec![
            (b"b", 0o100644, blob),
            (b"a.b", 0o100644, blob),
            (b"a", 0o040000, sub),
            (b"a-", 0o100755, blob),
            (b"0000", 0o040000, sub),
            (b"00000000-000000ff.jsonl", 0o100644, blob),
        ];
        for rotate in 0..entries.len() {
            let mut given = entries.clone();
            given.rotate_left(rotate);
            let bytes = tree_bytes(&mut given).unwrap();
            let mut b = repo.treebuilder(None).unwrap();
            for (name, mode, id) in &entries {
                b.insert(std::str::from_utf8(name).unwrap(), *id, *mode as i32)
                    .unwrap();
            }
            let id = b.write().unwrap();
            assert_eq!(bytes, repo.odb().unwrap().read(id).unwrap().data());
        }
        for bad in [&b""[..], b"a/b", b"a\0b"] {
            assert_eq!(tree_bytes(&mut [(bad, 0o100644, blob)]), None);
        }
        assert_eq!(
            tree_bytes(&mut [(b"a", 0o100644, blob), (b"a", 0o040000, sub)]),
            None
        );
    }

    #[test]
    fn git_order_puts_a_directory_after_its_name_with_a_dot() {
        assert_eq!(git_order(b"a", true, b"a.b", false), Ordering::Greater);
        assert_eq!(git_order(b"a", false, b"a.b", false), Ordering::Less);
        assert_eq!(git_order(b"a", false, b"a", true), Ordering::Less);
        assert_eq!(git_order(b"ab", true, b"a", true), Ordering::Greater);
        assert_eq!(git_order(b"a", true, b"a", true), Ordering::Equal);
    }
}
