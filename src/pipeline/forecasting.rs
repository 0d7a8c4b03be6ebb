//! The forecast and backtest stages: every target series read from the store up to the last
//! trusted day, forecast or scored, and the results stored.

use super::{Counts, RunOptions, RunReport, StageError, counts};
use crate::app::App;
use crate::domain::{Day, ModelChoice};
use crate::forecast;

/// The last day trusted for fitting as of `as_of`: today is never complete, the
/// `billing_lag_days` before it are still being reported, and a day a source still marks as
/// estimated (Cost Explorer's `Estimated`) may yet change. Later days are forecast (nowcast), so
/// a half-reported day never reads as a drop.
pub fn trusted_through(
    as_of: Day,
    billing_lag_days: u32,
    last_stored: Option<Day>,
    first_estimated: Option<Day>,
) -> Option<Day> {
    let by_lag = as_of.add_days(-1 - billing_lag_days as i64);
    let by_estimate = first_estimated.map_or(by_lag, |d| d.add_days(-1));
    last_stored.map(|last| last.min(by_lag).min(by_estimate))
}

/// How far back an estimated day still holds the forecast's history back: sources mark only
/// their newest days estimated, and an older mark is a source that stopped reporting, which the
/// ingest summary shows rather than the forecast silently shortening.
const ESTIMATED_LOOKBACK_DAYS: i64 = 31;

/// The forecast targets built from the store, each with the last day its fit trusts.
pub async fn load_targets(
    ctx: &App,
    as_of: Day,
) -> Result<Vec<(forecast::Target, Day)>, StageError> {
    let settings = &ctx.config.forecast;
    let summary = ctx.store.cost_summary().await?;
    let first_estimated = ctx
        .store
        .first_estimated_day(as_of.add_days(-ESTIMATED_LOOKBACK_DAYS))
        .await?;
    let Some(history_end) = trusted_through(
        as_of,
        settings.billing_lag_days,
        summary.last_day,
        first_estimated,
    ) else {
        return Err(StageError::Other(
            "the store holds no costs yet: run `costcast ingest` first".into(),
        ));
    };
    let series: Vec<(i64, crate::domain::Dimensions)> = ctx
        .store
        .series()
        .await?
        .into_iter()
        .map(|s| (s.id, s.dims))
        .collect();
    let costs = ctx.store.daily_costs(None, Some(history_end)).await?;
    let targets = forecast::build_targets(
        &series,
        &costs,
        &ctx.config.budgets,
        &settings.grain,
        settings.top_series,
        &settings.holidays,
    );
    Ok(targets.into_iter().map(|t| (t, history_end)).collect())
}

/// Days to forecast: `forecast.horizon_days`, or more when a budget's period (a quarter, a
/// year) ends later, so every budget's projection is forecast to its period's end.
fn horizon_days(ctx: &App, targets: &[(forecast::Target, Day)], as_of: Day) -> usize {
    let history_end = targets.iter().map(|(_, end)| *end).min().unwrap_or(as_of);
    let to_period_ends = ctx.config.budgets.iter().map(|b| {
        history_end
            .days_until(b.period.containing(as_of).end())
            .max(0) as usize
    });
    to_period_ends
        .chain([ctx.config.forecast.horizon_days as usize])
        .max()
        .unwrap_or(0)
}

/// Days each backtest window of a forecast run covers: the month a budget is judged on.
pub const BACKTEST_HORIZON: usize = forecast::backtest::WINDOW_DAYS;

pub(super) async fn forecast_stage(
    ctx: &App,
    run_id: i64,
    as_of: Day,
) -> Result<Counts, StageError> {
    let settings = ctx.config.forecast.clone();
    let targets = load_targets(ctx, as_of).await?;
    let horizon = horizon_days(ctx, &targets, as_of);
    let (output, accuracy) = tokio::task::spawn_blocking(move || {
        let mut output = forecast::forecast_targets(&targets, horizon, settings.model);
        let accuracy = forecast::calibrate_by_backtest(
            &targets,
            &mut output.forecasts,
            settings.model,
            settings.backtest_windows,
        );
        (output, accuracy)
    })
    .await
    .map_err(|e| StageError::Other(format!("forecast task panicked: {e}")))?;
    ctx.store.save_forecasts(run_id, &output.forecasts).await?;
    ctx.store.save_anomalies(run_id, &output.anomalies).await?;
    ctx.store.save_accuracy(run_id, &accuracy).await?;
    let fallbacks = output
        .forecasts
        .iter()
        .filter(|f| {
            f.note
                .as_deref()
                .is_some_and(|n| n.contains("seasonal naive used"))
        })
        .count();
    Ok(counts([
        ("series", output.forecasts.len() as u64),
        ("fallbacks", fallbacks as u64),
        ("anomalies", output.anomalies.len() as u64),
        ("backtested", accuracy.len() as u64),
    ]))
}

/// Scores `auto` and every model on the store's forecast series, `forecast.backtest_windows`
/// windows of [`BACKTEST_HORIZON`] days (at least one), and stores the scores.
pub(super) async fn backtest_stage(
    ctx: &App,
    run_id: i64,
    as_of: Day,
    options: &RunOptions,
    report: &mut RunReport,
) -> Result<Counts, StageError> {
    let targets = load_targets(ctx, as_of).await?;
    let (plan, choices) = match &options.backtest {
        Some(request) => (request.plan, request.models.clone()),
        None => {
            let plan = forecast::backtest::Plan {
                horizon: BACKTEST_HORIZON,
                windows: ctx.config.forecast.backtest_windows.max(1),
            };
            (plan, ModelChoice::every())
        }
    };
    let models = choices.len() as u64;
    let series = targets.len() as u64;
    let scores =
        tokio::task::spawn_blocking(move || forecast::backtest::run(&targets, &choices, plan))
            .await
            .map_err(|e| StageError::Other(format!("backtest task panicked: {e}")))?;
    ctx.store.save_accuracy(run_id, &scores).await?;
    let scored = scores.len() as u64;
    report.accuracy = scores;
    Ok(counts([
        ("series", series),
        ("models", models),
        ("scores", scored),
        ("windows", plan.windows as u64),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_stops_before_lagged_and_estimated_days() {
        let d = |s: &str| Day::parse(s).unwrap();
        let as_of = d("2024-06-20");
        // Lag 1: today and yesterday are not trusted.
        assert_eq!(
            trusted_through(as_of, 1, Some(d("2024-06-19")), None),
            Some(d("2024-06-18"))
        );
        // A day still estimated three days back holds the history before it.
        assert_eq!(
            trusted_through(as_of, 1, Some(d("2024-06-19")), Some(d("2024-06-16"))),
            Some(d("2024-06-15"))
        );
        // Stored data that stops early ends the history there.
        assert_eq!(
            trusted_through(as_of, 1, Some(d("2024-06-10")), None),
            Some(d("2024-06-10"))
        );
        assert_eq!(trusted_through(as_of, 1, None, None), None);
    }
}
