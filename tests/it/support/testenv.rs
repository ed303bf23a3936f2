//! A temporary environment for running the real binary: a scratch directory, copies of the
//! conformance fixtures, and a runner that captures exit code, stdout and stderr.
//!
//! No test config points at a real host: every config a test gets from here has
//! `github.api_base`, `discord.api_base` and `snapshots.remote_url` on a loopback port that is
//! held closed for the life of the test process ([`closed_port`]). A test that wants a server
//! sets the key to that server with [`set_key`].

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::git;
use super::net::HeldPort;

/// A loopback port held closed for the whole test process: connections are refused.
pub fn closed_port() -> &'static HeldPort {
    static PORT: OnceLock<HeldPort> = OnceLock::new();
    PORT.get_or_init(HeldPort::closed)
}

/// `snapshots.remote_url` of a config that must never reach a remote.
pub fn closed_remote_url() -> String {
    format!("https://{}/git/data.git", closed_port().addr())
}

/// `discord.api_base` of a config that must never reach Discord.
pub fn closed_discord_url() -> String {
    format!("http://{}/api/v10", closed_port().addr())
}

/// A fixture config with every URL on the closed loopback port (see the module notes).
pub fn loopback_config(text: &str) -> String {
    let closed = closed_port().addr();
    let text = set_key(
        text,
        "github",
        "api_base",
        &format!("http://{closed}/github-api"),
    );
    let text = set_key(&text, "discord", "api_base", &closed_discord_url());
    set_key(&text, "snapshots", "remote_url", &closed_remote_url())
}

/// Sets `<section>.<key>` (two-space indented, as in the fixtures) to the string `value`,
/// replacing the key if the section has it, else adding it as the section's first key.
pub fn set_key(text: &str, section: &str, key: &str, value: &str) -> String {
    let line = format!("  {key}: \"{value}\"");
    let mut out: Vec<String> = Vec::new();
    let mut in_section = false;
    let mut done = false;
    let header = format!("{section}:");
    for l in text.lines() {
        if !l.starts_with(' ') && !l.is_empty() {
            in_section = l.trim_end() == header;
            out.push(l.to_owned());
            if in_section && !done {
                out.push(line.clone());
                done = true;
            }
            continue;
        }
        if in_section && l.starts_with(&format!("  {key}:")) {
            continue; // replaced by the line added under the header
        }
        out.push(l.to_owned());
    }
    assert!(done, "no {section}: section in the config");
    out.join("\n") + "\n"
}

/// Removes `<section>.<key>` (two-space indented) from a config.
pub fn remove_key(text: &str, section: &str, key: &str) -> String {
    let mut in_section = false;
    let header = format!("{section}:");
    let prefix = format!("  {key}:");
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| {
            if !l.starts_with(' ') && !l.is_empty() {
                in_section = l.trim_end() == header;
            }
            !(in_section && l.starts_with(&prefix))
        })
        .collect();
    kept.join("\n") + "\n"
}

/// Where the conformance cases live in the repository.
pub fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/conformance")
}

/// One conformance case: its inputs and what the reference produced.
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    /// Holds the case's config with every URL on the closed loopback port.
    safe: tempfile::TempDir,
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
        let safe = tempfile::tempdir().unwrap();
        let config = std::fs::read_to_string(dir.join("config.yaml")).unwrap();
        std::fs::write(safe.path().join("config.yaml"), loopback_config(&config)).unwrap();
        Case {
            safe,
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

    /// The case's config, with every URL on the closed loopback port ([`loopback_config`]).
    pub fn config(&self) -> PathBuf {
        self.safe.path().join("config.yaml")
    }

    /// The case's config text, as [`config`](Self::config).
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(self.config()).unwrap()
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

    /// Copies a conformance case's inputs here, so a test can change them (the config as
    /// [`Case::config`], on the closed loopback port).
    pub fn copy_case(&self, case: &Case, rel: &str) -> PathBuf {
        let dest = self.path(rel);
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::copy(case.config(), dest.join("config.yaml")).unwrap();
        for f in ["state.db", "roles.json"] {
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

    /// The command, not yet started, for tests that need to control the process. The one
    /// place that builds a command for the binary under test: no RUST_LOG, and no global or
    /// system git configuration ([`git::isolate`]).
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitcord-snapshot"));
        git::isolate(&mut cmd);
        cmd.args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG");
        cmd
    }
}

/// A started process that is killed and reaped when dropped, also when a test panics.
pub struct ChildGuard(Option<std::process::Child>);

impl ChildGuard {
    /// Starts `cmd` under the guard.
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        ChildGuard(Some(cmd.spawn().unwrap()))
    }

    pub fn child(&mut self) -> &mut std::process::Child {
        self.0.as_mut().unwrap()
    }

    /// Waits for the process and collects its piped output.
    pub fn wait_with_output(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
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
