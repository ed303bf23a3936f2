//! `export`: one snapshot from Gitcord's state into a directory, no git involved.

use std::path::PathBuf;

use serde::Serialize;

use crate::commands::Render;
use crate::error::Error;
use crate::input::config::Config;
use crate::publish::directory::{self, Durability, OutputError};
use crate::snapshot::build::{self, Inputs};
use crate::snapshot::format;

/// What `export` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Gitcord's config file.
    pub config: PathBuf,
    /// Where the snapshot's inputs come from.
    pub inputs: Inputs,
    /// `--out`: the snapshot goes to `<out>/snapshots/<name>/`.
    pub out: PathBuf,
}

/// What `export` wrote.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The new snapshot directory.
    pub dir: PathBuf,
}

impl Render for Report {
    fn text(&self) -> String {
        self.dir.display().to_string()
    }
}

/// Builds the snapshot and writes it to `<out>/snapshots/<name>/`.
pub fn run(req: &Request) -> Result<Report, Error> {
    let config = Config::load(&req.config)?;
    let snapshot = build::build(&config, &req.inputs)?;
    let dest = req.out.join(snapshot.rel_dir());
    // Refuse before rendering: the cheapest check first, and the clearest message.
    if dest.symlink_metadata().is_ok() {
        return Err(OutputError::Exists(dest).into());
    }
    let files = format::render(&snapshot)?;
    directory::write_dir_atomically(&dest, &files, Durability::Synced)?;
    log::info!("wrote {}", dest.display());
    // Freeing a large snapshot (hundreds of thousands of small strings) takes milliseconds
    // that nobody needs to wait for: do it beside the caller, who may well exit first. (If
    // the OS refuses the thread, `spawn` drops them right here.)
    let _ = std::thread::Builder::new().spawn(move || drop((snapshot, files)));
    Ok(Report { dir: dest })
}
