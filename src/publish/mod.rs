//! Where snapshots go: a plain directory ([`directory`], for `export`), the persistent clone
//! ([`clone`]), the remote ([`remote`]), and a writing run's [`session`] that ties them together
//! with the [`audit`] log and the [`metrics`] file.

pub mod audit;
pub mod backup;
pub mod clone;
pub mod directory;
pub mod history;
pub mod metrics;
pub mod remote;
pub mod session;
pub mod signing;
pub mod treediff;
