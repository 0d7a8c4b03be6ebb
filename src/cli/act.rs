//! `costcast act`: make the cluster match each budget's ladder, or restore what costcast
//! changed.

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};

use super::{Failure, print, run::execute};
use crate::app::App;
use crate::pipeline::{self, RunOptions, StageError, Step};

/// Options of `costcast act`.
#[derive(Debug, Args)]
pub struct ActArgs {
    /// Plan only, even for budgets in enforce mode.
    #[arg(long)]
    dry_run: bool,
    /// Restore instead.
    #[command(subcommand)]
    what: Option<ActCommand>,
}

/// What `act` can do besides reconciling.
#[derive(Debug, Subcommand)]
pub enum ActCommand {
    /// Put back everything costcast changed for a budget, or for all, from the objects'
    /// annotations (the store is not needed for that).
    Restore {
        /// The budget whose changes to restore.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        budget: Option<String>,
        /// Every budget's changes.
        #[arg(long)]
        all: bool,
        /// Say what would be restored, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Reconciles, or restores, and prints what was done.
pub async fn run(app: &App, args: ActArgs, now: DateTime<Utc>) -> Result<(), Failure> {
    let report = match args.what {
        None => {
            let options = RunOptions {
                dry_run: args.dry_run,
                ..RunOptions::default()
            };
            execute(app, "act", &[Step::Act], now, &options).await?
        }
        Some(ActCommand::Restore {
            budget, dry_run, ..
        }) => {
            let report = pipeline::restore(app, budget.as_deref(), dry_run, now)
                .await
                .map_err(|e| match e.source {
                    StageError::Refused(why) => Failure::usage(format!("--budget: {why}")),
                    _ => Failure::run(e),
                })?;
            eprintln!(
                "Restore run {}: {} object(s) looked at.",
                report.run_id,
                report.actions.len()
            );
            report
        }
    };
    print::run(&report);
    Ok(())
}
