//! The one way the tests run the `git` CLI: never with the caller's global or system config,
//! nor with GIT_* variables that would point it elsewhere, nor with a prompt.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// Variables that would make git (or the binary under test, through libgit2) read or write
/// somewhere other than where a test points it.
const SCRUBBED: [&str; 11] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_CEILING_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
];

/// Isolates `cmd` from the user's and the system's git configuration. Used for `git` and for
/// every run of the binary under test.
pub fn isolate(cmd: &mut Command) -> &mut Command {
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    cmd.env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
}

/// `git` from PATH, isolated, stdin closed.
pub fn command() -> Command {
    command_with(OsStr::new("git"))
}

/// A given `git` executable, isolated, stdin closed.
pub fn command_with(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    isolate(&mut cmd).stdin(Stdio::null());
    cmd
}

/// `git --git-dir <git_dir>`, isolated from the user's config, to add arguments to.
pub fn git_command(git_dir: &Path) -> Command {
    let mut cmd = command();
    cmd.arg("--git-dir").arg(git_dir);
    cmd
}

/// `git --git-dir <git_dir> <args>`, not checked.
pub fn output(git_dir: &Path, args: &[&str]) -> Output {
    command()
        .arg("--git-dir")
        .arg(git_dir)
        .args(args)
        .output()
        .expect("run git")
}

/// `git --git-dir <git_dir> <args>`; panics unless it succeeds; returns stdout.
pub fn git(git_dir: &Path, args: &[&str]) -> String {
    let out = output(git_dir, args);
    assert!(
        out.status.success(),
        "git --git-dir {} {args:?}: {}",
        git_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `git fsck --strict --no-dangling` must pass.
pub fn fsck(git_dir: &Path) {
    let out = output(git_dir, &["fsck", "--strict", "--no-dangling"]);
    assert!(
        out.status.success(),
        "fsck {}: {}",
        git_dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Snapshot directory names on `main` (from the commit subjects), oldest commit first, and
/// whether the history is linear. An unborn `main` gives an empty history.
pub fn history(git_dir: &Path) -> (Vec<String>, bool) {
    if !output(git_dir, &["rev-parse", "--verify", "-q", "main"])
        .status
        .success()
    {
        return (Vec::new(), true);
    }
    let log = git(git_dir, &["log", "--reverse", "--format=%P|%s", "main"]);
    let mut names = Vec::new();
    let mut linear = true;
    for line in log.lines() {
        let (parents, subject) = line.split_once('|').unwrap();
        linear &= parents.split_whitespace().count() <= 1;
        // "Gitcord snapshot: <stamp> (run: <8>)"
        let stamp = subject
            .split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        let run = subject
            .rsplit("run: ")
            .next()
            .unwrap()
            .trim_end_matches(')');
        names.push(format!("{stamp}-{run}"));
    }
    (names, linear)
}

/// Every file path at the tip of `main`.
pub fn tree_files(git_dir: &Path) -> Vec<String> {
    git(git_dir, &["ls-tree", "-r", "--name-only", "main"])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Checks `latest.json` at the tip of `main` as a reader would: every file it lists has the
/// size and SHA-256 it claims, its header matches the snapshot's `meta.json`, and it counts
/// the tip's snapshot directories. Returns the `snapshot_dir` it names.
pub fn check_latest(git_dir: &Path) -> String {
    use sha2::Digest as _;
    let latest: serde_json::Value =
        serde_json::from_str(&git(git_dir, &["show", "main:latest.json"])).unwrap();
    let dir = latest["snapshot_dir"].as_str().unwrap().to_owned();
    let files = latest["files"].as_object().unwrap();
    assert_eq!(files.len(), 7, "{latest}");
    for (name, digest) in files {
        let bytes = git(git_dir, &["show", &format!("main:{dir}/{name}")]).into_bytes();
        assert_eq!(digest["bytes"], bytes.len(), "{name}");
        let sha: String = sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest["sha256"], sha, "{name}");
    }
    let meta: serde_json::Value =
        serde_json::from_str(&git(git_dir, &["show", &format!("main:{dir}/meta.json")])).unwrap();
    for key in ["generated_at", "org", "run_id", "schema_version"] {
        assert_eq!(latest[key], meta[key], "{key}");
    }
    assert_eq!(latest["snapshots"], snapshot_dirs(git_dir).len());
    dir
}

/// The snapshot directories at the tip of `main`.
pub fn snapshot_dirs(git_dir: &Path) -> Vec<String> {
    git(git_dir, &["ls-tree", "--name-only", "main", "snapshots/"])
        .lines()
        .map(|l| l.trim_start_matches("snapshots/").to_owned())
        .collect()
}

/// Puts `bytes` at `path` in `index` (a regular file), writing the blob into `repo`: how the
/// tests build trees a foreign tool would commit.
pub fn put(repo: &git2::Repository, index: &mut git2::Index, path: &str, bytes: &[u8]) {
    let entry = git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: bytes.len() as u32,
        id: repo.blob(bytes).unwrap(),
        flags: path.len().min(0xfff) as u16,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    };
    index.add(&entry).unwrap();
}

/// `git clone -q` of the bare repository `bare` into `dest` (a work tree), as a reader would.
pub fn checkout(bare: &Path, dest: &Path) {
    git(
        bare,
        &[
            "clone",
            "-q",
            bare.to_str().unwrap(),
            dest.to_str().unwrap(),
        ],
    );
}
