//! Turning stored daily amounts into a series a model can fit: gaps filled, outliers smoothed.

use super::periodic::{DayKeys, MonthlyDay};
use crate::domain::{Day, Holidays};

/// A dense daily series from `start`, one value a day.
#[derive(Debug, Clone, PartialEq)]
pub struct DailySeries {
    /// The first day.
    pub start: Day,
    /// One value a day.
    pub values: Vec<f64>,
    /// The holidays the model may fit.
    pub holidays: Holidays,
    /// Excursions of the history that came back: how often, how long and which way this
    /// series has strayed before tells a new level from another passing spike.
    pub excursions: Vec<Excursion>,
}

/// A run of outlying days that came back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Excursion {
    /// Index of its first day.
    pub start: usize,
    /// How many days it lasted.
    pub days: usize,
    /// How far it went, in logs of its days' total over what was expected of them.
    pub log_size: f64,
}

impl Excursion {
    /// The runs of consecutive outliers the same way, in order.
    pub fn runs(outliers: &[Outlier]) -> Vec<Excursion> {
        let up = |o: &Outlier| o.actual > o.expected;
        outliers
            .chunk_by(|a, b| b.index == a.index + 1 && up(a) == up(b))
            .map(|run| {
                let actual: f64 = run.iter().map(|o| o.actual).sum();
                let expected: f64 = run.iter().map(|o| o.expected).sum();
                // A floor keeps a run to or from zero finite: it counts as a tenfold move.
                let floor = 0.1 * actual.max(expected);
                Excursion {
                    start: run[0].index,
                    days: run.len(),
                    log_size: ((actual + floor) / (expected + floor)).ln(),
                }
            })
            .collect()
    }

    /// Whether a change of `log_size` lasting `days` so far looks like this excursion did:
    /// the same way, at least as long, between half and twice the size.
    pub fn resembles(&self, days: usize, log_size: f64) -> bool {
        let ratio = self.log_size / log_size;
        self.days >= days && (0.5..=2.0).contains(&ratio)
    }
}

impl DailySeries {
    /// The day of value `i`.
    pub fn day(&self, i: usize) -> Day {
        self.start.add_days(i as i64)
    }

    /// The first `days` days, with the excursions that ended within them.
    pub fn head(&self, days: usize) -> DailySeries {
        DailySeries {
            start: self.start,
            values: self.values[..days].to_vec(),
            holidays: self.holidays.clone(),
            excursions: self
                .excursions
                .iter()
                .filter(|e| e.start + e.days < days)
                .copied()
                .collect(),
        }
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
        Some(DailySeries {
            start,
            values,
            holidays: Holidays::default(),
            excursions: Vec::new(),
        })
    }

    /// The same series with the holidays of `calendar`.
    pub fn with_holidays(self, holidays: &Holidays) -> DailySeries {
        DailySeries {
            holidays: holidays.clone(),
            ..self
        }
    }
}

