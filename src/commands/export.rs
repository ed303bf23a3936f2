//! `export`: one snapshot from Gitcord's state into a directory, no git involved.
//!
//! This is also the first half of `push`: [`build_snapshot`] is the whole
//! config → state → snapshot pipeline.

use std::path::{Path, PathBuf};
use std::time::Duration;

use uuid::Uuid;

use crate::config::Config;
use crate::contributors::Tally;
use crate::error::Error;
use crate::discord::DiscordApi;
use crate::net::Secret;
use crate::roles::{self, RoleMap};
use crate::snapshot::{RunInfo, Snapshot};
use crate::state::{self, ReadOptions};
use crate::timefmt::{self, Instant};
use crate::{output, serialize};

/// Where a snapshot's inputs come from and which run it is; shared by `export` and `push`.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// `--state-db`; default `<runtime.data_dir>/state.db`.
    pub state_db: Option<PathBuf>,
    /// `--roles-file`; default `snapshots.roles_file`.
    pub roles_file: Option<PathBuf>,
    /// `--run-id`; default a random UUID v4.
    pub run_id: Option<Uuid>,
    /// `--at`; default now.
    pub at: Option<Instant>,
    /// How long to wait for a Gitcord run holding the database lock.
    pub busy_timeout: Duration,
}

/// Reads everything and assembles the snapshot; writes nothing.
pub fn build_snapshot(config: &Config, inputs: &Inputs) -> Result<Snapshot, Error> {
    let run = RunInfo {
        run_id: inputs.run_id.unwrap_or_else(Uuid::new_v4),
        at: inputs.at.unwrap_or_else(timefmt::now),
        org: config.org()?,
        period_days: config.period_days,
    };
    let state_db = match &inputs.state_db {
        Some(path) => path.clone(),
        None => config.require_data_dir()?.join("state.db"),
    };
    // Roles first: without them there is no snapshot, so fail before touching the database.
    let roles = load_roles(config, inputs)?;
    let opts = ReadOptions {
        period_start: timefmt::isoformat(&crate::snapshot::period_start(run.at, run.period_days)),
        period_end: timefmt::isoformat(&run.at),
        busy_timeout: inputs.busy_timeout,
    };
    let mut tally = Tally::new(&config.difficulty_weights, config.pr_merged_weight);
    let tables = state::read(&state_db, &opts, |c| tally.add(c))?;
    let mut legacy_error = None;
    let snapshot = Snapshot::assemble(run, tables, tally.finish(), roles, || {
        config.identity_mappings().unwrap_or_else(|e| {
            legacy_error = Some(e);
            Vec::new()
        })
    });
    match legacy_error {
        Some(e) => Err(e.into()),
        None => Ok(snapshot),
    }
}

fn load_roles(config: &Config, inputs: &Inputs) -> Result<RoleMap, Error> {
    let path = match (&inputs.roles_file, config.snapshots.roles_file()) {
        (Some(path), _) => path.clone(),
        (None, Some(text)) => PathBuf::from(config.expand(text)?),
        (None, None) => {
            // No file: ask Discord, as Gitcord does. The values are checked before anything is sent.
            let (guild_id, token, api_base) = config.discord()?;
            let api = DiscordApi::new(api_base.as_deref(), &guild_id, Secret::new(token))
                .map_err(|e| config.invalid(e.key(), e))?;
            return Ok(roles::load_from_discord(&api, config.snapshots.roles_required)?);
        }
    };
    Ok(roles::load_roles_file(&path)?)
}

/// Builds the snapshot and writes it to `<out>/snapshots/<name>/`; returns that directory.
pub fn run(config_path: &Path, inputs: &Inputs, out: &Path) -> Result<PathBuf, Error> {
    let config = Config::load(config_path)?;
    let snapshot = build_snapshot(&config, inputs)?;
    let dest = out.join(snapshot.rel_dir());
    // Refuse before rendering: the cheapest check first, and the clearest message.
    if dest.symlink_metadata().is_ok() {
        return Err(output::OutputError::Exists(dest).into());
    }
    let files = serialize::render(&snapshot)?;
    output::write_dir_atomically(&dest, &files, output::Durability::Synced)?;
    log::info!("wrote {}", dest.display());
    Ok(dest)
}
