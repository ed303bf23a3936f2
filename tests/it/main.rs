//! The integration tests: one crate, so `support` compiles once and one binary links.
//!
//! Every test runs the real binary (`CARGO_BIN_EXE_gitcord-snapshot`) in a scratch directory;
//! the network ones against servers the tests start on 127.0.0.1 (support/git_server.rs, a
//! TLS smart-HTTP git server; support/discord_stub.rs, a stand-in Discord API). No test config
//! points at a real host (support/testenv.rs). Run them with `scripts/test`.

mod support;

mod backup;
mod backup_fingerprints;
mod backup_prescan;
mod backup_raw;
mod backup_remote;
mod backup_salvage;
mod bench;
mod crash;
mod diff;
mod discord;
mod export;
mod git_server_smoke;
mod hostile;
mod newest;
mod operations;
mod packing;
mod pointer;
mod push;
mod readers;
mod recovery;
mod restore;
mod signatures;
mod signing;
mod thin_push;
mod transport;
mod verify;
