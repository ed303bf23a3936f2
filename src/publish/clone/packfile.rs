//! Writing the clone's packs ourselves, in time linear in their bytes: no delta search.
//!
//! * Loose objects ([`pack_loose`]): the commits among them say what each object most resembles,
//!   exactly as a push finds it ([`crate::publish::sendpack::walk`]): the same path in the
//!   parent commit, or the previous snapshot's files for a new snapshot directory. Each is
//!   written as a `REF_DELTA` against that base with the push's linear encoder, and every
//!   delta is applied back and compared before it is trusted with the clone's objects. A base
//!   in an older pack is written whole at the start of the new pack, so every pack stands
//!   alone (no delta chain crosses packs) and chains stay as short as the runs one packing
//!   gathers (capped at [`MAX_DEPTH`] anyway). Loose objects no commit reaches go in whole.
//!   A pack holding nothing but objects the loose commits add, most of them with a base (the
//!   backup's, one a run, whole objects written without a search), is taken in the same way,
//!   and goes with the loose objects.
//! * Packs ([`merge`]): each entry is copied as stored (its CRC32 checked against its index),
//!   an `OFS_DELTA` (which libgit2's pack builder writes) rewritten as a `REF_DELTA` naming
//!   its base's id; nothing is inflated or searched again.
//!
//! Either way the index is written from the ids, CRC32s and offsets known while writing
//! ([`super::packindex`]); the pack and its index are fsynced, renamed into place (pack first:
//! a pack without its index is invisible to git and libgit2) and the directory fsynced before
//! the caller removes anything, and the caller removes nothing the new index does not list.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use git2::{ObjectType, Odb, Oid, Repository};

use super::{io_err, packindex, GitContext, RepoError};
use crate::publish::sendpack::pack::{apply, delta, PackWriter};
use crate::publish::sendpack::walk::{objects_to_send, Entry};

/// The longest delta chain a pack of ours holds: git's default `--depth`. Longer chains read
/// fine but each step costs an inflate and a patch on every read of the object.
pub(super) const MAX_DEPTH: u32 = 50;

/// A writer that keeps the CRC32 of what went through it since the last [`Crc::take`].
struct Crc<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W> Crc<W> {
    fn take(&mut self) -> u32 {
        std::mem::take(&mut self.crc).finalize()
    }
}

/// A pack being written into `objects/pack` under a temporary name (`tmp_pack_*`, which the
/// next run's recovery removes if this one is killed), with its index entries.
struct NewPack {
    /// The test pause point (src/pause.rs) reached as each entry is written.
    phase: &'static str,
    dir: PathBuf,
    tmp: PathBuf,
    /// `None` once finished.
    pack: Option<PackWriter<Crc<BufWriter<File>>>>,
    entries: Vec<(Oid, u32, u64)>,
}

