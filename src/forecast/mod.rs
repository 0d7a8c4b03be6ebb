//! Forecasting: pure and synchronous. Callers run it under `spawn_blocking`; it spreads the
//! series over all cores with rayon and gives the same answer for the same input.
//!
//! Each target series is split into usage and recurring charges (FOCUS `ChargeCategory`
//! Purchase and Tax: support plans, commitment fees, tax). Usage is smoothed and fitted with
//! the configured model (the calendar regression by default); recurring charges repeat on the
//! same day of the month, so a fee on the 1st is neither smeared into the trend nor flagged as
//! an anomaly every month.

pub mod backtest;
pub mod blend;
pub mod calendar;
pub mod model;
pub mod periodic;
pub mod prepare;
#[cfg(feature = "prophet")]
mod prophet;
pub mod shape;
pub mod targets;
pub mod weekdays;

use rayon::prelude::*;

use crate::domain::{
    Accuracy, Anomaly, DailyForecast, Day, ModelChoice, ModelKind, SeriesForecast, SeriesShape,
};
use model::fit_and_forecast;
use prepare::{DailySeries, Excursion, median, smooth_outliers};
pub use targets::{Target, build_targets};

/// Charge categories forecast as recurring charges rather than usage.
pub const RECURRING_CATEGORIES: [&str; 2] = ["Purchase", "Tax"];

/// Forecasts and anomalies of a set of targets.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Output {
    /// One forecast per target with history.
    pub forecasts: Vec<SeriesForecast>,
    /// Days smoothed before fitting, in every target.
    pub anomalies: Vec<Anomaly>,
}

/// Backtests every target on `windows` 30-day windows of its own history with `choice` and
/// pools each of `forecasts`' level error with the totals those windows missed. The scores.
pub fn calibrate_by_backtest(
    targets: &[(Target, Day)],
    forecasts: &mut [SeriesForecast],
    choice: ModelChoice,
    windows: usize,
) -> Vec<Accuracy> {
    if windows == 0 {
        return Vec::new();
    }
    let plan = backtest::Plan {
        horizon: backtest::WINDOW_DAYS,
        windows,
    };
    let scored = backtest::run_scored(targets, &[choice], plan);
    for f in forecasts {
        if let Some(s) = scored.iter().find(|s| s.accuracy.series == f.series) {
            calibrate_level(f, plan.horizon, &s.misses);
        }
    }
    scored.into_iter().map(|s| s.accuracy).collect()
}

/// Forecasts every target `horizon_days` past its last trusted day.
pub fn forecast_targets(
    targets: &[(Target, Day)],
    horizon_days: usize,
    choice: ModelChoice,
) -> Output {
    let results: Vec<(SeriesForecast, Vec<Anomaly>)> = targets
        .par_iter()
        .filter_map(|(t, end)| forecast_target(t, *end, horizon_days, choice))
        .collect();
    let mut out = Output::default();
    for (f, a) in results {
        out.forecasts.push(f);
        out.anomalies.extend(a);
    }
    out
}

/// A usage series ready to fit: outliers smoothed, the anomalies they are reported as, and the
/// charges that recur every few months, which are taken out of the usage and forecast on their
/// days instead of being reported as anomalies.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The usage series with outliers and recurring charges replaced by the baseline.
    pub series: DailySeries,
    /// Excursions that came back.
    pub anomalies: Vec<Anomaly>,
    /// Charges learned from outlying days that recur on a calendar.
    pub charges: Vec<periodic::Charge>,
    /// Yearly peaks and dips on a weekday of a month, learned from outlying days.
    pub events: Vec<weekdays::YearlyEvent>,
}

