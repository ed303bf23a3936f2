//! Gitcord's YAML configuration, read the way Gitcord reads it.
//!
//! The same file Gitcord runs with must work as it is: unknown sections and keys are ignored,
//! integers are coerced as pydantic's lax mode does (`5.0` and `"5"` are 5), and `${VAR}`
//! (upper-case letters, digits, `_`) is expanded from the environment in string values after
//! parsing. Unlike Gitcord, expansion is lazy: a variable is only required when this run reads
//! the value that names it, so an export never needs `DISCORD_TOKEN`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;

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
}

impl fmt::Debug for Text {
    // Never print values: this type carries tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Text({})", self.key)
    }
}

impl Text {
    /// The key path this value came from, for messages.
    pub fn key(&self) -> &str {
        &self.key
    }
}

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
    /// Skip the commit when nothing but the run's own fields changed.
    pub skip_unchanged: bool,
    /// Fail rather than write empty roles when Discord cannot be read (default true).
    pub roles_required: bool,
}

// ---- the file as serde sees it ------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawConfig {
    runtime: RawRuntime,
    github: Option<RawGithub>,
    discord: RawDiscord,
    scoring: RawScoring,
    identity_mappings: Vec<RawIdentityMapping>,
    snapshots: Option<RawSnapshots>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRuntime {
    data_dir: Option<YamlStr>,
}

#[derive(Deserialize)]
struct RawGithub {
    org: YamlStr,
    #[serde(default)]
    token: Option<YamlStr>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawDiscord {
    guild_id: Option<YamlStr>,
    token: Option<YamlStr>,
    api_base: Option<YamlStr>,
}

#[derive(Deserialize)]
#[serde(default)]
struct RawScoring {
    period_days: LaxInt,
    weights: BTreeMap<String, LaxInt>,
    difficulty_weights: Option<serde_yaml::Mapping>,
}

impl Default for RawScoring {
    fn default() -> Self {
        RawScoring {
            period_days: LaxInt(30),
            weights: BTreeMap::new(),
            difficulty_weights: None,
        }
    }
}

#[derive(Deserialize)]
struct RawIdentityMapping {
    github_user: YamlStr,
    discord_user_id: YamlStr,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSnapshots {
    enabled: LaxBool,
    repo_path: Option<YamlStr>,
    branch: Option<YamlStr>,
    remote_url: Option<YamlStr>,
    clone_dir: Option<YamlStr>,
    token: Option<YamlStr>,
    ca_file: Option<YamlStr>,
    author_name: Option<YamlStr>,
    author_email: Option<YamlStr>,
    roles_file: Option<YamlStr>,
    metrics_file: Option<YamlStr>,
    latest_file: Option<YamlStr>,
    signing_key: Option<YamlStr>,
    allowed_signers: Option<YamlStr>,
    skip_unchanged: LaxBool,
    roles_required: Option<LaxBool>,
}

/// A string as pydantic's `str` accepts it: a YAML string, not a number or a boolean
/// (an unquoted Discord id would lose its digits to float rounding, so Gitcord rejects it).
#[derive(Clone, Debug, PartialEq)]
struct YamlStr(String);

impl<'de> Deserialize<'de> for YamlStr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(YamlStr(s)),
            other => Err(de::Error::custom(format!(
                "expected a string (quote it), found {}",
                kind(&other)
            ))),
        }
    }
}

/// An integer as pydantic's lax mode accepts it: `5`, `5.0`, `"5"`, `true`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct LaxInt(i64);

impl<'de> Deserialize<'de> for LaxInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(LaxInt(i))
                } else {
                    match n.as_f64() {
                        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(LaxInt(f as i64)),
                        _ => Err(de::Error::custom(format!("expected an integer, found {n}"))),
                    }
                }
            }
            serde_yaml::Value::Bool(b) => Ok(LaxInt(i64::from(b))),
            serde_yaml::Value::String(s) => {
                let expanded = expand_now(&s).map_err(|var| {
                    de::Error::custom(format!(
                        "refers to ${{{var}}}, but the environment variable {var} is not set"
                    ))
                })?;
                expanded.trim().parse().map(LaxInt).map_err(|_| {
                    de::Error::custom(format!("expected an integer, found {expanded:?}"))
                })
            }
            other => Err(de::Error::custom(format!(
                "expected an integer, found {}",
                kind(&other)
            ))),
        }
    }
}

/// A boolean as pydantic's lax mode accepts it: `true`, `1`, `"yes"`, `"off"`, ...
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct LaxBool(bool);

