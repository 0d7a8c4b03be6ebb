//! The read endpoints over what the stages stored: costs, forecasts, anomalies, the action log
//! and runs.

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use super::cube::{CostCube, CostQuery, Granularity};
use super::error::{ApiError, ApiResult, ErrorBody};
use super::params::{OutFormat, Params};
use super::{AppState, cents, csv_response, to_csv};
use crate::domain::{Day, Dimension, RunDetail, RunOutcome, Scope};
use crate::forecast::targets::budget_series;
use crate::store::{LoggedAction, RunRecord};

/// Raw query pairs, checked by [`Params`].
pub(super) type Pairs = Query<Vec<(String, String)>>;

/// Lists page at most this many items.
pub(super) const MAX_PAGE: i64 = 1_000;
/// Lists page this many items unless told.
pub(super) const DEFAULT_PAGE: i64 = 100;
/// Cost groups per page at most.
const MAX_GROUPS: i64 = 10_000;

// ---- costs ----------------------------------------------------------------------------------

/// Query parameters of `/api/v1/costs`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CostsParams {
    /// First day, YYYY-MM-DD (default: 30 days before `to`); not after `to`, and at most
    /// 3,660 days before it.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last day included, YYYY-MM-DD (default: the newest day with data). At most 3,660 days
    /// after `from`.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
    /// Dimensions to group by, comma-separated: source, provider, account, service,
    /// service_category, charge_category, region, or a tag key such as team.
    #[param(pattern = r"^[A-Za-z0-9_.:/-]+(,[A-Za-z0-9_.:/-]+)*$")]
    group_by: Option<String>,
    /// Bucket size.
    #[param(value_type = Option<GranularityParam>, inline)]
    granularity: Option<String>,
    /// `dim:value`; repeat it. Values of one dimension are or-ed, dimensions and-ed.
    #[param(pattern = r"^[A-Za-z0-9_.:/-]+:.+$")]
    filter: Option<Vec<String>>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<FormatParam>, inline)]
    format: Option<String>,
    /// Groups per page (1 to 10,000; default 10,000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<i64>,
    /// Groups to skip.
    #[param(minimum = 0, maximum = 10000000)]
    offset: Option<i64>,
}

/// `day`, `week` or `month`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum GranularityParam {
    /// Each day.
    Day,
    /// ISO weeks, labelled by their Monday.
    Week,
    /// Months, labelled by their first day.
    Month,
}

/// `json` or `csv`.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum FormatParam {
    /// JSON.
    Json,
    /// CSV with a header row.
    Csv,
}

/// Costs grouped and bucketed: each group's amounts line up with `periods`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostsResponse {
    /// First day.
    #[schema(value_type = String, format = Date)]
    pub from: Day,
    /// Last day included.
    #[schema(value_type = String, format = Date)]
    pub to: Day,
    /// `day`, `week` or `month`.
    pub granularity: String,
    /// The dimensions of each group's key, in order.
    pub group_by: Vec<String>,
    /// The first day of each period.
    #[schema(value_type = Vec<String>)]
    pub periods: Vec<Day>,
    /// The groups, largest total first.
    pub groups: Vec<CostGroupOut>,
    /// Groups in all pages.
    pub total_groups: usize,
    /// The `offset` of the next page, if there is one.
    pub next_offset: Option<i64>,
}

/// One group of costs.
#[derive(Debug, Serialize, ToSchema)]
pub struct CostGroupOut {
    /// The value of each `group_by` dimension.
    pub key: std::collections::BTreeMap<String, String>,
    /// ISO 4217 code.
    pub currency: String,
    /// The total over the range.
    pub total: f64,
    /// Per period; null where nothing was reported.
    pub amounts: Vec<Option<f64>>,
}

fn parse_group_by(params: &Params, cube: &CostCube) -> ApiResult<Vec<Dimension>> {
    let Some(text) = params.get("group_by") else {
        return Ok(Vec::new());
    };
    let mut dims = Vec::new();
    for name in text.split(',') {
        let dim = Dimension::parse(name).map_err(|e| ApiError::bad_param("group_by", e))?;
        if !cube.knows(&dim) {
            return Err(ApiError::bad_param(
                "group_by",
                format!("unknown dimension {name:?}: no stored series has it"),
            ));
        }
        if dims.contains(&dim) {
            return Err(ApiError::bad_param(
                "group_by",
                format!("{name:?} is listed twice"),
            ));
        }
        dims.push(dim);
    }
    if dims.len() > 4 {
        return Err(ApiError::bad_param("group_by", "at most 4 dimensions"));
    }
    Ok(dims)
}

