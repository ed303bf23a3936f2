//! The branch's history as the rules of `verify` see it: for each commit, oldest first, what it
//! added, removed or changed under `snapshots/`. The clone layer owns every git read; `verify`
//! gets plain values.
//!
//! Each commit's `snapshots/` tree is compared with its parent's by one merge pass over the two
//! listings (git stores them sorted), by name and object id alone: an unchanged snapshot
//! directory is the same object in every later commit, so a commit costs one pass over the
//! top-level names, never a look into every snapshot. Only a changed directory (a violation,
//! so rare) is opened to name its files.

use git2::{ObjectType, Oid, Sort, Tree};

use crate::publish::clone::{latest_for, DataRepo, GitContext, RepoError};
use crate::publish::tree::{read_snapshot_dir, snapshots_dir};
use crate::publish::treediff::{differences, entry_name, is_dir, Difference};
use crate::snapshot::{FILE_NAMES, SNAPSHOTS_DIR};

/// One entry of a snapshot directory, as far as the rules care (the bytes only matter for the
/// seven known names).
pub use crate::publish::tree::Entry;

/// A snapshot directory's identity: equal ids mean identical content.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EntryId(Oid);

/// What one commit did under `snapshots/`, against its (first) parent.
#[derive(Debug, Default)]
pub struct CommitChanges {
    /// The commit's full id.
    pub commit: String,
    /// How many parents it has (more than one is a merge).
    pub parents: usize,
    /// Its message.
    pub message: String,
    /// `snapshots` became something other than a directory in this commit.
    pub snapshots_not_a_directory: bool,
    /// New top-level entries (snapshot directories, normally).
    pub added: Vec<Added>,
    /// Top-level entries that are gone.
    pub removed: Vec<String>,
    /// Changes inside entries that exist on both sides: (path under snapshots/, what happened).
    pub file_changes: Vec<(String, String)>,
    /// Each readers' index this commit holds, when it or `snapshots/` changed.
    pub latest: Vec<LatestCheck>,
    /// Whether the commit adds, changes or removes anything of ours: under `snapshots/`, or
    /// the readers' index. Only such commits must carry our signature.
    pub touches_ours: bool,
}

/// A new entry of `snapshots/`.
#[derive(Debug)]
pub struct Added {
    /// Its name.
    pub name: String,
    /// Its content's identity.
    pub id: EntryId,
    /// Whether it is a directory.
    pub dir: bool,
}

/// A walk over the branch's first-parent history, oldest first.
pub struct History<'r> {
    repo: &'r git2::Repository,
    commits: Vec<Oid>,
    next: usize,
    parent: Option<Tree<'r>>,
    parent_root_entry: Option<Oid>,
    /// The configured readers' index file.
    latest_file: Option<String>,
    /// Every readers' index file seen so far (the configured one, and any root file that
    /// held an index: see [`crate::publish::pointer`]), with its object in the previous
    /// commit. Once an index, always ours: later edits need our signature.
    indexes: std::collections::BTreeMap<String, Option<Oid>>,
    /// Whether a root blob is an index, by object id (each read once).
    is_index: std::collections::HashMap<Oid, bool>,
}

/// A commit's readers' index (`latest.json`) next to what its tree says it should be.
#[derive(Debug)]
pub struct LatestCheck {
    /// The file's path at the root.
    pub path: String,
    /// The committed bytes.
    pub committed: Vec<u8>,
    /// What the tree says (`None`: the tree holds no readable snapshot).
    pub expected: Option<Vec<u8>>,
    /// Whether it is the file `snapshots.latest_file` names (else an index left by an
    /// earlier name, or by `""`).
    pub configured: bool,
}

impl DataRepo {
    /// The branch's first-parent history, to walk with [`History::next_commit`].
    pub fn history(&self) -> Result<History<'_>, RepoError> {
        let repo = self.git();
        let mut commits = Vec::new();
        if let Some(tip) = self.tip()? {
            let mut walk = repo.revwalk().ctx("walk history")?;
            walk.push(tip).ctx("walk history")?;
            walk.simplify_first_parent().ctx("walk history")?;
            walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
                .ctx("walk history")?;
            commits = walk.collect::<Result<Vec<Oid>, _>>().ctx("walk history")?;
        }
        Ok(History {
            repo,
            commits,
            next: 0,
            parent: None,
            parent_root_entry: None,
            indexes: self
                .latest_file()
                .map(|f| (f.to_owned(), None))
                .into_iter()
                .collect(),
            latest_file: self.latest_file().map(str::to_owned),
            is_index: std::collections::HashMap::new(),
        })
    }
}

