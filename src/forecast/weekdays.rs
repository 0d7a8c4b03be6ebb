//! Days named by their weekday in the month: the second Tuesday, the last Friday, the day after
//! the fourth Thursday of November.
//!
//! Patch days, payroll runs and promotions follow these, and they move through the dates: a
//! day-of-month key smears a "second Tuesday" over seven dates, and a date-based yearly season
//! puts Black Friday on the wrong day every year. A monthly one is a term of the fit (see
//! `prepare::month_days`); a yearly one is learned here from the outlying days of two years.
//! Dates come from chrono's `from_weekday_of_month_opt`; learning which rule a spike follows
//! is hand-written, as no crate infers calendars from data.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Weekday};

use crate::domain::Day;

/// Which of a month's weekdays of one kind: the first to the fourth, or the last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WeekOfMonth {
    /// The `n`th, 1 to 4 (a fifth is not in every month; it is `Last` where it is).
    Nth(u8),
    /// The last one in the month.
    Last,
}

/// A weekday of the month, such as the second Tuesday.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WeekdayOfMonth {
    /// Which one in the month.
    pub week: WeekOfMonth,
    /// Monday = 0.
    pub weekday: u32,
}

const WEEKDAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const MONTH_NAMES: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl WeekdayOfMonth {
    /// The keys `day` has: its `n`th weekday for the first four weeks, and `Last` in the last
    /// seven days of its month.
    pub fn keys(day: Day) -> impl Iterator<Item = WeekdayOfMonth> {
        let weekday = day.weekday_index();
        let n = (day.day_of_month() - 1) / 7 + 1;
        let nth = (n <= 4).then_some(WeekOfMonth::Nth(n as u8));
        let last = (day.add_days(7).month() != day.month()).then_some(WeekOfMonth::Last);
        nth.into_iter()
            .chain(last)
            .map(move |week| WeekdayOfMonth { week, weekday })
    }

    /// The day it falls on in the month `month` of `year`.
    pub fn day_in(self, year: i32, month: u32) -> Option<Day> {
        let weekday = Weekday::try_from(self.weekday as u8).ok()?;
        let date = match self.week {
            WeekOfMonth::Nth(n) => NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)?,
            WeekOfMonth::Last => {
                let end = Day::from_ymd(year, month, 1)?.month_end();
                end.add_days(-(i64::from((end.weekday_index() + 7 - self.weekday) % 7)))
                    .date()
            }
        };
        Some(Day::from_date(date))
    }

    /// Whether `day` is this weekday of its month.
    pub fn contains(self, day: Day) -> bool {
        self.day_in(day.year(), day.month()) == Some(day)
    }

    /// Its name in reports, e.g. `2nd Tue`, `last Fri`.
    pub fn name(self) -> String {
        let weekday = WEEKDAY_NAMES[self.weekday as usize % 7];
        match self.week {
            WeekOfMonth::Nth(n) => {
                let suffix = ["st", "nd", "rd", "th"][usize::from(n.clamp(1, 4)) - 1];
                format!("{n}{suffix} {weekday}")
            }
            WeekOfMonth::Last => format!("last {weekday}"),
        }
    }
}

/// A yearly day fixed by a weekday of a month and a count of days after it: Black Friday is one
/// day after the fourth Thursday of November, Memorial Day the last Monday of May.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearlyRule {
    /// The month of the anchor, 1 to 12.
    pub month: u32,
    /// The weekday of that month the rule counts from.
    pub anchor: WeekdayOfMonth,
    /// Days after the anchor, 0 to 6.
    pub offset: u32,
}

impl YearlyRule {
    /// The day the rule gives in `year`.
    pub fn day_in(self, year: i32) -> Option<Day> {
        self.anchor
            .day_in(year, self.month)
            .map(|a| a.add_days(i64::from(self.offset)))
    }

