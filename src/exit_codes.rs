//! The process exit codes, following BSD `sysexits.h` so that cron wrappers and systemd can
//! tell "fix your config" from "try again later" without parsing messages.

/// Every way the process can end; the only place that knows the numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitCode {
    /// The run did what was asked.
    Success,
    /// Anything not covered by a more specific code.
    Failure,
    /// `EX_USAGE`: the command line is wrong (bad flag, `--at`, `--run-id`).
    Usage,
    /// `EX_DATAERR`: an input file is readable but its content is wrong.
    DataErr,
    /// `EX_NOINPUT`: an input file does not exist or cannot be opened.
    NoInput,
    /// `EX_UNAVAILABLE`: a service the run needs (Discord) refused or could not be reached.
    Unavailable,
    /// `EX_CANTCREAT`: an output cannot be created, e.g. the snapshot directory already exists.
    CantCreate,
    /// `EX_IOERR`: a local failure (a lock, a full disk, permissions, a damaged clone).
    IoErr,
    /// `EX_TEMPFAIL`: worth retrying as it is (network down, 5xx, a lock held too long).
    TempFail,
    /// `EX_NOPERM`: the remote refused us; retrying will not help until an operator acts.
    NoPerm,
    /// `EX_CONFIG`: the configuration file is missing, malformed or incomplete.
    Config,
}

impl ExitCode {
    /// The number the process exits with.
    pub fn code(self) -> i32 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Failure => 1,
            ExitCode::Usage => 64,
            ExitCode::DataErr => 65,
            ExitCode::NoInput => 66,
            ExitCode::Unavailable => 69,
            ExitCode::CantCreate => 73,
            ExitCode::IoErr => 74,
            ExitCode::TempFail => 75,
            ExitCode::NoPerm => 77,
            ExitCode::Config => 78,
        }
    }
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        // Every value above fits in a u8.
        std::process::ExitCode::from(code.code() as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::ExitCode::*;

    #[test]
    fn codes_follow_sysexits() {
        let pairs = [
            (Success, 0),
            (Failure, 1),
            (Usage, 64),
            (DataErr, 65),
            (NoInput, 66),
            (Unavailable, 69),
            (CantCreate, 73),
            (IoErr, 74),
            (TempFail, 75),
            (NoPerm, 77),
            (Config, 78),
        ];
        for (code, n) in pairs {
            assert_eq!(code.code(), n, "{code:?}");
        }
    }
}
