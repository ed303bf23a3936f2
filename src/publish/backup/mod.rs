//! The backup branch: one commit per snapshot holding all of `state.db` and the audit log in
//! the format of [`crate::snapshot::backup`], written incrementally.
//!
//! The branch (`snapshots.backup_branch`, default `gitcord-backup`) has its own root commit, so
//! it shares nothing with the readers' branch: `git clone --single-branch` of the snapshot
//! branch, or GitHub's API on it, never sees backup data.
//!
//! A run costs what changed, never the size of the database. Inside the snapshot's read
//! transaction every table is scanned once (`contributions` by the export's own window scan,
//! which fingerprints its ranges for us: [`Hook::prescan`]), each rowid range's keyed
//! fingerprint is compared
//! with the [`Cache`] of the previous backup (fingerprint → git object per range, kept in the
//! clone's `.git`, checked against the branch tip's tree and rebuilt when it does not match), and
//! only the ranges whose fingerprint changed are serialized (their rows read again, still inside
//! the transaction). Unchanged ranges keep their git objects, so a run where nothing changed
//! writes a manifest, a few small trees and a commit.
//!
//! Backup commits are made like snapshot commits: the fixed author at the snapshot time, signed
//! when a key is configured, deterministic. They are queued, pushed in the same push as the
//! snapshot branch, and replayed onto another writer's backups (same trees, new parents).
//! `prune` never touches this branch: history keeps every backup.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use git2::{Oid, Repository, Signature, Time};
use rusqlite::types::ValueRef;

use crate::input::config::{Config, ConfigError};
use crate::input::state::backup::{
    Fingerprint, Hook, MasterRow, Prescan, Prescanned, Reader, PRESCANNED_TABLE,
};
use crate::input::state::StateError;
use crate::publish::clone::{Author, DataRepo, GitContext, RepoError};
use crate::snapshot::backup::{
    self as format, AuditEntry, Manifest, Redacted, SchemaRow, SnapshotRef, TableEntry,
};
use crate::time::Timestamp;

mod branch;
mod salvage;
use branch::move_ref;
pub use branch::{
    exists, find, integrate, local_tip, queued, read_manifest, remote_tip, set_backup_remote,
    set_remote_tip, Found, BACKUP_REMOTE,
};
pub use salvage::salvage;

/// The cache file in the clone's `.git`.
const CACHE_FILE: &str = "gitcord-snapshot-backup-cache";
const CACHE_HEADER: &str = "gitcord-snapshot backup cache 3";
/// Caches whose fingerprints no longer compare (version 1: SHA-256; 2: lengths as eight
/// bytes): read as no cache, quietly.
const OLD_CACHE_HEADERS: &[&str] = &[
    "gitcord-snapshot backup cache 1",
    "gitcord-snapshot backup cache 2",
];

/// The backup branch, `None` when `snapshots.backup: false`.
pub fn branch(config: &Config) -> Result<Option<String>, ConfigError> {
    if !config.snapshots.backup {
        return Ok(None);
    }
    let name = config
        .expand_opt(&config.snapshots.backup_branch)?
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| format::DEFAULT_BRANCH.to_owned());
    if !git2::Branch::name_is_valid(&name).unwrap_or(false) {
        return Err(config.invalid(
            "snapshots.backup_branch",
            format!("{name:?} is not a valid branch name"),
        ));
    }
    if config.expand_opt(&config.snapshots.branch)?.as_deref() == Some(name.as_str()) {
        return Err(config.invalid(
            "snapshots.backup_branch",
            format!("{name:?} is also snapshots.branch; the backup needs a branch of its own"),
        ));
    }
    Ok(Some(name))
}

/// One range's objects, as the previous backup and this one hold them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RangeEntry {
    fingerprint: [u8; 16],
    oid: Oid,
    /// A directory of halves rather than one file.
    split: bool,
    rows: u64,
    files: u64,
}

/// The previous backup's ranges, by table, and the key fingerprints are made with.
#[derive(Debug)]
struct Cache {
    key: [u8; 32],
    /// The root tree of the backup this cache describes.
    root: Option<Oid>,
    tables: HashMap<String, BTreeMap<u64, RangeEntry>>,
}

