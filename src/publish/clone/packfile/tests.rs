//! Tests of the clone's own packs: read back by libgit2 object by object, accepted by git's
//! `fsck` and `verify-pack`, merges of packs git, libgit2 and we wrote.

use super::*;
use std::process::Command;

/// A file like a snapshot's: many lines, of which commit `n` changes a few.
fn file(seed: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..4000u64 {
        let score = if i % 97 == n % 97 {
            n * 7 + i
        } else {
            i * seed % 1009
        };
        out.extend_from_slice(
            format!("{{\"user\": \"user-{i}\", \"score\": {score}}},\n").as_bytes(),
        );
    }
    out
}

/// Commits `count` snapshots after `parent` on `refs/heads/main`, in the clone's layout:
/// `snapshots/<n>/{a,b}.json` (the previous directories kept) and `latest.json`.
fn commit_snapshots(repo: &Repository, from: u64, count: u64) {
    let sig =
        git2::Signature::new("t", "t@example.com", &git2::Time::new(1_700_000_000, 0)).unwrap();
    for n in from..from + count {
        let parent = repo
            .refname_to_id("refs/heads/main")
            .ok()
            .map(|id| repo.find_commit(id).unwrap());
        let old_snapshots = parent
            .as_ref()
            .and_then(|p| p.tree().unwrap().get_name("snapshots").map(|e| e.id()));
        let mut dir = repo.treebuilder(None).unwrap();
        dir.insert("a.json", repo.blob(&file(3, n)).unwrap(), 0o100644)
            .unwrap();
        dir.insert("b.json", repo.blob(&file(5, n)).unwrap(), 0o100644)
            .unwrap();
        let dir = dir.write().unwrap();
        let old = old_snapshots.map(|id| repo.find_tree(id).unwrap());
        let mut snapshots = repo.treebuilder(old.as_ref()).unwrap();
        snapshots.insert(format!("{n:04}"), dir, 0o040000).unwrap();
        let snapshots = snapshots.write().unwrap();
        let mut root = repo.treebuilder(None).unwrap();
        root.insert("snapshots", snapshots, 0o040000).unwrap();
        root.insert(
            "latest.json",
            repo.blob(format!("{{\"n\": {n}}}\n").as_bytes()).unwrap(),
            0o100644,
        )
        .unwrap();
        let root = repo.find_tree(root.write().unwrap()).unwrap();
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        repo.commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            &format!("snapshot {n}"),
            &root,
            &parents,
        )
        .unwrap();
    }
}

fn loose(repo: &Repository) -> Vec<(Oid, PathBuf)> {
    super::super::pack::loose_objects(repo.path()).unwrap()
}

