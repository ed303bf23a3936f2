//! `status`: what an operator checks first when something looks wrong. Reads the clone and
//! the audit log; never locks, writes or touches the network.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::commands::Render;
use crate::error::Error;
use crate::input::config::Config;
use crate::publish::audit;
use crate::publish::backup;
use crate::publish::clone::{set_aside_copies, DataRepo};
use crate::publish::remote::without_credentials;
use crate::publish::session::{clone_dir, signing_key};
use crate::time;

/// What `status` was asked about.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Gitcord's config file (it names the clone).
    pub config: PathBuf,
    /// `--clone-dir`, overriding `snapshots.clone_dir`.
    pub clone_dir: Option<PathBuf>,
}

/// Everything `status` reports; `--json` prints it as is.
#[derive(Clone, Debug, Serialize)]
pub struct Status {
    /// The clone this describes.
    pub clone_dir: PathBuf,
    /// The branch snapshots are committed to.
    pub branch: String,
    /// The data repository's URL (the clone never stores credentials; any are stripped).
    pub remote: Option<String>,
    /// Snapshot commits waiting to be pushed.
    pub queued: usize,
    /// Snapshot time of the oldest queued commit.
    pub oldest_queued_at: Option<String>,
    /// The newest snapshot on the local branch.
    pub newest_snapshot: Option<String>,
    /// The newest snapshot on the remote branch, as last seen.
    pub newest_remote_snapshot: Option<String>,
    /// How many snapshot directories the branch holds.
    pub snapshots: usize,
    /// The last push result from the audit log.
    pub last_push: Option<LastPush>,
    /// Whether a run holds the clone's lock right now.
    pub locked: bool,
    /// Damaged clones set aside by a rebuild (kept, never deleted).
    pub set_aside: Vec<SetAside>,
    /// The fingerprint of `snapshots.signing_key` when commits are signed.
    pub signing_key: Option<String>,
    /// Why the configured signing key cannot be used (`push` would refuse to run).
    pub signing_error: Option<String>,
    /// The backup branch (`None`: `snapshots.backup: false`).
    pub backup: Option<BackupStatus>,
}

/// The backup branch as the clone has it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BackupStatus {
    /// The branch.
    pub branch: String,
    /// Backup commits not yet pushed.
    pub queued: usize,
    /// The snapshot the newest local backup belongs to.
    pub newest: Option<String>,
    /// The snapshot the newest backup on the remote (as last seen) belongs to.
    pub newest_remote: Option<String>,
    /// The repository backups go to (`snapshots.backup_remote_url`, as the last run recorded
    /// it in the clone); `None`: the data repository itself.
    pub repository: Option<String>,
}

/// The snapshot the backup commit `tip` names, if any.
fn backed_up_snapshot(repo: &DataRepo, tip: Option<git2::Oid>) -> Option<String> {
    let commit = repo.git().find_commit(tip?).ok()?;
    let message = String::from_utf8_lossy(commit.message_raw_bytes()).into_owned();
    crate::snapshot::backup::snapshot_of_message(&message).map(str::to_owned)
}

/// A damaged clone a rebuild moved aside.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SetAside {
    /// Where it is.
    pub path: PathBuf,
    /// Whether its queued snapshots were replayed onto the new clone (else the next push does).
    pub salvaged: bool,
}

/// The newest `snapshot_pushed` or `snapshot_push_failed` audit event.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LastPush {
    /// `snapshot_pushed` or `snapshot_push_failed`.
    pub event: String,
    /// When it was written.
    pub timestamp: String,
    /// Why it failed, for a failure.
    pub error: Option<String>,
}

