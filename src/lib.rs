//! `gitcord-snapshot`: publishes Gitcord's SQLite state as append-only JSON snapshots.
//!
//! The data flows one way, one module per stage:
//! [`config`] → [`state`] (+ [`roles`], from a file or [`discord`]) → [`snapshot`] (with [`contributors`]) →
//! [`serialize`] → [`output`] (a directory) or [`repo`] (a commit in the clone) → [`remote`]
//! (push, queue) with [`audit`] recording what happened. [`commands`] wire the stages for each operator command and
//! [`error`] turns failures into messages and exit codes.

#![warn(missing_docs)]

pub mod audit;
pub mod commands;
pub mod config;
pub mod contributors;
pub mod diff;
pub mod discord;
pub mod error;
pub mod exit_codes;
pub mod metrics;
pub mod net;
pub mod output;
pub mod remote;
pub mod repo;
pub mod restore;
pub mod retention;
pub mod roles;
pub mod serialize;
pub mod snapshot;
pub mod state;
pub mod timefmt;
pub mod verify;

pub use error::Error;
