//! `push`: the cron job. Builds the snapshot as `export` does, commits it into the persistent
//! clone, and pushes everything queued, in order.
//!
//! The commit always happens before the network is touched for the push, so a failed push
//! loses nothing: the commit waits in the clone and the next run sends it.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::commands::Render;
use crate::error::Error;
use crate::input::config::Config;
use crate::publish::audit::SnapshotContext;
use crate::publish::backup::Backup;
use crate::publish::clone::{Committed, DataRepo, SnapshotFiles};
use crate::publish::metrics::{self, BackupMetrics, BackupWork, RunMetrics};
use crate::publish::session::{clone_dir, record, Session, Target};
use crate::snapshot::build::{self, Inputs};
use crate::snapshot::format;
use crate::snapshot::format::Published;
use crate::snapshot::{FILE_NAMES, SNAPSHOTS_DIR};
use crate::time;

/// What `push` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Gitcord's config file.
    pub config: PathBuf,
    /// Where the snapshot's inputs come from.
    pub inputs: Inputs,
    /// The clone and the remote.
    pub target: Target,
    /// `--skip-unchanged`: no commit when only the run's own fields would change.
    pub skip_unchanged: bool,
    /// `--metrics-file`, overriding `snapshots.metrics_file`.
    pub metrics_file: Option<PathBuf>,
}

/// What happened to this run's snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A new commit (its id).
    Committed(String),
    /// The identical snapshot was already committed (same run id and time).
    AlreadyCommitted(String),
    /// `--skip-unchanged` and the data equals the newest snapshot's: no commit.
    Unchanged {
        /// The newest snapshot, which already says it all.
        since: String,
    },
}

/// What a `push` run did, for the one line it prints.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Report {
    /// Neither `snapshots.writer: gitcord-snapshot` nor `snapshots.enabled: true`.
    Disabled,
    /// The snapshot was handled and the queue pushed, or kept.
    Done {
        /// `snapshots/<name>` of this run's snapshot.
        snapshot_dir: String,
        /// Whether and how it was committed.
        outcome: Outcome,
        /// Where the queue was pushed, if it was.
        pushed_to: Option<String>,
        /// Commits still waiting for a push.
        queued: usize,
    },
}

impl Render for Report {
    fn text(&self) -> String {
        match self {
            Report::Disabled => {
                "publishing is disabled (set snapshots.writer: gitcord-snapshot, or snapshots.enabled: true); nothing to do".into()
            }
            Report::Done {
                snapshot_dir,
                outcome,
                pushed_to,
                queued,
            } => {
                let what = match outcome {
                    Outcome::Committed(oid) => {
                        format!("committed {snapshot_dir} as {}", short(oid))
                    }
                    Outcome::AlreadyCommitted(oid) => {
                        format!("{snapshot_dir} was already committed as {}", short(oid))
                    }
                    Outcome::Unchanged { since } => {
                        format!("no commit: nothing changed since snapshots/{since}")
                    }
                };
                match pushed_to {
                    Some(url) => format!("{what}; pushed to {url}"),
                    None => format!("{what}; not pushed, {queued} commit(s) queued"),
                }
            }
        }
    }
}

/// The first 12 hex digits of a commit id, as printed.
pub(crate) fn short(oid: &str) -> &str {
    oid.get(..12).unwrap_or(oid)
}

/// Runs one `push`, then writes the metrics textfile if one is configured, whatever happened.
pub fn run(req: &Request) -> Result<Report, Error> {
    let started = std::time::Instant::now();
    let config = match Config::load(&req.config) {
        Ok(config) => config,
        Err(e) => {
            // A broken config is exactly what monitoring must see: report it where asked.
            let e = Error::from(e);
            if let Some(path) = &req.metrics_file {
                let metrics = RunMetrics {
                    exit_code: e.exit_code().code(),
                    duration_seconds: started.elapsed().as_secs_f64(),
                    finished_at: chrono::Utc::now().timestamp(),
                    ..RunMetrics::default()
                };
                if let Err(io) = metrics::write(path, &metrics) {
                    log::warn!("cannot write metrics to {}: {io}", path.display());
                }
            }
            return Err(e);
        }
    };
    if !config.push_enabled()? {
        return Ok(Report::Disabled);
    }
    let metrics_file = match &req.metrics_file {
        Some(path) => Some(path.clone()),
        None => config
            .expand_opt(&config.snapshots.metrics_file)?
            .map(PathBuf::from),
    };
    let mut snapshot_bytes = 0;
    let mut backup_work = None;
    let result = publish_snapshot(&config, req, &mut snapshot_bytes, &mut backup_work);
    if let Some(path) = metrics_file {
        let exit_code = result.as_ref().err().map_or(0, |e| e.exit_code().code());
        write_metrics(
            &config,
            req,
            &path,
            exit_code,
            started.elapsed().as_secs_f64(),
            snapshot_bytes,
            backup_work,
        );
    }
    result
}

