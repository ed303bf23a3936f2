//! The push benchmark over the real TLS test server (support/git_server.rs): ignored, so it
//! costs CI nothing; `scripts/bench-push-https.sh` runs it and it prints a table. It asserts
//! nothing about time.
//!
//! For each history size (10, 1,000 and 8,760 hourly snapshots, `BENCH_SIZES` to change), two
//! identical remotes are built in seconds with `git fast-import`: one commit per snapshot adding
//! `snapshots/<UTC stamp>-<8 hex>/` with the seven files of a real `push` of the demo fixture
//! (`fixtures/demo`, exported once; every copy gets its own time, run id and name, so no two
//! blobs are equal, as in real history) and a `latest.json` of the same shape, then repacked
//! as a hosted remote would be. Then, interleaved, so both sides see the same machine load:
//!
//! * first run: our `push` into an empty `clone_dir` (learns the branch, fetches the history,
//!   commits, pushes) against `git clone --bare` of the other remote;
//! * steady state: our `push` of the next snapshot into that clone against git's
//!   `add -A` + `commit` + `pull --rebase` + `push` of the very same files in a normal clone.
//!
//! It prints the table, then issue 19's targets from the same run: bytes sent per push beside
//! git's at each size, and our CPU per run at the largest size against the smallest.
//!
//! CPU is user + system time of the process and everything it waited for (`wait4`'s rusage),
//! so git's helpers (`git-remote-https`, `pack-objects`, ...) are counted; the server's side
//! is not, for either. Bytes per push: what the server received (nginx's `$request_length` of
//! the `git-receive-pack` POST) and how much the bare repository's `objects/` grew (apparent
//! size: loose objects, packs and their indexes).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::git;
use crate::support::git_server::GitServer;
use crate::support::host::TOKEN_VAR;
use tempfile::TempDir;

/// Hours between the newest synthetic snapshot and the benchmark's first own one.
const BASE: &str = "2025-06-01T00:00:00+00:00";

/// One measured process (tree): CPU (user + sys) and wall time.
#[derive(Clone, Copy, Default)]
pub(crate) struct Cost {
    pub(crate) cpu: Duration,
    /// The user-space part of `cpu` (the rest is the kernel's: files created, fsync, TLS I/O).
    pub(crate) user: Duration,
    pub(crate) wall: Duration,
}

impl std::ops::AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        self.cpu += o.cpu;
        self.user += o.user;
        self.wall += o.wall;
    }
}

/// Runs `cmd` to completion and returns its cost; panics with its output if it fails.
// The child is reaped by `wait4` (for its rusage), which clippy cannot see.
#[allow(clippy::zombie_processes)]
pub(crate) fn measured(cmd: &mut Command, log: &Path) -> Cost {
    let out = fs::File::create(log).unwrap();
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 reaps the child we just spawned, whose
    // `Child` is then only dropped (never waited on again).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        ok,
        "{cmd:?} failed ({status}):\n{}",
        fs::read_to_string(log).unwrap_or_default()
    );
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Cost {
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        user: tv(usage.ru_utime),
        wall,
    }
}

/// The apparent size of everything under `dir` (bytes).
pub(crate) fn apparent_size(dir: &Path) -> u64 {
    let mut total = 0;
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let meta = e.metadata().unwrap();
        total += if meta.is_dir() {
            apparent_size(&e.path())
        } else {
            meta.len()
        };
    }
    total
}

