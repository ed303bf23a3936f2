//! `verify`: checks the clone's whole branch history against the snapshot rules
//! ([`crate::maintenance::verify`]) and reports every problem, for operators and for monitoring.
//!
//! It opens the clone read-only (no lock, no repair), so it can run beside the cron job.
//! Problems go to stderr one per line (`verify: <commit> <path>: <problem>`), so a cron log
//! shows each one; stdout carries only the result: a summary line, or with `--json` one JSON
//! object for machines.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::commands::Render;
use crate::error::Error;
use crate::input::config::Config;
use crate::maintenance::verify::{self, Problem, Schemas};
use crate::publish::clone::DataRepo;
use crate::publish::session::{allowed_signers, clone_dir, latest_file};

/// What `verify` was asked to do.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Gitcord's config file (it names the clone).
    pub config: PathBuf,
    /// `--clone-dir`, overriding `snapshots.clone_dir`.
    pub clone_dir: Option<PathBuf>,
    /// `--allowed-signers`, overriding `snapshots.allowed_signers`: when either is set, every
    /// commit that touches snapshots must be signed by one of its keys.
    pub allowed_signers: Option<PathBuf>,
    /// Draw a progress line on stderr (the binary sets it when stderr is a terminal).
    pub progress: bool,
    /// `--prove-restore`: `latest`, `latest~N`, a snapshot name, or `all`.
    pub prove_restore: Option<String>,
}

/// What `verify` found. `--json` prints it as
/// `{"commits": N, "snapshots": M, "problems": [{"commit", "path", "problem"}]}`, with each
/// commit's full id, so scripts can hand it to git.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Commits walked.
    pub commits: usize,
    /// Distinct snapshot directory names seen anywhere in the history, pruned ones included
    /// (a name re-added with other content counts once).
    pub snapshots: usize,
    /// Backup commits checked on the backup branch.
    pub backups: usize,
    /// Snapshots whose backup was restored and exported back to the same seven files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proved: Option<usize>,
    /// Every problem, oldest commit first.
    pub problems: Vec<Problem>,
}

impl Render for Report {
    /// The summary line when all is well; nothing on stdout otherwise (the problems are on
    /// stderr, see [`Render::problems`]).
    fn text(&self) -> String {
        if self.problems.is_empty() {
            match self.backups {
                0 => format!(
                    "verified {} commits, {} snapshots: no problems",
                    self.commits, self.snapshots
                ),
                n => format!(
                    "verified {} commits, {} snapshots, {n} backups{}: no problems",
                    self.commits,
                    self.snapshots,
                    match self.proved {
                        Some(p) => format!(", {p} restore(s) proved"),
                        None => String::new(),
                    }
                ),
            }
        } else {
            String::new()
        }
    }

    fn problems(&self) -> Vec<String> {
        self.problems.iter().map(problem_line).collect()
    }

    fn outcome(&self) -> Result<(), Error> {
        match self.problems.len() {
            0 => Ok(()),
            problems => Err(Error::Verify { problems }),
        }
    }
}

/// Walks the branch's history; problems are in the report, not errors.
pub fn run(req: &Request) -> Result<Report, Error> {
    let config = Config::load(&req.config)?;
    let mut repo = DataRepo::open_existing(&clone_dir(&config, req.clone_dir.as_deref())?)?;
    repo.set_latest_file(latest_file(&config)?);
    let schemas = Schemas::load()?;
    let signers = allowed_signers(&config, req.allowed_signers.as_deref())?;
    let stderr = std::io::stderr();
    let mut progress = Progress::new(req.progress, stderr.lock());
    let found = verify::verify_history(&repo, &schemas, signers.as_ref(), &mut |i, n| {
        progress.update(i, n)
    });
    progress.clear();
    let mut found = found?;
    // The backup branch, local (queued backups included) or as last fetched.
    let mut backups = 0;
    if let Some(branch) = crate::publish::backup::branch(&config)? {
        let git = repo.git();
        let tip = match crate::publish::backup::local_tip(git, &branch)? {
            Some(tip) => Some(tip),
            None => crate::publish::backup::remote_tip(git, &branch)?,
        };
        if let Some(tip) = tip {
            backups = crate::maintenance::backup::verify_branch(git, tip, &mut found.problems)
                .map_err(|source| crate::publish::clone::RepoError::Git {
                    context: format!("read the backup branch {branch}"),
                    source,
                })?;
        }
    }
    let proved = match &req.prove_restore {
        None => None,
        Some(spec) => Some(prove_restores(&config, &repo, spec, &mut found.problems)?),
    };
    Ok(Report {
        commits: found.commits,
        snapshots: found.snapshots,
        backups,
        proved,
        problems: found.problems,
    })
}

