//! valinectl: runs Valine locally, sends it signed requests, registers its commands, looks up
//! traces and audit records, and redacts logs.

mod redact_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "valinectl", version, about = "Run, poke and inspect the Valine ops bot")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Copy stdin to stdout with every secret redacted (for pasting logs into an issue).
    Redact,
    /// The DynamoDB tables: print their CloudFormation, or create them on a DynamoDB server.
    Tables {
        #[command(subcommand)]
        action: TablesAction,
    },
}

#[derive(Subcommand, Debug)]
enum TablesAction {
    /// Print the table resources as they stand in template.yaml.
    Cfn,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Redact => match redact_cmd::run(std::io::stdin().lock(), std::io::stdout().lock()) {
            Ok(_) => std::process::ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("valinectl redact: {e}");
                std::process::ExitCode::FAILURE
            }
        },
        Command::Tables { action: TablesAction::Cfn } => {
            print!("{}", valine_core::store::schema::cloudformation_tables());
            std::process::ExitCode::SUCCESS
        }
    }
}
