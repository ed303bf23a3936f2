//! Entry point: parse the command line, set up logging, run one command, exit with its code.

mod cli;

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use gitcord_snapshot::commands::{export, prune, push, status};
use gitcord_snapshot::error::{one_line, print_error};
use gitcord_snapshot::exit_codes::ExitCode;
use gitcord_snapshot::Error;

use cli::{Cli, Command, InputArgs};

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version.
            let _ = e.print();
            return ExitCode::Success.into();
        }
        Err(e) => {
            eprintln!("gitcord-snapshot: {}", one_line(&clap_message(&e)));
            return ExitCode::Usage.into();
        }
    };
    init_logging(cli.verbose, cli.quiet);
    match run(cli.command) {
        Ok(()) => ExitCode::Success.into(),
        Err(err) => {
            print_error(&err);
            err.exit_code().into()
        }
    }
}

fn run(command: Command) -> Result<(), Error> {
    match command {
        Command::Export(args) => {
            let dir = export::run(&args.input.config, &inputs(&args.input), &args.out)?;
            println!("{}", dir.display());
        }
        Command::Restore(args) => {
            let request = gitcord_snapshot::commands::restore::Request {
                config: args.repo.config,
                clone_dir: args.repo.clone_dir,
                snapshot: args.snapshot,
                to: args.to,
            };
            let report = gitcord_snapshot::commands::restore::run(&request)?;
            println!("{}", report.to.display());
        }
        Command::Push(args) => {
            let request = push::Request {
                config: args.input.config.clone(),
                inputs: inputs(&args.input),
                target: target(args.clone_dir, args.remote, &args.target),
                skip_unchanged: args.skip_unchanged,
                metrics_file: args.metrics_file,
            };
            println!("{}", describe(&push::run(&request)?));
        }
        Command::Verify(args) => {
            use gitcord_snapshot::commands::verify;
            verify::run(&verify::Request { config: args.repo.config, clone_dir: args.repo.clone_dir, json: args.json })?;
        }
        Command::Diff(args) => {
            use gitcord_snapshot::commands::diff;
            let request = diff::Request { config: args.repo.config, clone_dir: args.repo.clone_dir, from: args.from, to: args.to };
            let changes = diff::run(&request)?;
            if args.json {
                println!("{}", changes.to_json()?);
            } else {
                print!("{}", changes.to_text());
            }
        }
        Command::Status(args) => {
            let status = status::run(&args.repo.config, args.repo.clone_dir.as_deref())?;
            if args.json {
                println!("{}", serde_json::to_string(&status).map_err(Error::Render)?);
            } else {
                println!("{}", status::describe(&status));
            }
        }
        Command::Prune(args) => {
            let request = prune::Request {
                config: args.repo.config,
                target: target(args.repo.clone_dir, args.remote, &args.target),
                policy: gitcord_snapshot::retention::Policy {
                    last: args.keep_last,
                    hourly: args.keep_hourly,
                    daily: args.keep_daily,
                    weekly: args.keep_weekly,
                    monthly: args.keep_monthly,
                    within: args.keep_within,
                },
                dry_run: args.dry_run,
            };
            let report = prune::run(&request)?;
            for name in &report.removed {
                println!("{} {name}", if args.dry_run { "would remove" } else { "removed" });
            }
            for name in &report.kept {
                println!("keep {name}");
            }
            if let Some(oid) = report.commit {
                let pushed = report.pushed_to.map_or("not pushed (queued)".to_owned(), |u| format!("pushed to {u}"));
                println!("committed the prune as {}; {pushed}", short(&oid));
            }
        }
    }
    Ok(())
}

fn inputs(args: &InputArgs) -> export::Inputs {
    export::Inputs {
        state_db: args.state_db.clone(),
        roles_file: args.roles_file.clone(),
        run_id: args.run_id,
        at: args.at,
        busy_timeout: Duration::from_secs_f64(args.busy_timeout),
    }
}

fn target(clone_dir: Option<std::path::PathBuf>, remote: Option<String>, args: &cli::TargetArgs) -> push::Target {
    push::Target {
        clone_dir,
        remote,
        no_push: args.no_push,
        lock_timeout: Duration::from_secs_f64(args.lock_timeout),
    }
}

/// The one line `push` prints on success.
fn describe(report: &push::Report) -> String {
    match report {
        push::Report::Disabled => "snapshots are disabled (snapshots.enabled is not true); nothing to do".into(),
        push::Report::Done { snapshot_dir, outcome, pushed_to, queued } => {
            let what = match outcome {
                push::Outcome::Committed(oid) => format!("committed {snapshot_dir} as {}", short(oid)),
                push::Outcome::AlreadyCommitted(oid) => format!("{snapshot_dir} was already committed as {}", short(oid)),
                push::Outcome::Unchanged { since } => format!("no commit: nothing changed since snapshots/{since}"),
            };
            match pushed_to {
                Some(url) => format!("{what}; pushed to {url}"),
                None => format!("{what}; not pushed, {queued} commit(s) queued"),
            }
        }
    }
}

fn short(oid: &git2::Oid) -> String {
    oid.to_string()[..12].to_owned()
}

/// clap's message without the usage block and the "try --help" hint: one line for logs.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    text.lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Logs go to stderr as `gitcord-snapshot: <level>: <message>`; results go to stdout.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(format!("gitcord_snapshot={level}")))
        .format(|buf, record| {
            let level = record.level().as_str().to_ascii_lowercase();
            writeln!(buf, "gitcord-snapshot: {level}: {}", record.args())
        })
        .init();
}
