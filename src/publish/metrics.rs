//! A Prometheus node-exporter textfile describing the last `push`, rewritten atomically after
//! every run, so a stuck queue is something an operator alerts on (e.g.
//! `gitcord_snapshot_oldest_queued_age_seconds > 3 * 3600`) instead of finding it days later.
//! With the backup on, the same for the backup branch (its own queue: with a backup repository
//! of its own it can fail while the snapshots are pushed) and what the run's backup did.

use std::fmt::Write as _;
use std::path::Path;

use crate::publish::backup;
use crate::publish::clone::DataRepo;

/// What one run leaves for the monitoring system.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunMetrics {
    /// Snapshot commits waiting to be pushed after this run.
    pub queued: usize,
    /// Snapshot time (unix seconds) of the oldest queued commit.
    pub oldest_queued: Option<i64>,
    /// When a push last succeeded (unix seconds), from any run.
    pub last_push_success: Option<i64>,
    /// This run's exit code.
    pub exit_code: i32,
    /// This run's wall time in seconds.
    pub duration_seconds: f64,
    /// Bytes of the snapshot this run built (0 if it built none).
    pub snapshot_bytes: u64,
    /// When this run ended (unix seconds).
    pub finished_at: i64,
    /// The backup, when `snapshots.backup` is on.
    pub backup: Option<BackupMetrics>,
}

/// The backup branch after a run, and what the run's backup did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackupMetrics {
    /// Backup commits waiting to be pushed after this run.
    pub queued: usize,
    /// Snapshot time (unix seconds) of the oldest queued backup.
    pub oldest_queued: Option<i64>,
    /// Snapshot time (unix seconds) of the newest backup on the remote, as last seen.
    pub newest_pushed: Option<i64>,
    /// What this run's backup did; `None` when it read no database (it failed before).
    pub work: Option<BackupWork>,
}

/// What one run's backup serialized ([`crate::publish::backup::Work`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackupWork {
    /// Rowid ranges whose rows changed (or are new), serialized and written.
    pub ranges_written: u64,
    /// Rowid ranges that kept their git objects.
    pub ranges_kept: u64,
    /// Bytes of chunk files serialized.
    pub bytes_serialized: u64,
    /// Seconds spent in the read transaction on the backup.
    pub read_seconds: f64,
}

impl From<&crate::publish::backup::Work> for BackupWork {
    fn from(w: &crate::publish::backup::Work) -> BackupWork {
        BackupWork {
            ranges_written: w.ranges_written,
            ranges_kept: w.ranges_kept,
            bytes_serialized: w.bytes_serialized,
            read_seconds: w.read_seconds,
        }
    }
}

impl BackupMetrics {
    /// The backup branch `branch` of the clone after a run (`None`: the clone cannot be
    /// opened, so nothing is known to be queued or pushed), with what the run's backup did.
    pub fn read(repo: Option<&DataRepo>, branch: &str, work: Option<BackupWork>) -> BackupMetrics {
        let time = |oid: git2::Oid| {
            repo.and_then(|r| r.git().find_commit(oid).ok())
                .map(|c| c.committer().when().seconds())
        };
        let queued = repo
            .and_then(|r| backup::queued(r, branch).ok())
            .unwrap_or_default();
        BackupMetrics {
            queued: queued.len(),
            oldest_queued: queued.first().copied().and_then(time),
            newest_pushed: repo
                .and_then(|r| backup::remote_tip(r.git(), branch).ok().flatten())
                .and_then(time),
            work,
        }
    }
}

/// The textfile content, in the exposition format node-exporter reads.
pub fn render(m: &RunMetrics) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: String| {
        let _ = writeln!(out, "# HELP gitcord_snapshot_{name} {help}");
        let _ = writeln!(out, "# TYPE gitcord_snapshot_{name} gauge");
        let _ = writeln!(out, "gitcord_snapshot_{name} {value}");
    };
    gauge(
        "queued_commits",
        "Snapshot commits waiting to be pushed.",
        m.queued.to_string(),
    );
    let age = m.oldest_queued.map_or(0, |t| (m.finished_at - t).max(0));
    gauge(
        "oldest_queued_age_seconds",
        "Age of the oldest queued snapshot (0 when none is queued).",
        age.to_string(),
    );
    gauge(
        "last_push_success_timestamp_seconds",
        "When a push last succeeded (0 if never).",
        m.last_push_success.unwrap_or(0).to_string(),
    );
    gauge(
        "last_run_exit_code",
        "Exit code of the last run (0 success, 75 retry later, 77 refused, ...).",
        m.exit_code.to_string(),
    );
    gauge(
        "last_run_duration_seconds",
        "Wall time of the last run.",
        format!("{:.3}", m.duration_seconds),
    );
    gauge(
        "last_run_snapshot_bytes",
        "Size of the snapshot the last run built.",
        m.snapshot_bytes.to_string(),
    );
    gauge(
        "last_run_timestamp_seconds",
        "When the last run ended.",
        m.finished_at.to_string(),
    );
    if let Some(b) = &m.backup {
        gauge(
            "backup_queued_commits",
            "Backup commits waiting to be pushed.",
            b.queued.to_string(),
        );
        let age = b.oldest_queued.map_or(0, |t| (m.finished_at - t).max(0));
        gauge(
            "backup_oldest_queued_age_seconds",
            "Age of the oldest queued backup (0 when none is queued).",
            age.to_string(),
        );
        gauge(
            "backup_last_pushed_timestamp_seconds",
            "Snapshot time of the newest backup on the remote, as last seen (0 if none).",
            b.newest_pushed.unwrap_or(0).to_string(),
        );
        let w = b.work.clone().unwrap_or_default();
        gauge(
            "last_run_backup_ranges_written",
            "Rowid ranges the last run's backup serialized and wrote (changed or new).",
            w.ranges_written.to_string(),
        );
        gauge(
            "last_run_backup_ranges_kept",
            "Rowid ranges the last run's backup kept unchanged.",
            w.ranges_kept.to_string(),
        );
        gauge(
            "last_run_backup_bytes_serialized",
            "Bytes of rows the last run's backup serialized.",
            w.bytes_serialized.to_string(),
        );
        gauge(
            "last_run_backup_read_seconds",
            "Seconds the last run's backup took inside the read transaction.",
            format!("{:.3}", w.read_seconds),
        );
    }
    out
}

