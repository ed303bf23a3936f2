//! Reading the data repository's trees: where `snapshots/` is in a root tree, what a snapshot
//! directory holds, and every object below a tree. One of each, because the clone's reads, the
//! readers' index, the health check, salvage and `verify`'s history walk all ask the same
//! questions, and two answers that drift apart would make `verify` disagree with what was
//! committed. A leaf of the publishing stage, like [`crate::publish::treediff`]: git2 and the
//! snapshot layout only.

use git2::{ObjectType, Oid, Repository, Tree};

use crate::publish::rawtree::RawTree;
use crate::snapshot::SNAPSHOTS_DIR;

/// The `snapshots/` directory of root tree `root`, `None` when there is none or when
/// `snapshots` is not a directory (a file or a submodule by that name holds no snapshots).
pub(crate) fn snapshots_dir<'r>(
    repo: &'r Repository,
    root: &Tree<'_>,
) -> Result<Option<Tree<'r>>, git2::Error> {
    match root.get_name(SNAPSHOTS_DIR) {
        Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
            repo.find_tree(entry.id()).map(Some)
        }
        _ => Ok(None),
    }
}

/// The `snapshots/` directory of root tree `root` as stored ([`crate::publish::rawtree`]: read
/// once a run, checked against its id), `None` as for [`snapshots_dir`].
pub(crate) fn snapshots_raw(
    repo: &Repository,
    root: &Tree<'_>,
) -> Result<Option<std::sync::Arc<RawTree>>, git2::Error> {
    match root.get_name(SNAPSHOTS_DIR) {
        Some(entry) if entry.kind() == Some(ObjectType::Tree) => {
            crate::publish::rawtree::read(repo, entry.id()).map(Some)
        }
        _ => Ok(None),
    }
}

/// One entry of a snapshot directory, as far as readers and the rules of `verify` care.
#[derive(Clone, Debug)]
pub enum Entry {
    /// A regular file and its bytes (empty unless the caller asked for this name's bytes).
    File(Vec<u8>),
    /// Anything else: a subdirectory, a symbolic link, a submodule.
    Other(&'static str),
}

/// The entries of snapshot directory `dir` (tree order), with the bytes of the regular files
/// whose name `read` accepts; other files are listed without reading them, so a caller that
/// needs only the seven known files never inflates anything else.
pub(crate) fn read_snapshot_dir(
    repo: &Repository,
    dir: Oid,
    read: impl Fn(&str) -> bool,
) -> Result<Vec<(String, Entry)>, git2::Error> {
    let tree = repo.find_tree(dir)?;
    let mut out = Vec::with_capacity(tree.len());
    for e in tree.iter() {
        let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
        let entry = match (e.kind(), e.filemode()) {
            (Some(ObjectType::Blob), 0o120000) => Entry::Other("symbolic link"),
            (Some(ObjectType::Blob), _) if read(&name) => {
                Entry::File(repo.find_blob(e.id())?.content().to_vec())
            }
            (Some(ObjectType::Blob), _) => Entry::File(Vec::new()),
            (Some(ObjectType::Tree), _) => Entry::Other("subdirectory"),
            _ => Entry::Other("submodule"),
        };
        out.push((name, entry));
    }
    Ok(out)
}

/// Reads tree `id` and every object below it from `repo`, each one inflated and checked
/// against its id (libgit2 verifies hashes on read), and hands each to `visit`; submodule
/// entries (commits of other repositories) are not followed. An object `skip` accepts is
/// neither read nor descended into. An error names the object that cannot be read: this is
/// how the health check finds damage and how salvage copies what is still whole.
pub(crate) fn walk_tree(
    repo: &Repository,
    id: Oid,
    skip: impl Fn(Oid) -> bool,
    mut visit: impl FnMut(Oid, &git2::OdbObject<'_>) -> Result<(), git2::Error>,
) -> Result<(), git2::Error> {
    let odb = repo.odb()?;
    let mut pending = vec![id];
    while let Some(oid) = pending.pop() {
        if skip(oid) {
            continue;
        }
        let object = odb.read(oid)?;
        if object.kind() == ObjectType::Tree {
            pending.extend(
                repo.find_tree(oid)?
                    .iter()
                    .filter(|e| e.filemode() != 0o160000)
                    .map(|e| e.id()),
            );
        }
        visit(oid, &object)?;
    }
    Ok(())
}