impl Cache {
    fn fresh() -> Cache {
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
        Cache {
            key,
            root: None,
            tables: HashMap::new(),
        }
    }

    /// The cache in `git_dir`, if it describes `tip_tree`; a fresh, empty one otherwise.
    fn load(git_dir: &Path, tip_tree: Option<Oid>) -> Cache {
        let path = git_dir.join(CACHE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(_) => return Cache::fresh(),
        };
        match Cache::parse(&text) {
            Some(cache) if cache.root.is_some() && cache.root == tip_tree => cache,
            Some(_) => {
                log::info!(
                    "{} describes another backup than the branch tip; backing up every range again",
                    path.display()
                );
                Cache::fresh()
            }
            None if OLD_CACHE_HEADERS.contains(&text.lines().next().unwrap_or_default()) => {
                log::info!(
                    "{} was written by an earlier version; backing up every range again (once)",
                    path.display()
                );
                Cache::fresh()
            }
            None => {
                log::warn!(
                    "{} cannot be read; backing up every range again",
                    path.display()
                );
                Cache::fresh()
            }
        }
    }

    fn parse(text: &str) -> Option<Cache> {
        let mut lines = text.lines();
        (lines.next()? == CACHE_HEADER).then_some(())?;
        let key = unhex(lines.next()?.strip_prefix("key ")?)?;
        let root = Oid::from_str(lines.next()?.strip_prefix("root ")?).ok()?;
        let mut cache = Cache {
            key: key.try_into().ok()?,
            root: Some(root),
            tables: HashMap::new(),
        };
        let mut current: Option<&mut BTreeMap<u64, RangeEntry>> = None;
        for line in lines {
            if let Some(name) = line.strip_prefix("table ") {
                let name = String::from_utf8(unhex(name)?).ok()?;
                current = Some(cache.tables.entry(name).or_default());
                continue;
            }
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() != 6 {
                return None;
            }
            let entry = RangeEntry {
                fingerprint: unhex(f[1])?.try_into().ok()?,
                oid: Oid::from_str(f[2]).ok()?,
                split: match f[3] {
                    "t" => true,
                    "b" => false,
                    _ => return None,
                },
                rows: f[4].parse().ok()?,
                files: f[5].parse().ok()?,
            };
            current
                .as_mut()?
                .insert(u64::from_str_radix(f[0], 16).ok()?, entry);
        }
        Some(cache)
    }

