//! `costcast config`: what the configuration says once files and environment are merged.

use clap::Subcommand;

use super::{Failure, Globals};

/// Configuration subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the effective configuration, secrets redacted.
    Print,
}

/// Prints the effective configuration.
pub fn run(globals: &Globals, action: ConfigAction) -> Result<(), Failure> {
    match action {
        ConfigAction::Print => {
            print!("{}", globals.load_config()?.to_redacted_toml());
            Ok(())
        }
    }
}
