//! One module per operator command, each a function over the shared stages.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};

pub mod diff;
pub mod export;
pub mod prune;
pub mod push;
pub mod restore;
pub mod status;
pub mod verify;

/// The clone every command works on: `--clone-dir`, else `snapshots.clone_dir`, else
/// `<runtime.data_dir>/snapshot-repo`, so `push`, `status`, `verify` and the rest agree.
pub fn clone_dir(config: &Config, flag: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = flag {
        return Ok(dir.to_owned());
    }
    if let Some(dir) = config.expand_opt(&config.snapshots.clone_dir)? {
        return Ok(PathBuf::from(dir));
    }
    let data_dir = config.data_dir()?.ok_or_else(|| {
        config.invalid(
            "snapshots.clone_dir",
            "is not set and there is no runtime.data_dir to put it in (or pass --clone-dir)",
        )
    })?;
    Ok(data_dir.join("snapshot-repo"))
}
