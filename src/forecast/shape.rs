//! What a series does, in words a FinOps reader uses: its trend class, its weekly, monthly and
//! yearly patterns with their strength, and any recent change of level. Measured on the
//! prepared usage series, independent of the model chosen, so every model's forecast says the
//! same about the same series.

use super::periodic::{Charge, MonthDay};
use super::prepare::{DailySeries, median, month_days};
use super::weekdays::YearlyEvent;
use crate::domain::{LevelChange, SeriesShape, TrendClass};

/// Weeks the trend is measured over.
const TREND_WEEKS: usize = 13;
/// A trend under this many % a month either way is stable.
const STABLE_PERCENT: f64 = 5.0;
/// Weekly means further than this from the trend on average (in logs) are volatile.
const VOLATILE_SPREAD: f64 = 0.2;
/// A weekly cycle weaker than this is not reported.
const MIN_WEEKLY: f64 = 0.3;
/// A yearly correlation weaker than this is not reported.
const MIN_YEARLY: f64 = 0.5;

/// The shape of `series`, with the charges and yearly events learned from it and the model's
/// recent change.
pub fn describe(
    series: &DailySeries,
    charges: &[Charge],
    events: &[YearlyEvent],
    change: Option<LevelChange>,
) -> SeriesShape {
    let (trend, trend_percent_per_month) = trend(&series.values).unzip();
    SeriesShape {
        trend,
        trend_percent_per_month,
        weekly: weekly_strength(&series.values).filter(|s| *s >= MIN_WEEKLY),
        month_days: month_days(series).into_iter().map(|k| k.name()).collect(),
        charges: charges
            .iter()
            .map(|c| format!("every {} months on {}", c.every_months, day_name(c.key)))
            .collect(),
        events: events
            .iter()
            .map(|e| {
                let percent = 100.0 * (e.ratio - 1.0);
                format!("yearly {percent:+.0}% on {}", e.rule.name())
            })
            .collect(),
        yearly: yearly_strength(&series.values).filter(|s| *s >= MIN_YEARLY),
        change,
    }
}

fn day_name(key: MonthDay) -> String {
    match key {
        MonthDay::Day(d) => {
            let suffix = match (d % 10, d % 100) {
                (1, x) if x != 11 => "st",
                (2, x) if x != 12 => "nd",
                (3, x) if x != 13 => "rd",
                _ => "th",
            };
            format!("the {d}{suffix}")
        }
        MonthDay::Last => "the last day".into(),
    }
}

/// The trend class and % a month, from the Theil-Sen slope of the log weekly means over the
/// last 13 weeks: weekly means take the weekday cycle out, and the median of pairwise slopes
/// ignores a spike week.
fn trend(values: &[f64]) -> Option<(TrendClass, f64)> {
    let weeks: Vec<f64> = values
        .rchunks_exact(7)
        .take(TREND_WEEKS)
        .map(|w| w.iter().sum::<f64>() / 7.0)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if weeks.len() < 4 {
        return None;
    }
    if weeks.iter().all(|w| *w <= 0.0) {
        return Some((TrendClass::Stable, 0.0));
    }
    let floor = 0.01 * weeks.iter().fold(0.0f64, |a, b| a.max(*b));
    let logs: Vec<f64> = weeks.iter().map(|w| (w + floor).ln()).collect();
    let mut slopes = Vec::new();
    for i in 0..logs.len() {
        for j in i + 1..logs.len() {
            slopes.push((logs[j] - logs[i]) / (j - i) as f64);
        }
    }
    let slope = median(&mut slopes);
    let weeks_n = logs.len() as f64;
    let intercept = logs
        .iter()
        .enumerate()
        .map(|(i, l)| l - slope * i as f64)
        .sum::<f64>()
        / weeks_n;
    // The mean absolute distance from the line: one spike week moves it little, weeks that
    // swing back and forth move it a lot (a median would ignore a swing every other week).
    let spread = logs
        .iter()
        .enumerate()
        .map(|(i, l)| (l - intercept - slope * i as f64).abs())
        .sum::<f64>()
        / weeks_n;
    let percent = 100.0 * ((slope * 30.0 / 7.0).exp() - 1.0);
    let class = if spread > VOLATILE_SPREAD {
        TrendClass::Volatile
    } else if percent > STABLE_PERCENT {
        TrendClass::Rising
    } else if percent < -STABLE_PERCENT {
        TrendClass::Falling
    } else {
        TrendClass::Stable
    };
    Some((class, percent))
}

