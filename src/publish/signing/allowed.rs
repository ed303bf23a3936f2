//! The allowed-signers parser: git's and OpenSSH's `allowedSignersFile` format, read as
//! ssh-keygen reads it, so a file that works with `git verify-commit` works here.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{Local, NaiveDateTime, TimeZone, Utc};
use ssh_key::{Algorithm, PublicKey};

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
    pub(super) line: usize,
    pub(super) principals: String,
    pub(super) namespaces: Option<Vec<String>>,
    pub(super) cert_authority: bool,
    pub(super) valid_after: Option<i64>,
    pub(super) valid_before: Option<i64>,
    pub(super) key_type: String,
    /// `None` for key types this build cannot decode (never matches).
    pub(super) key: Option<PublicKey>,
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
            .map(|k| k.fingerprint(ssh_key::HashAlg::Sha256).to_string())
    }
}

impl AllowedSigner {
    /// Whether the entry's `namespaces="..."` option (if any) allows `namespace`.
    pub(super) fn allows_namespace(&self, namespace: &str) -> bool {
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
    pub(super) entries: Vec<AllowedSigner>,
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
