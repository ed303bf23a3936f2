//! SSH signing and verification of git commits (git's `gpg.format=ssh`).
//!
//! Commits made with [`commit_signed`] carry a `gpgsig` header holding an
//! `-----BEGIN SSH SIGNATURE-----` block (OpenSSH "sshsig", namespace `git`,
//! hash `sha512`), byte-for-byte what `git -c gpg.format=ssh commit -S` writes
//! for the same key and commit content. Ed25519 signatures are deterministic,
//! so the same commit content and key always give the same commit id.
//! `git verify-commit` (with `gpg.ssh.allowedSignersFile`) and GitHub accept
//! them.
//!
//! Only unencrypted Ed25519 keys in the OpenSSH private key format (what
//! `ssh-keygen -t ed25519` writes) are accepted; anything else is refused
//! with a one-line [`SigningError`] naming the file. Errors never contain key
//! material, and neither does `Debug` of [`SigningKey`].
//!
//! Gotchas handled here (see also [`commit_signed`]):
//! * libgit2's `commit_signed` writes the signature as given, prefixing every
//!   continuation line with a space and adding one final newline. An armored
//!   signature that still ends in `\n` therefore produces an extra ` ` line
//!   (a different commit than git's). [`SigningKey::sign_commit`] returns the
//!   armor *without* its trailing newline, which gives git's exact bytes.
//! * The header is `gpgsig` for every signature format (not `gpgsig-ssh`);
//!   `gpgsig-sha256` is only for SHA-256 repositories.
//! * `Repository::commit_signed` creates the object and moves no ref; pass
//!   `update_ref` to [`commit_signed`] to get `Repository::commit`'s behaviour.
//!
//! The module is split by job: [`keys`] loads a key and signs commits, [`allowed`] parses
//! allowed signers files, [`verify`] checks a commit's signature against them.

// The error and problem variants are described by their `#[error]` messages.
#![allow(missing_docs)]

mod allowed;
mod keys;
mod verify;

// The module's whole surface, at the paths it had as one file; not every name is used today.
#[allow(unused_imports)]
pub use allowed::{AllowedSigner, AllowedSigners, AllowedSignersError};
#[allow(unused_imports)]
pub use keys::{commit_signed, SigningError, SigningKey, GIT_NAMESPACE, SIGNATURE_HEADER};
#[allow(unused_imports)]
pub use verify::{verify_commit, Verified, VerifyProblem};
