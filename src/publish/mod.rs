//! Where snapshots go: a plain directory ([`directory`], for `export`), the persistent clone
//! ([`clone`]), the remote ([`remote`], over git's smart [`http`], pushed by [`sendpack`]), and
//! a writing run's [`session`] that ties them together with the [`audit`] log and the
//! [`metrics`] file. libgit2's process-wide settings are applied in one place,
//! [`git_options`], before any repository is opened.

pub mod audit;
pub mod backup;
pub mod clone;
pub mod directory;
pub mod foreign;
pub mod git_options;
pub mod history;
pub mod http;
pub mod metrics;
pub mod newest;
pub mod pointer;
pub mod rawtree;
pub mod remote;
pub mod sendpack;
pub mod session;
pub mod signing;
pub mod tree;
pub mod treediff;
