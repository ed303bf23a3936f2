//! Operator work on published snapshots: [`verify`] the history, [`diff`] two snapshots,
//! [`restore`] a database from one, and the [`retention`] rules `prune` applies.

pub mod backup;
pub mod diff;
pub mod restore;
pub mod retention;
pub mod verify;