fn parse_filters(params: &Params, cube: &CostCube) -> ApiResult<Scope> {
    let mut conditions: Vec<(Dimension, Vec<String>)> = Vec::new();
    for f in params.all("filter") {
        let (name, value) = f
            .split_once(':')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| ApiError::bad_param("filter", format!("{f:?} is not dim:value")))?;
        let dim = Dimension::parse(name).map_err(|e| ApiError::bad_param("filter", e))?;
        if !cube.knows(&dim) {
            return Err(ApiError::bad_param(
                "filter",
                format!("unknown dimension {name:?}: no stored series has it"),
            ));
        }
        match conditions.iter_mut().find(|(d, _)| *d == dim) {
            Some((_, values)) => values.push(value.to_string()),
            None => conditions.push((dim, vec![value.to_string()])),
        }
    }
    Ok(conditions
        .into_iter()
        .fold(Scope::all(), |scope, (dim, values)| scope.and(dim, values)))
}

/// Costs over a range, grouped by dimensions and bucketed by day, week or month.
#[utoipa::path(get, path = "/api/v1/costs", tag = "costs", params(CostsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Grouped costs", content(
            (CostsResponse = "application/json"),
            (String = "text/csv"))),
        (status = 400, description = "A parameter is wrong; the message names it", body = ErrorBody),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
    ))]
pub async fn costs(State(state): State<AppState>, Query(pairs): Pairs) -> ApiResult<Response> {
    let params = Params::new(
        pairs,
        &[
            "from",
            "to",
            "group_by",
            "granularity",
            "filter",
            "format",
            "limit",
            "offset",
        ],
        &["filter"],
    )?;
    let cube = state.cube();
    let last = cube
        .last_day()
        .unwrap_or_else(|| Day::from_date(state.ctx.clock.now().date_naive()));
    let (from, to) = params.range((last.add_days(-29), last))?;
    let group_by = parse_group_by(&params, &cube)?;
    let granularity_name = params.choice("granularity", &["day", "week", "month"], "day")?;
    let granularity = Granularity::parse(granularity_name).unwrap_or(Granularity::Day);
    let scope = parse_filters(&params, &cube)?;
    let format = params.format()?;
    let page = params.page(MAX_GROUPS, MAX_GROUPS)?;
    let query = CostQuery {
        from,
        to,
        group_by: group_by.clone(),
        granularity,
        scope,
    };
    // Summing millions of points is CPU work; it must not stall the other requests.
    let table = tokio::task::spawn_blocking(move || cube.query(&query))
        .await
        .map_err(|_| ApiError::unavailable("the cost query was cancelled"))?;
    let names: Vec<String> = group_by.iter().map(ToString::to_string).collect();
    let total_groups = table.groups.len();
    let groups = table
        .groups
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize);
    if format == OutFormat::Csv {
        let mut columns: Vec<&str> = vec!["period"];
        columns.extend(names.iter().map(String::as_str));
        columns.extend(["currency", "amount"]);
        let mut rows = Vec::new();
        for g in groups {
            for (period, amount) in table.periods.iter().zip(&g.amounts) {
                if let Some(a) = amount {
                    let mut row = vec![period.to_string()];
                    row.extend(g.key.iter().cloned());
                    row.push(g.currency.as_str().to_string());
                    row.push(format!("{:.2}", a));
                    rows.push(row);
                }
            }
        }
        return Ok(csv_response(to_csv(&columns, rows), "costs.csv"));
    }
    let groups: Vec<CostGroupOut> = groups
        .map(|g| CostGroupOut {
            key: names.iter().cloned().zip(g.key).collect(),
            currency: g.currency.as_str().to_string(),
            total: cents(g.total),
            amounts: g.amounts.into_iter().map(|a| a.map(cents)).collect(),
        })
        .collect();
    Ok(Json(CostsResponse {
        from,
        to,
        granularity: granularity_name.to_string(),
        group_by: names,
        periods: table.periods,
        next_offset: page.next(page.offset + (groups.len() as i64) < total_groups as i64),
        groups,
        total_groups,
    })
    .into_response())
}

