//! `gitcord-snapshot`: publishes Gitcord's SQLite state as append-only JSON snapshots.
//!
//! The data flows one way, one module per stage:
//! [`config`] → [`state`] (+ [`roles`]) → [`snapshot`] (with [`contributors`]) →
//! [`serialize`] → [`output`]. [`commands`] wire the stages for each operator command and
//! [`error`] turns failures into messages and exit codes.

#![warn(missing_docs)]

pub mod commands;
pub mod config;
pub mod contributors;
pub mod error;
pub mod exit_codes;
pub mod output;
pub mod roles;
pub mod serialize;
pub mod snapshot;
pub mod state;
pub mod timefmt;

pub use error::Error;