    fn to_text(&self, root: Oid, tables: &[TableRead]) -> String {
        use std::fmt::Write as _;
        let mut s = format!("{CACHE_HEADER}\nkey {}\nroot {root}\n", hex(&self.key));
        for t in tables {
            let _ = writeln!(s, "table {}", hex(t.name.as_bytes()));
            for (range, e) in &t.ranges {
                let _ = writeln!(
                    s,
                    "{range:x} {} {} {} {} {}",
                    hex(&e.fingerprint),
                    e.oid,
                    if e.split { "t" } else { "b" },
                    e.rows,
                    e.files
                );
            }
        }
        s
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One table as read in the transaction: every range's objects.
#[derive(Debug)]
struct TableRead {
    name: String,
    columns: Vec<String>,
    ranges: BTreeMap<u64, RangeEntry>,
}

/// What the read transaction gave the backup.
#[derive(Debug)]
struct StateRead {
    user_version: i64,
    master: Vec<MasterRow>,
    tables: Vec<TableRead>,
}

/// How much a run serialized, for the log and the benchmark.
#[derive(Clone, Debug, Default)]
pub struct Work {
    /// Ranges whose fingerprint changed (or that are new) and were written.
    pub ranges_written: u64,
    /// Ranges that kept their objects.
    pub ranges_kept: u64,
    /// Bytes of chunk files serialized.
    pub bytes_serialized: u64,
    /// How long the read transaction's part took (scan, fingerprints, changed chunks).
    pub read_seconds: f64,
}

/// The backup of one run: opened before the database is read, fed by the read transaction
/// ([`Backup::read`]), committed after the snapshot ([`Backup::commit`]).
pub struct Backup {
    branch: String,
    /// A handle of its own: the hook runs on the reading thread.
    repo: Repository,
    git_dir: PathBuf,
    cache: Cache,
    read: Option<StateRead>,
    /// Gitcord's audit log, read beside the database (`None`: no `runtime.data_dir`).
    audit_log: Option<PathBuf>,
    /// Its bytes as read inside the transaction (`None`: no such file).
    audit: Option<Vec<u8>>,
    /// What the run did.
    pub work: Work,
}

impl Backup {
    /// Prepares the backup of this run on `branch` of the clone: loads the cache of the
    /// branch tip's backup (or starts without one).
    pub fn open(
        data: &DataRepo,
        branch: &str,
        audit_log: Option<PathBuf>,
    ) -> Result<Backup, RepoError> {
        let git_dir = data.git().path().to_owned();
        let repo = Repository::open_bare(&git_dir).ctx("open the clone for the backup")?;
        // The pack of a run's new objects is written without delta search, as pushes are
        // (the clone's layered `pack.deltaCacheSize`): a first backup's thousands of distinct
        // chunks have no useful deltas, and the search would cost more than the rest.
        let no_deltas = git_dir.join(crate::publish::clone::PUSH_CONFIG);
        if no_deltas.exists() {
            repo.config()
                .and_then(|mut c| c.add_file(&no_deltas, git2::ConfigLevel::App, true))
                .ctx("read config")?;
        }
        let tip_tree = match local_tip(&repo, branch)? {
            Some(tip) => Some(
                repo.find_commit(tip)
                    .ctx("read the backup branch tip")?
                    .tree_id(),
            ),
            None => None,
        };
        let mut cache = Cache::load(&git_dir, tip_tree);
        // Every object the cache would reuse must still be in the clone (a lost pack would
        // otherwise fail every later backup): one index lookup each.
        let missing = {
            let odb = repo.odb().ctx("open the object database")?;
            cache
                .tables
                .values()
                .flat_map(|ranges| ranges.values())
                .find(|e| !odb.exists(e.oid))
                .copied()
        };
        if let Some(e) = missing {
            log::warn!(
                "object {} of the previous backup is missing from the clone; backing up every range again",
                e.oid
            );
            cache = Cache::fresh();
        }
        Ok(Backup {
            branch: branch.to_owned(),
            repo,
            git_dir,
            cache,
            read: None,
            audit_log,
            audit: None,
            work: Work::default(),
        })
    }

    /// Whether the window scan fingerprints [`PRESCANNED_TABLE`] for this backup: whenever
    /// there is a previous backup to compare with. A first backup reads it itself, writing
    /// each range as it reads it (comparing with nothing, it would read every row twice).
    fn prescan_spec(&self) -> Option<Prescan> {
        self.cache.root.is_some().then_some(Prescan {
            key: self.cache.key,
            format: format::FORMAT,
            range_rowids: format::RANGE_ROWIDS,
            range_of: format::range_of,
            is_secret: format::is_secret,
        })
    }

    /// Reads every table inside the snapshot's read transaction, but [`PRESCANNED_TABLE`]
    /// when the window scan fingerprints it, writing the objects of the ranges that changed.
    fn read_tables(&mut self, reader: &Reader<'_>, prescanned: bool) -> Result<(), StateError> {
        let started = std::time::Instant::now();
        let master = reader.master()?;
        let user_version = reader.user_version()?;
        let git_err = |e: git2::Error| reader.bad(format!("writing the backup: {}", e.message()));
        // New objects go to memory first and reach the clone as one pack (one file, synced
        // once), not as thousands of loose objects each synced on its own.
        let odb = self.repo.odb().map_err(git_err)?;
        let mempack = odb.add_new_mempack_backend(1000).map_err(git_err)?;
        let mut sink = Sink::new(&self.repo, &odb, &mempack);
        let mut tables = Vec::new();
        for row in master.iter().filter(|r| r.kind == "table") {
            if row
                .sql
                .as_deref()
                .is_some_and(|s| s.to_ascii_uppercase().starts_with("CREATE VIRTUAL"))
            {
                return Err(reader.bad(format!(
                    "table {} is a virtual table, which the backup cannot copy (snapshots.backup: false publishes without a backup)",
                    row.name
                )));
            }
            if prescanned && row.name == PRESCANNED_TABLE {
                // Filled in by `finish`, in its place among the tables.
                tables.push(TableRead {
                    name: row.name.clone(),
                    columns: Vec::new(),
                    ranges: BTreeMap::new(),
                });
                continue;
            }
            let columns = reader.columns(&row.name)?;
            let ranges = read_table(
                &mut sink,
                &self.cache,
                &mut self.work,
                reader,
                &row.name,
                &columns,
            )?;
            tables.push(TableRead {
                name: row.name.clone(),
                columns,
                ranges,
            });
        }
        sink.flush()
            .map_err(|e| reader.bad(format!("writing the backup: {e}")))?;
        self.work.read_seconds += started.elapsed().as_secs_f64();
        self.read = Some(StateRead {
            user_version,
            master,
            tables,
        });
        // The audit log at the same moment (Gitcord appends to it beside its transactions).
        self.audit = match &self.audit_log {
            None => None,
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => Some(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => {
                    return Err(
                        reader.bad(format!("cannot read the audit log {}: {e}", path.display()))
                    )
                }
            },
        };
        Ok(())
    }
}

/// Scans one table, fingerprinting each rowid range, and writes the objects of the ranges
/// whose fingerprint the cache does not hold.
fn read_table(
    sink: &mut Sink<'_, '_>,
    cache: &Cache,
    work: &mut Work,
    reader: &Reader<'_>,
    table: &str,
    columns: &[String],
) -> Result<BTreeMap<u64, RangeEntry>, StateError> {
    let secret: Vec<bool> = columns
        .iter()
        .map(|c| format::is_secret(table, c))
        .collect();
    let empty = BTreeMap::new();
    let old = cache.tables.get(table).unwrap_or(&empty);
    let key = cache.key;
    let mut out = BTreeMap::new();
    let mut again: Vec<(u64, [u8; 16], u64)> = Vec::new();
    // The range being scanned: its number, fingerprint, rows, and (for a range the cache
    // does not know at all, such as every range of a first backup) its lines, written as
    // the scan goes instead of being read a second time.
    struct Current {
        range: u64,
        fp: Fingerprint,
        rows: u64,
        lines: Option<Lines>,
    }
    let mut current: Option<Current> = None;
    let mut finish = |c: Current,
                      out: &mut BTreeMap<u64, RangeEntry>,
                      again: &mut Vec<(u64, [u8; 16], u64)>|
     -> Result<(), StateError> {
        let fingerprint = c.fp.finish();
        match (old.get(&c.range), c.lines) {
            (Some(e), _) if e.fingerprint == fingerprint && e.rows == c.rows => {
                work.ranges_kept += 1;
                out.insert(c.range, *e);
            }
            (_, Some(lines)) => {
                let (lo, hi) = format::range_bounds(c.range);
                work.ranges_written += 1;
                work.bytes_serialized += lines.buf.len() as u64;
                let (oid, split, files) = write_range(sink, lo, hi, &lines.buf, &lines.rows)
                    .map_err(|e| reader.bad(format!("writing the backup of {table}: {e}")))?;
                out.insert(
                    c.range,
                    RangeEntry {
                        fingerprint,
                        oid,
                        split,
                        rows: c.rows,
                        files,
                    },
                );
            }
            (_, None) => again.push((c.range, fingerprint, c.rows)),
        }
        Ok(())
    };
    reader.rows(table, columns, None, &mut |rowid, values| {
        let range = format::range_of(rowid);
        if current.as_ref().is_none_or(|c| c.range != range) {
            if let Some(done) = current.take() {
                finish(done, &mut out, &mut again)?;
            }
            current = Some(Current {
                range,
                fp: Fingerprint::new(&key, format::FORMAT, columns),
                rows: 0,
                lines: (!old.contains_key(&range)).then(Lines::default),
            });
        }
        if let Some(c) = current.as_mut() {
            c.fp.row(rowid, values, &secret);
            c.rows += 1;
            if let Some(lines) = c.lines.as_mut() {
                lines.push(rowid, values, &secret);
            }
        }
        Ok(())
    })?;
    if let Some(done) = current.take() {
        finish(done, &mut out, &mut again)?;
    }
    // Ranges the previous backup had whose rows changed: read again, still in the same
    // transaction, and written.
    write_again(sink, work, reader, table, columns, &secret, again, &mut out)?;
    Ok(out)
}

/// Reads the ranges `again` (range, fingerprint, rows) of `table` whose rows changed since the
/// previous backup, and writes them into `out`.
#[allow(clippy::too_many_arguments)]
fn write_again(
    sink: &mut Sink<'_, '_>,
    work: &mut Work,
    reader: &Reader<'_>,
    table: &str,
    columns: &[String],
    secret: &[bool],
    again: Vec<(u64, [u8; 16], u64)>,
    out: &mut BTreeMap<u64, RangeEntry>,
) -> Result<(), StateError> {
    for (range, fingerprint, rows) in again {
        let (lo, hi) = format::range_bounds(range);
        let mut lines = Lines::default();
        reader.rows(table, columns, Some((lo, hi)), &mut |rowid, values| {
            lines.push(rowid, values, secret);
            Ok(())
        })?;
        if lines.rows.len() as u64 != rows {
            return Err(reader.bad(format!(
                "{table} rowids {lo}..{hi}: {} rows read again, {rows} scanned, in one transaction",
                lines.rows.len()
            )));
        }
        work.ranges_written += 1;
        work.bytes_serialized += lines.buf.len() as u64;
        let (oid, split, files) = write_range(sink, lo, hi, &lines.buf, &lines.rows)
            .map_err(|e| reader.bad(format!("writing the backup of {table}: {e}")))?;
        out.insert(
            range,
            RangeEntry {
                fingerprint,
                oid,
                split,
                rows,
                files,
            },
        );
    }
    Ok(())
}

impl Hook for Backup {
    fn prescan(&self) -> Option<Prescan> {
        self.prescan_spec()
    }

    fn read(&mut self, reader: &Reader<'_>, prescanned: bool) -> Result<(), StateError> {
        self.read_tables(reader, prescanned)
    }

    /// Compares the window scan's fingerprints of [`PRESCANNED_TABLE`] with the previous
    /// backup's, and reads and writes the ranges that changed.
    fn finish(
        &mut self,
        reader: &Reader<'_>,
        prescanned: Option<Prescanned>,
    ) -> Result<(), StateError> {
        let Some(prescanned) = prescanned else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let git_err = |e: git2::Error| reader.bad(format!("writing the backup: {}", e.message()));
        // Objects go to memory first and reach the clone as packs, as in `read_tables`, with a
        // mempack of this step's own above that one (writes go to the first backend), emptied
        // at every flush: when every range changed (a column added), this step writes the
        // whole table, and must not hold all of it in memory until the run ends.
        let odb = self.repo.odb().map_err(git_err)?;
        let mempack = odb.add_new_mempack_backend(1001).map_err(git_err)?;
        let mut sink = Sink::new(&self.repo, &odb, &mempack);
        let table = PRESCANNED_TABLE;
        let columns = prescanned.columns;
        let secret: Vec<bool> = columns
            .iter()
            .map(|c| format::is_secret(table, c))
            .collect();
        let empty = BTreeMap::new();
        let old = self.cache.tables.get(table).unwrap_or(&empty);
        let mut out = BTreeMap::new();
        let mut again = Vec::new();
        for d in prescanned.ranges {
            match old.get(&d.range) {
                Some(e) if e.fingerprint == d.fingerprint && e.rows == d.rows => {
                    self.work.ranges_kept += 1;
                    out.insert(d.range, *e);
                }
                _ => again.push((d.range, d.fingerprint, d.rows)),
            }
        }
        write_again(
            &mut sink,
            &mut self.work,
            reader,
            table,
            &columns,
            &secret,
            again,
            &mut out,
        )?;
        sink.flush()
            .map_err(|e| reader.bad(format!("writing the backup: {e}")))?;
        let Some(read) = self.read.as_mut() else {
            return Err(reader.bad("the backup's tables were never read".into()));
        };
        let Some(slot) = read.tables.iter_mut().find(|t| t.name == table) else {
            return Err(reader.bad(format!("{table} is not among the tables read")));
        };
        slot.columns = columns;
        slot.ranges = out;
        self.work.read_seconds += started.elapsed().as_secs_f64();
        Ok(())
    }
}

impl Backup {
    /// Commits this run's backup on the backup branch, naming `snapshot`: the tables and the
    /// audit log read in the transaction. Returns the new commit, or `None` when the branch
    /// tip already is this very backup.
    pub fn commit(
        &self,
        data: &DataRepo,
        snapshot: &SnapshotRef,
        author: &Author,
        at: Timestamp,
    ) -> Result<Option<Oid>, RepoError> {
        let Some(read) = &self.read else {
            return Ok(None);
        };
        let repo = data.git();
        let mut root = Node::default();
        let mut entries = Vec::new();
        let mut tables_node = Node::default();
        for t in &read.tables {
            let mut node = Node::default();
            for (range, e) in &t.ranges {
                let (lo, hi) = format::range_bounds(*range);
                let mut at = &mut node;
                for dir in format::range_dirs(*range) {
                    at = at.dirs.entry(dir).or_default();
                }
                let name = match e.split {
                    true => format::range_name(lo, hi),
                    false => format!("{}.jsonl", format::range_name(lo, hi)),
                };
                let mode = if e.split { 0o040000 } else { 0o100644 };
                at.files.insert(name, (e.oid, mode));
            }
            let dir = format::table_dir(&t.name);
            let tree = if t.ranges.is_empty() {
                None
            } else {
                let oid = node.write(repo)?;
                tables_node.files.insert(dir.clone(), (oid, 0o040000));
                Some(oid.to_string())
            };
            entries.push(TableEntry {
                name: t.name.clone(),
                dir,
                columns: t.columns.clone(),
                rows: t.ranges.values().map(|e| e.rows).sum(),
                chunks: t.ranges.values().map(|e| e.files).sum(),
                tree,
            });
        }
        if !tables_node.files.is_empty() {
            let oid = tables_node.write(repo)?;
            root.files
                .insert(format::TABLES_DIR.to_owned(), (oid, 0o040000));
        }
        let audit = match &self.audit {
            Some(bytes) => Some(write_audit(repo, bytes)?),
            None => None,
        };
        if let Some((_, Some(oid))) = &audit {
            root.files
                .insert(format::AUDIT_DIR.to_owned(), (*oid, 0o040000));
        }
        let redacted = read
            .tables
            .iter()
            .flat_map(|t| {
                t.columns
                    .iter()
                    .filter(|c| format::is_secret(&t.name, c))
                    .map(|c| Redacted {
                        table: t.name.clone(),
                        column: c.clone(),
                    })
            })
            .collect();
        let manifest = Manifest {
            format: format::FORMAT,
            snapshot: snapshot.clone(),
            user_version: read.user_version,
            schema: read
                .master
                .iter()
                .map(|m| SchemaRow {
                    kind: m.kind.clone(),
                    name: m.name.clone(),
                    tbl_name: m.tbl_name.clone(),
                    sql: m.sql.clone(),
                })
                .collect(),
            tables: entries,
            redacted,
            audit: audit.map(|(e, _)| e),
        };
        let blob = repo.blob(&manifest.to_bytes()).ctx("write backup.json")?;
        root.files
            .insert(format::MANIFEST.to_owned(), (blob, 0o100644));
        let tree_id = root.write(repo)?;
        let tree = repo.find_tree(tree_id).ctx("read tree")?;
        let parent = local_tip(repo, &self.branch)?;
        let parent_commit = parent
            .map(|p| repo.find_commit(p))
            .transpose()
            .ctx("read the backup branch tip")?;
        if let Some(p) = &parent_commit {
            if p.tree_id() == tree_id {
                self.save_cache(tree_id, read);
                return Ok(None);
            }
        }
        let sig = Signature::new(&author.name, &author.email, &Time::new(at.timestamp(), 0))
            .ctx("make signature")?;
        let rows: u64 = manifest.tables.iter().map(|t| t.rows).sum();
        let message = format!(
            "{}\n\nrun_id: {}\ngenerated_at: {}\ntables: {}, rows: {rows}\n",
            format::commit_subject(&snapshot.name),
            snapshot.run_id,
            snapshot.generated_at,
            manifest.tables.len(),
        );
        let parents: Vec<&git2::Commit<'_>> = parent_commit.iter().collect();
        // Every object is written; a run killed here leaves them unreferenced, and no commit.
        crate::pause::point("backup");
        let oid = data.make_commit(&sig, &sig, &message, &tree, &parents)?;
        move_ref(repo, &self.branch, parent, oid, "backup")?;
        // Committed, the cache not yet updated: the next run finds it stale and starts over.
        crate::pause::point("backup-cache");
        self.save_cache(tree_id, read);
        Ok(Some(oid))
    }

    /// Remembers this backup's ranges for the next run; only an optimisation, so a failure
    /// is a warning (the next run then serializes every range again).
    fn save_cache(&self, root: Oid, read: &StateRead) {
        let path = self.git_dir.join(CACHE_FILE);
        let text = self.cache.to_text(root, &read.tables);
        if let Err(e) =
            crate::publish::directory::write_file_atomically(&path, text.as_bytes(), 0o600)
        {
            log::warn!("cannot write {}: {e}", path.display());
        }
    }
}

/// A range's lines and where each row starts.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
    rows: Vec<(i64, usize)>,
}

impl Lines {
    fn push(&mut self, rowid: i64, values: &[ValueRef<'_>], secret: &[bool]) {
        self.rows.push((rowid, self.buf.len()));
        format::encode_row(&mut self.buf, rowid, values, secret);
    }
}

/// Where a run's new objects go: into memory (libgit2's mempack backend, which the handle
/// writes to first), then into the clone as one pack per [`FLUSH_BYTES`] and at the end: a few
/// files, each synced once, instead of thousands of loose objects synced one by one, and
/// memory bounded even for a first backup.
struct Sink<'a, 'r> {
    repo: &'r Repository,
    odb: &'a git2::Odb<'r>,
    /// Where new objects are written first, emptied once they are packed.
    mempack: &'a git2::Mempack<'a>,
    objects: Vec<Oid>,
    pending: usize,
}

/// How many bytes of new objects are held in memory before they are packed.
const FLUSH_BYTES: usize = 64 << 20;

impl<'a, 'r> Sink<'a, 'r> {
    fn new(
        repo: &'r Repository,
        odb: &'a git2::Odb<'r>,
        mempack: &'a git2::Mempack<'a>,
    ) -> Sink<'a, 'r> {
        Sink {
            repo,
            odb,
            mempack,
            objects: Vec::new(),
            pending: 0,
        }
    }

