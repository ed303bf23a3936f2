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

// The error and problem variants are described by their `#[error]` messages.
#![allow(missing_docs)]

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{Local, NaiveDateTime, TimeZone, Utc};
use git2::{Commit, ErrorCode, Oid, Repository, Signature, Tree};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

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

// ---------------------------------------------------------------------------
// Allowed signers
// ---------------------------------------------------------------------------

/// A line of an allowed signers file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum AllowedSignersError {
    #[error("allowed signers file {path}: cannot read: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error("allowed signers {source_name} line {line}: {problem}")]
    Line {
        source_name: String,
        line: usize,
        problem: String,
    },
}

/// One entry of an allowed signers file.
#[derive(Clone, Debug)]
pub struct AllowedSigner {
    line: usize,
    principals: String,
    namespaces: Option<Vec<String>>,
    cert_authority: bool,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
    key_type: String,
    /// `None` for key types this build cannot decode (never matches).
    key: Option<PublicKey>,
}

/// What a parsed entry says; the parser's tests read it.
#[cfg(test)]
impl AllowedSigner {
    /// 1-based line number in the file.
    pub fn line(&self) -> usize {
        self.line
    }
    /// The principals field as written (comma-separated patterns).
    pub fn principals(&self) -> &str {
        &self.principals
    }
    /// The `namespaces="..."` patterns, if the option was given.
    pub fn namespaces(&self) -> Option<&[String]> {
        self.namespaces.as_deref()
    }
    pub fn is_cert_authority(&self) -> bool {
        self.cert_authority
    }
    /// The key type as written, e.g. `ssh-ed25519`.
    pub fn key_type(&self) -> &str {
        &self.key_type
    }
    /// `SHA256:...` of the key, when this build could decode it.
    pub fn fingerprint(&self) -> Option<String> {
        self.key
            .as_ref()
            .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
    }
}

impl AllowedSigner {
    /// Whether the entry's `namespaces="..."` option (if any) allows `namespace`.
    fn allows_namespace(&self, namespace: &str) -> bool {
        match &self.namespaces {
            None => true,
            Some(patterns) => pattern_list_matches(patterns, namespace),
        }
    }
}

/// Git's / OpenSSH's allowed signers file (`gpg.ssh.allowedSignersFile`, see
/// `ssh-keygen(1)`, "ALLOWED SIGNERS"):
///
/// ```text
/// # comment
/// principal[,principal...] [option[,option...]] keytype base64 [comment]
/// ```
///
/// Options (names case-insensitive, values in double quotes), as ssh-keygen:
/// * `namespaces="git,other*"`: honoured; the entry only vouches for
///   signatures whose namespace matches one of the patterns (`*`/`?`
///   wildcards, `!` negation).
/// * `valid-after="YYYYMMDD[HHMM[SS]][Z]"`, `valid-before="..."`: honoured
///   against the commit's committer time, as git does (`-Overify-time`).
///   Without `Z` the time is local time, as in ssh-keygen.
/// * `cert-authority`: parsed, but such an entry never matches: it trusts
///   certificates signed by that CA, and certificate signatures are not
///   supported here (a plain signature by the CA key is not trusted either,
///   as in ssh-keygen).
/// * anything else makes the file invalid (ssh-keygen refuses it too).
///
/// Keys of types this build cannot decode (e.g. ECDSA) are kept but never
/// match. Principal patterns are not matched against anything: verification
/// looks the signing key up and reports the entry's principals.
#[derive(Clone, Debug, Default)]
pub struct AllowedSigners {
    entries: Vec<AllowedSigner>,
}

impl AllowedSigners {
    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<AllowedSigners, AllowedSignersError> {
        let text = fs::read_to_string(path).map_err(|e| AllowedSignersError::Unreadable {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::parse_named(&text, &path.display().to_string())
    }

    /// Parses file contents.
    #[cfg(test)]
    pub fn parse(text: &str) -> Result<AllowedSigners, AllowedSignersError> {
        Self::parse_named(text, "(text)")
    }

    fn parse_named(text: &str, source_name: &str) -> Result<AllowedSigners, AllowedSignersError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry =
                parse_line(line, index + 1).map_err(|problem| AllowedSignersError::Line {
                    source_name: source_name.to_string(),
                    line: index + 1,
                    problem,
                })?;
            entries.push(entry);
        }
        Ok(AllowedSigners { entries })
    }

    /// The entries, in file order.
    #[cfg(test)]
    pub fn entries(&self) -> &[AllowedSigner] {
        &self.entries
    }

