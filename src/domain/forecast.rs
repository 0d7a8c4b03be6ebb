use std::fmt;

use serde::{Deserialize, Serialize};

use super::Day;

/// The model that produced a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// MSTL decomposition (weekly, plus yearly with two years of history) with an AutoETS trend.
    MstlEts,
    /// The last complete week repeated: the fallback for series too short to decompose.
    SeasonalNaive,
}

impl ModelKind {
    /// The stable name stored and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::MstlEts => "mstl-ets",
            ModelKind::SeasonalNaive => "seasonal-naive",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ModelKind> {
        match s {
            "mstl-ets" => Some(ModelKind::MstlEts),
            "seasonal-naive" => Some(ModelKind::SeasonalNaive),
            _ => None,
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One forecast day: the mean and the 80% and 95% prediction intervals, all non-negative.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DailyForecast {
    /// The day forecast.
    pub day: Day,
    /// Expected cost.
    pub mean: f64,
    /// Lower bound of the 80% interval.
    pub lo80: f64,
    /// Upper bound of the 80% interval.
    pub hi80: f64,
    /// Lower bound of the 95% interval.
    pub lo95: f64,
    /// Upper bound of the 95% interval.
    pub hi95: f64,
    /// Standard deviation of the error shared by every day of the horizon (a wrong level or
    /// trend): it adds up linearly over a period.
    pub sd_level: f64,
    /// Standard deviation of the day's own error, independent of other days: it adds up in
    /// quadrature over a period.
    pub sd_noise: f64,
}

/// A forecast of one series from the day after its last trusted day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesForecast {
    /// The series' name, e.g. `budget:team-ml` or `service=EC2|team=ml`.
    pub series: String,
    /// The model used.
    pub model: ModelKind,
    /// The last day of history the fit trusted.
    pub history_end: Day,
    /// Why a fallback model was used, if one was.
    pub note: Option<String>,
    /// One entry a day, in order.
    pub points: Vec<DailyForecast>,
}

/// A day whose cost was far from what the series' recent history predicts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Anomaly {
    /// The series it was found in.
    pub series: String,
    /// The day.
    pub day: Day,
    /// The cost billed that day.
    pub actual: f64,
    /// The smoothed value the fit used instead.
    pub expected: f64,
}
