//! `costcast backtest`: score models by rolling-origin backtest, on the store's forecast
//! series (stored as a run, so reports publish the newest scores) or on a long CSV.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::{Failure, Globals, run::execute, values, with_app};
use crate::domain::{Accuracy, ModelChoice};
use crate::forecast::backtest::{self, Plan, Summary};
use crate::pipeline::{BacktestRequest, RunOptions, Step};
use crate::report::{self, Format};
use crate::standalone;

/// Options of `costcast backtest`.
#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Long CSV `series_id,date,value`; without it, the store's forecast series.
    #[arg(long, value_name = "IN.csv")]
    input: Option<PathBuf>,
    /// Days forecast from each origin.
    #[arg(long, default_value = "30", value_parser = values::horizon)]
    horizon: usize,
    /// Origins, `horizon` days apart, the newest `horizon` days before the end.
    #[arg(long, default_value = "3", value_parser = values::windows)]
    windows: usize,
    /// Models to score (auto and every model by default).
    #[arg(long, value_delimiter = ',', value_parser = values::model)]
    models: Vec<ModelChoice>,
    /// Output: a summary per model (table), or every series and model (csv, json).
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// Scores the models and prints the scores.
pub async fn run(globals: &Globals, args: BacktestArgs) -> Result<(), Failure> {
    let plan = Plan {
        horizon: args.horizon,
        windows: args.windows,
    };
    let models = match args.models.is_empty() {
        true => ModelChoice::every(),
        false => args.models,
    };
    let started = Instant::now();
    let (series, scores) = match &args.input {
        Some(input) => {
            globals.start_logging_without_config()?;
            let series = standalone::read_series(input).map_err(Failure::run)?;
            let targets = standalone::targets(&series);
            let scores = backtest::run(&targets, &models, plan);
            (targets.len(), scores)
        }
        None => {
            let now = globals.now();
            let options = RunOptions {
                backtest: Some(BacktestRequest {
                    plan,
                    models: models.clone(),
                }),
                ..RunOptions::default()
            };
            let report = with_app(globals, async |app| {
                execute(app, "backtest", &[Step::Backtest], now, &options).await
            })
            .await?;
            let series = report
                .stages
                .first()
                .and_then(|s| s.counts.get("series"))
                .copied()
                .unwrap_or(0);
            (series as usize, report.accuracy)
        }
    };
    if scores.is_empty() {
        return Err(Failure::message(format!(
            "no series has the {} days of history a {}-day window needs",
            plan.horizon + backtest::MIN_TRAIN_DAYS,
            plan.horizon
        )));
    }
    print!("{}", render(&scores, &models, args.format));
    eprintln!(
        "Backtested {series} series × {} models, {} windows of {} days, in {:.1} s.",
        models.len(),
        plan.windows,
        plan.horizon,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A summary per model (table), or every score (csv, json).
fn render(scores: &[Accuracy], models: &[ModelChoice], format: Format) -> String {
    match format {
        Format::Table => {
            let summaries: Vec<Summary> = models
                .iter()
                .map(|c| {
                    let name = c.to_string();
                    let of_model: Vec<Accuracy> =
                        scores.iter().filter(|a| a.model == name).cloned().collect();
                    backtest::summary(&name, &of_model)
                })
                .collect();
            report::accuracy_summary(&summaries).render(format)
        }
        _ => report::accuracy(scores).render(format),
    }
}
