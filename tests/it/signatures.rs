//! `verify --allowed-signers` shown what a signature check exists for (issue 21, item 6): a
//! commit signed by a key outside the allowed signers, and a signed commit whose content was
//! altered after signing. Each must be the one problem reported.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::git::{git, git_command};
use crate::support::host::Host;
use crate::support::testenv::set_key;

const CLONE: &str = "clone";

fn key_file(host: &Host, name: &str, generate: bool) -> PathBuf {
    let path = host.env.path(name);
    if generate {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "other", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/signing/test_ed25519");
        std::fs::copy(&src, &path).unwrap();
        std::fs::copy(src.with_extension("pub"), path.with_extension("pub")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

fn use_key(host: &Host, key: &Path) {
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
}

fn allowed_for(host: &Host, key: &Path) -> PathBuf {
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let fields: Vec<&str> = public.split_whitespace().take(2).collect();
    host.env.write(
        "allowed_signers",
        format!("snapshots@example.com {}\n", fields.join(" ")),
    )
}

fn verify(host: &Host, allowed: &Path) -> crate::support::testenv::Run {
    host.run(&[
        "verify",
        "--config",
        "config.yaml",
        "--clone-dir",
        CLONE,
        "--allowed-signers",
        allowed.to_str().unwrap(),
    ])
}

fn problems(run: &crate::support::testenv::Run) -> Vec<String> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("verify: "))
        .map(str::to_owned)
        .collect()
}

#[test]
fn a_commit_signed_by_a_key_outside_the_allowed_signers_is_refused() {
    let host = Host::for_case("basic");
    let good = key_file(&host, "good_key", false);
    let other = key_file(&host, "other_key", true);
    let allowed = allowed_for(&host, &good);
    use_key(&host, &good);
    host.push(CLONE, 0, &["--no-push"]).expect_code(0);
    verify(&host, &allowed).expect_code(0);
    // The same host, configured with another key: its commit is signed, validly, by a key
    // the allowed-signers file does not list.
    use_key(&host, &other);
    host.push(CLONE, 1, &["--no-push"]).expect_code(0);
    use_key(&host, &good);
    host.push(CLONE, 2, &["--no-push"]).expect_code(0);
    let git_dir = host.clone_path(CLONE).join(".git");
    let outsider = git(&git_dir, &["rev-parse", "main~1"]).trim().to_owned();
    let run = verify(&host, &allowed);
    run.expect_code(65);
    let found = problems(&run);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(&format!("verify: {}: ", &outsider[..8]))
            && found[0].contains("signature is not accepted")
            && found[0].contains("not in the allowed signers file"),
        "{found:?}"
    );
}

#[test]
fn a_signed_commit_altered_after_signing_is_refused() {
    let host = Host::for_case("basic");
    let good = key_file(&host, "good_key", false);
    let allowed = allowed_for(&host, &good);
    use_key(&host, &good);
    host.push(CLONE, 0, &["--no-push"]).expect_code(0);
    host.push(CLONE, 1, &["--no-push"]).expect_code(0);
    verify(&host, &allowed).expect_code(0);
    // Rewrite the tip's raw object: same gpgsig header, one byte of the signed content changed
    // (the author's name), written as a new commit that the branch then points to.
    let git_dir = host.clone_path(CLONE).join(".git");
    let raw = git(&git_dir, &["cat-file", "commit", "main"]);
    assert!(
        raw.contains("\ngpgsig -----BEGIN SSH SIGNATURE-----"),
        "{raw}"
    );
    let altered = raw.replacen("author gitcord-snapshot", "author gitcord-snapshoT", 1);
    assert_ne!(altered, raw);
    let mut child = git_command(&git_dir)
        .args(["hash-object", "-t", "commit", "-w", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), altered.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    git(&git_dir, &["update-ref", "refs/heads/main", &id]);
    let run = verify(&host, &allowed);
    run.expect_code(65);
    let found = problems(&run);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(&format!("verify: {}: ", &id[..8]))
            && found[0].contains("signature is not accepted"),
        "{found:?}"
    );
    // git agrees that the signature no longer matches.
    let signers = format!("gpg.ssh.allowedSignersFile={}", allowed.display());
    let check = git_command(&git_dir)
        .args(["-c", "gpg.format=ssh", "-c", &signers, "verify-commit", &id])
        .output()
        .unwrap();
    assert!(!check.status.success());
}
