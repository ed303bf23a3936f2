//! The reader's unit tests, apart from `mod.rs` to keep that file about reading.

use super::*;

/// A minimal Gitcord database with `rows` as contributions (all inside the window).
fn db_with(name: &str, rows: &[(rusqlite::types::Value, &str, &str)]) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "gitcord-snapshot-state-{name}-{}.db",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE identity_links (discord_user_id TEXT, github_user TEXT, verified INTEGER);
         CREATE TABLE scores (github_user TEXT, period_start TEXT, period_end TEXT, points INTEGER);
         CREATE TABLE contributions (id INTEGER PRIMARY KEY, github_user TEXT, event_type TEXT,
             repo TEXT, created_at TEXT, payload_json TEXT);",
    )
    .unwrap();
    let mut insert = conn
        .prepare("INSERT INTO contributions (github_user, event_type, repo, created_at, payload_json) VALUES (?1, ?2, ?3, '2024-01-10T00:00:00+00:00', ?4)")
        .unwrap();
    conn.execute_batch("BEGIN").unwrap();
    for (user, repo, payload) in rows {
        insert
            .execute(rusqlite::params![user, "pr_merged", repo, payload])
            .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();
    path
}

/// Counts rows as `user|payload`, the way [`read`] hands them out: added on several
/// threads, duplicates removed again, merged.
struct Rows {
    counts: std::collections::BTreeMap<String, i64>,
    refuse: Option<String>,
}

impl Accumulator for Rows {
    fn add(&mut self, c: Contribution<'_>) -> Result<(), String> {
        if self.refuse.as_deref() == Some(c.payload_json) {
            return Err("refused".into());
        }
        *self
            .counts
            .entry(format!("{}|{}", c.github_user, c.payload_json))
            .or_default() += 1;
        Ok(())
    }
    fn remove(&mut self, c: Contribution<'_>) -> Result<(), String> {
        *self
            .counts
            .entry(format!("{}|{}", c.github_user, c.payload_json))
            .or_default() -= 1;
        Ok(())
    }
    fn merge(&mut self, other: Rows) {
        for (k, n) in other.counts {
            *self.counts.entry(k).or_default() += n;
        }
    }
}

fn options(sharing: Sharing) -> ReadOptions {
    ReadOptions {
        period_start: "2024-01-01T00:00:00+00:00".into(),
        period_end: "2024-01-31T00:00:00+00:00".into(),
        busy_timeout: Duration::from_secs(1),
        sharing,
    }
}

/// Every row counted, with how often (0 left out), or the read's error.
fn read_all(
    path: &Path,
    sharing: Sharing,
    refuse: Option<&str>,
) -> Result<Vec<(String, i64)>, StateError> {
    read_counting(path, sharing, refuse).map(|(rows, _)| rows)
}

/// [`read_all`], and how many accumulators (one per connection) the read made.
fn read_counting(
    path: &Path,
    sharing: Sharing,
    refuse: Option<&str>,
) -> Result<(Vec<(String, i64)>, usize), StateError> {
    let made = std::sync::atomic::AtomicUsize::new(0);
    let new = || {
        made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Rows {
            counts: Default::default(),
            refuse: refuse.map(str::to_owned),
        }
    };
    let (_, rows) = read(path, &options(sharing), &new)?;
    let rows = rows.counts.into_iter().filter(|(_, n)| *n != 0).collect();
    Ok((rows, made.into_inner()))
}

/// The sharings tried: one connection, and two or three with chunks of a few rowids.
fn sharings() -> Vec<Sharing> {
    let mut out = vec![Sharing {
        connections: 1,
        min_chunk_rowids: 16_384,
    }];
    for connections in [2, 3] {
        for min_chunk_rowids in [1, 5, 64] {
            out.push(Sharing {
                connections,
                min_chunk_rowids,
            });
        }
    }
    out
}

