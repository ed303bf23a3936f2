//! Shared helpers for the integration tests.

#![allow(dead_code)] // each test binary uses a different part

pub mod discord_stub;
pub mod git_server;
pub mod testenv;
