//! The backup's prescan (the window scan fingerprinting every contributions range for a backup
//! that has a previous one to compare with) against databases where the window scan's own
//! notion of the table differs from the backup's: the backup must stay whole, and nothing the
//! export says may depend on whether this is a first backup or a later one.

use crate::backup::{install, restore};
use crate::support::host::Host;

/// A copy of `host`'s state.db, named `name`, with the secret column as restore leaves it.
pub(crate) fn as_restored(host: &Host, name: &str) -> std::path::PathBuf {
    let copy = host.env.path(name);
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(host.env.path("state.db"), &copy).unwrap();
    let c = rusqlite::Connection::open(&copy).unwrap();
    c.execute("UPDATE identity_links SET verification_code = NULL", [])
        .unwrap();
    drop(c);
    copy
}

/// `sqlite3 .dump` of [`as_restored`].
fn want_dump(host: &Host, name: &str) -> String {
    crate::backup::dump(&as_restored(host, name))
}

/// A contributions table with a column literally named `rowid` (SQLite allows it; the real
/// rowid is then `_rowid_`): the window scan addresses the column, the backup the real rowid.
/// A later backup (prescan) must still hold every row, as the first one does.
#[test]
fn a_contributions_column_named_rowid_loses_no_row_in_a_later_backup() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    // The column holds the rowids of the first range only: the window scan's bounds (its
    // `min(rowid)`, `max(rowid)`) cover that range and no other.
    conn.execute_batch(
        "ALTER TABLE contributions ADD COLUMN rowid INTEGER;
         UPDATE contributions SET rowid = _rowid_ WHERE _rowid_ <= 255;",
    )
    .unwrap();
    let count = |db: &str| -> i64 {
        rusqlite::Connection::open(host.env.path(db))
            .unwrap()
            .query_row("SELECT count(*) FROM contributions", [], |r| r.get(0))
            .unwrap()
    };
    assert!(
        count("state.db") > 300,
        "premise: rows beyond the first range"
    );
    drop(conn);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    restore(&host, "clone", "latest", "r1/state.db").expect_code(0);
    assert_eq!(
        crate::backup::dump(&host.env.path("r1/state.db")),
        want_dump(&host, "want1.db"),
        "the first backup"
    );
    // An old contribution edited, one added: the next backup compares with the first.
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        "UPDATE contributions SET payload_json = '{\"edited\":1}' WHERE _rowid_ = 3;
         INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json, rowid)
           VALUES ('late', 'pr_merged', 'org/repo', '2020-01-01T00:00:00+00:00', '{}', NULL);",
    )
    .unwrap();
    drop(conn);
    let run = host.push("clone", 2, &["--no-push"]);
    run.expect_code(0);
    restore(&host, "clone", "latest", "r2/state.db").expect_code(0);
    assert_eq!(
        count("r2/state.db"),
        count("state.db"),
        "every row backed up"
    );
    let got = crate::backup::dump(&host.env.path("r2/state.db"));
    let want = want_dump(&host, "want2.db");
    assert!(got.contains("edited"), "the edited row is backed up");
    assert_eq!(got, want, "the later backup");
}

/// Which error a run reports must not depend on whether the backup has a previous one: a
/// database whose contributions the backup cannot copy (a generated column) and whose
/// notifications table lacks a column the export needs says the same thing either way.
#[test]
fn a_later_backup_reports_the_same_error_as_a_first_one() {
    let host = Host::for_case("basic");
    install(&host, 1);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        "ALTER TABLE contributions ADD COLUMN g INTEGER GENERATED ALWAYS AS (1) VIRTUAL;
         ALTER TABLE notifications_sent RENAME COLUMN sent_at TO sent;",
    )
    .unwrap();
    drop(conn);
    // A later backup (the clone holds the first one's cache) and a first one (a new clone).
    let later = host.push("clone", 2, &["--no-push"]);
    let first = host.push("other", 2, &["--no-push"]);
    assert_ne!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        later.code, first.code,
        "{}\n---\n{}",
        later.stderr, first.stderr
    );
    let last_line = |s: &str| s.lines().last().unwrap_or_default().to_owned();
    assert_eq!(last_line(&later.stderr), last_line(&first.stderr));
}

