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
    let accuracy = backtest::run(targets, &[choice], plan);
    for f in forecasts {
        if let Some(a) = accuracy.iter().find(|a| a.series == f.series) {
            calibrate_level(f, a);
        }
    }
    accuracy
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
    let usage = DailySeries::from_points(&target.usage, history_end)
        .map(|s| s.with_holidays(&target.holidays));
    let recurring = recurring_forecast(&target.recurring, history_end, horizon);
    if usage.is_none() && recurring.is_none() {
        return None;
    }
    let (fit, anomalies, charges, shape) = match &usage {
        Some(series) => {
            let prepared = prepare(&target.name, series);
            let charges = periodic::forecast(&prepared.charges, history_end, horizon);
            let mut fit = forecast_usage(&prepared.series, horizon, choice);
            fit.scale_days(&weekdays::factors(&prepared.events, history_end, horizon));
            let shape = shape::describe(
                &prepared.series,
                &prepared.charges,
                &prepared.events,
                fit.change,
            );
            (fit, prepared.anomalies, charges, shape)
        }
        None => {
            let mut fees_only =
                model::ModelForecast::constant(ModelKind::SeasonalNaive, 0.0, horizon);
            fees_only.note = Some("recurring charges only".to_string());
            (
                fees_only,
                Vec::new(),
                vec![0.0; horizon],
                SeriesShape::default(),
            )
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

/// A standard deviation over the mean absolute value of a normal error: σ = 1.2533 × E|X|.
const SD_PER_MEAN_ABS: f64 = 1.253_314;
/// Windows' worth of weight the model's own error estimate keeps against the backtest's.
const PRIOR_WINDOWS: f64 = 3.0;

/// Rescales a forecast's level error so the spread it implies for a total over the backtest
/// horizon agrees with the totals the backtest actually missed by.
///
/// Daily errors of a regression are correlated (a level or trend that is off is off every day),
/// and a period total's interval has to carry that. The backtest measured it directly: its
/// windows' total errors. The model's own estimate and the backtest's are pooled, weighted by
/// windows, so three windows move the interval but do not alone decide it.
pub fn calibrate_level(forecast: &mut SeriesForecast, accuracy: &Accuracy) {
    let Some(total_error) = accuracy.total_error else {
        return;
    };
    let days = accuracy.horizon.min(forecast.points.len());
    let window = &forecast.points[..days];
    let mean: f64 = window.iter().map(|p| p.mean).sum();
    let level: f64 = window.iter().map(|p| p.sd_level).sum();
    let noise_var: f64 = window.iter().map(|p| p.sd_noise * p.sd_noise).sum();
    if days == 0 || mean <= 0.0 {
        return;
    }
    let implied = (level * level + noise_var).sqrt() / mean;
    let measured = SD_PER_MEAN_ABS * total_error / 100.0;
    let windows = accuracy.windows as f64;
    let pooled = ((PRIOR_WINDOWS * implied.powi(2) + windows * measured.powi(2))
        / (PRIOR_WINDOWS + windows))
        .sqrt();
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
    fn a_total_missed_by_more_than_the_model_thought_widens_the_level_error() {
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
            shape: Default::default(),
            points: (0..30).map(point).collect(),
        };
        // Implied: sqrt(15² + 30 × 25) / 3000 ≈ 1.0%. Measured: 4% mean absolute total error
        // over 3 windows, σ ≈ 5.0%. Pooled evenly: sqrt((1.0² + 5.0²) / 2) ≈ 3.6%.
        let accuracy = Accuracy {
            series: "budget:ml".into(),
            model: "calendar".into(),
            windows: 3,
            horizon: 30,
            mape: None,
            smape: None,
            mase: None,
            total_error: Some(4.0),
            bias: Some(4.0),
            coverage80: 0.8,
            coverage95: 0.95,
        };
        calibrate_level(&mut f, &accuracy);
        let level: f64 = f.points.iter().map(|p| p.sd_level).sum();
        let sd = (level * level + 30.0 * 25.0).sqrt() / 3000.0;
        assert!((sd - 0.0361).abs() < 0.001, "relative sd of the total {sd}");
        // Daily intervals and noise are the backtested ones and stay as they were.
        assert_eq!((f.points[0].sd_noise, f.points[0].hi80), (5.0, 110.0));
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

/// Forecasts of fixed series with one structure each, against stated tolerances: what a bill
/// does and the forecast must follow.
#[cfg(test)]
mod structure_tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    use super::*;
    use crate::domain::{Event, HolidayCalendar, Holidays};

    /// `days` days from `start` of `shape(t, day)` with 4% log-normal noise.
    fn bill(start: &str, days: usize, shape: impl Fn(usize, Day) -> f64) -> (Target, Day) {
        let start = Day::parse(start).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(days as u64);
        let noise = Normal::new(0.0, 0.04).unwrap();
        let usage = (0..days)
            .map(|t| {
                let day = start.add_days(t as i64);
                {
                    let wobble: f64 = noise.sample(&mut rng);
                    (day, shape(t, day) * wobble.exp())
                }
            })
            .collect();
        let target = Target::plain("t", usage);
        (target, start.add_days(days as i64 - 1))
    }

    fn forecast(target: &Target, end: Day, horizon: usize) -> SeriesForecast {
        forecast_with(target, end, horizon, ModelChoice::default())
    }

    fn forecast_with(
        target: &Target,
        end: Day,
        horizon: usize,
        choice: ModelChoice,
    ) -> SeriesForecast {
        forecast_target(target, end, horizon, choice).unwrap().0
    }

    fn total(f: &SeriesForecast, days: usize) -> f64 {
        f.points[..days].iter().map(|p| p.mean).sum()
    }

    fn weekday(day: Day) -> f64 {
        if day.weekday_index() >= 5 { 0.7 } else { 1.0 }
    }

    #[test]
    fn a_step_three_and_seven_days_before_the_cut_is_followed() {
        // Spend rises 50% and stays. Three days in, the 30-day total is within 12% of the new
        // level's (the forecast still gives reverting some weight) and the 80% interval of the
        // total reaches it; seven days in, within 6%. Before any step, the total is the old level.
        for (age, tolerance) in [(3, 0.12), (7, 0.06)] {
            let n = 300 + age;
            let (target, end) = bill("2024-01-01", n, |t, day| {
                1000.0 * weekday(day) * if t >= 300 { 1.5 } else { 1.0 }
            });
            let f = forecast(&target, end, 30);
            let truth: f64 = (1..=30).map(|h| 1500.0 * weekday(end.add_days(h))).sum();
            let got = total(&f, 30);
            assert!(
                (got - truth).abs() / truth < tolerance,
                "{age} days after the step: {got:.0} vs {truth:.0}"
            );
            let level: f64 = f.points.iter().map(|p| p.sd_level).sum();
            let noise: f64 = f.points.iter().map(|p| p.sd_noise.powi(2)).sum();
            let hi80 = got + model::Z80 * (level * level + noise).sqrt();
            assert!(
                hi80 >= 0.97 * truth,
                "{age} days: hi80 {hi80:.0} vs {truth:.0}"
            );
            assert!(
                f.note.as_deref().unwrap_or("").contains("spend rose"),
                "{:?}",
                f.note
            );
        }
    }

    #[test]
    fn a_step_a_week_before_a_first_year_end_is_followed() {
        // 200 days of history, none of it a December: spend rises 60% on 17 December and the
        // cut is on the 28th. The year-end days of this first December cannot tell a holiday
        // from the new level, so they do not take it: the total is within 12% of the new level's.
        let step = Day::parse("2025-12-17").unwrap();
        let (target, end) = bill("2025-06-12", 200, |_, day| {
            700.0 * weekday(day) * if day >= step { 1.6 } else { 1.0 }
        });
        assert_eq!(end.to_string(), "2025-12-28");
        let f = forecast(&target, end, 30);
        let truth: f64 = (1..=30).map(|h| 1120.0 * weekday(end.add_days(h))).sum();
        let got = total(&f, 30);
        assert!(
            (got - truth).abs() / truth < 0.12,
            "{got:.0} vs {truth:.0}: {:?}",
            f.note
        );
    }

    #[test]
    fn a_jump_after_weeks_of_growth_is_followed() {
        // Spend grows 4% a week for five weeks, then doubles six days before the cut. A bend
        // in the trend explains the newest days about as well as a step, but a doubling is a
        // jump: the total is within 15% of the new level's, not at the old one.
        let (target, end) = bill("2024-01-01", 306, |t, day| {
            let growth = 1.04f64.powf((t.saturating_sub(265)) as f64 / 7.0);
            500.0 * weekday(day) * growth * if t >= 300 { 2.0 } else { 1.0 }
        });
        let level = 500.0 * 1.04f64.powf(41.0 / 7.0) * 2.0;
        let truth: f64 = (1..=30).map(|h| level * weekday(end.add_days(h))).sum();
        let got = total(&forecast(&target, end, 30), 30);
        assert!((got - truth).abs() / truth < 0.15, "{got:.0} vs {truth:.0}");
    }

    #[test]
    fn an_excursion_like_the_runaways_that_came_back_is_likely_to_pass() {
        // Three days at 3× at the end of a bill whose runaway jobs have twice before run three
        // days at 3× and come back: less likely to hold than not, and the 30-day total stays
        // under 1.8× the usual level. The same three days on a bill with no such history are
        // most likely a new level, and the total is over 2.4× the usual.
        let shape = |spikes: bool| {
            move |t: usize, day: Day| {
                let runaway =
                    (t >= 297) || (spikes && ((120..123).contains(&t) || (220..223).contains(&t)));
                800.0 * weekday(day) * if runaway { 3.0 } else { 1.0 }
            }
        };
        let usual = |end: Day| -> f64 { (1..=30).map(|h| 800.0 * weekday(end.add_days(h))).sum() };
        let (target, end) = bill("2024-01-01", 300, shape(true));
        let f = forecast(&target, end, 30);
        let change = f.shape.change.expect("three days at 3x are a change");
        assert!(change.holds < 0.5, "{change:?}");
        assert!(
            total(&f, 30) < 1.8 * usual(end),
            "{} vs {}",
            total(&f, 30),
            usual(end)
        );
        let (target, end) = bill("2024-01-01", 300, shape(false));
        let f = forecast(&target, end, 30);
        let change = f.shape.change.expect("a change");
        assert!(change.holds > 0.8, "{change:?}");
        assert!(
            total(&f, 30) > 2.4 * usual(end),
            "{} vs {}",
            total(&f, 30),
            usual(end)
        );
    }

    #[test]
    fn a_step_down_to_zero_is_followed_too() {
        // A workload scaled to zero five days before the cut: the 30-day total is under a
        // quarter of the old level's.
        let (target, end) = bill("2024-01-01", 305, |t, day| {
            if t >= 300 { 0.0 } else { 800.0 * weekday(day) }
        });
        let f = forecast(&target, end, 30);
        let old: f64 = (1..=30).map(|h| 800.0 * weekday(end.add_days(h))).sum();
        assert!(total(&f, 30) < 0.25 * old, "{} vs {old}", total(&f, 30));
    }

    #[test]
    fn a_flattening_ramp_is_not_extrapolated_past_its_plateau() {
        // A launch ramps along a logistic curve from nothing to 2,000 a day; the cut is near the
        // top of it, with the slope of the last three months still steep. Extrapolating the
        // log-linear growth of the ramp would forecast several times the plateau. The calendar
        // model alone stays within 30% of the plateau's 30-day total (its damped, recent slope);
        // `auto`, which backtests it against a run rate on the last weeks, within 10%.
        let ramp = |t: usize| 2000.0 / (1.0 + (-(t as f64 - 330.0) / 30.0).exp());
        let (target, end) = bill("2024-01-01", 400, |t, _| ramp(t));
        let truth: f64 = (400..430).map(ramp).sum();
        for (choice, margin) in [(ModelChoice::default(), 0.30), (ModelChoice::Auto, 0.10)] {
            let f = forecast_with(&target, end, 30, choice);
            let got = total(&f, 30);
            assert!(
                (got - truth).abs() < margin * truth,
                "{choice}: {got:.0} vs {truth:.0}: {:?}",
                f.note
            );
        }
    }

    #[test]
    fn charges_on_the_fifteenth_and_every_quarter_land_on_their_days() {
        // Usage of 100 a day with a 600 charge every 15th and a 5,000 charge every quarter on
        // the last day of the quarter's month (Mar, Jun, Sep, Dec), billed with usage. The
        // forecast puts each within 10% of its amount on its day, and nothing like it elsewhere.
        let (target, end) = bill("2024-01-01", 500, |_, day| {
            let mut v = 100.0;
            if day.day_of_month() == 15 {
                v += 600.0;
            }
            if day == day.month_end() && day.month() % 3 == 0 {
                v += 5000.0;
            }
            v
        });
        // The history ends 2025-05-14: the horizon holds 05-15, 06-15 and 06-30.
        assert_eq!(end, Day::parse("2025-05-14").unwrap());
        let f = forecast(&target, end, 60);
        let on = |s: &str| {
            f.points
                .iter()
                .find(|p| p.day == Day::parse(s).unwrap())
                .unwrap()
                .mean
        };
        for (day, want, within) in [
            ("2025-05-15", 700.0, 70.0),
            ("2025-06-15", 700.0, 70.0),
            ("2025-06-30", 5100.0, 510.0),
            ("2025-05-31", 100.0, 15.0),
        ] {
            assert!((on(day) - want).abs() < within, "{day}: {}", on(day));
        }
        for p in &f.points {
            if ![15, 30].contains(&p.day.day_of_month()) {
                assert!(p.mean < 130.0, "{} {}", p.day, p.mean);
            }
        }
        // Charges that recur are not anomalies.
        let prepared = prepare("t", &DailySeries::from_points(&target.usage, end).unwrap());
        assert!(prepared.anomalies.is_empty(), "{:?}", prepared.anomalies);
    }

    #[test]
    fn a_holiday_dip_recurs() {
        // Three years in which the last week of December runs at 40% of normal: cut on
        // 2026-12-10, the forecast of 24-31 December is under 60% of the first half of December's.
        let (target, end) = bill("2024-01-01", 1075, |_, day| {
            let holiday = day.month() == 12 && day.day_of_month() >= 24;
            1000.0 * if holiday { 0.4 } else { 1.0 }
        });
        assert_eq!(end, Day::parse("2026-12-10").unwrap());
        let f = forecast(&target, end, 25);
        let mean = |from: u32, to: u32| {
            let v: Vec<f64> = f
                .points
                .iter()
                .filter(|p| (from..=to).contains(&p.day.day_of_month()) && p.day.month() == 12)
                .map(|p| p.mean)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let (dip, before) = (mean(24, 31), mean(11, 20));
        assert!(dip < 0.6 * before, "{dip:.0} vs {before:.0}");
    }

    #[test]
    fn a_run_on_the_second_tuesday_lands_on_its_day() {
        // A monthly batch run triples the second Tuesday's spend. It moves through the dates
        // (the 8th to the 14th), so no day-of-month term holds it. Cut after ten months, the
        // next two second Tuesdays are within 25% of 3,000 and the other Tuesdays within 15%
        // of 1,000.
        let second_tuesday =
            |day: Day| day.weekday_index() == 1 && (8..=14).contains(&day.day_of_month());
        let (target, end) = bill("2025-01-01", 300, |_, day| {
            1000.0 * weekday(day) * if second_tuesday(day) { 3.0 } else { 1.0 }
        });
        let f = forecast(&target, end, 60);
        let tuesdays: Vec<_> = f
            .points
            .iter()
            .filter(|p| p.day.weekday_index() == 1)
            .collect();
        let runs = tuesdays.iter().filter(|p| second_tuesday(p.day)).count();
        assert_eq!(runs, 2, "the horizon holds two second Tuesdays");
        for p in tuesdays {
            let truth = if second_tuesday(p.day) {
                3000.0
            } else {
                1000.0
            };
            let tolerance = if truth > 1000.0 { 0.25 } else { 0.15 };
            assert!(
                (p.mean - truth).abs() / truth < tolerance,
                "{}: {:.0} vs {truth:.0}",
                p.day,
                p.mean
            );
        }
        assert!(
            f.shape.month_days.contains(&"2nd Tue".to_string()),
            "{:?}",
            f.shape
        );
    }

    #[test]
    fn a_peak_the_day_after_the_fourth_thursday_of_november_recurs() {
        // Spend is 2.5× on Black Friday, the day after the fourth Thursday of November: the
        // 29th in 2024 (a fifth Friday) and the 28th in 2025. Cut on 2026-11-10, the forecast
        // of 27 November 2026 is within 25% of 2,500 and the Thursday before within 15% of
        // 1,000; neither past peak is reported as an anomaly.
        let black_friday =
            ["2024-11-29", "2025-11-28", "2026-11-27"].map(|d| Day::parse(d).unwrap());
        let (target, end) = bill("2024-01-01", 1045, |_, day| {
            1000.0
                * if black_friday.contains(&day) {
                    2.5
                } else {
                    1.0
                }
        });
        assert_eq!(end, Day::parse("2026-11-10").unwrap());
        let (f, anomalies) = forecast_target(&target, end, 30, ModelChoice::default()).unwrap();
        let on = |day: Day| f.points.iter().find(|p| p.day == day).unwrap().mean;
        let peak = on(black_friday[2]);
        let before = on(black_friday[2].add_days(-1));
        assert!((peak - 2500.0).abs() / 2500.0 < 0.25, "peak {peak:.0}");
        assert!(
            (before - 1000.0).abs() / 1000.0 < 0.15,
            "day before {before:.0}"
        );
        assert!(
            anomalies.iter().all(|a| !black_friday.contains(&a.day)),
            "{anomalies:?}"
        );
        assert_eq!(f.shape.events.len(), 1, "{:?}", f.shape.events);
        assert!(
            f.shape.events[0].ends_with("% on 1 day after the 4th Thu of November"),
            "{:?}",
            f.shape.events
        );
    }

    #[test]
    fn a_listed_event_recurs_on_its_next_dates_and_an_unlisted_one_does_not() {
        // A two-day sale that moves through July (as Prime Day does) doubles spend; it is
        // listed with its dates for 2024, 2025 and the coming 2026. Cut on 2026-07-01 after two
        // sales seen, the 2026 sale is forecast within 25% of double; without the listing a
        // date that moves is not forecast. (A sale on a fixed date is learned without a
        // listing, as a yearly charge.)
        let starts = ["2024-07-16", "2025-07-08", "2026-07-14"]
            .map(|d| Day::parse(d).unwrap())
            .to_vec();
        let on_sale = |day: Day| starts.iter().any(|s| (0..2).contains(&s.days_until(day)));
        let (mut target, end) = bill("2024-01-01", 913, |_, day| {
            1000.0 * if on_sale(day) { 2.0 } else { 1.0 }
        });
        assert_eq!(end, Day::parse("2026-07-01").unwrap());
        let on = |f: &SeriesForecast, day: &str| {
            let day = Day::parse(day).unwrap();
            f.points
                .iter()
                .find(|p| p.day == day)
                .map(|p| p.mean)
                .unwrap()
        };
        let plain = forecast(&target, end, 20);
        assert!(
            on(&plain, "2026-07-14") < 1300.0,
            "{}",
            on(&plain, "2026-07-14")
        );
        target.holidays = Holidays::new(HolidayCalendar::new(
            vec![],
            vec![Event {
                name: "sale".into(),
                starts: starts.clone(),
                length_days: 2,
            }],
        ));
        // auto too: the blend's simple models do not know the event, but the calendar model
        // shapes the days of each week the blend sets the total of.
        for choice in [ModelChoice::default(), ModelChoice::Auto] {
            let listed = forecast_with(&target, end, 20, choice);
            for day in ["2026-07-14", "2026-07-15"] {
                let v = on(&listed, day);
                assert!((v - 2000.0).abs() < 500.0, "{choice:?} {day}: {v:.0}");
            }
            let after = on(&listed, "2026-07-16");
            assert!((after - 1000.0).abs() < 200.0, "{choice:?} {after:.0}");
        }
    }
}
