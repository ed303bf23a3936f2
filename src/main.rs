//! Entry point: parse the command line, set up logging, run one command, print its report,
//! exit with its code. The only place that prints a result or an error.

mod cli;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use gitcord_snapshot::commands::{self, one_line, Inputs, Policy, Render, Target};
use gitcord_snapshot::error::print_error;
use gitcord_snapshot::exit_codes::ExitCode;
use gitcord_snapshot::Error;

use cli::{Cli, Command, InputArgs, TargetArgs};

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

/// Turns the parsed flags into the command's request, runs it, and prints its report.
fn run(command: Command) -> Result<(), Error> {
    use commands::{diff, export, prune, push, restore, status, verify};
    match command {
        Command::Export(args) => {
            let req = export::Request {
                config: args.input.config.clone(),
                inputs: inputs(&args.input),
                out: args.out,
            };
            emit(&export::run(&req)?, args.json)
        }
        Command::Push(args) => {
            let req = push::Request {
                config: args.input.config.clone(),
                inputs: inputs(&args.input),
                target: target(args.clone_dir, args.remote, &args.target),
                skip_unchanged: args.skip_unchanged,
                metrics_file: args.metrics_file,
            };
            emit(&push::run(&req)?, args.json)
        }
        Command::Status(args) => {
            let req = status::Request {
                config: args.repo.config,
                clone_dir: args.repo.clone_dir,
            };
            emit(&status::run(&req)?, args.json)
        }
        Command::Prune(args) => {
            let req = prune::Request {
                config: args.repo.config,
                target: target(args.repo.clone_dir, args.remote, &args.target),
                policy: Policy {
                    last: args.keep_last,
                    hourly: args.keep_hourly,
                    daily: args.keep_daily,
                    weekly: args.keep_weekly,
                    monthly: args.keep_monthly,
                    within: args.keep_within,
                },
                dry_run: args.dry_run,
            };
            emit(&prune::run(&req)?, args.json)
        }
        Command::Diff(args) => {
            let req = diff::Request {
                config: args.repo.config,
                clone_dir: args.repo.clone_dir,
                from: args.from,
                to: args.to,
            };
            emit(&diff::run(&req)?, args.json)
        }
        Command::Restore(args) => {
            let req = restore::Request {
                config: args.repo.config,
                clone_dir: args.repo.clone_dir,
                snapshot: args.snapshot,
                to: args.to,
                audit_log: args.audit_log,
            };
            emit(&restore::run(&req)?, args.json)
        }
        Command::Verify(args) => {
            let req = verify::Request {
                config: args.repo.config,
                clone_dir: args.repo.clone_dir,
                allowed_signers: args.allowed_signers,
                prove_restore: args.prove_restore,
                progress: !args.json && std::io::stderr().is_terminal(),
            };
            emit(&verify::run(&req)?, args.json)
        }
    }
}

/// The one way a report reaches the user: problems on stderr, the result on stdout as text or
/// JSON, then the report's own verdict (verify's problems fail the run).
fn emit<R: Render>(report: &R, json: bool) -> Result<(), Error> {
    for line in report.problems() {
        eprintln!("{line}");
    }
    let out = if json {
        report.json().map_err(Error::Render)?
    } else {
        report.text()
    };
    if !out.is_empty() {
        println!("{out}");
    }
    report.outcome()
}

fn inputs(args: &InputArgs) -> Inputs {
    Inputs {
        state_db: args.state_db.clone(),
        roles_file: args.roles_file.clone(),
        run_id: args.run_id,
        at: args.at,
        busy_timeout: Duration::from_secs_f64(args.busy_timeout),
        read_threads: args.read_threads.map(usize::from),
    }
}

fn target(clone_dir: Option<PathBuf>, remote: Option<String>, args: &TargetArgs) -> Target {
    Target {
        clone_dir,
        remote,
        no_push: args.no_push,
        lock_timeout: Duration::from_secs_f64(args.lock_timeout),
    }
}

/// clap's message without the usage block and the "try --help" hint: one line for logs.
fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .collect::<Vec<_>>()
        .join(" ");
    // A bad value that came from an environment variable (the flag is not on the command
    // line) is named by the variable: that is where the operator must look.
    let argv: Vec<String> = std::env::args().collect();
    let command = <Cli as clap::CommandFactory>::command();
    let mut commands = vec![&command];
    commands.extend(command.get_subcommands());
    for arg in commands.iter().flat_map(|c| c.get_arguments()) {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else {
            continue;
        };
        let flag = format!("--{long}");
        let given = argv
            .iter()
            .any(|a| *a == flag || a.starts_with(&format!("{flag}=")));
        if !given && std::env::var_os(env).is_some() && text.contains(&format!("'{flag} ")) {
            return format!(
                "{text} (the value comes from the environment variable {})",
                env.to_string_lossy()
            );
        }
    }
    text
}

/// Logs go to stderr as `gitcord-snapshot: <level>: <message>`; results go to stdout.
fn init_logging(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, _) => "debug",
    };
    env_logger::Builder::from_env(
        env_logger::Env::default().default_filter_or(format!("gitcord_snapshot={level}")),
    )
    .format(|buf, record| {
        let level = record.level().as_str().to_ascii_lowercase();
        writeln!(buf, "gitcord-snapshot: {level}: {}", record.args())
    })
    .init();
}