    /// Its name in reports, e.g. `1 day after the 4th Thu of November`.
    pub fn name(self) -> String {
        let month = MONTH_NAMES[(self.month as usize + 11) % 12];
        match self.offset {
            0 => format!("the {} of {month}", self.anchor.name()),
            1 => format!("1 day after the {} of {month}", self.anchor.name()),
            k => format!("{k} days after the {} of {month}", self.anchor.name()),
        }
    }
}

/// A yearly event learned from the history: its rule and how far it moved the day's cost.
#[derive(Debug, Clone, PartialEq)]
pub struct YearlyEvent {
    /// When it falls.
    pub rule: YearlyRule,
    /// The day's cost as a multiple of the usual (2.5 for a 150% peak, 0.6 for a 40% dip):
    /// the geometric mean over its occurrences, so it scales with the bill.
    pub ratio: f64,
    /// The occurrences that made it recurring, newest first.
    pub days: Vec<Day>,
}

/// Days after an anchor weekday an event may fall (Cyber Monday is four after Thanksgiving).
const MAX_OFFSET: u32 = 6;
/// Two occurrences whose sizes differ by more than this factor (in logs, ×2.7) are two
/// different things that happened to line up, not one event.
const MAX_LOG_RATIO_GAP: f64 = 1.0;

/// Learns the yearly weekday events among `outliers` (day, actual ÷ expected) of a history
/// ending on `end`. An outlying day of the last year is an event when a rule (a weekday of its
/// month, or up to six days after one) gives a day of an earlier year that was outlying the
/// same way and by a similar factor. Several rules often fit (Black Friday is also the last
/// Friday of November in most years); the one matching the most years wins, then an `n`th over
/// a last (holidays that anchor promotions are mostly `n`th: Thanksgiving, Labor Day), then the
/// smallest offset.
pub fn learn(outliers: &[(Day, f64)], end: Day) -> Vec<YearlyEvent> {
    let ratios: BTreeMap<Day, f64> = outliers
        .iter()
        .filter(|(_, r)| r.is_finite() && *r > 0.0)
        .copied()
        .collect();
    let Some(first) = ratios.keys().next().copied() else {
        return Vec::new();
    };
    let last_year = end.add_days(-365);
    let mut out: Vec<YearlyEvent> = Vec::new();
    for (&day, &ratio) in ratios.range(last_year.add_days(1)..=end) {
        let same_way =
            |r: f64| (r > 1.0) == (ratio > 1.0) && (r.ln() - ratio.ln()).abs() < MAX_LOG_RATIO_GAP;
        let candidates = (0..=MAX_OFFSET).flat_map(|offset| {
            let anchor_day = day.add_days(-i64::from(offset));
            WeekdayOfMonth::keys(anchor_day).map(move |anchor| YearlyRule {
                month: anchor_day.month(),
                anchor,
                offset,
            })
        });
        // Earlier occurrences of a rule, newest first, for as long as each year had one.
        let occurrences = |rule: YearlyRule| -> Vec<(Day, f64)> {
            let anchor_year = day.add_days(-i64::from(rule.offset)).year();
            (1..)
                .map_while(|back| rule.day_in(anchor_year - back))
                .take_while(|d| *d >= first)
                .map_while(|d| ratios.get(&d).filter(|r| same_way(**r)).map(|r| (d, *r)))
                .collect()
        };
        let best = candidates
            .map(|rule| (rule, occurrences(rule)))
            .filter(|(_, earlier)| !earlier.is_empty())
            .min_by_key(|(rule, earlier)| {
                let last = rule.anchor.week == WeekOfMonth::Last;
                (std::cmp::Reverse(earlier.len()), last, rule.offset)
            });
        if let Some((rule, earlier)) = best {
            let logs: f64 = earlier.iter().map(|(_, r)| r.ln()).sum::<f64>() + ratio.ln();
            out.push(YearlyEvent {
                rule,
                ratio: (logs / (earlier.len() + 1) as f64).exp(),
                days: std::iter::once(day)
                    .chain(earlier.iter().map(|(d, _)| *d))
                    .collect(),
            });
        }
    }
    out
}

