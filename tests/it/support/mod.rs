//! Shared helpers for the integration tests: one crate, so this compiles once.

pub mod discord_stub;
pub mod git;
pub mod git_server;
pub mod host;
pub mod net;
pub mod proxy;
pub mod testenv;
