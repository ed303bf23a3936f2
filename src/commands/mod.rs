//! One module per operator command. Each has the same shape: a `Request` (the resolved flags),
//! `run(&Request) -> Result<Report, Error>`, and a `Report` the binary prints through [`Render`],
//! as text or as `--json`. Commands load the config, call the stages, and never print.

use serde::Serialize;

pub use crate::maintenance::retention::{Policy, Within};
pub use crate::publish::session::Target;
pub use crate::snapshot::build::Inputs;
pub use crate::text::one_line;
pub use crate::time::{parse_rfc3339, Timestamp};

pub mod diff;
pub mod export;
pub mod prune;
pub mod push;
pub mod restore;
pub mod status;
pub mod verify;

/// A command's result, printed one way for a person and one way for a program.
pub trait Render: Serialize {
    /// What a person reads on stdout.
    fn text(&self) -> String;

    /// What `--json` prints: the report itself.
    fn json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Lines for stderr, one per problem found (whatever the output format).
    fn problems(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether the command succeeded: a report can describe a failure (verify's problems).
    fn outcome(&self) -> Result<(), crate::error::Error> {
        Ok(())
    }
}
