//! libgit2's process-wide settings, set once and in one place.
//!
//! Some of libgit2's settings are globals that every libgit2 call reads without a lock
//! (`git_libgit2_opts`): fsync of what is written, the object cache's limits, the network
//! timeouts; so is its table of transports, where our HTTP(S) transport is registered. git2 marks their setters
//! `unsafe` because writing one while another thread is inside libgit2 is a data race. This
//! module is the only place the crate writes them, and [`init`] is its one entry.
//!
//! # Why this is sound
//!
//! 1. [`init`]'s body runs at most once per process ([`OnceLock`]): two callers never write
//!    the globals together; a later caller waits for the first to finish and gets its result.
//! 2. It runs before this process opens any repository. Every way the crate opens one
//!    ([`DataRepo::open`], [`DataRepo::open_existing`]) first calls [`note_repository_opened`],
//!    and [`init`] refuses to write anything once that has happened ([`OptionsError::TooLate`]),
//!    so a change that moved a read of the clone before it fails on its first run instead of
//!    racing silently. A writing run calls [`init`] from `Session::open` (while resolving its
//!    settings, where the CA file is known), on the command's thread, before it opens the
//!    clone.
//! 3. The threads that exist before it (the export's database readers and file renderers)
//!    never call libgit2, and a repository is never shared with them.
//!
//! Read-only commands (status, verify, diff, restore) do not call [`init`]: they keep libgit2's
//! defaults, in particular its small tree cache, so that `verify`'s walk over every commit of
//! the history does not keep each `snapshots/` tree in memory.
//!
//! [`DataRepo::open`]: crate::publish::clone::DataRepo::open
//! [`DataRepo::open_existing`]: crate::publish::clone::DataRepo::open_existing

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// How long connecting to the remote may take before the attempt fails (and is retried later).
const CONNECT_TIMEOUT_MS: i32 = 15_000;
/// How long the remote may stay silent during a fetch or push.
const SERVER_TIMEOUT_MS: i32 = 60_000;
/// The largest tree libgit2 keeps in its object cache (see [`apply`]).
const TREE_CACHE_LIMIT: usize = 64 << 20;

/// Why libgit2's settings could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// libgit2 refused our HTTP(S) transport.
    #[error("cannot register the HTTPS transport with libgit2: {0}")]
    Transport(String),
    /// A repository was opened before the settings were applied (a bug: see the module doc).
    #[error("libgit2's process-wide settings must be applied before any repository is opened")]
    TooLate,
}

/// Set once any repository has been opened in this process.
static REPOSITORY_OPENED: AtomicBool = AtomicBool::new(false);

/// How applying the settings went, once [`init`] has run.
static APPLIED: OnceLock<Result<(), OptionsError>> = OnceLock::new();

/// Applies libgit2's process-wide settings for a writing run, once per process. A later call
/// returns the first call's result without touching anything.
pub fn init() -> Result<(), OptionsError> {
    APPLIED
        .get_or_init(|| {
            if REPOSITORY_OPENED.load(Ordering::SeqCst) {
                Err(OptionsError::TooLate)
            } else {
                apply()
            }
        })
        .clone()
}

/// Records that a repository is being opened: from now on [`init`] refuses to change libgit2's
/// globals. Called first by every way the crate opens a repository.
pub(crate) fn note_repository_opened() {
    REPOSITORY_OPENED.store(true, Ordering::SeqCst);
}

/// The settings themselves. Only [`init`] calls this, inside its once-only body, before any
/// repository is opened: that is the safety argument of every `unsafe` block below.
fn apply() -> Result<(), OptionsError> {
    libgit2_sys::init();
    // fsync of every object, ref and pack written into the clone, so that a commit reported as
    // made survives a power cut.
    // SAFETY: see the module doc; a documented option taking one int.
    let fsync = unsafe {
        libgit2_sys::git_libgit2_opts(
            libgit2_sys::GIT_OPT_ENABLE_FSYNC_GITDIR as libc::c_int,
            1 as libc::c_int,
        )
    };
    if fsync < 0 {
        log::warn!(
            "libgit2 refused to fsync the clone's files; a power cut may lose the last commit"
        );
    }
    // libgit2 caches no tree larger than 4 KiB, and `snapshots/` lists every snapshot
    // directory (about 55 bytes each: 480 KB after a year of hourly runs). A push run reads
    // it as stored, once, through `publish::rawtree`; what still reads it through libgit2
    // (`verify`'s walk over every commit, `diff`, `restore`, a packed tip) would otherwise
    // inflate and hash it again at every lookup. Memory stays within libgit2's overall cache
    // limit (256 MiB by default).
    // SAFETY: see the module doc.
    if let Err(e) =
        unsafe { git2::opts::set_cache_object_limit(git2::ObjectType::Tree, TREE_CACHE_LIMIT) }
    {
        log::debug!("libgit2 kept its tree cache limit: {}", e.message());
    }
    // Network timeouts, so that a hung remote turns into a retryable failure instead of a
    // stuck cron.
    // SAFETY: see the module doc.
    unsafe {
        let _ = git2::opts::set_server_connect_timeout_in_milliseconds(CONNECT_TIMEOUT_MS);
        let _ = git2::opts::set_server_timeout_in_milliseconds(SERVER_TIMEOUT_MS);
    }
    register_transports()
}

/// libgit2 is built without any TLS of its own: `https://` (and loopback `http://`) remotes
/// go through our transport on the crate's one HTTP/TLS stack ([`crate::publish::http`]).
/// Registration writes libgit2's process-wide transport table, unsafe for the same reason as
/// the options above, so it happens here, inside [`init`]'s once-only body, before any
/// repository (and so any remote) exists.
fn register_transports() -> Result<(), OptionsError> {
    crate::publish::http::register().map_err(|e| OptionsError::Transport(e.message().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one test that calls `init` in the unit-test process: the ordering guard makes it
    /// refuse without touching libgit2's globals, which the other tests share.
    #[test]
    fn settings_are_refused_once_a_repository_was_opened_and_never_applied_twice() {
        note_repository_opened();
        assert_eq!(init(), Err(OptionsError::TooLate));
        // The first call's outcome stands.
        assert_eq!(init(), Err(OptionsError::TooLate));
    }
}