/// When every contributions range changed since the previous backup (a column added by a
/// Gitcord migration changes every fingerprint), the prescanned backup writes them all again:
/// it must hold no more of them in memory than a first backup does, which packs and forgets
/// its objects every few megabytes.
#[test]
fn a_later_backup_that_rewrites_every_range_keeps_its_memory_flat() {
    let host = Host::for_case("basic");
    install(&host, 1);
    // About 110 MB of rows, outside the window: more than a backup holds in memory at once.
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch("BEGIN").unwrap();
    {
        let mut insert = conn
            .prepare(
                "INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json)
                 VALUES ('bulk', 'pr_merged', 'org/repo', '2001-01-01T00:00:00+00:00', ?1)",
            )
            .unwrap();
        for i in 0..72_000 {
            insert
                .execute([format!("{{\"n\":{i},\"body\":\"{}\"}}", "x".repeat(1500))])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    drop(conn);
    let first = crate::hostile::measured(host.command("clone", 1, &["--no-push", "-v"]));
    first.run.expect_code(0);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch("ALTER TABLE contributions ADD COLUMN extra TEXT;")
        .unwrap();
    drop(conn);
    let later = crate::hostile::measured(host.command("clone", 2, &["--no-push", "-v"]));
    later.run.expect_code(0);
    // Every contributions range written again (the bulk rows fill about 128 of them).
    let line = later
        .run
        .stderr
        .lines()
        .find(|l| l.contains("backed up state.db as"))
        .unwrap_or_else(|| panic!("{}", later.run.stderr));
    let written: u64 = line
        .rsplit_once(": ")
        .and_then(|(_, r)| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(written > 250, "{line}");
    restore(&host, "clone", "latest", "r/state.db").expect_code(0);
    assert_eq!(
        crate::backup::dump(&host.env.path("r/state.db")),
        want_dump(&host, "want.db"),
    );
    assert!(
        later.max_rss_kib < first.max_rss_kib + 16 * 1024,
        "the later backup peaked at {} KiB, the first at {} KiB",
        later.max_rss_kib,
        first.max_rss_kib
    );
}

/// A backup cache written by the previous version (`cache 2`: lengths fingerprinted as eight
/// bytes; `cache 1`, SHA-256, is refused alike) is read as no cache: the next run backs up every range again without a warning, writes a cache of the
/// current version, and the run after it compares with that one (the prescan).
#[test]
fn a_cache_of_the_previous_version_is_rebuilt_once_quietly() {
    let host = Host::for_case("basic");
    install(&host, 1);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    let cache = host.env.path("clone/.git/gitcord-snapshot-backup-cache");
    let text = std::fs::read_to_string(&cache).unwrap();
    let (header, rest) = text.split_once('\n').unwrap();
    assert_eq!(header, "gitcord-snapshot backup cache 3");
    std::fs::write(&cache, format!("gitcord-snapshot backup cache 2\n{rest}")).unwrap();
    install(&host, 2);
    let run = host.push("clone", 2, &["--no-push", "-v"]);
    run.expect_code(0);
    // The one warning is the case's config (Gitcord's own writer is on), none about the cache.
    assert!(
        !run.stderr
            .lines()
            .any(|l| l.contains("warn: ") && l.contains("cache")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("written by an earlier version"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(" 0 kept;"), "{}", run.stderr);
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(text.starts_with("gitcord-snapshot backup cache 3\n"));
    install(&host, 4);
    let run = host.push("clone", 3, &["--no-push", "-v"]);
    run.expect_code(0);
    assert!(!run.stderr.contains(" 0 kept;"), "{}", run.stderr);
    restore(&host, "clone", "latest", "r/state.db").expect_code(0);
    assert_eq!(
        crate::backup::dump(&host.env.path("r/state.db")),
        want_dump(&host, "want.db"),
    );
}

/// A damaged page in the middle of `contributions` is named the same way whether the backup
/// reads the table itself (a first backup) or the export's scan fingerprints it (a later one):
/// "corrupt", as without a backup, not a generic bad-data line.
#[test]
fn a_damaged_contributions_page_reads_as_corrupt_in_a_first_and_a_later_backup() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        "INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json)
         WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 20000)
         SELECT 'bulk', 'pr_merged', 'org/repo', '2001-01-01T00:00:00+00:00', printf('{\"n\":%d}', v)
         FROM n;",
    )
    .unwrap();
    drop(conn);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    // A leaf page of contributions, well inside the table, overwritten with garbage.
    crate::backup::damage_leaf_page(&host.env.path("state.db"), "contributions", 100);
    let without = {
        let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
        host.env
            .write("nobackup.yaml", format!("{config}  backup: false\n"));
        host.run(&[
            "export",
            "--config",
            "nobackup.yaml",
            "--roles-file",
            "roles.json",
            "--out",
            "out",
        ])
    };
    let later = host.push("clone", 2, &["--no-push"]);
    let first = host.push("other", 2, &["--no-push"]);
    let last_line = |s: &str| s.lines().last().unwrap_or_default().to_owned();
    assert_eq!(first.code, 65, "{}", first.stderr);
    assert_eq!(later.code, first.code, "{}", later.stderr);
    assert!(
        last_line(&without.stderr).contains("is corrupt or not an SQLite database"),
        "{}",
        without.stderr
    );
    assert!(
        last_line(&first.stderr).contains("is corrupt or not an SQLite database"),
        "{}",
        first.stderr
    );
    assert!(
        last_line(&later.stderr).contains("is corrupt or not an SQLite database"),
        "{}",
        later.stderr
    );
}

/// The backup a chain of runs ends with (each later one fingerprinting `contributions` in the
/// export's scan and writing only what changed) is the backup a first run of the same database
/// writes: the same `tables/` tree, byte for byte, over states with each kind of change (an old
/// contribution edited, rows added and deleted). (The audit log differs: each push appends its
/// own event to it.)
#[test]
fn a_chain_of_later_backups_ends_with_the_tree_a_first_backup_writes() {
    let host = Host::for_case("basic");
    for v in 1..=4 {
        install(&host, v);
        host.push("chain", v, &["--no-push"]).expect_code(0);
        host.push(&format!("first{v}"), v, &["--no-push"])
            .expect_code(0);
        let tree = |clone: &str| {
            crate::support::git::git(
                &host.clone_path(clone).join(".git"),
                &["rev-parse", &format!("{}:tables", crate::backup::BRANCH)],
            )
        };
        let (a, b) = (tree("chain"), tree(&format!("first{v}")));
        assert_eq!(a, b, "state {v}");
    }
}

/// Contributions at both ends of i64 and far apart: a later backup (prescanned) after rows at
/// the edges changed and went restores to the database and writes the tree a first backup
/// writes.
#[test]
fn contributions_at_the_ends_of_i64_are_backed_up_by_a_later_backup() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let row = |id: &str, payload: &str| {
        format!(
            "INSERT INTO contributions (id, github_user, event_type, repo, created_at, payload_json)
             VALUES ({id}, 'edge', 'pr_merged', 'org/repo', '2024-01-10T00:00:00+00:00', '{payload}');"
        )
    };
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        &[
            row("-9223372036854775808", "{}"),
            row("-5", "{}"),
            row("4611686018427387904", "{}"),
            row("9223372036854775806", "{}"),
        ]
        .concat(),
    )
    .unwrap();
    drop(conn);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(&format!(
        "UPDATE contributions SET payload_json = '{{\"edited\":1}}' WHERE id = -9223372036854775808;
         DELETE FROM contributions WHERE id = -5;
         UPDATE contributions SET created_at = 20240110 WHERE id = 4611686018427387904;
         {}",
        row("9223372036854775807", "{}")
    ))
    .unwrap();
    drop(conn);
    let run = host.push("clone", 2, &["--no-push", "-v"]);
    run.expect_code(0);
    assert!(!run.stderr.contains(" 0 kept;"), "{}", run.stderr);
    host.push("first", 2, &["--no-push"]).expect_code(0);
    let tables = |clone: &str| {
        crate::support::git::git(
            &host.clone_path(clone).join(".git"),
            &["rev-parse", &format!("{}:tables", crate::backup::BRANCH)],
        )
    };
    assert_eq!(tables("clone"), tables("first"));
    restore(&host, "clone", "latest", "r/state.db").expect_code(0);
    assert_eq!(
        crate::backup::dump(&host.env.path("r/state.db")),
        want_dump(&host, "want.db"),
    );
}