/// Reads the status of the clone named by the config (or `--clone-dir`).
pub fn run(req: &Request) -> Result<Status, Error> {
    let config = Config::load(&req.config)?;
    let dir = clone_dir(&config, req.clone_dir.as_deref())?;
    let repo = DataRepo::open_existing(&dir)?;
    let signing = signing_key(&config);
    let remote_tip = repo.remote_tip()?;
    let names = repo.snapshot_names(None)?;
    let audit_log = config.data_dir()?.map(|d| d.join(audit::FILE_NAME));
    Ok(Status {
        branch: repo.branch().to_owned(),
        remote: repo.remote_url().as_deref().map(without_credentials),
        queued: repo.queued()?.len(),
        oldest_queued_at: repo
            .oldest_queued_time()?
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(|t| time::isoformat(&t)),
        newest_snapshot: repo.newest_name(None)?,
        newest_remote_snapshot: match remote_tip {
            Some(tip) => repo.newest_name(Some(tip))?,
            None => None,
        },
        snapshots: names.len(),
        last_push: audit_log.as_deref().and_then(last_push),
        locked: DataRepo::is_locked(&dir),
        set_aside: set_aside_copies(&dir)
            .into_iter()
            .map(|(path, salvaged)| SetAside { path, salvaged })
            .collect(),
        signing_key: signing
            .as_ref()
            .ok()
            .and_then(|k| k.as_ref().map(|k| k.fingerprint())),
        signing_error: signing.err().map(|e| e.to_string()),
        backup: match backup::branch(&config)? {
            None => None,
            Some(branch) => Some(BackupStatus {
                queued: backup::queued(&repo, &branch)?.len(),
                newest: backed_up_snapshot(&repo, backup::local_tip(repo.git(), &branch)?),
                newest_remote: backed_up_snapshot(&repo, backup::remote_tip(repo.git(), &branch)?),
                repository: repo
                    .git()
                    .find_remote(backup::BACKUP_REMOTE)
                    .ok()
                    .and_then(|r| r.url().map(without_credentials)),
                branch,
            }),
        },
        clone_dir: dir,
    })
}

fn last_push(path: &Path) -> Option<LastPush> {
    let file = std::fs::File::open(path).ok()?;
    let mut last = None;
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        if !line.contains("snapshot_push") {
            continue; // most of Gitcord's audit log is about other things
        }
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let kind = event["event_type"].as_str().unwrap_or_default();
        if kind == "snapshot_pushed" || kind == "snapshot_push_failed" {
            last = Some(LastPush {
                event: kind.to_owned(),
                timestamp: event["timestamp"].as_str().unwrap_or_default().to_owned(),
                error: event["context"]["error"].as_str().map(str::to_owned),
            });
        }
    }
    last
}

impl Render for Status {
    fn text(&self) -> String {
        describe(self)
    }
}

/// The human-readable form.
fn describe(s: &Status) -> String {
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    let mut lines = vec![
        format!("clone:            {}", s.clone_dir.display()),
        format!("branch:           {}", s.branch),
        format!(
            "remote:           {}",
            s.remote
                .clone()
                .unwrap_or_else(|| "none (local only)".into())
        ),
        format!("snapshots:        {}", s.snapshots),
        format!("newest (local):   {}", or_none(&s.newest_snapshot)),
        format!(
            "newest (remote):  {} (as last seen)",
            or_none(&s.newest_remote_snapshot)
        ),
        match &s.oldest_queued_at {
            Some(t) => format!("queued:           {} commit(s), oldest from {t}", s.queued),
            None => format!("queued:           {}", s.queued),
        },
    ];
    lines.push(match &s.last_push {
        Some(p) => match &p.error {
            Some(e) => format!("last push:        failed at {}: {e}", p.timestamp),
            None => format!("last push:        succeeded at {}", p.timestamp),
        },
        None => "last push:        none recorded".into(),
    });
    for copy in &s.set_aside {
        let state = if copy.salvaged {
            "salvaged"
        } else {
            "not yet salvaged (the next push does)"
        };
        lines.push(format!(
            "set aside:        {} ({state})",
            copy.path.display()
        ));
    }
    lines.push(match &s.backup {
        None => "backup:           off (snapshots.backup: false)".to_owned(),
        Some(b) => format!(
            "backup:           {} of {}, newest of {} locally, of {} on the remote (as last seen), {} queued",
            b.branch,
            b.repository.as_deref().unwrap_or("the data repository"),
            or_none(&b.newest),
            or_none(&b.newest_remote),
            b.queued
        ),
    });
    lines.push(match (&s.signing_key, &s.signing_error) {
        (_, Some(e)) => format!("signing:          misconfigured: {e}"),
        (Some(fp), None) => format!("signing:          on, key {fp}"),
        (None, None) => "signing:          off".to_owned(),
    });
    lines.push(format!(
        "lock:             {}",
        if s.locked {
            "held by a running push"
        } else {
            "free"
        }
    ));
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_push_event_wins() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit_events.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"event_type":"snapshot_pushed","context":{},"timestamp":"t1"}"#, "\n",
                r#"{"event_type":"identity_verified","context":{},"timestamp":"t2"}"#, "\n",
                "not json snapshot_push\n",
                r#"{"event_type":"snapshot_push_failed","context":{"error":"down"},"timestamp":"t3"}"#, "\n",
            ),
        )
        .unwrap();
        let last = last_push(&path).unwrap();
        assert_eq!(
            last,
            LastPush {
                event: "snapshot_push_failed".into(),
                timestamp: "t3".into(),
                error: Some("down".into())
            }
        );
    }
}
