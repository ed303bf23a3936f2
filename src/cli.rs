//! The command-line interface, declared in one place. Nothing here leaks past `main.rs`,
//! which turns these values into the library's request types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gitcord_snapshot::commands::{parse_rfc3339, Timestamp, Within};
use uuid::Uuid;

/// Publishes Gitcord's state as append-only JSON snapshots in a git data repository.
#[derive(Debug, Parser)]
#[command(name = "gitcord-snapshot", version, propagate_version = true)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The operator commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write one snapshot directory (the seven JSON files) from Gitcord's state; no git.
    Export(ExportArgs),
    /// Build a snapshot, commit it into the local clone of the data repository and push
    /// everything queued (the cron job).
    Push(PushArgs),
    /// Show the clone's branch, remote, queue, newest snapshots, last push and lock.
    Status(StatusArgs),
    /// Remove old snapshot directories from the tip by retention rules (history keeps them).
    Prune(PruneArgs),
    /// Show what changed between two snapshots in the local clone: identities, scores, roles,
    /// issue requests, contributors.
    Diff(DiffArgs),
    /// Write a new Gitcord state database from the backup of a snapshot (every table, every
    /// row, and the audit log), for when state.db is lost. A snapshot older than the backup
    /// gives back only what the snapshot holds.
    Restore(RestoreArgs),
    /// Check the clone's whole branch history: every snapshot matches schemas/, and no commit
    /// changed or deleted a snapshot (except a prune removing whole directories); and every
    /// backup commit is whole (everything it names present, counts adding up). Read-only.
    Verify(VerifyArgs),
}

/// `verify`'s arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Print one JSON object {"commits", "snapshots", "problems": [{"commit", "path", "problem"}]}
    /// instead of the summary line.
    #[arg(long)]
    pub json: bool,
    /// An allowed-signers file (git's gpg.ssh.allowedSignersFile format): every commit that
    /// changes snapshots/ or latest.json must be signed by one of its keys
    /// [default: snapshots.allowed_signers].
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// Also restore the backup of a snapshot (latest, latest~N, a name, or all) into a
    /// temporary file and export it with the snapshot's run id, time and roles: all seven files
    /// must come back byte for byte [default when given without a value: latest].
    #[arg(long, value_name = "SNAPSHOT", num_args = 0..=1, default_missing_value = "latest")]
    pub prove_restore: Option<String>,
}

/// `restore`'s arguments.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The snapshot to restore: latest, latest~N (N snapshots before the newest) or a
    /// directory name under snapshots/.
    #[arg(long, value_name = "SNAPSHOT")]
    pub snapshot: String,
    /// The database to create; it must not exist (restore never overwrites a file).
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
    /// Where the backed-up audit log is written back; it must not exist
    /// [default: audit_events.jsonl beside --to].
    #[arg(long, value_name = "FILE")]
    pub audit_log: Option<PathBuf>,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The config and the clone; shared by every command that works on the clone.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Gitcord's YAML config file (the same one Gitcord runs with).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// The persistent local clone [default: snapshots.clone_dir, else <runtime.data_dir>/snapshot-repo].
    #[arg(long, value_name = "DIR")]
    pub clone_dir: Option<PathBuf>,
}

/// Where a snapshot's inputs come from; shared by every command that builds one.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Gitcord's YAML config file (the same one Gitcord runs with).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Gitcord's SQLite state [default: <runtime.data_dir>/state.db]. Opened read-only.
    #[arg(long, value_name = "FILE")]
    pub state_db: Option<PathBuf>,
    /// Discord member roles as {"<discord_user_id>": ["<role name>", ...]}
    /// [default: snapshots.roles_file].
    #[arg(long, value_name = "FILE")]
    pub roles_file: Option<PathBuf>,
    /// The run id written into every file and the directory name [default: a random UUID v4].
    #[arg(long, value_name = "UUID", value_parser = parse_run_id)]
    pub run_id: Option<Uuid>,
    /// The snapshot time, RFC 3339 with any offset; stored in UTC [default: now].
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    pub at: Option<Timestamp>,
    /// Seconds to wait for a Gitcord run that holds the database lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub busy_timeout: f64,
    /// Threads (each with its own read-only connection) reading the contributions at once,
    /// 1 to 4 [default: the number of CPUs, at most 4]. 1 leaves the bot's host its other cores.
    #[arg(long, value_name = "N", env = "GITCORD_SNAPSHOT_READ_THREADS",
          value_parser = clap::value_parser!(u16).range(1..=4))]
    pub read_threads: Option<u16>,
}

/// `export`'s arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Directory to write `snapshots/<name>/` into; created if missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `diff`'s arguments.
#[derive(Debug, Args)]
pub struct DiffArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// The "before" snapshot: a name under snapshots/, latest, or latest~N (N before the newest).
    #[arg(value_name = "A")]
    pub from: String,
    /// The "after" snapshot, named the same way.
    #[arg(value_name = "B")]
    pub to: String,
}

/// `push`'s arguments.
#[derive(Debug, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// The persistent local clone [default: snapshots.clone_dir, else <runtime.data_dir>/snapshot-repo].
    #[arg(long, value_name = "DIR")]
    pub clone_dir: Option<PathBuf>,
    /// The data repository [default: snapshots.remote_url, else https://github.com/<snapshots.repo_path>.git].
    /// HTTPS, a file:// URL or a local path; never with credentials in it.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Make no commit when nothing but the run's own fields (generated_at, run_id, period)
    /// differs from the newest snapshot [default: snapshots.skip_unchanged].
    #[arg(long)]
    pub skip_unchanged: bool,
    /// Rewrite this Prometheus textfile after the run [default: snapshots.metrics_file].
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `status`'s arguments.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `prune`'s arguments: restic's retention rules, combinable; a snapshot kept by any stays.
#[derive(Debug, Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub repo: RepoArgs,
    /// The data repository [default: snapshots.remote_url, else https://github.com/<snapshots.repo_path>.git].
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<usize>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<usize>,
    /// Keep the newest snapshot of each of the last N days that have one.
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<usize>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<usize>,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<usize>,
    /// Keep every snapshot up to this much older than the newest (e.g. 1y6m, 30d, 12h).
    #[arg(long, value_name = "DURATION")]
    pub keep_within: Option<Within>,
    /// List what would be removed and kept; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print the result as one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where the clone is and how the remote is reached; shared by `push` and `prune`.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Commit into the local clone only; touch no network.
    #[arg(long)]
    pub no_push: bool,
    /// Seconds to wait for another run that holds the clone's lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    pub lock_timeout: f64,
}

fn parse_run_id(text: &str) -> Result<Uuid, String> {
    Uuid::try_parse(text)
        .map_err(|_| "not a UUID (expected e.g. 123e4567-e89b-42d3-a456-426614174000)".to_owned())
}

fn parse_at(text: &str) -> Result<Timestamp, String> {
    parse_rfc3339(text)
        .ok_or_else(|| "not an RFC 3339 time (expected e.g. 2024-01-31T12:00:00+00:00)".to_owned())
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => Ok(s),
        _ => Err("expected a number of seconds between 0 and 86400".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_interface_is_consistent() {
        Cli::command().debug_assert();
    }
}