impl<'de> Deserialize<'de> for LaxBool {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(d)?;
        let parsed = match &value {
            serde_yaml::Value::Bool(b) => Some(*b),
            serde_yaml::Value::Number(n) => match n.as_i64() {
                Some(0) => Some(false),
                Some(1) => Some(true),
                _ => None,
            },
            serde_yaml::Value::String(s) => match expand_now(s)
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
                .as_str()
            {
                "1" | "true" | "t" | "yes" | "y" | "on" => Some(true),
                "0" | "false" | "f" | "no" | "n" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed.map(LaxBool).ok_or_else(|| {
            de::Error::custom(format!("expected true or false, found {}", kind(&value)))
        })
    }
}

fn kind(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::Null => "null".into(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::String(s) => format!("{s:?}"),
        serde_yaml::Value::Sequence(_) => "a list".into(),
        serde_yaml::Value::Mapping(_) => "a mapping".into(),
        serde_yaml::Value::Tagged(_) => "a tagged value".into(),
    }
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

impl Config {
    /// Reads and checks the file. Only structure and types are checked here; `${VAR}` in
    /// string values is resolved when a value is used.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(path, &text)
    }

    /// Parses config text; `path` is only used in messages and to report where things are.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let raw: RawConfig =
            match serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text)) {
                Ok(Some(raw)) => raw,
                Ok(None) => return Err(invalid("the file is empty".into())),
                Err(e) => return Err(invalid(describe_yaml_error(&e))),
            };
        let text = |key: &str, value: Option<YamlStr>| {
            value.map(|raw| Text {
                raw: raw.0,
                key: key.to_owned(),
            })
        };
        let github = raw
            .github
            .ok_or_else(|| invalid("github.org is required".into()))?;
        let period_days = raw.scoring.period_days.0;
        // Gitcord requires a positive value; the upper bound keeps date arithmetic in range.
        if !(1..=36_500).contains(&period_days) {
            return Err(invalid(format!(
                "scoring.period_days must be between 1 and 36500, found {period_days}"
            )));
        }
        let mut difficulty_weights = Vec::new();
        for (key, value) in raw.scoring.difficulty_weights.unwrap_or_default() {
            let serde_yaml::Value::String(label) = key else {
                return Err(invalid(format!(
                    "scoring.difficulty_weights: keys must be strings, found {}",
                    kind(&key)
                )));
            };
            let weight = serde_yaml::from_value::<LaxInt>(value)
                .map_err(|e| invalid(format!("scoring.difficulty_weights.{label}: {e}")))?
                .0;
            if weight < 0 {
                return Err(invalid(format!(
                    "scoring.difficulty_weights.{label} must be non-negative, found {weight}"
                )));
            }
            difficulty_weights.push((label, weight));
        }
        let identity_mappings = raw
            .identity_mappings
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                (
                    Text {
                        raw: m.github_user.0,
                        key: format!("identity_mappings[{i}].github_user"),
                    },
                    Text {
                        raw: m.discord_user_id.0,
                        key: format!("identity_mappings[{i}].discord_user_id"),
                    },
                )
            })
            .collect();
        let snapshots = match raw.snapshots {
            None => SnapshotsSection {
                roles_required: true,
                ..Default::default()
            },
            Some(s) => SnapshotsSection {
                enabled: s.enabled.0,
                repo_path: text("snapshots.repo_path", s.repo_path),
                branch: text("snapshots.branch", s.branch),
                remote_url: text("snapshots.remote_url", s.remote_url),
                clone_dir: text("snapshots.clone_dir", s.clone_dir),
                token: text("snapshots.token", s.token),
                ca_file: text("snapshots.ca_file", s.ca_file),
                author_name: text("snapshots.author_name", s.author_name),
                author_email: text("snapshots.author_email", s.author_email),
                roles_file: text("snapshots.roles_file", s.roles_file),
                metrics_file: text("snapshots.metrics_file", s.metrics_file),
                latest_file: text("snapshots.latest_file", s.latest_file),
                signing_key: text("snapshots.signing_key", s.signing_key),
                allowed_signers: text("snapshots.allowed_signers", s.allowed_signers),
                skip_unchanged: s.skip_unchanged.0,
                roles_required: s.roles_required.is_none_or(|b| b.0),
            },
        };
        Ok(Config {
            path: path.to_owned(),
            org: Text {
                raw: github.org.0,
                key: "github.org".into(),
            },
            data_dir: text("runtime.data_dir", raw.runtime.data_dir),
            period_days,
            pr_merged_weight: raw.scoring.weights.get("pr_merged").map_or(0, |w| w.0),
            difficulty_weights,
            identity_mappings,
            github_token: text("github.token", github.token),
            discord_guild_id: text("discord.guild_id", raw.discord.guild_id),
            discord_token: text("discord.token", raw.discord.token),
            discord_api_base: text("discord.api_base", raw.discord.api_base),
            snapshots,
        })
    }

    /// Resolves a value's `${VAR}` references now, naming the key if one is unset.
    pub fn expand(&self, value: &Text) -> Result<String, ConfigError> {
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

impl SnapshotsSection {
    /// `snapshots.roles_file`: where roles come from when `--roles-file` is not given.
    pub fn roles_file(&self) -> Option<&Text> {
        self.roles_file.as_ref()
    }
}

/// A type error names the key path (`scoring.period_days: ...`), a syntax error its line
/// and column; one line either way.
fn describe_yaml_error(e: &serde_path_to_error::Error<serde_yaml::Error>) -> String {
    let inner = e.inner();
    let mut message = inner.to_string().replace('\n', " ");
    // serde_yaml prefixes its own (coarser) path; the tracked one is exact.
    if let Some((prefix, rest)) = message.split_once(": ") {
        if !prefix.contains(' ') && prefix != "." {
            message = rest.to_owned();
        }
    }
    if let Some(loc) = inner.location() {
        if !message.contains(" at line ") {
            message = format!("{message} at line {} column {}", loc.line(), loc.column());
        }
    }
    let path = e.path().to_string();
    if path == "." || path.is_empty() {
        message
    } else {
        format!("{path}: {message}")
    }
}

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
    fn debug_output_never_shows_values() {
        let cfg = parse("github: {org: o, token: ghp_secret_value}\n").unwrap();
        assert!(!format!("{cfg:?}").contains("ghp_secret_value"));
    }
}