#[cfg(test)]
impl DailySeries {
    /// A series from Monday 2024-01-01, for tests.
    pub fn from_2024(values: Vec<f64>) -> DailySeries {
        DailySeries {
            start: Day::from_ymd(2024, 1, 1).expect("2024-01-01 is a date"),
            values,
            holidays: Holidays::default(),
            excursions: Vec::new(),
        }
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

/// Below this share of the series' typical day, a deviation is immaterial: a day that went from
/// 0.00 to 0.01 is not an anomaly however rare it is.
const MIN_MATERIAL_SHARE: f64 = 0.05;

/// Recent months a day-of-month effect is measured on: a fee that started or stopped counts
/// from when it did.
const MONTH_DAY_MONTHS: usize = 6;

/// Months of history from which a steady day-of-month effect is recognised.
const MIN_MONTH_DAYS: usize = 3;

/// The newest days, whose outliers are clipped rather than replaced (see [`smooth_outliers`]).
const UNSETTLED_DAYS: usize = 21;

/// Days after an excursion compared with the days before it to tell a spike from a new level.
const COMEBACK_DAYS: usize = 14;

/// The robust baseline of each day: the median of the same weekday in the three weeks either
/// side, so weekday/weekend cycles and level shifts older than three weeks are not flagged.
fn weekly_baseline(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    (0..n)
        .map(|t| {
            let mut window = [0.0; 7];
            let mut len = 0;
            let first = t - 7 * (t / 7).min(3);
            for i in (first..=t + 21).step_by(7).take_while(|i| *i < n) {
                window[len] = values[i];
                len += 1;
            }
            median(&mut window[..len])
        })
        .collect()
}

/// The days of the month whose cost is steadily off the weekly baseline (a fee billed with
/// usage on the 1st, the 15th, the last day; a batch run on the second Tuesday), with the
/// median ratio over the recent months.
fn month_day_effects(
    series: &DailySeries,
    keys: &[DayKeys],
    baseline: &[f64],
) -> Vec<(MonthlyDay, f64)> {
    // Indexed by slot, so the keys come out in order, as from a sorted map.
    let mut by_key = [(None, 0, [0.0; MONTH_DAY_MONTHS]); MonthlyDay::SLOTS];
    for ((v, b), day) in series.values.iter().zip(baseline).zip(keys).rev() {
        if *b > 0.0 {
            for key in day.iter() {
                let (seen, len, ratios) = &mut by_key[key.slot()];
                if *len < MONTH_DAY_MONTHS {
                    *seen = Some(key);
                    ratios[*len] = v / b;
                    *len += 1;
                }
            }
        }
    }
    let effects: Vec<(MonthlyDay, f64)> = by_key
        .iter_mut()
        .filter(|(_, len, _)| *len >= MIN_MONTH_DAYS)
        .filter_map(|(key, len, ratios)| {
            let (key, ratios) = (key.as_ref()?, &mut ratios[..*len]);
            let effect = median(ratios);
            let off = |r: &f64| (r - 1.0).abs() >= 0.5 * (effect - 1.0).abs();
            let steady = 3 * ratios.iter().filter(|r| off(r)).count() >= 2 * ratios.len();
            ((effect - 1.0).abs() >= MIN_RELATIVE_DEVIATION && steady).then_some((*key, effect))
        })
        .collect();
    // The fourth and the last of a weekday are the same day in most months: when both look
    // steady, only the stronger is a term, so the fit never holds two copies of one column.
    let stronger = |a: f64, b: f64| (a - 1.0).abs() > (b - 1.0).abs();
    effects
        .iter()
        .filter(|(key, effect)| {
            let MonthlyDay::Weekday(w) = key else {
                return true;
            };
            !effects.iter().any(|(other, e)| match other {
                MonthlyDay::Weekday(o) => {
                    o.weekday == w.weekday && o.week != w.week && stronger(*e, *effect)
                }
                MonthlyDay::Date(_) => false,
            })
        })
        .copied()
        .collect()
}

/// The days of the month with a steady effect in `series` (see [`smooth_outliers`]).
pub fn month_days(series: &DailySeries) -> Vec<MonthlyDay> {
    if series.values.len() < 21 {
        return Vec::new();
    }
    let baseline = weekly_baseline(&series.values);
    let keys = DayKeys::of_days(series.start, series.values.len());
    month_day_effects(series, &keys, &baseline)
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

/// Replaces outliers by a robust baseline and returns them.
///
/// The baseline of day `t` is the median of the same weekday in the three weeks either side
/// ([`weekly_baseline`]). A day of the month that is off every month (a fee billed with usage on
/// the 1st or the 15th) is structure, not an anomaly: its baseline is scaled by the median ratio
/// of those days to their baselines. The scale is the median absolute deviation of the
/// residuals. An anomaly is an excursion that comes back: a run of outlying days after which the
/// series stays where the run went is a change of level, and one that reaches the end of the
/// history (two days or more) may be one, which the model weighs; neither is smoothed away.
/// Hand-written: augurs' outlier module finds outlying *series* in a group, not outlying days
/// within one series.
pub fn smooth_outliers(series: &DailySeries) -> (Vec<f64>, Vec<Outlier>) {
    let values = &series.values;
    let n = values.len();
    if n < 21 {
        return (values.to_vec(), Vec::new());
    }
    let mut baseline = weekly_baseline(values);
    let keys = DayKeys::of_days(series.start, n);
    for (key, effect) in month_day_effects(series, &keys, &baseline) {
        for (b, day) in baseline.iter_mut().zip(&keys) {
            if day.has(key) {
                *b *= effect;
            }
        }
    }
    let mut residuals: Vec<f64> = values.iter().zip(&baseline).map(|(v, b)| v - b).collect();
    let centre = median(&mut residuals.clone());
    let mut deviations: Vec<f64> = residuals.iter_mut().map(|r| (*r - centre).abs()).collect();
    let scale = 1.4826 * median(&mut deviations);
    let mut positive: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
    let material = MIN_MATERIAL_SHARE * median(&mut positive);

    // How far from its baseline day `t` may be and still be usual: an outlier is further.
    let usual = |t: usize| {
        (OUTLIER_SIGMAS * scale)
            .max(MIN_RELATIVE_DEVIATION * baseline[t].abs())
            .max(material)
    };
    let flagged: Vec<bool> = (0..n)
        .map(|t| (values[t] - baseline[t]).abs() > usual(t))
        .collect();
    let mut smoothed = values.to_vec();
    let mut outliers = Vec::new();
    let mut t = 0;
    while t < n {
        if !flagged[t] {
            t += 1;
            continue;
        }
        let up = values[t] > baseline[t];
        let mut end = t;
        while end + 1 < n && flagged[end + 1] && (values[end + 1] > baseline[end + 1]) == up {
            end += 1;
        }
        // Days of a holiday that dip or peak together are the calendar's, which the model fits;
        // one day alone on a holiday may be a charge or a runaway job like any other.
        let holiday = end > t && (t..=end).all(|i| series.holidays.any(series.day(i)));
        if !holiday && !is_new_level(values, t, end, up) {
            for i in t..=end {
                // Whether an excursion of the newest weeks came back is not settled, and their
                // baseline is the level before any change that began in them: such a day is
                // clipped to the edge of the usual, which keeps its direction as evidence.
                smoothed[i] = match i + UNSETTLED_DAYS >= n {
                    true => values[i].clamp(baseline[i] - usual(i), baseline[i] + usual(i)),
                    false => baseline[i],
                };
                outliers.push(Outlier {
                    index: i,
                    actual: values[i],
                    expected: baseline[i],
                });
            }
        }
        t = end + 1;
    }
    (smoothed, outliers)
}

/// Whether the outlying run `first..=last` (upward when `up`) is a change of level rather than
/// an excursion: it reaches the end of the history and lasted two days or more, or the days
/// after it stay at least halfway to where it went. Each day is compared with the same weekday
/// before the run began.
fn is_new_level(values: &[f64], first: usize, last: usize, up: bool) -> bool {
    let n = values.len();
    if last + 1 == n {
        return last > first;
    }
    let before = |t: usize| {
        let weeks = (t - first) / 7 + 1;
        t.checked_sub(7 * weeks).map(|i| values[i])
    };
    let change = |t: usize| before(t).filter(|b| *b > 0.0).map(|b| values[t] / b - 1.0);
    let mut during: Vec<f64> = (first..=last).filter_map(change).collect();
    let mut after: Vec<f64> = (last + 1..n.min(last + 1 + COMEBACK_DAYS))
        .filter_map(change)
        .collect();
    if during.is_empty() {
        return false;
    }
    if after.is_empty() {
        return last > first;
    }
    let (run, stayed) = (median(&mut during), median(&mut after));
    match up {
        true => stayed >= 0.5 * run && run > 0.0,
        false => stayed <= 0.5 * run && run < 0.0,
    }
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
        DailySeries::from_2024(values)
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