// ---- forecasts ------------------------------------------------------------------------------

/// Query parameters of `/api/v1/forecasts`: exactly one of `series` and `budget` (a request
/// with neither or both is a 400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ForecastParams {
    /// A forecast series, e.g. `service=Amazon SageMaker|team=ml`, `other` or `budget:NAME`.
    series: Option<String>,
    /// A budget: its scope's forecast.
    budget: Option<String>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<FormatParam>, inline)]
    format: Option<String>,
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
pub async fn forecasts(State(state): State<AppState>, Query(pairs): Pairs) -> ApiResult<Response> {
    let params = Params::new(pairs, &["series", "budget", "format"], &[])?;
    let format = params.format()?;
    let series = match (params.get("series"), params.get("budget")) {
        (Some(s), None) => s.to_string(),
        (None, Some(b)) => budget_series(b),
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

// ---- anomalies, actions, runs -----------------------------------------------------------------

/// `limit` and `offset` of a list, with `format`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// `json` (default) or `csv`.
    #[param(value_type = Option<FormatParam>, inline)]
    format: Option<String>,
    /// Items per page (1 to 1,000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<i64>,
    /// Items to skip.
    #[param(minimum = 0, maximum = 10000000)]
    offset: Option<i64>,
}

/// Query parameters of `/api/v1/anomalies`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AnomalyParams {
    /// First day, YYYY-MM-DD (default: 364 days before `to`); not after `to`, and at most
    /// 3,660 days before it.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last day included, YYYY-MM-DD (default: the newest day with data).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// The `offset` of the next page, if there is one.
    pub next_offset: Option<i64>,
}

/// A day smoothed out of a fit.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnomalyOut {
    /// The forecast series.
    pub series: String,
    /// The day.
    #[schema(value_type = String, format = Date)]
    pub day: Day,
    /// What it cost.
    pub actual: f64,
    /// What the smoothing expected.
    pub expected: f64,
}

/// Days the newest forecast run smoothed out as anomalies, newest first.
#[utoipa::path(get, path = "/api/v1/anomalies", tag = "anomalies", params(AnomalyParams, ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Anomalies", content(
            (Page<AnomalyOut> = "application/json"),
            (String = "text/csv"))),
        (status = 400, description = "A parameter is wrong; the message names it", body = ErrorBody),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
    ))]
pub async fn anomalies(State(state): State<AppState>, Query(pairs): Pairs) -> ApiResult<Response> {
    let params = Params::new(pairs, &["from", "to", "format", "limit", "offset"], &[])?;
    let last = state
        .cube()
        .last_day()
        .unwrap_or_else(|| Day::from_date(state.ctx.clock.now().date_naive()));
    let (from, to) = params.range((last.add_days(-364), last))?;
    let format = params.format()?;
    let page = params.page(DEFAULT_PAGE, MAX_PAGE)?;
    let all = state
        .ctx
        .store
        .latest_anomalies(Some(from), Some(to))
        .await?;
    let more = all.len() as i64 > page.offset + page.limit;
    let items: Vec<AnomalyOut> = all
        .into_iter()
        .skip(page.offset as usize)
        .take(page.limit as usize)
        .map(|a| AnomalyOut {
            series: a.series,
            day: a.day,
            actual: cents(a.actual),
            expected: cents(a.expected),
        })
        .collect();
    if format == OutFormat::Csv {
        let rows = items.iter().map(|a| {
            vec![
                a.series.clone(),
                a.day.to_string(),
                format!("{:.2}", a.actual),
                format!("{:.2}", a.expected),
            ]
        });
        let columns = ["series", "day", "actual", "expected"];
        return Ok(csv_response(to_csv(&columns, rows), "anomalies.csv"));
    }
    Ok(Json(Page {
        items,
        next_offset: page.next(more),
    })
    .into_response())
}

/// Query parameters of `/api/v1/actions`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ActionParams {
    /// Only this budget's actions.
    budget: Option<String>,
}

