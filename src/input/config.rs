//! Gitcord's YAML configuration, read the way Gitcord reads it.
//!
//! The same file Gitcord runs with must mean the same thing to us: it is parsed as PyYAML's
//! `safe_load` parses it ([`crate::input::yaml`]: YAML 1.1 scalars, merge keys, last-wins
//! duplicates), unknown sections and keys are ignored, and each value we read is coerced as
//! pydantic's lax mode does for its type (`5.0` and `"5"` are the integer 5, `"yes"` is true,
//! an unquoted number is not a string). `${VAR}` (upper-case letters, digits, `_`) is expanded
//! from the environment in string values. Unlike Gitcord, expansion is lazy: a variable is
//! only required when this run reads the value that names it, so an export never needs
//! `DISCORD_TOKEN`. Integer and boolean settings are the exception: they are expanded (and
//! checked) when the file is loaded, because their type is only known after expansion.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

use crate::input::yaml::{self, Value};

/// Why the configuration cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is missing or unreadable.
    #[error("config file {path} cannot be read: {source}")]
    Unreadable {
        /// The config file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// YAML syntax, or a value of the wrong type; the message carries the key path or the
    /// line and column.
    #[error("config file {path}: {message}")]
    Invalid {
        /// The config file.
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// A `${VAR}` this run needs is not set.
    #[error("config file {path}: {key} refers to ${{{var}}}, but the environment variable {var} is not set")]
    UnsetVariable {
        /// The config file.
        path: PathBuf,
        /// Key path of the value, e.g. `github.token`.
        key: String,
        /// The variable's name.
        var: String,
    },
}

/// A string value from the file, kept unexpanded until the run asks for it.
#[derive(Clone, PartialEq, Eq)]
pub struct Text {
    raw: String,
    key: String,
    /// From `!!binary`: Gitcord expands `${VAR}` only in `str` values, not in bytes.
    literal: bool,
}

impl fmt::Debug for Text {
    // Never print values: this type carries tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({})", self.key)
    }
}

impl Text {}

/// The parts of Gitcord's configuration that snapshots depend on.
#[derive(Debug, Clone)]
pub struct Config {
    path: PathBuf,
    org: Text,
    data_dir: Option<Text>,
    /// `scoring.period_days`: the contribution window ending at the snapshot time.
    pub period_days: i64,
    /// `scoring.weights.pr_merged` (0 when absent): points per merged PR without a difficulty.
    pub pr_merged_weight: i64,
    /// `scoring.difficulty_weights`, in file order (a later key wins after lower-casing).
    pub difficulty_weights: Vec<(String, i64)>,
    identity_mappings: Vec<(Text, Text)>,
    github_token: Option<Text>,
    discord_guild_id: Option<Text>,
    discord_token: Option<Text>,
    discord_api_base: Option<Text>,
    /// The `snapshots:` section.
    pub snapshots: SnapshotsSection,
}

/// The `snapshots:` section: Gitcord's own keys plus the exporter's.
#[derive(Debug, Clone, Default)]
pub struct SnapshotsSection {
    /// Whether publishing is switched on (`push` does nothing otherwise).
    pub enabled: bool,
    /// `snapshots.repo_path` (unexpanded).
    pub repo_path: Option<Text>,
    /// `snapshots.branch` (unexpanded).
    pub branch: Option<Text>,
    /// `snapshots.remote_url` (unexpanded).
    pub remote_url: Option<Text>,
    /// `snapshots.clone_dir` (unexpanded).
    pub clone_dir: Option<Text>,
    token: Option<Text>,
    /// `snapshots.ca_file` (unexpanded).
    pub ca_file: Option<Text>,
    /// `snapshots.author_name` (unexpanded).
    pub author_name: Option<Text>,
    /// `snapshots.author_email` (unexpanded).
    pub author_email: Option<Text>,
    roles_file: Option<Text>,
    /// `snapshots.metrics_file` (unexpanded).
    pub metrics_file: Option<Text>,
    /// `snapshots.latest_file` (unexpanded): the readers' index at the repository root;
    /// `None` means the default, an empty string turns it off.
    pub latest_file: Option<Text>,
    /// `snapshots.signing_key` (unexpanded): the SSH key snapshot commits are signed with.
    pub signing_key: Option<Text>,
    /// `snapshots.allowed_signers` (unexpanded): the keys `verify` accepts signatures from.
    pub allowed_signers: Option<Text>,
    /// `snapshots.writer` (unexpanded): `gitcord-snapshot` lets `push` publish while
    /// `enabled: false` keeps Gitcord's own writer off; see [`Config::push_enabled`].
    pub writer: Option<Text>,
    /// Skip the commit when nothing but the run's own fields changed.
    pub skip_unchanged: bool,
    /// Fail rather than write empty roles when Discord cannot be read (default true).
    pub roles_required: bool,
    /// `snapshots.backup` (default true): each push also backs up all of `state.db`.
    pub backup: bool,
    /// `snapshots.backup_branch` (unexpanded): where backups are committed.
    pub backup_branch: Option<Text>,
    /// `snapshots.backup_remote_url` (unexpanded): another repository the backup branch is
    /// fetched from and pushed to; `None` keeps it in the data repository.
    pub backup_remote_url: Option<Text>,
}