/// Prepares the usage series `series` of target `name` for fitting.
pub fn prepare(name: &str, series: &DailySeries) -> Prepared {
    let (smoothed, outliers) = smooth_outliers(series);
    let end = series.day(series.values.len().saturating_sub(1));
    let excess: Vec<(Day, f64)> = outliers
        .iter()
        .filter(|o| o.actual > o.expected)
        .map(|o| (series.day(o.index), o.actual - o.expected))
        .collect();
    // A monthly effect is already a term of the fit; only longer periods are charges here.
    let charges: Vec<periodic::Charge> = periodic::learn(&excess, series.start, end)
        .into_iter()
        .filter(|c| c.every_months > 1)
        .collect();
    let ratios: Vec<(Day, f64)> = outliers
        .iter()
        .filter(|o| o.expected > 0.0)
        .map(|o| (series.day(o.index), o.actual / o.expected))
        .collect();
    let events = weekdays::learn(&ratios, end);
    let recurring = |day: Day| {
        charges.iter().any(|c| c.days.contains(&day))
            || events.iter().any(|e| e.days.contains(&day))
    };
    let anomalies = outliers
        .iter()
        .filter(|o| !recurring(series.day(o.index)))
        .map(|o| Anomaly {
            series: name.to_string(),
            day: series.day(o.index),
            actual: o.actual,
            expected: o.expected,
        })
        .collect();
    Prepared {
        series: DailySeries {
            start: series.start,
            values: smoothed,
            holidays: series.holidays.clone(),
            excursions: Excursion::runs(&outliers),
        },
        anomalies,
        charges,
        events,
    }
}

/// Forecasts a prepared usage series with `choice`.
pub fn forecast_usage(
    series: &DailySeries,
    horizon: usize,
    choice: ModelChoice,
) -> model::ModelForecast {
    let kind = match choice {
        ModelChoice::Fixed(kind) => kind,
        ModelChoice::Auto => ModelKind::Blend,
    };
    fit_and_forecast(series, kind, horizon)
}

/// One target's forecast, or `None` when it has no history up to `history_end`.
pub fn forecast_target(
    target: &Target,
    history_end: Day,
    horizon: usize,
    choice: ModelChoice,
) -> Option<(SeriesForecast, Vec<Anomaly>)> {
    let Forecasted {
        points,
        fit,
        prepared,
    } = forecast_days(target, history_end, horizon, choice)?;
    let (shape, anomalies) = match prepared {
        Some(p) => (
            shape::describe(&p.series, &p.charges, &p.events, fit.change),
            p.anomalies,
        ),
        None => (SeriesShape::default(), Vec::new()),
    };
    Some((
        SeriesForecast {
            series: target.name.clone(),
            model: fit.model,
            history_end,
            note: fit.note,
            shape,
            points,
        },
        anomalies,
    ))
}

/// One target's forecast days alone, as a backtest scores them: the description of the
/// series, a fifth of the time of a fit, is left out.
pub fn forecast_points(
    target: &Target,
    history_end: Day,
    horizon: usize,
    choice: ModelChoice,
) -> Option<Vec<DailyForecast>> {
    forecast_days(target, history_end, horizon, choice).map(|f| f.points)
}

/// A target's forecast days, with the fit and the prepared usage they came from.
struct Forecasted {
    points: Vec<DailyForecast>,
    fit: model::ModelForecast,
    prepared: Option<Prepared>,
}

fn forecast_days(
    target: &Target,
    history_end: Day,
    horizon: usize,
    choice: ModelChoice,
) -> Option<Forecasted> {
    let usage = DailySeries::from_points(&target.usage, history_end)
        .map(|s| s.with_holidays(&target.holidays));
    let recurring = recurring_forecast(&target.recurring, history_end, horizon);
    if usage.is_none() && recurring.is_none() {
        return None;
    }
    let (fit, charges, prepared) = match &usage {
        Some(series) => {
            let prepared = prepare(&target.name, series);
            let charges = periodic::forecast(&prepared.charges, history_end, horizon);
            let mut fit = forecast_usage(&prepared.series, horizon, choice);
            fit.scale_days(&weekdays::factors(&prepared.events, history_end, horizon));
            (fit, charges, Some(prepared))
        }
        None => {
            let mut fees_only =
                model::ModelForecast::constant(ModelKind::SeasonalNaive, 0.0, horizon);
            fees_only.note = Some("recurring charges only".to_string());
            (fees_only, vec![0.0; horizon], None)
        }
    };
    let recurring = recurring.unwrap_or_else(|| vec![0.0; horizon]);
    let points = (0..horizon)
        .map(|h| {
            let (fee, b) = (recurring[h] + charges[h], fit.bounds[h]);
            DailyForecast {
                day: history_end.add_days(h as i64 + 1),
                mean: fit.mean[h] + fee,
                lo80: b.lo80 + fee,
                hi80: b.hi80 + fee,
                lo95: b.lo95 + fee,
                hi95: b.hi95 + fee,
                sd_level: fit.sd_level[h],
                sd_noise: fit.sd_noise[h],
            }
        })
        .collect();
    Some(Forecasted {
        points,
        fit,
        prepared,
    })
}

