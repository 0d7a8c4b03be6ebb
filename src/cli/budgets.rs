//! `costcast budgets`: evaluate every budget now and print where each stands.

use chrono::{DateTime, Utc};
use clap::Args;

use super::Failure;
use super::run::execute;
use crate::app::App;
use crate::pipeline::{RunOptions, Step};
use crate::report::{self, Format};

/// Options of `costcast budgets`.
#[derive(Debug, Args)]
pub struct BudgetsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Runs the budgets step and prints its evaluations.
pub async fn run(app: &App, args: BudgetsArgs, now: DateTime<Utc>) -> Result<(), Failure> {
    let report = execute(
        app,
        "budgets",
        &[Step::Budgets],
        now,
        &RunOptions::default(),
    )
    .await?;
    let table = match args.format {
        Format::Table => report::budgets_summary(&report.evaluations),
        _ => report::budgets(&report.evaluations),
    };
    print!("{}", table.render(args.format));
    Ok(())
}
