//! Hostile and odd input (issue 21): configs built to exhaust memory, secrets in malformed
//! values, and the exit code each condition gets.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::testenv::{Case, Run, TestEnv};

/// A run of the binary with its wall time and peak resident set.
pub(crate) struct Measured {
    pub(crate) run: Run,
    pub(crate) wall: Duration,
    pub(crate) max_rss_kib: i64,
}

/// Python's `subprocess` (vfork + exec) starts the binary and `os.wait4` reads that one
/// child's rusage. Forking from the test process itself would not do: the child's peak RSS
/// would include the copy of the test process it starts as, before exec.
const MEASURE: &str = r#"
import os, subprocess, sys, time
start = time.monotonic()
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
wall = time.monotonic() - start
with open(sys.argv[1], "w") as f:
    f.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss} {wall}")
"#;

pub(crate) fn measured(cmd: Command) -> Measured {
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut wrapped = Command::new("python3");
    wrapped
        .arg("-c")
        .arg(MEASURE)
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapped.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let out = wrapped.stdin(Stdio::null()).output().unwrap();
    let text = std::fs::read_to_string(report.path()).unwrap();
    let mut parts = text.split(' ');
    let mut next = || parts.next().unwrap().to_owned();
    let (code, rss, wall) = (next(), next(), next());
    Measured {
        run: Run {
            code: code.parse().unwrap(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        },
        wall: Duration::from_secs_f64(wall.parse().unwrap()),
        max_rss_kib: rss.parse().unwrap(),
    }
}

/// `levels` anchors of ten aliases each to the one before: 10^levels values in ~1.2 KB.
fn laughs(prefix: &str, levels: usize, indent: &str) -> String {
    let mut out = format!("{indent}{prefix}0: &a0 [{}]\n", ["\"lol\""; 10].join(", "));
    for i in 1..=levels {
        let items = vec![format!("*a{}", i - 1); 10].join(", ");
        out += &format!("{indent}{prefix}{i}: &a{i} [{items}]\n");
    }
    out
}

/// Nine levels of aliases, in a key Gitcord ignores and in one we read: refused with 78 in
/// well under a second and a few MB, naming the key (an unbounded reader takes all memory).
#[test]
fn billion_laughs_config_is_refused_fast_naming_the_key() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let base = case.config_text();
    let ignored = laughs("x-a", 9, "");
    assert!(ignored.len() < 1300, "{}", ignored.len());
    // The same shape inside snapshots.branch, a key we read (a list of the anchors).
    let list = laughs("", 9, "")
        .lines()
        .map(|l| format!("    - {}\n", l.split_once(": ").unwrap().1))
        .collect::<String>();
    let read = base.replace("  branch: \"main\"\n", &format!("  branch:\n{list}"));
    assert!(read.contains("    - &a9 [*a8,"), "{read}");
    let cases = [
        (
            "ignored",
            format!("{base}{ignored}"),
            "x-a4 stands for more than 100000 values",
        ),
        (
            "read",
            read,
            "snapshots.branch stands for more than 100000 values",
        ),
    ];
    for (name, text, want) in cases {
        let config = env.write(&format!("{name}.yaml"), &text);
        let mut args = case.export_args();
        args[2] = config.display().to_string();
        args.extend(["--out".into(), env.path("out").display().to_string()]);
        let m = measured(env.command(&args));
        m.run
            .expect_error(78, &[want, "aliases", &config.display().to_string()]);
        assert!(m.wall < Duration::from_secs(2), "{name}: {:?}", m.wall);
        assert!(m.max_rss_kib < 64 * 1024, "{name}: {} KiB", m.max_rss_kib);
        assert!(!env.path("out").exists());
        eprintln!(
            "{name}: {} bytes, exit {}, {:.3} s, {} KiB max RSS",
            text.len(),
            m.run.code,
            m.wall.as_secs_f64(),
            m.max_rss_kib
        );
    }
}

