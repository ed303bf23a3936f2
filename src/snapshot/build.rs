//! The whole config → state → snapshot pipeline, shared by `export` and `push`: reads every
//! input, assembles the model, writes nothing.

use std::path::PathBuf;
use std::time::Duration;

use uuid::Uuid;

use crate::input::config::{Config, ConfigError};
use crate::input::discord::{self, DiscordApi, DiscordError};
use crate::input::roles::{self, RoleMap, RolesError};
use crate::input::state::{self, ReadOptions, Sharing, StateError};
use crate::net::Secret;
use crate::snapshot::contributors::Tally;
use crate::snapshot::model::{period_start, RunInfo, Snapshot};
use crate::threads;
use crate::time::{self, Timestamp};

/// Why a snapshot could not be built: one of the inputs failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `state.db`.
    #[error(transparent)]
    State(#[from] StateError),
    /// The roles file.
    #[error(transparent)]
    Roles(#[from] RolesError),
    /// Discord's API.
    #[error(transparent)]
    Discord(#[from] DiscordError),
}

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
    pub at: Option<Timestamp>,
    /// How long to wait for a Gitcord run holding the database lock.
    pub busy_timeout: Duration,
    /// Threads reading the contributions at once; default one per CPU (at most 4).
    pub read_threads: Option<usize>,
}

/// Reads everything and assembles the snapshot; writes nothing.
pub fn build(config: &Config, inputs: &Inputs) -> Result<Snapshot, BuildError> {
    build_with(config, inputs, None)
}

/// [`build`], with `hook` run inside the database's read transaction (the backup).
pub fn build_with(
    config: &Config,
    inputs: &Inputs,
    hook: Option<&mut dyn state::backup::Hook>,
) -> Result<Snapshot, BuildError> {
    let run = RunInfo {
        run_id: inputs.run_id.unwrap_or_else(Uuid::new_v4),
        at: inputs.at.unwrap_or_else(time::now),
        org: config.org()?,
        period_days: config.period_days,
    };
    let state_db = match &inputs.state_db {
        Some(path) => path.clone(),
        None => config.require_data_dir()?.join("state.db"),
    };
    let opts = ReadOptions {
        period_start: time::isoformat(&period_start(run.at, run.period_days)),
        period_end: time::isoformat(&run.at),
        busy_timeout: inputs.busy_timeout,
        sharing: Sharing::with_connections(inputs.read_threads),
    };
    let new_tally = || Tally::new(&config.difficulty_weights, config.pr_merged_weight);
    // The roles (a file, or Discord's API: a network round trip per page of members) are
    // loaded while the database is read. Without them there is no snapshot, so their failure
    // is the one reported, as when they were loaded first.
    let (roles, state) = std::thread::scope(|scope| {
        let roles = threads::spawn(scope, || load_roles(config, inputs));
        let state = match hook {
            None => state::read(&state_db, &opts, &new_tally),
            hook => state::read_with(&state_db, &opts, &new_tally, hook),
        };
        let roles = roles.join().unwrap_or_else(|| load_roles(config, inputs));
        (roles, state)
    });
    let roles = roles?;
    let (tables, tally) = state?;
    let contributors = tally.finish().map_err(|reason| StateError::BadData {
        path: state_db.clone(),
        reason: format!("contributions: {reason}"),
    })?;
    let mut legacy_error = None;
    let snapshot = Snapshot::assemble(run, tables, contributors, roles, || {
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

fn load_roles(config: &Config, inputs: &Inputs) -> Result<RoleMap, BuildError> {
    let path = match (&inputs.roles_file, config.snapshots.roles_file()) {
        (Some(path), _) => path.clone(),
        (None, Some(text)) => PathBuf::from(config.expand(text)?),
        (None, None) => {
            // No file: ask Discord, as Gitcord does. The values are checked before anything is sent.
            let (guild_id, token, api_base) = config.discord()?;
            let api = DiscordApi::new(api_base.as_deref(), &guild_id, Secret::new(token))
                .map_err(|e| config.invalid(e.key(), e))?;
            return Ok(discord::load_roles(&api, config.snapshots.roles_required)?);
        }
    };
    Ok(roles::load_roles_file(&path)?)
}
