//! Reading the data repository's trees: where `snapshots/` is in a root tree, what a snapshot
//! directory holds, and every object below a tree. One of each, because the clone's reads, the
//! readers' index, the health check, salvage and `verify`'s history walk all ask the same
//! questions, and two answers that drift apart would make `verify` disagree with what was
//! committed. A leaf of the publishing stage, like [`crate::publish::treediff`]: git2 and the
//! snapshot layout only.

use git2::{ObjectType, Oid, Repository, Tree};

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

/// Tree `tree`'s bytes as git stores them, rebuilt from libgit2's parsed copy (which a run
/// has in its object cache once it has read the tree) rather than read, inflated and hashed
/// again: at a year of hourly snapshots `snapshots/` is 480 KB. Checked against the tree's id
/// with a plain SHA-1, so they are the stored bytes exactly; `None` for a tree that does not
/// rebuild to its id (one written with non-canonical modes), to be read from the object
/// database instead.
pub(crate) fn canonical_bytes(tree: &Tree<'_>) -> Option<Vec<u8>> {
    use sha1::{Digest, Sha1};
    let mut out = Vec::with_capacity(tree.len() * 64);
    for entry in tree.iter() {
        push_octal(&mut out, entry.filemode_raw());
        out.push(b' ');
        out.extend_from_slice(entry.name_bytes());
        out.push(0);
        out.extend_from_slice(entry.id().as_bytes());
    }
    let mut hash = Sha1::new();
    hash.update(format!("tree {}\0", out.len()).as_bytes());
    hash.update(&out);
    (hash.finalize().as_slice() == tree.id().as_bytes()).then_some(out)
}

/// `mode` in octal, as git writes a tree entry's mode (no leading zeros).
fn push_octal(out: &mut Vec<u8>, mode: i32) {
    let mut digits = [0u8; 12];
    let mut n = mode as u32;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n & 7) as u8;
        n >>= 3;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
