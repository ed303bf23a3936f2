//! The readers' side of the data repository: `examples/read_latest.py` (standard library only)
//! run against a data repository made by `push`, from a checkout and over HTTP, as a consumer
//! would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support::git::git;
use crate::support::git_server::GitServer;
use crate::support::host::{dir_name, Host};
use crate::support::testenv::{ChildGuard, TestEnv};

fn reader(source: &str, extra: &[&str]) -> (i32, String, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/read_latest.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(source)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

#[test]
fn the_example_reader_finds_and_checks_the_newest_snapshot() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let host = Host::for_server(&server, "data");
    for n in 0..3 {
        host.push("clone", n, &[]).expect_code(0);
    }
    let work = TestEnv::new();
    let checkout = work.path("checkout");
    crate::support::git::checkout(&bare, &checkout);
    let source = checkout.to_str().unwrap();

    let (code, stdout, stderr) = reader(source, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("snapshots/{}", dir_name(2))),
        "{stdout}"
    );
    let (code, json, _) = reader(source, &["--json"]);
    assert_eq!(code, 0);
    let summary: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        summary["snapshot_dir"],
        format!("snapshots/{}", dir_name(2))
    );
    assert_eq!(summary["snapshots"], 3);

    // Over HTTP, from a plain static file server on loopback.
    let mut server = ChildGuard::spawn(
        Command::new("python3")
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
                source,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let mut line = String::new();
    BufReader::new(server.child().stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line
        .split("port ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap();
    let (code, stdout, stderr) = reader(&format!("http://127.0.0.1:{port}"), &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("snapshots/{}", dir_name(2))),
        "{stdout}"
    );
    drop(server);

    // A file that does not match latest.json: exit 1, the file named.
    let roles = checkout
        .join("snapshots")
        .join(dir_name(2))
        .join("roles.json");
    let mut bytes = std::fs::read(&roles).unwrap();
    bytes.push(b' ');
    std::fs::write(&roles, bytes).unwrap();
    let (code, _, stderr) = reader(source, &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("roles.json"), "{stderr}");
}

#[test]
fn the_index_file_can_be_renamed_or_turned_off() {
    let server = GitServer::start();
    let renamed = server.create_bare_repo("renamed");
    let host = Host::for_server(&server, "renamed");
    host.add_config("  latest_file: \"index.json\"\n");
    host.push("clone", 0, &[]).expect_code(0);
    let root = git(&renamed, &["ls-tree", "--name-only", "main"]);
    assert_eq!(
        root.lines().collect::<Vec<_>>(),
        ["index.json", "snapshots"]
    );
    let work = TestEnv::new();
    let checkout = work.path("checkout");
    crate::support::git::checkout(&renamed, &checkout);
    let (code, stdout, stderr) =
        reader(checkout.to_str().unwrap(), &["--latest-file", "index.json"]);
    assert_eq!(code, 0, "{stdout}{stderr}");

    let off = server.create_bare_repo("off");
    let host = Host::for_server(&server, "off");
    host.add_config("  latest_file: \"\"\n");
    host.push("clone", 0, &[]).expect_code(0);
    assert_eq!(
        git(&off, &["ls-tree", "--name-only", "main"]).trim(),
        "snapshots"
    );

    let host = Host::for_case("basic");
    host.add_config("  latest_file: \"snapshots\"\n");
    host.push("clone", 0, &["--no-push"])
        .expect_error(78, &["snapshots.latest_file"]);
}
