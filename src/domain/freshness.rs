//! Whether the data a budget rests on is fresh enough to act on.

use serde::{Deserialize, Serialize};

use super::Day;

/// A source a budget's scope draws on whose data is behind: its refresh failed in this run, or
/// its newest day is older than `act.max_data_age_days`, or both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaggingSource {
    /// The source's name.
    pub source: String,
    /// Its newest stored day before the evaluation's day; none when nothing is stored.
    pub newest_day: Option<Day>,
    /// Whether this run failed to read it.
    pub refresh_failed: bool,
    /// Whether its newest day is too old to act on.
    pub stale: bool,
}

impl LaggingSource {
    /// Days from its newest day to `as_of` (1 for data through yesterday); none without data.
    pub fn age_days(&self, as_of: Day) -> Option<i64> {
        self.newest_day.map(|d| d.days_until(as_of))
    }
}
