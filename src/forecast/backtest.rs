//! Rolling-origin backtests: each model is fitted on a series' history up to an origin and
//! scored on the days after it, for several origins. Pure and parallel over series.

use rayon::prelude::*;
use serde::Serialize;

use super::model::Bounds;
use super::prepare::DailySeries;
use super::{Target, forecast_points};
use crate::domain::{Accuracy, Day, ModelChoice};

/// The shortest history a backtest window is fitted on: two weeks, so even the seasonal naive
/// fallback has a week to repeat and a week to measure its spread.
pub const MIN_TRAIN_DAYS: usize = 14;

/// The scores of one window.
#[derive(Debug, Clone, Copy, Default)]
struct WindowScore {
    mape: Option<f64>,
    smape: Option<f64>,
    mase: Option<f64>,
    total_error: Option<f64>,
    bias: Option<f64>,
    coverage80: f64,
    coverage95: f64,
}

/// Days each backtest window covers: the month a budget is judged on.
pub const WINDOW_DAYS: usize = 30;

/// Backtest settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// Days forecast from each origin.
    pub horizon: usize,
    /// Origins, each `horizon` days before the next; the last leaves `horizon` days to score.
    pub windows: usize,
}

impl Plan {
    /// The origins (training lengths) for a series of `n` days, oldest first; fewer than
    /// `windows` when the history is short.
    fn origins(self, n: usize, min_train: usize) -> Vec<usize> {
        (1..=self.windows)
            .rev()
            .filter_map(|k| n.checked_sub(k * self.horizon))
            .filter(|origin| *origin >= min_train)
            .collect()
    }
}

/// One target's backtest under one choice: the averages, and each window's total error.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The scores averaged over the windows.
    pub accuracy: Accuracy,
    /// Each window's miss of its 30-day total, oldest first.
    pub misses: Vec<Miss>,
}

/// How far one backtest window's total was off, and on how much history it was forecast.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Miss {
    /// |forecast total − actual total| / actual total, in %.
    pub percent: f64,
    /// Days of history before the window's origin.
    pub history_days: usize,
}

/// Backtests every target, each up to its own last trusted day, under every choice, in
/// parallel; one [`Accuracy`] per target and choice that has at least one window.
pub fn run(targets: &[(Target, Day)], choices: &[ModelChoice], plan: Plan) -> Vec<Accuracy> {
    run_scored(targets, choices, plan)
        .into_iter()
        .map(|s| s.accuracy)
        .collect()
}

/// [`run`], keeping each window's total error.
pub fn run_scored(targets: &[(Target, Day)], choices: &[ModelChoice], plan: Plan) -> Vec<Scored> {
    let jobs: Vec<(&Target, Day, ModelChoice)> = targets
        .iter()
        .flat_map(|(t, end)| choices.iter().map(move |c| (t, *end, *c)))
        .collect();
    jobs.par_iter()
        .filter_map(|(t, end, c)| score_target(t, *end, *c, plan))
        .collect()
}

/// One target's scores under `choice`, forecasting usage and recurring charges exactly as a
/// run does; `None` when its history through `end` is too short for a window.
fn score_target(target: &Target, end: Day, choice: ModelChoice, plan: Plan) -> Option<Scored> {
    let all: Vec<(Day, f64)> = target
        .usage
        .iter()
        .chain(&target.recurring)
        .copied()
        .collect();
    let total = DailySeries::from_points(&all, end)?;
    let origins = plan.origins(total.values.len(), MIN_TRAIN_DAYS);
    if origins.is_empty() {
        return None;
    }
    let scores: Vec<(usize, WindowScore)> = origins
        .iter()
        .filter_map(|origin| {
            let points = forecast_points(target, total.day(origin - 1), plan.horizon, choice)?;
            let mean: Vec<f64> = points.iter().map(|p| p.mean).collect();
            let bounds: Vec<Bounds> = points.iter().map(Bounds::of).collect();
            let actual = &total.values[*origin..origin + plan.horizon];
            let score = score_window(&total.values[..*origin], actual, &mean, &bounds);
            Some((*origin, score))
        })
        .collect();
    let misses = scores
        .iter()
        .filter_map(|(origin, s)| {
            s.total_error.map(|percent| Miss {
                percent,
                history_days: *origin,
            })
        })
        .collect();
    let scores: Vec<WindowScore> = scores.into_iter().map(|(_, s)| s).collect();
    Some(Scored {
        accuracy: summarise(&target.name, choice.to_string(), plan, &scores),
        misses,
    })
}

