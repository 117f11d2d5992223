//! The `ocpoll` binary: the command line of the product (`../shared/spec/product.md`).

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use oc_bin::settings::{DatabaseArgs, ServeSettings};

/// ocpoll — a self-hosted events engine for Sage Business Cloud Accounting, wire-compatible with the polling
/// events of SAP Open Connectors.
#[derive(Debug, Parser)]
#[command(name = "ocpoll", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// parsed once per process: the size of the largest variant does not matter
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API, the pollers and the delivery workers.
    Serve(ServeSettings),
    /// Everything on one machine: the Sage simulator, the service on SQLite in a temporary directory and a callback
    /// receiver that verifies signatures; makes changes and prints them and the notifications they cause.
    Demo(oc_bin::demo::DemoArgs),
    /// Only the Sage Accounting v3.1 simulator (OAuth, API, faults), until Ctrl-C.
    Sim(cmd::sim::Args),
    /// Apply the database migrations and exit.
    Migrate(DatabaseArgs),
    /// Copy the SQLite database to PATH while it serves (a consistent copy; PostgreSQL: use pg_dump).
    Backup(cmd::ops::BackupArgs),
    /// Check what `ocpoll serve` with the same settings needs: settings, database, master key, Sage, callbacks.
    /// Exit 0 when nothing failed, 1 otherwise.
    Doctor(ServeSettings),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff) of ocpoll.
    Man,
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCmd),
    /// Check an instance request body offline (FILE, or - for stdin); exit 0 when valid, 2 otherwise.
    Validate(cmd::validate::Args),
    /// Poller URL templates and Java SimpleDateFormat masks.
    #[command(subcommand)]
    Template(cmd::template::TemplateCmd),
    /// CEQL where clauses and their Sage v3.1 translation.
    #[command(subcommand)]
    Ceql(cmd::ceql::CeqlCmd),
}

#[derive(Debug, Subcommand)]
enum OrgCmd {
    /// Create an organization and its first user; prints JSON with both secrets.
    Create {
        /// The organization's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
    },
}

/// Runs an async command on a fresh runtime; errors exit with code 1.
fn block_on(fut: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
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
        Command::Serve(settings) => block_on(oc_bin::service::serve(settings)),
        Command::Demo(args) => block_on(oc_bin::demo::run(args)),
        Command::Sim(args) => block_on(async move {
            oc_bin::service::init_logging(oc_bin::settings::LogFormat::Text);
            cmd::sim::run(args).await
        }),
        Command::Migrate(db) => block_on(async move {
            oc_bin::service::init_logging(oc_bin::settings::LogFormat::Text);
            cmd::admin::migrate(&db).await
        }),
        Command::Backup(args) => block_on(cmd::ops::backup(&args)),
        Command::Doctor(settings) => {
            let mut healthy = false;
            let code = block_on(async {
                healthy = cmd::ops::doctor(&settings).await?;
                Ok(())
            });
            if code == ExitCode::SUCCESS && !healthy { ExitCode::FAILURE } else { code }
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(shell, &mut Cli::command(), "ocpoll", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory;
            match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Org(OrgCmd::Create { name, database }) => block_on(cmd::admin::org_create(&database, &name)),
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