fn publish_snapshot(
    config: &Config,
    req: &Request,
    snapshot_bytes: &mut u64,
    backup_work: &mut Option<BackupWork>,
) -> Result<Report, Error> {
    // With the backup on, the clone comes first: the backup's cache of the previous run lives
    // in it, and the backup is read inside the snapshot's own read transaction. Without it,
    // the snapshot is built first, as before (a bad input fails before the clone is touched).
    let (snapshot, mut session, backup) = match crate::publish::backup::branch(config)? {
        None => {
            let snapshot = build::build(config, &req.inputs)?;
            (snapshot, Session::open(config, &req.target)?, None)
        }
        Some(branch) => {
            let session = Session::open(config, &req.target)?;
            let audit_log = config
                .data_dir()?
                .map(|d| d.join(crate::snapshot::backup::AUDIT_FILE));
            let mut backup = Backup::open(&session.repo, &branch, audit_log)?;
            let snapshot = build::build_with(config, &req.inputs, Some(&mut backup))?;
            // What the backup did in the read transaction, for the metrics, whatever follows.
            *backup_work = Some(BackupWork::from(&backup.work));
            (snapshot, session, Some(backup))
        }
    };
    let files = format::render(&snapshot)?;
    *snapshot_bytes = files.iter().map(|(_, b)| b.len() as u64).sum();
    let name = snapshot.name();
    let message = snapshot.commit_message();

    let unchanged_since = if req.skip_unchanged || config.snapshots.skip_unchanged {
        session
            .repo
            .newest_snapshot()?
            .filter(
                |(_, old)| match (Published::read(&files), Published::read(old)) {
                    (Ok(new), Ok(old)) => new.same_data(&old),
                    // A newest snapshot this version cannot read is never "the same".
                    _ => false,
                },
            )
            .map(|(n, _)| n)
    } else {
        None
    };
    let mut context = SnapshotContext {
        org: snapshot.org.clone(),
        repo: session.publish.repo_label.clone(),
        snapshot_dir: snapshot.rel_dir(),
        run_id: snapshot.run_id.hyphenated().to_string(),
        files_written: FILE_NAMES.len(),
        timestamp: time::isoformat(&snapshot.at),
        commit: None,
        queued: None,
        error: None,
    };
    let outcome = match unchanged_since {
        Some(since) => {
            log::info!("nothing changed since snapshots/{since}; no commit (--skip-unchanged)");
            Outcome::Unchanged { since }
        }
        None => {
            let committed = session.repo.commit_snapshot(
                &SnapshotFiles {
                    name: &name,
                    files: &files,
                    message: &message,
                    at: snapshot.at,
                },
                &session.publish.author,
            )?;
            // Only tidies the clone: a failure is worth a warning, never a lost push.
            match session.repo.pack_loose_objects() {
                Ok(0) => {}
                Ok(packed) => log::info!("packed {packed} loose objects"),
                Err(e) => log::warn!(
                    "cannot pack the clone's loose objects (the next run tries again): {e}"
                ),
            }
            context.commit = Some(committed.oid().to_string());
            log::info!("committed {} as {}", snapshot.rel_dir(), committed.oid());
            match committed {
                Committed::New(oid) => {
                    record(&session.publish, "snapshot_written", &context);
                    Outcome::Committed(oid.to_string())
                }
                Committed::AlreadyPresent(oid) => Outcome::AlreadyCommitted(oid.to_string()),
            }
        }
    };
    // The backup names the snapshot it was read with; a run that committed no snapshot
    // (--skip-unchanged) has none to name, and writes no backup.
    if let (Some(backup), false) = (&backup, matches!(outcome, Outcome::Unchanged { .. })) {
        let at = crate::snapshot::backup::SnapshotRef {
            name: name.clone(),
            run_id: snapshot.run_id.hyphenated().to_string(),
            generated_at: time::isoformat(&snapshot.at),
        };
        let made = backup.commit(&session.repo, &at, &session.publish.author, snapshot.at)?;
        let w = &backup.work;
        match made {
            Some(oid) => log::info!(
                "backed up state.db as {oid} on {}: {} range(s) written ({} bytes), {} kept; read in {:.2} s",
                session.publish.backup_branch.as_deref().unwrap_or_default(),
                w.ranges_written,
                w.bytes_serialized,
                w.ranges_kept,
                w.read_seconds
            ),
            None => log::info!("the backup of this snapshot is already committed"),
        }
    }

    crate::pause::point("commit");
    let queued_before = session.repo.queued()?.len();
    let pushed = session.push();
    // A replay onto another writer's commits gives our snapshot a new commit id: report that one.
    let outcome = match outcome {
        Outcome::Committed(oid) if pushed.is_ok() => {
            let tip = session.repo.tip()?.map_or(oid, |t| t.to_string());
            context.commit = Some(tip.clone());
            Outcome::Committed(tip)
        }
        other => other,
    };
    refresh_view(&session.repo);
    let queued = session.repo.queued()?.len();
    let done = |pushed_to| Report::Done {
        snapshot_dir: snapshot.rel_dir(),
        outcome: outcome.clone(),
        pushed_to,
        queued,
    };
    match pushed {
        Ok(None) => Ok(done(None)),
        Ok(Some(url)) => {
            context.queued = Some(queued);
            // Whatever was sent is worth an event, also when this run itself committed nothing
            // (--skip-unchanged draining an older queue): status reads the last push from it.
            if context.commit.is_some() || queued_before > 0 {
                if let Outcome::Unchanged { since } = &outcome {
                    context.snapshot_dir = format!("{SNAPSHOTS_DIR}/{since}");
                }
                record(&session.publish, "snapshot_pushed", &context);
            }
            if let Some((url, source)) = session.take_backup_push_error() {
                let queued = match &session.publish.backup_branch {
                    Some(b) => crate::publish::backup::queued(&session.repo, b)?.len(),
                    None => 0,
                };
                return Err(Error::BackupPush {
                    source,
                    url,
                    queued,
                });
            }
            Ok(done(Some(url)))
        }
        Err(e) => {
            context.queued = Some(queued);
            context.error = Some(e.to_string());
            record(&session.publish, "snapshot_push_failed", &context);
            Err(Error::Push { source: e, queued })
        }
    }
}

