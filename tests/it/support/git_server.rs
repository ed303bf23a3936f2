//! A real smart-HTTP git server for integration tests.
//!
//! nginx (TLS + basic auth) -> fcgiwrap -> `git http-backend`, bound to
//! 127.0.0.1 on a free port, everything (certificates, htpasswd, config, logs,
//! sockets, repositories) inside a private `TempDir`. Every `GitServer` is fully
//! independent, so tests may run in parallel threads.
//!
//! Needs `nginx`, `fcgiwrap`, `openssl` and `git` (with `git-http-backend`):
//! run `scripts/install-test-deps.sh` first.
//!
//! Notes:
//! * nginx runs with `master_process off; daemon off;`: a single process, the
//!   direct child of the test, with no worker that would drop privileges (as
//!   root, workers would otherwise switch to `nobody` and could not read the
//!   0700 temp dir). Killing that child stops the server completely.
//! * fcgiwrap runs with `-c 1` (no preforked workers) and a cleared
//!   environment; each request forks one `git-http-backend`.
//! * A tiny `sh` watchdog per server kills nginx and fcgiwrap if the test
//!   process dies without running `Drop` (e.g. killed by a timeout). fcgiwrap
//!   runs in a process group of its own, killed whole, so no `git-http-backend`
//!   it forked outlives the server.
//! * The port is never freed while the server lives: a [`HeldPort`] (bound with
//!   `SO_REUSEPORT`, never listening) owns it, and nginx listens on it with
//!   `reuseport`. [`GitServer::stop`] therefore leaves a port that refuses
//!   connections and that no parallel test can take, and
//!   [`GitServer::restart`] listens on it again without any race.

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::git;
use super::net::HeldPort;

/// The basic-auth user name the server accepts (GitHub-style token auth).
pub const USERNAME: &str = "x-access-token";

const INSTALL_HINT: &str = "run `scripts/install-test-deps.sh` (as root or with sudo) to install \
     nginx, fcgiwrap, openssl and git before running the integration tests";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Failure injection modes, switched at run time without restarting nginx
/// (nginx tests for a flag file on every request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Serve git normally (basic auth required).
    Normal,
    /// Every request gets `503 Service Unavailable` (before auth).
    Unavailable503,
    /// Every request gets `500 Internal Server Error` (before auth).
    InternalError500,
    /// Every request gets `401` with a `WWW-Authenticate` challenge, even with
    /// the right token (as if the token had been revoked).
    Unauthorized401,
    /// Every request gets `403 Forbidden` (before auth).
    Forbidden403,
    /// Fetch/clone work, but push (`git-receive-pack`, both the ref
    /// advertisement and the pack upload) gets `403 Forbidden`.
    PushForbidden403,
}

impl Mode {
    const ALL_FLAGS: [&'static str; 5] = [
        "unavailable503",
        "error500",
        "unauthorized401",
        "forbidden403",
        "pushforbidden403",
    ];

    fn flag(self) -> Option<&'static str> {
        match self {
            Mode::Normal => None,
            Mode::Unavailable503 => Some("unavailable503"),
            Mode::InternalError500 => Some("error500"),
            Mode::Unauthorized401 => Some("unauthorized401"),
            Mode::Forbidden403 => Some("forbidden403"),
            Mode::PushForbidden403 => Some("pushforbidden403"),
        }
    }
}

struct Tools {
    nginx: PathBuf,
    fcgiwrap: PathBuf,
    openssl: PathBuf,
    git: PathBuf,
    http_backend: PathBuf,
}

struct Procs {
    nginx: Child,
    fcgiwrap: Child,
    watchdog: Option<Child>,
}

/// A running (or stopped) test git server. Dropping it stops every process
/// it started and deletes its temp dir.
pub struct GitServer {
    procs: Option<Procs>,
    port: u16,
    /// Owns the port for the server's whole life (see the module notes).
    held: HeldPort,
    token: String,
    tools: Tools,
    // Last field: dropped after the processes are gone.
    dir: TempDir,
}

