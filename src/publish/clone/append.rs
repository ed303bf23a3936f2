//! Adding one snapshot directory to `snapshots/`: the one tree of a run that grows with the
//! history (git's format, about 55 bytes per entry: 480 KB after a year of hourly snapshots).
//!
//! libgit2's tree builder turns every entry of the old tree into a map entry, sorts them all,
//! serialises them, hashes the result with its collision-detecting SHA-1 and deflates it: the
//! largest user-space cost of a run at a year of history. The new tree is the old one with one
//! entry more, so here its bytes are the old tree's bytes (rebuilt from libgit2's cached copy
//! and checked against its id, [`canonical_bytes`]) with the new entry spliced in at its place
//! in git's order, hashed with a plain SHA-1 and written as a loose object directly.
//!
//! The result is byte for byte what the tree builder writes (the same tree id, so the same
//! commit ids): this path is taken only when the old tree is exactly what the builder would
//! write for its entries (canonical modes, strictly in git's order, no name twice) and the new
//! name is not in it; anything else goes through the builder as before.
//!
//! The loose object is stored without compression (zlib's stored blocks, as git writes with
//! `core.looseCompression=0`): deflating 480 KB of mostly object ids saves little and costs
//! more than everything else a run does, and the next run reads it back (the health check,
//! the commit) at the cost of a copy. The clone packs its loose objects every few dozen runs
//! ([`super::pack`]), which compresses it like any other object; nothing else changes, as the
//! push sends the pack it builds from the object's content.

use std::cmp::Ordering;
use std::fs;
use std::io::Write as _;
use std::path::Path;

use git2::{Oid, Tree};
use sha1::{Digest, Sha1};

use super::{DataRepo, GitContext, RepoError};
use crate::publish::tree::canonical_bytes;

/// A directory's mode in a tree entry.
const DIR_MODE: &[u8] = b"40000";

impl DataRepo {
    /// `snapshots/` tree `existing` (none: there is none yet) with directory `name` -> `dir`
    /// added; `name` must not be in it. Returns the new tree's id, written.
    pub(super) fn add_snapshot_dir(
        &self,
        existing: Option<&Tree<'_>>,
        name: &str,
        dir: Oid,
    ) -> Result<Oid, RepoError> {
        if let Some(bytes) = existing.and_then(|t| spliced(t, name, dir)) {
            return self.write_tree_bytes(&bytes);
        }
        let mut sub = self.repo.treebuilder(existing).ctx("build tree")?;
        sub.insert(name, dir, 0o040000).ctx("build tree")?;
        sub.write().ctx("write tree")
    }

    /// Writes a tree object of `bytes` (a loose object, uncompressed) unless the clone has
    /// it already; returns its id.
    fn write_tree_bytes(&self, bytes: &[u8]) -> Result<Oid, RepoError> {
        let header = format!("tree {}\0", bytes.len());
        let mut hash = Sha1::new();
        hash.update(header.as_bytes());
        hash.update(bytes);
        let id = Oid::from_bytes(hash.finalize().as_slice()).ctx("write tree")?;
        let odb = self.repo.odb().ctx("write tree")?;
        if odb.exists(id) {
            return Ok(id);
        }
        let objects = self.repo.path().join("objects");
        write_loose(&objects, id, header.as_bytes(), bytes).map_err(|e| RepoError::Git {
            context: "write tree".into(),
            source: git2::Error::from_str(&format!(
                "cannot write object {id} in {}: {e}",
                objects.display()
            )),
        })?;
        Ok(id)
    }
}

/// Writes loose object `id` (`header` then `content`) under `objects` as git and libgit2 do:
/// a temporary file (`tmp_obj_*`, removed as stale if a run is killed before the rename),
/// synced, read-only, renamed into place, its directory synced.
fn write_loose(objects: &Path, id: Oid, header: &[u8], content: &[u8]) -> std::io::Result<()> {
    let hex = id.to_string();
    let dir = objects.join(&hex[..2]);
    let mut tmp = tempfile::Builder::new()
        .prefix("tmp_obj_")
        .tempfile_in(objects)?;
    {
        let mut z = flate2::write::ZlibEncoder::new(
            std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut()),
            flate2::Compression::none(),
        );
        z.write_all(header)?;
        z.write_all(content)?;
        z.finish()?.flush()?;
    }
    tmp.as_file().sync_all()?;
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o444),
    )?;
    match fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    tmp.persist(dir.join(&hex[2..])).map_err(|e| e.error)?;
    fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

/// One entry of a tree's bytes: its mode and name.
struct Raw<'a> {
    mode: &'a [u8],
    name: &'a [u8],
}

impl Raw<'_> {
    fn is_dir(&self) -> bool {
        self.mode == DIR_MODE
    }
}

/// The entries of tree bytes `bytes` with each one's end offset; `None` when malformed.
fn entries(bytes: &[u8]) -> Option<Vec<(Raw<'_>, usize)>> {
    let mut out = Vec::with_capacity(bytes.len() / 56 + 1);
    let mut at = 0;
    while at < bytes.len() {
        let rest = &bytes[at..];
        let space = rest.iter().position(|&b| b == b' ')?;
        let nul = space + 1 + rest[space + 1..].iter().position(|&b| b == 0)?;
        let end = at + nul + 1 + 20;
        if end > bytes.len() {
            return None;
        }
        out.push((
            Raw {
                mode: &rest[..space],
                name: &rest[space + 1..nul],
            },
            end,
        ));
        at = end;
    }
    Some(out)
}

