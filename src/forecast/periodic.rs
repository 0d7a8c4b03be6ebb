//! Charges that recur on a day of the month, learned from the days they were billed: monthly,
//! every two, three or six months, or once a year, on any day including the month's last.
//!
//! A support plan on the 1st, a reservation renewed every quarter on the 15th, an annual licence
//! on the last day of March: each is one large amount on a calendar day, not usage. Fitted as
//! usage, it is smeared over the month or flagged as an anomaly; learned as a charge, it lands on
//! its day. Hand-written: no crate learns billing calendars.

use std::collections::BTreeMap;

use chrono::{Datelike, Months};

use super::weekdays::{WeekOfMonth, WeekdayOfMonth};
use crate::domain::Day;

/// Where in its month a charge falls: the last day is its own key, because a charge billed on
/// the month's end falls on the 28th to the 31st.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MonthDay {
    /// A fixed day of the month, 1 to 27 (or later, when it is not the month's last).
    Day(u32),
    /// The last day of the month.
    Last,
}

impl MonthDay {
    /// The key of a day: the last day of its month (from the 28th on) is `Last`.
    pub fn of(day: Day) -> MonthDay {
        if day.day_of_month() >= 28 && day == day.month_end() {
            MonthDay::Last
        } else {
            MonthDay::Day(day.day_of_month())
        }
    }
}

/// A day of the month usage may be steadily off on: a date (a fee on the 15th) or a weekday
/// of the month (a batch run on the second Tuesday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MonthlyDay {
    /// A date of the month, or its last day.
    Date(MonthDay),
    /// A weekday of the month.
    Weekday(WeekdayOfMonth),
}

impl MonthlyDay {
    /// Every key `day` has: its date and its weekdays of the month.
    pub fn keys(day: Day) -> impl Iterator<Item = MonthlyDay> {
        std::iter::once(MonthlyDay::Date(MonthDay::of(day)))
            .chain(WeekdayOfMonth::keys(day).map(MonthlyDay::Weekday))
    }

    /// Whether `day` has this key.
    pub fn contains(self, day: Day) -> bool {
        match self {
            MonthlyDay::Date(key) => MonthDay::of(day) == key,
            MonthlyDay::Weekday(key) => key.contains(day),
        }
    }

    /// Its name in reports: `1`, `15`, `last`, `2nd Tue`.
    pub fn name(self) -> String {
        match self {
            MonthlyDay::Date(MonthDay::Day(d)) => d.to_string(),
            MonthlyDay::Date(MonthDay::Last) => "last".into(),
            MonthlyDay::Weekday(key) => key.name(),
        }
    }
}

impl MonthlyDay {
    /// Slots of [`MonthlyDay::slot`]: dates 1 to 31, the last day, five weeks of seven days.
    pub const SLOTS: usize = 32 + 5 * 7;

    /// A dense index in the keys' own order, so a table indexed by it lists them as a sorted
    /// map would.
    pub fn slot(self) -> usize {
        match self {
            MonthlyDay::Date(MonthDay::Day(d)) => d.clamp(1, 31) as usize - 1,
            MonthlyDay::Date(MonthDay::Last) => 31,
            MonthlyDay::Weekday(w) => {
                let week = match w.week {
                    WeekOfMonth::Nth(n) => usize::from(n.clamp(1, 4)) - 1,
                    WeekOfMonth::Last => 4,
                };
                32 + 7 * week + w.weekday as usize % 7
            }
        }
    }
}

/// The keys of one day: its date and up to two weekdays of the month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayKeys {
    date: MonthDay,
    weekdays: [Option<WeekdayOfMonth>; 2],
}

