//! `diff`: what changed between two snapshots in the local clone, for a mentor reviewing a
//! week or an operator checking what a run published.
//!
//! Read-only: the clone is opened without its lock, so a diff never waits for a `push` and
//! never changes anything. The comparison itself lives in [`crate::maintenance::diff`].

use std::path::PathBuf;

use crate::commands::Render;
use crate::error::Error;
use crate::input::config::Config;
use crate::maintenance::diff::{self, Changes};
use crate::publish::clone::DataRepo;
use crate::publish::session::clone_dir;

/// What `diff` was asked to compare.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Gitcord's config file, for the clone's location.
    pub config: PathBuf,
    /// `--clone-dir`, overriding `snapshots.clone_dir`.
    pub clone_dir: Option<PathBuf>,
    /// Snapshot A (the "before"): a name, `latest` or `latest~N`.
    pub from: String,
    /// Snapshot B (the "after"), likewise.
    pub to: String,
}

impl Render for Changes {
    fn text(&self) -> String {
        self.to_text().trim_end_matches('\n').to_owned()
    }

    fn json(&self) -> Result<String, serde_json::Error> {
        self.to_json()
    }
}

/// Resolves both snapshots on the clone's branch and compares them.
pub fn run(req: &Request) -> Result<Changes, Error> {
    let config = Config::load(&req.config)?;
    let repo = DataRepo::open_existing(&clone_dir(&config, req.clone_dir.as_deref())?)?;
    let from = repo.resolve_snapshot(&req.from)?;
    let to = repo.resolve_snapshot(&req.to)?;
    let a = diff::parse(&from, &repo.read_snapshot(&from)?)?;
    let b = diff::parse(&to, &repo.read_snapshot(&to)?)?;
    Ok(diff::compare(&from, &a, &to, &b))
}
