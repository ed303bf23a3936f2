//! Crash recovery (issue 9): a run may die at any moment, and no host's queue may wedge.
//!
//! Stale files of every kind a killed run leaves, local failures reported as local (exit 74),
//! damaged clones set aside and rebuilt, a deterministic SIGKILL at each phase of a run (through
//! the test-only pause points of src/pause.rs), a soak of many hosts killed at random moments,
//! and `restore`'s leftovers. Every test runs the real binary against the real TLS git server
//! and checks exit codes, the remote and the clone; none asserts on timing.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::git::{fsck, git, history};
use crate::support::git_server::{GitServer, Mode};
use crate::support::host::{dir_name, Host};
use crate::support::testenv::{ChildGuard, Run};

/// src/pause.rs: the phase a run stops at, and the file it writes when it got there.
const PAUSE_AT: &str = "GITCORD_SNAPSHOT_PAUSE_AT";
const PAUSE_FILE: &str = "GITCORD_SNAPSHOT_PAUSE_FILE";

/// The setup the crash tests share: a TLS git server holding the bare data repository `data`
/// and one host whose clone is `clone` (made by its first run). Other hosts on the same remote
/// come from [`Scene::other_host`].
struct Scene {
    // Dropped first: the host's directories, then the server (stopped on drop).
    host: Host,
    clone: PathBuf,
    git_dir: PathBuf,
    bare: PathBuf,
    server: GitServer,
}

impl Scene {
    /// The server, the bare repository and the host; nothing run yet.
    fn new() -> Scene {
        let server = GitServer::start();
        let bare = server.create_bare_repo("data");
        let host = Host::for_server(&server, "data");
        let clone = host.clone_path("clone");
        Scene {
            git_dir: clone.join(".git"),
            clone,
            host,
            bare,
            server,
        }
    }

    /// [`Scene::new`], after the host published snapshot 0.
    fn published() -> Scene {
        let scene = Scene::new();
        scene.host.push("clone", 0, &[]).expect_code(0);
        scene
    }

    /// Another host pushing to the same remote, with a clone of its own.
    fn other_host(&self) -> Host {
        Host::for_server(&self.server, "data")
    }

    /// Snapshot 0 published, snapshot 1 committed but queued: the server answered 503.
    fn with_one_queued() -> Scene {
        let scene = Scene::published();
        scene.server.set_mode(Mode::Unavailable503);
        scene.host.push("clone", 1, &[]).expect_code(75);
        scene.server.set_mode(Mode::Normal);
        scene
    }
}

/// Every `*.lock` below `dir`.
fn locks_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.filter_map(Result::ok) {
        let p = e.path();
        if e.file_name().to_string_lossy().ends_with(".lock") {
            out.push(p);
        } else if e.file_type().unwrap().is_dir() {
            out.extend(locks_below(&p));
        }
    }
    out
}

/// `find <clone>/.git -name '*.lock'` is empty.
fn assert_no_locks(clone: &Path) {
    let locks = locks_below(&clone.join(".git"));
    assert!(locks.is_empty(), "lock files left in the clone: {locks:?}");
}

/// The warning lines of a run's stderr, but for the one every run of the `basic` case's config
/// gives (Gitcord's own writer is on as well).
fn warnings(run: &Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("gitcord-snapshot: warn:"))
        .filter(|l| !l.contains("snapshots.enabled is true"))
        .collect()
}

/// How many times each snapshot is on `git_dir`'s `main`, and whether the history is linear.
fn counts(git_dir: &Path) -> (BTreeMap<String, usize>, bool) {
    let (names, linear) = history(git_dir);
    let mut counts = BTreeMap::new();
    for n in names {
        *counts.entry(n).or_insert(0) += 1;
    }
    (counts, linear)
}

/// Every snapshot in `want` is on the remote exactly once, nothing is on it twice, and its
/// history is linear.
fn assert_exactly_once<'a>(remote: &Path, want: impl IntoIterator<Item = &'a String>) {
    let (have, linear) = counts(remote);
    assert!(linear, "merge commits on the remote");
    for name in want {
        assert_eq!(
            have.get(name).copied().unwrap_or(0),
            1,
            "{name} on the remote: {have:?}"
        );
    }
    let twice: Vec<_> = have.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "on the remote more than once: {twice:?}");
}

/// The `.git.broken-*` directories in the clone.
fn broken_copies(clone: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(clone)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".git.broken-"))
        .map(|e| e.path())
        .collect()
}

