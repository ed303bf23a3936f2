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
use std::io::Write;
use std::path::Path;

use git2::Oid;
use sha1::{Digest, Sha1};

use super::{DataRepo, GitContext, RepoError};
use crate::publish::rawtree::{self, git_order, RawTree};

/// A directory's mode in a tree entry.
const DIR_MODE: &[u8] = b"40000";

impl DataRepo {
    /// `snapshots/` tree `existing` (none: there is none yet) with directory `name` -> `dir`
    /// added; `name` must not be in it. Returns the new tree's id, written.
    pub(super) fn add_snapshot_dir(
        &self,
        existing: Option<&RawTree>,
        name: &str,
        dir: Oid,
    ) -> Result<Oid, RepoError> {
        if let Some((bytes, ends)) = existing.and_then(|t| spliced(t, name, dir)) {
            return self.write_tree_bytes(bytes, ends);
        }
        let old = existing
            .map(|t| self.repo.find_tree(t.id))
            .transpose()
            .ctx("read snapshots/")?;
        let mut sub = self.repo.treebuilder(old.as_ref()).ctx("build tree")?;
        sub.insert(name, dir, 0o040000).ctx("build tree")?;
        sub.write().ctx("write tree")
    }

    /// Writes a tree object of `bytes` (a loose object, uncompressed) unless the clone has
    /// it already, and keeps it for the rest of the run (the readers' index and the push read
    /// it); returns its id.
    fn write_tree_bytes(&self, bytes: Vec<u8>, ends: Vec<usize>) -> Result<Oid, RepoError> {
        let header = format!("tree {}\0", bytes.len());
        let mut hash = Sha1::new();
        hash.update(header.as_bytes());
        hash.update(&bytes);
        let id = Oid::from_bytes(hash.finalize().as_slice()).ctx("write tree")?;
        let odb = self.repo.odb().ctx("write tree")?;
        if !odb.exists(id) {
            let objects = self.repo.path().join("objects");
            write_loose(&objects, id, header.as_bytes(), &bytes).map_err(|e| RepoError::Git {
                context: "write tree".into(),
                source: git2::Error::from_str(&format!(
                    "cannot write object {id} in {}: {e}",
                    objects.display()
                )),
            })?;
        }
        rawtree::remember(RawTree::from_parts(id, bytes, ends));
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
        let mut w = std::io::BufWriter::with_capacity(1 << 16, tmp.as_file_mut());
        zlib_stored(&[header, content], &mut w)?;
        w.flush()?;
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

/// `parts` (one after the other) as a zlib stream of stored (uncompressed) blocks, as zlib
/// writes at level 0: the header (deflate, 32 KiB window, no dictionary, fastest), blocks of
/// at most 65,535 bytes each with its length and its complement, then the Adler-32 of the
/// data. Written here rather than by the deflate encoder, which takes longer over 480 KB even
/// when storing, and without copying the parts together.
fn zlib_stored(parts: &[&[u8]], out: &mut impl Write) -> std::io::Result<()> {
    const BLOCK: usize = 65_535;
    out.write_all(&[0x78, 0x01])?;
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let blocks = total.div_ceil(BLOCK).max(1);
    let mut checksum = Adler32::default();
    let (mut part, mut offset) = (0, 0);
    for i in 0..blocks {
        let len = (total - i * BLOCK).min(BLOCK);
        out.write_all(&[u8::from(i + 1 == blocks)])?;
        out.write_all(&(len as u16).to_le_bytes())?;
        out.write_all(&(!(len as u16)).to_le_bytes())?;
        // This block's bytes, from one part or across two.
        let mut left = len;
        while left > 0 {
            let p: &[u8] = parts[part];
            let bytes = &p[offset..offset + (p.len() - offset).min(left)];
            out.write_all(bytes)?;
            checksum.update(bytes);
            offset += bytes.len();
            left -= bytes.len();
            if offset == p.len() {
                part += 1;
                offset = 0;
            }
        }
    }
    out.write_all(&checksum.value().to_be_bytes())
}

/// zlib's checksum (RFC 1950), over data given in pieces.
struct Adler32 {
    a: u32,
    b: u32,
}

impl Default for Adler32 {
    fn default() -> Adler32 {
        Adler32 { a: 1, b: 0 }
    }
}

impl Adler32 {
    const MOD: u32 = 65_521;
    /// The most bytes before `b` could overflow 32 bits.
    const NMAX: usize = 5552;

    fn update(&mut self, data: &[u8]) {
        for chunk in data.chunks(Self::NMAX) {
            for &x in chunk {
                self.a += u32::from(x);
                self.b += self.a;
            }
            self.a %= Self::MOD;
            self.b %= Self::MOD;
        }
    }

    fn value(&self) -> u32 {
        (self.b << 16) | self.a
    }
}

/// The bytes of tree `old` with directory `name` -> `dir` added at its place, exactly as
/// libgit2's tree builder would write them; `None` when that cannot be promised (see the
/// module doc) or `name` is not a plain name absent from `old`. With the bytes, where each
/// entry ends in them.
fn spliced(old: &RawTree, name: &str, dir: Oid) -> Option<(Vec<u8>, Vec<usize>)> {
    // Snapshot names: letters, digits, '-' and '_', none of which the builder's checks of a
    // name (no '/', no `.git` in any spelling a file system may take for it) can refuse.
    let new = name.as_bytes();
    let plain = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'_';
    if new.is_empty() || !new.iter().all(plain) {
        return None;
    }
    // Modes as the builder writes them, strictly in git's order (so no name twice with the
    // same kind), and no name both a file and a directory: the builder would rewrite, re-sort
    // or drop entries of any other tree.
    let mut files: Vec<&[u8]> = Vec::new();
    let mut prev: Option<(&[u8], bool)> = None;
    for e in old.iter() {
        if !e.canonical_mode() {
            return None;
        }
        if !e.is_dir() {
            files.push(e.name);
        }
        if let Some((name, is_dir)) = prev {
            if git_order(name, is_dir, e.name, e.is_dir()) != Ordering::Less {
                return None;
            }
        }
        prev = Some((e.name, e.is_dir()));
    }
    if !files.is_empty() {
        files.sort_unstable();
        let clash = |n: &[u8]| files.binary_search(&n).is_ok();
        if clash(new) || old.iter().any(|e| e.is_dir() && clash(e.name)) {
            return None;
        }
    }
    // The first entry not before the new one (usually none: names start with the time).
    let (mut lo, mut hi) = (0, old.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        let e = old.entry(mid);
        if git_order(e.name, e.is_dir(), new, true) == Ordering::Less {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo < old.len() && old.entry(lo).name == new {
        return None;
    }
    let at = match lo {
        0 => 0,
        p => old.end_of(p - 1),
    };
    let bytes = &old.bytes;
    let mut out = Vec::with_capacity(bytes.len() + new.len() + 28);
    out.extend_from_slice(&bytes[..at]);
    out.extend_from_slice(DIR_MODE);
    out.push(b' ');
    out.extend_from_slice(new);
    out.push(0);
    out.extend_from_slice(dir.as_bytes());
    out.extend_from_slice(&bytes[at..]);
    let added = out.len() - bytes.len();
    let ends = (0..lo)
        .map(|i| old.end_of(i))
        .chain([at + added])
        .chain((lo..old.len()).map(|i| old.end_of(i) + added))
        .collect();
    Some((out, ends))
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::{Repository, Tree};

    fn builder_result(repo: &Repository, old: Option<&Tree<'_>>, name: &str, dir: Oid) -> Oid {
        let mut b = repo.treebuilder(old).unwrap();
        b.insert(name, dir, 0o040000).unwrap();
        b.write().unwrap()
    }

    #[test]
    fn stored_zlib_streams_inflate_to_their_data() {
        use std::io::Read as _;
        for len in [0usize, 1, 100, 65_535, 65_536, 200_000] {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 300) as u8).collect();
            // Whole, and split in two anywhere (a header and the content).
            for cut in [0, len / 3, len.saturating_sub(1), len] {
                let mut stream = Vec::new();
                zlib_stored(&[&data[..cut], &data[cut..]], &mut stream).unwrap();
                let mut back = Vec::new();
                flate2::read::ZlibDecoder::new(&stream[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data, "{len} cut at {cut}");
            }
        }
        let mut adler = Adler32::default();
        adler.update(b"Wiki");
        adler.update(b"pedia");
        assert_eq!(adler.value(), 0x11E6_0398);
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
        let raw = rawtree::read(&repo, old.id()).unwrap();
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
            match spliced(&raw, name, dir) {
                Some((bytes, ends)) => {
                    let got = Oid::hash_object(git2::ObjectType::Tree, &bytes);
                    assert_eq!(got.unwrap(), want, "{name}");
                    let parsed = RawTree::parse(want, bytes.clone()).unwrap();
                    let given = RawTree::from_parts(want, bytes, ends);
                    assert_eq!(parsed.len(), given.len());
                    for i in 0..given.len() {
                        assert_eq!(parsed.end_of(i), given.end_of(i), "{name}");
                    }
                }
                None => panic!("{name} not spliced"),
            }
        }
        // Trees the builder would write otherwise go to it: a mode with a leading zero (old
        // git), entries out of git's order, a name both a file and a directory.
        let entry = |mode: &str, name: &str, id: Oid| {
            let mut e = format!("{mode} {name}\0").into_bytes();
            e.extend_from_slice(id.as_bytes());
            e
        };
        for odd in [
            [entry("040000", "a", dir), entry("40000", "b", dir)].concat(),
            [entry("40000", "b", dir), entry("40000", "a", dir)].concat(),
            [entry("100644", "a", blob), entry("40000", "a", dir)].concat(),
        ] {
            let id = repo
                .odb()
                .unwrap()
                .write(git2::ObjectType::Tree, &odd)
                .unwrap();
            let raw = rawtree::read(&repo, id).unwrap();
            assert_eq!(raw.bytes, odd);
            assert!(spliced(&raw, "c", dir).is_none());
        }
        // Names already there, of either kind, and names that are not plain, go to the builder.
        for name in ["b", "README", "b.d", "b.", ".git", "x/y"] {
            assert!(spliced(&raw, name, dir).is_none(), "{name}");
        }
    }
}
