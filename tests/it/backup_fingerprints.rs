//! The backup's fingerprints against databases built to make two different ranges hash the
//! same bytes: a range is kept from the previous backup only when its rows (and the columns
//! they are read under) are the same, whatever they hold.

use crate::backup::{install, restore, BRANCH};
use crate::support::host::Host;

/// The backup's `tables/` tree in `clone`.
fn tables(host: &Host, clone: &str) -> String {
    crate::support::git::git(
        &host.clone_path(clone).join(".git"),
        &["rev-parse", &format!("{BRANCH}:tables")],
    )
}

/// A column dropped between two backups, and the range's one row replaced by one whose text
/// spells what the dropped column's name and the old row were fingerprinted as (a column
/// named tag 3 and length 10, then rowid 5 and two NULLs): the range is not the same, so the
/// later backup writes it again, as a first backup of the same state does, and restore gives
/// the new row back.
#[test]
fn a_dropped_column_cannot_make_a_changed_range_look_unchanged() {
    let host = Host::for_case("basic");
    install(&host, 1);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch("CREATE TABLE t (a, \"\u{3}\n\"); INSERT INTO t (rowid) VALUES (5);")
        .unwrap();
    drop(conn);
    host.push("clone", 1, &["--no-push"]).expect_code(0);
    let conn = rusqlite::Connection::open(host.env.path("state.db")).unwrap();
    conn.execute_batch(
        "ALTER TABLE t DROP COLUMN \"\u{3}\n\";
         DELETE FROM t;
         INSERT INTO t (rowid, a) VALUES (2, CAST(x'05000000000000000000' AS TEXT));",
    )
    .unwrap();
    drop(conn);
    host.push("clone", 2, &["--no-push"]).expect_code(0);
    host.push("first", 2, &["--no-push"]).expect_code(0);
    assert_eq!(tables(&host, "clone"), tables(&host, "first"));
    restore(&host, "clone", "latest", "r/state.db").expect_code(0);
    let conn = rusqlite::Connection::open(host.env.path("r/state.db")).unwrap();
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT rowid, hex(a) FROM t")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(2, "05000000000000000000".to_owned())]);
}
