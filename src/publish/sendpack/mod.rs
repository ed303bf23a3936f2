//! Our own push over smart HTTP: git's receive-pack protocol (`gitprotocol-pack(5)`,
//! `gitprotocol-http(5)`, `gitprotocol-capabilities(5)`) on the crate's HTTP stack, with a pack
//! made for this push.
//!
//! 1. `GET info/refs?service=git-receive-pack`: the remote's refs and capabilities. A ref that
//!    is not where the caller expects it means another writer got there first: nothing is
//!    sent, and the caller fetches and replays (git's "fetch first").
//! 2. `POST git-receive-pack`: one command per ref (`old new name`, the first carrying the
//!    capabilities we use: `report-status`, `side-band-64k`, `quiet`, `atomic` for several
//!    refs, `agent`), a flush, then a pack of exactly what the new commits add
//!    ([`walk`]), trees and blobs as deltas against the object at the same path in the parent
//!    commit, which the remote has: a thin pack, as `git push` sends (git's receive-pack
//!    completes it with `index-pack --fix-thin`; GitHub too). A server that advertises
//!    `no-thin` gets only deltas against objects in the pack itself.
//! 3. The answer: on band 1 the report (`unpack ok|<error>`, then `ok <ref>` or
//!    `ng <ref> <reason>` per ref), on band 2 what the server's hooks print, on band 3 a fatal
//!    error.
//!
//! Unlike libgit2's push, nothing here reads the remote tip's whole tree: the work per push is
//! what the new commits change.

pub(crate) mod pack;
mod pktline;
pub(crate) mod walk;

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::sync::Arc;

use git2::{ObjectType, Oid, Repository};

use crate::publish::http::{self, Failure, HttpRemote, Service};
use crate::publish::rawtree::{self, RawTree};
use pktline::Packet;

/// One ref to update on the remote, in one push with any others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    /// The remote ref, e.g. `refs/heads/main`.
    pub name: String,
    /// Where the remote ref must be now (`None`: it must not exist); anything else means
    /// another writer moved it, and nothing is pushed.
    pub expected_old: Option<Oid>,
    /// The commit it is to point to (on a local remote: what the local ref of the same name
    /// points to).
    pub new: Oid,
}

/// Why a push did not land.
#[derive(Debug)]
pub(crate) enum PushError {
    /// HTTP: no answer, TLS, a status, a token.
    Wire(Failure),
    /// Reading the clone failed.
    Local(String),
    /// The server said something that is not git's protocol.
    Protocol(String),
    /// A ref is not where we expected it (another writer), or the server refused the update
    /// as another writer would cause it.
    Moved(String),
    /// The server could not unpack what we sent.
    Unpack { reason: String, messages: String },
    /// The server refused a ref (a hook, a rule).
    Rejected {
        name: String,
        reason: String,
        messages: String,
    },
}

/// What a push sent.
#[derive(Debug, Default)]
pub(crate) struct Sent {
    pub(crate) objects: usize,
    pub(crate) deltas: usize,
    /// The request body: commands and pack.
    pub(crate) bytes: u64,
    pub(crate) thin: bool,
}

/// The remote's refs and capabilities.
#[derive(Debug, Default)]
struct Advertisement {
    refs: HashMap<String, Oid>,
    caps: HashSet<String>,
}

/// Pushes `updates` to the repository at `url` in one request.
pub(crate) fn push(repo: &Repository, url: &str, updates: &[RefUpdate]) -> Result<Sent, PushError> {
    let mut remote = HttpRemote::new(url).map_err(PushError::Wire)?;
    let body = remote
        .advertisement(Service::ReceivePack)
        .map_err(PushError::Wire)?;
    let advert = parse_advertisement(body)?;

    let mut commands = Vec::new();
    for update in updates {
        let current = advert.refs.get(&update.name).copied();
        if current != update.expected_old {
            let at = |o: Option<Oid>| o.map_or_else(|| "nothing".to_owned(), |o| o.to_string());
            return Err(PushError::Moved(format!(
                "fetch first: the remote's {} is at {}, not at {} as this clone last saw it",
                update.name,
                at(current),
                at(update.expected_old)
            )));
        }
        if current != Some(update.new) {
            commands.push((current.unwrap_or_else(Oid::zero), update));
        }
    }
    if commands.is_empty() {
        return Ok(Sent::default());
    }

    let local = |e: git2::Error| PushError::Local(e.message().to_owned());
    let commits = new_commits(repo, updates, &advert).map_err(local)?;
    let entries = walk::objects_to_send(repo, &commits).map_err(local)?;
    let thin = !advert.caps.contains("no-thin");

    let wanted = ["report-status", "side-band-64k", "quiet"];
    let mut caps: Vec<String> = wanted
        .iter()
        .filter(|c| advert.caps.contains(**c))
        .map(|c| (*c).to_owned())
        .collect();
    if commands.len() > 1 && advert.caps.contains("atomic") {
        caps.push("atomic".into());
    }
    if advert.caps.iter().any(|c| c.starts_with("agent=")) {
        caps.push(concat!("agent=gitcord-snapshot/", env!("CARGO_PKG_VERSION")).into());
    }

    let mut request = remote.rpc(Service::ReceivePack);
    let mut head = Vec::new();
    for (i, (old, update)) in commands.iter().enumerate() {
        let mut line = format!("{old} {} {}", update.new, update.name).into_bytes();
        if i == 0 {
            line.push(0);
            line.extend_from_slice(caps.join(" ").as_bytes());
        }
        head.extend_from_slice(&pktline::encode(&line));
    }
    head.extend_from_slice(pktline::FLUSH);
    request.write_all(&head).map_err(wire)?;
    crate::pause::point("push");
    let mut sent = write_pack(repo, &entries, thin, &mut request)?;
    sent.bytes += head.len() as u64;
    let answer = request.finish().map_err(PushError::Wire)?;
    read_report(
        answer,
        caps.iter().any(|c| c == "side-band-64k"),
        caps.iter().any(|c| c == "report-status"),
        &commands
            .iter()
            .map(|(_, u)| u.name.as_str())
            .collect::<Vec<_>>(),
    )?;
    Ok(sent)
}

