//! A stand-in for Discord's REST API: the two endpoints the exporter reads, with paging,
//! bot-token checking, and rate limits or errors on demand.
//!
//! A plain HTTP/1.1 server on 127.0.0.1 (a free port) in a background thread, std only. Every
//! request is recorded (method, path and query, headers) so tests can check paging and where the
//! token went. It serves one connection at a time and closes each after its response. Dropping
//! the stub stops the server and joins its thread.

#![allow(dead_code)] // each test binary uses a different part

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The path prefix the stub serves under, as Discord's `/api/v10`.
pub const API_PREFIX: &str = "/api/v10";

/// What the stub's guild holds.
#[derive(Clone, Debug)]
pub struct Guild {
    /// The guild id in the request path; any other gets 404 "Unknown Guild".
    pub id: String,
    /// `(role id, role name)`, in the order served.
    pub roles: Vec<(String, String)>,
    /// `(user id, role ids)`; served sorted by numeric user id, as Discord does.
    pub members: Vec<(String, Vec<String>)>,
}

/// Misbehaviour to inject.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Serve normally.
    None,
    /// The first `n` requests get 429 with `retry_after` in the JSON body and in `Retry-After`.
    RateLimitFirst { n: usize, retry_after: f64 },
    /// Every request gets 429.
    RateLimitAlways { retry_after: f64 },
    /// The first `n` requests get `status` with a JSON error body and no retry hint.
    StatusFirst { n: usize, status: u16 },
    /// Every request gets 200 with a body that is not JSON.
    Garbage,
}

/// One request as the stub saw it.
#[derive(Clone, Debug)]
pub struct Request {
    /// `GET`, ...
    pub method: String,
    /// Path and query, e.g. `/api/v10/guilds/1/members?limit=1000&after=5`.
    pub target: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `User-Agent` header, if any.
    pub user_agent: Option<String>,
    /// The request head as received (request line and headers).
    pub head: String,
}

struct Shared {
    guild: Guild,
    token: String,
    fault: Fault,
    stop: AtomicBool,
    requests: Mutex<Vec<Request>>,
}

/// A running stub; stops when dropped.
pub struct DiscordStub {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl DiscordStub {
    /// Starts serving `guild` to clients that send `Authorization: Bot <token>`.
    pub fn start(guild: Guild, token: &str, fault: Fault) -> DiscordStub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            guild,
            token: token.to_owned(),
            fault,
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
        });
        let server = Arc::clone(&shared);
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if server.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    // A client that misbehaves only fails its own request.
                    let _ = serve(&server, stream);
                }
            }
        });
        DiscordStub {
            addr,
            shared,
            thread: Some(thread),
        }
    }

    /// The base URL to put in `discord.api_base`.
    pub fn url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().unwrap().clone()
    }
}

impl Drop for DiscordStub {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(shared: &Shared, stream: TcpStream) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(()); // closed before a full request (e.g. the wake-up connection)
        }
        let end = line == "\r\n" || line == "\n";
        head.push_str(&line);
        if end {
            break;
        }
    }
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let target = request_line.next().unwrap_or_default().to_owned();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    };
    let request = Request {
        method: method.clone(),
        authorization: header("authorization"),
        user_agent: header("user-agent"),
        target: target.clone(),
        head: head.clone(),
    };
    let n = {
        let mut requests = shared.requests.lock().unwrap();
        requests.push(request.clone());
        requests.len() // 1-based number of this request
    };
    let (status, extra, body) = respond(shared, n, &request);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Whatever",
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n",
        body.len()
    )?;
    out.write_all(body.as_bytes())?;
    out.flush()
}

/// Status, extra header lines (each ending in CRLF) and body for request number `n`.
fn respond(shared: &Shared, n: usize, request: &Request) -> (u16, String, String) {
    let rate_limited = |retry_after: f64| {
        (
            429,
            format!("Retry-After: {}\r\n", retry_after.ceil()),
            format!(
                r#"{{"message": "You are being rate limited.", "retry_after": {retry_after}, "global": false}}"#
            ),
        )
    };
    match shared.fault {
        Fault::RateLimitFirst {
            n: first,
            retry_after,
        } if n <= first => return rate_limited(retry_after),
        Fault::RateLimitAlways { retry_after } => return rate_limited(retry_after),
        Fault::StatusFirst { n: first, status } if n <= first => {
            return (
                status,
                String::new(),
                r#"{"message": "upstream trouble", "code": 0}"#.to_owned(),
            )
        }
        Fault::Garbage => return (200, String::new(), "<html>not json</html>".to_owned()),
        _ => {}
    }
    if request.authorization.as_deref() != Some(format!("Bot {}", shared.token).as_str()) {
        return (
            401,
            String::new(),
            r#"{"message": "401: Unauthorized", "code": 0}"#.to_owned(),
        );
    }
    if request.method != "GET" {
        return (
            405,
            String::new(),
            r#"{"message": "405: Method Not Allowed", "code": 0}"#.to_owned(),
        );
    }
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let guild = format!("{API_PREFIX}/guilds/{}", shared.guild.id);
    let not_found = |what: &str| {
        (
            404,
            String::new(),
            format!(r#"{{"message": "{what}", "code": 10004}}"#),
        )
    };
    if !path.starts_with(&format!("{API_PREFIX}/guilds/")) {
        return not_found("404: Not Found");
    }
    if path == format!("{guild}/roles") {
        let roles: Vec<_> = shared
            .guild
            .roles
            .iter()
            .enumerate()
            .map(|(i, (id, name))| serde_json::json!({"id": id, "name": name, "position": i, "color": 0}))
            .collect();
        return (
            200,
            String::new(),
            serde_json::Value::Array(roles).to_string(),
        );
    }
    if path == format!("{guild}/members") {
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
        };
        let limit: usize = param("limit").map_or(1, |l| l.parse().unwrap()).min(1000);
        let after: u64 = param("after").map_or(0, |a| a.parse().unwrap());
        let mut members: Vec<_> = shared.guild.members.iter().collect();
        members.sort_by_key(|(id, _)| id.parse::<u64>().unwrap());
        let page: Vec<_> = members
            .into_iter()
            .filter(|(id, _)| id.parse::<u64>().unwrap() > after)
            .take(limit)
            .map(|(id, roles)| {
                serde_json::json!({
                    "user": {"id": id, "username": format!("user{id}"), "global_name": null},
                    "roles": roles,
                    "joined_at": "2024-01-01T00:00:00+00:00",
                    "deaf": false,
                    "mute": false
                })
            })
            .collect();
        return (
            200,
            String::new(),
            serde_json::Value::Array(page).to_string(),
        );
    }
    not_found("Unknown Guild")
}