impl History<'_> {
    /// How many commits the walk visits.
    pub fn len(&self) -> usize {
        self.commits.len()
    }

    /// The next commit's changes, `None` after the newest.
    pub fn next_commit(&mut self) -> Result<Option<CommitChanges>, RepoError> {
        let Some(&oid) = self.commits.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        let repo = self.repo;
        let commit = repo.find_commit(oid).ctx("read commit")?;
        let mut out = CommitChanges {
            commit: oid.to_string(),
            parents: commit.parent_count(),
            message: String::from_utf8_lossy(commit.message_raw_bytes()).into_owned(),
            ..CommitChanges::default()
        };
        let root = commit.tree().ctx("read tree")?;
        let entry_id = root.get_name(SNAPSHOTS_DIR).map(|e| e.id());
        let current = snapshots_dir(repo, &root).ctx("read snapshots/")?;
        if current.is_none() && entry_id.is_some() {
            out.snapshots_not_a_directory = self.parent_root_entry != entry_id;
        }
        out.touches_ours = entry_id != self.parent_root_entry;
        // Root files that became an index in this commit join the ones seen before.
        for e in root.iter() {
            let (Some(name), Some(ObjectType::Blob)) = (e.name(), e.kind()) else {
                continue;
            };
            if self.indexes.contains_key(name) {
                continue;
            }
            let is_index = match self.is_index.get(&e.id()) {
                Some(known) => *known,
                None => {
                    let blob = repo.find_blob(e.id()).ctx("read file")?;
                    let known = crate::publish::pointer::is_index(blob.content());
                    self.is_index.insert(e.id(), known);
                    known
                }
            };
            if is_index {
                self.indexes.insert(name.to_owned(), None);
            }
        }
        let parent_commit = commit.parent_id(0).ok();
        let mut expected = None;
        for (file, before) in self.indexes.iter_mut() {
            let now = root.get_name(file).map(|e| e.id());
            out.touches_ours |= now != *before;
            if now.is_some() && (now != *before || entry_id != self.parent_root_entry) {
                let committed = match now.map(|id| repo.find_blob(id)) {
                    Some(Ok(blob)) => blob.content().to_vec(),
                    // Not a file (a directory by that name): the check reports the mismatch.
                    _ => Vec::new(),
                };
                if expected.is_none() {
                    expected = Some(latest_for(repo, &root, parent_commit)?);
                }
                out.latest.push(LatestCheck {
                    path: file.clone(),
                    committed,
                    expected: expected.clone().flatten(),
                    configured: self.latest_file.as_deref() == Some(file.as_str()),
                });
            }
            *before = now;
        }
        if entry_id == self.parent_root_entry {
            return Ok(Some(out)); // nothing under snapshots/ changed
        }
        self.parent_root_entry = entry_id;
        let old_entries = self.parent.iter().flat_map(|t| t.iter());
        let new_entries = current.iter().flat_map(|t| t.iter());
        for difference in differences(old_entries, new_entries) {
            match difference {
                Difference::Removed(gone) => out.removed.push(entry_name(&gone)),
                Difference::Added(e) => out.added.push(Added {
                    name: entry_name(&e),
                    id: EntryId(e.id()),
                    dir: is_dir(&e),
                }),
                Difference::Changed(a, b) => changed_entry(repo, &a, &b, &mut out.file_changes)?,
            }
        }
        self.parent = current;
        Ok(Some(out))
    }

    /// A snapshot directory's entries; blobs are read only for the seven known names.
    pub fn read_dir(&self, id: &EntryId) -> Result<Vec<(String, Entry)>, RepoError> {
        read_snapshot_dir(self.repo, id.0, |name| FILE_NAMES.contains(&name)).ctx("read snapshot")
    }
}

const DELETED: &str = "deleted; snapshot files must never change";
const ADDED: &str = "added to an existing snapshot; snapshot files must never change";
const MODIFIED: &str = "modified; snapshot files must never change";