/// Replaces `path` with the metrics, by rename, so node-exporter never reads half a file;
/// world-readable, as node-exporter usually runs as another user.
pub fn write(path: &Path, m: &RunMetrics) -> std::io::Result<()> {
    crate::publish::directory::write_file_atomically(path, render(m).as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every line of `want` is a whole line of `text`.
    fn assert_lines(text: &str, want: &[&str]) {
        for line in want {
            assert!(
                text.lines().any(|l| l == *line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn renders_every_gauge_with_help_and_type() {
        let m = RunMetrics {
            queued: 2,
            oldest_queued: Some(1_000),
            last_push_success: Some(900),
            exit_code: 75,
            duration_seconds: 0.25,
            snapshot_bytes: 4096,
            finished_at: 4_600,
            backup: None,
        };
        let text = render(&m);
        assert_lines(
            &text,
            &[
                "gitcord_snapshot_queued_commits 2",
                "gitcord_snapshot_oldest_queued_age_seconds 3600",
                "gitcord_snapshot_last_push_success_timestamp_seconds 900",
                "gitcord_snapshot_last_run_exit_code 75",
                "gitcord_snapshot_last_run_duration_seconds 0.250",
                "gitcord_snapshot_last_run_snapshot_bytes 4096",
                "gitcord_snapshot_last_run_timestamp_seconds 4600",
            ],
        );
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 7);
        assert!(!text.contains("backup"), "no backup gauges when it is off");
    }

    #[test]
    fn renders_the_backup_gauges_when_it_is_on() {
        let m = RunMetrics {
            finished_at: 10_000,
            backup: Some(BackupMetrics {
                queued: 3,
                oldest_queued: Some(2_800),
                newest_pushed: Some(2_000),
                work: Some(BackupWork {
                    ranges_written: 4,
                    ranges_kept: 4_096,
                    bytes_serialized: 123_456,
                    read_seconds: 1.5,
                }),
            }),
            ..RunMetrics::default()
        };
        let text = render(&m);
        assert_lines(
            &text,
            &[
                "gitcord_snapshot_backup_queued_commits 3",
                "gitcord_snapshot_backup_oldest_queued_age_seconds 7200",
                "gitcord_snapshot_backup_last_pushed_timestamp_seconds 2000",
                "gitcord_snapshot_last_run_backup_ranges_written 4",
                "gitcord_snapshot_last_run_backup_ranges_kept 4096",
                "gitcord_snapshot_last_run_backup_bytes_serialized 123456",
                "gitcord_snapshot_last_run_backup_read_seconds 1.500",
            ],
        );
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 14);
        assert_eq!(text.lines().filter(|l| l.starts_with("# HELP")).count(), 14);
        // Nothing queued, never pushed, no backup this run: zeros, not missing series.
        let idle = render(&RunMetrics {
            finished_at: 10_000,
            backup: Some(BackupMetrics::default()),
            ..RunMetrics::default()
        });
        assert_lines(
            &idle,
            &[
                "gitcord_snapshot_backup_queued_commits 0",
                "gitcord_snapshot_backup_oldest_queued_age_seconds 0",
                "gitcord_snapshot_backup_last_pushed_timestamp_seconds 0",
                "gitcord_snapshot_last_run_backup_ranges_written 0",
                "gitcord_snapshot_last_run_backup_bytes_serialized 0",
            ],
        );
    }

    #[test]
    fn writes_atomically_and_readably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gitcord.prom");
        write(&path, &RunMetrics::default()).unwrap();
        write(
            &path,
            &RunMetrics {
                queued: 5,
                ..RunMetrics::default()
            },
        )
        .unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("gitcord_snapshot_queued_commits 5"));
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
