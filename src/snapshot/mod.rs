//! One snapshot: the model ([`model`]), the scoring that fills `contributors.json`
//! ([`contributors`]), the pipeline from the inputs ([`build`]) and the one exact file format,
//! written and read back ([`format`]).

pub mod backup;
pub mod build;
pub mod contributors;
pub mod format;
pub mod model;
pub mod python;

pub use format::FILE_NAMES;
pub use model::{snapshot_name, SNAPSHOTS_DIR};