/// Starts `push` of snapshot `n` with the pause point `phase` armed, waits until the run has
/// stopped there, kills it with SIGKILL and checks that the signal is what ended it.
pub(crate) fn kill_at(host: &Host, clone: &str, n: u32, phase: &str) {
    let file = host.env.path(&format!("paused-{n}-{phase}"));
    let log_path = host.env.path(&format!("paused-{n}-{phase}.log"));
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = ChildGuard::spawn(
        host.command(clone, n, &["-v"])
            .env(PAUSE_AT, phase)
            .env(PAUSE_FILE, &file)
            .stdout(Stdio::null())
            .stderr(log),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_to_string(&file).unwrap_or_default() != phase {
        if let Some(status) = child.child().try_wait().unwrap() {
            panic!(
                "the run ended ({status}) without reaching the {phase} pause point: {}",
                std::fs::read_to_string(&log_path).unwrap()
            );
        }
        assert!(Instant::now() < deadline, "no pause at {phase}");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.child().kill().unwrap();
    let status = child.child().wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the run paused at {phase} did not die of SIGKILL: {status}"
    );
}

/// Adds `count` small loose objects to the clone, so that the next run packs them.
fn add_loose_objects(clone: &Path, count: usize) {
    let repo = git2::Repository::open_bare(clone.join(".git")).unwrap();
    for i in 0..count {
        repo.blob(format!("filler {i}\n").as_bytes()).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Stale files, one test per kind.
// ---------------------------------------------------------------------------------------------

/// The identity of a clone's repository: its `.git` directory (device and inode) and an
/// unreachable blob written into it. A rebuild moves `.git` aside and fetches a new one, which
/// changes the first and loses the second; healing in place keeps both.
struct Kept {
    dir: (u64, u64),
    blob: git2::Oid,
}

impl Kept {
    fn mark(git_dir: &Path) -> Kept {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(git_dir).unwrap();
        let repo = git2::Repository::open_bare(git_dir).unwrap();
        let blob = repo
            .blob(b"kept across the run: written before it\n")
            .unwrap();
        Kept {
            dir: (meta.dev(), meta.ino()),
            blob,
        }
    }

    /// The same repository, healed in place: not set aside, not rebuilt.
    fn assert_same(&self, clone: &Path) {
        use std::os::unix::fs::MetadataExt;
        let git_dir = clone.join(".git");
        let meta = std::fs::metadata(&git_dir).unwrap();
        assert_eq!(
            (meta.dev(), meta.ino()),
            self.dir,
            "the clone's .git was replaced"
        );
        let repo = git2::Repository::open_bare(&git_dir).unwrap();
        assert!(
            repo.find_blob(self.blob).is_ok(),
            "an object the clone had before the run is gone: it was rebuilt"
        );
        assert!(broken_copies(clone).is_empty(), "nothing is set aside");
    }
}

/// A clone that pushed snapshot 0, a stale file (or directory) at `rel` (relative to the clone
/// directory) created as a killed run would leave it, and another host that moved the remote,
/// so that the next run fetches, replays and pushes: it must remove the file with one warning
/// naming it, publish, leave no lock behind, and heal the clone in place (not rebuild it).
fn stale_file_is_removed(rel: &str, dir: bool) {
    let scene = Scene::published();
    let (host, clone, git_dir, bare) = (&scene.host, &scene.clone, &scene.git_dir, &scene.bare);
    scene.other_host().push("clone", 1, &[]).expect_code(0);
    let kept = Kept::mark(git_dir);
    let stale = clone.join(rel);
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    if dir {
        std::fs::create_dir_all(&stale).unwrap();
        std::fs::write(stale.join("half-written"), "{").unwrap();
    } else {
        std::fs::write(&stale, "").unwrap();
    }
    assert!(stale.exists(), "premise: {rel} is there before the run");

    let run = host.push("clone", 2, &["-v"]);
    run.expect_code(0);
    assert!(
        run.stderr.contains("replaying queued snapshots"),
        "premise: the run fetched and replayed: {}",
        run.stderr
    );
    assert!(!stale.exists(), "{rel} is still there");
    // The run names it as it was given the clone (`--clone-dir clone`).
    let shown = Path::new("clone").join(rel).display().to_string();
    let naming: Vec<&str> = warnings(&run)
        .into_iter()
        .filter(|l| l.contains(&shown))
        .collect();
    assert_eq!(
        naming.len(),
        1,
        "one warning naming {shown}: {}",
        run.stderr
    );
    assert!(
        naming[0].contains("left by an interrupted run"),
        "{}",
        naming[0]
    );
    assert!(!run.stderr.contains("error"), "{}", run.stderr);
    assert_no_locks(clone);
    kept.assert_same(clone);
    assert_exactly_once(bare, &[dir_name(0), dir_name(1), dir_name(2)]);
    fsck(git_dir);
    fsck(bare);
}

macro_rules! stale_kind {
    ($($name:ident: $rel:expr, $dir:expr;)*) => {$(
        #[test]
        fn $name() {
            stale_file_is_removed($rel, $dir);
        }
    )*};
}

stale_kind! {
    stale_branch_lock: ".git/refs/heads/main.lock", false;
    stale_head_lock: ".git/HEAD.lock", false;
    stale_config_lock: ".git/config.lock", false;
    stale_packed_refs_lock: ".git/packed-refs.lock", false;
    stale_fetch_head_lock: ".git/FETCH_HEAD.lock", false;
    // The one that wedged hosts in production: every later fetch failed on it.
    stale_shallow_lock: ".git/shallow.lock", false;
    stale_index_lock: ".git/index.lock", false;
    stale_reflog_lock: ".git/logs/refs/heads/main.lock", false;
    stale_remote_tracking_lock: ".git/refs/remotes/origin/main.lock", false;
    stale_loose_object_lock: ".git/objects/ab/cdef0123456789abcdef0123456789abcdef01.lock", false;
    stale_libgit2_pack: ".git/objects/pack/pack_git2_a1B2c3", false;
    stale_git_tmp_pack: ".git/objects/pack/tmp_pack_Xy12Z9", false;
    stale_git_tmp_object: ".git/objects/tmp_obj_Q7w8E9", false;
    stale_own_tmp_file: ".git/.tmp-xyz", false;
    stale_own_tmp_snapshot_dir: "snapshots/.tmp-snapshot-xyz", true;
    stale_half_initialised_git: ".git.init-xyz", true;
}

// ---------------------------------------------------------------------------------------------
// 2. Local failures are named as such: exit 74, never "cannot reach".
// ---------------------------------------------------------------------------------------------

/// Asserts a local failure: exit 74, one error line naming `path`, saying it is not the
/// network, never "cannot reach".
fn assert_local_failure(run: &Run, path: &Path) {
    // libgit2 names files by their real path.
    let parent = std::fs::canonicalize(path.parent().unwrap()).unwrap();
    let path = parent.join(path.file_name().unwrap());
    run.expect_error(
        74,
        &[
            &path.display().to_string(),
            "a problem of the local clone, not of the network",
        ],
    );
    assert!(!run.stderr.contains("cannot reach"), "{}", run.stderr);
}

/// Makes `dir` immutable (`chattr +i`) for as long as it lives: not even root can create a
/// file in it. `None` where the filesystem has no such attribute.
struct Immutable(PathBuf);

impl Immutable {
    fn set(dir: &Path) -> Option<Immutable> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        // Root may ignore the attribute on some filesystems: check it bites.
        let probe = dir.join("probe.lock");
        if ok && std::fs::write(&probe, "").is_err() {
            return Some(Immutable(dir.to_owned()));
        }
        let _ = std::fs::remove_file(&probe);
        if ok {
            Immutable(dir.to_owned()).clear();
        }
        None
    }

    fn clear(&self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        self.clear();
    }
}

/// Snapshot 1's run, with `block` making the clone unwritable (it returns what the run's error
/// must name) and `unblock` undoing it: the run fails as a local failure and nothing reaches the
/// remote; once the cause is gone, the next run publishes and leaves nothing behind.
fn a_blocked_clone_fails_locally(
    block: impl FnOnce(&Path) -> PathBuf,
    unblock: impl FnOnce(&Path),
) {
    let scene = Scene::published();
    let (host, clone, git_dir, bare) = (&scene.host, &scene.clone, &scene.git_dir, &scene.bare);
    let before = scene.server.ref_target("data", "refs/heads/main");
    let blocked = block(git_dir);
    let run = host.push("clone", 1, &[]);
    unblock(git_dir);
    assert_local_failure(&run, &blocked);
    assert_eq!(
        scene.server.ref_target("data", "refs/heads/main"),
        before,
        "nothing reached the remote"
    );
    host.push("clone", 2, &[]).expect_code(0);
    assert_exactly_once(bare, &[dir_name(0), dir_name(2)]);
    assert_no_locks(clone);
    fsck(git_dir);
    fsck(bare);
}

/// Says on the terminal, past the test harness's capture, that a test did not run its case.
fn skipped(test: &str, why: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
}

#[test]
fn a_lock_that_cannot_be_taken_exits_74_naming_the_file_not_the_network() {
    // `chattr +i` on refs/heads: refs/heads/main.lock cannot be created, the branch cannot move.
    let probe = tempfile::tempdir().unwrap();
    if Immutable::set(probe.path()).is_none() {
        skipped(
            "crash::a_lock_that_cannot_be_taken_exits_74_naming_the_file_not_the_network",
            "`chattr +i` is unavailable or not enforced on this filesystem (needs root and \
             ext4/xfs/btrfs); the blocked object directory test covers a local failure here",
        );
        return;
    }
    let guard = std::cell::RefCell::new(None);
    a_blocked_clone_fails_locally(
        |git_dir| {
            let heads = git_dir.join("refs/heads");
            *guard.borrow_mut() =
                Some(Immutable::set(&heads).expect("chattr +i worked on a probe"));
            heads.join("main.lock")
        },
        |_| drop(guard.borrow_mut().take()),
    );
}

#[test]
fn an_object_directory_that_cannot_be_written_exits_74_naming_it_not_the_network() {
    // A file where a directory of loose objects is expected, for every object directory that
    // does not exist yet, so writing a new object fails.
    let planted = std::cell::RefCell::new(Vec::new());
    a_blocked_clone_fails_locally(
        |git_dir| {
            let objects = git_dir.join("objects");
            for i in 0..=255u8 {
                let d = objects.join(format!("{i:02x}"));
                if !d.exists() {
                    std::fs::write(&d, "").unwrap();
                    planted.borrow_mut().push(d);
                }
            }
            objects
        },
        |_| {
            for d in planted.borrow().iter() {
                std::fs::remove_file(d).unwrap();
            }
        },
    );
}

#[test]
fn a_local_failure_during_the_fetch_exits_74_and_keeps_the_queue() {
    let scene = Scene::published();
    let (host, clone, git_dir, bare) = (&scene.host, &scene.clone, &scene.git_dir, &scene.bare);
    // Another host moves the remote: this host's next push is refused and must fetch.
    scene.other_host().push("clone", 1, &[]).expect_code(0);
    // A directory where the fetch writes FETCH_HEAD: the fetch cannot record what it got.
    let fetch_head = git_dir.join("FETCH_HEAD");
    let _ = std::fs::remove_file(&fetch_head);
    std::fs::create_dir_all(fetch_head.join("in-the-way")).unwrap();

    let run = host.push("clone", 2, &["-v"]);
    assert!(
        run.stderr.contains("refused to update") || run.stderr.contains("push failed"),
        "{}",
        run.stderr
    );
    assert_local_failure(&run, &fetch_head);
    assert!(run.stderr.contains("queued"), "{}", run.stderr);
    assert_exactly_once(bare, &[dir_name(0), dir_name(1)]);
    assert!(
        history(git_dir).0.contains(&dir_name(2)),
        "the snapshot waits in the clone"
    );

    std::fs::remove_dir_all(&fetch_head).unwrap();
    host.push("clone", 3, &[]).expect_code(0);
    assert_exactly_once(bare, &(0..4).map(dir_name).collect::<Vec<_>>());
    assert_no_locks(clone);
    fsck(git_dir);
    fsck(bare);
}

// ---------------------------------------------------------------------------------------------
// 3. A damaged clone is set aside and rebuilt; what is queued and readable is published.
// ---------------------------------------------------------------------------------------------

/// The loose object file of `oid` in `git_dir`.
fn loose(git_dir: &Path, oid: &str) -> PathBuf {
    git_dir.join("objects").join(&oid[..2]).join(&oid[2..])
}

/// Host with snapshot 0 published and snapshot 1 queued (the server in 503 mode), damaged by
/// `damage`; the next run (snapshot 2) must say the clone is damaged, set it aside, rebuild it
/// and publish 0, 1 and 2 once each.
fn damaged_clone_is_rebuilt(damage: impl FnOnce(&Host, &Path)) {
    let scene = Scene::with_one_queued();
    let (host, clone, git_dir, bare) = (&scene.host, &scene.clone, &scene.git_dir, &scene.bare);
    assert_eq!(history(git_dir).0, [dir_name(0), dir_name(1)]);
    assert_eq!(history(bare).0, [dir_name(0)], "premise: 1 is queued");
    damage(host, git_dir);

    let run = host.push("clone", 2, &[]);
    run.expect_code(0);
    let broken = broken_copies(clone);
    assert_eq!(broken.len(), 1, "one broken copy kept: {broken:?}");
    let aside = Path::new("clone").join(broken[0].file_name().unwrap());
    let damaged: Vec<&str> = warnings(&run)
        .into_iter()
        .filter(|l| l.contains("is damaged") && l.contains(&aside.display().to_string()))
        .collect();
    assert_eq!(damaged.len(), 1, "one warning naming it: {}", run.stderr);
    assert_exactly_once(bare, &[dir_name(0), dir_name(1), dir_name(2)]);
    assert_eq!(history(bare).0.len(), 3);
    fsck(bare);
    fsck(git_dir);
    assert_no_locks(clone);
    // The next run finds a healthy clone: nothing more is set aside.
    let run = host.push("clone", 3, &[]);
    run.expect_code(0);
    assert!(warnings(&run).is_empty(), "{}", run.stderr);
    assert_eq!(
        broken_copies(clone),
        broken,
        "the broken copy is never deleted"
    );
    assert_exactly_once(bare, &(0..4).map(dir_name).collect::<Vec<_>>());
}

#[test]
fn a_garbage_remote_tracking_ref_gets_the_clone_rebuilt() {
    damaged_clone_is_rebuilt(|_, git_dir| {
        std::fs::write(git_dir.join("refs/remotes/origin/main"), "garbage\n").unwrap();
    });
}

#[test]
fn a_truncated_commit_the_remote_has_gets_the_clone_rebuilt() {
    damaged_clone_is_rebuilt(|_, git_dir| {
        // Snapshot 0's commit: the queued commit's parent, what the remote already has.
        let oid = git(git_dir, &["rev-parse", "main~1"]);
        let path = loose(git_dir, oid.trim());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    });
}

/// Damages snapshot 0's commit (a loose object the previous run found whole and recorded as
/// such in `.git/gitcord-snapshot.loose-checked`) with `damage`, then sets its modification
/// time back to what it was: the record must not vouch for the changed file.
fn damage_a_vouched_loose_object(git_dir: &Path, damage: impl FnOnce(&[u8]) -> Vec<u8>) {
    let oid = git(git_dir, &["rev-parse", "main~1"]);
    let oid = oid.trim();
    let record = std::fs::read_to_string(git_dir.join("gitcord-snapshot.loose-checked")).unwrap();
    assert!(
        record.lines().any(|l| l.starts_with(&format!("{oid} "))),
        "premise: the previous run vouched for {oid}: {record}"
    );
    let path = loose(git_dir, oid);
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, damage(&bytes)).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_modified(modified).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
}

#[test]
fn a_loose_object_truncated_after_it_was_vouched_for_gets_the_clone_rebuilt() {
    damaged_clone_is_rebuilt(|_, git_dir| {
        damage_a_vouched_loose_object(git_dir, |bytes| bytes[..bytes.len() / 2].to_vec());
    });
}

#[test]
fn a_loose_object_garbled_in_place_after_it_was_vouched_for_gets_the_clone_rebuilt() {
    damaged_clone_is_rebuilt(|_, git_dir| {
        // Same length, same modification time: only the change time tells the record the file
        // changed. (libgit2 would also refuse this one when the health check reads it; the
        // truncated case above is the one only the loose-object check catches: with a record
        // that vouched for it, libgit2 would hang on it, checked by hand.)
        damage_a_vouched_loose_object(git_dir, |bytes| {
            let mut bytes = bytes.to_vec();
            let mid = bytes.len() / 2;
            for b in &mut bytes[mid..] {
                *b = !*b;
            }
            bytes
        });
    });
}

#[test]
fn a_garbage_branch_ref_gets_the_clone_rebuilt() {
    damaged_clone_is_rebuilt(|_, git_dir| {
        std::fs::write(git_dir.join("refs/heads/main"), "garbage\n").unwrap();
    });
}

#[test]
fn missing_packs_get_the_clone_rebuilt() {
    let scene = Scene::published();
    let (host, clone, git_dir, bare) = (&scene.host, &scene.clone, &scene.git_dir, &scene.bare);
    // Enough loose objects that the next run packs everything, the published history with it.
    add_loose_objects(clone, 520);
    host.push("clone", 1, &[]).expect_code(0);
    let packs: Vec<PathBuf> = std::fs::read_dir(git_dir.join("objects/pack"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    assert!(
        packs
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "pack")),
        "premise: the history is packed: {packs:?}"
    );
    scene.server.set_mode(Mode::Unavailable503);
    host.push("clone", 2, &[]).expect_code(75);
    scene.server.set_mode(Mode::Normal);
    assert_eq!(history(bare).0, [dir_name(0), dir_name(1)], "2 is queued");
    for p in &packs {
        std::fs::remove_file(p).unwrap();
    }

    let run = host.push("clone", 3, &[]);
    run.expect_code(0);
    let broken = broken_copies(clone);
    assert_eq!(broken.len(), 1, "{broken:?}");
    let aside = Path::new("clone").join(broken[0].file_name().unwrap());
    assert!(
        warnings(&run)
            .iter()
            .any(|l| l.contains("is damaged") && l.contains(&aside.display().to_string())),
        "{}",
        run.stderr
    );
    assert_exactly_once(bare, &(0..4).map(dir_name).collect::<Vec<_>>());
    fsck(bare);
    fsck(git_dir);
    assert_no_locks(clone);
}

#[test]
fn a_queued_snapshot_that_cannot_be_read_is_left_out_and_the_rest_published() {
    let scene = Scene::published();
    let (host, clone, git_dir, bare) = (&scene.host, &scene.clone, &scene.git_dir, &scene.bare);
    scene.server.set_mode(Mode::Unavailable503);
    for n in 1..=3 {
        host.push("clone", n, &[]).expect_code(75);
    }
    scene.server.set_mode(Mode::Normal);
    assert_eq!(history(bare).0, [dir_name(0)], "premise: 1..3 are queued");
    // Snapshot 2's meta.json (a blob only it has) is truncated.
    let blob = git(
        git_dir,
        &[
            "rev-parse",
            &format!("main~1:snapshots/{}/meta.json", dir_name(2)),
        ],
    );
    let path = loose(git_dir, blob.trim());
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();

    let run = host.push("clone", 4, &[]);
    run.expect_code(0);
    assert_eq!(broken_copies(clone).len(), 1);
    assert!(
        warnings(&run).iter().any(
            |l| l.contains(&format!("snapshots/{}", dir_name(2))) && l.contains("not salvaged")
        ),
        "the unreadable snapshot is named: {}",
        run.stderr
    );
    let (names, linear) = history(bare);
    assert!(linear);
    assert_eq!(
        names,
        [dir_name(0), dir_name(1), dir_name(3), dir_name(4)],
        "every readable queued snapshot, in order"
    );
    fsck(bare);
    fsck(git_dir);
    assert_no_locks(clone);
}

// ---------------------------------------------------------------------------------------------
// 4. A deterministic kill at each phase of a run.
// ---------------------------------------------------------------------------------------------

/// After a kill: the next run exits 0, every snapshot in `committed` is on the remote exactly
/// once, the history is linear, no lock is left, both repositories pass fsck.
fn recovers(host: &Host, bare: &Path, n: u32, committed: &[String]) {
    let run = host.push("clone", n, &[]);
    run.expect_code(0);
    let mut want = committed.to_vec();
    want.push(dir_name(n));
    assert_healed(host, bare, &want);
}

/// Every snapshot in `want` is on the remote exactly once, the history is linear, no lock is
/// left in the host's clone, nothing was set aside (a kill is not damage), both repositories
/// pass fsck.
fn assert_healed(host: &Host, bare: &Path, want: &[String]) {
    let clone = host.clone_path("clone");
    assert_exactly_once(bare, want);
    assert_no_locks(&clone);
    assert!(broken_copies(&clone).is_empty(), "a kill is not damage");
    fsck(&clone.join(".git"));
    fsck(bare);
}

#[test]
fn killed_during_the_fetch_of_a_new_clone() {
    let scene = Scene::new();
    for n in 0..3 {
        scene.host.push("clone", n, &[]).expect_code(0);
    }
    // A new host: its first run fetches the remote's history (objects to transfer).
    let host = scene.other_host();
    kill_at(&host, "clone", 3, "fetch");
    assert!(
        history(&scene.bare).0.len() == 3,
        "nothing published by the killed run"
    );
    // What the kill left: a clone that has never seen the remote's branch, and the pack the
    // fetch was receiving, half written.
    let git_dir = host.clone_path("clone").join(".git");
    assert!(
        git2::Repository::open_bare(&git_dir)
            .unwrap()
            .find_reference("refs/remotes/origin/main")
            .is_err(),
        "premise: the fetch did not finish"
    );
    let partial = half_written_packs(&git_dir);
    assert!(
        !partial.is_empty(),
        "premise: the fetch left a partial pack in {}",
        git_dir.join("objects/pack").display()
    );
    let run = host.push("clone", 4, &[]);
    run.expect_code(0);
    for name in &partial {
        assert!(
            warnings(&run)
                .iter()
                .any(|w| w.contains(name.as_str()) && w.contains("left by an interrupted run")),
            "the partial pack {name} is named as removed: {}",
            run.stderr
        );
    }
    assert!(
        half_written_packs(&git_dir).is_empty(),
        "the partial pack is gone"
    );
    // Snapshot 3's run died before committing: 0..2 from the first host, and 4.
    let want: Vec<String> = [0, 1, 2, 4].into_iter().map(dir_name).collect();
    assert_healed(&host, &scene.bare, &want);
}

/// The files of `git_dir/objects/pack` that git or libgit2 write while receiving or building a
/// pack, before it is renamed into place (`tmp_*`, `pack_git2_*`).
fn half_written_packs(git_dir: &Path) -> Vec<String> {
    std::fs::read_dir(git_dir.join("objects/pack"))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.contains("_git2_") || n.starts_with("tmp_"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn killed_during_the_fetch_of_a_replay_keeps_the_queue() {
    let scene = Scene::published();
    let (host, git_dir, bare) = (&scene.host, &scene.git_dir, &scene.bare);
    scene.other_host().push("clone", 1, &[]).expect_code(0);
    // This run commits 2, is refused (the remote moved), fetches: killed there.
    kill_at(host, "clone", 2, "fetch");
    assert!(
        history(git_dir).0.contains(&dir_name(2)),
        "premise: 2 was committed before the kill"
    );
    recovers(host, bare, 3, &[dir_name(0), dir_name(1), dir_name(2)]);
}

#[test]
fn killed_between_commit_and_push() {
    let scene = Scene::published();
    let (host, git_dir, bare) = (&scene.host, &scene.git_dir, &scene.bare);
    kill_at(host, "clone", 1, "commit");
    assert_eq!(history(git_dir).0, [dir_name(0), dir_name(1)], "committed");
    assert_eq!(history(bare).0, [dir_name(0)], "not pushed");
    recovers(host, bare, 2, &[dir_name(0), dir_name(1)]);
}

#[test]
fn killed_during_the_push() {
    let scene = Scene::published();
    let (host, git_dir, bare) = (&scene.host, &scene.git_dir, &scene.bare);
    kill_at(host, "clone", 1, "push");
    assert_eq!(history(git_dir).0, [dir_name(0), dir_name(1)], "committed");
    recovers(host, bare, 2, &[dir_name(0), dir_name(1)]);
}

#[test]
fn killed_after_the_remote_took_the_push_before_the_clone_recorded_it() {
    let scene = Scene::published();
    let (host, git_dir, bare) = (&scene.host, &scene.git_dir, &scene.bare);
    kill_at(host, "clone", 1, "pushed");
    // The remote has snapshot 1 and its backup; the clone still thinks both are queued.
    assert_eq!(history(bare).0, [dir_name(0), dir_name(1)], "pushed");
    let clone = git2::Repository::open_bare(git_dir).unwrap();
    let remote_main = bare_tip(bare, "refs/heads/main");
    assert_ne!(
        clone.refname_to_id("refs/remotes/origin/main").unwrap(),
        remote_main,
        "premise: the clone did not record the push"
    );
    assert_eq!(clone.refname_to_id("refs/heads/main").unwrap(), remote_main);
    let backup_tip = bare_tip(bare, "refs/heads/gitcord-backup");
    assert_eq!(
        clone.refname_to_id("refs/heads/gitcord-backup").unwrap(),
        backup_tip
    );
    drop(clone);
    recovers(host, bare, 2, &[dir_name(0), dir_name(1)]);
    // One backup per snapshot on the remote, in order, none twice.
    let backups = git(bare, &["log", "--format=%s", "--reverse", "gitcord-backup"]);
    let named: Vec<&str> = backups
        .lines()
        .map(|l| l.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(named, [dir_name(0), dir_name(1), dir_name(2)]);
}

/// The commit `name` points to in the bare repository.
fn bare_tip(bare: &Path, name: &str) -> git2::Oid {
    git2::Repository::open_bare(bare)
        .unwrap()
        .refname_to_id(name)
        .unwrap()
}

#[test]
fn killed_while_packing() {
    let scene = Scene::published();
    let (host, clone, git_dir, bare) = (&scene.host, &scene.clone, &scene.git_dir, &scene.bare);
    add_loose_objects(clone, 520);
    kill_at(host, "clone", 1, "pack");
    assert_eq!(history(git_dir).0, [dir_name(0), dir_name(1)], "committed");
    let half = half_written_packs(git_dir);
    assert!(!half.is_empty(), "premise: a pack half written");
    recovers(host, bare, 2, &[dir_name(0), dir_name(1)]);
    let left: Vec<String> = half_written_packs(git_dir)
        .into_iter()
        .filter(|n| half.contains(n))
        .collect();
    assert!(left.is_empty(), "the half-written pack is gone: {left:?}");
}

#[test]
fn killed_while_updating_the_working_copy() {
    let scene = Scene::published();
    let (host, clone, bare) = (&scene.host, &scene.clone, &scene.bare);
    kill_at(host, "clone", 1, "view");
    let mut view: Vec<String> = std::fs::read_dir(clone.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    view.sort();
    assert_eq!(
        view,
        [dir_name(0), dir_name(1)],
        "premise: the view half updated"
    );
    recovers(host, bare, 2, &[dir_name(0), dir_name(1)]);
    let view: Vec<String> = std::fs::read_dir(clone.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(view, [dir_name(2)], "only the newest is shown");
}

// ---------------------------------------------------------------------------------------------
// 5. Soak: many hosts, one remote, runs killed at random moments.
// ---------------------------------------------------------------------------------------------

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// What one soak host did.
#[derive(Default)]
struct HostReport {
    kills: u64,
    /// Kills that landed after the run had committed its snapshot (found in the clone after).
    kills_after_commit: u64,
    runs: u64,
    /// Exit codes of runs that ended on their own, by code.
    exits: BTreeMap<i32, u64>,
    /// Every snapshot ever seen committed in this host's clone.
    committed: BTreeSet<String>,
    /// Drain runs it took to exit 0 (None: never did).
    drained_after: Option<u32>,
    /// Exit codes of the drain runs, in order.
    drain_exits: Vec<i32>,
    /// The snapshot number its next run takes.
    next: u64,
}

/// Drains one soak host after the kills: runs until one exits 0 (hosts drain one after
/// another, as cron's spread start times would have them).
fn drain(host: &Host, index: u64, hosts: u64, report: &mut HostReport) {
    let clone_git = host.clone_path("clone").join(".git");
    for attempt in 1..=5 {
        let n = u32::try_from(report.next).unwrap();
        report.next += hosts;
        let run = host.push("clone", n, &[]);
        report.committed.extend(history(&clone_git).0);
        report.drain_exits.push(run.code);
        if run.code == 0 {
            report.drained_after = Some(attempt);
            return;
        }
        eprintln!(
            "soak host {index}: drain run {attempt} exited {}: {}",
            run.code, run.stderr
        );
    }
}

/// One soak host: runs `push` of its own snapshots (`n = index + hosts * k`), killing each
/// after a random delay spread over `span` (microseconds; shrunk whenever a run ends before
/// its kill), until `kills` kills have landed.
fn soak_host(
    host: &Host,
    index: u64,
    hosts: u64,
    kills: u64,
    seed: u64,
    mut span: u64,
) -> HostReport {
    let mut report = HostReport::default();
    let mut seed = seed;
    let clone_git = host.clone_path("clone").join(".git");
    let mut k = 0u64;
    let mut next = || {
        k += 1;
        u32::try_from(index + hosts * k).unwrap()
    };
    let record = |report: &mut HostReport| {
        for name in history(&clone_git).0 {
            report.committed.insert(name);
        }
    };
    while report.kills < kills {
        assert!(report.runs < kills * 4 + 40, "kills do not land");
        let n = next();
        let delay = Duration::from_micros(xorshift(&mut seed) % span);
        let mut child = ChildGuard::spawn(
            host.command("clone", n, &[])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        std::thread::sleep(delay);
        let _ = child.child().kill();
        let status = child.child().wait().unwrap();
        report.runs += 1;
        record(&mut report);
        if status.signal() == Some(libc::SIGKILL) {
            report.kills += 1;
            if report.committed.contains(&dir_name(n)) {
                report.kills_after_commit += 1;
            }
        } else {
            *report.exits.entry(status.code().unwrap_or(-1)).or_default() += 1;
            // The run ended before its kill: runs are quicker now than when the span was
            // measured (a load that came and went). Shrink it, so kills keep landing.
            span = (span * 9 / 10).max(2_000);
        }
    }
    report.next = index + hosts * (k + 1);
    report
}

/// At least 4 hosts with their own clones push to one remote over TLS while their runs are
/// killed with SIGKILL at random moments; then every host drains. Every snapshot committed
/// anywhere is on the remote exactly once, the history is linear, everything passes fsck, no
/// host is left failing or queued, no lock is left, no clone was set aside (a kill is not
/// damage), every drain run ended 0 or 75, and some kills landed after a commit (so the queue
/// was really exercised). `SOAK_HOSTS`, `SOAK_KILLS` and `SOAK_SEED` override the defaults;
/// scripts/soak runs it at any size (at least one kill).
#[test]
fn soak_many_hosts_killed_at_random_moments_lose_nothing() {
    let hosts_n = env_number("SOAK_HOSTS", 4).max(1);
    let kills_n = env_number("SOAK_KILLS", 150);
    let seed = env_number("SOAK_SEED", 0);
    let seed = if seed == 0 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1
    } else {
        seed
    };
    assert!(
        kills_n > 0,
        "SOAK_KILLS=0: a soak without kills tests nothing"
    );
    let started = Instant::now();
    let scene = Scene::new();
    let bare = &scene.bare;
    let others: Vec<Host> = (1..hosts_n).map(|_| scene.other_host()).collect();
    let hosts: Vec<&Host> = std::iter::once(&scene.host).chain(&others).collect();
    // Each host's first run, not killed: clones exist, the remote has history, and how long a
    // run takes with every host at work sets the span the kill delays are spread over.
    let spans: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                s.spawn(move || {
                    let t = Instant::now();
                    // All hosts start at once: one may lose every race for the empty remote
                    // (exit 75) and push its snapshot on the next try.
                    for _ in 0..5 {
                        let run = h.push("clone", u32::try_from(i).unwrap(), &[]);
                        if run.code == 75 {
                            continue;
                        }
                        run.expect_code(0);
                        return t.elapsed().as_micros() as u64;
                    }
                    panic!("host {i}'s first run never pushed");
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let span = (spans.iter().sum::<u64>() / hosts_n).max(20_000) * 3 / 2;
    eprintln!(
        "soak: SOAK_SEED={seed} SOAK_HOSTS={hosts_n} SOAK_KILLS={kills_n} (kill delays spread \
         over {span} us)"
    );
    let reports: Vec<HostReport> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let i = i as u64;
                let kills = kills_n / hosts_n + u64::from(i < kills_n % hosts_n);
                let seed = seed.wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
                s.spawn(move || soak_host(h, i, hosts_n, kills, seed, span))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let mut reports = reports;
    for (i, (h, r)) in hosts.iter().zip(reports.iter_mut()).enumerate() {
        drain(h, i as u64, hosts_n, r);
    }
    let kills: u64 = reports.iter().map(|r| r.kills).sum();
    let kills_after_commit: u64 = reports.iter().map(|r| r.kills_after_commit).sum();
    let runs: u64 = reports.iter().map(|r| r.runs).sum();
    let mut exits: BTreeMap<i32, u64> = BTreeMap::new();
    for r in &reports {
        for (code, count) in &r.exits {
            *exits.entry(*code).or_default() += count;
        }
    }
    let mut committed: BTreeSet<String> = (0..hosts_n)
        .map(|i| dir_name(u32::try_from(i).unwrap()))
        .collect();
    for r in &reports {
        committed.extend(r.committed.iter().cloned());
    }
    let stuck = reports.iter().filter(|r| r.drained_after.is_none()).count();
    let (on_remote, _) = history(bare);
    eprintln!(
        "soak figures: kills={kills} kills_after_commit={kills_after_commit} hosts={hosts_n} \
         runs={runs} exits={exits:?} snapshots_committed={} snapshots_on_remote={} \
         stuck_hosts={stuck} time={:.1}s",
        committed.len(),
        on_remote.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(stuck, 0, "hosts left failing");
    assert!(kills > 0 && kills >= kills_n, "only {kills} kills landed");
    assert!(
        kills_after_commit > 0,
        "no kill landed after a commit: the queue was never left to a later run"
    );
    // A drain run either publishes or, racing another host, asks to be retried; the last one
    // of every host published.
    for (i, r) in reports.iter().enumerate() {
        assert!(
            r.drain_exits.iter().all(|code| [0, 75].contains(code)),
            "host {i}'s drain runs exited {:?}",
            r.drain_exits
        );
        assert_eq!(r.drain_exits.last(), Some(&0), "host {i} never drained");
    }
    // Runs that ended on their own succeeded, or (another host pushing at the same moments)
    // asked to be retried; never a local failure.
    for code in exits.keys() {
        assert!([0, 75].contains(code), "a run exited {code}: {exits:?}");
    }
    assert_exactly_once(bare, &committed);
    fsck(bare);
    for h in &hosts {
        let clone = h.clone_path("clone");
        fsck(&clone.join(".git"));
        assert_no_locks(&clone);
        let aside = broken_copies(&clone);
        assert!(aside.is_empty(), "a clone was set aside: {aside:?}");
        let status = h.run(&[
            "status",
            "--config",
            "config.yaml",
            "--clone-dir",
            "clone",
            "--json",
        ]);
        status.expect_code(0);
        let status: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
        assert_eq!(status["queued"], 0, "a host's queue is not empty: {status}");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. restore's leftovers.
// ---------------------------------------------------------------------------------------------

#[test]
fn restore_removes_what_a_killed_restore_left_beside_its_destination() {
    let host = Host::for_case("basic");
    host.push_case_offline();
    let out = host.env.path("out");
    std::fs::create_dir_all(&out).unwrap();
    // What a restore killed mid-write leaves: its temporary database and SQLite's journal.
    let leftovers = [
        out.join(".state.db.restore-Ab12Cd"),
        out.join(".state.db.restore-Ab12Cd-journal"),
    ];
    for l in &leftovers {
        std::fs::write(l, "half a database").unwrap();
        // Written by a restore killed a while ago (a fresh one may be a running restore's).
        let then = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
        std::fs::File::options()
            .write(true)
            .open(l)
            .unwrap()
            .set_modified(then)
            .unwrap();
    }
    // Not ours: another name's leftovers and a file that merely looks alike stay.
    let others = [
        out.join(".other.db.restore-Xy"),
        out.join("state.db.restore-x"),
        // Ours, but new: a restore to the same path may be writing it right now.
        out.join(".state.db.restore-Running"),
    ];
    for o in &others {
        std::fs::write(o, "keep").unwrap();
    }
    let to = out.join("state.db").display().to_string();
    let run = host.run(&[
        "restore",
        "--config",
        "config.yaml",
        "--clone-dir",
        "clone",
        "--snapshot",
        "latest",
        "--to",
        &to,
    ]);
    run.expect_code(0);
    for l in &leftovers {
        assert!(!l.exists(), "{} is still there", l.display());
        assert_eq!(
            warnings(&run)
                .iter()
                .filter(|w| w.contains(&format!("removing {} left", l.display())))
                .count(),
            1,
            "{}",
            run.stderr
        );
    }
    for o in &others {
        assert!(o.exists(), "{} was removed", o.display());
    }
    let db = rusqlite::Connection::open(out.join("state.db")).unwrap();
    let tables: i64 = db
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(tables > 0, "a restored database");
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".other.db.restore-Xy",
            ".state.db.restore-Running",
            "state.db",
            "state.db.restore-x"
        ]
    );
}

/// `push --no-push` of the host's conformance case into `clone`.
trait Offline {
    fn push_case_offline(&self);
}

impl Offline for Host {
    fn push_case_offline(&self) {
        let mut args = self.args("clone", 0, &["--no-push"]);
        let i = args.iter().position(|a| a == "--run-id").unwrap();
        args[i + 1] = self.case.run_id.clone();
        let i = args.iter().position(|a| a == "--at").unwrap();
        args[i + 1] = self.case.at.clone();
        self.run(&args).expect_code(0);
    }
}