/// The strength of the weekday cycle over the last eight weeks, 1 − var(remainder) /
/// var(remainder + cycle) (Wang, Smith and Hyndman's measure), on each day's share of its week.
fn weekly_strength(values: &[f64]) -> Option<f64> {
    let weeks = (values.len() / 7).min(8);
    if weeks < 3 {
        return None;
    }
    let recent = &values[values.len() - 7 * weeks..];
    let shares: Vec<f64> = recent
        .chunks_exact(7)
        .flat_map(|w| {
            let mean = w.iter().sum::<f64>() / 7.0;
            w.iter()
                .map(move |v| if mean > 0.0 { v / mean } else { 1.0 })
        })
        .collect();
    let cycle: Vec<f64> = (0..7)
        .map(|k| shares.iter().skip(k).step_by(7).sum::<f64>() / weeks as f64)
        .collect();
    let variance = |v: &mut dyn Iterator<Item = f64>| {
        let all: Vec<f64> = v.collect();
        let m = all.iter().sum::<f64>() / all.len() as f64;
        all.iter().map(|x| (x - m).powi(2)).sum::<f64>() / all.len() as f64
    };
    let total = variance(&mut shares.iter().copied());
    let remainder = variance(&mut shares.iter().enumerate().map(|(i, s)| s - cycle[i % 7]));
    (total > 0.0).then(|| (1.0 - remainder / total).clamp(0.0, 1.0))
}

/// The correlation of the last year's 4-week means with the year before's, each relative to
/// its year's mean: how much of last year's shape came back.
fn yearly_strength(values: &[f64]) -> Option<f64> {
    let n = values.len();
    if n < 730 {
        return None;
    }
    let periods = |year: &[f64]| -> Vec<f64> {
        let mean = year.iter().sum::<f64>() / year.len() as f64;
        year.chunks_exact(28)
            .map(|c| c.iter().sum::<f64>() / 28.0 / mean.max(1e-9))
            .collect()
    };
    let (a, b) = (
        periods(&values[n - 730..n - 365]),
        periods(&values[n - 365..]),
    );
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (ma, mb) = (mean(&a), mean(&b));
    let cov: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    (va > 0.0 && vb > 0.0).then(|| (cov / (va * vb).sqrt()).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<f64>) -> DailySeries {
        DailySeries::from_2024(values)
    }

    #[test]
    fn a_growing_bill_with_weekends_is_rising_and_weekly() {
        let values = (0..200)
            .map(|t| {
                let weekend = if t % 7 >= 5 { 0.5 } else { 1.0 };
                100.0 * (1.0 + 0.004 * t as f64) * weekend
            })
            .collect();
        let shape = describe(&series(values), &[], &[], None);
        assert_eq!(shape.trend, Some(TrendClass::Rising));
        let percent = shape.trend_percent_per_month.unwrap();
        assert!((5.0..15.0).contains(&percent), "{percent}");
        assert!(shape.weekly.unwrap() > 0.9, "{:?}", shape.weekly);
        assert_eq!(shape.yearly, None);
    }

    #[test]
    fn a_flat_bill_is_stable_with_no_cycle_and_a_wild_one_is_volatile() {
        let flat = describe(&series(vec![50.0; 120]), &[], &[], None);
        assert_eq!(flat.trend, Some(TrendClass::Stable));
        assert_eq!(flat.weekly, None);
        let wild: Vec<f64> = (0..120)
            .map(|t| if (t / 7) % 2 == 0 { 10.0 } else { 100.0 })
            .collect();
        assert_eq!(
            describe(&series(wild), &[], &[], None).trend,
            Some(TrendClass::Volatile)
        );
    }
}
