//! A temporary environment for running the real binary: a scratch directory, copies of the
//! conformance fixtures, and a runner that captures exit code, stdout and stderr.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where the conformance cases live in the repository.
pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance")
}

/// One conformance case: its inputs and what the reference produced.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub run_id: String,
    pub at: String,
    pub snapshot_dir: String,
    pub commit_message: String,
}

impl Case {
    pub fn load(name: &str) -> Case {
        let dir = conformance_dir().join(name);
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("case.json")).unwrap()).unwrap();
        let s = |k: &str| meta[k].as_str().unwrap().to_owned();
        Case {
            name: name.to_owned(),
            run_id: s("run_id"),
            at: s("at"),
            snapshot_dir: s("snapshot_dir"),
            commit_message: s("commit_message"),
            dir,
        }
    }

    /// Every case folder, sorted by name.
    pub fn all() -> Vec<Case> {
        let mut names: Vec<String> = std::fs::read_dir(conformance_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("case.json").is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.iter().map(|n| Case::load(n)).collect()
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("config.yaml")
    }
    pub fn state_db(&self) -> PathBuf {
        self.dir.join("state.db")
    }
    pub fn roles(&self) -> PathBuf {
        self.dir.join("roles.json")
    }
    pub fn expected_dir(&self) -> PathBuf {
        self.dir.join("expected").join(&self.snapshot_dir)
    }

    /// `export` and the flags that reproduce this case, minus `--out`.
    pub fn export_args(&self) -> Vec<String> {
        vec![
            "export".into(),
            "--config".into(),
            self.config().display().to_string(),
            "--state-db".into(),
            self.state_db().display().to_string(),
            "--roles-file".into(),
            self.roles().display().to_string(),
            "--run-id".into(),
            self.run_id.clone(),
            "--at".into(),
            self.at.clone(),
        ]
    }
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the exit code, showing the output when it is not the expected one.
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts one error line on stderr that contains every fragment.
    pub fn expect_error(&self, code: i32, fragments: &[&str]) -> &Run {
        self.expect_code(code);
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.contains("error"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "want exactly one error line, got: {}",
            self.stderr
        );
        for f in fragments {
            assert!(lines[0].contains(f), "error line lacks {f:?}: {}", lines[0]);
        }
        assert!(!self.stderr.contains("panicked"), "{}", self.stderr);
        self
    }
}

/// A scratch directory plus a way to run the binary in it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file under the scratch directory and returns its path.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    /// Copies a conformance case's inputs here, so a test can change them.
    pub fn copy_case(&self, case: &Case, rel: &str) -> PathBuf {
        let dest = self.path(rel);
        std::fs::create_dir_all(&dest).unwrap();
        for f in ["config.yaml", "state.db", "roles.json"] {
            std::fs::copy(case.dir.join(f), dest.join(f)).unwrap();
        }
        dest
    }

    /// Runs the binary with `args` in the scratch directory.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.run_with(args, &[])
    }

    /// Runs the binary with extra environment variables (`None` removes one).
    pub fn run_with<I, S>(&self, args: I, env: &[(&str, Option<&str>)]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = self.command(args);
        for (k, v) in env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let out = cmd.output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The command, not yet started, for tests that need to control the process.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitcord-snapshot"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG");
        cmd
    }
}

/// Every file below `dir`, as (relative path, bytes), sorted.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}
