//! Packing: keeps the clone near the remote's size and its lookups cheap by packing loose
//! objects and merging small packs, with work bounded by the recent objects, never the history.

use std::fs;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use super::{io_err, read_dir_entries, DataRepo, GitContext, RepoError};

/// How many packs the clone may hold before the small ones are merged.
const MAX_PACKS: usize = 16;

/// How many loose objects accumulate before they are packed. A snapshot adds at most 12: the
/// commit, three trees (root, `snapshots/`, its directory), the seven files and the readers'
/// index; fewer when files repeat earlier ones (libgit2 does not write an object it has).
const LOOSE_OBJECT_LIMIT: usize = 512;

impl DataRepo {
    /// Moves loose objects into one pack once enough have accumulated.
    ///
    /// libgit2 writes each new object as its own file at the fastest (weakest) compression, so
    /// a clone of loose objects takes about twice the remote's space. Packing them every few
    /// dozen snapshots keeps the clone near the remote's size; the work is bounded by the loose
    /// objects (never the whole history), and lookups stay cheap because packs are few.
    /// Returns how many objects were packed.
    pub fn pack_loose_objects(&self) -> Result<usize, RepoError> {
        let loose = loose_objects(self.repo.path())?;
        if loose.len() < LOOSE_OBJECT_LIMIT {
            return Ok(0);
        }
        let oids: Vec<Oid> = loose.iter().map(|(oid, _)| *oid).collect();
        self.write_pack(&oids)?;
        // Only now that the pack and its index are in place do the loose copies go.
        for (_, path) in &loose {
            fs::remove_file(path).map_err(io_err(path))?;
        }
        for (_, path) in &loose {
            if let Some(dir) = path.parent() {
                let _ = fs::remove_dir(dir); // only succeeds once empty
            }
        }
        self.merge_small_packs()?;
        Ok(loose.len())
    }

    /// Writes one pack, with deltas, holding `oids`; the pack and its index are in place
    /// (renamed, fsynced) when this returns.
    fn write_pack(&self, oids: &[Oid]) -> Result<(), RepoError> {
        // A fresh handle, without the push's no-delta setting: here deltas are the point.
        let repo = Repository::open_bare(self.repo.path()).ctx("pack objects")?;
        let mut pack = repo.packbuilder().ctx("pack objects")?;
        for oid in oids {
            pack.insert_object(*oid, None).ctx("pack objects")?;
        }
        let odb = repo.odb().ctx("pack objects")?;
        let mut writer = odb.packwriter().ctx("pack objects")?;
        let mut write_error = None;
        pack.foreach(
            |bytes| match std::io::Write::write_all(&mut writer, bytes) {
                Ok(()) => {
                    crate::pause::point("pack");
                    true
                }
                Err(e) => {
                    write_error = Some(e);
                    false
                }
            },
        )
        .ctx("pack objects")?;
        if let Some(e) = write_error {
            return Err(RepoError::Io {
                path: self.repo.path().join("objects/pack"),
                source: e,
            });
        }
        writer.commit().ctx("pack objects")?;
        Ok(())
    }

    /// Keeps the number of packs small: each packing adds one (at most one per 43 hourly runs:
    /// 512 / 12), and every lookup, and libgit2's push, which reads every tree of the remote
    /// tip, goes through all of them, one open file each. Past [`MAX_PACKS`], every pack but the largest
    /// is merged into one (like `git repack --geometric`, without rewriting the big one), so
    /// the work follows the recent objects, not the history. The old packs go only once the
    /// merged one is in place; a run killed in between leaves duplicates, which the next merge
    /// removes.
    fn merge_small_packs(&self) -> Result<(), RepoError> {
        let dir = self.repo.path().join("objects/pack");
        let mut packs: Vec<(u64, PathBuf)> = read_dir_entries(&dir)?
            .into_iter()
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "pack") && !p.with_extension("keep").exists()
            })
            .filter_map(|p| fs::metadata(&p).ok().map(|m| (m.len(), p)))
            .collect();
        if packs.len() <= MAX_PACKS {
            return Ok(());
        }
        packs.sort();
        packs.pop(); // the largest stays as it is
        let mut oids = Vec::new();
        for (_, pack) in &packs {
            oids.extend(pack_index_oids(&pack.with_extension("idx"))?);
        }
        oids.sort_unstable();
        oids.dedup();
        log::info!(
            "merging {} packs ({} objects) into one",
            packs.len(),
            oids.len()
        );
        self.write_pack(&oids)?;
        for (_, pack) in &packs {
            // The merged pack can come out identical to one of them, under the same name.
            if pack_index_oids(&pack.with_extension("idx")).is_ok_and(|ids| ids.len() == oids.len())
            {
                continue;
            }
            for ext in ["idx", "rev", "pack"] {
                let path = pack.with_extension(ext);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(RepoError::Io { path, source: e }),
                }
            }
        }
        Ok(())
    }
}

/// The object ids a pack index (version 2, the only one git and libgit2 write) lists.
fn pack_index_oids(idx: &Path) -> Result<Vec<Oid>, RepoError> {
    let bytes = fs::read(idx).map_err(io_err(idx))?;
    let bad = || RepoError::Io {
        path: idx.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a version 2 pack index",
        ),
    };
    if bytes.get(..8) != Some(&[0xff, b't', b'O', b'c', 0, 0, 0, 2][..]) {
        return Err(bad());
    }
    // 256 big-endian counts follow the header; the last is the number of objects, whose ids
    // come next, 20 bytes each, sorted.
    let count = bytes.get(8 + 255 * 4..8 + 256 * 4).ok_or_else(bad)?;
    let count = u32::from_be_bytes([count[0], count[1], count[2], count[3]]) as usize;
    let start = 8 + 256 * 4;
    let ids = bytes.get(start..start + count * 20).ok_or_else(bad)?;
    ids.chunks_exact(20)
        .map(|id| Oid::from_bytes(id).map_err(|_| bad()))
        .collect()
}

/// Every loose object below `git_dir`: its id and its file (`objects/<2 hex>/<38 hex>`), in
/// directory order. Anything else there (git's temporary files, `info/`, `pack/`) is not a
/// loose object and is left out.
pub(super) fn loose_objects(git_dir: &Path) -> Result<Vec<(Oid, PathBuf)>, RepoError> {
    let is_hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut loose = Vec::new();
    for dir in read_dir_entries(&git_dir.join("objects"))? {
        let prefix = dir.file_name().to_string_lossy().into_owned();
        if !is_hex(&prefix, 2) {
            continue;
        }
        for file in read_dir_entries(&dir.path())? {
            let rest = file.file_name().to_string_lossy().into_owned();
            if !is_hex(&rest, 38) {
                continue;
            }
            if let Ok(oid) = Oid::from_str(&format!("{prefix}{rest}")) {
                loose.push((oid, file.path()));
            }
        }
    }
    Ok(loose)
}
