//! Keys and signing: loading an unencrypted Ed25519 OpenSSH key, and making commits whose
//! `gpgsig` header is byte for byte what git writes for the same key and content.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use git2::{Commit, ErrorCode, Oid, Repository, Signature, Tree};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, SshSig};

/// The sshsig namespace git uses for commit and tag signatures.
pub const GIT_NAMESPACE: &str = "git";
/// The commit header that carries the signature (for SHA-1 repositories).
pub const SIGNATURE_HEADER: &str = "gpgsig";
/// Hash used inside the sshsig blob; `ssh-keygen -Y sign` (and so git) uses sha512.
const SIGN_HASH: HashAlg = HashAlg::Sha512;

/// Why a key could not be loaded or a signed commit could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    #[error("signing key {path}: file does not exist")]
    Missing { path: PathBuf },
    #[error("signing key {path}: cannot read file: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("signing key {path}: permissions {mode:04o} are too open (group or others can access it); run `chmod 600 {path}`")]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("signing key {path}: not an OpenSSH private key ({detail})")]
    NotOpenSshPrivateKey { path: PathBuf, detail: String },
    #[error("signing key {path}: key is protected by a passphrase; use a key without one (passphrase-protected keys are not supported)")]
    Encrypted { path: PathBuf },
    #[error("signing key {path}: key type is {key_type}; only ssh-ed25519 keys are supported (make one with `ssh-keygen -t ed25519`)")]
    NotEd25519 { path: PathBuf, key_type: String },
    #[error("signing key {path}: signing failed: {reason}")]
    Sign { path: PathBuf, reason: String },
    #[error("cannot sign commit: the commit buffer is not valid UTF-8 (libgit2's commit_signed needs UTF-8)")]
    NonUtf8Commit,
    #[error("cannot update {refname}: its current tip is not the first parent of the new commit")]
    RefNotAtParent { refname: String },
    #[error("git error while making signed commit: {0}")]
    Git(#[from] git2::Error),
}

/// An unencrypted Ed25519 OpenSSH private key, loaded for signing commits.
///
/// The secret is zeroized on drop (by `ssh-key`). `Debug` shows only the path
/// and the public fingerprint.
pub struct SigningKey {
    path: PathBuf,
    key: PrivateKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("path", &self.path)
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Loads the key at `path`, refusing (each with its own [`SigningError`])
    /// a missing or unreadable file, a file group/others may access (unix mode
    /// `& 0o077 != 0`, the same rule as ssh), anything but an OpenSSH private
    /// key, a passphrase-protected key, and any key type but Ed25519.
    pub fn load(path: &Path) -> Result<SigningKey, SigningError> {
        let owned = || path.to_path_buf();
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SigningError::Missing { path: owned() })
            }
            Err(e) => {
                return Err(SigningError::Unreadable {
                    path: owned(),
                    reason: e.to_string(),
                })
            }
        };
        if !meta.is_file() {
            return Err(SigningError::Unreadable {
                path: owned(),
                reason: "not a regular file".into(),
            });
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(SigningError::TooOpen {
                    path: owned(),
                    mode,
                });
            }
        }
        let bytes = fs::read(path).map_err(|e| SigningError::Unreadable {
            path: owned(),
            reason: e.to_string(),
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|_| SigningError::NotOpenSshPrivateKey {
            path: owned(),
            detail: "file is not text".into(),
        })?;
        let trimmed = text.trim_start();
        if !trimmed.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----") {
            let detail = if trimmed.starts_with("-----BEGIN ")
                && trimmed.contains("PRIVATE KEY-----")
            {
                "PEM/PKCS#8 private key; only the OpenSSH format written by `ssh-keygen -t ed25519` is supported"
            } else if trimmed.starts_with("ssh-")
                || trimmed.starts_with("ecdsa-")
                || trimmed.starts_with("sk-")
            {
                "this looks like a public key; give the private key file (without .pub)"
            } else {
                "missing -----BEGIN OPENSSH PRIVATE KEY----- line"
            };
            return Err(SigningError::NotOpenSshPrivateKey {
                path: owned(),
                detail: detail.into(),
            });
        }
        let key = match PrivateKey::from_openssh(trimmed) {
            Ok(key) => key,
            // Built without the ecdsa/rsa/... features, other key types may fail to decode.
            Err(ssh_key::Error::AlgorithmUnknown)
            | Err(ssh_key::Error::AlgorithmUnsupported { .. }) => {
                return Err(SigningError::NotEd25519 {
                    path: owned(),
                    key_type: "unsupported (ECDSA, security key or other)".into(),
                })
            }
            Err(ssh_key::Error::Encrypted) => {
                return Err(SigningError::Encrypted { path: owned() })
            }
            Err(e) => {
                return Err(SigningError::NotOpenSshPrivateKey {
                    path: owned(),
                    detail: format!("cannot decode: {e}"),
                })
            }
        };
        if key.is_encrypted() {
            return Err(SigningError::Encrypted { path: owned() });
        }
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(SigningError::NotEd25519 {
                path: owned(),
                key_type: key.algorithm().as_str().to_string(),
            });
        }
        Ok(SigningKey { path: owned(), key })
    }

    /// `SHA256:<base64, unpadded>`, as `ssh-keygen -l -f KEY` prints it.
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(HashAlg::Sha256).to_string()
    }

    /// Signs `commit_buffer` (the output of `Repository::commit_create_buffer`)
    /// with namespace `git` and hash sha512, and returns the armored
    /// `-----BEGIN SSH SIGNATURE-----` text **without a trailing newline**:
    /// exactly the string to pass to `Repository::commit_signed(buffer,
    /// signature, Some("gpgsig"))` to get the bytes git itself writes.
    pub fn sign_commit(&self, commit_buffer: &[u8]) -> Result<String, SigningError> {
        let sign_err = |e: ssh_key::Error| SigningError::Sign {
            path: self.path.clone(),
            reason: e.to_string(),
        };
        let sig =
            SshSig::sign(&self.key, GIT_NAMESPACE, SIGN_HASH, commit_buffer).map_err(sign_err)?;
        let pem = sig.to_pem(LineEnding::LF).map_err(sign_err)?;
        Ok(pem.trim_end_matches(['\n', '\r']).to_string())
    }
}