fn score_window(train: &[f64], actual: &[f64], forecast: &[f64], bounds: &[Bounds]) -> WindowScore {
    let h = actual.len() as f64;
    let errors: Vec<f64> = forecast.iter().zip(actual).map(|(m, a)| m - a).collect();
    let nonzero: Vec<f64> = errors
        .iter()
        .zip(actual)
        .filter(|(_, a)| **a != 0.0)
        .map(|(e, a)| (e / a).abs())
        .collect();
    let symmetric: Vec<f64> = forecast
        .iter()
        .zip(actual)
        .filter(|(m, a)| m.abs() + a.abs() > 0.0)
        .map(|(m, a)| 2.0 * (m - a).abs() / (m.abs() + a.abs()))
        .collect();
    let naive_mae = mean(
        &train
            .windows(8)
            .map(|w| (w[7] - w[0]).abs())
            .collect::<Vec<_>>(),
    );
    let mae = errors.iter().map(|e| e.abs()).sum::<f64>() / h;
    let actual_total: f64 = actual.iter().sum();
    let forecast_total: f64 = forecast.iter().sum();
    let relative = (actual_total > 0.0).then(|| (forecast_total - actual_total) / actual_total);
    let inside = |lo: fn(&Bounds) -> f64, hi: fn(&Bounds) -> f64| {
        bounds
            .iter()
            .zip(actual)
            .filter(|(b, a)| lo(b) <= **a && **a <= hi(b))
            .count() as f64
            / h
    };
    WindowScore {
        mape: mean(&nonzero).map(|m| 100.0 * m),
        smape: mean(&symmetric).map(|m| 100.0 * m),
        mase: naive_mae.filter(|s| *s > 0.0).map(|s| mae / s),
        total_error: relative.map(|r| 100.0 * r.abs()),
        bias: relative.map(|r| 100.0 * r),
        coverage80: inside(|b| b.lo80, |b| b.hi80),
        coverage95: inside(|b| b.lo95, |b| b.hi95),
    }
}

fn summarise(name: &str, model: String, plan: Plan, scores: &[WindowScore]) -> Accuracy {
    let avg = |get: fn(&WindowScore) -> Option<f64>| {
        mean(&scores.iter().filter_map(get).collect::<Vec<_>>())
    };
    Accuracy {
        series: name.to_string(),
        model,
        windows: scores.len(),
        horizon: plan.horizon,
        mape: avg(|s| s.mape),
        smape: avg(|s| s.smape),
        mase: avg(|s| s.mase),
        total_error: avg(|s| s.total_error),
        bias: avg(|s| s.bias),
        coverage80: avg(|s| Some(s.coverage80)).unwrap_or(0.0),
        coverage95: avg(|s| Some(s.coverage95)).unwrap_or(0.0),
    }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Summary of many series' accuracy under one model, as the backtest table shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The model (or `auto`).
    pub model: String,
    /// Series scored.
    pub series: usize,
    /// Mean MASE.
    pub mase_mean: Option<f64>,
    /// Median MASE.
    pub mase_median: Option<f64>,
    /// Median sMAPE, in %.
    pub smape_median: Option<f64>,
    /// Median total error, in %.
    pub total_error_median: Option<f64>,
    /// 90th percentile of the total error, in %.
    pub total_error_p90: Option<f64>,
    /// Median bias, in %.
    pub bias_median: Option<f64>,
    /// Mean 80% coverage.
    pub coverage80: Option<f64>,
    /// Mean 95% coverage.
    pub coverage95: Option<f64>,
}

/// Summarises `scores` of one model.
pub fn summary(model: &str, scores: &[Accuracy]) -> Summary {
    let collect = |get: fn(&Accuracy) -> Option<f64>| {
        let mut v: Vec<f64> = scores.iter().filter_map(get).collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let quantile =
        |v: &[f64], q: f64| (!v.is_empty()).then(|| v[((v.len() - 1) as f64 * q).round() as usize]);
    let mase = collect(|a| a.mase);
    let total = collect(|a| a.total_error);
    Summary {
        model: model.to_string(),
        series: scores.len(),
        mase_mean: mean(&mase),
        mase_median: quantile(&mase, 0.5),
        smape_median: quantile(&collect(|a| a.smape), 0.5),
        total_error_median: quantile(&total, 0.5),
        total_error_p90: quantile(&total, 0.9),
        bias_median: quantile(&collect(|a| a.bias), 0.5),
        coverage80: mean(&collect(|a| Some(a.coverage80))),
        coverage95: mean(&collect(|a| Some(a.coverage95))),
    }
}