/// `--prove-restore`: each snapshot named (or `all` with a backup) restored from its backup and
/// exported back; a file that differs is a problem.
fn prove_restores(
    config: &Config,
    repo: &DataRepo,
    spec: &str,
    problems: &mut Vec<Problem>,
) -> Result<usize, Error> {
    let Some(branch) = crate::publish::backup::branch(config)? else {
        problems.push(Problem {
            commit: String::new(),
            path: String::new(),
            problem: "--prove-restore: snapshots.backup is off; there is no backup to restore"
                .into(),
        });
        return Ok(0);
    };
    let names = match spec {
        "all" => repo.snapshot_names(None)?,
        one => vec![repo.resolve_snapshot(one)?],
    };
    let mut proved = 0;
    for name in names {
        let problem = |commit: String, path: String, problem: String| Problem {
            commit,
            path,
            problem,
        };
        match crate::maintenance::backup::prove(config, repo, &branch, &name) {
            Ok(None) if spec == "all" => {
                log::info!("snapshots/{name} predates the backup; nothing to prove")
            }
            Ok(None) => problems.push(problem(
                String::new(),
                format!("snapshots/{name}"),
                format!("no commit on {branch} backs this snapshot up"),
            )),
            Ok(Some(p)) => {
                log::info!(
                    "snapshots/{name}: restored backup {} and exported it in {:.2} s",
                    p.commit,
                    p.seconds
                );
                if p.differing.is_empty() {
                    proved += 1;
                }
                for f in p.differing {
                    problems.push(problem(
                        p.commit.clone(),
                        format!("snapshots/{name}/{f}"),
                        "differs when the backup is restored and exported with the snapshot's run id, time and roles".into(),
                    ));
                }
            }
            Err(e) => problems.push(problem(
                String::new(),
                format!("snapshots/{name}"),
                format!("the restore-then-export proof failed: {e}"),
            )),
        }
    }
    Ok(proved)
}

/// `verify: 1a2b3c4d snapshots/<name>/scores.json: <problem>`; a problem of the commit
/// itself (a merge) has no path.
fn problem_line(p: &Problem) -> String {
    let short = p.commit.get(..8).unwrap_or(&p.commit);
    if p.path.is_empty() {
        format!("verify: {short}: {}", p.problem)
    } else {
        format!("verify: {short} {}: {}", p.path, p.problem)
    }
}

/// A `\r`-rewritten `verify: commit i/N` line, only on a terminal: a long history shows it is
/// moving, while tests and cron logs (not terminals) stay clean.
struct Progress<W: Write> {
    out: Option<W>,
    last: Option<Instant>,
    shown: bool,
}

/// How often the progress line is redrawn at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

impl<W: Write> Progress<W> {
    fn new(enabled: bool, out: W) -> Progress<W> {
        Progress {
            out: enabled.then_some(out),
            last: None,
            shown: false,
        }
    }

    fn update(&mut self, i: usize, n: usize) {
        let Some(out) = self.out.as_mut() else { return };
        if i != n && self.last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        // Progress is decoration: a failing write must not fail the verification.
        let _ = write!(out, "\rverify: commit {i}/{n}");
        let _ = out.flush();
        self.shown = true;
    }

    /// Erases the line, so what follows starts on a clean line.
    fn clear(&mut self) {
        if let (Some(out), true) = (self.out.as_mut(), self.shown) {
            let _ = write!(out, "\r\x1b[2K");
            let _ = out.flush();
            self.shown = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_the_commit_and_path() {
        let commit = "1a2b3c4d5e6f708192a3b4c5d6e7f80912345678".to_owned();
        let p = Problem {
            commit: commit.clone(),
            path: "snapshots/x/scores.json".into(),
            problem: "modified".into(),
        };
        assert_eq!(
            problem_line(&p),
            "verify: 1a2b3c4d snapshots/x/scores.json: modified"
        );
        let merge = Problem {
            commit,
            path: String::new(),
            problem: "merge commit".into(),
        };
        assert_eq!(problem_line(&merge), "verify: 1a2b3c4d: merge commit");
        let report = Report {
            backups: 0,
            proved: None,
            commits: 3,
            snapshots: 2,
            problems: vec![p],
        };
        assert_eq!(
            report.json().unwrap(),
            r#"{"commits":3,"snapshots":2,"backups":0,"problems":[{"commit":"1a2b3c4d5e6f708192a3b4c5d6e7f80912345678","path":"snapshots/x/scores.json","problem":"modified"}]}"#
        );
    }

    #[test]
    fn progress_is_drawn_only_when_enabled_and_cleared_at_the_end() {
        let mut buf = Vec::new();
        let mut off = Progress::new(false, &mut buf);
        off.update(1, 2);
        off.clear();
        assert!(buf.is_empty());

        let mut buf = Vec::new();
        let mut on = Progress::new(true, &mut buf);
        on.update(1, 3);
        on.update(2, 3); // within 100 ms: skipped
        on.update(3, 3); // the last one is always drawn
        on.clear();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "\rverify: commit 1/3\rverify: commit 3/3\r\x1b[2K"
        );
    }
}