/// Creates a signed commit; a drop-in for
/// `repo.commit(update_ref, author, committer, message, tree, parents)`.
///
/// Builds the buffer with `commit_create_buffer`, signs it, and writes it with
/// `commit_signed`. `Repository::commit_signed` itself moves **no** ref (not
/// even HEAD), so when `update_ref` is `Some`, this function updates it the
/// way `Repository::commit` does: symbolic refs (e.g. `HEAD`) are followed to
/// the branch (which may be unborn); an existing ref must currently point at
/// the first parent (else [`SigningError::RefNotAtParent`], checked before the
/// object is written and again atomically while updating); the reflog message
/// is `commit: <summary>` / `commit (initial): ...` / `commit (merge): ...`.
///
/// Note `message` is stored as given: `git commit -m msg` stores `"msg\n"`.
#[allow(clippy::too_many_arguments)]
pub fn commit_signed(
    repo: &Repository,
    update_ref: Option<&str>,
    author: &Signature<'_>,
    committer: &Signature<'_>,
    message: &str,
    tree: &Tree<'_>,
    parents: &[&Commit<'_>],
    key: &SigningKey,
) -> Result<Oid, SigningError> {
    let target = match update_ref {
        Some(name) => {
            let resolved = resolve_symbolic(repo, name)?;
            let current = match repo.find_reference(&resolved) {
                Ok(r) => Some(
                    r.resolve()?
                        .target()
                        .ok_or_else(|| git2::Error::from_str("reference has no target"))?,
                ),
                Err(e) if e.code() == ErrorCode::NotFound => None,
                Err(e) => return Err(e.into()),
            };
            if let Some(current) = current {
                if parents.first().map(|p| p.id()) != Some(current) {
                    return Err(SigningError::RefNotAtParent { refname: resolved });
                }
            }
            Some((resolved, current))
        }
        None => None,
    };

    let buffer = repo.commit_create_buffer(author, committer, message, tree, parents)?;
    let buffer = buffer.as_str().ok_or(SigningError::NonUtf8Commit)?;
    let signature = key.sign_commit(buffer.as_bytes())?;
    let oid = repo.commit_signed(buffer, &signature, Some(SIGNATURE_HEADER))?;

    if let Some((refname, current)) = target {
        let kind = match parents.len() {
            0 => " (initial)",
            1 => "",
            _ => " (merge)",
        };
        let summary = message
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        let log = format!("commit{kind}: {summary}");
        let result = match current {
            Some(current) => repo.reference_matching(&refname, oid, true, current, &log),
            None => repo.reference(&refname, oid, false, &log),
        };
        match result {
            Ok(_) => {}
            Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => {
                return Err(SigningError::RefNotAtParent { refname })
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(oid)
}

/// Follows symbolic refs by name (works for an unborn branch behind HEAD).
fn resolve_symbolic(repo: &Repository, name: &str) -> Result<String, git2::Error> {
    let mut name = name.to_string();
    for _ in 0..10 {
        match repo.find_reference(&name) {
            Ok(r) => match r.symbolic_target() {
                Some(next) => name = next.to_string(),
                None => return Ok(name),
            },
            Err(e) if e.code() == ErrorCode::NotFound => return Ok(name),
            Err(e) => return Err(e),
        }
    }
    Err(git2::Error::from_str("symbolic reference chain too long"))
}