    /// Verifies the SSH signature on commit `oid` (see [`verify_commit`]).
    pub fn verify_commit(&self, repo: &Repository, oid: Oid) -> Result<Verified, VerifyProblem> {
        verify_commit(repo, oid, self)
    }
}

fn parse_line(line: &str, line_no: usize) -> Result<AllowedSigner, String> {
    let (principals, rest) = split_ws(line);
    if rest.is_empty() {
        return Err("missing key after principals".into());
    }
    if principals.contains('"') {
        return Err("quoted principals are not supported".into());
    }
    let (second, after_second) = split_quoted_ws(rest)?;
    let (options, key_text) = if looks_like_key_type(second) {
        ("", rest)
    } else {
        (second, after_second)
    };

    let mut entry = AllowedSigner {
        line: line_no,
        principals: principals.to_string(),
        namespaces: None,
        cert_authority: false,
        valid_after: None,
        valid_before: None,
        key_type: String::new(),
        key: None,
    };
    if !options.is_empty() {
        for option in split_outside_quotes(options, ',')? {
            let (name, value) = match option.split_once('=') {
                Some((n, v)) => (n, Some(unquote(v)?)),
                None => (option, None),
            };
            match (name.to_ascii_lowercase().as_str(), value) {
                ("cert-authority", None) if !entry.cert_authority => entry.cert_authority = true,
                ("namespaces", Some(v)) if entry.namespaces.is_none() => {
                    let list: Vec<String> = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect();
                    if list.is_empty() {
                        return Err("namespaces option is empty".into());
                    }
                    entry.namespaces = Some(list);
                }
                ("valid-after", Some(v)) if entry.valid_after.is_none() => {
                    entry.valid_after = Some(parse_ssh_time(&v)?)
                }
                ("valid-before", Some(v)) if entry.valid_before.is_none() => {
                    entry.valid_before = Some(parse_ssh_time(&v)?)
                }
                ("cert-authority" | "namespaces" | "valid-after" | "valid-before", _) => {
                    return Err(format!("option {name} is repeated or malformed"))
                }
                _ => return Err(format!("unsupported option {name:?}")),
            }
        }
    }

    let (key_type, key_rest) = split_ws(key_text);
    if key_rest.is_empty() {
        return Err(format!("missing base64 key data after {key_type:?}"));
    }
    entry.key_type = key_type.to_string();
    match PublicKey::from_openssh(key_text) {
        Ok(key) => entry.key = Some(key),
        // Key types not compiled in (ecdsa, sk-*, certificates): keep the entry, never match.
        Err(ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. })
            if key_type != Algorithm::Ed25519.as_str() => {}
        Err(e) => return Err(format!("invalid {key_type} key: {e}")),
    }
    Ok(entry)
}

fn looks_like_key_type(token: &str) -> bool {
    !token.contains(['=', '"', ','])
        && (token.starts_with("ssh-")
            || token.starts_with("ecdsa-")
            || token.starts_with("sk-")
            || token.contains('@'))
        && !token.eq_ignore_ascii_case("cert-authority")
}

/// Splits off the first whitespace-delimited token; the rest is left-trimmed.
fn split_ws(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// Like [`split_ws`], but whitespace inside double quotes does not end the token.
fn split_quoted_ws(s: &str) -> Result<(&str, &str), String> {
    let mut in_quotes = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quotes = !in_quotes,
            c if c.is_whitespace() && !in_quotes => return Ok((&s[..i], s[i..].trim_start())),
            _ => {}
        }
    }
    if in_quotes {
        return Err("unterminated quote in options".into());
    }
    Ok((s, ""))
}

fn split_outside_quotes(s: &str, sep: char) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut in_quotes = false;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        if c == '"' {
            in_quotes = !in_quotes;
        } else if c == sep && !in_quotes {
            parts.push(&s[start..i]);
            start = i + c.len_utf8();
        }
    }
    if in_quotes {
        return Err("unterminated quote in options".into());
    }
    parts.push(&s[start..]);
    if parts.iter().any(|p| p.is_empty()) {
        return Err("empty option".into());
    }
    Ok(parts)
}

fn unquote(v: &str) -> Result<String, String> {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => Ok(inner.to_string()),
        _ => Err(format!("option value {v} must be in double quotes")),
    }
}