/// A pack not finished (an error on the way) leaves no temporary file behind.
impl Drop for NewPack {
    fn drop(&mut self) {
        if self.pack.is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl NewPack {
    fn create(phase: &'static str, dir: &Path, count: u32) -> Result<NewPack, RepoError> {
        let tmp = dir.join(format!(
            "tmp_pack_gitcord_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let out = Crc {
            inner: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
        };
        let pack = PackWriter::new(out, count).map_err(io_err(&tmp))?;
        Ok(NewPack {
            phase,
            dir: dir.to_owned(),
            tmp,
            pack: Some(pack),
            entries: Vec::with_capacity(count as usize),
        })
    }

    /// Writes one entry with `write` and records it for the index.
    fn add(
        &mut self,
        id: Oid,
        write: impl FnOnce(&mut PackWriter<Crc<BufWriter<File>>>) -> io::Result<()>,
    ) -> Result<(), RepoError> {
        let Some(pack) = self.pack.as_mut() else {
            return Err(RepoError::Io {
                path: self.tmp.clone(),
                source: io::Error::other("the pack is finished"),
            });
        };
        let offset = pack.written;
        pack.get_mut().take();
        write(pack).map_err(io_err(&self.tmp))?;
        let crc = pack.get_mut().take();
        self.entries.push((id, crc, offset));
        crate::pause::point(self.phase);
        Ok(())
    }

    fn whole(&mut self, id: Oid, kind: ObjectType, data: &[u8]) -> Result<(), RepoError> {
        self.add(id, |p| p.full(kind, data))
    }

    fn ref_delta(&mut self, id: Oid, base: Oid, d: &[u8]) -> Result<(), RepoError> {
        self.add(id, |p| p.ref_delta(base, d))
    }

    fn stored(&mut self, id: Oid, entry: &[u8]) -> Result<(), RepoError> {
        self.add(id, |p| p.stored(entry))
    }

    /// Ends the pack, writes its index, and puts both in place durably. Returns the pack's
    /// path and its index as read back from disk.
    fn finish(mut self) -> Result<(PathBuf, packindex::PackIndex), RepoError> {
        let tmp = self.tmp.clone();
        let Some(pack) = self.pack.take() else {
            return Err(RepoError::Io {
                path: tmp,
                source: io::Error::other("the pack is finished"),
            });
        };
        let result = (|| {
            let (out, checksum) = pack.finish_with_checksum().map_err(io_err(&tmp))?;
            let file = out.inner.into_inner().map_err(|e| RepoError::Io {
                path: tmp.clone(),
                source: e.into_error(),
            })?;
            file.sync_all().map_err(io_err(&tmp))?;
            drop(file);
            let hex: String = checksum.iter().map(|b| format!("{b:02x}")).collect();
            let tmp_idx = self.dir.join(format!(
                "tmp_idx_gitcord_{}",
                tmp.file_name().map_or_else(String::new, |n| n
                    .to_string_lossy()
                    .trim_start_matches("tmp_pack_gitcord_")
                    .to_owned())
            ));
            let bytes = packindex::encode(&mut self.entries, &checksum);
            write_synced(&tmp_idx, &bytes)?;
            let pack = self.dir.join(format!("pack-{hex}.pack"));
            let idx = pack.with_extension("idx");
            for (from, to) in [(&tmp, &pack), (&tmp_idx, &idx)] {
                set_read_only(from)?;
                fs::rename(from, to).map_err(io_err(to))?;
            }
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&self.dir))?;
            let index = packindex::read(&idx)?;
            if index.pack_checksum != checksum {
                return Err(RepoError::Io {
                    path: idx,
                    source: io::Error::other("the index written does not name its pack"),
                });
            }
            Ok((pack, index))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), RepoError> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_err(path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(path))
}

/// Packs are read-only, as git and libgit2 leave them.
fn set_read_only(path: &Path) -> Result<(), RepoError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o444)).map_err(io_err(path))
}

/// The commits among `ids`, each after its parents that are among them.
fn commits_in_order(odb: &Odb<'_>, repo: &Repository, ids: &[Oid]) -> Result<Vec<Oid>, RepoError> {
    let mut commits = HashSet::new();
    for id in ids {
        let (_, kind) = odb.read_header(*id).ctx("pack objects")?;
        if kind == ObjectType::Commit {
            commits.insert(*id);
        }
    }
    let mut parents: HashMap<Oid, Vec<Oid>> = HashMap::new();
    for id in &commits {
        let commit = repo.find_commit(*id).ctx("pack objects")?;
        parents.insert(
            *id,
            commit
                .parent_ids()
                .filter(|p| commits.contains(p))
                .collect(),
        );
    }
    // Depth first from each commit, parents before children, so that each branch's commits
    // come one after the other (a snapshot's base is the previous snapshot's files).
    let mut sorted: Vec<Oid> = commits.iter().copied().collect();
    sorted.sort();
    let mut done = HashSet::new();
    let mut order = Vec::with_capacity(sorted.len());
    for start in sorted {
        let mut stack = vec![(start, false)];
        while let Some((id, expanded)) = stack.pop() {
            if done.contains(&id) {
                continue;
            }
            if expanded {
                done.insert(id);
                order.push(id);
                continue;
            }
            stack.push((id, true));
            for p in &parents[&id] {
                if !done.contains(p) {
                    stack.push((*p, false));
                }
            }
        }
    }
    Ok(order)
}

