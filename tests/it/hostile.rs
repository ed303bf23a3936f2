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
