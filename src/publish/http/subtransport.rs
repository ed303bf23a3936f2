//! libgit2's `http://` and `https://` on [`HttpRemote`]: a registered smart subtransport, so
//! that libgit2 (built without any TLS of its own) fetches over the crate's one TLS stack.

use std::io::{self, Read, Write};
use std::sync::{Mutex, OnceLock};

use git2::transport::{Service as GitService, SmartSubtransport, SmartSubtransportStream};
use git2::{ErrorClass, ErrorCode};
use ureq::BodyReader;

use super::{Failure, HttpRemote, RpcRequest, Service};

/// Makes libgit2 use this module for `https://` and `http://` remotes, once per process.
///
/// # Safety argument
///
/// `git2::transport::register` is unsafe because libgit2 keeps its list of transports in a
/// global without a lock: registering must not race with another registration or with a
/// remote being connected (which reads that list). Here it runs at most once
/// ([`OnceLock`], whose initialisation other callers wait for), and it is called by the session
/// before it opens the clone, that is before this process creates any remote; nothing else
/// in the crate registers transports.
pub fn register() -> Result<(), git2::Error> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            for scheme in ["https", "http"] {
                // SAFETY: see the function's safety argument: once, before any remote exists.
                unsafe {
                    git2::transport::register(scheme, |remote| {
                        git2::transport::Transport::smart(remote, true, GitHttp::default())
                    })
                }
                .map_err(|e| e.message().to_owned())?;
            }
            Ok(())
        })
        .clone()
        .map_err(|m| git2::Error::from_str(&m))
}

/// One libgit2 connection: the remote, created on its first request.
#[derive(Default)]
struct GitHttp {
    remote: Mutex<Option<HttpRemote>>,
}

/// A failure as libgit2 carries it; the typed one waits in the failure slot.
fn git_error(failure: Failure) -> git2::Error {
    git2::Error::new(
        ErrorCode::GenericError,
        ErrorClass::Net,
        failure.to_string(),
    )
}

impl SmartSubtransport for GitHttp {
    fn action(
        &self,
        url: &str,
        action: GitService,
    ) -> Result<Box<dyn SmartSubtransportStream>, git2::Error> {
        let mut slot = self.remote.lock().unwrap_or_else(|e| e.into_inner());
        let remote = match &mut *slot {
            Some(remote) => remote,
            empty => empty.insert(HttpRemote::new(url).map_err(|f| git_error(super::record(f)))?),
        };
        let stream: Box<dyn SmartSubtransportStream> = match action {
            GitService::UploadPackLs => Box::new(Answer(
                remote
                    .advertisement(Service::UploadPack)
                    .map_err(git_error)?,
            )),
            GitService::ReceivePackLs => Box::new(Answer(
                remote
                    .advertisement(Service::ReceivePack)
                    .map_err(git_error)?,
            )),
            GitService::UploadPack => Box::new(Rpc::Writing(remote.rpc(Service::UploadPack))),
            GitService::ReceivePack => Box::new(Rpc::Writing(remote.rpc(Service::ReceivePack))),
        };
        Ok(stream)
    }

    fn close(&self) -> Result<(), git2::Error> {
        Ok(())
    }
}

/// An answer being read (the advertisement).
struct Answer(BodyReader<'static>);

impl Read for Answer {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf).map_err(|e| read_error(&e))
    }
}

impl Write for Answer {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::other("an advertisement is not written to"))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A POST: written by libgit2, sent when it starts reading, then its answer read.
enum Rpc {
    Writing(RpcRequest),
    Reading(BodyReader<'static>),
}

impl Read for Rpc {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Rpc::Reading(body) => body.read(buf).map_err(|e| read_error(&e)),
            Rpc::Writing(request) => {
                let mut body = request
                    .finish()
                    .map_err(|f| io::Error::other(f.to_string()))?;
                let n = body.read(buf).map_err(|e| read_error(&e));
                *self = Rpc::Reading(body);
                n
            }
        }
    }
}

impl Write for Rpc {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Rpc::Writing(request) => request.write(buf),
            Rpc::Reading(_) => Err(io::Error::other(
                "a request cannot be written to after its answer",
            )),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A body that stopped mid-way: a cut connection, a timeout.
fn read_error(e: &io::Error) -> io::Error {
    let failure = super::record(Failure::Unreachable(e.to_string()));
    io::Error::other(failure.to_string())
}
