//! A Prometheus node-exporter textfile describing the last `push`, rewritten atomically after
//! every run, so a stuck queue is something an operator alerts on (e.g.
//! `gitcord_snapshot_oldest_queued_age_seconds > 3 * 3600`) instead of finding it days later.

use std::fmt::Write as _;
use std::path::Path;

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
        };
        let text = render(&m);
        for line in [
            "gitcord_snapshot_queued_commits 2",
            "gitcord_snapshot_oldest_queued_age_seconds 3600",
            "gitcord_snapshot_last_push_success_timestamp_seconds 900",
            "gitcord_snapshot_last_run_exit_code 75",
            "gitcord_snapshot_last_run_duration_seconds 0.250",
            "gitcord_snapshot_last_run_snapshot_bytes 4096",
            "gitcord_snapshot_last_run_timestamp_seconds 4600",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        assert_eq!(text.lines().filter(|l| l.starts_with("# TYPE")).count(), 7);
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