/// What [`pack_loose`] wrote: the new pack, its index, and the packs it took in (each with the
/// objects it held), which the caller removes once it has checked the index lists them.
pub(super) struct Packed {
    pub(super) pack: PathBuf,
    pub(super) index: packindex::PackIndex,
    pub(super) absorbed: Vec<(PathBuf, Vec<Oid>)>,
}

/// Writes `loose` (every loose object of the clone) as one pack, with deltas as described in
/// the module's documentation, together with every pack of `packs` that holds nothing but
/// objects the loose commits add: the backup's packs (one a run, whole objects, written
/// without a delta search to keep each run cheap), whose chunks thus get deltas against their
/// previous versions as on the remote.
pub(super) fn pack_loose(
    repo: &Repository,
    dir: &Path,
    loose: &[Oid],
    packs: &[PathBuf],
) -> Result<Packed, RepoError> {
    let odb = repo.odb().ctx("pack objects")?;
    let is_loose: HashSet<Oid> = loose.iter().copied().collect();
    // Each object the loose commits add, and whether it has a base.
    let mut walked: HashMap<Oid, bool> = HashMap::new();
    let mut all: Vec<Entry> = Vec::new();
    for commit in commits_in_order(&odb, repo, loose)? {
        for e in objects_to_send(repo, &[commit]).ctx("pack objects")? {
            if let std::collections::hash_map::Entry::Vacant(v) = walked.entry(e.id) {
                v.insert(e.base.is_some());
                all.push(e);
            }
        }
    }
    let mut batch = is_loose.clone();
    let mut absorbed = Vec::new();
    for p in packs {
        // An index of more objects than the batch could hold is not read (the history's).
        let most = 8 + 1024 + 40 + 28 * (walked.len() + is_loose.len()) as u64;
        if fs::metadata(p.with_extension("idx")).map_or(true, |m| m.len() > most) {
            continue;
        }
        let Ok(index) = packindex::read(&p.with_extension("idx")) else {
            continue;
        };
        // Only if the deltas are the point: a pack of objects with nothing like them before
        // (a first, full backup) would only be deflated again, whole.
        let with_base = index
            .ids
            .iter()
            .filter(|id| walked.get(id) == Some(&true))
            .count();
        if !index.ids.is_empty()
            && with_base * 2 >= index.ids.len()
            && index
                .ids
                .iter()
                .all(|id| walked.contains_key(id) || is_loose.contains(id))
        {
            batch.extend(index.ids.iter().copied());
            absorbed.push((p.clone(), index.ids));
        }
    }
    let plan: Vec<Entry> = all.into_iter().filter(|e| batch.contains(&e.id)).collect();
    let listed: HashSet<Oid> = plan.iter().map(|e| e.id).collect();
    let rest: Vec<Oid> = loose
        .iter()
        .filter(|id| !listed.contains(id))
        .copied()
        .collect();
    let rest_set: HashSet<Oid> = rest.iter().copied().collect();
    // How many entries use each base: a base's bytes are kept until its last use.
    let mut uses: HashMap<Oid, usize> = HashMap::new();
    let mut outside = Vec::new();
    for base in plan.iter().filter_map(|e| e.base) {
        let n = uses.entry(base).or_insert(0);
        if *n == 0 && !batch.contains(&base) {
            outside.push(base);
        }
        *n += 1;
    }
    // Bases in older packs go first, whole: the pack must stand alone. One that cannot be read
    // (a damaged clone: the health check's business) is no base; its objects go whole.
    let mut kept: HashMap<Oid, Vec<u8>> = HashMap::new();
    let mut outside_objects = Vec::new();
    for base in outside {
        match odb.read(base) {
            Ok(object) => {
                kept.insert(base, object.data().to_vec());
                outside_objects.push((base, object.kind()));
            }
            Err(e) => log::warn!("packing: cannot read {base} (no delta against it): {e}"),
        }
    }
    let count = plan.len() + rest.len() + outside_objects.len();
    let mut pack = NewPack::create("pack", dir, count as u32)?;
    let mut depth: HashMap<Oid, u32> = HashMap::new();
    for (base, kind) in outside_objects {
        pack.whole(base, kind, &kept[&base])?;
        depth.insert(base, 0);
    }
    for e in &plan {
        let object = odb.read(e.id).ctx("pack objects")?;
        let data = object.data();
        let mut written = false;
        if let Some(base) = e.base {
            // A base in this pack written later (it is not, in a walk's order), not in it at
            // all (an unreadable one) or at the deepest allowed: the object goes whole instead.
            let base_depth = match depth.get(&base) {
                Some(d) => Some(*d),
                None if rest_set.contains(&base) => Some(0),
                None => None,
            };
            if let Some(base_depth) = base_depth.filter(|d| *d < MAX_DEPTH) {
                let fetched;
                let base_bytes: &[u8] = match kept.get(&base) {
                    Some(b) => b,
                    None => {
                        fetched = odb.read(base).ctx("pack objects")?;
                        fetched.data()
                    }
                };
                let d = delta(base_bytes, data);
                // Worth it only if clearly smaller; and trusted only once it rebuilds the object
                // (else, a bug of the encoder, the object goes whole).
                let rebuilds = d.len() < data.len() / 2
                    && (apply(base_bytes, &d).as_deref() == Some(data)
                        || {
                            log::warn!(
                            "packing: the delta of {} against {base} does not rebuild it; stored whole",
                            e.id
                        );
                            false
                        });
                if rebuilds {
                    pack.ref_delta(e.id, base, &d)?;
                    depth.insert(e.id, base_depth + 1);
                    written = true;
                }
            }
            if let Some(n) = uses.get_mut(&base) {
                *n -= 1;
                if *n == 0 {
                    kept.remove(&base);
                }
            }
        }
        if !written {
            pack.whole(e.id, object.kind(), data)?;
            depth.insert(e.id, 0);
        }
        if uses.get(&e.id).is_some_and(|n| *n > 0) {
            kept.insert(e.id, data.to_vec());
        }
    }
    drop(kept);
    for id in rest {
        let object = odb.read(id).ctx("pack objects")?;
        pack.whole(id, object.kind(), object.data())?;
    }
    let (pack, index) = pack.finish()?;
    Ok(Packed {
        pack,
        index,
        absorbed,
    })
}

