//! `/api/v1/forecasts` and `/api/v1/accuracy`: the newest forecast of a series or budget, and
//! how well each model did in backtests.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ErrorBody, ReadRefusals};
use super::params::{OutFormat, Params};
use super::{AppState, cents, csv_response};
use crate::domain::{Accuracy, Day};
use crate::forecast::targets::budget_series;

/// Query parameters of `/api/v1/forecasts`: exactly one of `series` and `budget` (a request
/// with neither or both is a 400).
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ForecastParams {
    /// A forecast series, e.g. `service=Amazon SageMaker|team=ml`, `other` or `budget:NAME`.
    series: Option<String>,
    /// A budget: its scope's forecast.
    budget: Option<String>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    #[param(inline)]
    format: OutFormat,
}

/// The newest forecast of one series.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastResponse {
    /// The series.
    pub series: String,
    /// The model that made it.
    pub model: String,
    /// When the run that fitted it started.
    #[schema(value_type = String, format = DateTime)]
    pub fitted_at: chrono::DateTime<chrono::Utc>,
    /// The last day of history it was fitted on.
    #[schema(value_type = String, format = Date)]
    pub history_end: Day,
    /// Why the model fell back, if it did.
    pub note: Option<String>,
    /// What the series does: trend, seasonality and any recent change.
    pub shape: ShapeDto,
    /// Day by day: mean and the 80% and 95% intervals.
    pub points: Vec<ForecastPoint>,
}

/// What a series does, as its forecast found it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShapeDto {
    /// `rising`, `falling`, `stable` or `volatile`; absent under four weeks of history.
    pub trend: Option<String>,
    /// The trend over the last 13 weeks, in % a month.
    pub trend_percent_per_month: Option<f64>,
    /// Strength (0 to 1) of the weekday cycle, when there is one.
    pub weekly: Option<f64>,
    /// Days of the month with a steady charge, e.g. `1`, `15`, `last`.
    pub month_days: Vec<String>,
    /// Charges that recur every few months.
    pub charges: Vec<String>,
    /// Yearly peaks or dips on a weekday of a month.
    pub events: Vec<String>,
    /// Strength (0 to 1) of the yearly season.
    pub yearly: Option<f64>,
    /// A change of level in the last two months.
    pub change: Option<ChangeDto>,
}

/// A change of level near the end of the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChangeDto {
    /// The first day at the new level.
    #[schema(value_type = String, format = Date)]
    pub day: Day,
    /// The change, in % of the old level.
    pub percent: f64,
    /// The probability the forecast gives it to hold.
    pub holds: f64,
    /// In words: `spend rose 48% on 07-10`.
    pub text: String,
}

impl From<&crate::domain::SeriesShape> for ShapeDto {
    fn from(s: &crate::domain::SeriesShape) -> ShapeDto {
        ShapeDto {
            trend: s.trend.map(|t| t.as_str().to_string()),
            trend_percent_per_month: s.trend_percent_per_month,
            weekly: s.weekly,
            month_days: s.month_days.clone(),
            charges: s.charges.clone(),
            events: s.events.clone(),
            yearly: s.yearly,
            change: s.change.map(|c| ChangeDto {
                day: c.day,
                percent: c.percent,
                holds: c.holds,
                text: c.to_string(),
            }),
        }
    }
}

/// One forecast day.
#[derive(Debug, Serialize, ToSchema)]
pub struct ForecastPoint {
    /// The day.
    #[schema(value_type = String, format = Date)]
    pub day: Day,
    /// Expected cost.
    pub mean: f64,
    /// 80% interval, low.
    pub lo80: f64,
    /// 80% interval, high.
    pub hi80: f64,
    /// 95% interval, low.
    pub lo95: f64,
    /// 95% interval, high.
    pub hi95: f64,
}

/// The newest forecast of a series or of a budget's scope, with its 80% and 95% intervals.
#[utoipa::path(get, path = "/api/v1/forecasts", tag = "forecasts", params(ForecastParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The forecast", content(
            (ForecastResponse = "application/json"),
            (String = "text/csv"))),
        (status = 400, description = "Neither or both of series and budget", body = ErrorBody),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
        (status = 404, description = "No forecast of that series or budget", body = ErrorBody),
    ))]
pub async fn forecasts(
    State(state): State<AppState>,
    Params(p): Params<ForecastParams>,
) -> ApiResult<Response> {
    let format = p.format;
    let series = match (p.series, p.budget) {
        (Some(s), None) => s,
        (None, Some(b)) => budget_series(&b),
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_param(
                "budget",
                "give series or budget, not both",
            ));
        }
        (None, None) => return Err(ApiError::bad_param("series", "give series or budget")),
    };
    let Some((forecast, fitted_at)) = state.ctx.store.forecast_of(&series).await? else {
        return Err(ApiError::not_found(format!("no forecast of {series:?}")));
    };
    let points: Vec<ForecastPoint> = forecast
        .points
        .iter()
        .map(|p| ForecastPoint {
            day: p.day,
            mean: cents(p.mean),
            lo80: cents(p.lo80),
            hi80: cents(p.hi80),
            lo95: cents(p.lo95),
            hi95: cents(p.hi95),
        })
        .collect();
    if format == OutFormat::Csv {
        let report = crate::report::forecasts(std::slice::from_ref(&forecast), None, None);
        let csv = report.render(crate::report::Format::Csv);
        return Ok(csv_response(csv, "forecast.csv"));
    }
    Ok(Json(ForecastResponse {
        series,
        model: forecast.model.as_str().to_string(),
        fitted_at,
        history_end: forecast.history_end,
        note: forecast.note,
        shape: ShapeDto::from(&forecast.shape),
        points,
    })
    .into_response())
}

/// Query parameters of `/api/v1/accuracy`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AccuracyParams {
    /// Only this model (`auto`, or a model name such as `mstl`).
    #[param(value_type = Option<String>, pattern = r"^[a-z0-9_-]{1,32}$")]
    model: Option<ModelName>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    #[param(inline)]
    format: OutFormat,
}

/// `auto` or a model's name: 1 to 32 lowercase letters, digits, `_` and `-`.
#[derive(Debug)]
struct ModelName(String);

impl<'de> Deserialize<'de> for ModelName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ModelName, D::Error> {
        let name = String::deserialize(d)?;
        let valid = (1..=32).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(ModelName(name))
        } else {
            Err(serde::de::Error::custom(
                "must be auto or a model name: lowercase letters, digits, _ and -",
            ))
        }
    }
}

/// The newest backtest score of every series and model (from the forecast runs and the weekly
/// backtest job).
#[utoipa::path(get, path = "/api/v1/accuracy", tag = "forecasts", params(AccuracyParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Scores by series and model", content(
            (Vec<Accuracy> = "application/json"),
            (String = "text/csv"))),
        ReadRefusals,
    ))]
pub async fn accuracy(
    State(state): State<AppState>,
    Params(p): Params<AccuracyParams>,
) -> ApiResult<Response> {
    let format = p.format;
    let model = p.model.map(|m| m.0);
    let mut scores = state.ctx.store.latest_accuracy().await?;
    scores.retain(|a| model.as_ref().is_none_or(|m| a.model == *m));
    if format == OutFormat::Csv {
        // The same columns and rounding as `costcast report accuracy --format csv`.
        let body = crate::report::accuracy(&scores).render(crate::report::Format::Csv);
        return Ok(csv_response(body, "accuracy.csv"));
    }
    Ok(Json(scores).into_response())
}
