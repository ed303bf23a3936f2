//! Ports a test owns for its whole life, so that no port is ever freed and re-bound while tests
//! run in parallel.
//!
//! std cannot bind a TCP socket without listening on it, so this uses `libc` directly.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A TCP socket bound to `127.0.0.1:<port>` that never listens: connections to the port are
/// refused, and nobody else can bind the port while this is held (it is closed on drop).
#[derive(Debug)]
pub struct HeldPort {
    _fd: OwnedFd,
    port: u16,
}

impl HeldPort {
    /// A port that is guaranteed closed: every connection to it is refused.
    pub fn closed() -> HeldPort {
        HeldPort::bind(false).expect("bind a closed port on 127.0.0.1")
    }

    /// A closed port with `SO_REUSEPORT`, so that a server started by the same user with
    /// `SO_REUSEPORT` (nginx's `listen ... reuseport`) can listen on it while this is held.
    /// Whenever that server is stopped the port refuses connections again, and it stays ours.
    pub fn shareable() -> HeldPort {
        HeldPort::bind(true).expect("bind a shareable port on 127.0.0.1")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn bind(reuseport: bool) -> io::Result<HeldPort> {
        // SAFETY: plain socket syscalls on a descriptor this function owns; every pointer
        // passed points to a live, correctly sized local.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = OwnedFd::from_raw_fd(fd);
            if reuseport {
                let one: libc::c_int = 1;
                if libc::setsockopt(
                    fd.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_REUSEPORT,
                    (&one as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
            }
            let mut addr: libc::sockaddr_in = std::mem::zeroed();
            addr.sin_family = libc::AF_INET as libc::sa_family_t;
            addr.sin_port = 0;
            addr.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_in).cast(),
                len,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            let mut bound: libc::sockaddr_in = std::mem::zeroed();
            let mut bound_len = len;
            if libc::getsockname(
                fd.as_raw_fd(),
                (&mut bound as *mut libc::sockaddr_in).cast(),
                &mut bound_len,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(HeldPort {
                _fd: fd,
                port: u16::from_be(bound.sin_port),
            })
        }
    }
}
