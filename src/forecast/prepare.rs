//! Turning stored daily amounts into a series a model can fit: gaps filled, outliers smoothed.

use crate::domain::Day;

/// A dense daily series from `start`, one value a day.
#[derive(Debug, Clone, PartialEq)]
pub struct DailySeries {
    /// The first day.
    pub start: Day,
    /// One value a day.
    pub values: Vec<f64>,
}

impl DailySeries {
    /// The day of value `i`.
    pub fn day(&self, i: usize) -> Day {
        self.start.add_days(i as i64)
    }

    /// The series as `(day, value)` points.
    pub fn points(&self) -> Vec<(Day, f64)> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, v)| (self.day(i), *v))
            .collect()
    }

    /// Builds the series from sparse `(day, amount)` points (summing repeats) through `end`.
    /// A missing day after the first point is zero spend; before the first point the series
    /// does not exist. `None` when no point falls on or before `end`.
    pub fn from_points(points: &[(Day, f64)], end: Day) -> Option<DailySeries> {
        let start = points.iter().map(|(d, _)| *d).filter(|d| *d <= end).min()?;
        let mut values = vec![0.0; (start.days_until(end) + 1) as usize];
        for (day, amount) in points {
            if *day >= start && *day <= end {
                values[start.days_until(*day) as usize] += amount;
            }
        }
        Some(DailySeries { start, values })
    }
}

/// A value the smoother replaced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outlier {
    /// Index in the series.
    pub index: usize,
    /// The original value.
    pub actual: f64,
    /// The value used instead.
    pub expected: f64,
}

/// How far from the robust baseline, in robust standard deviations, a day must be to count as
/// an outlier. Five keeps ordinary noise (and weekly cycles, which the baseline follows) in.
const OUTLIER_SIGMAS: f64 = 5.0;

/// Below this share of the baseline, a deviation is not worth smoothing however regular the
/// series is.
const MIN_RELATIVE_DEVIATION: f64 = 0.15;

/// Months of history from which a steady month-start effect is recognised.
const MIN_MONTH_STARTS: usize = 3;

/// Replaces outliers by a robust baseline and returns them.
///
/// The baseline of day `t` is the median of the same weekday in the three weeks either side,
/// so weekday/weekend cycles and level shifts (a service launch) are not flagged, while a
/// runaway job lasting a few days is. A 1st of the month that is high every month (a fee
/// billed with usage) is structure, not an anomaly: the baseline of the 1st is scaled by the
/// median ratio of the 1sts to their baselines. The scale is the median absolute deviation of
/// the residuals. Hand-written: augurs' outlier module finds outlying *series* in a group, not
/// outlying days within one series.
pub fn smooth_outliers(series: &DailySeries) -> (Vec<f64>, Vec<Outlier>) {
    let values = &series.values;
    let n = values.len();
    if n < 21 {
        return (values.to_vec(), Vec::new());
    }
    let mut baseline: Vec<f64> = (0..n)
        .map(|t| {
            let mut window: Vec<f64> = (-3i64..=3)
                .map(|k| t as i64 + 7 * k)
                .filter(|&i| i >= 0 && (i as usize) < n)
                .map(|i| values[i as usize])
                .collect();
            median(&mut window)
        })
        .collect();
    let firsts: Vec<usize> = (0..n)
        .filter(|t| series.day(*t).day_of_month() == 1)
        .collect();
    let mut ratios: Vec<f64> = firsts
        .iter()
        .filter(|t| baseline[**t] > 0.0)
        .map(|t| values[*t] / baseline[*t])
        .collect();
    if ratios.len() >= MIN_MONTH_STARTS {
        let month_start = median(&mut ratios);
        for t in firsts {
            baseline[t] *= month_start;
        }
    }
    let mut residuals: Vec<f64> = values.iter().zip(&baseline).map(|(v, b)| v - b).collect();
    let centre = median(&mut residuals.clone());
    let mut deviations: Vec<f64> = residuals.iter_mut().map(|r| (*r - centre).abs()).collect();
    let scale = 1.4826 * median(&mut deviations);

    let mut smoothed = values.to_vec();
    let mut outliers = Vec::new();
    for t in 0..n {
        let deviation = (values[t] - baseline[t]).abs();
        if deviation > OUTLIER_SIGMAS * scale
            && deviation > MIN_RELATIVE_DEVIATION * baseline[t].abs()
        {
            smoothed[t] = baseline[t];
            outliers.push(Outlier {
                index: t,
                actual: values[t],
                expected: baseline[t],
            });
        }
    }
    (smoothed, outliers)
}

/// The median, reordering `values`; zero for an empty slice.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let (len, mid) = (values.len(), values.len() / 2);
    let (below, upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    let upper = *upper;
    if len % 2 == 1 {
        upper
    } else {
        // The largest of the lower half is the other middle value.
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<f64>) -> DailySeries {
        DailySeries {
            start: Day::parse("2024-01-01").unwrap(),
            values,
        }
    }

    fn weekly(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| if i % 7 >= 5 { 60.0 } else { 100.0 } + (i % 3) as f64)
            .collect()
    }

    #[test]
    fn a_three_day_spike_is_smoothed_and_reported() {
        let mut y = weekly(120);
        for v in &mut y[60..63] {
            *v += 400.0;
        }
        let (smoothed, outliers) = smooth_outliers(&series(y.clone()));
        let days: Vec<usize> = outliers.iter().map(|o| o.index).collect();
        assert_eq!(days, vec![60, 61, 62]);
        assert!((smoothed[60] - 100.0).abs() < 3.0, "{}", smoothed[60]);
        assert_eq!(outliers[0].actual, y[60]);
    }

    #[test]
    fn weekends_and_a_level_shift_are_not_outliers() {
        let mut y = weekly(140);
        for v in &mut y[70..] {
            *v *= 1.8;
        }
        let (_, outliers) = smooth_outliers(&series(y));
        assert!(outliers.is_empty(), "{outliers:?}");
    }

    #[test]
    fn missing_days_are_zero_and_nothing_exists_before_the_first_point() {
        let d = |s: &str| Day::parse(s).unwrap();
        let s = DailySeries::from_points(
            &[
                (d("2024-01-03"), 5.0),
                (d("2024-01-05"), 2.0),
                (d("2024-01-05"), 1.0),
            ],
            d("2024-01-06"),
        )
        .unwrap();
        assert_eq!(s.start, d("2024-01-03"));
        assert_eq!(s.values, vec![5.0, 0.0, 3.0, 0.0]);
    }
}