// ---- pydantic's lax coercions --------------------------------------------------------------

/// What pydantic v2 (lax mode) accepts as an `int` from a string, after `str.strip()`.
fn str_int_re() -> &'static Regex {
    static R: OnceLock<Option<Regex>> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"^[+-]?[0-9]+(?:_[0-9]+)*(?:\.0+)?$").ok())
        .as_ref()
        .unwrap_or_else(|| unreachable!("constant regex"))
}

/// pydantic's `str` from a parsed value: a string, or UTF-8 bytes (`!!binary`); nothing else
/// (an unquoted Discord id would lose digits to float rounding, so Gitcord refuses it).
fn lax_str(v: &Value) -> Result<(String, bool), String> {
    match v {
        Value::Str(s) => Ok((s.clone(), false)),
        Value::Bytes(b) => String::from_utf8(b.clone())
            .map(|s| (s, true))
            .map_err(|_| "must be a string, found binary data that is not UTF-8".to_owned()),
        other => Err(format!(
            "must be a string (quote it), found {}",
            other.kind()
        )),
    }
}

/// pydantic's `int` from a (string-expanded) value: `5`, `5.0`, `" 5 "`, `"5.00"`, `true`.
fn lax_int(v: &Value) -> Result<i128, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Bool(b) => Ok(i128::from(*b)),
        Value::Float(f) if !f.is_finite() => Err(format!("must be a finite integer, found {f}")),
        Value::Float(f) if f.fract() != 0.0 || f.abs() >= 1e30 => {
            Err(format!("must be a whole number, found {f}"))
        }
        Value::Float(f) => Ok(*f as i128),
        Value::Str(_) | Value::Bytes(_) => {
            let (s, _) = lax_str(v)?;
            let t = s.trim();
            let whole = t.split('.').next().unwrap_or(t).replace('_', "");
            match str_int_re().is_match(t) {
                true => whole
                    .parse()
                    .map_err(|_| format!("is out of range, found {t:?}")),
                false => Err(format!("must be an integer, found {s:?}")),
            }
        }
        other => Err(format!("must be an integer, found {}", other.kind())),
    }
}

/// pydantic's `bool`: `true`, `1`, `1.0`, and the strings `1 true t yes y on` (and their
/// negatives) in any case, unpadded.
fn lax_bool(v: &Value) -> Result<bool, String> {
    let parsed = match v {
        Value::Bool(b) => Some(*b),
        Value::Int(0) => Some(false),
        Value::Int(1) => Some(true),
        Value::Float(f) if *f == 0.0 => Some(false),
        Value::Float(f) if *f == 1.0 => Some(true),
        Value::Str(_) | Value::Bytes(_) => match lax_str(v)?.0.to_lowercase().as_str() {
            "0" | "off" | "f" | "false" | "n" | "no" => Some(false),
            "1" | "on" | "t" | "true" | "y" | "yes" => Some(true),
            _ => None,
        },
        _ => None,
    };
    parsed.ok_or_else(|| match v {
        Value::Str(s) => format!("must be true or false, found {s:?}"),
        other => format!("must be true or false, found {}", other.kind()),
    })
}

type Pairs = [(Value, Value)];

