//! `costcast forecast`: forecast every series in the store as a recorded run, or a long CSV
//! with `--input` and no database.

use std::path::PathBuf;

use clap::Args;

use super::{Failure, Globals, print, run::execute, values, with_app};
use crate::domain::ModelChoice;
use crate::pipeline::{RunOptions, Step};
use crate::standalone;

/// Options of `costcast forecast`.
#[derive(Debug, Args)]
pub struct ForecastArgs {
    /// Long CSV `series_id,date,value` to forecast without a database.
    #[arg(long, value_name = "IN.csv")]
    input: Option<PathBuf>,
    /// Days to forecast (with --input; the store uses forecast.horizon_days).
    #[arg(long, default_value = "45", value_parser = values::horizon)]
    horizon: usize,
    /// Where to write the forecast CSV (default: stdout).
    #[arg(long, value_name = "OUT.csv", requires = "input")]
    output: Option<PathBuf>,
    /// auto, or a model (with --input; the store uses forecast.model).
    #[arg(long, default_value = "calendar", value_parser = values::model, requires = "input")]
    model: ModelChoice,
    /// 30-day windows of each series' own history whose missed totals widen its level
    /// error, as a forecast run does with forecast.backtest_windows (with --input).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=24), requires = "input")]
    backtest_windows: u8,
}

/// Forecasts the store's series, or the input file's.
pub async fn run(globals: &Globals, args: ForecastArgs) -> Result<(), Failure> {
    let Some(input) = args.input.clone() else {
        let now = globals.now();
        return with_app(globals, async |app| {
            let report = execute(
                app,
                "forecast",
                &[Step::Forecast],
                now,
                &RunOptions::default(),
            )
            .await?;
            print::run(&report);
            Ok(())
        })
        .await;
    };
    globals.start_logging_without_config()?;
    let series = standalone::read_series(&input).map_err(Failure::run)?;
    let windows = usize::from(args.backtest_windows);
    let (horizon, choice) = (args.horizon, args.model);
    let done = match &args.output {
        Some(path) => {
            let mut file = std::fs::File::create(path)
                .map_err(|e| Failure::message(format!("{}: {e}", path.display())))?;
            standalone::forecast(&series, horizon, choice, windows, &mut file)
        }
        None => standalone::forecast(&series, horizon, choice, windows, &mut std::io::stdout()),
    }
    .map_err(Failure::run)?;
    let count = done.series;
    if count == 0 {
        return Err(Failure::message(format!(
            "{}: no series to forecast",
            input.display()
        )));
    }
    if let Some(path) = &args.output {
        let threads = rayon::current_num_threads();
        eprintln!(
            "Forecast {count} series {horizon} days ahead with {choice} into {}: fitting took \
             {:.2} s on {threads} threads, {:.3} ms per series per thread.",
            path.display(),
            done.fit_seconds,
            1000.0 * done.fit_seconds * threads as f64 / count as f64,
        );
    }
    Ok(())
}