impl DayKeys {
    /// The keys of `n` consecutive days from `start`, each as [`MonthlyDay::keys`] gives them.
    /// Found by stepping through the calendar: the smoother and the fit ask for every day's
    /// keys, and date arithmetic for each was a quarter of a forecast's time.
    pub fn of_days(start: Day, n: usize) -> Vec<DayKeys> {
        let (mut year, mut month) = (start.year(), start.month());
        let mut dom = start.day_of_month();
        let mut weekday = start.weekday_index();
        let mut length = start.month_end().day_of_month();
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let date = match dom >= 28 && dom == length {
                true => MonthDay::Last,
                false => MonthDay::Day(dom),
            };
            let week = (dom - 1) / 7 + 1;
            let nth = (week <= 4).then_some(WeekOfMonth::Nth(week as u8));
            let last = (dom + 7 > length).then_some(WeekOfMonth::Last);
            out.push(DayKeys {
                date,
                weekdays: [nth, last].map(|w| w.map(|week| WeekdayOfMonth { week, weekday })),
            });
            weekday = (weekday + 1) % 7;
            dom += 1;
            if dom > length {
                dom = 1;
                (year, month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                length = Day::from_ymd(year, month, 1).map_or(31, |d| d.month_end().day_of_month());
            }
        }
        out
    }

    /// Its keys, the date first.
    pub fn iter(self) -> impl Iterator<Item = MonthlyDay> {
        std::iter::once(MonthlyDay::Date(self.date))
            .chain(self.weekdays.into_iter().flatten().map(MonthlyDay::Weekday))
    }

    /// Whether the day has `key`.
    pub fn has(&self, key: MonthlyDay) -> bool {
        match key {
            MonthlyDay::Date(date) => self.date == date,
            MonthlyDay::Weekday(w) => self.weekdays.contains(&Some(w)),
        }
    }
}

/// Months between charges that are recognised.
const PERIODS: [u32; 5] = [1, 2, 3, 6, 12];

/// A charge found to recur.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    /// Its day in the month.
    pub key: MonthDay,
    /// Months between two billings.
    pub every_months: u32,
    /// The month index (year × 12 + month − 1) of its last billing.
    pub last_month: i32,
    /// The amount of its last billing.
    pub amount: f64,
    /// The days it was billed on that made it recurring.
    pub days: Vec<Day>,
}

fn month_index(day: Day) -> i32 {
    day.year() * 12 + day.month() as i32 - 1
}

/// Learns the recurring charges among `events` (day, amount) seen in a history from `start` to
/// `end`. A key is recurring every N months when its last two billings are N months apart, no
/// billing of that key fell between them, and, for monthly charges, the month before the last
/// billing is the newest month of the history that could show it (a monthly fee that stopped is
/// not forecast). The newest billing must not be older than the period allows.
pub fn learn(events: &[(Day, f64)], start: Day, end: Day) -> Vec<Charge> {
    let mut by_key: BTreeMap<MonthDay, Vec<(Day, f64)>> = BTreeMap::new();
    for (day, amount) in events {
        if *amount > 0.0 && *day >= start && *day <= end {
            by_key
                .entry(MonthDay::of(*day))
                .or_default()
                .push((*day, *amount));
        }
    }
    let end_month = month_index(end);
    let mut out = Vec::new();
    for (key, mut billed) in by_key {
        billed.sort_by_key(|(d, _)| *d);
        let Some(&(last_day, amount)) = billed.last() else {
            continue;
        };
        let last = month_index(last_day);
        let Some(&(previous_day, _)) = billed.iter().rev().nth(1) else {
            continue;
        };
        let gap = (last - month_index(previous_day)) as u32;
        if !PERIODS.contains(&gap) {
            continue;
        }
        // The next billing must not already be overdue: a charge that stopped is not forecast.
        // A billing due this month but on a day after `end` is not overdue yet.
        let due = last + gap as i32;
        if due < end_month || (due == end_month && due_day(key, end) <= end) {
            continue;
        }
        // Before the previous billing, the key must not be billed at a shorter period (that
        // would make it monthly with a missing month, not every `gap` months).
        let members: Vec<Day> = billed
            .iter()
            .rev()
            .take_while(|(d, _)| (last - month_index(*d)) % gap as i32 == 0)
            .map(|(d, _)| *d)
            .collect();
        out.push(Charge {
            key,
            every_months: gap,
            last_month: last,
            amount,
            days: members,
        });
    }
    out
}

/// The day `key` falls on in the month of `day`.
fn due_day(key: MonthDay, day: Day) -> Day {
    match key {
        MonthDay::Last => day.month_end(),
        MonthDay::Day(d) => {
            Day::from_ymd(day.year(), day.month(), d).unwrap_or_else(|| day.month_end())
        }
    }
}

