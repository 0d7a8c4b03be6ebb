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
    /// The last seven days' mean, shaped by the recent weekday profile: what a careful person
    /// with a spreadsheet would project.
    RunRate,
    /// `auto`'s weighted blend of the models above, weighted per series by rolling backtest.
    Blend,
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
            ModelKind::RunRate => "run-rate",
            ModelKind::Blend => "blend",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<ModelKind> {
        ModelKind::ALL
            .into_iter()
            .chain([ModelKind::Blend])
            .find(|k| k.as_str() == s)
    }

    /// Every model that can be chosen alone, the default first (a blend is `auto`'s doing).
    pub const ALL: [ModelKind; 6] = [
        ModelKind::Calendar,
        ModelKind::MstlEts,
        ModelKind::Ets,
        ModelKind::SeasonalNaive,
        ModelKind::RunRate,
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

/// Which way a series is heading over the last three months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrendClass {
    /// Growing by more than 5% a month.
    Rising,
    /// Shrinking by more than 5% a month.
    Falling,
    /// Within 5% a month either way.
    Stable,
    /// Weeks too far from any trend to name one.
    Volatile,
}

impl TrendClass {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            TrendClass::Rising => "rising",
            TrendClass::Falling => "falling",
            TrendClass::Stable => "stable",
            TrendClass::Volatile => "volatile",
        }
    }
}

/// A change of level near the end of the history.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LevelChange {
    /// The first day at the new level.
    pub day: Day,
    /// The change, in % of the old level.
    pub percent: f64,
    /// The probability the forecast gives the new level to hold (1 once it is established).
    pub holds: f64,
}

impl fmt::Display for LevelChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.percent >= 0.0 { "rose" } else { "fell" };
        write!(
            f,
            "spend {verb} {:.0}% on {}",
            self.percent.abs(),
            self.day.date().format("%m-%d")
        )
    }
}

/// What a series does, as its forecast found it: trend, seasonality and any recent change.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct SeriesShape {
    /// Which way it is heading; `None` with under four weeks of history.
    pub trend: Option<TrendClass>,
    /// Its trend over the last 13 weeks, in % a month.
    pub trend_percent_per_month: Option<f64>,
    /// Strength (0 to 1) of the weekday cycle, when there is one.
    pub weekly: Option<f64>,
    /// Days of the month with a steady charge or dip, e.g. `1`, `15`, `last`.
    pub month_days: Vec<String>,
    /// Charges that recur every few months, e.g. `every 3 months on the 15th`.
    pub charges: Vec<String>,
    /// Yearly peaks or dips on a weekday of a month, e.g.
    /// `yearly +150% on 1 day after the 4th Thu of November`.
    #[serde(default)]
    pub events: Vec<String>,
    /// Strength (0 to 1) of the yearly season, with two years of history.
    pub yearly: Option<f64>,
    /// A change of level in the last two months.
    pub change: Option<LevelChange>,
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
    /// What the series does: trend, seasonality, recent change.
    pub shape: SeriesShape,
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

/// How one model did on one series, averaged over the backtest windows. The API serves it as
/// is, so it documents its own schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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