/// One entry of the action log.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionOut {
    /// The entry's id, for `POST /api/v1/actions/{id}/restore`.
    pub id: i64,
    /// The run that made it.
    pub run_id: i64,
    /// When that run started.
    #[schema(value_type = String, format = DateTime)]
    pub at: chrono::DateTime<chrono::Utc>,
    /// The budget.
    pub budget: String,
    /// Its ladder step.
    pub step: u32,
    /// `apply` or `restore`.
    pub operation: String,
    /// The object's kind, e.g. `HorizontalPodAutoscaler`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `done`, `planned`, `skipped`, `conflict` or `failed`.
    pub outcome: String,
    /// A sentence for people.
    pub description: String,
    /// Why, for skipped, conflicting and failed entries.
    pub detail: String,
    /// Each field: its value before costcast and the value set.
    #[schema(value_type = Vec<Object>)]
    pub fields: serde_json::Value,
}

impl From<LoggedAction> for ActionOut {
    fn from(a: LoggedAction) -> ActionOut {
        let r = a.record;
        let description = r.describe();
        let c = r.change;
        ActionOut {
            id: a.id,
            run_id: a.run_id,
            at: a.at,
            budget: c.budget,
            step: c.step,
            operation: r.operation.as_str().to_string(),
            kind: c.target.kind.as_str().to_string(),
            namespace: c.target.namespace,
            name: c.target.name,
            outcome: r.outcome.as_str().to_string(),
            description,
            detail: r.detail,
            fields: serde_json::to_value(&c.fields).expect("changed fields serialise"),
        }
    }
}

/// The action log as CSV.
fn actions_csv(items: &[ActionOut]) -> Response {
    let rows = items.iter().map(|a| {
        vec![
            a.id.to_string(),
            a.at.to_rfc3339(),
            a.budget.clone(),
            a.step.to_string(),
            a.operation.clone(),
            a.kind.clone(),
            a.namespace.clone(),
            a.name.clone(),
            a.outcome.clone(),
            a.description.clone(),
            a.detail.clone(),
        ]
    });
    let columns = [
        "id",
        "at",
        "budget",
        "step",
        "operation",
        "kind",
        "namespace",
        "name",
        "outcome",
        "description",
        "detail",
    ];
    csv_response(to_csv(&columns, rows), "actions.csv")
}

/// Every change costcast made, planned or restored, newest first.
#[utoipa::path(get, path = "/api/v1/actions", tag = "actions", params(ActionParams, ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The action log", content(
            (Page<ActionOut> = "application/json"),
            (String = "text/csv"))),
        (status = 400, description = "A parameter is wrong; the message names it", body = ErrorBody),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
    ))]
pub async fn actions(State(state): State<AppState>, Query(pairs): Pairs) -> ApiResult<Response> {
    let params = Params::new(pairs, &["budget", "format", "limit", "offset"], &[])?;
    let format = params.format()?;
    let page = params.page(DEFAULT_PAGE, MAX_PAGE)?;
    let mut rows = state
        .ctx
        .store
        .action_log(params.get("budget"), page.limit + 1, page.offset)
        .await?;
    let more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    let items: Vec<ActionOut> = rows.into_iter().map(ActionOut::from).collect();
    if format == OutFormat::Csv {
        return Ok(actions_csv(&items));
    }
    Ok(Json(Page {
        items,
        next_offset: page.next(more),
    })
    .into_response())
}

/// A pipeline run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunOut {
    /// Run id.
    pub id: i64,
    /// The job or command.
    pub job: String,
    /// Start.
    #[schema(value_type = String, format = DateTime)]
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// End, once finished.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// How it ended: `running` (or died), `ok`, `failed`, `interrupted` or `skipped`.
    #[schema(value_type = String)]
    pub outcome: RunOutcome,
    /// Per stage: counts, duration and error.
    #[schema(value_type = Object)]
    pub detail: RunDetail,
}

impl From<RunRecord> for RunOut {
    fn from(r: RunRecord) -> RunOut {
        RunOut {
            id: r.id,
            job: r.job,
            started_at: r.started_at,
            finished_at: r.finished_at,
            outcome: r.outcome,
            detail: r.detail,
        }
    }
}

/// Pipeline runs, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Runs", content(
            (Page<RunOut> = "application/json"),
            (String = "text/csv"))),
        (status = 400, description = "A parameter is wrong; the message names it", body = ErrorBody),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
    ))]