/// The type number of an `OFS_DELTA` and a `REF_DELTA` entry.
const OFS_DELTA: u8 = 6;
const REF_DELTA: u8 = 7;

/// An entry's header: its type number, the size of the header (type and size bytes), and
/// for a delta, where its base is named (an `OFS_DELTA`'s distance, in bytes, and the length
/// of its encoding; a `REF_DELTA`'s id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Whole {
        len: usize,
    },
    Ofs {
        len: usize,
        distance: u64,
        distance_len: usize,
    },
    Ref {
        len: usize,
        base: Oid,
    },
}

impl Header {
    fn parse(bytes: &[u8]) -> Option<Header> {
        let first = *bytes.first()?;
        let kind = (first >> 4) & 7;
        let mut len = 1;
        let mut byte = first;
        while byte & 0x80 != 0 {
            byte = *bytes.get(len)?;
            len += 1;
            if len > 10 {
                return None;
            }
        }
        match kind {
            1..=4 => Some(Header::Whole { len }),
            OFS_DELTA => {
                let mut i = len;
                let mut c = *bytes.get(i)?;
                i += 1;
                let mut distance = u64::from(c & 0x7f);
                while c & 0x80 != 0 {
                    c = *bytes.get(i)?;
                    i += 1;
                    distance = (distance + 1).checked_shl(7)? | u64::from(c & 0x7f);
                    if i - len > 10 {
                        return None;
                    }
                }
                Some(Header::Ofs {
                    len,
                    distance,
                    distance_len: i - len,
                })
            }
            REF_DELTA => Some(Header::Ref {
                len,
                base: Oid::from_bytes(bytes.get(len..len + 20)?).ok()?,
            }),
            _ => None,
        }
    }
}

