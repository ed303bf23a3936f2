//! Packing: keeps the clone near the remote's size and its lookups cheap by packing loose
//! objects and merging small packs, with work bounded by the recent objects, never the history,
//! and linear in their bytes: our own deltas and a merge that copies ([`super::packfile`]),
//! never libgit2's pack builder, whose delta search over a large organisation's
//! multi-megabyte files took a minute a packing (README, Performance).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use super::{io_err, packfile, packindex, read_dir_entries, DataRepo, GitContext, RepoError};

/// How many loose objects accumulate before they are packed. A snapshot adds at most 12: the
/// commit, three trees (root, `snapshots/`, its directory), the seven files and the readers'
/// index; fewer when files repeat earlier ones (libgit2 does not write an object it has).
const LOOSE_OBJECT_LIMIT: usize = 512;

/// The geometric merge's factor: after a merge, each pack is at least this many times the
/// size of the next smaller one (`git repack --geometric=2`).
const FACTOR: u64 = 2;

impl DataRepo {
    /// Moves loose objects into one pack once enough have accumulated, then merges the small
    /// packs (`merge_small_packs`).
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
        // A fresh handle: the session's may carry the backup's in-memory objects.
        let repo = Repository::open_bare(self.repo.path()).ctx("pack objects")?;
        let dir = self.repo.path().join("objects/pack");
        let cpu = thread_cpu_seconds();
        let packed = packfile::pack_loose(&repo, &dir, &oids, &packs(&dir)?)?;
        let (pack, index) = (&packed.pack, &packed.index);
        log::info!(
            "packing: {} loose objects and {} packs into {} bytes in {:.2} s of CPU",
            oids.len(),
            packed.absorbed.len(),
            fs::metadata(pack).map_or(0, |m| m.len()),
            thread_cpu_seconds() - cpu
        );
        // Only now that the pack and its index are in place, and list every one of them, do
        // the loose copies and the packs taken in go.
        let held = packed.absorbed.iter().flat_map(|(_, ids)| ids);
        if let Some(missing) = oids.iter().chain(held).find(|id| !index.contains(id)) {
            return Err(RepoError::Io {
                path: pack.with_extension("idx"),
                source: std::io::Error::other(format!("the new pack lacks object {missing}")),
            });
        }
        for (_, path) in &loose {
            fs::remove_file(path).map_err(io_err(path))?;
        }
        for (_, path) in &loose {
            if let Some(dir) = path.parent() {
                let _ = fs::remove_dir(dir); // only succeeds once empty
            }
        }
        for (old, _) in &packed.absorbed {
            if old != pack {
                remove_pack(old)?;
            }
        }
        self.merge_small_packs()?;
        Ok(loose.len())
    }

    /// Keeps the number of packs small, rewriting little: each packing adds one (at most one
    /// per 43 hourly runs: 512 / 12), the backup one per run, and every lookup, and the push,
    /// goes through all of them, one open file each. Like `git repack --geometric=2`: sorted by
    /// size, the smallest packs are merged until each remaining pack is at least twice the
    /// size of all smaller ones together, so a big old pack is rewritten only once the new
    /// ones add up to half its size (each byte is copied a logarithmic number of times over
    /// the history), and a merge copies entries as stored ([`packfile::merge`]). `.keep`
    /// packs are left alone. The old packs go only once the merged one is in place and lists
    /// every object they held; a run killed in between leaves duplicates, which the next
    /// merge removes.
    fn merge_small_packs(&self) -> Result<(), RepoError> {
        let dir = self.repo.path().join("objects/pack");
        let mut packs: Vec<(u64, PathBuf)> = packs(&dir)?
            .into_iter()
            .filter_map(|p| fs::metadata(&p).ok().map(|m| (m.len(), p)))
            .collect();
        let merged = geometric_rollup(&mut packs);
        if merged.len() < 2 {
            return Ok(());
        }
        let mut held: HashSet<Oid> = HashSet::new();
        for pack in &merged {
            held.extend(packindex::read(&pack.with_extension("idx"))?.ids);
        }
        log::info!(
            "merging {} packs ({} objects) into one",
            merged.len(),
            held.len()
        );
        let repo = Repository::open_bare(self.repo.path()).ctx("merge packs")?;
        let cpu = thread_cpu_seconds();
        let (new_pack, index) = packfile::merge(&repo, &dir, &merged)?;
        log::info!(
            "merged into {} bytes in {:.2} s of CPU",
            fs::metadata(&new_pack).map_or(0, |m| m.len()),
            thread_cpu_seconds() - cpu
        );
        if let Some(missing) = held.iter().find(|id| !index.contains(id)) {
            return Err(RepoError::Io {
                path: new_pack.with_extension("idx"),
                source: std::io::Error::other(format!("the merged pack lacks object {missing}")),
            });
        }
        crate::pause::point("merged");
        for pack in &merged {
            // The merged pack can come out identical to one of them, under the same name.
            if *pack == new_pack {
                continue;
            }
            remove_pack(pack)?;
        }
        Ok(())
    }
}

