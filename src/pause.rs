//! Test-only pause points, so that a crash test can kill a run at an exact phase instead of
//! hoping a random delay lands there. A leaf: it imports nothing of the crate.
//!
//! Inert unless `GITCORD_SNAPSHOT_PAUSE_AT` names the phase being reached; then the run writes
//! the phase's name to the file named by `GITCORD_SNAPSHOT_PAUSE_FILE` and sleeps until it is
//! killed. Production never sets these variables; reading one environment variable per phase
//! is all it costs.

use std::time::Duration;

/// The environment variable naming the phase to stop at.
pub const AT: &str = "GITCORD_SNAPSHOT_PAUSE_AT";
/// The environment variable naming the file that tells the test the run has stopped.
pub const FILE: &str = "GITCORD_SNAPSHOT_PAUSE_FILE";

/// Stops here, forever, if the test asked for `phase`: `fetch` (objects arriving),
/// `commit` (committed, not yet pushed), `push` (objects leaving), `pushed` (the remote
/// updated, the clone not yet told), `pack` (a pack of loose objects half written), `merge` (a
/// merge of packs half written), `merged` (the merged pack in place, the old ones not yet
/// removed), `view` (the working copy
/// half updated), `backup` (the backup's objects written, not committed), `backup-cache` (the
/// backup committed, its cache not yet updated) or `backup-pushed` (a backup repository of its
/// own updated, the clone not yet told).
pub fn point(phase: &str) {
    if std::env::var_os(AT).is_none_or(|p| p != phase) {
        return;
    }
    if let Some(file) = std::env::var_os(FILE) {
        let _ = std::fs::write(file, phase);
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