/// Bytes of the last `git-receive-pack` POST the server received.
pub(crate) fn last_receive_pack_bytes(server: &GitServer) -> u64 {
    server
        .access_log()
        .lines()
        .rev()
        .find(|l| l.starts_with("POST ") && l.contains("/git-receive-pack "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The moment of benchmark snapshot `n` (negative: synthetic history), RFC 3339 and as the
/// directory-name stamp.
fn moment(n: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(BASE)
        .unwrap()
        .with_timezone(&chrono::Utc)
        + chrono::Duration::hours(n)
}

fn run_id(n: i64) -> String {
    format!("{:08x}-0000-4000-8000-00000000beef", n as u32)
}

/// The demo fixture's inputs in a scratch directory, with a config pointing at `remote`.
pub(crate) struct Ours {
    env: TempDir,
    token: String,
    ca: PathBuf,
    binary: PathBuf,
}

impl Ours {
    pub(crate) fn new(server: &GitServer, remote: &str, binary: &Path) -> Ours {
        let env = TempDir::new().unwrap();
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/demo");
        for f in ["state.db", "roles.json"] {
            fs::copy(demo.join(f), env.path().join(f)).unwrap();
        }
        let config = fs::read_to_string(demo.join("config.yaml"))
            .unwrap()
            .replace("data_dir: \"fixtures/demo\"", "data_dir: \".\"")
            .replace("\"fixtures/demo/roles.json\"", "\"roles.json\"")
            .replace("\"target/demo-data-repo\"", "\"clone\"")
            .replace(
                "  branch: \"main\"\n",
                &format!(
                    "  branch: \"main\"\n  remote_url: \"{}\"\n  token: \"${{{TOKEN_VAR}}}\"\n",
                    server.url(remote)
                ),
            );
        assert!(config.contains("remote_url"), "{config}");
        fs::write(env.path().join("config.yaml"), config).unwrap();
        Ours {
            env,
            token: server.token().to_owned(),
            ca: server.ca_file(),
            binary: binary.to_owned(),
        }
    }

    /// `push` of benchmark snapshot `n` into `clone`, not started.
    pub(crate) fn push(&self, clone: &str, n: i64, extra: &[&str]) -> Command {
        // BENCH_PERF_DIR: each run of ours recorded by `perf record -g` there (perf-<n>.data),
        // to see where a run's CPU goes.
        let mut cmd = match std::env::var_os("BENCH_PERF_DIR") {
            Some(dir) => {
                let mut perf = Command::new("perf");
                perf.args(["record", "-q", "-g", "-F", "4000", "-o"])
                    .arg(Path::new(&dir).join(format!("perf-{n}.data")))
                    .arg("--")
                    .arg(&self.binary);
                perf
            }
            None => Command::new(&self.binary),
        };
        git::isolate(&mut cmd);
        cmd.current_dir(self.env.path())
            .env_remove("RUST_LOG")
            .env(TOKEN_VAR, &self.token)
            .env("SSL_CERT_FILE", &self.ca)
            .args([
                "-q",
                "push",
                "--config",
                "config.yaml",
                "--clone-dir",
                clone,
            ])
            .args(["--run-id", &run_id(n), "--at", &moment(n).to_rfc3339()])
            .args(extra);
        cmd
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.env.path().join(rel)
    }
}

/// git's side: a home, an askpass script, the server's CA; never the caller's config.
struct Git {
    dir: TempDir,
    askpass: PathBuf,
    ca: PathBuf,
}

impl Git {
    fn new(server: &GitServer) -> Git {
        let dir = TempDir::new().unwrap();
        let askpass = server.write_askpass(&dir.path().join("auth"), server.token());
        fs::create_dir_all(dir.path().join("home")).unwrap();
        Git {
            dir,
            askpass,
            ca: server.ca_file(),
        }
    }

    fn cmd(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut cmd = git::command();
        cmd.current_dir(cwd)
            .env("HOME", self.dir.path().join("home"))
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_ASKPASS", &self.askpass)
            .env("GIT_SSL_CAINFO", &self.ca)
            .env("GIT_AUTHOR_NAME", "gitcord-snapshot")
            .env(
                "GIT_AUTHOR_EMAIL",
                "gitcord-snapshot@users.noreply.github.com",
            )
            .env("GIT_COMMITTER_NAME", "gitcord-snapshot")
            .env(
                "GIT_COMMITTER_EMAIL",
                "gitcord-snapshot@users.noreply.github.com",
            )
            .args(args);
        cmd
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// A snapshot as pushed: its directory's files and `latest.json`, to vary into a history.
pub(crate) struct Template {
    name: String,
    files: Vec<(String, Vec<u8>)>,
    latest: Vec<u8>,
    generated_at: String,
    run_id: String,
}

impl Template {
    /// One offline `push` of the demo at benchmark snapshot -100000 (never reused).
    pub(crate) fn make(server: &GitServer) -> Template {
        let ours = Ours::new(
            server,
            "unused",
            Path::new(env!("CARGO_BIN_EXE_gitcord-snapshot")),
        );
        let n = -100_000;
        measured(
            &mut ours.push("template", n, &["--no-push"]),
            &ours.path("template.log"),
        );
        let view = ours.path("template/snapshots");
        let name = fs::read_dir(&view)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| !n.starts_with('.'))
            .unwrap();
        let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(view.join(&name))
            .unwrap()
            .flatten()
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        let latest = git::output(&ours.path("template/.git"), &["show", "main:latest.json"]).stdout;
        let meta: serde_json::Value =
            serde_json::from_slice(&files.iter().find(|(f, _)| f == "meta.json").unwrap().1)
                .unwrap();
        Template {
            name,
            generated_at: meta["generated_at"].as_str().unwrap().to_owned(),
            run_id: meta["run_id"].as_str().unwrap().to_owned(),
            files,
            latest,
        }
    }

    fn vary(&self, bytes: &[u8], n: i64) -> Vec<u8> {
        let t = moment(n);
        let name = format!("{}-{}", t.format("%Y-%m-%dT%H-%M-%S"), &run_id(n)[..8]);
        let generated_at = self.generated_at.replacen(
            &moment(-100_000).format("%Y-%m-%dT%H:%M:%S").to_string(),
            &t.format("%Y-%m-%dT%H:%M:%S").to_string(),
            1,
        );
        String::from_utf8_lossy(bytes)
            .replace(&self.name, &name)
            .replace(&self.generated_at, &generated_at)
            .replace(&self.run_id, &run_id(n))
            .into_bytes()
    }

    /// Writes history snapshots `-count..0` into `repo` with `git fast-import`, then repacks.
    pub(crate) fn import(&self, repo: &Path, count: i64) {
        let mut child = git::git_command(repo)
            .args(["fast-import", "--quiet"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        {
            let mut w = std::io::BufWriter::new(child.stdin.take().unwrap());
            let data = |w: &mut dyn Write, bytes: &[u8]| {
                writeln!(w, "data {}", bytes.len()).unwrap();
                w.write_all(bytes).unwrap();
                w.write_all(b"\n").unwrap();
            };
            for n in -count..0 {
                let t = moment(n);
                let name = format!("{}-{}", t.format("%Y-%m-%dT%H-%M-%S"), &run_id(n)[..8]);
                writeln!(w, "commit refs/heads/main").unwrap();
                writeln!(
                    w,
                    "committer gitcord-snapshot <gitcord-snapshot@users.noreply.github.com> {} +0000",
                    t.timestamp()
                )
                .unwrap();
                let message = format!(
                    "Gitcord snapshot: {} (run: {})\n",
                    t.format("%Y-%m-%dT%H:%M:%SZ"),
                    run_id(n)
                );
                data(&mut w, message.as_bytes());
                for (file, bytes) in &self.files {
                    writeln!(w, "M 100644 inline snapshots/{name}/{file}").unwrap();
                    data(&mut w, &self.vary(bytes, n));
                }
                writeln!(w, "M 100644 inline latest.json").unwrap();
                data(&mut w, &self.vary(&self.latest, n));
            }
        }
        assert!(child.wait().unwrap().success(), "fast-import");
        let out = git::output(repo, &["repack", "-a", "-d", "-q"]);
        assert!(out.status.success(), "repack");
    }
}

/// One contender's medians at one history size (milliseconds, bytes).
#[derive(Default)]
struct Figures {
    first: (f64, f64),
    run: (f64, f64),
    /// User-space CPU per run (ms).
    run_user: f64,
    wire: f64,
    stored: f64,
}

/// One history size's figures: ours (this build, then `BENCH_BASELINE` if given), then git.
struct Row {
    snapshots: i64,
    sides: Vec<(String, Figures)>,
}

/// Samples of one contender.
#[derive(Default)]
struct Samples {
    first: Vec<Cost>,
    run: Vec<Cost>,
    wire: Vec<f64>,
    stored: Vec<f64>,
}

impl Samples {
    fn figures(&self) -> Figures {
        let pair = |xs: &[Cost]| {
            (
                median(xs.iter().map(|c| ms(c.cpu)).collect()),
                median(xs.iter().map(|c| ms(c.wall)).collect()),
            )
        };
        Figures {
            first: pair(&self.first),
            run: pair(&self.run),
            run_user: median(self.run.iter().map(|c| ms(c.user)).collect()),
            wire: median(self.wire.clone()),
            stored: median(self.stored.clone()),
        }
    }
}

/// Builds the remotes for `count` snapshots and measures every contender, interleaved.
fn bench_size(
    server: &GitServer,
    template: &Template,
    binaries: &[(String, PathBuf)],
    count: i64,
    runs: usize,
) -> Row {
    let git_name = format!("git{count}");
    let first_remote = server.create_bare_repo(&git_name);
    template.import(&first_remote, count);
    let mut ours = Vec::new();
    for (i, (label, binary)) in binaries.iter().enumerate() {
        let name = format!("ours{i}-{count}");
        let out = Command::new("cp")
            .arg("-a")
            .arg(&first_remote)
            .arg(server.repo_path(&name))
            .output()
            .unwrap();
        assert!(out.status.success());
        ours.push((label.clone(), Ours::new(server, &name, binary), name));
    }
    let git = Git::new(server);
    let repo_b = server.repo_path(&git_name);
    let mut samples: Vec<Samples> = (0..=ours.len()).map(|_| Samples::default()).collect();

    // First run, interleaved: our push into an empty clone_dir against `git clone --bare`.
    // Every contender pushes the same snapshot numbers, so their remotes stay alike.
    let mut n = 0;
    for k in 0..3 {
        let clone = format!("first{k}");
        for (i, (_, side, _)) in ours.iter().enumerate() {
            let cost = measured(&mut side.push(&clone, n, &[]), &side.path("run.log"));
            samples[i].first.push(cost);
        }
        n += 1;
        let dest = git.path(&format!("bare{k}.git"));
        samples[ours.len()].first.push(measured(
            &mut git.cmd(
                git.path("").as_path(),
                &[
                    "clone",
                    "-q",
                    "--bare",
                    &server.url(&git_name),
                    dest.to_str().unwrap(),
                ],
            ),
            &git.path("run.log"),
        ));
    }
    // git's normal clone (not timed).
    let work = git.path("work");
    measured(
        &mut git.cmd(
            git.path("").as_path(),
            &[
                "clone",
                "-q",
                &server.url(&git_name),
                work.to_str().unwrap(),
            ],
        ),
        &git.path("run.log"),
    );

    let clone = "first2";
    for _ in 0..runs {
        for (i, (_, side, remote)) in ours.iter().enumerate() {
            let objects = server.repo_path(remote).join("objects");
            let before = apparent_size(&objects);
            let cost = measured(&mut side.push(clone, n, &[]), &side.path("run.log"));
            samples[i].run.push(cost);
            samples[i].wire.push(last_receive_pack_bytes(server) as f64);
            samples[i]
                .stored
                .push((apparent_size(&objects) - before) as f64);
        }
        // git, with the files our run just committed.
        let (_, side, _) = &ours[0];
        let t = moment(n);
        let name = format!("{}-{}", t.format("%Y-%m-%dT%H-%M-%S"), &run_id(n)[..8]);
        let src = side.path(clone).join("snapshots").join(&name);
        let dst = work.join("snapshots").join(&name);
        fs::create_dir_all(&dst).unwrap();
        for e in fs::read_dir(&src).unwrap().flatten() {
            fs::copy(e.path(), dst.join(e.file_name())).unwrap();
        }
        let latest = git::output(
            &side.path(clone).join(".git"),
            &["show", "main:latest.json"],
        )
        .stdout;
        fs::write(work.join("latest.json"), latest).unwrap();
        let message = format!(
            "Gitcord snapshot: {} (run: {})",
            t.format("%Y-%m-%dT%H:%M:%SZ"),
            run_id(n)
        );
        let objects = repo_b.join("objects");
        let before = apparent_size(&objects);
        let mut cost = Cost::default();
        for args in [
            &["add", "-A"][..],
            &["commit", "-q", "-m", &message],
            &["pull", "-q", "--rebase"],
            &["push", "-q"],
        ] {
            cost += measured(&mut git.cmd(&work, args), &git.path("run.log"));
        }
        let g = &mut samples[ours.len()];
        g.run.push(cost);
        g.wire.push(last_receive_pack_bytes(server) as f64);
        g.stored.push((apparent_size(&objects) - before) as f64);
        n += 1;
    }
    let mut sides: Vec<(String, Figures)> = ours
        .iter()
        .zip(&samples)
        .map(|((label, _, _), s)| (label.clone(), s.figures()))
        .collect();
    sides.push(("git".into(), samples[ours.len()].figures()));
    Row {
        snapshots: count,
        sides,
    }
}

#[test]
#[ignore = "benchmark: run scripts/bench-push-https.sh"]
fn push_https() {
    let sizes: Vec<i64> = std::env::var("BENCH_SIZES")
        .unwrap_or_else(|_| "10,1000,8760".into())
        .split(',')
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut binaries = vec![(
        "ours".to_owned(),
        PathBuf::from(env!("CARGO_BIN_EXE_gitcord-snapshot")),
    )];
    // Another build of gitcord-snapshot (e.g. of the previous commit), measured side by side.
    if let Some(path) = std::env::var_os("BENCH_BASELINE") {
        binaries.push(("baseline".to_owned(), PathBuf::from(path)));
    }
    let server = GitServer::start();
    let template = Template::make(&server);
    let bytes: usize = template.files.iter().map(|(_, b)| b.len()).sum();
    println!(
        "\nsnapshot: {} files, {bytes} bytes (+ latest.json {} bytes); medians of {runs} steady-state runs and 3 first runs per size\n",
        template.files.len(),
        template.latest.len()
    );
    let mut rows = Vec::new();
    for count in sizes {
        let started = Instant::now();
        rows.push(bench_size(&server, &template, &binaries, count, runs));
        eprintln!("bench: {count} snapshots done in {:.0?}", started.elapsed());
    }
    println!("| snapshots | who | CPU ms/run | wall ms/run | wall vs git | bytes received/push | remote objects/ growth/push | first run CPU / wall ms | first run wall vs `git clone --bare` |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        let git = &r.sides[r.sides.len() - 1].1;
        for (who, f) in &r.sides {
            let who = if who == "git" {
                "git add+commit+pull --rebase+push; first: `git clone --bare`"
            } else {
                who
            };
            println!(
                "| {} | {who} | {:.0} | {:.0} | {:.2}x | {:.0} | {:.0} | {:.0} / {:.0} | {:.2}x |",
                r.snapshots,
                f.run.0,
                f.run.1,
                f.run.1 / git.run.1,
                f.wire,
                f.stored,
                f.first.0,
                f.first.1,
                f.first.1 / git.first.1,
            );
        }
    }
    if let (Some(lo), Some(hi)) = (rows.first(), rows.last()) {
        for (i, (who, _)) in lo.sides.iter().enumerate() {
            println!(
                "{who}: CPU per run {} -> {} snapshots: {:.2}x",
                lo.snapshots,
                hi.snapshots,
                hi.sides[i].1.run.0 / lo.sides[i].1.run.0
            );
        }
    }
    // The targets of issue 19, from this run: bytes sent per push against git's for the same
    // commit at each size, and our CPU per run at the largest size against the smallest.
    for r in &rows {
        let git = &r.sides[r.sides.len() - 1].1;
        for (who, f) in &r.sides[..r.sides.len() - 1] {
            println!(
                "{who}: bytes sent per push at {} snapshots: {:.0} vs git's {:.0}: {:.2}x (target at the largest size: <= 1.5x)",
                r.snapshots,
                f.wire,
                git.wire,
                f.wire / git.wire
            );
        }
    }
    if let (Some(lo), Some(hi)) = (rows.first(), rows.last()) {
        println!(
            "ours: CPU per run at {} snapshots vs at {}: {:.2}x (target: <= 1.5x); user-space CPU alone: {:.0} -> {:.0} ms, {:.2}x",
            hi.snapshots,
            lo.snapshots,
            hi.sides[0].1.run.0 / lo.sides[0].1.run.0,
            lo.sides[0].1.run_user,
            hi.sides[0].1.run_user,
            hi.sides[0].1.run_user / lo.sides[0].1.run_user
        );
    }
}
