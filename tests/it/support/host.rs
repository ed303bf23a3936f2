//! A Gitcord host (the `basic` case's state and roles in a scratch directory, with a config
//! pointing at one remote) and the numbered snapshots the tests push.
//!
//! Snapshot `n` has run id `{n:08x}-0000-4000-8000-000000000000` and is taken `n` hours after
//! the `basic` case's time; its directory is [`dir_name`]`(n)`.

use std::path::PathBuf;
use std::process::Command;

use super::git_server::GitServer;
use super::testenv::{set_key, Case, Run, TestEnv};

/// The variable the hosts' configs take the push token from.
pub const TOKEN_VAR: &str = "GITCORD_SNAPSHOT_TEST_TOKEN";

/// The `basic` case's time, snapshot 0.
const BASE: &str = "2024-01-31T12:00:00+00:00";

pub fn run_id(n: u32) -> String {
    format!("{n:08x}-0000-4000-8000-000000000000")
}

/// Snapshot `n`'s time, RFC 3339.
pub fn at(n: u32) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(BASE).unwrap() + chrono::Duration::hours(n.into());
    t.to_rfc3339()
}

/// `at(n)` as git prints an author date in UTC.
pub fn git_time(n: u32) -> String {
    chrono::DateTime::parse_from_rfc3339(&at(n))
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Snapshot `n`'s directory name.
pub fn dir_name(n: u32) -> String {
    let t = chrono::DateTime::parse_from_rfc3339(&at(n)).unwrap();
    format!("{}-{:08x}", t.format("%Y-%m-%dT%H-%M-%S"), n)
}

/// A Gitcord host: the `basic` case's state and roles, a config pointing at one remote
/// (`snapshots.remote_url`), `clone_dir: "clone"` and the token taken from [`TOKEN_VAR`].
pub struct Host {
    pub env: TestEnv,
    pub case: Case,
    pub token: String,
    /// Trusted through `SSL_CERT_FILE`.
    pub ca: Option<PathBuf>,
    /// A local bare remote's directory, kept alive with the host ([`Host::local`]).
    pub remote: Option<TestEnv>,
}

impl Host {
    /// A host with conformance case `name`'s inputs, offline: its config's remote is the
    /// closed loopback port of [`Case::config`].
    pub fn for_case(name: &str) -> Host {
        let case = Case::load(name);
        let env = TestEnv::new();
        env.copy_case(&case, ".");
        Host {
            env,
            case,
            token: "unused".to_owned(),
            ca: None,
            remote: None,
        }
    }

    /// A host pushing to `remote` with `token`, trusting `ca`.
    pub fn new(remote: &str, token: &str, ca: Option<PathBuf>) -> Host {
        let Host { env, case, .. } = Host::for_case("basic");
        let config = std::fs::read_to_string(env.path("config.yaml")).unwrap();
        let config = set_key(&config, "snapshots", "remote_url", remote);
        let config = set_key(&config, "snapshots", "token", &format!("${{{TOKEN_VAR}}}"));
        let config = set_key(&config, "snapshots", "clone_dir", "clone");
        env.write("config.yaml", config);
        Host {
            env,
            case,
            token: token.to_owned(),
            ca,
            remote: None,
        }
    }

    /// A host pushing to repository `repo` on `server`, with its token and CA.
    pub fn for_server(server: &GitServer, repo: &str) -> Host {
        Host::new(&server.url(repo), server.token(), Some(server.ca_file()))
    }

    /// A host pushing to a new local bare repository, [`Host::remote_git_dir`].
    pub fn local() -> Host {
        let remote = TestEnv::new();
        git2::Repository::init_bare(remote.path("data.git")).unwrap();
        let mut host = Host::new(
            &remote.path("data.git").display().to_string(),
            "unused",
            None,
        );
        host.remote = Some(remote);
        host
    }

    /// The local bare remote of a [`Host::local`].
    pub fn remote_git_dir(&self) -> PathBuf {
        self.remote.as_ref().unwrap().path("data.git")
    }

    /// Adds lines (each indented under `snapshots:`, ending in a newline) to the config.
    pub fn add_config(&self, lines: &str) {
        let config = std::fs::read_to_string(self.env.path("config.yaml")).unwrap() + lines;
        self.env.write("config.yaml", config);
    }

    /// `push` of the conformance case itself (its run id and time) into clone `clone`.
    pub fn push_case(&self, clone: &str) -> Run {
        let mut args = self.args(clone, 0, &[]);
        let i = args.iter().position(|a| a == "--run-id").unwrap();
        args[i + 1] = self.case.run_id.clone();
        self.run(&args)
    }

    /// `push` of snapshot `n` into clone `clone`.
    pub fn push(&self, clone: &str, n: u32, extra: &[&str]) -> Run {
        self.run(&self.args(clone, n, extra))
    }

    /// Any command, with the host's environment.
    pub fn run<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Run {
        let vars = self.env_vars();
        let vars: Vec<(&str, Option<&str>)> =
            vars.iter().map(|(k, v)| (*k, Some(v.as_str()))).collect();
        self.env.run_with(args, &vars)
    }

    /// `push` of snapshot `n` with `extra` flags, not started, with the host's environment.
    pub fn command(&self, clone: &str, n: u32, extra: &[&str]) -> Command {
        let mut cmd = self.env.command(self.args(clone, n, extra));
        for (k, v) in self.env_vars() {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn args(&self, clone: &str, n: u32, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "push".into(),
            "--config".into(),
            "config.yaml".into(),
            "--roles-file".into(),
            "roles.json".into(),
            "--clone-dir".into(),
            clone.into(),
            "--run-id".into(),
            run_id(n),
            "--at".into(),
            at(n),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![(TOKEN_VAR, self.token.clone())];
        if let Some(ca) = &self.ca {
            vars.push(("SSL_CERT_FILE", ca.display().to_string()));
        }
        vars
    }

    pub fn clone_path(&self, clone: &str) -> PathBuf {
        self.env.path(clone)
    }

    /// The audit log, one JSON value per event.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.env.path("audit_events.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}