/// Packs every loose object with libgit2's pack builder (deltas, as `OFS_DELTA`), as the
/// clone did before, and removes the loose copies.
/// Packs every loose object with git's own `pack-objects`, as a fetch from a git server
/// stores them (`OFS_DELTA` entries), and removes the loose copies.
fn git_pack(repo: &Repository) {
    let objects = loose(repo);
    let list: String = objects.iter().map(|(id, _)| format!("{id}\n")).collect();
    let mut child = Command::new("git")
        .arg("--git-dir")
        .arg(repo.path())
        .args(["pack-objects", "-q", "--delta-base-offset"])
        .arg(repo.path().join("objects/pack/pack"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(list.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
    for (_, path) in objects {
        fs::remove_file(path).unwrap();
    }
}

fn libgit2_pack(repo: &Repository) {
    let objects = loose(repo);
    let mut pb = repo.packbuilder().unwrap();
    for (id, _) in &objects {
        pb.insert_object(*id, None).unwrap();
    }
    let odb = repo.odb().unwrap();
    let mut writer = odb.packwriter().unwrap();
    pb.foreach(|bytes| std::io::Write::write_all(&mut writer, bytes).is_ok())
        .unwrap();
    writer.commit().unwrap();
    for (_, path) in objects {
        fs::remove_file(path).unwrap();
    }
}

/// Every object `ids` names, as libgit2 reads it from a fresh repository holding only
/// `pack` (so the pack stands alone).
fn read_alone(pack: &Path, ids: &[Oid]) -> HashMap<Oid, (ObjectType, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    for ext in ["pack", "idx"] {
        let from = pack.with_extension(ext);
        fs::copy(
            &from,
            dir.path()
                .join("objects/pack")
                .join(from.file_name().unwrap()),
        )
        .unwrap();
    }
    let odb = repo.odb().unwrap();
    ids.iter()
        .map(|id| {
            let o = odb.read(*id).unwrap_or_else(|e| panic!("{id}: {e}"));
            (*id, (o.kind(), o.data().to_vec()))
        })
        .collect()
}

fn contents(repo: &Repository, ids: &[Oid]) -> HashMap<Oid, (ObjectType, Vec<u8>)> {
    let odb = repo.odb().unwrap();
    ids.iter()
        .map(|id| {
            let o = odb.read(*id).unwrap();
            (*id, (o.kind(), o.data().to_vec()))
        })
        .collect()
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn packs(repo: &Repository) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(repo.path().join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "pack"))
        .collect();
    out.sort();
    out
}

#[test]
fn loose_snapshots_are_packed_with_deltas_standing_alone_and_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    // An older pack holds the first snapshots: the loose ones' bases live there.
    commit_snapshots(&repo, 0, 3);
    libgit2_pack(&repo);
    commit_snapshots(&repo, 3, 20);
    // And something no commit reaches.
    let stray = repo.blob(b"not reached by any commit\n").unwrap();
    let objects = loose(&repo);
    let ids: Vec<Oid> = objects.iter().map(|(id, _)| *id).collect();
    assert!(ids.contains(&stray));
    let want = contents(&repo, &ids);
    let raw: usize = want.values().map(|(_, d)| d.len()).sum();

    let Packed {
        pack,
        index,
        absorbed,
    } = pack_loose(
        &repo,
        &repo.path().join("objects/pack"),
        &ids,
        &packs(&repo),
    )
    .unwrap();
    assert!(
        absorbed.is_empty(),
        "the older pack holds commits: {absorbed:?}"
    );
    for id in &ids {
        assert!(index.contains(id), "{id}");
    }
    assert_eq!(read_alone(&pack, &ids), want);
    let size = fs::metadata(&pack).unwrap().len() as usize;
    // 20 snapshots of two 150 KB files: whole, even deflated, they would take far more.
    assert!(raw > 5_000_000, "premise: {raw} bytes of objects");
    assert!(
        size * 40 < raw,
        "{size} bytes of pack for {raw} bytes of objects"
    );
    // Deltas used, of a depth the walk gives (one per snapshot), never across packs.
    let verify = git(
        repo.path(),
        &[
            "verify-pack",
            "-v",
            pack.with_extension("idx").to_str().unwrap(),
        ],
    );
    assert!(verify.contains("chain length = 1:"), "{verify}");
    assert!(!verify.contains("chain length = 21"), "{verify}");
    for (_, path) in &objects {
        fs::remove_file(path).unwrap();
    }
    git(repo.path(), &["fsck", "--full", "--strict"]);
}

/// The backup's packs (whole objects, one a run) are taken into the packing when all they
/// hold is what the loose commits add; a pack with anything else (commits of the history)
/// is left alone.
#[test]
fn packs_of_what_the_loose_commits_add_are_taken_in_and_get_deltas() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    commit_snapshots(&repo, 0, 2);
    libgit2_pack(&repo);
    let history = packs(&repo);
    commit_snapshots(&repo, 2, 6);
    // The new blobs go into a pack of their own, as the backup's chunks do.
    let odb = repo.odb().unwrap();
    let blobs: Vec<(Oid, PathBuf)> = loose(&repo)
        .into_iter()
        .filter(|(id, _)| odb.read_header(*id).unwrap().1 == ObjectType::Blob)
        .collect();
    let mut pb = repo.packbuilder().unwrap();
    for (id, _) in &blobs {
        pb.insert_object(*id, None).unwrap();
    }
    let mut writer = odb.packwriter().unwrap();
    pb.foreach(|bytes| std::io::Write::write_all(&mut writer, bytes).is_ok())
        .unwrap();
    writer.commit().unwrap();
    for (_, path) in &blobs {
        fs::remove_file(path).unwrap();
    }
    let chunks: Vec<PathBuf> = packs(&repo)
        .into_iter()
        .filter(|p| !history.contains(p))
        .collect();
    assert_eq!(chunks.len(), 1);
    let objects = loose(&repo);
    let ids: Vec<Oid> = objects.iter().map(|(id, _)| *id).collect();
    let mut all = ids.clone();
    all.extend(blobs.iter().map(|(id, _)| *id));
    let want = contents(&repo, &all);

    let packed = pack_loose(
        &repo,
        &repo.path().join("objects/pack"),
        &ids,
        &packs(&repo),
    )
    .unwrap();
    assert_eq!(
        packed.absorbed,
        [(
            chunks[0].clone(),
            packindex::read(&chunks[0].with_extension("idx"))
                .unwrap()
                .ids
        )]
    );
    assert_eq!(read_alone(&packed.pack, &all), want);
    let verify = git(
        repo.path(),
        &[
            "verify-pack",
            "-v",
            packed.pack.with_extension("idx").to_str().unwrap(),
        ],
    );
    assert!(verify.contains("chain length = 5:"), "{verify}");
}

