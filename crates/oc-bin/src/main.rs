//! The `ocpoll` binary: the command line of the product (`../shared/spec/product.md`).

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// ocpoll — a self-hosted events engine for Sage Business Cloud Accounting, wire-compatible with the polling
/// events of SAP Open Connectors.
#[derive(Debug, Parser)]
#[command(name = "ocpoll", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check an instance request body offline (FILE, or - for stdin); exit 0 when valid, 2 otherwise.
    Validate(cmd::validate::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => cmd::validate::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
