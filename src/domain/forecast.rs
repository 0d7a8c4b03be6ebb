use std::fmt;

use serde::{Deserialize, Serialize};

use super::Day;

/// The model that produced a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// A robust regression of log cost on trend, level shifts, weekday, the 1st of the month and
    /// (with two years of history) the yearly season: the default.
    Calendar,
    /// MSTL decomposition (weekly, plus yearly with two years of history) with an AutoETS trend.
    MstlEts,
    /// Non-seasonal AutoETS: a baseline.
    Ets,
    /// Prophet (augurs, Stan compiled to WebAssembly); only in builds with the `prophet` feature.
    Prophet,
    /// The last complete week repeated: the fallback for series too short to decompose.
    SeasonalNaive,
}

impl ModelKind {
    /// The stable name stored and shown in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Calendar => "calendar",
            ModelKind::MstlEts => "mstl-ets",
            ModelKind::Ets => "ets",
            ModelKind::Prophet => "prophet",
            ModelKind::SeasonalNaive => "seasonal-naive",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Every model, the default first.
    pub const ALL: [ModelKind; 5] = [
        ModelKind::Calendar,
        ModelKind::MstlEts,
        ModelKind::Ets,
        ModelKind::SeasonalNaive,
        ModelKind::Prophet,
    ];

    /// The models this build can fit: Prophet needs the `prophet` cargo feature.
    pub fn available() -> Vec<ModelKind> {
        ModelKind::ALL
            .into_iter()
            .filter(|k| *k != ModelKind::Prophet || cfg!(feature = "prophet"))
            .collect()
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which model forecasts a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelChoice {
    /// Per series, the model with the smallest error in a rolling-origin backtest on the
    /// series' own history.
    Auto,
    /// One model for every series.
    Fixed(ModelKind),
}

impl Default for ModelChoice {
    fn default() -> Self {
        ModelChoice::Fixed(ModelKind::Calendar)
    }
}

impl ModelChoice {
    /// `auto` and every model this build can fit: what a full backtest scores.
    pub fn every() -> Vec<ModelChoice> {
        let mut all = vec![ModelChoice::Auto];
        all.extend(ModelKind::available().into_iter().map(ModelChoice::Fixed));
        all
    }

    /// Parses `auto` or the name of a model this build can fit.
    pub fn parse_available(s: &str) -> Option<ModelChoice> {
        match s {
            "auto" => Some(ModelChoice::Auto),
            _ => ModelKind::available()
                .into_iter()
                .find(|k| k.as_str() == s)
                .map(ModelChoice::Fixed),
        }
    }
}

impl fmt::Display for ModelChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelChoice::Auto => f.write_str("auto"),
            ModelChoice::Fixed(k) => k.fmt(f),
        }
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

/// How one model did on one series, averaged over the backtest windows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// The series.
    pub series: String,
    /// The model scored, or `auto`.
    pub model: String,
    /// Windows scored.
    pub windows: usize,
    /// Days per window.
    pub horizon: usize,
    /// Mean absolute percentage error over days with non-zero cost, in %.
    pub mape: Option<f64>,
    /// Symmetric MAPE, in %.
    pub smape: Option<f64>,
    /// Mean absolute error over the in-sample MAE of the 7-day seasonal naive forecast.
    pub mase: Option<f64>,
    /// |forecast total − actual total| / actual total over the horizon, in %.
    pub total_error: Option<f64>,
    /// (forecast total − actual total) / actual total, in %: positive means over-forecast.
    pub bias: Option<f64>,
    /// Share of held-out days inside the 80% interval.
    pub coverage80: f64,
    /// Share of held-out days inside the 95% interval.
    pub coverage95: f64,
}
