//! Hostile and odd input (issue 21): configs built to exhaust memory, secrets in malformed
//! values, and the exit code each condition gets.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::testenv::{Case, Run, TestEnv};

/// A run of the binary with its wall time and peak resident set (from `wait4`'s rusage of
/// that one child, so other tests' processes do not count).
struct Measured {
    run: Run,
    wall: Duration,
    max_rss_kib: i64,
}

fn measured(mut cmd: Command) -> Measured {
    let start = Instant::now();
    // Reaped by wait4 below (rusage of this one child), not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        out.read_to_string(&mut s).unwrap();
        s
    });
    let mut stderr = String::new();
    err.read_to_string(&mut stderr).unwrap();
    let stdout = reader.join().unwrap();
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, which nothing else reaps (Child::wait is never called).
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let wall = start.elapsed();
    assert!(libc::WIFEXITED(status), "killed by a signal: {status}");
    Measured {
        run: Run {
            code: libc::WEXITSTATUS(status),
            stdout,
            stderr,
        },
        wall,
        max_rss_kib: usage.ru_maxrss,
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
