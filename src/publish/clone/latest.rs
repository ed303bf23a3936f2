//! The readers' pointer: `latest.json` at the root of every commit, naming the newest
//! snapshot so a reader of the data repository need not list `snapshots/`. Derived from the
//! tree alone, here, so commits, replays and `verify` all compute the same bytes.

use git2::{ObjectType, Oid, Repository, Tree};

use super::{DataRepo, GitContext, RepoError};
use crate::publish::tree::{read_snapshot_dir, snapshots_raw, Entry};
use crate::snapshot::format::{Latest, FILE_NAMES};

impl DataRepo {
    /// Chooses the readers' index file at the root (`snapshots.latest_file`); `None` turns it
    /// off (an existing one is then left as it is).
    pub fn set_latest_file(&mut self, name: Option<String>) {
        self.latest_file = name;
    }

    /// The readers' index file name, if on.
    pub fn latest_file(&self) -> Option<&str> {
        self.latest_file.as_deref()
    }

    /// Root tree `root` with the readers' index describing its newest snapshot
    /// ([`crate::publish::newest`]); without any, the index is removed, and so is every other
    /// index file (an earlier `latest_file`, [`crate::publish::pointer`]). Derived from the
    /// tree and its `parent`, so a replay onto another writer's commits recomputes it, and
    /// the same tree on the same parent always gets the same index.
    pub(super) fn with_latest(&self, root: Oid, parent: Option<Oid>) -> Result<Oid, RepoError> {
        let root =
            crate::publish::pointer::drop_others(&self.repo, root, self.latest_file.as_deref())?;
        let Some(file) = &self.latest_file else {
            return Ok(root);
        };
        let tree = self.repo.find_tree(root).ctx("read tree")?;
        let content = latest_for(&self.repo, &tree, parent)?;
        let mut builder = self.repo.treebuilder(Some(&tree)).ctx("build tree")?;
        match content {
            Some(bytes) => {
                let blob = self.repo.blob(&bytes).ctx("write file")?;
                builder.insert(file, blob, 0o100644).ctx("build tree")?;
            }
            None => {
                if builder.get(file).ctx("build tree")?.is_some() {
                    builder.remove(file).ctx("build tree")?;
                }
            }
        }
        builder.write().ctx("write tree")
    }
}

/// The readers' index (`latest.json`) that root tree `tree` should hold: its newest snapshot
/// ([`crate::publish::newest`]; `parent`, the first parent of the commit `tree` belongs to,
/// decides between equal times); `None` when it has none. `verify` checks every committed
/// index against this.
pub(crate) fn latest_for(
    repo: &Repository,
    tree: &Tree<'_>,
    parent: Option<Oid>,
) -> Result<Option<Vec<u8>>, RepoError> {
    let Some(sub) = snapshots_raw(repo, tree).ctx("read snapshots/")? else {
        return Ok(None);
    };
    // Runs on every commit, over a `snapshots/` of every hour of the history: count the
    // directories without copying a name.
    let count = sub
        .iter()
        .filter(|e| e.kind() == Some(ObjectType::Tree))
        .count();
    // The newest as everything else names it (crate::publish::newest).
    let dirs = crate::publish::newest::newest_first(repo, tree, parent, 1)?
        .into_iter()
        .map(|f| (f.name, f.tree));
    for (name, id) in dirs {
        let is_known = |file: &str| FILE_NAMES.contains(&file);
        let files: Vec<(String, Vec<u8>)> = read_snapshot_dir(repo, id, is_known)
            .ctx("read snapshot")?
            .into_iter()
            .filter_map(|(file, entry)| match entry {
                Entry::File(bytes) if is_known(&file) => Some((file, bytes)),
                _ => None,
            })
            .collect();
        if let Some(latest) = Latest::describe(&name, &files, count) {
            let bytes = latest.render().map_err(|e| RepoError::Git {
                context: "render the readers' index".into(),
                source: git2::Error::from_str(&e.to_string()),
            })?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}