/// For n = 1 to 24 normal errors, the `c` for which `c × median |error|` squared is an unbiased
/// estimate of their variance (2,000,000 simulated draws each). The asymptotic 1.4826 (σ over
/// the median absolute value) overstates the variance from a few windows, from three by 55%,
/// which left 80% intervals of 30-day totals on generated bills covering 86% of held-out
/// totals in the benchmark (83% with these, and the wider intervals after a recent change).
const MEDIAN_ABS_TO_SD: [f64; 24] = [
    1.001, 1.105, 1.192, 1.243, 1.274, 1.304, 1.320, 1.340, 1.349, 1.363, 1.370, 1.380, 1.386,
    1.393, 1.398, 1.402, 1.405, 1.410, 1.413, 1.417, 1.419, 1.422, 1.424, 1.427,
];
/// Windows' worth of weight the model's own error estimate keeps against the backtest's.
const PRIOR_WINDOWS: f64 = 3.0;
/// A window forecast from this much history or more counts as a whole window; one forecast
/// from less counts in proportion. A model fitted on one to three months misses by more than
/// the one fitted on the whole history: on generated bills of 120 to 200 days, whose windows
/// are forecast from 30 to 170, 80% intervals of totals covered about 92%.
const WHOLE_WINDOW_DAYS: f64 = 365.0;

/// Rescales a forecast's level error so the spread it implies for a total over `horizon` days
/// agrees with the totals the backtest windows actually missed by (`misses`).
///
/// Daily errors of a regression are correlated (a level or trend that is off is off every day),
/// and a period total's interval has to carry that. The backtest measured it directly: its
/// windows' total errors. The model's own estimate and the backtest's are pooled, weighted by
/// windows, so three windows move the interval but do not alone decide it, and windows forecast
/// from a short history count for less ([`WHOLE_WINDOW_DAYS`]). The windows' spread
/// is read from their median miss: total errors are heavy-tailed (one window holds a launch or
/// a migration), and a normal interval as wide as their mean says covers the typical month far
/// more often than 80%. Windows that ended before a recent change of level know nothing of how
/// far the new level may be off, so while the change is unsettled they may widen the interval
/// but not narrow it.
pub fn calibrate_level(forecast: &mut SeriesForecast, horizon: usize, misses: &[backtest::Miss]) {
    let mut errors: Vec<f64> = misses.iter().map(|m| m.percent).collect();
    if errors.is_empty() {
        return;
    }
    let days = horizon.min(forecast.points.len());
    let window = &forecast.points[..days];
    let mean: f64 = window.iter().map(|p| p.mean).sum();
    let level: f64 = window.iter().map(|p| p.sd_level).sum();
    let noise_var: f64 = window.iter().map(|p| p.sd_noise * p.sd_noise).sum();
    if days == 0 || mean <= 0.0 {
        return;
    }
    let implied = (level * level + noise_var).sqrt() / mean;
    let sd_per_median = MEDIAN_ABS_TO_SD[errors.len().min(MEDIAN_ABS_TO_SD.len()) - 1];
    let measured = sd_per_median * median(&mut errors) / 100.0;
    let windows: f64 = misses
        .iter()
        .map(|m| (m.history_days as f64 / WHOLE_WINDOW_DAYS).min(1.0))
        .sum();
    let mut pooled = ((PRIOR_WINDOWS * implied.powi(2) + windows * measured.powi(2))
        / (PRIOR_WINDOWS + windows))
        .sqrt();
    if forecast.shape.change.is_some_and(|c| c.holds < 1.0) {
        pooled = pooled.max(implied);
    }
    // The level error that makes the total's spread `pooled`, keeping the daily noise.
    let wanted_level = ((pooled * mean).powi(2) - noise_var).max(0.0).sqrt();
    for p in &mut forecast.points {
        p.sd_level = match level > 0.0 {
            true => p.sd_level * wanted_level / level,
            false => wanted_level / days as f64,
        };
    }
}

