//! One module per operator command, each a function over the shared stages.

pub mod export;
pub mod push;
