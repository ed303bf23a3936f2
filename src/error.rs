//! The crate's error type and the one place that turns an error into words and an exit code.
//!
//! Each stage has its own error enum; this module decides what each means for the operator
//! (and for cron: retry later, fix the config, or fix the data).

use crate::exit_codes::ExitCode;
use crate::input::config::ConfigError;
use crate::input::discord::DiscordError;
use crate::input::roles::RolesError;
use crate::input::state::StateError;
use crate::maintenance::diff::DiffError;
use crate::maintenance::restore::RestoreError;
use crate::maintenance::verify::VerifyError;
use crate::publish::clone::RepoError;
use crate::publish::directory::OutputError;
use crate::publish::remote::RemoteError;
use crate::publish::session::SessionError;
use crate::snapshot::build::BuildError;
use crate::text::one_line;

/// Anything a command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The YAML config.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading `state.db`.
    #[error(transparent)]
    State(#[from] StateError),
    /// Getting the Discord roles.
    #[error(transparent)]
    Roles(#[from] RolesError),
    /// Discord could not be read, and a snapshot without roles would tell readers that everyone
    /// lost theirs.
    #[error(transparent)]
    Discord(#[from] DiscordError),
    /// Writing the snapshot directory.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// Rendering JSON (only possible with a value JSON cannot hold).
    #[error("cannot render the snapshot as JSON: {0}")]
    Render(#[from] serde_json::Error),
    /// The local clone.
    #[error("{}", repo_message(.0))]
    Repo(#[from] RepoError),
    /// The push failed after the snapshot was committed; it stays queued.
    #[error("push failed: {} ({queued} snapshot commit(s) queued)", push_message(.source))]
    Push {
        /// What went wrong.
        source: RemoteError,
        /// Commits waiting for the next run.
        queued: usize,
    },
    /// The snapshots were pushed, but the backups' own repository (`snapshots.backup_remote_url`)
    /// was not: they stay queued. Same exit codes as a snapshot push.
    #[error(
        "backup push failed: {} ({queued} backup commit(s) queued for {url}; the snapshots were pushed)",
        backup_push_message(.source)
    )]
    BackupPush {
        /// What went wrong.
        source: RemoteError,
        /// The backup repository (without credentials: they are refused in its URL).
        url: String,
        /// Backup commits waiting for the next run.
        queued: usize,
    },
    /// Writing a database from a snapshot (`restore`).
    #[error(transparent)]
    Restore(#[from] RestoreError),
    /// Comparing two snapshots (`diff`).
    #[error(transparent)]
    Diff(#[from] DiffError),
    /// `verify` could not read the history (or its embedded schemas).
    #[error("verify: {0}")]
    VerifyRun(#[from] VerifyError),
    /// `verify` found problems in the data repository, each already reported on its own line.
    #[error("verify found {problems} problem(s) in the data repository (listed above)")]
    Verify {
        /// How many.
        problems: usize,
    },
    /// A command-line value that parses but makes no sense.
    #[error("{0}")]
    Usage(String),
}

/// A clone that cannot be read or written is said to be a local problem, so that nobody waits
/// for the network to come back (exit 74, like [`RemoteError::Local`]).
fn repo_message(e: &RepoError) -> String {
    match e {
        RepoError::Git { .. } | RepoError::Io { .. } => {
            format!("{e}; this is a problem of the local clone, not of the network")
        }
        _ => e.to_string(),
    }
}

/// A clone failure during a push reads (and exits) as it does anywhere else.
fn push_message(e: &RemoteError) -> String {
    match e {
        RemoteError::Clone(e) => format!("{}; the snapshot stays queued", repo_message(e)),
        _ => e.to_string(),
    }
}

/// A backup push's cause, without the snapshot-queue wording of [`RemoteError`]'s messages.
fn backup_push_message(e: &RemoteError) -> String {
    match e {
        RemoteError::Transient(m) => format!("{m}; the next run retries"),
        RemoteError::Local(m) => {
            format!("{m}; this is a problem of the local clone, not of the network")
        }
        RemoteError::Clone(e) => repo_message(e),
        RemoteError::Unclassified(m) => format!(
            "{m}; libgit2 does not say whether the network, the remote or this machine is at fault"
        ),
        RemoteError::Refused(m) => m.clone(),
        RemoteError::Moved(m) => format!("the remote refused to update the branch: {m}"),
    }
}

/// One exit code per clone condition, whichever command meets it.
fn repo_code(e: &RepoError) -> ExitCode {
    match e {
        RepoError::NotARepo(_) | RepoError::NotOurs(_) | RepoError::OtherRemote { .. } => {
            ExitCode::Config
        }
        RepoError::NoClone(_) => ExitCode::NoInput,
        RepoError::Busy { .. } => ExitCode::TempFail,
        RepoError::Conflict(_) => ExitCode::CantCreate,
        RepoError::NoSuchSnapshot(_) => ExitCode::Usage,
        RepoError::Git { .. } | RepoError::Io { .. } => ExitCode::IoErr,
        RepoError::Sign(_) => ExitCode::Failure,
    }
}

/// A failed build is the failure of one input: map it as that input's error.
impl From<BuildError> for Error {
    fn from(e: BuildError) -> Error {
        match e {
            BuildError::Config(e) => Error::Config(e),
            BuildError::State(e) => Error::State(e),
            BuildError::Roles(e) => Error::Roles(e),
            BuildError::Discord(e) => Error::Discord(e),
        }
    }
}

/// A session fails on its config or its clone.
impl From<SessionError> for Error {
    fn from(e: SessionError) -> Error {
        match e {
            SessionError::Config(e) => Error::Config(e),
            SessionError::Repo(e) => Error::Repo(e),
        }
    }
}

impl Error {
    /// What the process should exit with for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Config(ConfigError::Unreadable { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                ExitCode::Config
            }
            Error::Config(_) => ExitCode::Config,
            Error::State(e) => match e {
                StateError::Missing(_) | StateError::Unopenable { .. } => ExitCode::NoInput,
                StateError::Corrupt { .. } | StateError::BadData { .. } => ExitCode::DataErr,
                StateError::Locked { .. } => ExitCode::TempFail,
            },
            Error::Roles(e) => match e {
                RolesError::Unreadable { .. } => ExitCode::NoInput,
                RolesError::Invalid { .. } => ExitCode::DataErr,
            },
            Error::Discord(DiscordError::CaFile { .. }) => ExitCode::Config,
            Error::Discord(_) => ExitCode::Unavailable,
            // "Already exists" is 73 wherever it happens; a write that fails (permissions, a
            // full disk, a path through a file) is 74 wherever it happens, as for the clone.
            Error::Output(OutputError::Exists(_)) => ExitCode::CantCreate,
            Error::Output(OutputError::Io { .. }) => ExitCode::IoErr,
            Error::Repo(e) => repo_code(e),
            Error::Push { source, .. } | Error::BackupPush { source, .. } => match source {
                RemoteError::Refused(_) => ExitCode::NoPerm,
                RemoteError::Transient(_) | RemoteError::Moved(_) => ExitCode::TempFail,
                RemoteError::Local(_) => ExitCode::IoErr,
                RemoteError::Clone(e) => repo_code(e),
                RemoteError::Unclassified(_) => ExitCode::Failure,
            },
            Error::Render(_) => ExitCode::DataErr,
            Error::Restore(e) => match e {
                RestoreError::NoClone(_) => ExitCode::NoInput,
                RestoreError::Invalid { .. } => ExitCode::DataErr,
                RestoreError::Exists(_) => ExitCode::CantCreate,
                RestoreError::Io { .. } | RestoreError::Sqlite { .. } => ExitCode::IoErr,
            },
            Error::Diff(e) => match e {
                DiffError::Invalid { .. } => ExitCode::DataErr,
            },
            // A clone verify cannot read is the same condition as under any other command.
            Error::VerifyRun(VerifyError::Repo(e)) => repo_code(e),
            Error::VerifyRun(VerifyError::Schema { .. }) => ExitCode::Failure,
            Error::Verify { .. } => ExitCode::DataErr,
            Error::Usage(_) => ExitCode::Usage,
        }
    }
}

/// Prints `err` for a person: one line on stderr, prefixed with the program's name.
pub fn print_error(err: &Error) {
    eprintln!("gitcord-snapshot: error: {}", one_line(&err.to_string()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn each_failure_maps_to_its_sysexits_code() {
        let state = |e| Error::State(e).exit_code();
        assert_eq!(
            state(StateError::Missing(PathBuf::new())),
            ExitCode::NoInput
        );
        assert_eq!(
            state(StateError::Corrupt {
                path: PathBuf::new(),
                reason: String::new()
            }),
            ExitCode::DataErr
        );
        assert_eq!(
            state(StateError::Locked {
                path: PathBuf::new(),
                waited: Default::default()
            }),
            ExitCode::TempFail
        );
        let discord = |e| Error::Discord(e).exit_code();
        assert_eq!(
            discord(DiscordError::Unauthorized {
                url: String::new(),
                says: String::new()
            }),
            ExitCode::Unavailable
        );
        assert_eq!(
            discord(DiscordError::CaFile {
                path: PathBuf::new(),
                reason: String::new()
            }),
            ExitCode::Config
        );
        assert_eq!(
            Error::Output(OutputError::Exists(PathBuf::new())).exit_code(),
            ExitCode::CantCreate
        );
        assert_eq!(Error::Usage(String::new()).exit_code(), ExitCode::Usage);
        assert_eq!(Error::Verify { problems: 1 }.exit_code(), ExitCode::DataErr);
    }
}