/// One pack being merged: its file, index, and each entry's end (the next one's offset).
struct Source {
    pack: PathBuf,
    index: packindex::PackIndex,
    /// Entry numbers (into the index) in the order they are stored.
    by_offset: Vec<usize>,
    /// The end of each entry, by entry number.
    ends: Vec<u64>,
    headers: Vec<Header>,
}

fn damaged(path: &Path, what: String) -> RepoError {
    RepoError::Io {
        path: path.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidData, what),
    }
}

impl Source {
    fn open(pack: &Path) -> Result<Source, RepoError> {
        let index = packindex::read(&pack.with_extension("idx"))?;
        let file = File::open(pack).map_err(io_err(pack))?;
        let len = file.metadata().map_err(io_err(pack))?.len();
        let mut head = [0u8; 12];
        file.read_exact_at(&mut head, 0).map_err(io_err(pack))?;
        let n = index.ids.len();
        if &head[..8] != b"PACK\0\0\0\x02"
            || u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize != n
        {
            return Err(damaged(pack, "pack header does not match its index".into()));
        }
        let mut by_offset: Vec<usize> = (0..n).collect();
        by_offset.sort_unstable_by_key(|&i| index.offsets[i]);
        let mut ends = vec![0u64; n];
        let mut headers = Vec::with_capacity(n);
        for (k, &i) in by_offset.iter().enumerate() {
            let end = by_offset
                .get(k + 1)
                .map_or(len.saturating_sub(20), |&j| index.offsets[j]);
            let start = index.offsets[i];
            if start < 12 || end <= start {
                return Err(damaged(
                    pack,
                    format!("bad offset for object {}", index.ids[i]),
                ));
            }
            ends[i] = end;
        }
        for (i, (&start, &end)) in index.offsets.iter().zip(&ends).enumerate() {
            let want = (end - start).min(40) as usize;
            let mut buf = vec![0u8; want];
            file.read_exact_at(&mut buf, start).map_err(io_err(pack))?;
            headers.push(Header::parse(&buf).ok_or_else(|| {
                damaged(
                    pack,
                    format!("bad entry header for object {}", index.ids[i]),
                )
            })?);
        }
        Ok(Source {
            pack: pack.to_owned(),
            index,
            by_offset,
            ends,
            headers,
        })
    }

    /// The id of the entry an `OFS_DELTA` at entry `i` names.
    fn ofs_base(&self, i: usize, distance: u64) -> Option<Oid> {
        let at = self.index.offsets[i].checked_sub(distance)?;
        let k = self
            .by_offset
            .binary_search_by_key(&at, |&j| self.index.offsets[j])
            .ok()?;
        Some(self.index.ids[self.by_offset[k]])
    }
}