/// The learned charges on each of the `horizon` days after `end`.
pub fn forecast(charges: &[Charge], end: Day, horizon: usize) -> Vec<f64> {
    (1..=horizon as i64)
        .map(|h| {
            let day = end.add_days(h);
            let month = month_index(day);
            charges
                .iter()
                .filter(|c| {
                    (month - c.last_month) > 0
                        && (month - c.last_month) % c.every_months as i32 == 0
                        && due_day(c.key, day) == day
                })
                .fold(0.0, |total, c| total + c.amount)
        })
        .collect()
}

/// The same day `months` months before `day`, if that month has it.
pub fn months_before(day: Day, months: u32) -> Option<Day> {
    day.date()
        .checked_sub_months(Months::new(months))
        .filter(|d| d.day() == day.day_of_month())
        .map(Day::from_date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::d;

    #[test]
    fn stepping_through_the_calendar_gives_each_day_its_own_keys() {
        // 2023-01-01 to 2027-02-08: a leap year, every month length, every weekday.
        let start = d("2023-01-01");
        let table = DayKeys::of_days(start, 1500);
        for (t, keys) in table.iter().enumerate() {
            let day = start.add_days(t as i64);
            let own: Vec<MonthlyDay> = MonthlyDay::keys(day).collect();
            assert_eq!(keys.iter().collect::<Vec<_>>(), own, "{day}");
            assert!(own.iter().all(|k| keys.has(*k) && k.contains(day)), "{day}");
        }
        let mut slots: Vec<MonthlyDay> = table.iter().flat_map(|k| k.iter()).collect();
        slots.sort();
        slots.dedup();
        let ordered: Vec<usize> = slots.iter().map(|k| k.slot()).collect();
        assert!(ordered.windows(2).all(|w| w[0] < w[1]), "{ordered:?}");
        assert!(ordered.iter().all(|s| *s < MonthlyDay::SLOTS));
    }

    #[test]
    fn a_quarterly_charge_on_the_fifteenth_lands_on_its_day() {
        let events = vec![
            (d("2024-01-15"), 900.0),
            (d("2024-04-15"), 900.0),
            (d("2024-07-15"), 950.0),
        ];
        let charges = learn(&events, d("2023-12-01"), d("2024-08-20"));
        assert_eq!(charges.len(), 1);
        assert_eq!(charges[0].every_months, 3);
        assert_eq!(charges[0].days.len(), 3);
        // The horizon runs from 2024-08-21 over 80 days: 2024-10-15 is day 56.
        let f = forecast(&charges, d("2024-08-20"), 80);
        assert_eq!(f[55], 950.0);
        assert_eq!(f.iter().filter(|v| **v > 0.0).count(), 1);
    }

    #[test]
    fn a_charge_on_the_last_day_follows_the_month_end() {
        let events = vec![
            (d("2024-01-31"), 40.0),
            (d("2024-02-29"), 40.0),
            (d("2024-03-31"), 41.0),
        ];
        let charges = learn(&events, d("2024-01-01"), d("2024-04-10"));
        let f = forecast(&charges, d("2024-04-10"), 51);
        // 2024-04-30 is day 20, 2024-05-31 day 51.
        assert_eq!((f[19], f[50]), (41.0, 41.0));
        assert_eq!(f.iter().filter(|v| **v > 0.0).count(), 2);
    }

    #[test]
    fn a_yearly_renewal_recurs_a_year_later_and_a_stopped_fee_does_not() {
        let events = vec![
            (d("2023-03-10"), 5000.0),
            (d("2024-03-10"), 5200.0),
            // A monthly fee on the 5th that stopped after May.
            (d("2024-04-05"), 10.0),
            (d("2024-05-05"), 10.0),
        ];
        let charges = learn(&events, d("2023-01-01"), d("2024-12-31"));
        assert_eq!(charges.len(), 1, "{charges:?}");
        let f = forecast(&charges, d("2024-12-31"), 90);
        assert_eq!(f[68], 5200.0, "2025-03-10 is day 69");
    }
}
