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
    /// Poller URL templates and Java SimpleDateFormat masks.
    #[command(subcommand)]
    Template(cmd::template::TemplateCmd),
    /// CEQL where clauses and their Sage v3.1 translation.
    #[command(subcommand)]
    Ceql(cmd::ceql::CeqlCmd),
}

/// Prints a command's text, or its error on stderr with exit code 2.
fn finish(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Validate(args) => match cmd::validate::run(&args) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
        Command::Template(t) => finish(cmd::template::run(&t)),
        Command::Ceql(c) => finish(cmd::ceql::run(&c)),
    }
}