/// Reads typed values out of the parsed tree, naming the key path in every error.
struct Reader<'a> {
    path: &'a Path,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Reader<'_> {
    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            message,
        }
    }

    /// A section: `None` when absent (or null, if `null_ok`), an error when not a mapping.
    fn section<'v>(
        &self,
        parent: &'v Pairs,
        key: &str,
        null_ok: bool,
    ) -> Result<Option<&'v Pairs>, ConfigError> {
        match get(parent, key) {
            None => Ok(None),
            Some(Value::Null) if null_ok => Ok(None),
            Some(Value::Map(pairs)) => Ok(Some(pairs.as_slice())),
            Some(other) => {
                Err(self.invalid(format!("{key} must be a mapping, found {}", other.kind())))
            }
        }
    }

    /// A string setting, kept unexpanded. Absent is `None`; null is `None` only for keys
    /// whose type is `Optional[str]` (`null_ok`): for Gitcord's `str` keys it is an error,
    /// as in Gitcord.
    fn text(&self, map: &Pairs, key: &str, null_ok: bool) -> Result<Option<Text>, ConfigError> {
        let section = key.rsplit_once('.').map_or(key, |(_, k)| k);
        match get(map, section) {
            None => Ok(None),
            Some(Value::Null) if null_ok => Ok(None),
            Some(v) => self.text_value(v, key).map(Some),
        }
    }

    fn text_value(&self, v: &Value, key: &str) -> Result<Text, ConfigError> {
        let (raw, literal) = lax_str(v).map_err(|why| self.invalid(format!("{key} {why}")))?;
        Ok(Text {
            raw,
            key: key.to_owned(),
            literal,
        })
    }

    /// Gitcord expands `${VAR}` before pydantic coerces: a string is expanded first.
    fn expanded(&self, v: &Value, key: &str) -> Result<Value, ConfigError> {
        match v {
            Value::Str(s) => expand_with(s, self.lookup).map(Value::Str).map_err(|var| {
                ConfigError::UnsetVariable {
                    path: self.path.to_owned(),
                    key: key.to_owned(),
                    var,
                }
            }),
            other => Ok(other.clone()),
        }
    }

    fn int(&self, v: &Value, key: &str) -> Result<i128, ConfigError> {
        lax_int(&self.expanded(v, key)?).map_err(|why| self.invalid(self.why(v, key, why)))
    }

    /// `key` and why its value is refused; a value that came from `${VAR}` is not quoted (the
    /// variable may hold a token meant for another key).
    fn why(&self, v: &Value, key: &str, why: String) -> String {
        match v {
            Value::Str(raw) if raw.contains("${") => {
                let what = why.split(", found").next().unwrap_or(&why);
                format!("{key} {what} (its value comes from ${{...}} and is not shown)")
            }
            _ => format!("{key} {why}"),
        }
    }

    /// A boolean setting with a default; an explicit null is refused, as pydantic does.
    fn bool(&self, map: &Pairs, key: &str, default: bool) -> Result<bool, ConfigError> {
        let name = key.rsplit_once('.').map_or(key, |(_, k)| k);
        match get(map, name) {
            None => Ok(default),
            Some(v) => {
                lax_bool(&self.expanded(v, key)?).map_err(|why| self.invalid(self.why(v, key, why)))
            }
        }
    }

    /// `dict[str, int]` in file order, every entry checked.
    fn int_map(&self, v: &Value, key: &str) -> Result<Vec<(String, i128)>, ConfigError> {
        let Value::Map(pairs) = v else {
            return Err(self.invalid(format!("{key} must be a mapping, found {}", v.kind())));
        };
        pairs
            .iter()
            .map(|(k, v)| {
                let (label, _) = lax_str(k).map_err(|_| {
                    self.invalid(format!(
                        "{key}: keys must be strings, found {} ({}); quote it",
                        k.kind(),
                        k.key_repr()
                    ))
                })?;
                let weight = self.int(v, &format!("{key}.{label}"))?;
                Ok((label, weight))
            })
            .collect()
    }
}

/// `dict.get(key)` for a string key.
fn get<'v>(pairs: &'v Pairs, key: &str) -> Option<&'v Value> {
    pairs
        .iter()
        .find(|(k, _)| matches!(k, Value::Str(s) if s == key))
        .map(|(_, v)| v)
}

// ---- ${VAR} expansion ---------------------------------------------------------------------

/// Expands `${VAR}` the way Gitcord's loader does; `Err(name)` for the first unset variable.
fn expand_now(raw: &str) -> Result<String, String> {
    expand_with(raw, |name| std::env::var(name).ok())
}

