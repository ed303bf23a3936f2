//! Entry point: parse the command line, set up logging, run one command, exit with its code.

mod cli;

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use gitcord_snapshot::commands::{export, push};
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
        Command::Push(args) => {
            let request = push::Request {
                config: args.input.config.clone(),
                inputs: inputs(&args.input),
                clone_dir: args.clone_dir,
                remote: args.remote,
                no_push: args.no_push,
                lock_timeout: Duration::from_secs_f64(args.lock_timeout),
            };
            println!("{}", describe(&push::run(&request)?));
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

/// The one line `push` prints on success.
fn describe(report: &push::Report) -> String {
    match report {
        push::Report::Disabled => "snapshots are disabled (snapshots.enabled is not true); nothing to do".into(),
        push::Report::Done { snapshot_dir, commit, new_commit, pushed_to, queued } => {
            let what = if *new_commit { "committed" } else { "already committed" };
            let short = &commit.to_string()[..12];
            match pushed_to {
                Some(url) => format!("{what} {snapshot_dir} as {short}; pushed to {url}"),
                None => format!("{what} {snapshot_dir} as {short}; not pushed, {queued} commit(s) queued"),
            }
        }
    }
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
