//! Signed snapshot commits (issue: a provable audit trail), checked with the real tools:
//! `ssh-keygen` makes the keys, `git verify-commit` checks what reached the TLS remote, and
//! our `verify --allowed-signers` catches a forged commit and a wrong key.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::git::{git, history};
use crate::support::git_server::GitServer;
use crate::support::host::{dir_name, Host};
use crate::support::testenv::TestEnv;

/// The fixed test key (fixtures/signing), copied to a private file: git keeps no file modes.
fn fixture_key(env: &TestEnv) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/signing/test_ed25519");
    let dest = env.path("signing_key");
    std::fs::copy(&src, &dest).unwrap();
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o600)).unwrap();
    dest
}

/// `ssh-keygen -t TYPE -N PASS -f DIR/NAME`: a fresh key, returned by path.
fn keygen(env: &TestEnv, name: &str, key_type: &str, passphrase: &str) -> PathBuf {
    let path = env.path(name);
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", key_type, "-N", passphrase, "-C", "test", "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen is installed by scripts/install-test-deps.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// An allowed-signers file naming `principal` for the public half of `key`.
fn allowed(env: &TestEnv, name: &str, principal: &str, key: &Path) -> PathBuf {
    // The public half, as ssh-keygen derives it from the private key.
    let out = Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = String::from_utf8(out.stdout).unwrap();
    let fields: Vec<&str> = public.split_whitespace().take(2).collect();
    env.write(name, format!("{principal} {}\n", fields.join(" ")))
}

fn signing_host(server: &GitServer, repo: &str, key: &Path) -> Host {
    let host = Host::for_server(server, repo);
    host.add_config(&format!("  signing_key: \"{}\"\n", key.display()));
    host
}

/// `git verify-commit` of every commit on the remote's `main`, as GitHub or a reader would.
fn git_verifies_every_commit(bare: &Path, allowed_signers: &Path) {
    let commits = git(bare, &["rev-list", "main"]);
    assert!(!commits.trim().is_empty());
    for commit in commits.lines() {
        let out = crate::support::git::git_command(bare)
            .args(["-c", "gpg.format=ssh"])
            .arg("-c")
            .arg(format!(
                "gpg.ssh.allowedSignersFile={}",
                allowed_signers.display()
            ))
            .args(["verify-commit", commit])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{commit}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The id of the basic case's first snapshot commit (snapshot 0), signed with the fixture
/// key: the same on every machine, because Ed25519 signatures are deterministic.
const SIGNED_FIRST_COMMIT: &str = include_str!("../../fixtures/signing/first_commit_id");

#[test]
fn every_commit_is_signed_verifiable_by_git_and_the_same_on_every_host() {
    let server = GitServer::start();
    let (a, b) = (server.create_bare_repo("a"), server.create_bare_repo("b"));
    let keys = TestEnv::new();
    let key = fixture_key(&keys);
    let signers = allowed(&keys, "allowed", "gitcord-snapshot", &key);

    // Two hosts on one remote: the second run of host 1 is refused and replayed.
    let one = signing_host(&server, "a", &key);
    let two = signing_host(&server, "a", &key);
    let mut runs = Vec::new();
    let first = one.push("clone", 0, &["-v"]);
    first.expect_code(0);
    runs.push(first);
    let second = two.push("clone", 1, &["-v"]);
    second.expect_code(0);
    runs.push(second);
    let replayed = one.run(&{
        let mut args = one.args("clone", 2, &[]);
        args.push("-v".into());
        args
    });
    replayed.expect_code(0);
    assert!(
        replayed.stderr.contains("replaying queued snapshots"),
        "{}",
        replayed.stderr
    );
    // A prune is a commit of ours too.
    let prune = one.run(&[
        "prune",
        "--config",
        "config.yaml",
        "--clone-dir",
        "clone",
        "--keep-last",
        "2",
    ]);
    prune.expect_code(0);
    let (names, linear) = history(&a);
    runs.push(replayed);
    runs.push(prune);
    assert!(linear);
    assert_eq!(names[..3], [dir_name(0), dir_name(1), dir_name(2)]);
    assert!(names[3].contains("Gitcord snapshot prune"), "{names:?}");
    git_verifies_every_commit(&a, &signers);
    let signers_opt = format!("gpg.ssh.allowedSignersFile={}", signers.display());
    let statuses = git(
        &a,
        &[
            "-c",
            "gpg.format=ssh",
            "-c",
            &signers_opt,
            "log",
            "--format=%G?",
            "main",
        ],
    );
    assert_eq!(
        statuses.lines().collect::<Vec<_>>(),
        ["G"; 4],
        "good signatures, all four"
    );

    // The same inputs and key onto the same parent: the same commit id, pinned across hosts.
    let on_b = signing_host(&server, "b", &key).push("clone", 0, &["-v"]);
    on_b.expect_code(0);
    runs.push(on_b);
    let first = git(&a, &["rev-list", "--max-parents=0", "main"]);
    assert_eq!(git(&b, &["rev-parse", "main"]), first);
    assert_eq!(first.trim(), SIGNED_FIRST_COMMIT.trim());

    // status names the key by its fingerprint, and nothing of ours holds the key.
    let status = one.run(&["status", "--config", "config.yaml", "--clone-dir", "clone"]);
    status.expect_code(0);
    let json = one.run(&[
        "status",
        "--json",
        "--config",
        "config.yaml",
        "--clone-dir",
        "clone",
    ]);
    json.expect_code(0);
    runs.push(json);
    let fingerprint = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&key)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8(fingerprint.stdout).unwrap();
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap();
    assert!(
        status
            .stdout
            .contains(&format!("signing:          on, key {fingerprint}")),
        "{}",
        status.stdout
    );
    runs.push(status);
    // The secret is the 32-byte Ed25519 seed (the key file's fixed header holds none): look
    // for it, in hex and in base64 at every alignment, in every output of every run above and
    // in every file the hosts wrote.
    let needles = seed_spellings(&key);
    for run in &runs {
        for out in [&run.stdout, &run.stderr] {
            for n in &needles {
                assert!(!out.contains(n.as_str()), "seed printed ({n}): {out}");
            }
        }
    }
    for host in [&one, &two] {
        for (path, bytes) in crate::support::testenv::tree(host.env.dir.path()) {
            let text = String::from_utf8_lossy(&bytes);
            for n in &needles {
                assert!(!text.contains(n.as_str()), "seed in {path}");
            }
        }
    }
}

/// The key's secret seed as it could be shown: hex (both cases) and base64 starting at each
/// of its first three bytes (one of them is aligned wherever the seed sits in a base64
/// stream); 24 characters of each. The key file itself must contain one of the base64 forms,
/// or the search would prove nothing.
fn seed_spellings(key: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(key).unwrap();
    let private = ssh_key::PrivateKey::from_openssh(&text).unwrap();
    let seed = private.key_data().ed25519().unwrap().private.to_bytes();
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = vec![hex[..24].to_owned(), hex[..24].to_ascii_uppercase()];
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for k in 0..3 {
        let mut b64 = String::new();
        for c in seed[k..].chunks(3).filter(|c| c.len() == 3) {
            let n = u32::from(c[0]) << 16 | u32::from(c[1]) << 8 | u32::from(c[2]);
            for i in 0..4 {
                b64.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out.push(b64[..24].to_owned());
    }
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(
        out[2..].iter().any(|n| body.contains(n.as_str())),
        "the seed search does not find the seed in the key file itself"
    );
    out
}

#[test]
fn unsigned_commits_keep_their_ids() {
    // Without a key, commits are as they were before signing existed: pinned.
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    Host::for_server(&server, "data")
        .push("clone", 0, &[])
        .expect_code(0);
    assert_eq!(
        git(&bare, &["rev-parse", "main"]).trim(),
        include_str!("../../fixtures/signing/unsigned_first_commit_id").trim()
    );
    assert_eq!(git(&bare, &["log", "--format=%G?", "main"]).trim(), "N");
}

#[test]
fn verify_catches_a_forged_commit_and_a_wrong_key() {
    let server = GitServer::start();
    let bare = server.create_bare_repo("data");
    let keys = TestEnv::new();
    let key = fixture_key(&keys);
    let good = allowed(&keys, "allowed", "gitcord-snapshot", &key);
    let other = keygen(&keys, "other", "ed25519", "");
    let wrong = allowed(&keys, "wrong", "someone-else", &other);
    let host = signing_host(&server, "data", &key);
    host.push("clone", 0, &[]).expect_code(0);
    host.push("clone", 1, &[]).expect_code(0);

    // Another writer adds a README (nothing of ours: fine), then forges a snapshot commit.
    let work = TestEnv::new();
    let checkout = work.path("w");
    crate::support::git::checkout(&bare, &checkout);
    let w = checkout.join(".git");
    let in_work = |args: &[&str]| {
        let out = crate::support::git::git_command(&w)
            .arg("--work-tree")
            .arg(&checkout)
            .args(["-c", "user.name=x", "-c", "user.email=x@example.com"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(checkout.join("README.md"), "data repository\n").unwrap();
    in_work(&["add", "README.md"]);
    in_work(&["commit", "-q", "-m", "readme"]);
    let forged_dir = checkout.join("snapshots").join(dir_name(9));
    std::fs::create_dir_all(&forged_dir).unwrap();
    for f in std::fs::read_dir(checkout.join("snapshots").join(dir_name(1))).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), forged_dir.join(f.file_name())).unwrap();
    }
    in_work(&["add", "snapshots"]);
    in_work(&["commit", "-q", "-m", "Gitcord snapshot: forged"]);
    in_work(&["push", "-q", "origin", "main"]);
    let forged = git(&bare, &["rev-parse", "main"]).trim().to_owned();

    // A fresh clone of the data repository, as the README says to make one.
    let fresh = TestEnv::new();
    git(
        &bare,
        &[
            "clone",
            "-q",
            "--bare",
            bare.to_str().unwrap(),
            fresh.path("c/.git").to_str().unwrap(),
        ],
    );
    let verify = |signers: &Path| {
        host.run(&[
            "verify",
            "--config",
            "config.yaml",
            "--clone-dir",
            fresh.path("c").to_str().unwrap(),
            "--allowed-signers",
            signers.to_str().unwrap(),
        ])
    };
    let run = verify(&good);
    run.expect_code(65);
    let problems: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("signature is not accepted"))
        .collect();
    assert_eq!(
        problems,
        [format!(
            "verify: {}: changes snapshots but its signature is not accepted: is not signed",
            &forged[..8]
        )]
    );

    // The wrong key: every commit of ours is refused.
    let run = verify(&wrong);
    run.expect_code(65);
    let refused = run
        .stderr
        .lines()
        .filter(|l| l.contains("is not in the allowed signers file"))
        .count();
    assert_eq!(refused, 2, "{}", run.stderr);
}

#[test]
fn unusable_keys_are_refused_with_exit_78_before_anything_is_touched() {
    let keys = TestEnv::new();
    let encrypted = keygen(&keys, "encrypted", "ed25519", "a passphrase");
    let rsa = keygen(&keys, "rsa", "rsa", "");
    let open_to_others = keygen(&keys, "open", "ed25519", "");
    std::fs::set_permissions(&open_to_others, std::fs::Permissions::from_mode(0o644)).unwrap();
    let public = keys.path("open.pub");
    std::fs::set_permissions(&public, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cases: [(PathBuf, &str); 5] = [
        (keys.path("missing"), "does not exist"),
        (encrypted, "passphrase"),
        (rsa, "only ssh-ed25519"),
        (open_to_others, "chmod 600"),
        (public, "private key"),
    ];
    for (path, fragment) in cases {
        let host = Host::for_case("basic");
        host.add_config(&format!("  signing_key: \"{}\"\n", path.display()));
        let run = host.push("clone", 0, &["--no-push"]);
        run.expect_code(78);
        assert!(
            run.stderr.contains("snapshots.signing_key"),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(&path.display().to_string()),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.to_lowercase().contains(&fragment.to_lowercase()),
            "{fragment:?}: {}",
            run.stderr
        );
        assert_eq!(
            run.stderr.lines().filter(|l| l.contains("error:")).count(),
            1,
            "{}",
            run.stderr
        );
        assert!(!host.clone_path("clone").exists(), "nothing created");
    }
}