pub async fn runs(State(state): State<AppState>, Query(pairs): Pairs) -> ApiResult<Response> {
    let params = Params::new(pairs, &["format", "limit", "offset"], &[])?;
    let format = params.format()?;
    let page = params.page(DEFAULT_PAGE, MAX_PAGE)?;
    let mut rows = state
        .ctx
        .store
        .runs_page(page.limit + 1, page.offset)
        .await?;
    let more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    let items: Vec<RunOut> = rows.into_iter().map(RunOut::from).collect();
    if format == OutFormat::Csv {
        let rows = items.iter().map(|r| {
            vec![
                r.id.to_string(),
                r.job.clone(),
                r.started_at.to_rfc3339(),
                r.finished_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                r.outcome.to_string(),
            ]
        });
        let columns = ["id", "job", "started_at", "finished_at", "outcome"];
        return Ok(csv_response(to_csv(&columns, rows), "runs.csv"));
    }
    Ok(Json(Page {
        items,
        next_offset: page.next(more),
    })
    .into_response())
}

// ---- accuracy -----------------------------------------------------------------------------------

/// Query parameters of `/api/v1/accuracy`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AccuracyParams {
    /// Only this model (`auto`, or a model name such as `mstl`).
    #[param(pattern = r"^[a-z0-9_-]{1,32}$")]
    model: Option<String>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<FormatParam>, inline)]
    format: Option<String>,
}

/// One series' backtest score for one model: how far its forecasts from past origins missed
/// the held-out days, and how often those days fell inside the intervals.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccuracyOut {
    /// The forecast series.
    pub series: String,
    /// The model, or `auto`.
    pub model: String,
    /// Backtest windows scored.
    pub windows: u64,
    /// Days per window.
    pub horizon: u64,
    /// Mean absolute percentage error over days with cost, %.
    pub mape: Option<f64>,
    /// Symmetric MAPE, %.
    pub smape: Option<f64>,
    /// Mean absolute scaled error against the 7-day seasonal naive forecast.
    pub mase: Option<f64>,
    /// |forecast − actual| of each window's total, over the actual total, %.
    pub total_error: Option<f64>,
    /// (forecast − actual) / actual of the window totals, %: positive over-forecasts.
    pub bias: Option<f64>,
    /// Share of held-out days inside the 80% interval (ideally 0.8).
    pub coverage80: f64,
    /// Share of held-out days inside the 95% interval (ideally 0.95).
    pub coverage95: f64,
}

impl From<crate::domain::Accuracy> for AccuracyOut {
    fn from(a: crate::domain::Accuracy) -> AccuracyOut {
        AccuracyOut {
            series: a.series,
            model: a.model,
            windows: a.windows as u64,
            horizon: a.horizon as u64,
            mape: a.mape,
            smape: a.smape,
            mase: a.mase,
            total_error: a.total_error,
            bias: a.bias,
            coverage80: a.coverage80,
            coverage95: a.coverage95,
        }
    }
}

/// The newest backtest score of every series and model (from the forecast runs and the weekly
/// backtest job).
#[utoipa::path(get, path = "/api/v1/accuracy", tag = "forecasts", params(AccuracyParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Scores by series and model", content(
            (Vec<AccuracyOut> = "application/json"),
            (String = "text/csv"))),
        (status = 400, description = "A parameter is wrong; the message names it", body = ErrorBody),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
    ))]
pub async fn accuracy(State(state): State<AppState>, Query(pairs): Pairs) -> ApiResult<Response> {
    let params = Params::new(pairs, &["model", "format"], &[])?;
    let format = params.format()?;
    let model = params.get("model");
    let named = |m: &str| {
        (1..=32).contains(&m.len())
            && m.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    };
    if model.is_some_and(|m| !named(m)) {
        return Err(ApiError::bad_param(
            "model",
            "must be auto or a model name: lowercase letters, digits, _ and -",
        ));
    }
    let mut scores = state.ctx.store.latest_accuracy().await?;
    scores.retain(|a| model.is_none_or(|m| a.model == m));
    if format == OutFormat::Csv {
        // The same columns and rounding as `costcast report accuracy --format csv`.
        let body = crate::report::accuracy(&scores).render(crate::report::Format::Csv);
        return Ok(csv_response(body, "accuracy.csv"));
    }
    let items: Vec<AccuracyOut> = scores.into_iter().map(AccuracyOut::from).collect();
    Ok(Json(items).into_response())
}
