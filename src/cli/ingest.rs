//! `costcast ingest`: read billing sources into the store, all or one, all days or some.

use chrono::{DateTime, Utc};
use clap::Args;

use super::{Failure, print, run::execute};
use crate::app::App;
use crate::domain::{Day, DayRange};
use crate::pipeline::{RunOptions, Step};

/// Options of `costcast ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Only this source.
    #[arg(long)]
    source: Option<String>,
    /// Only days from DAY.
    #[arg(long, value_name = "DAY")]
    from: Option<Day>,
    /// Only days up to DAY (included).
    #[arg(long, value_name = "DAY")]
    to: Option<Day>,
}

/// Runs the ingest step for the sources and days asked for.
pub async fn run(app: &App, args: IngestArgs, now: DateTime<Utc>) -> Result<(), Failure> {
    let range = match (args.from, args.to) {
        (None, None) => None,
        (from, to) => Some(
            DayRange::new(from.unwrap_or(Day::EARLIEST), to.unwrap_or(Day::LATEST))
                .map_err(|e| Failure::usage(format!("--from/--to: {e}")))?,
        ),
    };
    if let Some(name) = &args.source
        && app.config.source(name).is_none()
    {
        return Err(Failure::usage(format!(
            "--source: no source named {name:?} in the configuration"
        )));
    }
    let options = RunOptions {
        source: args.source,
        range,
        ..RunOptions::default()
    };
    let report = execute(app, "ingest", &[Step::Ingest], now, &options).await?;
    print::run(&report);
    Ok(())
}
