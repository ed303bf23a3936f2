//! A stale readers' index (issue 21, item 5): renaming `snapshots.latest_file` or setting it
//! to `""` removes the old file in that very commit; `verify` checks every index a commit
//! holds, configured or not, and an unsigned edit to any index we ever wrote fails
//! `verify --allowed-signers`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::git::{git, tree_files};
use crate::support::host::Host;
use crate::support::testenv::set_key;

const CLONE: &str = "clone";

fn push(host: &Host, n: u32) {
    host.push(CLONE, n, &["--no-push"]).expect_code(0);
}

fn set_latest_file(host: &Host, value: &str) {
    let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
    host.env.write(
        "config.yaml",
        set_key(&config, "snapshots", "latest_file", value),
    );
}

fn verify(host: &Host, extra: &[&str]) -> crate::support::testenv::Run {
    let mut args = vec!["verify", "--config", "config.yaml", "--clone-dir", CLONE];
    args.extend_from_slice(extra);
    host.run(&args)
}

fn root_files(host: &Host) -> Vec<String> {
    let git_dir = host.clone_path(CLONE).join(".git");
    let mut files: Vec<String> = tree_files(&git_dir)
        .into_iter()
        .filter(|f| !f.starts_with("snapshots/"))
        .collect();
    files.sort();
    files
}

/// The fixture signing key (mode 600) and an allowed-signers file for it.
fn signing(host: &Host) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/signing/test_ed25519");
    let key = host.env.path("signing_key");
    std::fs::copy(&src, &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let public = std::fs::read_to_string(src.with_extension("pub")).unwrap();
    let fields: Vec<&str> = public.split_whitespace().take(2).collect();
    let allowed = host.env.write(
        "allowed_signers",
        format!("snapshots@example.com {}\n", fields.join(" ")),
    );
    let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
    host.env.write(
        "config.yaml",
        set_key(
            &config,
            "snapshots",
            "signing_key",
            &key.display().to_string(),
        ),
    );
    allowed
}

#[test]
fn renaming_or_switching_off_the_index_removes_the_old_file() {
    let host = Host::for_case("basic");
    let allowed = signing(&host);
    push(&host, 0);
    assert_eq!(root_files(&host), ["latest.json"]);
    set_latest_file(&host, "index.json");
    push(&host, 1);
    assert_eq!(
        root_files(&host),
        ["index.json"],
        "the renamed index replaces the old one"
    );
    set_latest_file(&host, "");
    push(&host, 2);
    assert!(root_files(&host).is_empty(), "{:?}", root_files(&host));
    // The history is clean, signatures included (each removal is one of our signed commits).
    verify(
        &host,
        &["--allowed-signers", &allowed.display().to_string()],
    )
    .expect_code(0);
    // Turning it back on writes it again, describing the newest.
    set_latest_file(&host, "latest.json");
    push(&host, 3);
    assert_eq!(root_files(&host), ["latest.json"]);
    verify(
        &host,
        &["--allowed-signers", &allowed.display().to_string()],
    )
    .expect_code(0);
}

/// An index left by an earlier name (as older versions did, or a foreign tool does) is
/// checked like the configured one, and an unsigned commit that puts it back, edits or
/// removes it is not accepted.
#[test]
fn a_stale_index_is_reported_and_unsigned_edits_to_it_fail() {
    let host = Host::for_case("basic");
    let allowed = signing(&host);
    let allowed = allowed.display().to_string();
    push(&host, 0);
    set_latest_file(&host, "");
    push(&host, 1);
    let git_dir = host.clone_path(CLONE).join(".git");
    // Put the first commit's index back, unsigned: it names snapshot 0, the tree's newest is 1.
    let old_index = git(&git_dir, &["rev-parse", "main~1:latest.json"])
        .trim()
        .to_owned();
    let repo = git2::Repository::open_bare(&git_dir).unwrap();
    let tip = repo
        .find_commit(repo.refname_to_id("refs/heads/main").unwrap())
        .unwrap();
    let mut builder = repo.treebuilder(Some(&tip.tree().unwrap())).unwrap();
    builder
        .insert(
            "latest.json",
            git2::Oid::from_str(&old_index).unwrap(),
            0o100644,
        )
        .unwrap();
    let tree = repo.find_tree(builder.write().unwrap()).unwrap();
    let sig =
        git2::Signature::new("x", "x@example.com", &git2::Time::new(1_706_800_000, 0)).unwrap();
    let forged = repo
        .commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            "put it back",
            &tree,
            &[&tip],
        )
        .unwrap()
        .to_string();
    let run = verify(&host, &["--allowed-signers", &allowed]);
    run.expect_code(65);
    let lines: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(&forged[..8]))
        .collect();
    assert!(
        lines.iter().any(
            |l| l.contains("latest.json: does not match its commit's tree")
                && l.contains("no longer names")
        ),
        "{}",
        run.stderr
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("signature is not accepted")),
        "{}",
        run.stderr
    );
    // Without --allowed-signers the stale index is still reported.
    let run = verify(&host, &[]);
    run.expect_code(65);
    assert!(run.stderr.contains("no longer names"), "{}", run.stderr);
    // Our next commit removes it again, signed.
    push(&host, 2);
    assert!(root_files(&host).is_empty());
}