/// A config over 1 MiB (or endless) is refused with one line, without reading it whole.
#[test]
fn an_oversized_config_is_refused() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let mut text = case.config_text();
    text += &format!("# {}\n", "x".repeat(1 << 20));
    for config in [env.write("big.yaml", &text), "/dev/zero".into()] {
        let mut args = case.export_args();
        args[2] = config.display().to_string();
        args.extend(["--out".into(), env.path("out").display().to_string()]);
        let m = measured(env.command(&args));
        m.run.expect_error(
            78,
            &["is larger than 1024 KiB", &config.display().to_string()],
        );
        assert!(m.max_rss_kib < 64 * 1024, "{} KiB", m.max_rss_kib);
    }
}

/// The token every fuzzed config carries, and its spellings an output could show.
const TOKEN: &str = "ghp_FuzzSecret0123456789abcdefABCDEFxyz";

fn spellings(token: &str) -> Vec<String> {
    fn b64(bytes: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for c in bytes.chunks(3) {
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }
    // The secret part (any 12 characters of it would do: that is what a partial echo shows).
    let core = &token[4..];
    vec![
        core[..16].to_owned(),
        core[core.len() - 16..].to_owned(),
        b64(token.as_bytes())[..16].to_owned(),
        core.chars().rev().collect::<String>()[..16].to_owned(),
        core.bytes().map(|b| format!("{b:02x}")).collect::<String>()[..24].to_owned(),
    ]
}

/// Values a token key may be given by mistake or malice: every YAML type and tag, broken
/// quoting and escapes, control characters, tabs, flow and block collections, anchors,
/// aliases, `${VAR}` expansions into any type.
fn token_values(t: &str) -> Vec<String> {
    let b64 = {
        let mut s = String::new();
        for c in t.as_bytes().chunks(3) {
            const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
            let n = c
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
            for i in 0..=c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        s
    };
    let mut v: Vec<String> = [
        "!!binary {t}",
        "!!binary \"{t}!\"",
        "!!binary {b64}",
        "!!int {t}",
        "!!float {t}",
        "!!bool {t}",
        "!!null {t}",
        "!!timestamp {t}",
        "!!str {t}",
        "!!seq {t}",
        "!!map {t}",
        "!!set {t}",
        "!!omap {t}",
        "!!pairs {t}",
        "!!merge {t}",
        "!!value {t}",
        "!!python/str {t}",
        "!custom {t}",
        "!{t} x",
        "!<{t}> x",
        "!!{t} x",
        "{t}",
        "'{t}",
        "\"{t}",
        "\"{t}\\q\"",
        "\"{t}\\x4\"",
        "\"{t}\\u12\"",
        "'{t}''",
        "[{t}",
        "{{{t}",
        "[{t}]",
        "{{{t}: 1}}",
        "{t}: nested",
        "- {t}",
        "&{t} x",
        "*{t}",
        "&a {t}",
        "{t}\t# tab",
        "\"{t}\u{7}\"",
        "{t}\u{7}",
        "{t}\u{feff}",
        "\"{t}\u{85}\"",
        "{t} #c",
        "|\n    {t}\n   bad",
        ">-\n    {t}",
        "? {t}",
        "{t}:",
        "'{t}' junk",
        "\"{t}\" \"x\"",
        "{t}\n  {t}",
        "\"${{{t}}}\"",
        "${{GH}}",
        "!!int ${{GH}}",
        "!!binary ${{GH}}",
        "\"${{GH}}\"\n  token: !!int ${{GH}}",
        "%{t}",
        "@{t}",
        "`{t}",
        "{t}\u{0}",
        "\"{t}\\",
        "!!binary |\n    {t}",
        "- - {t}",
        "[[{t}]]",
        "{{a: {t}}}",
    ]
    .iter()
    .map(|f| {
        f.replace("{t}", t)
            .replace("{b64}", &b64)
            .replace("{{", "{")
            .replace("}}", "}")
    })
    .collect();
    v.push(format!("{t}{}", "x".repeat(300)));
    v
}

/// No output of any run shows the token, whatever is wrong around a token key (issue 21,
/// item 2): each mutation runs `push` (which reads the token and tries the closed port) and
/// `export` reading roles from Discord (which reads `discord.token`), both at RUST_LOG=trace;
/// stdout, stderr and every file they leave are searched for the token's spellings.
#[test]
fn no_output_ever_shows_a_token() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let base = case.config_text();
    let needles = spellings(TOKEN);
    let mut configs = Vec::new();
    for (section, key) in [
        ("github", "token"),
        ("discord", "token"),
        ("snapshots", "token"),
    ] {
        let line = format!("{section}:\n");
        for value in token_values(TOKEN) {
            let mut text = base.clone();
            let old = match section {
                "github" => "  token: \"ghp_conformance_not_a_real_token\"\n",
                "discord" => "  token: \"discord_conformance_not_a_real_token\"\n",
                _ => "",
            };
            if old.is_empty() {
                text = text.replace(&line, &format!("{line}  {key}: {value}\n"));
            } else {
                text = text.replace(old, &format!("  {key}: {value}\n"));
            }
            configs.push(text);
        }
    }
    // The token in the remote URL, in every form; and in keys next to the token keys.
    let remote = crate::support::testenv::closed_remote_url();
    let host = remote.trim_start_matches("https://");
    for url in [
        format!("https://{TOKEN}@{host}"),
        format!("https://x-access-token:{TOKEN}@{host}"),
        format!("https://{host}?access_token={TOKEN}"),
        format!(
            "https://{}/data.git?access_token={TOKEN}",
            host.split('/').next().unwrap()
        ),
        format!("https://{host}#{TOKEN}"),
        format!("HTTPS://user:{TOKEN}@{host}"),
        format!("http://x:{TOKEN}@127.0.0.1/r.git"),
        format!("x-access-token:{TOKEN}@github.com:o/r.git"),
        format!("ssh://{TOKEN}@github.com/o/r.git"),
    ] {
        configs.push(crate::support::testenv::set_key(
            &base,
            "snapshots",
            "remote_url",
            &url,
        ));
    }
    // A variable holding the token expanded into a key whose value is checked (and shown
    // when it comes from the file itself): `writer`; `period_days`, `enabled` (typed).
    configs.push(crate::support::testenv::set_key(
        &base,
        "snapshots",
        "writer",
        "${GH}",
    ));
    configs.push(crate::support::testenv::set_key(
        &base,
        "snapshots",
        "enabled",
        "${GH}",
    ));
    configs.push(base.replace("period_days: 30", "period_days: \"${GH}\""));
    let url_mutations = (configs.len() - 9)..configs.len() - 3;
    let mut codes = std::collections::BTreeMap::<i32, usize>::new();
    for (i, text) in configs.iter().enumerate() {
        let dir = env.path(&format!("m{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("config.yaml");
        std::fs::write(&config, text).unwrap();
        let c = config.display().to_string();
        let runs: [Vec<String>; 2] = [
            vec![
                "push".into(),
                "--config".into(),
                c.clone(),
                "--roles-file".into(),
                case.roles().display().to_string(),
                "--state-db".into(),
                case.state_db().display().to_string(),
                "--lock-timeout".into(),
                "0".into(),
            ],
            vec![
                "export".into(),
                "--config".into(),
                c.clone(),
                "--state-db".into(),
                case.state_db().display().to_string(),
                "--out".into(),
                dir.join("out").display().to_string(),
            ],
        ];
        for args in runs {
            let mut cmd = env.command(&args);
            cmd.current_dir(&dir)
                .env("RUST_LOG", "trace")
                .env("GH", TOKEN);
            let out = cmd.output().unwrap();
            let code = out.status.code();
            assert!(code.is_some(), "mutation {i} killed by a signal:\n{text}");
            *codes.entry(code.unwrap_or(-1)).or_default() += 1;
            if url_mutations.contains(&i) && args[0] == "push" {
                // Refused before the clone is touched: no .git/config to hold the URL.
                assert_eq!(code, Some(78), "mutation {i}");
                assert!(!dir.join("snapshot-repo").exists(), "mutation {i}");
            }
            let all = [out.stdout, out.stderr].concat();
            let all = String::from_utf8_lossy(&all);
            assert!(!all.contains("panicked"), "mutation {i}: {all}");
            for n in &needles {
                assert!(
                    !all.contains(n.as_str()),
                    "mutation {i} shows the token ({n}):\n{text}\n---\n{all}"
                );
            }
        }
        // Nothing written under the run's directory (clone, .git/config, audit log,
        // metrics) holds the token; only the config itself does.
        for (name, bytes) in crate::support::testenv::tree(&dir) {
            if name == "config.yaml" {
                continue;
            }
            let text = String::from_utf8_lossy(&bytes);
            for n in &needles {
                assert!(
                    !text.contains(n.as_str()),
                    "mutation {i}: {name} holds the token:\n{text}"
                );
            }
        }
    }
    eprintln!(
        "{} mutations, {} runs, exit codes {codes:?}",
        configs.len(),
        configs.len() * 2
    );
    // The fuzz reaches every stage: config refusals (78), and runs that read a token and used
    // it against the closed port (push: 75) or Discord (export: 69).
    assert!(codes.get(&78).copied().unwrap_or(0) > 100, "{codes:?}");
    assert!(codes.get(&75).copied().unwrap_or(0) > 10, "{codes:?}");
    assert!(codes.get(&69).copied().unwrap_or(0) > 10, "{codes:?}");
}

/// A tree git would refuse, written raw into the server's bare repository as another writer
/// could (`git hash-object --literally`), on top of the branch tip: `snapshots/` gains an entry
/// named `name` (a copy of the newest snapshot's tree). Returns the new commit id.
fn push_crafted_tree(bare: &std::path::Path, name: &[u8]) -> String {
    use crate::support::git::git;
    let tip = git(bare, &["rev-parse", "main"]).trim().to_owned();
    let snaps = git(bare, &["rev-parse", "main:snapshots"])
        .trim()
        .to_owned();
    // Raw entries of snapshots/: "<mode> <name>\0<20-byte id>".
    let listing = git(bare, &["ls-tree", &snaps]);
    let mut raw: Vec<u8> = Vec::new();
    let mut first_tree = None;
    let mut entries: Vec<(Vec<u8>, String, String)> = Vec::new();
    for line in listing.lines() {
        let (meta, entry_name) = line.split_once('\t').unwrap();
        let parts: Vec<&str> = meta.split(' ').collect();
        first_tree.get_or_insert_with(|| parts[2].to_owned());
        entries.push((
            entry_name.as_bytes().to_vec(),
            parts[0].to_owned(),
            parts[2].to_owned(),
        ));
    }
    entries.push((name.to_vec(), "40000".into(), first_tree.unwrap()));
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (n, mode, id) in entries {
        let mode = if mode == "040000" {
            "40000".to_owned()
        } else {
            mode
        };
        raw.extend_from_slice(mode.as_bytes());
        raw.push(b' ');
        raw.extend_from_slice(&n);
        raw.push(0);
        raw.extend((0..20).map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap()));
    }
    let write = |kind: &str, bytes: &[u8]| {
        let mut child = crate::support::git::git_command(bare)
            .args(["hash-object", "--literally", "-t", kind, "-w", "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), bytes).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let sub = write("tree", &raw);
    // The root: every entry of the tip's root, snapshots/ replaced.
    let root = git(bare, &["ls-tree", "main"]);
    let mut raw: Vec<u8> = Vec::new();
    for line in root.lines() {
        let (meta, entry_name) = line.split_once('\t').unwrap();
        let parts: Vec<&str> = meta.split(' ').collect();
        let (mode, id) = match entry_name {
            "snapshots" => ("40000", sub.as_str()),
            _ => (parts[0].trim_start_matches('0'), parts[2]),
        };
        raw.extend_from_slice(format!("{mode} {entry_name}\0").as_bytes());
        raw.extend((0..20).map(|i| u8::from_str_radix(&id[2 * i..2 * i + 2], 16).unwrap()));
    }
    let root = write("tree", &raw);
    let commit = format!(
        "tree {root}\nparent {tip}\nauthor Other <o@example.com> 1706702400 +0000\n\
         committer Other <o@example.com> 1706702400 +0000\n\nanother writer\n"
    );
    let id = write("commit", commit.as_bytes());
    git(bare, &["update-ref", "refs/heads/main", &id]);
    id
}

/// Another writer pushed a tree entry git itself refuses: every host must say the remote's
/// content is the problem (commit and entry named, exit 77: an operator must act), never
/// blame its own clone, and write nothing outside the clone; once the operator removes the
/// commit, the same clone publishes what it queued.
#[test]
fn a_remote_tree_with_a_name_git_refuses_is_named_as_the_remotes_problem() {
    use crate::support::git::git;
    use crate::support::git_server::GitServer;
    use crate::support::host::Host;
    // (An empty name is refused by the server's own git before it is ever sent.)
    for name in [&b"../../escaped"[..], b"..", b".git", b"a/b"] {
        let shown = format!("snapshots/{:?}", String::from_utf8_lossy(name));
        let server = GitServer::start();
        let bare = server.create_bare_repo("data");
        let host = Host::for_server(&server, "data");
        host.push("clone", 0, &[]).expect_code(0);
        let good = git(&bare, &["rev-parse", "main"]).trim().to_owned();
        let bad = push_crafted_tree(&bare, name);
        // A later, innocent commit on top: the message still names the one that brought it.
        let tip = {
            let tree = git(&bare, &["rev-parse", "main^{tree}"]).trim().to_owned();
            let id = git(
                &bare,
                &[
                    "-c",
                    "user.name=O",
                    "-c",
                    "user.email=o@example.com",
                    "commit-tree",
                    &tree,
                    "-p",
                    &bad,
                    "-m",
                    "later",
                ],
            )
            .trim()
            .to_owned();
            git(&bare, &["update-ref", "refs/heads/main", &id]);
            id
        };
        // The host that was in step, twice (not "forever 74"), and a brand-new clone.
        for (clone, n) in [("clone", 1), ("clone", 2), ("fresh", 3)] {
            let run = host.push(clone, n, &[]);
            run.expect_error(
                77,
                &[
                    &format!("commit {tip}, introduced by commit {bad}"),
                    &shown,
                    "another writer pushed it",
                ],
            );
            assert!(!run.stderr.contains("local clone"), "{}", run.stderr);
        }
        // The clone's record of the remote still names the last accepted tip.
        let tracking = git(
            &host.clone_path("clone").join(".git"),
            &["rev-parse", "refs/remotes/origin/main"],
        );
        assert_eq!(tracking.trim(), good);
        for dir in [host.env.dir.path(), host.env.dir.path().parent().unwrap()] {
            assert!(!dir.join("escaped").exists(), "{}", dir.display());
        }
        let view = crate::support::testenv::tree(&host.clone_path("clone").join("snapshots"));
        assert!(
            view.iter()
                .all(|(p, _)| (0..=2).any(|n| p.starts_with(&crate::support::host::dir_name(n)))),
            "{view:?}"
        );
        // The operator removes the commits: the same clone publishes its queue.
        git(&bare, &["update-ref", "refs/heads/main", &good]);
        host.push("clone", 4, &[]).expect_code(0);
        let (names, linear) = crate::support::git::history(&bare);
        assert!(linear);
        assert_eq!(names.len(), 4, "{names:?}");
    }
}

/// One condition, one exit code: a snapshot name that exists with other content is 73 both
/// at commit time and when a queued commit is replayed onto another writer's (it was 77
/// during a replay).
#[test]
fn a_snapshot_name_conflict_is_73_at_commit_and_in_replay() {
    use crate::support::git_server::GitServer;
    use crate::support::host::Host;
    const CONFLICT: &str = "already exists in the data repository with different content";
    let mut server = GitServer::start();
    server.create_bare_repo("data");
    let a = Host::for_server(&server, "data");
    // Another host whose org differs: its snapshot n has the same name and other bytes.
    let (url, token, ca) = (
        server.url("data"),
        server.token().to_owned(),
        server.ca_file(),
    );
    let other = || {
        let h = Host::new(&url, &token, Some(ca.clone()));
        let config = std::fs::read_to_string(h.env.path("config.yaml")).unwrap();
        h.env.write(
            "config.yaml",
            config.replace("org: \"my-org\"", "org: \"other-org\""),
        );
        h
    };
    a.push("clone", 0, &[]).expect_code(0);
    // At commit time: the fetched remote already has snapshot 0.
    other().push("clone", 0, &[]).expect_error(73, &[CONFLICT]);
    // In a replay: A queues 1 while the server is down, the other host publishes its 1.
    server.stop();
    a.push("clone", 1, &[]).expect_code(75);
    server.restart();
    other().push("clone", 1, &[]).expect_code(0);
    a.push("clone", 2, &[]).expect_error(73, &[CONFLICT]);
}

/// An invalid `snapshots.branch` is a configuration error (78), not a local I/O error.
#[test]
fn an_invalid_branch_is_a_config_error() {
    use crate::support::host::Host;
    for branch in ["a..b", "bad branch", "x.lock", "-x", "a//b", "@{x"] {
        let host = Host::for_case("basic");
        let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
        host.env.write(
            "config.yaml",
            crate::support::testenv::set_key(&config, "snapshots", "branch", branch),
        );
        host.push("clone", 0, &["--no-push"])
            .expect_error(78, &["snapshots.branch", "is not a valid git branch name"]);
        assert!(!host.clone_path("clone").exists(), "{branch}");
    }
}

/// A bad GITCORD_SNAPSHOT_READ_THREADS is named as the variable, not only as the flag.
#[test]
fn a_bad_read_threads_variable_is_named() {
    let case = Case::load("basic");
    let env = TestEnv::new();
    let mut args = case.export_args();
    args.extend(["--out".into(), env.path("out").display().to_string()]);
    for bad in ["abc", "0", "9"] {
        env.run_with(&args, &[("GITCORD_SNAPSHOT_READ_THREADS", Some(bad))])
            .expect_error(
                64,
                &["environment variable GITCORD_SNAPSHOT_READ_THREADS", bad],
            );
    }
    // Given on the command line, the flag is what is named.
    args.extend(["--read-threads".into(), "7".into()]);
    let run = env.run_with(&args, &[("GITCORD_SNAPSHOT_READ_THREADS", Some("2"))]);
    run.expect_error(64, &["--read-threads"]);
    assert!(
        !run.stderr.contains("environment variable"),
        "{}",
        run.stderr
    );
}

/// A clone that cannot be read is 74 under verify, as under every other command (it was 1).
#[test]
fn an_unreadable_clone_is_74_under_verify_too() {
    use crate::support::host::Host;
    let host = Host::for_case("basic");
    host.push("clone", 0, &["--no-push"]).expect_code(0);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    // Remove the tip commit's object: the history cannot be read.
    let git_dir = host.clone_path("clone").join(".git");
    let tip = crate::support::git::git(&git_dir, &["rev-parse", "main"])
        .trim()
        .to_owned();
    let object = git_dir.join("objects").join(&tip[..2]).join(&tip[2..]);
    std::fs::remove_file(&object).unwrap();
    let config = ["--config", "config.yaml", "--clone-dir", "clone"];
    let verify = host.run(&[&["verify"][..], &config].concat());
    let status_like = host.run(&[&["diff", "latest~1", "latest"][..], &config].concat());
    verify.expect_code(74);
    assert_eq!(status_like.code, 74, "{}", status_like.stderr);
}

/// One condition, one exit code: a file that already exists is 73 and a write that fails
/// (here: a path through a regular file, which fails as root too) is 74, for `export`'s
/// directory, `restore`'s database and the clone alike (export and restore said 73 for both).
#[test]
fn a_failed_write_is_74_and_an_existing_file_73_in_every_command() {
    use crate::support::host::Host;
    let host = Host::for_case("basic");
    host.env.write("a-file", "not a directory\n");
    let export = |out: &str| {
        let mut args = host.case.export_args();
        args.extend(["--out".into(), host.env.path(out).display().to_string()]);
        host.run(&args)
    };
    export("a-file/out").expect_error(74, &["a-file/out", "Not a directory"]);
    export("out").expect_code(0);
    export("out").expect_error(73, &["already exists"]);
    host.push("clone", 0, &["--no-push"]).expect_code(0);
    let restore = |to: &str| {
        host.run(&[
            "restore",
            "--config",
            "config.yaml",
            "--clone-dir",
            "clone",
            "--snapshot",
            "latest",
            "--to",
            &host.env.path(to).display().to_string(),
        ])
    };
    restore("a-file/state.db").expect_code(74);
    restore("a-file").expect_error(73, &["already exists"]);
    // The clone: a path through a file.
    host.push("a-file/clone", 1, &["--no-push"]).expect_code(74);
}