/// The commits to send, oldest first: reachable from the new tips, not from what the remote
/// has (the expected old tips, and any advertised ref this clone knows).
fn new_commits(
    repo: &Repository,
    updates: &[RefUpdate],
    advert: &Advertisement,
) -> Result<Vec<Oid>, git2::Error> {
    let mut walk = repo.revwalk()?;
    for update in updates {
        walk.push(update.new)?;
    }
    let known = updates
        .iter()
        .filter_map(|u| u.expected_old)
        .chain(advert.refs.values().copied());
    for have in known {
        // An advertised commit this clone does not have is simply not a boundary.
        if repo.find_commit(have).is_ok() {
            walk.hide(have)?;
        }
    }
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)?;
    walk.collect()
}

/// Writes the pack of `entries` into `out`, each object a delta against its base when that
/// is smaller (and, without `thin`, only against a base sent earlier in this pack).
fn write_pack(
    repo: &Repository,
    entries: &[walk::Entry],
    thin: bool,
    out: &mut impl Write,
) -> Result<Sent, PushError> {
    let local = |e: git2::Error| PushError::Local(e.message().to_owned());
    let odb = repo.odb().map_err(local)?;
    let count = u32::try_from(entries.len())
        .map_err(|_| PushError::Local("more objects than a pack holds".into()))?;
    let mut pack = pack::PackWriter::new(out, count).map_err(wire)?;
    let mut in_pack: HashSet<Oid> = HashSet::with_capacity(entries.len());
    let mut deltas = 0;
    // Trees as the run holds them already (rawtree: `snapshots/` is read once a run).
    let bytes_of = |id: Oid, kind: ObjectType| -> Result<Data, PushError> {
        Ok(match kind {
            ObjectType::Tree => Data::Tree(rawtree::read(repo, id).map_err(local)?),
            _ => Data::Other(odb.read(id).map_err(local)?.data().to_vec()),
        })
    };
    for entry in entries {
        let data = bytes_of(entry.id, entry.kind)?;
        let data = data.bytes();
        let mut delta = None;
        if let Some(base) = entry.base.filter(|b| thin || in_pack.contains(b)) {
            let d = pack::delta(bytes_of(base, entry.kind)?.bytes(), data);
            // The delta also costs the base's id.
            if d.len() + 20 < data.len() {
                delta = Some((base, d));
            }
        }
        match delta {
            Some((base, d)) => {
                pack.ref_delta(base, &d).map_err(wire)?;
                deltas += 1;
            }
            None => pack.full(entry.kind, data).map_err(wire)?,
        }
        in_pack.insert(entry.id);
    }
    let bytes = pack.written + 20;
    pack.finish().map_err(wire)?;
    Ok(Sent {
        objects: entries.len(),
        deltas,
        bytes,
        thin,
    })
}

/// An object's content: a tree shared with the rest of the run, or anything else read.
enum Data {
    Tree(Arc<RawTree>),
    Other(Vec<u8>),
}

impl Data {
    fn bytes(&self) -> &[u8] {
        match self {
            Data::Tree(t) => &t.bytes,
            Data::Other(b) => b,
        }
    }
}

/// An error writing the request: the transport kept why.
fn wire(e: io::Error) -> PushError {
    PushError::Wire(http::take_failure().unwrap_or_else(|| Failure::Unreachable(e.to_string())))
}