    fn wrote(&mut self, oid: Oid, bytes: usize) -> Result<(), git2::Error> {
        self.objects.push(oid);
        self.pending += bytes;
        if self.pending >= FLUSH_BYTES {
            self.flush()
                .map_err(|e| git2::Error::from_str(&e.to_string()))?;
        }
        Ok(())
    }

    /// Packs the objects held in memory into the clone (no delta search: see
    /// [`Backup::open`]). libgit2's own mempack dump packs only what commits reach, so the
    /// objects are packed one by one.
    fn flush(&mut self) -> Result<(), String> {
        if self.objects.is_empty() {
            return Ok(());
        }
        let git = |e: git2::Error| e.message().to_owned();
        let mut pb = self.repo.packbuilder().map_err(git)?;
        for oid in &self.objects {
            pb.insert_object(*oid, None).map_err(git)?;
        }
        let mut writer = self.odb.packwriter().map_err(git)?;
        let mut failed = None;
        pb.foreach(
            |bytes| match std::io::Write::write_all(&mut writer, bytes) {
                Ok(()) => true,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        )
        .map_err(git)?;
        if let Some(e) = failed {
            return Err(e.to_string());
        }
        writer.commit().map_err(git)?;
        self.mempack.reset().map_err(git)?;
        self.objects.clear();
        self.pending = 0;
        Ok(())
    }
}

/// Writes the rows `lo..=hi` (`buf`, rows starting at the offsets in `rows`): one blob, or a
/// tree of halves while the blob would pass the cap. Returns the object, whether it is a tree,
/// and how many files it holds.
fn write_range(
    sink: &mut Sink<'_, '_>,
    lo: i64,
    hi: i64,
    buf: &[u8],
    rows: &[(i64, usize)],
) -> Result<(Oid, bool, u64), git2::Error> {
    if buf.len() <= format::CHUNK_CAP || lo == hi || rows.len() <= 1 {
        if buf.len() > 1_000_000 {
            log::warn!(
                "the backup file of rowids {lo}..{hi} holds {} bytes (one row larger than GitHub's 1 MB recommendation)",
                buf.len()
            );
        }
        let oid = sink.repo.blob(buf)?;
        sink.wrote(oid, buf.len())?;
        return Ok((oid, false, 1));
    }
    let mid = lo + (hi - lo) / 2;
    let cut = rows.partition_point(|(id, _)| *id <= mid);
    let at = rows.get(cut).map_or(buf.len(), |(_, off)| *off);
    let mut tree = sink.repo.treebuilder(None)?;
    let mut files = 0;
    for (a, b, part, part_rows) in [
        (lo, mid, &buf[..at], &rows[..cut]),
        (mid + 1, hi, &buf[at..], &rows[cut..]),
    ] {
        if part_rows.is_empty() {
            continue;
        }
        let shifted: Vec<(i64, usize)> = part_rows
            .iter()
            .map(|(id, off)| (*id, off - part_rows[0].1))
            .collect();
        let (oid, split, n) = write_range(sink, a, b, part, &shifted)?;
        let name = match split {
            true => format::range_name(a, b),
            false => format!("{}.jsonl", format::range_name(a, b)),
        };
        tree.insert(name, oid, if split { 0o040000 } else { 0o100644 })?;
        files += n;
    }
    let oid = tree.write()?;
    sink.wrote(oid, 0)?;
    Ok((oid, true, files))
}

/// A directory being assembled: files (and finished subtrees) and subdirectories.
#[derive(Default)]
struct Node {
    files: BTreeMap<String, (Oid, i32)>,
    dirs: BTreeMap<String, Node>,
}

impl Node {
    /// Writes the tree and its subtrees, each only when the clone does not have it: its bytes
    /// built and hashed here (about 30 trees a run, most unchanged), instead of libgit2's tree
    /// builder, which looks up every entry's object (5,000 ranges at 1M contributions) and
    /// rewrites or touches every tree.
    fn write(&self, repo: &Repository) -> Result<Oid, RepoError> {
        let odb = repo.odb().ctx("open the object database")?;
        self.write_into(&odb)
    }

