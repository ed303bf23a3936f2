//! `gitcord-snapshot`: publishes Gitcord's SQLite state as append-only JSON snapshots.
//!
//! The data flows one way; each folder is a stage and imports only the stages before it:
//!
//! * leaves that import nothing of the crate: [`text`], [`time`], [`net`], [`threads`],
//!   [`table`] (a database value and table, which the snapshot model re-exports), [`pause`]
//!   (test hooks);
//! * [`input`]: Gitcord's config, `state.db` (read-only), the Discord roles;
//! * [`snapshot`]: the model, the scoring, the one exact file format (written and read back);
//! * [`publish`]: a directory, the persistent clone, the remote, the session that pushes the
//!   queue, the audit log and the metrics file;
//! * [`maintenance`]: verify, diff, restore and retention over published snapshots;
//! * [`commands`]: one thin module per operator command, each `run(&Request) -> Report`.
//!
//! [`error`] maps every stage's error to a message and an exit code; nothing imports it back
//! but the commands and the binary. The public surface is what the binary needs: the
//! commands (with the few types their requests hold), the error and the exit codes.

#![warn(missing_docs)]

pub mod commands;
pub mod error;
pub mod exit_codes;
pub(crate) mod input;
pub(crate) mod maintenance;
pub(crate) mod net;
pub(crate) mod pause;
pub(crate) mod publish;
pub(crate) mod snapshot;
pub(crate) mod table;
pub(crate) mod text;
pub(crate) mod threads;
pub(crate) mod time;

pub use error::Error;