impl GitServer {
    /// Creates the temp dir, certificates and htpasswd, starts fcgiwrap and
    /// nginx on a free 127.0.0.1 port and waits until the port answers.
    /// Panics (with a hint to run `scripts/install-test-deps.sh`) if a tool
    /// is missing.
    pub fn start() -> GitServer {
        let tools = Tools::locate();
        // Unix socket paths are limited to ~108 bytes: fall back to /tmp if
        // $TMPDIR is very long.
        let mut base = std::env::temp_dir();
        if base.as_os_str().len() > 80 {
            base = PathBuf::from("/tmp");
        }
        let dir = tempfile::Builder::new()
            .prefix("gitsrv")
            .tempdir_in(&base)
            .expect("create temp dir for git server");
        let root = dir.path().to_path_buf();
        for sub in ["tls", "logs", "tmp", "flags", "repos", "home"] {
            fs::create_dir_all(root.join(sub)).expect("create git server dir");
        }
        let token = format!("tok_{}", random_hex(20));
        make_certificates(&tools.openssl, &root);
        write_htpasswd(&tools.openssl, &root, &token);

        let held = HeldPort::shareable();
        let mut server = GitServer {
            procs: None,
            port: held.port(),
            held,
            token,
            tools,
            dir,
        };
        server.launch();
        server
    }