#[test]
fn chains_stop_at_the_maximum_depth() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    commit_snapshots(&repo, 0, MAX_DEPTH as u64 + 8);
    let objects = loose(&repo);
    let ids: Vec<Oid> = objects.iter().map(|(id, _)| *id).collect();
    let want = contents(&repo, &ids);
    let pack = pack_loose(&repo, &repo.path().join("objects/pack"), &ids, &[])
        .unwrap()
        .pack;
    assert_eq!(read_alone(&pack, &ids), want);
    let verify = git(
        repo.path(),
        &[
            "verify-pack",
            "-v",
            pack.with_extension("idx").to_str().unwrap(),
        ],
    );
    assert!(
        verify.contains(&format!("chain length = {MAX_DEPTH}:")),
        "{verify}"
    );
    assert!(
        !verify.contains(&format!("chain length = {}:", MAX_DEPTH + 1)),
        "{verify}"
    );
}

#[test]
fn packs_with_ofs_deltas_and_duplicates_merge_by_copying_and_read_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    let pack_dir = repo.path().join("objects/pack");
    // A pack by git (OFS_DELTA entries, as a fetch stores them), one by libgit2's pack
    // builder (REF_DELTA), then two of ours, whose first bases duplicate objects of the
    // packs before.
    commit_snapshots(&repo, 0, 4);
    git_pack(&repo);
    commit_snapshots(&repo, 4, 4);
    libgit2_pack(&repo);
    for (from, count) in [(8, 5), (13, 5)] {
        commit_snapshots(&repo, from, count);
        let objects = loose(&repo);
        let ids: Vec<Oid> = objects.iter().map(|(id, _)| *id).collect();
        pack_loose(&repo, &pack_dir, &ids, &[]).unwrap();
        for (_, path) in objects {
            fs::remove_file(path).unwrap();
        }
    }
    let old = packs(&repo);
    assert_eq!(old.len(), 4);
    let ofs: usize = old
        .iter()
        .map(|p| {
            Source::open(p)
                .unwrap()
                .headers
                .iter()
                .filter(|h| matches!(h, Header::Ofs { .. }))
                .count()
        })
        .sum();
    assert!(ofs > 0, "premise: git wrote OFS_DELTA entries");
    let mut ids: Vec<Oid> = Vec::new();
    for p in &old {
        ids.extend(packindex::read(&p.with_extension("idx")).unwrap().ids);
    }
    let listed = ids.len();
    ids.sort();
    ids.dedup();
    assert!(ids.len() < listed, "premise: some objects are in two packs");
    let want = contents(&repo, &ids);
    let sizes: u64 = old.iter().map(|p| fs::metadata(p).unwrap().len()).sum();

    let (merged, index) = merge(&repo, &pack_dir, &old).unwrap();
    assert_eq!(index.ids, ids);
    assert_eq!(read_alone(&merged, &ids), want);
    // Copied, not re-encoded: about the sum of the parts (less the duplicates).
    let size = fs::metadata(&merged).unwrap().len();
    assert!(size <= sizes, "{size} > {sizes}");
    let verify = git(
        repo.path(),
        &[
            "verify-pack",
            "-v",
            merged.with_extension("idx").to_str().unwrap(),
        ],
    );
    assert!(verify.contains("chain length = 1:"), "{verify}");
    for p in &old {
        for ext in ["pack", "idx"] {
            fs::remove_file(p.with_extension(ext)).unwrap();
        }
    }
    assert_eq!(packs(&repo), [merged]);
    git(repo.path(), &["fsck", "--full", "--strict"]);
}

#[test]
fn a_damaged_entry_stops_the_merge_and_leaves_the_packs() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init_bare(dir.path()).unwrap();
    let pack_dir = repo.path().join("objects/pack");
    for (from, count) in [(0, 2), (2, 2)] {
        commit_snapshots(&repo, from, count);
        libgit2_pack(&repo);
    }
    let old = packs(&repo);
    // One byte inside the first pack's data changed: its CRC32 no longer matches.
    let mut bytes = fs::read(&old[0]).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let mut perms = fs::metadata(&old[0]).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    fs::set_permissions(&old[0], perms).unwrap();
    fs::write(&old[0], bytes).unwrap();
    let err = merge(&repo, &pack_dir, &old).unwrap_err().to_string();
    assert!(err.contains("does not match its CRC32"), "{err}");
    assert_eq!(packs(&repo), old);
    let leftovers: Vec<_> = fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("tmp_"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
