//! Verification: checking a commit's SSH signature against an allowed signers file, as
//! `git verify-commit` does with `gpg.format=ssh`.

use git2::{ErrorCode, Oid, Repository};
use ssh_key::{Algorithm, HashAlg, SshSig};

use super::allowed::{AllowedSigner, AllowedSigners};
use super::keys::{GIT_NAMESPACE, SIGNATURE_HEADER};

/// A good signature by a key in the allowed signers file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The principals field of the matching entry, as `git log --show-signature` shows it.
    pub principal: String,
    /// `SHA256:...` of the signing key.
    pub fingerprint: String,
}

/// Why a commit's signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum VerifyProblem {
    #[error("commit {oid} is not signed")]
    Unsigned { oid: Oid },
    #[error("commit {oid}: malformed signature: {detail}")]
    Malformed { oid: Oid, detail: String },
    #[error("commit {oid}: signature namespace is {found:?}, expected \"git\"")]
    WrongNamespace { oid: Oid, found: String },
    #[error("commit {oid}: signing key {fingerprint} is not in the allowed signers file")]
    UnknownKey { oid: Oid, fingerprint: String },
    #[error("commit {oid}: signing key {fingerprint} is in the allowed signers file but not allowed here: {reason}")]
    KeyNotAllowed {
        oid: Oid,
        fingerprint: String,
        reason: String,
    },
    #[error("commit {oid}: signature algorithm {algorithm} is not supported (only ssh-ed25519)")]
    UnsupportedAlgorithm { oid: Oid, algorithm: String },
    #[error("commit {oid}: BAD signature by {fingerprint} (commit content does not match its signature)")]
    BadSignature { oid: Oid, fingerprint: String },
    #[error("commit {oid}: cannot read commit: {0}", oid = .1)]
    Git(git2::Error, Oid),
}

impl AllowedSigners {
    /// Verifies the SSH signature on commit `oid` (see [`verify_commit`]).
    pub fn verify_commit(&self, repo: &Repository, oid: Oid) -> Result<Verified, VerifyProblem> {
        verify_commit(repo, oid, self)
    }
}

/// Verifies the `gpgsig` SSH signature of commit `oid` against `allowed`,
/// as `git verify-commit` does with `gpg.format=ssh`: the namespace must be
/// `git`, the key must be in an entry whose options allow namespace `git` at
/// the commit's committer time, and the signature must match the commit's
/// content without the `gpgsig` header.
pub fn verify_commit(
    repo: &Repository,
    oid: Oid,
    allowed: &AllowedSigners,
) -> Result<Verified, VerifyProblem> {
    let (sig_buf, signed_data) = match repo.extract_signature(&oid, Some(SIGNATURE_HEADER)) {
        Ok(pair) => pair,
        Err(e) if e.code() == ErrorCode::NotFound => {
            // NotFound means either "no such commit" or "no signature".
            return match repo.find_commit(oid) {
                Ok(_) => Err(VerifyProblem::Unsigned { oid }),
                Err(e) => Err(VerifyProblem::Git(e, oid)),
            };
        }
        Err(e) => return Err(VerifyProblem::Git(e, oid)),
    };
    let malformed = |detail: String| VerifyProblem::Malformed { oid, detail };
    let sig_text = sig_buf
        .as_str()
        .ok_or_else(|| malformed("signature is not UTF-8".into()))?
        .trim();
    if !sig_text.starts_with("-----BEGIN SSH SIGNATURE-----") {
        let kind = if sig_text.starts_with("-----BEGIN PGP") {
            "an OpenPGP signature"
        } else {
            "not an SSH signature"
        };
        return Err(malformed(format!(
            "{kind}, expected -----BEGIN SSH SIGNATURE-----"
        )));
    }
    let sig = SshSig::from_pem(sig_text).map_err(|e| malformed(e.to_string()))?;
    if sig.namespace() != GIT_NAMESPACE {
        return Err(VerifyProblem::WrongNamespace {
            oid,
            found: sig.namespace().to_string(),
        });
    }
    let fingerprint = sig.public_key().fingerprint(HashAlg::Sha256).to_string();
    let candidates: Vec<&AllowedSigner> = allowed
        .entries
        .iter()
        .filter(|e| {
            e.key
                .as_ref()
                .is_some_and(|k| k.key_data() == sig.public_key())
        })
        .collect();
    if candidates.is_empty() {
        return Err(VerifyProblem::UnknownKey { oid, fingerprint });
    }
    let commit_time = repo
        .find_commit(oid)
        .map_err(|e| VerifyProblem::Git(e, oid))?
        .committer()
        .when()
        .seconds();
    let mut reason = String::new();
    let entry = candidates.into_iter().find(|e| {
        let why = if e.cert_authority {
            Some(format!("line {} is a cert-authority entry", e.line))
        } else if !e.allows_namespace(GIT_NAMESPACE) {
            Some(format!("line {} does not allow namespace \"git\"", e.line))
        } else if e.valid_after.is_some_and(|t| commit_time < t) {
            Some(format!(
                "line {}: key not yet valid at the commit time",
                e.line
            ))
        } else if e.valid_before.is_some_and(|t| commit_time > t) {
            Some(format!(
                "line {}: key expired before the commit time",
                e.line
            ))
        } else {
            None
        };
        match why {
            Some(why) => {
                reason = why;
                false
            }
            None => true,
        }
    });
    let Some(entry) = entry else {
        return Err(VerifyProblem::KeyNotAllowed {
            oid,
            fingerprint,
            reason,
        });
    };
    if sig.algorithm() != Algorithm::Ed25519 {
        return Err(VerifyProblem::UnsupportedAlgorithm {
            oid,
            algorithm: sig.algorithm().as_str().to_string(),
        });
    }
    let Some(key) = entry.key.as_ref() else {
        return Err(VerifyProblem::UnknownKey { oid, fingerprint });
    };
    match key.verify(GIT_NAMESPACE, &signed_data, &sig) {
        Ok(()) => Ok(Verified {
            principal: entry.principals.clone(),
            fingerprint,
        }),
        Err(_) => Err(VerifyProblem::BadSignature { oid, fingerprint }),
    }
}
