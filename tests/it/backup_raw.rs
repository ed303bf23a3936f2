//! The backup's reads through SQLite's C API (`src/input/state/raw.rs`: the export's scan
//! fingerprinting `contributions`, and the backup's own reads of every other table and of the
//! ranges that changed) on databases the other tests do not build: a damaged page in a table
//! only the backup reads, a database stored as UTF-16, and tables wider than the reads'
//! inline rows, addressed by `oid`, or empty. A later backup (which keeps what did not
//! change) must end with the tree a first backup of the same state writes, and restore to the
//! database.

use crate::backup::{dump, install, restore, BRANCH};
use crate::support::host::Host;

/// The backup's `tables/` tree in `clone`.
fn tables(host: &Host, clone: &str) -> String {
    crate::support::git::git(
        &host.clone_path(clone).join(".git"),
        &["rev-parse", &format!("{BRANCH}:tables")],
    )
}

/// `sqlite3 .dump` of a copy of `host`'s state.db with the secret column as restore leaves it.
fn want_dump(host: &Host) -> Vec<u8> {
    crate::backup::dump_bytes(&crate::backup_prescan::as_restored(host, "want.db"))
}

/// The `N range(s) written (...), M kept` of a `-v` run's backup line.
fn written_and_kept(stderr: &str) -> (u64, u64) {
    let line = stderr
        .lines()
        .find(|l| l.contains("backed up state.db as"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let number_before = |word: &str| -> u64 {
        let at = line.find(word).unwrap_or_else(|| panic!("{line}"));
        line[..at]
            .split_whitespace()
            .last()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"))
    };
    (number_before("range(s) written"), number_before("kept"))
}

/// A later backup of `host`'s current state in `clone` (which holds an earlier one) against a
/// first backup of the same state in a new clone: the same `tables/` tree, some ranges kept,
/// and restore gives the database back.
fn assert_later_is_first(host: &Host, clone: &str, n: u32) {
    let later = host.push(clone, n, &["--no-push", "-v"]);
    later.expect_code(0);
    let (written, kept) = written_and_kept(&later.stderr);
    assert!(written > 0 && kept > 0, "{}", later.stderr);
    let first = format!("first{n}");
    host.push(&first, n, &["--no-push"]).expect_code(0);
    assert_eq!(tables(host, clone), tables(host, &first));
    let to = format!("r{n}/state.db");
    restore(host, clone, "latest", &to).expect_code(0);
    assert!(
        crate::backup::dump_bytes(&host.env.path(&to)) == want_dump(host),
        "the restored database's dump differs"
    );
}

/// A damaged page in the middle of a table only the backup reads (the export never reads it,
/// and `contributions` is not involved): "corrupt", exit 65, in a first backup and in a later
/// one alike, as a damaged page anywhere else reads.
#[test]
fn a_damaged_page_of_a_table_only_the_backup_reads_is_corrupt_in_a_first_and_a_later_backup() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        "CREATE TABLE extra (n, t);
         INSERT INTO extra
         WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 20000)
         SELECT v, printf('row %d', v) FROM n;",
    )
    .unwrap();
    drop(conn);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    crate::backup::damage_leaf_page(&host.env.path("state.db"), "extra", 40);
    let later = host.push("clone", 2, &["--no-push"]);
    let first = host.push("other", 2, &["--no-push"]);
    for run in [&later, &first] {
        run.expect_error(
            65,
            &[
                "state database ./state.db is corrupt or not an SQLite database",
                "database disk image is malformed",
            ],
        );
    }
    assert_eq!(later.stderr, first.stderr);
}

/// A database stored as UTF-16 (SQLite converts its text to UTF-8 as it is read): the
/// export's scan fingerprints `contributions` as the backup's own read of a first backup did,
/// so a later backup keeps the ranges that did not change.
#[test]
fn a_utf16_database_is_backed_up_by_a_later_backup_as_by_a_first_one() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let utf8 = dump(&host.env.path("state.db"));
    std::fs::remove_file(host.env.path("state.db")).unwrap();
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch("PRAGMA encoding = 'UTF-16le';").unwrap();
    conn.execute_batch(&utf8).unwrap();
    conn.execute_batch(
        "INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json)
         WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 2000)
         SELECT 'zoë', 'pr_merged', 'org/déjà', '2001-01-01T00:00:00+00:00',
                printf('{\"n\":%d,\"t\":\"✓ %d\"}', v, v) FROM n;",
    )
    .unwrap();
    let encoding: String = conn.query_row("PRAGMA encoding", [], |r| r.get(0)).unwrap();
    assert_eq!(encoding, "UTF-16le", "premise");
    drop(conn);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        "UPDATE contributions SET payload_json = '{\"édité\":1}' WHERE rowid = 3;
         UPDATE identity_links SET github_user = github_user || 'é' WHERE rowid = 1;",
    )
    .unwrap();
    drop(conn);
    assert_later_is_first(&host, "clone", 2);
}

/// Tables the reads take apart differently: one wider than their inline row (16 values)
/// holding every kind of value, one whose rowid is only reachable as `oid`, and an empty one;
/// rows changed, added and deleted in several ranges of each.
#[test]
fn wide_oid_addressed_and_empty_tables_are_backed_up_by_a_later_backup_as_by_a_first_one() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let mut sql = String::from("CREATE TABLE wide (");
    sql += &(0..20)
        .map(|c| format!("c{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    sql += ");
        CREATE TABLE addressed (rowid TEXT, _rowid_ REAL, b);
        CREATE TABLE empty (a, b);
        INSERT INTO wide (rowid, c0, c1, c2, c3, c4, c17, c18, c19)
        WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 3000)
        SELECT v * 7, v, v * 0.5, x'', '', NULL, CAST(x'ff00fe' AS TEXT), zeroblob(v % 5),
               'a' || char(0) || 'b' FROM n;
        INSERT INTO addressed (oid, rowid, _rowid_, b)
        WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < 1500)
        SELECT v * 3, 'r' || v, v * 1.5, CASE WHEN v % 2 THEN x'01' ELSE -v END FROM n;";
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(&sql).unwrap();
    drop(conn);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        "UPDATE wide SET c19 = 'changed' WHERE rowid IN (7, 7000, 14000);
         DELETE FROM wide WHERE rowid BETWEEN 10000 AND 11000;
         INSERT INTO wide (rowid, c5) VALUES (-9223372036854775808, 1e308);
         UPDATE addressed SET b = NULL WHERE oid IN (3, 3000);
         DELETE FROM addressed WHERE oid = 4500;",
    )
    .unwrap();
    drop(conn);
    assert_later_is_first(&host, "clone", 2);
}