fn expand_with(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let name_len = after
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'_')
            .count();
        if name_len > 0 && after.as_bytes().get(name_len) == Some(&b'}') {
            let name = &after[..name_len];
            out.push_str(&lookup(name).ok_or_else(|| name.to_owned())?);
            rest = &after[name_len + 1..];
        } else {
            // Not a reference Gitcord would expand (`${lower}`, `${A-B}`, `${`): keep it.
            out.push_str("${");
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

// ---- loading ------------------------------------------------------------------------------

/// The largest config file read (1 MiB).
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

impl Config {
    /// Reads and checks the file. Only structure and types are checked here; `${VAR}` in
    /// string values is resolved when a value is used.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read;
        let unreadable = |source| ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        };
        // Read at most one byte past the limit: a huge (or endless, e.g. /dev/zero) file is
        // refused without being held in memory.
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
            .map_err(unreadable)?;
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(ConfigError::Invalid {
                path: path.to_owned(),
                message: format!(
                    "is larger than {} KiB; a Gitcord config is a few KB, so this is not one",
                    MAX_CONFIG_BYTES / 1024
                ),
            });
        }
        let text = String::from_utf8(bytes).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: format!(
                "is not UTF-8 (invalid byte at offset {}); Gitcord cannot read it either",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Config::parse(path, &text)
    }

    /// Parses config text; `path` is only used in messages and to report where things are.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(path, text, &|name| std::env::var(name).ok())
    }

    /// [`Config::parse`] with the environment given as a function (integer and boolean
    /// settings are expanded while parsing).
    fn parse_with(
        path: &Path,
        text: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let r = Reader { path, lookup };
        // Python's text mode gives PyYAML universal newlines.
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let top = match yaml::safe_load(&text).map_err(|e| r.invalid(e.to_string()))? {
            Value::Null => return Err(r.invalid("the file is empty".into())),
            Value::Map(pairs) => pairs,
            other => {
                return Err(r.invalid(format!(
                    "the top level must be a mapping, found {}",
                    other.kind()
                )))
            }
        };

        let runtime = r.section(&top, "runtime", false)?.unwrap_or_default();
        let github = r
            .section(&top, "github", false)?
            .ok_or_else(|| r.invalid("github.org is required".into()))?;
        let org = r
            .text(github, "github.org", false)?
            .ok_or_else(|| r.invalid("github.org is required".into()))?;
        let discord = r.section(&top, "discord", false)?.unwrap_or_default();
        let scoring = r.section(&top, "scoring", false)?.unwrap_or_default();

        let period_days = match get(scoring, "period_days") {
            None => 30,
            Some(v) => r.int(v, "scoring.period_days")?,
        };
        // Gitcord requires a positive value; the upper bound keeps date arithmetic in range.
        if !(1..=36_500).contains(&period_days) {
            return Err(r.invalid(format!(
                "scoring.period_days must be between 1 and 36500, found {period_days}"
            )));
        }
        let weights = match get(scoring, "weights") {
            None => Vec::new(),
            Some(v) => r.int_map(v, "scoring.weights")?,
        };
        let pr_merged_weight = match weights.iter().rev().find(|(k, _)| k == "pr_merged") {
            None => 0,
            Some((_, w)) => i64::try_from(*w).map_err(|_| {
                r.invalid(format!(
                    "scoring.weights.pr_merged is out of range, found {w}"
                ))
            })?,
        };
        let difficulty_weights = match get(scoring, "difficulty_weights") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => r.int_map(v, "scoring.difficulty_weights")?,
        };
        let difficulty_weights = difficulty_weights
            .into_iter()
            .map(|(label, weight)| match i64::try_from(weight) {
                Ok(w) if w >= 0 => Ok((label, w)),
                _ => Err(r.invalid(format!(
                    "scoring.difficulty_weights.{label} must be non-negative, found {weight}"
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;

        let identity_mappings = match get(&top, "identity_mappings") {
            None => Vec::new(),
            Some(Value::Seq(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let key = format!("identity_mappings[{i}]");
                    let Value::Map(m) = item else {
                        return Err(
                            r.invalid(format!("{key} must be a mapping, found {}", item.kind()))
                        );
                    };
                    let field = |name: &str| {
                        let key = format!("{key}.{name}");
                        match get(m, name) {
                            None => Err(r.invalid(format!("{key} is required"))),
                            Some(v) => r.text_value(v, &key),
                        }
                    };
                    Ok((field("github_user")?, field("discord_user_id")?))
                })
                .collect::<Result<Vec<_>, _>>()?,
            // pydantic's lax list takes a set (`!!set`) as a list; its items are never
            // mappings, so only an empty one passes. `!!omap`/`!!pairs` give tuples.
            Some(Value::Set(items)) => match items.first() {
                None => Vec::new(),
                Some(item) => {
                    return Err(r.invalid(format!(
                        "identity_mappings[0] must be a mapping, found {}",
                        item.kind()
                    )))
                }
            },
            Some(Value::Pairs(items)) => {
                match items.first() {
                    None => Vec::new(),
                    Some(_) => return Err(r.invalid(
                        "identity_mappings[0] must be a mapping, found a pair (!!omap, !!pairs)"
                            .into(),
                    )),
                }
            }
            Some(other) => {
                return Err(r.invalid(format!(
                    "identity_mappings must be a list, found {}",
                    other.kind()
                )))
            }
        };

        let snapshots = match r.section(&top, "snapshots", true)? {
            None => SnapshotsSection {
                roles_required: true,
                backup: true,
                ..Default::default()
            },
            Some(s) => SnapshotsSection {
                enabled: r.bool(s, "snapshots.enabled", false)?,
                repo_path: r.text(s, "snapshots.repo_path", false)?,
                branch: r.text(s, "snapshots.branch", true)?,
                remote_url: r.text(s, "snapshots.remote_url", true)?,
                clone_dir: r.text(s, "snapshots.clone_dir", true)?,
                token: r.text(s, "snapshots.token", true)?,
                ca_file: r.text(s, "snapshots.ca_file", true)?,
                author_name: r.text(s, "snapshots.author_name", true)?,
                author_email: r.text(s, "snapshots.author_email", true)?,
                roles_file: r.text(s, "snapshots.roles_file", true)?,
                metrics_file: r.text(s, "snapshots.metrics_file", true)?,
                writer: r.text(s, "snapshots.writer", true)?,
                latest_file: r.text(s, "snapshots.latest_file", true)?,
                signing_key: r.text(s, "snapshots.signing_key", true)?,
                allowed_signers: r.text(s, "snapshots.allowed_signers", true)?,
                skip_unchanged: r.bool(s, "snapshots.skip_unchanged", false)?,
                roles_required: r.bool(s, "snapshots.roles_required", true)?,
                backup: r.bool(s, "snapshots.backup", true)?,
                backup_branch: r.text(s, "snapshots.backup_branch", true)?,
                backup_remote_url: r.text(s, "snapshots.backup_remote_url", true)?,
            },
        };
        Ok(Config {
            path: path.to_owned(),
            org,
            data_dir: r.text(runtime, "runtime.data_dir", false)?,
            // In 1..=36500 (checked above), so exact.
            period_days: period_days as i64,
            pr_merged_weight,
            difficulty_weights,
            identity_mappings,
            github_token: r.text(github, "github.token", false)?,
            discord_guild_id: r.text(discord, "discord.guild_id", false)?,
            discord_token: r.text(discord, "discord.token", false)?,
            discord_api_base: r.text(discord, "discord.api_base", true)?,
            snapshots,
        })
    }

    /// Resolves a value's `${VAR}` references now, naming the key if one is unset.
    pub fn expand(&self, value: &Text) -> Result<String, ConfigError> {
        if value.literal {
            return Ok(value.raw.clone());
        }
        expand_now(&value.raw).map_err(|var| ConfigError::UnsetVariable {
            path: self.path.clone(),
            key: value.key.clone(),
            var,
        })
    }

    /// [`Config::expand`] for an optional value.
    pub fn expand_opt(&self, value: &Option<Text>) -> Result<Option<String>, ConfigError> {
        value.as_ref().map(|v| self.expand(v)).transpose()
    }

    /// A configuration error about `key`, for checks made after loading.
    pub fn invalid(&self, key: &str, problem: impl fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.clone(),
            message: format!("{key} {problem}"),
        }
    }

    /// `github.org`: written into every file's header.
    pub fn org(&self) -> Result<String, ConfigError> {
        self.expand(&self.org)
    }

    /// `runtime.data_dir` as a path; a relative one is resolved against the working directory,
    /// as Gitcord does. `None` when the file does not set it.
    pub fn data_dir(&self) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.expand_opt(&self.data_dir)?.map(PathBuf::from))
    }

    /// `runtime.data_dir`, required: what Gitcord's state and audit log are relative to.
    pub fn require_data_dir(&self) -> Result<PathBuf, ConfigError> {
        self.data_dir()?.ok_or_else(|| {
            self.invalid(
                "runtime.data_dir",
                "is not set (pass --state-db, or set it)",
            )
        })
    }

    /// `identity_mappings`, Gitcord's legacy list, used when `state.db` has no verified link.
    pub fn identity_mappings(&self) -> Result<Vec<(String, String)>, ConfigError> {
        self.identity_mappings
            .iter()
            .map(|(gh, dc)| Ok((self.expand(gh)?, self.expand(dc)?)))
            .collect()
    }

    /// The GitHub token for pushing: `snapshots.token`, else `github.token`.
    pub fn push_token(&self) -> Result<Option<String>, ConfigError> {
        match &self.snapshots.token {
            Some(t) => self.expand(t).map(Some),
            None => self.expand_opt(&self.github_token),
        }
    }

    /// `discord.guild_id`, `discord.token` and `discord.api_base`, for reading roles from Discord.
    pub fn discord(&self) -> Result<(String, String, Option<String>), ConfigError> {
        let guild = self
            .discord_guild_id
            .as_ref()
            .ok_or_else(|| self.invalid("discord.guild_id", "is not set"))?;
        let token = self
            .discord_token
            .as_ref()
            .ok_or_else(|| self.invalid("discord.token", "is not set"))?;
        Ok((
            self.expand(guild)?,
            self.expand(token)?,
            self.expand_opt(&self.discord_api_base)?,
        ))
    }
}