/// The factor each of the `horizon` days after `end` is multiplied by: an event's ratio on its
/// day, 1 elsewhere.
pub fn factors(events: &[YearlyEvent], end: Day, horizon: usize) -> Vec<f64> {
    (1..=horizon as i64)
        .map(|h| {
            let day = end.add_days(h);
            events
                .iter()
                .filter(|e| {
                    [day.year(), day.year() - 1]
                        .into_iter()
                        .any(|y| e.rule.day_in(y) == Some(day))
                })
                .fold(1.0, |f, e| f * e.ratio)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::d;

    fn black_friday(year: i32) -> Day {
        YearlyRule {
            month: 11,
            anchor: WeekdayOfMonth {
                week: WeekOfMonth::Nth(4),
                weekday: 3,
            },
            offset: 1,
        }
        .day_in(year)
        .unwrap()
    }

    #[test]
    fn weekdays_of_the_month_fall_on_their_days() {
        // December 2026 starts on a Tuesday: its second Tuesday is the 8th, its last Thursday
        // the 31st, which is also a "last" key but not a fifth "nth".
        let second_tuesday = WeekdayOfMonth {
            week: WeekOfMonth::Nth(2),
            weekday: 1,
        };
        assert_eq!(second_tuesday.day_in(2026, 12), Some(d("2026-12-08")));
        assert!(second_tuesday.contains(d("2026-12-08")));
        assert!(!second_tuesday.contains(d("2026-12-15")));
        let keys: Vec<_> = WeekdayOfMonth::keys(d("2026-12-31")).collect();
        assert_eq!(
            keys,
            vec![WeekdayOfMonth {
                week: WeekOfMonth::Last,
                weekday: 3
            }]
        );
        assert_eq!(keys[0].name(), "last Thu");
        assert_eq!(WeekdayOfMonth::keys(d("2026-12-24")).count(), 1);
        assert_eq!(WeekdayOfMonth::keys(d("2026-12-25")).count(), 2);
        assert_eq!(black_friday(2024), d("2024-11-29"));
        assert_eq!(black_friday(2025), d("2025-11-28"));
    }

    #[test]
    fn a_peak_the_day_after_the_fourth_thursday_is_learned_and_forecast() {
        // Black Friday was the fifth Friday of November 2024 and the fourth in 2025: "the 4th
        // Friday" fits one year only, "the last Friday" fits both but loses to the nth rule,
        // "one day after the fourth Thursday". An unrelated spike each year (17 March 2025,
        // 2 April 2024) does not line up and is not an event.
        let outliers = vec![
            (d("2024-04-02"), 3.0),
            (d("2024-11-29"), 2.4),
            (d("2025-03-17"), 3.0),
            (d("2025-11-28"), 2.6),
        ];
        let events = learn(&outliers, d("2026-01-31"));
        assert_eq!(events.len(), 1, "{events:?}");
        let event = &events[0];
        assert_eq!(event.rule.name(), "1 day after the 4th Thu of November");
        assert!((event.ratio - (2.4f64 * 2.6).sqrt()).abs() < 1e-12);
        // Forecast from 2026-10-31: Black Friday 2026 is 27 November, day 27 of the horizon.
        let f = factors(&events, d("2026-10-31"), 60);
        assert!((f[26] - event.ratio).abs() < 1e-12);
        assert_eq!(f.iter().filter(|x| **x != 1.0).count(), 1);
    }

    #[test]
    fn a_dip_and_a_peak_do_not_pair_and_one_year_is_not_enough() {
        let outliers = vec![(d("2024-11-29"), 0.5), (d("2025-11-28"), 2.6)];
        assert!(learn(&outliers, d("2026-01-31")).is_empty());
        assert!(learn(&[(d("2025-11-28"), 2.6)], d("2026-01-31")).is_empty());
    }
}
