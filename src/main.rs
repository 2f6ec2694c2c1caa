//! The `pacxfer` binary: parse the command line, run one command, print any error once on one
//! line, and turn the outcome into the exit status.

use std::process::ExitCode;

use clap::Parser;

use pacxfer::cli::{Cli, Command};
use pacxfer::commands::{self, Session};
use pacxfer::ui::progress::Verbosity;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!(
                "pacxfer: error: {}",
                pacxfer::ui::shown::shown(&format!("{err:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(Command::Completions { shell }) = cli.command {
        let mut command = <Cli as clap::CommandFactory>::command();
        clap_complete::generate(shell, &mut command, "pacxfer", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    let verbosity = match (cli.global.quiet, cli.global.verbose) {
        (true, _) => Verbosity::Quiet,
        (_, true) => Verbosity::Verbose,
        _ => Verbosity::Normal,
    };
    let session = Session::open(
        cli.global.config.as_deref(),
        cli.global.dbpath.as_deref(),
        cli.global.cache_dir.as_deref(),
        verbosity,
    )?;
    match (cli.command, cli.url, cli.output) {
        (Some(Command::Fetch { what, output }), _, _) => {
            commands::fetch(&session, &what, output.as_deref())
        }
        (Some(Command::Lookup { what, json }), _, _) => commands::lookup(&session, &what, json),
        (
            Some(Command::Seed {
                files,
                stdin,
                sources,
                if_running,
            }),
            _,
            _,
        ) => {
            let which = if sources {
                commands::seed::Which::Sources(&files)
            } else if stdin {
                commands::seed::Which::StdinNames
            } else if files.is_empty() {
                commands::seed::Which::CacheDir
            } else {
                commands::seed::Which::Files(&files)
            };
            commands::seed::seed(&session, which, if_running)
        }
        (Some(Command::Dlagent { srcinfo, args }), _, _) => {
            let (srcinfo, url, output) = commands::dlagent::split_args(srcinfo, args)?;
            commands::dlagent::dlagent(&session, &url, &output, srcinfo.as_deref())
        }
        (Some(Command::Publish(args)), _, _) => commands::publish::publish(&session, args),
        (Some(Command::Prefetch(args)), _, _) => commands::prefetch::prefetch(&session, args),
        (None, Some(url), Some(output)) => commands::xfer(&session, &url, &output),
        (Some(Command::Completions { .. }), _, _) => Ok(ExitCode::SUCCESS),
        (Some(Command::Announce { force }), _, _) => commands::announce::announce(&session, force),
        (Some(Command::Doctor { json }), _, _) => commands::doctor::doctor(&session, json),
        (Some(Command::Stats { days, json }), _, _) => commands::stats::stats(&session, days, json),
        _ => anyhow::bail!("give a URL and an OUTPUT, or a command; see `pacxfer --help`"),
    }
}
