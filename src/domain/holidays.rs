//! The holiday calendar the forecast may fit: built-in yearly holidays and the events a
//! config lists (a sale, a local holiday, a launch day that recurs).
//!
//! Bills dip or peak on days a Fourier season is too smooth to follow and too slow to learn
//! (it needs two years). A holiday term needs one or two occurrences in the history; whether
//! it matters is then up to the fit, under a prior that keeps an effect seen once modest.
//! Built by hand: the holidays that move bills are a handful per organisation (company
//! shutdowns, promotions), not a country's public holidays, so a user-given list carries more
//! than a country table would.

use std::sync::Arc;

use super::Day;

/// A yearly holiday costcast knows the dates of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// 24 December to 1 January: offices close, batch work pauses.
    YearEnd,
    /// Thanksgiving (the fourth Thursday of November) to Cyber Monday: promotions peak.
    Thanksgiving,
}

impl Builtin {
    /// Every built-in holiday.
    pub const ALL: [Builtin; 2] = [Builtin::YearEnd, Builtin::Thanksgiving];

    /// Its name in config.
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::YearEnd => "year-end",
            Builtin::Thanksgiving => "thanksgiving",
        }
    }

    /// The holiday called `name` in config.
    pub fn parse(name: &str) -> Option<Builtin> {
        Builtin::ALL.into_iter().find(|b| b.as_str() == name)
    }

    fn contains(self, day: Day) -> bool {
        match self {
            Builtin::YearEnd => {
                (day.month() == 12 && day.day_of_month() >= 24)
                    || (day.month() == 1 && day.day_of_month() == 1)
            }
            Builtin::Thanksgiving => {
                let Some(first) = Day::from_ymd(day.year(), 11, 1) else {
                    return false;
                };
                // Thursday is weekday index 3 (Monday = 0).
                let thursday = first.add_days(((3 + 7 - first.weekday_index()) % 7) as i64 + 21);
                (0..=4).contains(&thursday.days_until(day))
            }
        }
    }
}

/// An event a config lists by its dates: every occurrence, past and future, and its length.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What it is called in notes and config.
    pub name: String,
    /// The first day of each occurrence.
    pub starts: Vec<Day>,
    /// Days each occurrence lasts, at least 1.
    pub length_days: u32,
}

impl Event {
    fn contains(&self, day: Day) -> bool {
        self.starts
            .iter()
            .any(|s| (0..i64::from(self.length_days)).contains(&s.days_until(day)))
    }
}

/// One holiday of a calendar: a built-in one, or the calendar's `n`th event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holiday {
    /// A built-in yearly holiday.
    Builtin(Builtin),
    /// An event from the config, by position.
    Event(usize),
}

/// The holidays a forecast may fit.
#[derive(Debug, Clone, PartialEq)]
pub struct HolidayCalendar {
    builtins: Vec<Builtin>,
    events: Vec<Event>,
}

/// A calendar shared by every series of a run.
pub type Holidays = Arc<HolidayCalendar>;

impl Default for HolidayCalendar {
    /// Both built-in holidays and no events.
    fn default() -> HolidayCalendar {
        HolidayCalendar::new(Builtin::ALL.to_vec(), Vec::new())
    }
}

impl HolidayCalendar {
    /// A calendar of the given built-in holidays and events.
    pub fn new(builtins: Vec<Builtin>, events: Vec<Event>) -> HolidayCalendar {
        HolidayCalendar { builtins, events }
    }

    /// Every holiday of the calendar.
    pub fn all(&self) -> impl Iterator<Item = Holiday> + '_ {
        self.builtins
            .iter()
            .map(|b| Holiday::Builtin(*b))
            .chain((0..self.events.len()).map(Holiday::Event))
    }

    /// Whether `day` is one of `holiday`'s days.
    pub fn contains(&self, holiday: Holiday, day: Day) -> bool {
        match holiday {
            Holiday::Builtin(b) => b.contains(day),
            Holiday::Event(i) => self.events.get(i).is_some_and(|e| e.contains(day)),
        }
    }

    /// Whether `day` is any holiday's day.
    pub fn any(&self, day: Day) -> bool {
        self.all().any(|h| self.contains(h, day))
    }

    /// Occurrences the history must hold before `holiday` gets a term. A weekday-of-month
    /// holiday moves through the dates, so one occurrence could be anything else that week;
    /// a listed event's dates are the user's word, so one is enough.
    pub fn min_seen(&self, holiday: Holiday) -> usize {
        match holiday {
            Holiday::Builtin(Builtin::Thanksgiving) => 2,
            Holiday::Builtin(Builtin::YearEnd) | Holiday::Event(_) => 1,
        }
    }

    /// The holiday's name, for notes.
    pub fn name(&self, holiday: Holiday) -> &str {
        match holiday {
            Holiday::Builtin(b) => b.as_str(),
            Holiday::Event(i) => self.events.get(i).map_or("event", |e| e.name.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::d;

    #[test]
    fn built_in_holidays_fall_on_their_days() {
        let c = HolidayCalendar::default();
        let thanksgiving = Holiday::Builtin(Builtin::Thanksgiving);
        // 2025: the fourth Thursday of November is the 27th; Cyber Monday is 1 December.
        assert!(c.contains(thanksgiving, d("2025-11-27")));
        assert!(c.contains(thanksgiving, d("2025-12-01")));
        assert!(!c.contains(thanksgiving, d("2025-11-26")));
        assert!(!c.contains(thanksgiving, d("2025-12-02")));
        assert!(c.any(d("2025-12-24")) && c.any(d("2026-01-01")));
        assert!(!c.any(d("2026-01-02")));
    }

    #[test]
    fn an_event_spans_its_length_from_each_start() {
        let sale = Event {
            name: "singles-day".into(),
            starts: vec![d("2024-11-11"), d("2025-11-11")],
            length_days: 2,
        };
        let c = HolidayCalendar::new(vec![], vec![sale]);
        let h = Holiday::Event(0);
        assert_eq!(c.all().collect::<Vec<_>>(), vec![h]);
        assert!(c.contains(h, d("2025-11-12")));
        assert!(!c.contains(h, d("2025-11-13")));
        assert!(!c.any(d("2025-12-25")), "no built-ins were chosen");
        assert_eq!(c.name(h), "singles-day");
    }
}
