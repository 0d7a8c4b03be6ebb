//! Forecast settings: the raw `[forecast]` table, its events, and their validation, every error
//! naming its key.

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, model_names};
use crate::domain::{Builtin, Day, Dimension, Event, HolidayCalendar, Holidays, ModelChoice};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawForecast {
    pub(super) horizon_days: Option<i64>,
    pub(super) billing_lag_days: Option<i64>,
    grain: Option<Vec<String>>,
    top_series: Option<i64>,
    model: Option<String>,
    backtest_windows: Option<i64>,
    holidays: Option<Vec<String>>,
    #[serde(default)]
    events: Vec<RawEvent>,
}

/// A recurring event the forecast may fit, listed by its dates.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawEvent {
    name: String,
    days: Vec<String>,
    length_days: Option<i64>,
}

/// Forecast settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastSettings {
    /// Days forecast past the last trusted day.
    pub horizon_days: u32,
    /// The newest days billing has not fully reported; they are forecast, not trusted.
    pub billing_lag_days: u32,
    /// Dimensions of the report series (default service × team).
    pub grain: Vec<Dimension>,
    /// Report series kept by spend; the rest are pooled as `other`.
    pub top_series: usize,
    /// The model, or `auto` to pick one per series by backtest.
    pub model: ModelChoice,
    /// 30-day windows each forecast run backtests every series on (0: no backtest).
    pub backtest_windows: usize,
    /// The holidays and events the forecast may fit.
    pub holidays: Holidays,
}

pub(super) fn validate_forecast(raw: &RawForecast) -> Result<ForecastSettings, ConfigError> {
    let horizon_days = raw.horizon_days.unwrap_or(45);
    if !(1..=366).contains(&horizon_days) {
        return Err(invalid(
            "forecast.horizon_days",
            format!("{horizon_days} is outside 1..=366"),
        ));
    }
    let billing_lag_days = raw.billing_lag_days.unwrap_or(1);
    if !(0..=31).contains(&billing_lag_days) {
        return Err(invalid(
            "forecast.billing_lag_days",
            format!("{billing_lag_days} is outside 0..=31"),
        ));
    }
    let grain = raw
        .grain
        .clone()
        .unwrap_or_else(|| vec!["service".into(), "team".into()])
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Dimension::parse(d).map_err(|e| invalid(format!("forecast.grain[{i}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let top_series = raw.top_series.unwrap_or(15);
    if !(1..=10_000).contains(&top_series) {
        return Err(invalid(
            "forecast.top_series",
            format!("{top_series} is outside 1..=10000"),
        ));
    }
    let model = match raw.model.as_deref() {
        None => ModelChoice::default(),
        Some(name) => ModelChoice::parse_available(name).ok_or_else(|| {
            invalid(
                "forecast.model",
                format!("{name:?} is not auto, {}", model_names()),
            )
        })?,
    };
    let backtest_windows = raw.backtest_windows.unwrap_or(3);
    if !(0..=24).contains(&backtest_windows) {
        return Err(invalid(
            "forecast.backtest_windows",
            format!("{backtest_windows} is outside 0..=24"),
        ));
    }
    Ok(ForecastSettings {
        horizon_days: horizon_days as u32,
        billing_lag_days: billing_lag_days as u32,
        grain,
        top_series: top_series as usize,
        model,
        backtest_windows: backtest_windows as usize,
        holidays: validate_holidays(raw)?,
    })
}

/// The built-in holidays chosen (both unless listed) and the events, every error naming its key.
fn validate_holidays(raw: &RawForecast) -> Result<Holidays, ConfigError> {
    let builtins = match &raw.holidays {
        None => Builtin::ALL.to_vec(),
        Some(names) => names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                Builtin::parse(name).ok_or_else(|| {
                    let known: Vec<&str> = Builtin::ALL.iter().map(|b| b.as_str()).collect();
                    invalid(
                        format!("forecast.holidays[{i}]"),
                        format!("{name:?} is not one of {}", known.join(", ")),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let events = raw
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let key = |k: &str| format!("forecast.events[{i}].{k}");
            if e.name.trim().is_empty() {
                return Err(invalid(key("name"), "must not be empty"));
            }
            if e.days.is_empty() {
                return Err(invalid(key("days"), "must list at least one day"));
            }
            let starts = e
                .days
                .iter()
                .enumerate()
                .map(|(j, d)| {
                    Day::parse(d)
                        .map_err(|err| invalid(key(&format!("days[{j}]")), err.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let length_days = e.length_days.unwrap_or(1);
            if !(1..=31).contains(&length_days) {
                return Err(invalid(
                    key("length_days"),
                    format!("{length_days} is outside 1..=31"),
                ));
            }
            Ok(Event {
                name: e.name.clone(),
                starts,
                length_days: length_days as u32,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Holidays::new(HolidayCalendar::new(builtins, events)))
}