/// Reads `info/refs?service=git-receive-pack`.
fn parse_advertisement(mut body: impl Read) -> Result<Advertisement, PushError> {
    let mut advert = Advertisement::default();
    let mut first = true;
    let mut flushes = 0;
    while let Some(packet) = read_packet(&mut body)? {
        let line = match packet {
            Packet::Flush => {
                flushes += 1;
                // The service line's flush, then the refs' (a smart server sends both).
                if flushes == 2 || (!advert.refs.is_empty() || !advert.caps.is_empty()) {
                    break;
                }
                continue;
            }
            Packet::Data(line) => line,
        };
        let line = pktline::chomp(&line);
        if line.starts_with(b"# service=") || line == b"version 1" {
            continue;
        }
        if let Some(message) = line.strip_prefix(b"ERR ") {
            return Err(PushError::Protocol(format!(
                "the remote said: {}",
                String::from_utf8_lossy(message)
            )));
        }
        let (reference, caps) = match line.iter().position(|&b| b == 0) {
            Some(nul) => (&line[..nul], Some(&line[nul + 1..])),
            None => (line, None),
        };
        if first {
            if let Some(caps) = caps {
                advert.caps = String::from_utf8_lossy(caps)
                    .split(' ')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            first = false;
        }
        let text = String::from_utf8_lossy(reference);
        let Some((id, name)) = text.split_once(' ') else {
            return Err(bad_answer("a ref line without a name"));
        };
        let id = Oid::from_str(id).map_err(|_| bad_answer("a ref line without an object id"))?;
        // An empty repository advertises `capabilities^{}`; `.have` lines are other
        // repositories' objects; neither is a ref.
        if name != "capabilities^{}" && !name.ends_with(".have") && !id.is_zero() {
            advert.refs.insert(name.to_owned(), id);
        }
    }
    if first {
        return Err(bad_answer("no refs and no capabilities"));
    }
    Ok(advert)
}

fn bad_answer(what: &str) -> PushError {
    PushError::Protocol(format!(
        "the remote's answer is not git's receive-pack protocol ({what})"
    ))
}

fn read_packet(input: &mut impl Read) -> Result<Option<Packet>, PushError> {
    pktline::read(input).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => bad_answer(&e.to_string()),
        _ => wire(e),
    })
}

/// What the server's hooks said, kept to a few KB for the message.
const MESSAGES_LIMIT: usize = 4096;

