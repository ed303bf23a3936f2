//! Puts a rendered snapshot on disk all at once or not at all.
//!
//! The files are written into a hidden temporary directory beside the destination and renamed
//! into place, so a crash or a full disk never leaves a half-written snapshot that a reader (or
//! a later `git add`) could mistake for a real one.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::threads;

/// Why a snapshot directory could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// Snapshots are append-only: an existing directory is never touched.
    #[error("snapshot directory {0} already exists; refusing to overwrite it")]
    Exists(PathBuf),
    /// The filesystem refused (permissions, full disk, ...).
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path being written.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> OutputError + '_ {
    move |source| OutputError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether a write must survive a power cut, or only a crash of this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// fsync every file and the directory: for the product itself (`export`).
    Synced,
    /// Rename only: for copies that can be rebuilt (the clone's view of the newest snapshot).
    Unsynced,
}

/// Writes `files` into the new directory `dest`, which must not exist yet.
///
/// The directory appears complete or not at all. With [`Durability::Synced`] each file is
/// flushed to disk before the rename, and the parent directory after it, so that this holds
/// even across a power cut.
pub fn write_dir_atomically(
    dest: &Path,
    files: &[(&str, Vec<u8>)],
    durability: Durability,
) -> Result<(), OutputError> {
    let synced = durability == Durability::Synced;
    if dest.symlink_metadata().is_ok() {
        return Err(OutputError::Exists(dest.to_owned()));
    }
    let parent = dest.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-snapshot-")
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    // One thread per file: the fsyncs wait on the disk, not the CPU, and overlap. A failure
    // is reported for the first file in order.
    let write = |(name, bytes): &(&str, Vec<u8>)| {
        let path = tmp.path().join(name);
        let mut file = fs::File::create(&path).map_err(io_err(&path))?;
        file.write_all(bytes).map_err(io_err(&path))?;
        if synced {
            file.sync_all().map_err(io_err(&path))?;
        }
        Ok::<_, OutputError>(())
    };
    let write = &write;
    std::thread::scope(|scope| {
        let writes: Vec<_> = files
            .iter()
            .map(|file| (file, threads::spawn(scope, move || write(file))))
            .collect();
        writes
            .into_iter()
            .map(|(file, w)| w.join().unwrap_or_else(|| write(file)))
            .collect::<Vec<_>>()
            .into_iter()
            .collect::<Result<(), _>>()
    })?;
    if synced {
        // The new directory's own entries, before it is renamed into place.
        fs::File::open(tmp.path())
            .and_then(|dir| dir.sync_all())
            .map_err(io_err(tmp.path()))?;
    }
    // rename(2) would replace an empty directory that appeared since the check above; losing an
    // empty directory loses nothing, and a non-empty one makes the rename fail.
    fs::rename(tmp.path(), dest).map_err(|source| match source.kind() {
        std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::DirectoryNotEmpty => {
            OutputError::Exists(dest.to_owned())
        }
        _ => OutputError::Io {
            path: dest.to_owned(),
            source,
        },
    })?;
    // The temporary path no longer exists; forget it rather than have Drop look for it.
    let _ = tmp.keep();
    if synced {
        if let Ok(dir) = fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// Replaces the file at `path` by rename, so no reader ever sees half of it; `mode` sets its
/// permissions (a metrics textfile must be readable by node-exporter's user).
pub fn write_file_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(mode),
    )?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_all_files_and_leaves_no_temporary() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("snapshots/a");
        write_dir_atomically(
            &dest,
            &[("x.json", b"1".to_vec()), ("y.json", b"2".to_vec())],
            Durability::Synced,
        )
        .unwrap();
        assert_eq!(fs::read(dest.join("x.json")).unwrap(), b"1");
        assert_eq!(fs::read(dest.join("y.json")).unwrap(), b"2");
        let names: Vec<_> = fs::read_dir(root.path().join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a"]);
    }

    #[test]
    fn refuses_an_existing_directory_and_keeps_its_content() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("a");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("x.json"), b"old").unwrap();
        let err = write_dir_atomically(&dest, &[("x.json", b"new".to_vec())], Durability::Unsynced)
            .unwrap_err();
        assert!(matches!(err, OutputError::Exists(_)));
        assert_eq!(fs::read(dest.join("x.json")).unwrap(), b"old");
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 1);
    }
}