    /// `https://127.0.0.1:PORT/git/<name>.git` (no credentials in it).
    pub fn url(&self, name: &str) -> String {
        format!(
            "https://127.0.0.1:{}/git/{}.git",
            self.port,
            strip_git(name)
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// PEM file of the self-signed CA that issued the server certificate
    /// (valid for IP 127.0.0.1 and DNS localhost). Clients must trust it.
    pub fn ca_file(&self) -> PathBuf {
        self.root().join("tls/ca.pem")
    }

    /// The password (token) accepted for user [`USERNAME`].
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The server's private temp dir (certificates, logs, repos, ...).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `<tmp>/repos/<name>.git`, the bare repository behind [`url`](Self::url).
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.root()
            .join("repos")
            .join(format!("{}.git", strip_git(name)))
    }

    /// `git init --bare` with initial branch `main` and `http.receivepack true`.
    pub fn create_bare_repo(&self, name: &str) -> PathBuf {
        self.create_bare_repo_with_branch(name, "main")
    }

    /// Like [`create_bare_repo`](Self::create_bare_repo) with a chosen
    /// initial branch (what HEAD points to).
    pub fn create_bare_repo_with_branch(&self, name: &str, initial_branch: &str) -> PathBuf {
        let path = self.repo_path(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create repo parent dir");
        }
        let mut init = self.git_cmd();
        init.arg("init")
            .arg("--bare")
            .arg("--quiet")
            .arg(format!("--initial-branch={initial_branch}"))
            .arg(&path);
        run_checked(&mut init, "git init --bare");
        self.git_checked(name, &["config", "http.receivepack", "true"]);
        path
    }

    /// Runs `git --git-dir=<bare repo> <args>` (isolated from the caller's
    /// GIT_* variables and global config) and returns its output.
    pub fn git(&self, name: &str, args: &[&str]) -> Output {
        let mut cmd = self.git_cmd();
        cmd.arg(format!("--git-dir={}", self.repo_path(name).display()))
            .args(args);
        cmd.output().expect("run git")
    }

    /// Like [`git`](Self::git) but panics on failure; returns trimmed stdout.
    pub fn git_checked(&self, name: &str, args: &[&str]) -> String {
        let out = self.git(name, args);
        if !out.status.success() {
            panic!(
                "git --git-dir={} {:?} failed ({}):\n{}",
                self.repo_path(name).display(),
                args,
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Object id a ref (e.g. `refs/heads/main` or `main`) points to in the
    /// bare repo, or None if it does not exist.
    pub fn ref_target(&self, name: &str, refname: &str) -> Option<String> {
        let out = self.git(name, &["rev-parse", "--verify", "--quiet", refname]);
        if out.status.success() {
            Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            None
        }
    }

    /// All refs of the bare repo as `(refname, object id)`, sorted by name.
    pub fn refs(&self, name: &str) -> Vec<(String, String)> {
        let out = self.git_checked(name, &["for-each-ref", "--format=%(refname) %(objectname)"]);
        let mut refs: Vec<(String, String)> = out
            .lines()
            .filter_map(|l| {
                let (r, o) = l.split_once(' ')?;
                Some((r.to_string(), o.to_string()))
            })
            .collect();
        refs.sort();
        refs
    }

    /// Installs `hooks/<hook>` (e.g. `pre-receive`, `update`) with the given
    /// script body (should start with a `#!` line) and makes it executable.
    pub fn install_hook(&self, name: &str, hook: &str, script: &str) -> PathBuf {
        let hooks = self.repo_path(name).join("hooks");
        fs::create_dir_all(&hooks).expect("create hooks dir");
        let path = hooks.join(hook);
        fs::write(&path, script).expect("write hook");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod hook");
        path
    }

    /// Installs a `pre-receive` hook that prints `message` to stderr (which
    /// git shows to the pusher as `remote: <message>`) and rejects every push.
    pub fn install_rejecting_hook(&self, name: &str, message: &str) -> PathBuf {
        let script = format!(
            "#!/bin/sh\n# installed by tests/it/support/git_server.rs\ncat >/dev/null\nprintf '%s\\n' {} >&2\nexit 1\n",
            shell_quote(message)
        );
        self.install_hook(name, "pre-receive", &script)
    }

    /// Removes a hook installed with [`install_hook`](Self::install_hook).
    pub fn remove_hook(&self, name: &str, hook: &str) {
        let _ = fs::remove_file(self.repo_path(name).join("hooks").join(hook));
    }

    /// Switches failure injection; takes effect on the next request.
    pub fn set_mode(&self, mode: Mode) {
        let flags = self.root().join("flags");
        for f in Mode::ALL_FLAGS {
            let _ = fs::remove_file(flags.join(f));
        }
        if let Some(f) = mode.flag() {
            fs::write(flags.join(f), b"1").expect("write mode flag");
        }
    }

    /// Stops nginx and fcgiwrap (waits for them): the port then refuses
    /// connections, and stays reserved for this server. Repositories and
    /// certificates are kept.
    pub fn stop(&mut self) {
        if let Some(procs) = self.procs.take() {
            procs.shutdown();
        }
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port
    /// (so URLs stay valid); the port was never released in between.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Process ids of nginx and fcgiwrap while running (empty when stopped).
    pub fn pids(&self) -> Vec<u32> {
        match self.procs.as_ref() {
            Some(p) => vec![p.nginx.id(), p.fcgiwrap.id()],
            None => Vec::new(),
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.procs.as_mut() {
            Some(p) => {
                matches!(p.nginx.try_wait(), Ok(None)) && matches!(p.fcgiwrap.try_wait(), Ok(None))
            }
            None => false,
        }
    }

    /// Contents of nginx's error log (includes git-http-backend's stderr).
    pub fn error_log(&self) -> String {
        fs::read_to_string(self.root().join("logs/error.log")).unwrap_or_default()
    }

    /// Contents of nginx's access log (`METHOD URI STATUS user` lines).
    ///
    /// nginx writes a request's line when it finalises the request, which can be just after the
    /// client has its answer and exits: read until the log stops changing (bounded).
    pub fn access_log(&self) -> String {
        let read = || fs::read_to_string(self.root().join("logs/access.log")).unwrap_or_default();
        let mut last = read();
        for _ in 0..40 {
            std::thread::sleep(std::time::Duration::from_millis(50));
            let now = read();
            if now == last {
                return now;
            }
            last = now;
        }
        last
    }

    /// Writes an executable `GIT_ASKPASS` script into `dir` that answers
    /// git's username prompt with [`USERNAME`] and the password prompt with
    /// `password`. The password is stored in a separate 0600 file next to it,
    /// not in the script's command line.
    pub fn write_askpass(&self, dir: &Path, password: &str) -> PathBuf {
        write_askpass(dir, USERNAME, password)
    }

    // ----------------------------------------------------------------------

    /// The one git command (see [`git::command`]), never prompting.
    fn git_cmd(&self) -> Command {
        let mut cmd = git::command_with(&self.tools.git);
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        cmd
    }

    /// Starts fcgiwrap + nginx listening on the held port.
    fn launch(&mut self) {
        let root = self.root().to_path_buf();
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let port = self.held.port();
        let mut fcgiwrap = self.spawn_fcgiwrap(&root);
        write_nginx_conf(&root, port, &self.tools.http_backend);
        let _ = fs::remove_file(root.join("nginx.pid"));
        let mut nginx = self.spawn_nginx(&root);
        match wait_ready(&mut nginx, &mut fcgiwrap, &root, port, deadline) {
            Ok(()) => {
                let watchdog = spawn_watchdog(nginx.id(), fcgiwrap.id());
                self.port = port;
                self.procs = Some(Procs {
                    nginx,
                    fcgiwrap,
                    watchdog,
                });
            }
            Err(why) => {
                kill_wait(&mut nginx);
                kill_group(&mut fcgiwrap);
                let log = self.error_log() + &read_lossy(&root.join("logs/nginx.stderr"));
                panic!(
                    "git test server failed to start on 127.0.0.1:{port}: {why}\n\
                     --- nginx error log / stderr ---\n{log}\n--- fcgiwrap stderr ---\n{}",
                    read_lossy(&root.join("logs/fcgiwrap.stderr"))
                );
            }
        }
    }

    fn spawn_fcgiwrap(&self, root: &Path) -> Child {
        let sock = root.join("fcgi.sock");
        let _ = fs::remove_file(&sock);
        let mut cmd = Command::new(&self.tools.fcgiwrap);
        cmd.arg("-f")
            .arg("-c")
            .arg("1")
            .arg("-s")
            .arg(format!("unix:{}", sock.display()))
            .arg("-p")
            .arg(&self.tools.http_backend)
            .arg("-p")
            .arg(root.join("nothin.cgi"))
            .env_clear()
            .env("PATH", child_path())
            .env("HOME", root.join("home"))
            .env("LANG", "C")
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(log_file(&root.join("logs/fcgiwrap.stdout")))
            .stderr(log_file(&root.join("logs/fcgiwrap.stderr")))
            // A process group of its own, which the git-http-backend processes it forks
            // inherit: stopping the server stops them too (see `kill_group`).
            .process_group(0);
        cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot spawn {}: {e}; {INSTALL_HINT}",
                self.tools.fcgiwrap.display()
            )
        })
    }

    fn spawn_nginx(&self, root: &Path) -> Child {
        let mut cmd = Command::new(&self.tools.nginx);
        cmd.arg("-p")
            .arg(format!("{}/", root.display()))
            .arg("-c")
            .arg(root.join("nginx.conf"))
            .arg("-e")
            .arg(root.join("logs/error.log"))
            .env_clear()
            .env("PATH", child_path())
            .current_dir(root)
            .stdin(Stdio::null())
            .stdout(log_file(&root.join("logs/nginx.stdout")))
            .stderr(log_file(&root.join("logs/nginx.stderr")));
        cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot spawn {}: {e}; {INSTALL_HINT}",
                self.tools.nginx.display()
            )
        })
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Procs {
    fn shutdown(mut self) {
        if let Some(w) = self.watchdog.as_mut() {
            kill_wait(w);
        }
        kill_wait(&mut self.nginx);
        kill_group(&mut self.fcgiwrap);
    }
}

/// Writes an executable askpass script (see [`GitServer::write_askpass`]).
pub fn write_askpass(dir: &Path, username: &str, password: &str) -> PathBuf {
    fs::create_dir_all(dir).expect("create askpass dir");
    let n = random_hex(6);
    let secret = dir.join(format!("askpass-{n}.secret"));
    fs::write(&secret, password).expect("write askpass secret");
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod secret");
    let script = dir.join(format!("askpass-{n}.sh"));
    let body = format!(
        "#!/bin/sh\ncase \"$1\" in\n  Username*|username*) printf '%s\\n' {} ;;\n  *) cat {} ; echo ;;\nesac\n",
        shell_quote(username),
        shell_quote(&secret.display().to_string())
    );
    fs::write(&script, body).expect("write askpass script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o700)).expect("chmod askpass");
    script
}

// --------------------------------------------------------------------------
// helpers

impl Tools {
    fn locate() -> Tools {
        let find = |name: &str| -> PathBuf {
            find_program(name).unwrap_or_else(|| {
                panic!("`{name}` not found in PATH or /usr/sbin, /sbin, /usr/local/sbin; {INSTALL_HINT}")
            })
        };
        let nginx = find("nginx");
        let fcgiwrap = find("fcgiwrap");
        let openssl = find("openssl");
        let git = find("git");
        let http_backend = locate_http_backend(&git).unwrap_or_else(|| {
            panic!("git-http-backend not found (checked `git --exec-path`, /usr/lib/git-core); {INSTALL_HINT}")
        });
        Tools {
            nginx,
            fcgiwrap,
            openssl,
            git,
            http_backend,
        }
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for extra in [
        "/usr/local/sbin",
        "/usr/sbin",
        "/sbin",
        "/usr/local/bin",
        "/usr/bin",
        "/bin",
    ] {
        dirs.push(PathBuf::from(extra));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Prefer the backend that belongs to the `git` on PATH (same version as the
/// client), then the distro locations.
fn locate_http_backend(git: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(out) = Command::new(git).arg("--exec-path").output() {
        if out.status.success() {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if !p.is_empty() {
                candidates.push(PathBuf::from(p).join("git-http-backend"));
            }
        }
    }
    for c in [
        "/usr/lib/git-core/git-http-backend",
        "/usr/libexec/git-core/git-http-backend",
        "/usr/local/libexec/git-core/git-http-backend",
    ] {
        candidates.push(PathBuf::from(c));
    }
    candidates.into_iter().find(|p| is_executable(p))
}

fn child_path() -> OsString {
    let mut path = std::env::var_os("PATH").unwrap_or_default();
    if path.is_empty() {
        path = "/usr/local/bin:/usr/bin:/bin".into();
    }
    path.push(":/usr/local/sbin:/usr/sbin:/sbin");
    path
}

fn strip_git(name: &str) -> &str {
    name.strip_suffix(".git").unwrap_or(name)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read /dev/urandom");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_lossy(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn log_file(p: &Path) -> Stdio {
    fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
        .map(Stdio::from)
        .unwrap_or_else(|_| Stdio::null())
}

fn run_checked(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}; {INSTALL_HINT}"));
    if !out.status.success() {
        panic!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

fn kill_wait(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

/// Kills fcgiwrap and every process it forked (its process group): a `git-http-backend` that
/// outlived its request must not outlive the server. (git's http-backend reads a request body
/// of a given length in a loop that never ends when the body ends early, at 100% CPU; nginx
/// no longer cuts bodies short, `fastcgi_ignore_client_abort`, but nothing may be left behind.)
fn kill_group(fcgiwrap: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", fcgiwrap.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    kill_wait(fcgiwrap);
}

/// Kills nginx and fcgiwrap's process group (fcgiwrap and the backends it forked) if the test
/// process goes away without `Drop`.
fn spawn_watchdog(nginx: u32, fcgiwrap: u32) -> Option<Child> {
    Command::new("/bin/sh")
        .arg("-c")
        .arg(
            "p=$1; shift; while kill -0 \"$p\" 2>/dev/null; do sleep 1; done; kill -9 -- \"$@\" 2>/dev/null",
        )
        .arg("git-server-watchdog")
        .arg(std::process::id().to_string())
        .arg(nginx.to_string())
        .arg(format!("-{fcgiwrap}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn wait_ready(
    nginx: &mut Child,
    fcgiwrap: &mut Child,
    root: &Path,
    port: u16,
    deadline: Instant,
) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let sock = root.join("fcgi.sock");
    let pid = root.join("nginx.pid");
    loop {
        if let Ok(Some(st)) = fcgiwrap.try_wait() {
            return Err(format!("fcgiwrap exited early ({st})"));
        }
        if let Ok(Some(st)) = nginx.try_wait() {
            return Err(format!("nginx exited early ({st})"));
        }
        // nginx writes its pid file only after binding its listening socket,
        // so a connect success before that could be someone else's listener.
        if sock.exists() && pid.exists() {
            if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                drop(s);
                // Make sure the pid in the file is ours (not a stale one).
                let file_pid = read_lossy(&pid).trim().parse::<u32>().ok();
                if file_pid == Some(nginx.id()) {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return Err("timed out waiting for the server to accept connections".into());
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn write_htpasswd(openssl: &Path, root: &Path, token: &str) {
    let mut child = Command::new(openssl)
        .args(["passwd", "-apr1", "-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}; {INSTALL_HINT}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{token}\n").as_bytes())
        .expect("write token to openssl");
    let out = child.wait_with_output().expect("openssl passwd");
    assert!(
        out.status.success(),
        "openssl passwd failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hash = String::from_utf8_lossy(&out.stdout).trim().to_string();
    fs::write(root.join("htpasswd"), format!("{USERNAME}:{hash}\n")).expect("write htpasswd");
    // Used by Mode::Unauthorized401: no user can authenticate.
    fs::write(root.join("htpasswd.none"), "").expect("write empty htpasswd");
}

fn make_certificates(openssl: &Path, root: &Path) {
    let tls = root.join("tls");
    let cnf = tls.join("openssl.cnf");
    fs::write(
        &cnf,
        "[req]\n\
         distinguished_name = dn\n\
         prompt = no\n\
         [dn]\n\
         CN = gitcord-snapshot test CA\n\
         [server_dn]\n\
         CN = 127.0.0.1\n\
         [v3_ca]\n\
         basicConstraints = critical,CA:TRUE\n\
         keyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\n\
         [v3_server]\n\
         basicConstraints = critical,CA:FALSE\n\
         keyUsage = critical,digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = IP:127.0.0.1,DNS:localhost\n\
         subjectKeyIdentifier = hash\n\
         authorityKeyIdentifier = keyid\n",
    )
    .expect("write openssl.cnf");
    let server_cnf = tls.join("server-req.cnf");
    fs::write(
        &server_cnf,
        "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = 127.0.0.1\n",
    )
    .expect("write server-req.cnf");

    let ossl = |args: &[&str], what: &str| {
        let mut cmd = Command::new(openssl);
        cmd.args(args).current_dir(&tls).env("OPENSSL_CONF", &cnf);
        run_checked(&mut cmd, what);
    };
    ossl(
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-sha256",
            "-days",
            "3650",
            "-config",
            "openssl.cnf",
            "-extensions",
            "v3_ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
        "openssl req (CA)",
    );
    ossl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-sha256",
            "-config",
            "server-req.cnf",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
        "openssl req (server)",
    );
    let serial = format!("0x1{}", random_hex(15));
    ossl(
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-sha256",
            "-days",
            "825",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "v3_server",
            "-out",
            "server.pem",
        ],
        "openssl x509 (sign server cert)",
    );
}

/// A CGI program in front of `git http-backend` for URLs under `/nothin/`: a server that
/// advertises the `no-thin` capability for receive-pack and refuses thin packs (receive-pack's
/// `--reject-thin-pack-for-testing`: index-pack without `--fix-thin`; `receive.unpackLimit=1`
/// so every push goes through index-pack). Everything else it hands to http-backend.
const NO_THIN_CGI: &str = r##"#!/usr/bin/env python3
import os, subprocess, sys
path = os.environ.get("PATH_INFO", "")
repo = os.environ["GIT_PROJECT_ROOT"] + path.rsplit("/", 1)[0]
out = sys.stdout.buffer
def pkt(b):
    return b"%04x" % (len(b) + 4) + b
if path.endswith("/info/refs") and os.environ.get("QUERY_STRING") == "service=git-receive-pack":
    repo = os.environ["GIT_PROJECT_ROOT"] + path[: -len("/info/refs")]
    adv = subprocess.run(["git", "receive-pack", "--stateless-rpc", "--advertise-refs", repo],
                         check=True, stdout=subprocess.PIPE).stdout
    n = int(adv[:4], 16)
    first = adv[4:n].rstrip(b"\n") + b" no-thin\n"
    out.write(b"Content-Type: application/x-git-receive-pack-advertisement\r\n"
              b"Cache-Control: no-cache\r\n\r\n")
    out.write(pkt(b"# service=git-receive-pack\n") + b"0000" + pkt(first) + adv[n:])
elif path.endswith("/git-receive-pack") and os.environ.get("REQUEST_METHOD") == "POST":
    subprocess.run(["git", "config", "--file", repo + "/config", "receive.unpackLimit", "1"],
                   check=True)
    out.write(b"Content-Type: application/x-git-receive-pack-result\r\n\r\n")
    out.flush()
    subprocess.run(["git", "receive-pack", "--stateless-rpc", "--reject-thin-pack-for-testing",
                    repo], stdin=sys.stdin, stdout=sys.stdout)
else:
    backend = os.environ["GITCORD_HTTP_BACKEND"]
    os.execv(backend, [backend])
"##;

fn write_nginx_conf(root: &Path, port: u16, http_backend: &Path) {
    let r = root.display();
    let path = child_path();
    let cgi = root.join("nothin.cgi");
    fs::write(&cgi, NO_THIN_CGI).expect("write nothin.cgi");
    fs::set_permissions(&cgi, fs::Permissions::from_mode(0o755)).expect("chmod nothin.cgi");
    let conf = format!(
        r#"# generated by tests/it/support/git_server.rs
daemon off;
master_process off;
worker_processes 1;
pid "{r}/nginx.pid";
error_log "{r}/logs/error.log" warn;

events {{
    worker_connections 256;
}}

http {{
    log_format git '$request_method $request_uri $status $remote_user $request_length';
    access_log "{r}/logs/access.log" git;
    client_body_temp_path "{r}/tmp/client_body";
    proxy_temp_path "{r}/tmp/proxy";
    fastcgi_temp_path "{r}/tmp/fastcgi";
    uwsgi_temp_path "{r}/tmp/uwsgi";
    scgi_temp_path "{r}/tmp/scgi";
    client_max_body_size 0;
    server_tokens off;
    default_type text/plain;

    server {{
        # reuseport: the port is held by the test (support/net.rs) for the server's life
        listen 127.0.0.1:{port} ssl reuseport;
        server_name 127.0.0.1 localhost;
        ssl_certificate "{r}/tls/server.pem";
        ssl_certificate_key "{r}/tls/server.key";
        ssl_protocols TLSv1.2 TLSv1.3;

        # failure injection: flag files written by GitServer::set_mode
        if (-f "{r}/flags/unavailable503") {{
            return 503 "service unavailable (test server in Unavailable503 mode)\n";
        }}
        if (-f "{r}/flags/error500") {{
            return 500 "internal error (test server in InternalError500 mode)\n";
        }}
        if (-f "{r}/flags/forbidden403") {{
            return 403 "forbidden (test server in Forbidden403 mode)\n";
        }}
        set $deny_push "";
        if (-f "{r}/flags/pushforbidden403") {{
            set $deny_push "F";
        }}
        if ($uri ~ "/git-receive-pack$") {{
            set $deny_push "${{deny_push}}P";
        }}
        if ($arg_service = "git-receive-pack") {{
            set $deny_push "${{deny_push}}P";
        }}
        if ($deny_push ~ "^FP") {{
            return 403 "push forbidden (test server in PushForbidden403 mode)\n";
        }}
        set $htpasswd "{r}/htpasswd";
        if (-f "{r}/flags/unauthorized401") {{
            set $htpasswd "{r}/htpasswd.none";
        }}

        auth_basic "gitcord-snapshot test git server";
        auth_basic_user_file $htpasswd;

        location / {{
            return 404;
        }}

        # A moved repository: /moved/<name>.git/... redirects to /git/<name>.git/...,
        # /insecure/... to the same over plain http (which clients must refuse to follow).
        location ~ ^/moved(?<moved_path>/.*)$ {{
            return 301 https://$host:$server_port/git$moved_path$is_args$args;
        }}
        location ~ ^/insecure(?<insecure_path>/.*)$ {{
            return 301 http://$host:$server_port/git$insecure_path$is_args$args;
        }}
        # /elsewhere/<port>/...: the repository moved to another server (another origin) on
        # this machine, which must never be sent the token.
        location ~ ^/elsewhere/(?<to_port>[0-9]+)(?<to_path>/.*)$ {{
            return 301 https://$host:$to_port/git$to_path$is_args$args;
        }}

        location ~ ^/(?<git_script>git|nothin)(?<git_path_info>/.*)$ {{
            fastcgi_pass "unix:{r}/fcgi.sock";
            # /nothin/...: a server that advertises no-thin (NO_THIN_CGI)
            set $git_program "{backend}";
            if ($git_script = "nothin") {{
                set $git_program "{r}/nothin.cgi";
            }}
            fastcgi_param GITCORD_HTTP_BACKEND "{backend}";
            fastcgi_read_timeout 300s;
            fastcgi_send_timeout 300s;
            fastcgi_buffering off;
            # A client killed after sending its whole request (the crash tests' SIGKILL)
            # must not cut the body nginx is still passing on: git's http-backend then waits
            # forever for the rest, at 100% CPU, holding fcgiwrap's one worker, and every later
            # request of the test times out. A real server finishes such a push, too.
            fastcgi_ignore_client_abort on;
            fastcgi_param SCRIPT_FILENAME $git_program;
            fastcgi_param SCRIPT_NAME /$git_script;
            fastcgi_param PATH_INFO $git_path_info;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param SERVER_SOFTWARE nginx;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param REMOTE_PORT $remote_port;
            fastcgi_param SERVER_ADDR $server_addr;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_param SERVER_NAME $server_name;
            fastcgi_param HTTPS on;
            fastcgi_param REMOTE_USER $remote_user;
            fastcgi_param GIT_PROJECT_ROOT "{r}/repos";
            fastcgi_param GIT_HTTP_EXPORT_ALL 1;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param HOME "{r}/home";
            fastcgi_param PATH "{path}";
            fastcgi_param LANG C;
        }}
    }}
}}
"#,
        backend = http_backend.display(),
        path = path.to_string_lossy(),
    );
    fs::write(root.join("nginx.conf"), conf).expect("write nginx.conf");
}