/// Recurring charges (Purchase, Tax) for the `horizon` days after `history_end`. A day repeats
/// the charge of the same day one month earlier (itself forecast when it falls in the horizon)
/// when that day of the month was billed two months running; charges billed every few months or
/// once a year recur on their own calendar ([`periodic`]). `None` when there are no recurring
/// charges in the last thirteen months.
fn recurring_forecast(points: &[(Day, f64)], history_end: Day, horizon: usize) -> Option<Vec<f64>> {
    let recent_start = history_end.add_days(-400);
    let history = DailySeries::from_points(points, history_end)?;
    if history
        .values
        .iter()
        .enumerate()
        .all(|(i, v)| *v == 0.0 || history.day(i) < recent_start)
    {
        return None;
    }
    let periodic: Vec<periodic::Charge> =
        periodic::learn(&history.points(), history.start, history_end)
            .into_iter()
            .filter(|c| c.every_months > 1)
            .collect();
    let mut out = periodic::forecast(&periodic, history_end, horizon);
    let value_on = |day: Day, out: &[f64]| -> Option<f64> {
        if day > history_end {
            Some(out[history_end.days_until(day) as usize - 1])
        } else if day >= history.start {
            Some(history.values[history.start.days_until(day) as usize])
        } else {
            None
        }
    };
    for h in 0..horizon {
        let day = history_end.add_days(h as i64 + 1);
        let Some(month_ago) = periodic::months_before(day, 1) else {
            continue;
        };
        let last = value_on(month_ago, &out).unwrap_or(0.0);
        // Billed two months running, or the history is too short to tell.
        let before = periodic::months_before(day, 2).and_then(|d| value_on(d, &out));
        if last != 0.0 && before.is_none_or(|v| v != 0.0) {
            out[h] = last;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LevelChange, d};

    #[test]
    fn a_fee_on_the_first_recurs_on_the_first() {
        let fees = vec![(d("2024-01-01"), 500.0), (d("2024-02-01"), 520.0)];
        let f = recurring_forecast(&fees, d("2024-02-20"), 45).unwrap();
        // Day 1 of the horizon is 2024-02-21; 2024-03-01 is index 9; 2024-04-01 index 40.
        assert_eq!(f[9], 520.0);
        assert_eq!(f[40], 520.0);
        assert_eq!(f.iter().filter(|v| **v != 0.0).count(), 2);
    }

    /// Thirty days of 100 ± 5 with a level error of 0.5 a day: the model implies a relative
    /// spread of sqrt(15² + 30 × 25) / 3000 ≈ 1.04% for the total.
    fn calibrated(errors: &[f64], change: Option<LevelChange>) -> f64 {
        calibrated_from(errors, 400, change)
    }

    /// As [`calibrated`], with every window forecast from `history_days` days.
    fn calibrated_from(errors: &[f64], history_days: usize, change: Option<LevelChange>) -> f64 {
        let day = d("2024-03-01");
        let point = |h: i64| DailyForecast {
            day: day.add_days(h),
            mean: 100.0,
            lo80: 90.0,
            hi80: 110.0,
            lo95: 85.0,
            hi95: 115.0,
            sd_level: 0.5,
            sd_noise: 5.0,
        };
        let mut f = SeriesForecast {
            series: "budget:ml".into(),
            model: ModelKind::Calendar,
            history_end: day,
            note: None,
            shape: SeriesShape {
                change,
                ..Default::default()
            },
            points: (0..30).map(point).collect(),
        };
        let misses: Vec<backtest::Miss> = errors
            .iter()
            .map(|percent| backtest::Miss {
                percent: *percent,
                history_days,
            })
            .collect();
        calibrate_level(&mut f, 30, &misses);
        // Daily intervals and noise are the backtested ones and stay as they were.
        assert_eq!((f.points[0].sd_noise, f.points[0].hi80), (5.0, 110.0));
        let level: f64 = f.points.iter().map(|p| p.sd_level).sum();
        (level * level + 30.0 * 25.0).sqrt() / 3000.0
    }

    #[test]
    fn a_total_missed_by_more_than_the_model_thought_widens_the_level_error() {
        // Measured: a 4% median miss over 3 windows, σ ≈ 1.192 × 4% = 4.77%. Pooled evenly with
        // the implied 1.04%: sqrt((1.04² + 4.77²) / 2) ≈ 3.45%.
        let sd = calibrated(&[2.0, 4.0, 9.0], None);
        assert!((sd - 0.0345).abs() < 0.001, "relative sd of the total {sd}");
    }

    #[test]
    fn windows_forecast_from_a_short_history_count_for_less() {
        // The same misses as above from 73 days of history each: 3 × 0.2 = 0.6 of a window
        // against the model's 3, sqrt((3 × 1.04² + 0.6 × 4.77²) / 3.6) ≈ 2.17%.
        let sd = calibrated_from(&[2.0, 4.0, 9.0], 73, None);
        assert!((sd - 0.0217).abs() < 0.001, "relative sd of the total {sd}");
    }

    #[test]
    fn one_window_that_missed_by_far_does_not_set_the_spread() {
        // A window that held a migration (30% off) beside two typical ones (1%): the spread
        // follows the typical month, sqrt((1.04² + 1.19²) / 2) ≈ 1.12%, not the migration.
        let sd = calibrated(&[1.0, 30.0, 1.0], None);
        assert!((sd - 0.0112).abs() < 0.001, "relative sd of the total {sd}");
    }

    #[test]
    fn windows_from_before_an_unsettled_change_do_not_narrow_its_interval() {
        let change = |holds: f64| {
            Some(LevelChange {
                day: d("2024-02-25"),
                percent: 40.0,
                holds,
            })
        };
        // Backtest windows that ended before the change missed by 0.1%: the model's 1.04%
        // stands while the change may still revert. Once it is settled they pool it down to
        // 0.74%, under the daily noise alone (sqrt(30 × 25) / 3000 ≈ 0.91%): no level error
        // is left.
        let unsettled = calibrated(&[0.1, 0.1, 0.1], change(0.8));
        assert!((unsettled - 0.0104).abs() < 0.0005, "{unsettled}");
        let settled = calibrated(&[0.1, 0.1, 0.1], change(1.0));
        assert!((settled - 0.0091).abs() < 0.0005, "{settled}");
    }

    #[test]
    fn the_same_targets_give_the_same_forecasts_on_any_number_of_threads() {
        let start = d("2024-01-01");
        let targets: Vec<(Target, Day)> = (0..24)
            .map(|i| Target {
                name: format!("t{i}"),
                usage: (0..400)
                    .map(|t| {
                        let wobble = ((t * 7919 + i * 104_729) % 97) as f64 / 97.0;
                        (start.add_days(t as i64), 100.0 + i as f64 + 20.0 * wobble)
                    })
                    .collect(),
                recurring: vec![(d("2024-12-01"), 50.0), (d("2025-01-01"), 50.0)],
                holidays: Default::default(),
            })
            .map(|t| (t, start.add_days(399)))
            .collect();
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| forecast_targets(&targets, 30, ModelChoice::default()))
        };
        let (one, many) = (run(1), run(4));
        assert_eq!(one.forecasts.len(), 24);
        assert_eq!(one, many);
    }

    #[test]
    fn forecasts_are_never_negative() {
        // A series that stepped down to nothing: the trend alone would go below zero.
        let start = d("2024-01-01");
        let usage: Vec<(Day, f64)> = (0..120)
            .map(|i| {
                (
                    start.add_days(i),
                    if i < 100 {
                        1000.0 - 9.0 * i as f64
                    } else {
                        5.0
                    },
                )
            })
            .collect();
        let target = Target::plain("t", usage);
        let (f, _) =
            forecast_target(&target, start.add_days(119), 45, ModelChoice::default()).unwrap();
        for p in &f.points {
            assert!(p.mean >= 0.0 && p.lo80 >= 0.0 && p.lo95 >= 0.0, "{p:?}");
            assert!(p.lo95 <= p.lo80 && p.lo80 <= p.mean && p.mean <= p.hi80 && p.hi80 <= p.hi95);
        }
    }
}

#[cfg(test)]
mod structure_tests;
