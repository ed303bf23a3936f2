//! `restore`: a new Gitcord `state.db` from a snapshot in the local clone, for when Gitcord's
//! database is lost.
//!
//! The clone is only read (no lock, no network), so a restore can run while `push` is
//! scheduled, and the snapshot chosen is the one on the clone's branch.

use std::path::PathBuf;

use serde::Serialize;

use crate::commands::Render;
use crate::error::Error;
use crate::input::config::Config;
use crate::maintenance::backup::Restored;
use crate::maintenance::restore::{self, RestoreCounts, RestoreError};
use crate::publish::backup;
use crate::publish::clone::DataRepo;
use crate::publish::session::clone_dir;

/// What `restore` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Gitcord's config file (for the clone's location).
    pub config: PathBuf,
    /// `--clone-dir`, overriding `snapshots.clone_dir`.
    pub clone_dir: Option<PathBuf>,
    /// `latest`, `latest~N` or a snapshot directory name.
    pub snapshot: String,
    /// The database to create; it must not exist.
    pub to: PathBuf,
    /// Where the audit log is written back; default `audit_events.jsonl` beside `to`.
    pub audit_log: Option<PathBuf>,
}

/// What `restore` did, for the path it prints and the counts it logs.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The snapshot directory name the database was restored from.
    pub snapshot: String,
    /// The database written.
    pub to: PathBuf,
    /// Rows per table, when restored from the snapshot's files (no backup names it).
    pub counts: Option<RestoreCounts>,
    /// What the backup gave back, when one names the snapshot.
    pub backup: Option<Restored>,
}

impl Render for Report {
    fn text(&self) -> String {
        self.to.display().to_string()
    }
}

/// Runs one `restore`.
pub fn run(req: &Request) -> Result<Report, Error> {
    let config = Config::load(&req.config)?;
    // Refuse first: the cheapest check, and the one an operator most needs to see.
    if req.to.symlink_metadata().is_ok() {
        return Err(RestoreError::Exists(req.to.clone()).into());
    }
    let clone_dir = clone_dir(&config, req.clone_dir.as_deref())?;
    if !clone_dir.join(".git").exists() {
        return Err(RestoreError::NoClone(clone_dir).into());
    }
    let repo = DataRepo::open_existing(&clone_dir)?;
    let name = repo.resolve_snapshot(&req.snapshot)?;
    match backup::branch(&config)? {
        Some(branch) => match backup::find(repo.git(), &branch, &name)? {
            Some(found) => return from_backup(req, &repo, &found, name),
            None if backup::exists(repo.git(), &branch)? => log::warn!(
                "snapshots/{name} predates the backup (no commit on {branch} names it; or its \
                 run was stopped before its backup was committed): restoring only what the \
                 snapshot holds"
            ),
            None => log::warn!(
                "there is no backup ({branch} is not in the clone): restoring only what \
                 snapshots/{name} holds"
            ),
        },
        None => log::warn!("snapshots.backup is off: restoring only what snapshots/{name} holds"),
    }
    let files = repo.read_snapshot(&name)?;
    let counts = restore::write_database(&files, &req.to).map_err(|e| match e {
        // Name the file as it is in the data repository, so it can be looked at.
        RestoreError::Invalid { file, reason } => RestoreError::Invalid {
            file: format!("snapshots/{name}/{file}"),
            reason,
        },
        other => other,
    })?;
    log::info!(
        "restored snapshots/{name} into {}: {} identity link(s), {} score(s), {} pending issue request(s), \
         {} notification(s)",
        req.to.display(),
        counts.identities,
        counts.scores,
        counts.issue_requests,
        counts.notifications
    );
    Ok(Report {
        snapshot: name,
        to: req.to.clone(),
        counts: Some(counts),
        backup: None,
    })
}

/// Restores the database (and the audit log) from the backup commit naming the snapshot.
fn from_backup(
    req: &Request,
    repo: &DataRepo,
    found: &backup::Found,
    name: String,
) -> Result<Report, Error> {
    let audit_to = match &req.audit_log {
        Some(p) => p.clone(),
        None => req
            .to
            .parent()
            .unwrap_or(std::path::Path::new("."))
            .join(crate::snapshot::backup::AUDIT_FILE),
    };
    if found.manifest.audit.is_some() && audit_to.symlink_metadata().is_ok() {
        log::warn!(
            "the backup holds Gitcord's audit log too, and {} exists: pass --audit-log FILE to \
             write it elsewhere",
            audit_to.display()
        );
    }
    let restored = crate::maintenance::backup::restore(repo.git(), found, &req.to, &audit_to)?;
    let rows: u64 = restored.tables.iter().map(|(_, n)| n).sum();
    log::info!(
        "restored snapshots/{name} from backup {} into {}: {} table(s), {rows} row(s)",
        restored.commit,
        req.to.display(),
        restored.tables.len()
    );
    if let Some((path, lines)) = &restored.audit_log {
        log::info!("wrote the audit log {} ({lines} line(s))", path.display());
    }
    for (discord, github) in &restored.pending_verifications {
        log::warn!(
            "pending identity verification of Discord user {discord} as GitHub user {github} \
             has no code (codes are never published): it must be started again"
        );
    }
    Ok(Report {
        snapshot: name,
        to: req.to.clone(),
        counts: None,
        backup: Some(restored),
    })
}