/// `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, optionally followed by `Z`
/// (UTC); without `Z`, local time (as ssh-keygen).
fn parse_ssh_time(v: &str) -> Result<i64, String> {
    let bad = || format!("invalid time {v:?} (expected YYYYMMDD[HHMM[SS]][Z])");
    let (digits, utc) = match v.strip_suffix(['Z', 'z']) {
        Some(d) => (d, true),
        None => (v, false),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let full = match digits.len() {
        8 => format!("{digits}000000"),
        12 => format!("{digits}00"),
        14 => digits.to_string(),
        _ => return Err(bad()),
    };
    let naive = NaiveDateTime::parse_from_str(&full, "%Y%m%d%H%M%S").map_err(|_| bad())?;
    if utc {
        Ok(Utc.from_utc_datetime(&naive).timestamp())
    } else {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.timestamp())
            .ok_or_else(bad)
    }
}

/// OpenSSH `match_pattern_list`: comma-separated patterns with `*` and `?`;
/// a matching `!pattern` rejects outright.
fn pattern_list_matches(patterns: &[String], s: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        match p.strip_prefix('!') {
            Some(neg) if glob(neg.as_bytes(), s.as_bytes()) => return false,
            Some(_) => {}
            None => matched |= glob(p.as_bytes(), s.as_bytes()),
        }
    }
    matched
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&p[1..], s) || (!s.is_empty() && glob(p, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILM+rvN+ot98qgEN796jTiQfZfG1KaT0PtFDJ/XFSqti";

    #[test]
    fn parses_plain_and_optioned_lines() {
        let text = format!(
            "# comment\n\n  alice@example.com {ED} laptop key\n\
             bob@x,carol@y namespaces=\"git,file\",valid-after=\"20200101Z\" {ED}\n\
             dave NAMESPACES=\"a b\" {ED}\n"
        );
        let s = AllowedSigners::parse(&text).unwrap();
        let e = s.entries();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].principals(), "alice@example.com");
        assert_eq!(e[0].line(), 3);
        assert!(e[0].namespaces().is_none());
        assert_eq!(e[0].key_type(), "ssh-ed25519");
        assert!(e[0].fingerprint().unwrap().starts_with("SHA256:"));
        assert_eq!(e[1].principals(), "bob@x,carol@y");
        assert_eq!(
            e[1].namespaces().unwrap(),
            ["git".to_string(), "file".to_string()]
        );
        assert_eq!(e[1].valid_after, Some(1_577_836_800));
        assert_eq!(e[2].namespaces().unwrap(), ["a b".to_string()]);
    }

    #[test]
    fn cert_authority_and_unknown_key_types_are_kept() {
        let text = format!(
            "ca@x cert-authority {ED}\n\
             e@x ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBLs2pmlxjkKo0QyDQYsUV9kBL0Fhmkg9w1PueKRv0ma28iGOP5tMOwEbcYc1BlZXGNmbo5fagcs1K0FMmT9S79E=\n"
        );
        let s = AllowedSigners::parse(&text).unwrap();
        assert!(s.entries()[0].is_cert_authority());
        assert_eq!(s.entries()[1].key_type(), "ecdsa-sha2-nistp256");
    }

    #[test]
    fn rejects_bad_lines_with_line_number() {
        for (text, needle) in [
            ("alice\n".to_string(), "missing key"),
            (format!("alice restrict {ED}\n"), "unsupported option"),
            (format!("alice namespaces=git {ED}\n"), "double quotes"),
            (
                format!("alice namespaces=\"git\",namespaces=\"x\" {ED}\n"),
                "repeated",
            ),
            (
                format!("alice valid-before=\"2020\" {ED}\n"),
                "invalid time",
            ),
            (
                "alice ssh-ed25519 !!notbase64\n".to_string(),
                "invalid ssh-ed25519 key",
            ),
            ("alice ssh-ed25519\n".to_string(), "missing base64"),
            (format!("alice namespaces=\"git {ED}\n"), "unterminated"),
        ] {
            let err = AllowedSigners::parse(&format!("# x\n{text}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("line 2") && err.contains(needle),
                "{text:?} gave {err}"
            );
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn ssh_times() {
        assert_eq!(parse_ssh_time("19700101Z").unwrap(), 0);
        assert_eq!(parse_ssh_time("197001010001Z").unwrap(), 60);
        assert_eq!(parse_ssh_time("19700101000001Z").unwrap(), 1);
        assert!(parse_ssh_time("19700101").is_ok());
        assert!(parse_ssh_time("1970010").is_err());
        assert!(parse_ssh_time("19701301Z").is_err());
    }

    #[test]
    fn namespace_patterns() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(pattern_list_matches(&p(&["git"]), "git"));
        assert!(!pattern_list_matches(&p(&["file"]), "git"));
        assert!(pattern_list_matches(&p(&["g*"]), "git"));
        assert!(pattern_list_matches(&p(&["g?t"]), "git"));
        assert!(!pattern_list_matches(&p(&["*", "!git"]), "git"));
    }
}