/// Names the files that changed inside an entry present on both sides (same name, same kind).
fn changed_entry(
    repo: &git2::Repository,
    old: &git2::TreeEntry<'_>,
    new: &git2::TreeEntry<'_>,
    out: &mut Vec<(String, String)>,
) -> Result<(), RepoError> {
    let dir = entry_name(old);
    if !(is_dir(old) && is_dir(new)) {
        out.push((dir, MODIFIED.to_owned()));
        return Ok(());
    }
    let (old, new) = (
        repo.find_tree(old.id()).ctx("read snapshot")?,
        repo.find_tree(new.id()).ctx("read snapshot")?,
    );
    for difference in differences(old.iter(), new.iter()) {
        let (entry, what) = match difference {
            Difference::Removed(e) => (e, DELETED),
            Difference::Added(e) => (e, ADDED),
            Difference::Changed(e, _) => (e, MODIFIED),
        };
        out.push((format!("{dir}/{}", entry_name(&entry)), what.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::publish::clone::DataRepo;

    /// A clone made by [`DataRepo::open`] and commits written into it with plain git.
    pub(crate) struct Scratch {
        dir: tempfile::TempDir,
        repo: git2::Repository,
    }

    impl Scratch {
        pub(crate) fn new() -> Scratch {
            let dir = tempfile::tempdir().unwrap();
            drop(DataRepo::open(dir.path(), None, std::time::Duration::from_secs(1)).unwrap());
            let repo = git2::Repository::open_bare(dir.path().join(".git")).unwrap();
            Scratch { dir, repo }
        }

        pub(crate) fn data_repo(&self) -> DataRepo {
            DataRepo::open_existing(self.dir.path()).unwrap()
        }

        /// Commits a tree holding `files` (paths with `/`) on `main`; returns the commit id.
        pub(crate) fn commit(&self, message: &str, files: &[(&str, &[u8])]) -> String {
            let mut index = git2::Index::new().unwrap();
            for (path, bytes) in files {
                let entry = git2::IndexEntry {
                    ctime: git2::IndexTime::new(0, 0),
                    mtime: git2::IndexTime::new(0, 0),
                    dev: 0,
                    ino: 0,
                    mode: 0o100644,
                    uid: 0,
                    gid: 0,
                    file_size: bytes.len() as u32,
                    id: self.repo.blob(bytes).unwrap(),
                    flags: path.len() as u16,
                    flags_extended: 0,
                    path: path.as_bytes().to_vec(),
                };
                index.add(&entry).unwrap();
            }
            let tree = self
                .repo
                .find_tree(index.write_tree_to(&self.repo).unwrap())
                .unwrap();
            let sig = git2::Signature::new("t", "t@example.com", &git2::Time::new(0, 0)).unwrap();
            let parent = self
                .repo
                .refname_to_id("refs/heads/main")
                .ok()
                .map(|p| self.repo.find_commit(p).unwrap());
            let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
            let oid = self
                .repo
                .commit(
                    Some("refs/heads/main"),
                    &sig,
                    &sig,
                    message,
                    &tree,
                    &parents,
                )
                .unwrap();
            oid.to_string()
        }
    }

    #[test]
    fn tree_comparison_follows_git_order_and_names_changed_files() {
        let s = Scratch::new();
        // "a" is a directory, so git sorts it as "a/": after "a-z" and "a.b" (- < . < /).
        s.commit(
            "old",
            &[
                ("snapshots/a.b", b"1"),
                ("snapshots/a/meta.json", b"m"),
                ("snapshots/a/roles.json", b"r"),
                ("snapshots/a-z/x", b"x"),
                ("snapshots/gone/y", b"y"),
            ],
        );
        s.commit(
            "new",
            &[
                ("snapshots/a.b", b"1"),
                ("snapshots/a/meta.json", b"M"),
                ("snapshots/a/notes", b"n"),
                ("snapshots/a-z/x", b"x"),
                ("snapshots/b/z", b"z"),
            ],
        );
        s.commit("none", &[("README.md", b"hi")]);
        let repo = s.data_repo();
        let mut history = repo.history().unwrap();
        assert_eq!(history.len(), 3);
        // From nothing, everything is added.
        let first = history.next_commit().unwrap().unwrap();
        let added: Vec<(&str, bool)> = first
            .added
            .iter()
            .map(|a| (a.name.as_str(), a.dir))
            .collect();
        assert_eq!(
            added,
            [("a-z", true), ("a.b", false), ("a", true), ("gone", true)]
        );
        let second = history.next_commit().unwrap().unwrap();
        assert_eq!(
            second
                .added
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        assert_eq!(second.removed, ["gone"]);
        let files: Vec<String> = second
            .file_changes
            .iter()
            .map(|(p, w)| format!("{p}: {}", w.split(';').next().unwrap()))
            .collect();
        assert_eq!(
            files,
            [
                "a/meta.json: modified",
                "a/notes: added to an existing snapshot",
                "a/roles.json: deleted"
            ]
        );
        // To nothing, everything is removed.
        let third = history.next_commit().unwrap().unwrap();
        assert_eq!(third.removed, ["a-z", "a.b", "a", "b"]);
        assert!(history.next_commit().unwrap().is_none());
    }
}