/// Merges `packs` into one new pack by copying their entries (see the module's
/// documentation). An object held by several keeps a whole copy if one has it. Returns the
/// new pack's path and index.
pub(super) fn merge(
    repo: &Repository,
    dir: &Path,
    packs: &[PathBuf],
) -> Result<(PathBuf, packindex::PackIndex), RepoError> {
    let sources: Vec<Source> = packs
        .iter()
        .map(|p| Source::open(p))
        .collect::<Result<_, _>>()?;
    // Which copy of each object is kept: the first whole one, else the first.
    let mut chosen: HashMap<Oid, (usize, usize)> = HashMap::new();
    for (s, source) in sources.iter().enumerate() {
        for (i, id) in source.index.ids.iter().enumerate() {
            let whole = matches!(source.headers[i], Header::Whole { .. });
            match chosen.get(id) {
                Some(&(t, j))
                    if whole && !matches!(sources[t].headers[j], Header::Whole { .. }) =>
                {
                    chosen.insert(*id, (s, i));
                }
                Some(_) => {}
                None => {
                    chosen.insert(*id, (s, i));
                }
            }
        }
    }
    let base_of = |s: usize, i: usize| -> Option<Option<Oid>> {
        match sources[s].headers[i] {
            Header::Whole { .. } => Some(None),
            Header::Ofs { distance, .. } => sources[s].ofs_base(i, distance).map(Some),
            Header::Ref { base, .. } => Some(Some(base)),
        }
    };
    // Depth of each kept delta, and which ones must be written whole instead: a base missing
    // or in a cycle (copies from different packs), or a chain past MAX_DEPTH.
    let mut depth: HashMap<Oid, u32> = HashMap::new();
    let mut rewrite: HashSet<Oid> = HashSet::new();
    let mut ids: Vec<Oid> = chosen.keys().copied().collect();
    ids.sort();
    for start in &ids {
        let mut path = Vec::new();
        let mut on_path = HashSet::new();
        let mut at = *start;
        // Follow the chain down to something of known depth, a whole object, or trouble.
        let mut below = loop {
            if let Some(d) = depth.get(&at) {
                break Some(*d);
            }
            let (s, i) = chosen[&at];
            match base_of(s, i) {
                Some(None) => {
                    depth.insert(at, 0);
                    break Some(0);
                }
                Some(Some(base))
                    if chosen.contains_key(&base) && !on_path.contains(&base) && base != at =>
                {
                    path.push(at);
                    on_path.insert(at);
                    at = base;
                }
                _ => {
                    rewrite.insert(at);
                    depth.insert(at, 0);
                    break Some(0);
                }
            }
        };
        while let Some(id) = path.pop() {
            let d = below.map_or(0, |b| b + 1);
            if d > MAX_DEPTH {
                rewrite.insert(id);
                depth.insert(id, 0);
                below = Some(0);
            } else {
                depth.insert(id, d);
                below = Some(d);
            }
        }
    }
    let odb = repo.odb().ctx("merge packs")?;
    let mut pack = NewPack::create("merge", dir, chosen.len() as u32)?;
    let mut buf = Vec::new();
    for (s, source) in sources.iter().enumerate() {
        let mut file = io::BufReader::with_capacity(
            1 << 20,
            File::open(&source.pack).map_err(io_err(&source.pack))?,
        );
        let mut position = None;
        for &i in &source.by_offset {
            let id = source.index.ids[i];
            if chosen[&id] != (s, i) {
                continue;
            }
            if rewrite.contains(&id) {
                let object = odb.read(id).ctx("merge packs")?;
                pack.whole(id, object.kind(), object.data())?;
                continue;
            }
            let start = source.index.offsets[i];
            if position != Some(start) {
                file.seek(SeekFrom::Start(start))
                    .map_err(io_err(&source.pack))?;
            }
            let len = (source.ends[i] - start) as usize;
            buf.resize(len, 0);
            file.read_exact(&mut buf).map_err(io_err(&source.pack))?;
            position = Some(source.ends[i]);
            if crc32fast::hash(&buf) != source.index.crcs[i] {
                return Err(damaged(
                    &source.pack,
                    format!("object {id} does not match its CRC32"),
                ));
            }
            match source.headers[i] {
                Header::Ofs {
                    len: header_len,
                    distance,
                    distance_len,
                } => {
                    let base = source.ofs_base(i, distance).ok_or_else(|| {
                        damaged(&source.pack, format!("object {id} names no base"))
                    })?;
                    let mut entry = Vec::with_capacity(len + 20);
                    entry.push((buf[0] & 0x8f) | (REF_DELTA << 4));
                    entry.extend_from_slice(&buf[1..header_len]);
                    entry.extend_from_slice(base.as_bytes());
                    entry.extend_from_slice(&buf[header_len + distance_len..]);
                    pack.stored(id, &entry)?;
                }
                Header::Whole { .. } | Header::Ref { .. } => pack.stored(id, &buf)?,
            }
        }
    }
    pack.finish()
}

#[cfg(test)]
mod tests;