/// The value of `snapshots.writer` that hands publishing to this tool.
pub const WRITER: &str = "gitcord-snapshot";

impl Config {
    /// Whether `push` publishes: `snapshots.writer: gitcord-snapshot`, or `snapshots.enabled:
    /// true`. The latter also switches on Gitcord's own Contents-API writer, which publishes
    /// to the same repository; two writers there race and duplicate snapshots, so every such
    /// run warns. Any other `writer` value is a configuration error, not a silent "off".
    pub fn push_enabled(&self) -> Result<bool, ConfigError> {
        let writer = self.expand_opt(&self.snapshots.writer)?;
        let by_writer = match writer.as_deref() {
            None => false,
            Some(WRITER) => true,
            Some(other) => {
                let found = match self
                    .snapshots
                    .writer
                    .as_ref()
                    .is_some_and(|w| w.raw.contains("${"))
                {
                    true => "a value from ${...} (not shown)".to_owned(),
                    false => format!("{other:?}"),
                };
                return Err(self.invalid(
                    "snapshots.writer",
                    format!("must be {WRITER:?} or absent, found {found}"),
                ));
            }
        };
        if self.snapshots.enabled {
            log::warn!(
                "snapshots.enabled is true, so Gitcord's own snapshot writer also publishes to \
                 this repository; to leave publishing to gitcord-snapshot alone, set \
                 snapshots.enabled: false and snapshots.writer: {WRITER}"
            );
        }
        Ok(by_writer || self.snapshots.enabled)
    }
}