/// The packs of `dir` a packing may rewrite: every `.pack` with its index and without a
/// `.keep`. An index whose pack is gone (a merge killed while removing its packs: invisible,
/// so harmless) is removed on the way.
fn packs(dir: &Path) -> Result<Vec<PathBuf>, RepoError> {
    let mut packs = Vec::new();
    for p in read_dir_entries(dir)?.into_iter().map(|e| e.path()) {
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or_default();
        if ext == "idx" && !p.with_extension("pack").exists() {
            let _ = fs::remove_file(&p);
        }
        if ext == "pack" && !p.with_extension("keep").exists() && p.with_extension("idx").exists() {
            packs.push(p);
        }
    }
    packs.sort();
    Ok(packs)
}

/// Removes a pack and the files beside it, the pack before its index: an index without its
/// pack is skipped by readers (and removed by [`packs`]).
fn remove_pack(pack: &Path) -> Result<(), RepoError> {
    for ext in ["pack", "rev", "bitmap", "mtimes", "idx"] {
        let path = pack.with_extension(ext);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(RepoError::Io { path, source: e }),
        }
    }
    Ok(())
}

/// This thread's CPU time (user and system), for the log lines `scripts/bench-pack.py` reads.
fn thread_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return 0.0;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// The packs (size, path) to merge: sorted by size, the longest prefix whose merge leaves a
/// geometric progression (each pack at least [`FACTOR`] times the sum of the smaller ones),
/// as `git repack --geometric` picks it.
fn geometric_rollup(packs: &mut [(u64, PathBuf)]) -> Vec<PathBuf> {
    packs.sort();
    // The last place where the progression (by consecutive pairs) breaks.
    let mut split = 0;
    for i in (1..packs.len()).rev() {
        if packs[i].0 < FACTOR.saturating_mul(packs[i - 1].0) {
            split = i + 1;
            break;
        }
    }
    let mut total: u64 = packs[..split].iter().map(|p| p.0).sum();
    while split < packs.len() && packs[split].0 < FACTOR.saturating_mul(total) {
        total += packs[split].0;
        split += 1;
    }
    packs[..split].iter().map(|p| p.1.clone()).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rollup(sizes: &[u64]) -> Vec<u64> {
        let mut packs: Vec<(u64, PathBuf)> = sizes
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, PathBuf::from(format!("p{i}"))))
            .collect();
        let chosen = geometric_rollup(&mut packs);
        packs
            .iter()
            .filter(|p| chosen.contains(&p.1))
            .map(|p| p.0)
            .collect()
    }

    #[test]
    fn the_geometric_rollup_merges_the_small_packs_and_leaves_the_big_ones() {
        // A progression already: nothing to merge.
        assert_eq!(rollup(&[100, 5, 20]), Vec::<u64>::new());
        assert_eq!(rollup(&[100]), Vec::<u64>::new());
        assert_eq!(rollup(&[]), Vec::<u64>::new());
        // Two equal small ones merge; the big one stays.
        assert_eq!(rollup(&[5, 100, 5]), [5, 5]);
        // The merge grows until the next pack is at least twice what it holds.
        assert_eq!(rollup(&[5, 5, 10, 100]), [5, 5, 10]);
        assert_eq!(rollup(&[5, 5, 10, 30, 1000]), [5, 5, 10, 30]);
        // Many tiny backup packs beside a packing's pack and the history.
        assert_eq!(rollup(&[1, 1, 1, 1, 50, 1000]), [1, 1, 1, 1]);
        // Everything, once the new packs add up to half the oldest.
        assert_eq!(rollup(&[60, 50, 100]), [50, 60, 100]);
    }

    /// Each byte is copied a logarithmic number of times: a packing a run, for a long time.
    #[test]
    fn merging_at_every_packing_copies_each_byte_a_few_times() {
        let mut packs: Vec<(u64, PathBuf)> = Vec::new();
        let mut copied = 0u64;
        let runs = 1000u64;
        for run in 0..runs {
            packs.push((10, PathBuf::from(format!("new{run}"))));
            let chosen = geometric_rollup(&mut packs);
            if chosen.len() >= 2 {
                let size: u64 = packs
                    .iter()
                    .filter(|p| chosen.contains(&p.1))
                    .map(|p| p.0)
                    .sum();
                copied += size;
                packs.retain(|p| !chosen.contains(&p.1));
                packs.push((size, PathBuf::from(format!("merged{run}"))));
            }
            assert!(packs.len() <= 12, "run {run}: {} packs", packs.len());
        }
        // log2(1000) is about 10.
        assert!(copied <= runs * 10 * 11, "{copied}");
    }
}
