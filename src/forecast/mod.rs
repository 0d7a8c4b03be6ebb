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
pub mod calibrate;
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
    Anomaly, DailyForecast, Day, ModelChoice, ModelKind, SeriesForecast, SeriesShape,
};
pub use calibrate::{calibrate_by_backtest, calibrate_level};
use model::fit_and_forecast;
use prepare::{DailySeries, Excursion, smooth_outliers};
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
    use crate::domain::d;

    #[test]
    fn a_fee_on_the_first_recurs_on_the_first() {
        let fees = vec![(d("2024-01-01"), 500.0), (d("2024-02-01"), 520.0)];
        let f = recurring_forecast(&fees, d("2024-02-20"), 45).unwrap();
        // Day 1 of the horizon is 2024-02-21; 2024-03-01 is index 9; 2024-04-01 index 40.
        assert_eq!(f[9], 520.0);
        assert_eq!(f[40], 520.0);
        assert_eq!(f.iter().filter(|v| **v != 0.0).count(), 2);
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
