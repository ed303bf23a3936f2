//! A real HTTP proxy on 127.0.0.1 (Debian's `tinyproxy`, installed by
//! `scripts/install-test-deps.sh`), started per test and killed on drop, whose log tells which
//! `CONNECT`s went through it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Proxy {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Proxy {
    /// Starts tinyproxy on a free loopback port and waits until it accepts connections.
    pub fn start() -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        // tinyproxy cannot share a held port (no SO_REUSEPORT): take a free one and let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogLevel Info\nMaxClients 20\nAllow 127.0.0.1\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("proxy.log")).unwrap();
        let child = Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("tinyproxy (run scripts/install-test-deps.sh)");
        let proxy = Proxy { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "tinyproxy did not start:\n{}",
                proxy.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        proxy
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("proxy.log")
    }

    /// Everything tinyproxy logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// How many `CONNECT host:port` requests went through the proxy.
    pub fn connects_to(&self, port: u16) -> usize {
        let needle = format!("CONNECT 127.0.0.1:{port} ");
        self.log().matches(&needle).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