/// Reads the server's answer: band 2 kept as messages, the report checked ref by ref.
fn read_report(
    mut answer: impl Read,
    sideband: bool,
    report_status: bool,
    refs: &[&str],
) -> Result<(), PushError> {
    let mut messages = String::new();
    let mut report = Vec::new();
    if sideband {
        while let Some(packet) = read_packet(&mut answer)? {
            let Packet::Data(data) = packet else { break };
            match data.split_first() {
                Some((1, rest)) => report.extend_from_slice(rest),
                Some((2, rest)) => {
                    if messages.len() < MESSAGES_LIMIT {
                        messages.push_str(&String::from_utf8_lossy(rest));
                    }
                }
                Some((3, rest)) => {
                    return Err(PushError::Protocol(format!(
                        "the remote failed: {}",
                        crate::text::one_line(&String::from_utf8_lossy(rest))
                    )))
                }
                _ => return Err(bad_answer("a packet on no known band")),
            }
        }
    } else {
        answer
            .take(1 << 20)
            .read_to_end(&mut report)
            .map_err(|e| PushError::Wire(Failure::Unreachable(e.to_string())))?;
    }
    if !report_status {
        return Ok(());
    }
    let mut input = &report[..];
    let mut unpack = None;
    let mut results: HashMap<String, Option<String>> = HashMap::new();
    while let Some(Packet::Data(line)) = read_packet(&mut input)? {
        let line = String::from_utf8_lossy(pktline::chomp(&line)).into_owned();
        if let Some(status) = line.strip_prefix("unpack ") {
            unpack = Some(status.to_owned());
        } else if let Some(name) = line.strip_prefix("ok ") {
            results.insert(name.to_owned(), None);
        } else if let Some(rest) = line.strip_prefix("ng ") {
            let (name, reason) = rest.split_once(' ').unwrap_or((rest, "rejected"));
            results.insert(name.to_owned(), Some(reason.to_owned()));
        }
    }
    match unpack.as_deref() {
        Some("ok") => {}
        Some(reason) => {
            return Err(PushError::Unpack {
                reason: reason.to_owned(),
                messages,
            })
        }
        None => return Err(bad_answer("no unpack status in the report")),
    }
    // With `atomic`, the refs the server had nothing against say "atomic push failure":
    // report the one it refused.
    let mut refused: Vec<(&str, &str)> = refs
        .iter()
        .filter_map(|name| match results.get(*name) {
            Some(Some(reason)) => Some((*name, reason.as_str())),
            _ => None,
        })
        .collect();
    refused.sort_by_key(|(_, reason)| *reason == "atomic push failure");
    if let Some((name, reason)) = refused.first() {
        return Err(PushError::Rejected {
            name: (*name).to_owned(),
            reason: (*reason).to_owned(),
            messages,
        });
    }
    if let Some(missing) = refs.iter().find(|name| !results.contains_key(**name)) {
        return Err(bad_answer(&format!("no status for {missing}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkts(lines: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for line in lines {
            if line.is_empty() {
                out.extend_from_slice(pktline::FLUSH);
            } else {
                out.extend_from_slice(&pktline::encode(line));
            }
        }
        out
    }

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";

    #[test]
    fn advertisements_give_refs_and_capabilities() {
        let body = pkts(&[
            b"# service=git-receive-pack\n",
            b"",
            format!(
                "{A} refs/heads/main\0report-status side-band-64k atomic no-thin agent=git/2\n"
            )
            .as_bytes(),
            format!("{B} refs/heads/backup\n").as_bytes(),
            format!("{B} .have\n").as_bytes(),
            b"",
        ]);
        let advert = parse_advertisement(&body[..]).unwrap();
        assert_eq!(advert.refs.len(), 2);
        assert_eq!(advert.refs["refs/heads/main"], Oid::from_str(A).unwrap());
        assert!(advert.caps.contains("no-thin") && advert.caps.contains("atomic"));
        // An empty repository.
        let zero = "0".repeat(40);
        let body = pkts(&[
            b"# service=git-receive-pack\n",
            b"",
            format!("{zero} capabilities^{{}}\0report-status\n").as_bytes(),
            b"",
        ]);
        let advert = parse_advertisement(&body[..]).unwrap();
        assert!(advert.refs.is_empty());
        assert!(advert.caps.contains("report-status"));
        // Not git.
        assert!(parse_advertisement(&b"<html>"[..]).is_err());
        assert!(parse_advertisement(&pkts(&[b"ERR no access\n"])[..])
            .is_err_and(|e| format!("{e:?}").contains("no access")));
    }

    fn banded(report: &[&[u8]], messages: &[u8]) -> Vec<u8> {
        let mut band1 = vec![1u8];
        band1.extend_from_slice(&pkts(report));
        let mut band2 = vec![2u8];
        band2.extend_from_slice(messages);
        let mut out = pkts(&[&band2, &band1]);
        out.extend_from_slice(pktline::FLUSH);
        out
    }

    #[test]
    fn reports_are_read_ref_by_ref() {
        let main = "refs/heads/main";
        let ok = banded(&[b"unpack ok\n", b"ok refs/heads/main\n", b""], b"");
        read_report(&ok[..], true, true, &[main]).unwrap();

        let hook = banded(
            &[
                b"unpack ok\n",
                b"ng refs/heads/main pre-receive hook declined\n",
                b"",
            ],
            b"GH007: private email\n",
        );
        match read_report(&hook[..], true, true, &[main]) {
            Err(PushError::Rejected {
                reason, messages, ..
            }) => {
                assert_eq!(reason, "pre-receive hook declined");
                assert!(messages.contains("GH007"));
            }
            other => panic!("{other:?}"),
        }

        let unpack = banded(
            &[
                b"unpack index-pack abnormal exit\n",
                b"ng refs/heads/main unpacker error\n",
                b"",
            ],
            b"fatal: pack exceeds maximum allowed size\n",
        );
        assert!(matches!(
            read_report(&unpack[..], true, true, &[main]),
            Err(PushError::Unpack { reason, .. }) if reason == "index-pack abnormal exit"
        ));

        let atomic = banded(
            &[
                b"unpack ok\n",
                b"ng refs/heads/main atomic push failure\n",
                b"ng refs/heads/backup non-fast-forward\n",
                b"",
            ],
            b"",
        );
        assert!(matches!(
            read_report(&atomic[..], true, true, &[main, "refs/heads/backup"]),
            Err(PushError::Rejected { name, reason, .. })
                if name == "refs/heads/backup" && reason == "non-fast-forward"
        ));

        let silent = banded(&[b"unpack ok\n", b""], b"");
        assert!(read_report(&silent[..], true, true, &[main]).is_err());
        let mut fatal = pkts(&[b"\x03fatal: out of disk\n"]);
        fatal.extend_from_slice(pktline::FLUSH);
        assert!(matches!(
            read_report(&fatal[..], true, true, &[main]),
            Err(PushError::Protocol(m)) if m.contains("out of disk")
        ));
        // Without side-band, the report is the answer itself.
        let plain = pkts(&[b"unpack ok\n", b"ok refs/heads/main\n", b""]);
        read_report(&plain[..], false, true, &[main]).unwrap();
    }
}
