//! The working-copy view: a plain copy of the newest snapshot in `<clone_dir>/snapshots/` for
//! people to look at. Not part of git's data; replaced by rename so a reader never sees half
//! a snapshot.

use std::fs;

use super::{io_err, read_dir_entries, DataRepo, RepoError};
use crate::publish::directory as output;
use crate::snapshot::SNAPSHOTS_DIR;

impl DataRepo {
    /// Shows `name` in the working copy and removes the one shown before, so only the newest
    /// snapshot is ever checked out.
    pub fn update_view(&self, name: &str, files: &[(&str, Vec<u8>)]) -> Result<(), RepoError> {
        let view_root = self.root.join(SNAPSHOTS_DIR);
        let dest = view_root.join(name);
        if !dest.exists() {
            output::write_dir_atomically(&dest, files, output::Durability::Unsynced).map_err(
                |e| match e {
                    output::OutputError::Io { path, source } => RepoError::Io { path, source },
                    output::OutputError::Exists(path) => RepoError::Io {
                        path,
                        source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
                    },
                },
            )?;
        }
        crate::pause::point("view");
        // Everything else in the view is an older snapshot (also one a killed run left next to
        // the new one): the view holds only ours, so it all goes.
        for e in read_dir_entries(&view_root)? {
            let other = e.file_name().to_string_lossy().into_owned();
            if other != name
                && is_plain_name(&other)
                && !other.starts_with('.')
                && e.path().is_dir()
            {
                fs::remove_dir_all(e.path()).map_err(io_err(&e.path()))?;
            }
        }
        Ok(())
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".."
}
