//! `costcast report`: print what the store holds, as a table, CSV or JSON.

use clap::{Args, Subcommand};

use super::{Failure, values};
use crate::app::App;
use crate::domain::{Day, Dimension};
use crate::report::Format;
use crate::report::read::{self, Days, Query};

/// Options every report takes.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// From DAY.
    #[arg(long, value_name = "DAY")]
    from: Option<Day>,
    /// Up to DAY (included).
    #[arg(long, value_name = "DAY")]
    to: Option<Day>,
    /// Dimensions to group costs by, e.g. service,team.
    #[arg(long, value_delimiter = ',', default_value = "service", value_parser = values::dimension)]
    group_by: Vec<Dimension>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// The reports.
#[derive(Debug, Subcommand)]
pub enum ReportKind {
    /// Cost totals grouped by dimensions.
    Costs(ReportArgs),
    /// The newest forecast of every series (a summary in table format).
    Forecasts(ReportArgs),
    /// The newest evaluation of every budget.
    Budgets(ReportArgs),
    /// The changes planned by the newest run.
    Actions(ReportArgs),
    /// Days smoothed out of the fit as anomalies.
    Anomalies(ReportArgs),
    /// Recent runs and their stages.
    Runs(ReportArgs),
    /// Cost per 1,000 units (e.g. requests) per namespace, from Prometheus sources.
    Units(ReportArgs),
    /// Backtest accuracy of every forecast series, from the newest forecast run.
    Accuracy(ReportArgs),
}

/// Prints the report asked for.
pub async fn run(app: &App, what: ReportKind) -> Result<(), Failure> {
    let (query, args) = match what {
        ReportKind::Costs(args) => (Query::Costs(args.group_by.clone()), args),
        ReportKind::Forecasts(args) => (Query::Forecasts, args),
        ReportKind::Budgets(args) => (Query::Budgets, args),
        ReportKind::Actions(args) => (Query::Actions, args),
        ReportKind::Anomalies(args) => (Query::Anomalies, args),
        ReportKind::Runs(args) => (Query::Runs, args),
        ReportKind::Units(args) => (Query::Units, args),
        ReportKind::Accuracy(args) => (Query::Accuracy, args),
    };
    let days = Days {
        from: args.from,
        to: args.to,
    };
    let out = read::render(app, &query, days, args.format)
        .await
        .map_err(Failure::run)?;
    print!("{out}");
    Ok(())
}
