//! The command-line interface, declared in one place. Nothing here leaks past `main.rs`,
//! which turns these values into the library's request types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use gitcord_snapshot::timefmt::{self, Instant};
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
    pub at: Option<Instant>,
    /// Seconds to wait for a Gitcord run that holds the database lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub busy_timeout: f64,
}

/// `export`'s arguments.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Directory to write `snapshots/<name>/` into; created if missing.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
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
    /// Commit into the local clone only; touch no network.
    #[arg(long)]
    pub no_push: bool,
    /// Seconds to wait for another run that holds the clone's lock.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = parse_seconds)]
    pub lock_timeout: f64,
}

fn parse_run_id(text: &str) -> Result<Uuid, String> {
    Uuid::try_parse(text).map_err(|_| "not a UUID (expected e.g. 123e4567-e89b-42d3-a456-426614174000)".to_owned())
}

fn parse_at(text: &str) -> Result<Instant, String> {
    timefmt::parse_rfc3339(text)
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
