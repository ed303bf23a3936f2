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

use std::collections::BTreeMap;
use std::path::PathBuf;

use git2::{Oid, Repository, Signature, Time};

use crate::input::config::{Config, ConfigError};
use crate::input::state::backup::{
    Fingerprint, Hook, MasterRow, Prescan, Prescanned, Reader, PRESCANNED_TABLE,
};
use crate::input::state::StateError;
use crate::publish::clone::{Author, DataRepo, GitContext, RepoError};
use crate::snapshot::backup::{
    self as format, Manifest, Redacted, SchemaRow, SnapshotRef, TableEntry,
};
use crate::time::Timestamp;

mod branch;
mod cache;
mod objects;
mod salvage;
use branch::move_ref;
pub use branch::{
    exists, find, integrate, local_tip, queued, read_manifest, remote_tip, set_backup_remote,
    set_remote_tip, Found, BACKUP_REMOTE,
};
use cache::{Cache, RangeEntry, CACHE_FILE};
use objects::{write_audit, write_range, Lines, Node, Sink};
pub use salvage::salvage;

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
