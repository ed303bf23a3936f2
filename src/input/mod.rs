//! What a snapshot is made from: Gitcord's config, its `state.db` (read-only), and the Discord
//! roles (from a file or Discord's API).

pub mod config;
pub mod discord;
pub mod roles;
pub mod state;
pub mod yaml;