/// A purely local clone (no remote: no `remote_url`, no `repo_path`) pushes nothing, so its
/// backup branch has no queue to check: a lost pack of backup chunks is written again by the
/// next run, as before, without setting the clone aside (and no run walks the whole backup
/// history looking for a queue).
#[test]
fn a_purely_local_clone_is_not_rebuilt_for_a_lost_backup_pack() {
    let host = Host::for_case("basic");
    let config = std::fs::read_to_string(host.env.path("config.yaml")).unwrap();
    let config = crate::support::testenv::remove_key(&config, "snapshots", "remote_url");
    host.env.write(
        "config.yaml",
        crate::support::testenv::remove_key(&config, "snapshots", "repo_path"),
    );
    install(&host, 1);
    host.push("local", 1, &["--no-push"]).expect_code(0);
    let git_dir = host.clone_path("local").join(".git");
    let remotes = crate::support::git::git(&git_dir, &["remote"]);
    assert_eq!(remotes.trim(), "", "premise: no remote");
    for e in std::fs::read_dir(git_dir.join("objects/pack")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    install(&host, 2);
    let run = host.push("local", 2, &["--no-push", "-v"]);
    run.expect_code(0);
    assert!(
        run.stderr
            .contains("is missing from the clone; backing up every range again")
            && !run.stderr.contains("moving it aside"),
        "{}",
        run.stderr
    );
    restore(&host, "local", "latest", "r/state.db").expect_code(0);
    assert_eq!(
        crate::backup::dump(&host.env.path("r/state.db")),
        want_dump(&host, "want.db"),
    );
}