    fn write_into(&self, odb: &git2::Odb<'_>) -> Result<Oid, RepoError> {
        let mut subtrees = Vec::with_capacity(self.dirs.len());
        for (name, node) in &self.dirs {
            subtrees.push((name, node.write_into(odb)?));
        }
        let mut entries: Vec<(&[u8], u32, Oid)> = self
            .files
            .iter()
            .map(|(name, (oid, mode))| (name.as_bytes(), *mode as u32, *oid))
            .chain(
                subtrees
                    .iter()
                    .map(|(name, oid)| (name.as_bytes(), 0o040000, *oid)),
            )
            .collect();
        let bytes =
            crate::publish::rawtree::tree_bytes(&mut entries).ok_or_else(|| RepoError::Git {
                context: "build tree".into(),
                source: git2::Error::from_str("a backup tree entry has a name no tree can hold"),
            })?;
        let id = Oid::hash_object(git2::ObjectType::Tree, &bytes).ctx("build tree")?;
        if odb.exists(id) {
            return Ok(id);
        }
        odb.write(git2::ObjectType::Tree, &bytes).ctx("write tree")
    }
}

/// The audit log's chunks written as blobs (only those git does not have yet cost a write),
/// its manifest entry, and the `audit/` tree.
fn write_audit(repo: &Repository, bytes: &[u8]) -> Result<(AuditEntry, Option<Oid>), RepoError> {
    let mut node = Node::default();
    let mut start = 0;
    let cuts = format::audit_cuts(bytes);
    for (i, end) in cuts.iter().enumerate() {
        let (dir, file) = format::audit_path(i);
        let oid = repo.blob(&bytes[start..*end]).ctx("write audit chunk")?;
        node.dirs
            .entry(dir)
            .or_default()
            .files
            .insert(file, (oid, 0o100644));
        start = *end;
    }
    let tree = if cuts.is_empty() {
        None
    } else {
        Some(node.write(repo)?)
    };
    Ok((
        AuditEntry {
            bytes: bytes.len() as u64,
            lines: bytes.iter().filter(|b| **b == b'\n').count() as u64,
            chunks: cuts.len() as u64,
            tree: tree.map(|t| t.to_string()),
        },
        tree,
    ))
}
