use std::fmt;

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

use super::DomainError;

/// A UTC calendar day: the grain of every cost and forecast point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day(NaiveDate);

impl Day {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Day, DomainError> {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Day)
            .map_err(|_| DomainError::BadDay(s.to_string()))
    }

    /// The day from year, month and day numbers, if it exists.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Day> {
        NaiveDate::from_ymd_opt(year, month, day).map(Day)
    }

    /// Wraps a chrono date.
    pub fn from_date(date: NaiveDate) -> Day {
        Day(date)
    }

    /// The chrono date, for storage drivers and formatting.
    pub fn date(self) -> NaiveDate {
        self.0
    }

    /// The first day an open-ended range can start on: 0001-01-01.
    pub const EARLIEST: Day = Day(NaiveDate::from_ymd_opt(1, 1, 1).expect("0001-01-01 exists"));
    /// The last day an open-ended range can end on: 9999-12-31.
    pub const LATEST: Day = Day(NaiveDate::from_ymd_opt(9999, 12, 31).expect("9999-12-31 exists"));

    /// This day moved by `days` (negative goes back).
    pub fn add_days(self, days: i64) -> Day {
        Day(self.0 + Duration::days(days))
    }

    /// Whole days from `self` to `other` (positive when `other` is later).
    pub fn days_until(self, other: Day) -> i64 {
        (other.0 - self.0).num_days()
    }

    /// The first day of this day's month.
    pub fn month_start(self) -> Day {
        Day(self.0.with_day(1).unwrap_or(self.0))
    }

    /// The last day of this day's month.
    pub fn month_end(self) -> Day {
        let (y, m) = (self.0.year(), self.0.month());
        let next = if m == 12 {
            NaiveDate::from_ymd_opt(y + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(y, m + 1, 1)
        };
        next.map(|d| Day(d - Duration::days(1))).unwrap_or(self)
    }

    /// Day of the month, 1-based.
    pub fn day_of_month(self) -> u32 {
        self.0.day()
    }

    /// Day of the week, Monday = 0.
    pub fn weekday_index(self) -> u32 {
        self.0.weekday().num_days_from_monday()
    }

    /// Day of the year, 1-based.
    pub fn ordinal(self) -> u32 {
        self.0.ordinal()
    }

    /// Month number, 1-based.
    pub fn month(self) -> u32 {
        self.0.month()
    }

    /// Year number.
    pub fn year(self) -> i32 {
        self.0.year()
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl TryFrom<String> for Day {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Day, DomainError> {
        Day::parse(&s)
    }
}

impl From<Day> for String {
    fn from(d: Day) -> String {
        d.to_string()
    }
}

/// A literal `YYYY-MM-DD` day, for tests; panics on anything else.
#[cfg(test)]
pub(crate) fn d(text: &str) -> Day {
    Day::parse(text).expect("a test's literal day is a YYYY-MM-DD date")
}

impl std::str::FromStr for Day {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Day, DomainError> {
        Day::parse(s)
    }
}

/// An inclusive range of days, never empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRange {
    start: Day,
    end: Day,
}

impl DayRange {
    /// The days from `start` to `end`, both included.
    pub fn new(start: Day, end: Day) -> Result<DayRange, DomainError> {
        if end < start {
            return Err(DomainError::EmptyRange { start, end });
        }
        Ok(DayRange { start, end })
    }

    /// The month that contains `day`.
    pub fn month_of(day: Day) -> DayRange {
        DayRange {
            start: day.month_start(),
            end: day.month_end(),
        }
    }

    /// First day.
    pub fn start(self) -> Day {
        self.start
    }

    /// Last day, included.
    pub fn end(self) -> Day {
        self.end
    }

    /// Number of days in the range.
    pub fn len_days(self) -> usize {
        (self.start.days_until(self.end) + 1) as usize
    }

    /// Whether `day` falls inside.
    pub fn contains(self, day: Day) -> bool {
        self.start <= day && day <= self.end
    }

    /// Every day in order.
    pub fn days(self) -> impl Iterator<Item = Day> {
        (0..self.len_days() as i64).map(move |i| self.start.add_days(i))
    }
}

impl fmt::Display for DayRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

/// Days as disjoint ranges in order, never empty: what a batch of ingested data covers, so
/// that the days a file holds are replaced and the days between them are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaySpans(Vec<DayRange>);

impl DaySpans {
    /// One range.
    pub fn of(range: DayRange) -> DaySpans {
        DaySpans(vec![range])
    }

    /// The runs of consecutive days among `days` (in any order, repeats allowed); `None`
    /// without a day.
    pub fn runs(days: impl IntoIterator<Item = Day>) -> Option<DaySpans> {
        let days: std::collections::BTreeSet<Day> = days.into_iter().collect();
        let mut spans: Vec<DayRange> = Vec::new();
        for day in days {
            match spans.last_mut() {
                Some(last) if last.end.add_days(1) == day => last.end = day,
                _ => spans.push(DayRange {
                    start: day,
                    end: day,
                }),
            }
        }
        (!spans.is_empty()).then_some(DaySpans(spans))
    }

    /// The ranges, oldest first.
    pub fn ranges(&self) -> &[DayRange] {
        &self.0
    }

    /// Number of days covered.
    pub fn len_days(&self) -> usize {
        self.0.iter().map(|r| r.len_days()).sum()
    }
}

impl fmt::Display for DaySpans {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ranges: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&ranges.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_days_are_the_days_present_and_nothing_between() {
        let d = |s: &str| Day::parse(s).unwrap();
        let spans = DaySpans::runs([
            d("2025-06-03"),
            d("2025-03-15"),
            d("2025-06-01"),
            d("2025-06-02"),
            d("2025-06-02"),
        ])
        .unwrap();
        assert_eq!(
            spans.to_string(),
            "2025-03-15..2025-03-15, 2025-06-01..2025-06-03"
        );
        assert_eq!(spans.len_days(), 4);
        assert!(DaySpans::runs([]).is_none());
    }

    #[test]
    fn month_end_handles_december_and_leap_years() {
        assert_eq!(
            Day::parse("2024-12-15").unwrap().month_end().to_string(),
            "2024-12-31"
        );
        assert_eq!(
            Day::parse("2024-02-03").unwrap().month_end().to_string(),
            "2024-02-29"
        );
        assert_eq!(
            Day::parse("2025-02-03").unwrap().month_end().to_string(),
            "2025-02-28"
        );
    }

    #[test]
    fn a_range_that_ends_before_it_starts_is_refused() {
        let a = Day::parse("2024-01-02").unwrap();
        let b = Day::parse("2024-01-01").unwrap();
        assert!(DayRange::new(a, b).is_err());
        assert_eq!(DayRange::new(b, a).unwrap().len_days(), 2);
    }

    #[test]
    fn a_malformed_day_is_named_in_the_error() {
        let err = Day::parse("2024-13-01").unwrap_err();
        assert!(err.to_string().contains("2024-13-01"));
    }
}
