//! The readers' index files (`latest.json`, or whatever `snapshots.latest_file` names) that
//! the branch's trees hold, including ones no longer configured.
//!
//! Renaming `snapshots.latest_file`, or setting it to `""`, used to leave the old file in the
//! tree for good, describing a snapshot that later commits moved past or pruned. An index is
//! recognised by its content (a root file that parses as [`Latest`]), not by the configured
//! name: the next commit removes every such file but the configured one, and `verify`
//! checks every one a commit holds and counts changes to any as changes to our data.

use git2::{ObjectType, Oid, Repository, Tree};

use crate::publish::clone::{GitContext, RepoError};
use crate::snapshot::format::Latest;

/// Index files are small: a larger root file is not one (and is not read).
const MAX_INDEX_BYTES: usize = 64 * 1024;

/// Whether `bytes` are a readers' index as we write them.
pub fn is_index(bytes: &[u8]) -> bool {
    bytes.len() <= MAX_INDEX_BYTES && serde_json::from_slice::<Latest>(bytes).is_ok()
}

/// The root files of `tree` that are readers' indexes, other than `keep`.
pub fn other_indexes(
    repo: &Repository,
    tree: &Tree<'_>,
    keep: Option<&str>,
) -> Result<Vec<String>, RepoError> {
    let mut out = Vec::new();
    for e in tree.iter() {
        let Some(name) = e.name() else { continue };
        if e.kind() != Some(ObjectType::Blob) || Some(name) == keep {
            continue;
        }
        let blob = repo.find_blob(e.id()).ctx("read file")?;
        if is_index(blob.content()) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// Root tree `root` without the indexes it holds other than `keep` (the configured one, if
/// any): the commit that stops writing an index removes it.
pub fn drop_others(repo: &Repository, root: Oid, keep: Option<&str>) -> Result<Oid, RepoError> {
    let tree = repo.find_tree(root).ctx("read tree")?;
    let stale = other_indexes(repo, &tree, keep)?;
    if stale.is_empty() {
        return Ok(root);
    }
    let mut builder = repo.treebuilder(Some(&tree)).ctx("build tree")?;
    for name in &stale {
        log::info!("removing {name}: a readers' index that snapshots.latest_file no longer names");
        builder.remove(name).ctx("build tree")?;
    }
    builder.write().ctx("write tree")
}