impl SnapshotsSection {
    /// `snapshots.roles_file`: where roles come from when `--roles-file` is not given.
    pub fn roles_file(&self) -> Option<&Text> {
        self.roles_file.as_ref()
    }
}

#[cfg(test)]
mod compat;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("gitcord.yaml"), text)
    }

    #[test]
    fn expands_only_what_gitcord_expands() {
        let env = |n: &str| match n {
            "A_1" => Some("x".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(
            expand_with("${A_1}-${EMPTY}-$A_1-${lower}-${A-B}-${", env),
            Ok("x--$A_1-${lower}-${A-B}-${".into())
        );
        assert_eq!(expand_with("pre ${NOPE} post", env), Err("NOPE".into()));
    }

    #[test]
    fn reads_gitcord_config_ignoring_unknown_keys() {
        let cfg = parse(
            "runtime: {data_dir: ./data, mode: dry-run}\ngithub: {org: my-org, token: t, extra: 1}\n\
             scoring: {period_days: '7', weights: {pr_merged: 5.0}, difficulty_weights: {Easy: 2, HARD: 10}}\n\
             unknown_section: [1, 2]\n",
        )
        .unwrap();
        assert_eq!(cfg.org().unwrap(), "my-org");
        assert_eq!(cfg.period_days, 7);
        assert_eq!(cfg.pr_merged_weight, 5);
        assert_eq!(
            cfg.difficulty_weights,
            [("Easy".to_owned(), 2), ("HARD".to_owned(), 10)]
        );
        assert_eq!(cfg.data_dir().unwrap(), Some(PathBuf::from("./data")));
        assert!(!cfg.snapshots.enabled);
    }

    #[test]
    fn defaults_match_gitcord() {
        let cfg = parse("github: {org: o}\n").unwrap();
        assert_eq!(cfg.period_days, 30);
        assert_eq!(cfg.pr_merged_weight, 0);
        assert!(cfg.snapshots.roles_required);
        assert!(cfg
            .require_data_dir()
            .unwrap_err()
            .to_string()
            .contains("runtime.data_dir"));
    }

    #[test]
    fn unset_variables_fail_only_when_used() {
        let cfg = parse("github: {org: o, token: '${GITCORD_SNAPSHOT_TEST_UNSET}'}\n").unwrap();
        assert_eq!(cfg.org().unwrap(), "o");
        let err = cfg.push_token().unwrap_err().to_string();
        assert!(
            err.contains("github.token") && err.contains("GITCORD_SNAPSHOT_TEST_UNSET"),
            "{err}"
        );
    }

    #[test]
    fn type_errors_name_the_key_path() {
        let err = parse("github: {org: o}\nscoring:\n  period_days: soon\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("scoring.period_days") && err.contains("soon"),
            "{err}"
        );
        let err = parse("github: {org: o}\nscoring: {period_days: 5.5}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scoring.period_days"), "{err}");
        let err = parse("github: {org: o}\nscoring: {period_days: 0}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("must be between 1 and 36500"), "{err}");
        let err = parse("github: {org: o}\nscoring: {period_days: 999999999999}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("scoring.period_days"), "{err}");
        let err =
            parse("github: {org: o}\nidentity_mappings: [{github_user: a, discord_user_id: 12}]\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("identity_mappings[0].discord_user_id"),
            "{err}"
        );
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err = parse("github:\n  org: [unclosed\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("config file gitcord.yaml: ") && err.contains("line "),
            "{err}"
        );
        assert!(err.contains("column"), "{err}");
        assert!(!err.contains('\n'));
    }

    #[test]
    fn writer_key_switches_push_on_and_rejects_other_values() {
        let on = |snapshots: &str| {
            parse(&format!("github: {{org: o}}\nsnapshots: {snapshots}\n"))
                .unwrap()
                .push_enabled()
        };
        assert!(on("{enabled: false, writer: gitcord-snapshot}").unwrap());
        assert!(on("{writer: gitcord-snapshot}").unwrap());
        assert!(on("{enabled: true}").unwrap());
        assert!(!on("{enabled: false}").unwrap());
        assert!(!on("{}").unwrap());
        assert!(!parse("github: {org: o}\n").unwrap().push_enabled().unwrap());
        let err = on("{enabled: true, writer: gitcord}").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }));
        assert!(err.to_string().contains("snapshots.writer"), "{err}");
        let err = parse("github: {org: o}\nsnapshots: {writer: 1}\n").unwrap_err();
        assert!(err.to_string().contains("snapshots.writer"), "{err}");
    }

    #[test]
    fn yaml_1_1_values_as_pyyaml_reads_them() {
        let cfg = parse(
            "github: {org: o}\nscoring: {period_days: 030, weights: {pr_merged: 0x10}}\n\
             snapshots: {enabled: on, skip_unchanged: 'yes'}\n",
        )
        .unwrap();
        assert_eq!(cfg.period_days, 24);
        assert_eq!(cfg.pr_merged_weight, 16);
        assert!(cfg.snapshots.enabled && cfg.snapshots.skip_unchanged);
        let err = parse("github: {org: o}\nsnapshots: {branch: 2024-01-01}\n").unwrap_err();
        assert!(err.to_string().contains("snapshots.branch"), "{err}");
    }

    #[test]
    fn debug_output_never_shows_values() {
        let cfg = parse("github: {org: o, token: ghp_secret_value}\n").unwrap();
        assert!(!format!("{cfg:?}").contains("ghp_secret_value"));
    }
}