#[test]
fn each_distinct_row_is_counted_once_on_any_number_of_connections() {
    use rusqlite::types::Value::Text;
    // Every third row repeats an earlier one, often from another chunk; rows differing
    // only in `repo` are both kept.
    let mut rows = Vec::new();
    for i in 0..3000 {
        let n = if i % 3 == 2 { i / 7 } else { i };
        rows.push((Text(format!("u{}", n % 50)), "r", format!("{{\"n\":{n}}}")));
    }
    rows.push((Text("u1".into()), "other", "{\"n\":1}".into()));
    let refs: Vec<_> = rows
        .iter()
        .map(|(u, r, p)| (u.clone(), *r, p.as_str()))
        .collect();
    let path = db_with("distinct", &refs);
    let mut want = std::collections::BTreeMap::new();
    let mut distinct = HashSet::new();
    for (u, r, p) in &rows {
        let Text(u) = u else { unreachable!() };
        if distinct.insert((u.clone(), *r, p.clone())) {
            *want.entry(format!("{u}|{p}")).or_insert(0) += 1;
        }
    }
    let want: Vec<(String, i64)> = want.into_iter().collect();
    assert!(
        want.iter().any(|(_, n)| *n == 2),
        "a row kept twice (repo differs)"
    );
    for sharing in sharings() {
        for _ in 0..5 {
            assert_eq!(read_all(&path, sharing, None).unwrap(), want, "{sharing:?}");
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// `n` good rows, then `last_of_first` as the last row of the first chunk of `n` rowids and
/// `first_of_second` as the first row of the second.
fn two_chunks(
    name: &str,
    n: usize,
    last_of_first: (rusqlite::types::Value, &str),
    first_of_second: (rusqlite::types::Value, &str),
) -> PathBuf {
    use rusqlite::types::Value::Text;
    let mut rows: Vec<(rusqlite::types::Value, &str, String)> = (0..n - 1)
        .map(|i| (Text(format!("u{i}")), "r", "{}".to_string()))
        .collect();
    rows.push((last_of_first.0, "r", last_of_first.1.to_string()));
    rows.push((first_of_second.0, "r", first_of_second.1.to_string()));
    for i in 0..n - 1 {
        rows.push((Text(format!("v{i}")), "r", "{}".to_string()));
    }
    let refs: Vec<_> = rows
        .iter()
        .map(|(u, r, p)| (u.clone(), *r, p.as_str()))
        .collect();
    db_with(name, &refs)
}

#[test]
fn the_failure_at_the_lowest_row_is_reported_not_the_first_found() {
    use rusqlite::types::Value::{Blob, Text};
    // Two chunks of 4,000 rowids. On two connections, one takes the tables (quick here)
    // and then the second chunk, failing at once on its first row, while the other is
    // still scanning towards the first chunk's last row: the failure found first is the
    // later row, and must not be the one reported.
    let n = 4000;
    let sharings = [1, 2, 3].map(|connections| Sharing {
        connections,
        min_chunk_rowids: n as i64,
    });
    let refused = two_chunks(
        "refused",
        n,
        (Text("a".into()), "bad"),
        (Blob(vec![7]), "{}"),
    );
    let blob = two_chunks("blob", n, (Blob(vec![7]), "{}"), (Text("b".into()), "bad"));
    for sharing in sharings {
        for _ in 0..10 {
            let e = read_all(&refused, sharing, Some("bad"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("contributions row {n}: refused")),
                "{sharing:?}: {e}"
            );
            let e = read_all(&blob, sharing, Some("bad"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("contributions.github_user holds a BLOB, not text"),
                "{sharing:?}: {e}"
            );
        }
    }
    for path in [refused, blob] {
        let _ = std::fs::remove_file(&path);
    }
}

#[test]
fn a_failure_in_the_other_tables_comes_before_one_in_the_contributions() {
    use rusqlite::types::Value::Text;
    // The very first contribution fails, found at once on a second connection, while the
    // tables fail only after 20,000 identity rows, on the one score row.
    let path = two_chunks(
        "tables",
        3000,
        (Text("a".into()), "{}"),
        (Text("b".into()), "{}"),
    );
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE contributions SET payload_json = 'bad' WHERE rowid = 1;
         INSERT INTO scores VALUES ('x', 'then', 'never', 1);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
         INSERT INTO identity_links SELECT 'd' || i, 'g' || i, 1 FROM n;",
    )
    .unwrap();
    drop(conn);
    let sharings = [1, 2, 3].map(|connections| Sharing {
        connections,
        min_chunk_rowids: 1,
    });
    for sharing in sharings {
        for _ in 0..10 {
            let e = read_all(&path, sharing, Some("bad"))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("scores.period_end holds \"never\""),
                "{sharing:?}: {e}"
            );
        }
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_writer_waiting_to_commit_leaves_the_read_on_one_connection() {
    use rusqlite::types::Value::Text;
    let path = db_with("pending", &[(Text("a".into()), "r", "{}")]);
    // A long timeout on the first connection: a companion that waited like it would hang.
    let first = Db::open(&path, Duration::from_secs(60)).unwrap();
    first.conn.execute_batch("BEGIN DEFERRED").unwrap();
    first.schema().unwrap();
    // Nothing is waiting: a companion starts.
    assert_eq!(first.companions(1).unwrap().len(), 1);
    // A writer that has written and wants to commit holds PENDING and waits for our
    // SHARED lock; a new reader can no longer start.
    let writer_path = path.clone();
    let writer = std::thread::spawn(move || {
        let w = Connection::open(&writer_path).unwrap();
        w.busy_timeout(Duration::from_secs(30)).unwrap();
        w.execute_batch("BEGIN IMMEDIATE; INSERT INTO scores VALUES ('x', 'a', 'b', 1); COMMIT;")
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let companions = loop {
        let got = first.companions(1).unwrap();
        if got.is_empty() || std::time::Instant::now() > deadline {
            break got;
        }
        drop(got);
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        companions.is_empty(),
        "a companion started while a writer held PENDING"
    );
    // The writer gets its turn once the first connection's transaction ends.
    first.conn.execute_batch("COMMIT").unwrap();
    writer.join().unwrap().unwrap();
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_wal_database_is_read_on_one_connection_and_counted_the_same() {
    use rusqlite::types::Value::Text;
    let path = db_with(
        "wal",
        &[(Text("a".into()), "r", "{}"), (Text("a".into()), "r", "{}")],
    );
    let writer = Connection::open(&path).unwrap();
    let mode: String = writer
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let first = Db::open(&path, Duration::from_secs(1)).unwrap();
    first.conn.execute_batch("BEGIN DEFERRED").unwrap();
    first.schema().unwrap();
    assert!(first.companions(2).unwrap().is_empty());
    drop(first);
    let sharing = Sharing {
        connections: 3,
        min_chunk_rowids: 1,
    };
    assert_eq!(
        read_all(&path, sharing, None).unwrap(),
        [("a|{}".to_string(), 1)]
    );
    drop(writer);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[test]
fn utf8_accepts_ascii_and_utf8_and_refuses_the_rest() {
    assert_eq!(utf8(b"alice"), Some("alice"));
    assert_eq!(utf8("zoë 漢字".as_bytes()), Some("zoë 漢字"));
    assert_eq!(utf8(b""), Some(""));
    assert_eq!(utf8(b"bad \xff"), None);
    assert_eq!(utf8(b"\xc3"), None);
}

#[test]
fn cells_order_like_sqlite_binary_collation() {
    use std::cmp::Ordering::*;
    assert_eq!(
        compare_cells(&Cell::Text("Z".into()), &Cell::Text("a".into())),
        Less
    );
    assert_eq!(
        compare_cells(&Cell::Text("é".into()), &Cell::Text("z".into())),
        Greater
    );
    assert_eq!(compare_cells(&Cell::Int(9), &Cell::Text("1".into())), Less);
    assert_eq!(compare_numbers(&Cell::Int(2), &Cell::Real(1.5)), Greater);
}

/// The backup's side of the window scan: a hook that fingerprints the contributions itself,
/// one row at a time in rowid order on one connection, and keeps what the scan handed it.
struct Probe {
    spec: backup::Prescan,
    own: Vec<backup::RangeDigest>,
    columns: Vec<String>,
    got: Option<backup::Prescanned>,
    /// What [`backup::Hook::read`] was told.
    prescanned: bool,
}

impl backup::Hook for Probe {
    fn prescan(&self) -> Option<backup::Prescan> {
        Some(self.spec)
    }

    fn read(&mut self, reader: &backup::Reader<'_>, prescanned: bool) -> Result<(), StateError> {
        self.prescanned = prescanned;
        let table = backup::PRESCANNED_TABLE;
        self.columns = reader.columns(table)?;
        let secret: Vec<bool> = (self.columns.iter())
            .map(|c| (self.spec.is_secret)(table, c))
            .collect();
        let (spec, columns, own) = (&self.spec, &self.columns, &mut self.own);
        let mut current: Option<(u64, backup::Fingerprint, u64)> = None;
        let done = |c: Option<(u64, backup::Fingerprint, u64)>,
                    own: &mut Vec<backup::RangeDigest>| {
            if let Some((range, fp, rows)) = c {
                own.push(backup::RangeDigest {
                    range,
                    fingerprint: fp.finish(),
                    rows,
                });
            }
        };
        reader.rows(table, columns, None, &mut |rowid, values| {
            let range = (spec.range_of)(rowid);
            if current.as_ref().is_none_or(|c| c.0 != range) {
                done(current.take(), own);
                current = Some((
                    range,
                    backup::Fingerprint::new(&spec.key, spec.format, columns),
                    0,
                ));
            }
            if let Some((_, fp, rows)) = current.as_mut() {
                fp.row(rowid, values, &secret);
                *rows += 1;
            }
            Ok(())
        })?;
        done(current, own);
        Ok(())
    }

    fn finish(
        &mut self,
        _: &backup::Reader<'_>,
        prescanned: Option<backup::Prescanned>,
    ) -> Result<(), StateError> {
        self.got = prescanned;
        Ok(())
    }
}

/// A prescan of 16-rowid ranges, nothing secret.
const SMALL_RANGES: backup::Prescan = backup::Prescan {
    key: [3; 32],
    format: 9,
    range_rowids: 16,
    range_of: |rowid| ((rowid as u64) ^ (1 << 63)) >> 4,
    is_secret: |_, _| false,
};

/// The window read with a [`Probe`] asking for `spec`: it counts what a read without a hook
/// counts, and the probe says what the scan handed it.
fn probed(path: &Path, sharing: Sharing, spec: backup::Prescan) -> Probe {
    let want = read_all(path, sharing, None).unwrap();
    let new = || Rows {
        counts: Default::default(),
        refuse: None,
    };
    let mut probe = Probe {
        spec,
        own: Vec::new(),
        columns: Vec::new(),
        got: None,
        prescanned: false,
    };
    let (_, counted) = read_with(path, &options(sharing), &new, Some(&mut probe)).unwrap();
    let counted: Vec<(String, i64)> = counted
        .counts
        .into_iter()
        .filter(|(_, n)| *n != 0)
        .collect();
    assert_eq!(counted, want, "{sharing:?}: the window counts the same");
    probe
}

#[test]
fn the_window_scan_fingerprints_every_range_as_a_sequential_read_does() {
    use rusqlite::types::Value::Text;
    let mut rows = Vec::new();
    for i in 0..3000 {
        let n = if i % 3 == 2 { i / 7 } else { i };
        rows.push((Text(format!("u{}", n % 50)), "r", format!("{{\"n\":{n}}}")));
    }
    let refs: Vec<_> = rows
        .iter()
        .map(|(u, r, p)| (u.clone(), *r, p.as_str()))
        .collect();
    let path = db_with("prescan", &refs);
    {
        // Rows outside the window (before, after, not text), gaps, and negative rowids: all
        // fingerprinted, none counted.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "UPDATE contributions SET created_at = '2023-12-31T00:00:00+00:00' WHERE id % 11 = 0;
             UPDATE contributions SET created_at = '2024-02-01T00:00:00+00:00' WHERE id % 13 = 0;
             UPDATE contributions SET created_at = NULL WHERE id % 17 = 0;
             UPDATE contributions SET created_at = 20240110 WHERE id % 19 = 0;
             DELETE FROM contributions WHERE id BETWEEN 100 AND 180 OR id % 23 = 0;
             INSERT INTO contributions VALUES (-40, 'neg', 'pr_merged', 'r', '2024-01-10T00:00:00+00:00', '{}');
             INSERT INTO contributions VALUES (-3, 'neg', 'pr_merged', 'r', '2023-01-10T00:00:00+00:00', '{}');",
        )
        .unwrap();
    }
    for sharing in sharings() {
        let probe = probed(&path, sharing, SMALL_RANGES);
        assert!(probe.prescanned, "{sharing:?}: the hook was told");
        let got = probe.got.expect("the scan's fingerprints");
        assert_eq!(got.columns, probe.columns);
        assert!(probe.own.len() > 150, "{} ranges", probe.own.len());
        assert_eq!(got.ranges, probe.own, "{sharing:?}");
    }
    let _ = std::fs::remove_file(&path);
}

/// A contributions table with a column named `rowid`: the window scan reads that column as
/// the rowid (its bounds and chunks), so it cannot fingerprint the table by its real rowids.
/// It declines (the backup reads the table itself), and counts what it counts without a hook.
#[test]
fn the_window_scan_declines_to_fingerprint_a_table_with_a_column_named_rowid() {
    use rusqlite::types::Value::Text;
    let rows: Vec<_> = (0..600)
        .map(|i| (Text(format!("u{}", i % 7)), "r", "{}"))
        .collect();
    let path = db_with("prescan-rowid-column", &rows);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE contributions ADD COLUMN rowid INTEGER;
             UPDATE contributions SET rowid = _rowid_ WHERE _rowid_ <= 20;",
        )
        .unwrap();
    }
    for sharing in sharings() {
        let probe = probed(&path, sharing, SMALL_RANGES);
        assert!(probe.own.len() > 30, "{} ranges", probe.own.len());
        assert_eq!(probe.got, None, "{sharing:?}: declined");
        assert!(!probe.prescanned, "{sharing:?}: the hook was told");
    }
    let _ = std::fs::remove_file(&path);
}

/// The prescan over a table wider than the scan's inline row (16 values): extra columns of
/// every type (one named `_rowid_`, which leaves `rowid` the real one), rowids at both ends
/// of i64 and far apart, duplicates across ranges, on one to four connections and in WAL.
#[test]
fn the_window_scan_fingerprints_a_wide_sparse_table_on_up_to_four_connections_and_in_wal() {
    use rusqlite::types::Value::Text;
    let rows: Vec<_> = (0..700)
        .map(|i| {
            (
                Text(format!("u{}", i % 9)),
                "r",
                if i % 4 == 0 { "{}" } else { "{\"a\":1}" },
            )
        })
        .collect();
    let path = db_with("prescan-wide", &rows);
    {
        let conn = Connection::open(&path).unwrap();
        let mut sql = String::new();
        for c in 0..14 {
            sql += &format!("ALTER TABLE contributions ADD COLUMN c{c};");
        }
        sql += "ALTER TABLE contributions ADD COLUMN _rowid_ TEXT;
            UPDATE contributions SET c0 = id, c1 = id * 0.5, c2 = x'00ff', c3 = 't' || id,
                c13 = CASE WHEN id % 3 = 0 THEN NULL ELSE id END, _rowid_ = 'x';
            UPDATE contributions SET id = id * 1000003 WHERE id % 5 = 0;
            INSERT INTO contributions (id, github_user, event_type, repo, created_at, payload_json)
              VALUES (-9223372036854775808, 'min', 'pr_merged', 'r', '2024-01-10T00:00:00+00:00', '{}'),
                     (9223372036854775807, 'max', 'pr_merged', 'r', '2024-01-10T00:00:00+00:00', '{}'),
                     (9223372036854775000, 'u1', 'pr_merged', 'r', '2024-01-10T00:00:00+00:00', '{}');";
        conn.execute_batch(&sql).unwrap();
    }
    let spec = backup::Prescan {
        key: [5; 32],
        format: 2,
        range_rowids: 256,
        range_of: |rowid| ((rowid as u64) ^ (1 << 63)) >> 8,
        is_secret: |_, c| c == "c3",
    };
    let mut sharings = sharings();
    sharings.push(Sharing {
        connections: 4,
        min_chunk_rowids: 1,
    });
    // Rollback journal (shared out between connections), then WAL (read on one).
    for (mode, sharing) in ["DELETE", "WAL"]
        .into_iter()
        .flat_map(|m| sharings.iter().map(move |s| (m, *s)))
    {
        let conn = Connection::open(&path).unwrap();
        let set: String = conn
            .query_row(&format!("PRAGMA journal_mode = {mode}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(set.to_uppercase(), mode);
        drop(conn);
        let probe = probed(&path, sharing, spec);
        assert!(probe.prescanned, "{sharing:?}");
        let got = probe.got.expect("the scan's fingerprints");
        assert_eq!(got.columns.len(), 21);
        assert_eq!(got.ranges, probe.own, "{sharing:?}");
        assert!(got.ranges.len() > 140, "{}", got.ranges.len());
    }
    let _ = std::fs::remove_file(&path);
}