/// Shows the branch's newest snapshot in the clone's working copy: after the push, so that it
/// is the newest also after a replay onto another host's newer snapshot, or when this run's
/// was backdated (`--at`). It only shows what is committed: a failure is a warning.
fn refresh_view(repo: &DataRepo) {
    let shown = repo.newest_snapshot().and_then(|newest| match newest {
        None => Ok(()),
        Some((name, files)) => {
            let files: Vec<(&str, Vec<u8>)> =
                files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
            repo.update_view(&name, &files)
        }
    });
    if let Err(e) = shown {
        log::warn!("cannot update the working copy of the newest snapshot: {e}");
    }
}

/// Queue and push facts for the metrics, read from the clone after the run (without its lock:
/// the run that held it is this one, and it is over).
fn write_metrics(
    config: &Config,
    req: &Request,
    path: &Path,
    exit_code: i32,
    duration: f64,
    snapshot_bytes: u64,
    backup_work: Option<BackupWork>,
) {
    let repo = clone_dir(config, req.target.clone_dir.as_deref())
        .ok()
        .and_then(|dir| DataRepo::open_existing(&dir).ok());
    let metrics = RunMetrics {
        queued: repo
            .as_ref()
            .and_then(|r| r.queued().ok())
            .map_or(0, |q| q.len()),
        oldest_queued: repo
            .as_ref()
            .and_then(|r| r.oldest_queued_time().ok().flatten()),
        last_push_success: repo.as_ref().and_then(DataRepo::last_push_success),
        exit_code,
        duration_seconds: duration,
        snapshot_bytes,
        finished_at: chrono::Utc::now().timestamp(),
        backup: match crate::publish::backup::branch(config) {
            Ok(Some(branch)) => Some(BackupMetrics::read(repo.as_ref(), &branch, backup_work)),
            _ => None,
        },
    };
    if let Err(e) = metrics::write(path, &metrics) {
        log::warn!("cannot write metrics to {}: {e}", path.display());
    }
}