/// git's order of tree entries: names compared as bytes, a directory's as if it ended in `/`.
fn git_order(a: &[u8], a_dir: bool, b: &[u8], b_dir: bool) -> Ordering {
    let key = |name: &[u8], dir: bool, i: usize| match name.get(i) {
        Some(&c) => Some(c),
        None if dir && i == name.len() => Some(b'/'),
        None => None,
    };
    let mut i = 0;
    loop {
        match (key(a, a_dir, i), key(b, b_dir, i)) {
            (None, None) => return Ordering::Equal,
            (x, y) if x != y => return x.cmp(&y),
            _ => i += 1,
        }
    }
}

/// The bytes of tree `old` with directory `name` -> `dir` added at its place, exactly as
/// libgit2's tree builder would write them; `None` when that cannot be promised (see the
/// module doc) or `name` is not a plain name absent from `old`.
fn spliced(old: &Tree<'_>, name: &str, dir: Oid) -> Option<Vec<u8>> {
    // Snapshot names: letters, digits, '-' and '_', none of which the builder's checks of a
    // name (no '/', no `.git` in any spelling a file system may take for it) can refuse.
    let new = name.as_bytes();
    let plain = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
    if new.is_empty() || !new.iter().all(plain) {
        return None;
    }
    let bytes = canonical_bytes(old)?;
    let listed = entries(&bytes)?;
    // Strictly in git's order (so no name twice with the same kind), and no name both a file
    // and a directory: the builder would re-sort or drop entries of such a tree.
    let mut files: Vec<&[u8]> = Vec::new();
    for (i, (e, _)) in listed.iter().enumerate() {
        if !e.is_dir() {
            files.push(e.name);
        }
        if let Some((prev, _)) = i.checked_sub(1).map(|p| &listed[p]) {
            if git_order(prev.name, prev.is_dir(), e.name, e.is_dir()) != Ordering::Less {
                return None;
            }
        }
    }
    if !files.is_empty() {
        files.sort_unstable();
        let clash = |n: &[u8]| files.binary_search(&n).is_ok();
        if clash(new) || listed.iter().any(|(e, _)| e.is_dir() && clash(e.name)) {
            return None;
        }
    }
    // The first entry after the new one; usually none (names start with the time).
    let place =
        listed.partition_point(|(e, _)| git_order(e.name, e.is_dir(), new, true) == Ordering::Less);
    if listed.get(place).is_some_and(|(e, _)| e.name == new) {
        return None;
    }
    let at = match place {
        0 => 0,
        p => listed[p - 1].1,
    };
    let mut out = Vec::with_capacity(bytes.len() + new.len() + 28);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(DIR_MODE);
    out.push(b' ');
    out.extend_from_slice(new);
    out.push(0);
    out.extend_from_slice(dir.as_bytes());
    out.extend_from_slice(&bytes[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Repository;

    fn builder_result(repo: &Repository, old: Option<&Tree<'_>>, name: &str, dir: Oid) -> Oid {
        let mut b = repo.treebuilder(old).unwrap();
        b.insert(name, dir, 0o040000).unwrap();
        b.write().unwrap()
    }

    #[test]
    fn splicing_writes_what_the_tree_builder_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(tmp.path()).unwrap();
        let blob = repo.blob(b"x").unwrap();
        let mut d = repo.treebuilder(None).unwrap();
        d.insert("meta.json", blob, 0o100644).unwrap();
        let dir = d.write().unwrap();
        // Names around the new one in git's order: a file sorts before a directory of the
        // same prefix followed by '.', a directory after.
        let mut old = repo.treebuilder(None).unwrap();
        for n in [
            "2024-01-01T00-00-00-aaaaaaaa",
            "2024-01-02",
            "b",
            "b.c",
            "b-",
        ] {
            old.insert(n, dir, 0o040000).unwrap();
        }
        old.insert("README", blob, 0o100644).unwrap();
        old.insert("b.d", blob, 0o100644).unwrap();
        let old = repo.find_tree(old.write().unwrap()).unwrap();
        for name in [
            "2025-06-01T00-00-00-bbbbbbbb",
            "0",
            "2024-01-01T00-00-00-aaaaaaa",
            "2024-01-02-x",
            "b_",
            "ba",
            "zzz",
            "README-d",
        ] {
            let want = builder_result(&repo, Some(&old), name, dir);
            match spliced(&old, name, dir) {
                Some(bytes) => {
                    let got = Oid::hash_object(git2::ObjectType::Tree, &bytes);
                    assert_eq!(got.unwrap(), want, "{name}");
                }
                None => panic!("{name} not spliced"),
            }
        }
        // Names already there, of either kind, and names that are not plain, go to the builder.
        for name in ["b", "README", "b.d", "b.", ".git", "x/y"] {
            assert!(spliced(&old, name, dir).is_none(), "{name}");
        }
    }
}
