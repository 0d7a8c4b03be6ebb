//! The lists of what the stages did: anomalies smoothed out of fits, the action log, and runs.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiResult, ReadRefusals};
use super::params::{Bounded, DayParam, Offset, OutFormat, Page, Params, range};
use super::{AppState, cents, csv_response};
use crate::domain::{Anomaly, Day, ObjectKind, Operation, Outcome, RunDetail, RunOutcome};
use crate::store::{LoggedAction, RunRecord};

/// Lists page at most this many items.
const MAX_PAGE: i64 = 1_000;
/// Lists page this many items unless told.
const DEFAULT_PAGE: i64 = 100;

/// Items per page of a list.
type ListLimit = Bounded<1, MAX_PAGE>;

/// Query parameters of `/api/v1/runs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunsParams {
    /// `json` (default) or `csv`.
    #[serde(default)]
    #[param(inline)]
    format: OutFormat,
    /// Items per page (1 to 1,000; default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<ListLimit>,
    /// Items to skip.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 10000000)]
    offset: Option<Offset>,
}

/// Query parameters of `/api/v1/anomalies`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AnomalyParams {
    /// First day, YYYY-MM-DD (default: 364 days before `to`); not after `to`, and at most
    /// 3,660 days before it.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<DayParam>,
    /// Last day included, YYYY-MM-DD (default: the newest day with data).
    #[param(value_type = Option<String>, format = Date)]
    to: Option<DayParam>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    #[param(inline)]
    format: OutFormat,
    /// Items per page (1 to 1,000; default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<ListLimit>,
    /// Items to skip.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 10000000)]
    offset: Option<Offset>,
}

/// A page of items.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageOf<T: ToSchema> {
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
#[utoipa::path(get, path = "/api/v1/anomalies", tag = "anomalies", params(AnomalyParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Anomalies", content(
            (PageOf<AnomalyOut> = "application/json"),
            (String = "text/csv"))),
        ReadRefusals,
    ))]
pub async fn anomalies(
    State(state): State<AppState>,
    Params(p): Params<AnomalyParams>,
) -> ApiResult<Response> {
    let last = state
        .cube()
        .last_day()
        .unwrap_or_else(|| Day::from_date(state.ctx.clock.now().date_naive()));
    let (from, to) = range(p.from, p.to, (last.add_days(-364), last))?;
    let format = p.format;
    let page = Page::of(p.limit, p.offset, DEFAULT_PAGE);
    let all = state
        .ctx
        .store
        .latest_anomalies(Some(from), Some(to))
        .await?;
    let rows = all.into_iter().skip(page.offset as usize).collect();
    Ok(listed::<_, AnomalyOut>(
        rows,
        page,
        format,
        crate::report::anomalies,
        "anomalies.csv",
    ))
}

impl From<Anomaly> for AnomalyOut {
    fn from(a: Anomaly) -> AnomalyOut {
        AnomalyOut {
            series: a.series,
            day: a.day,
            actual: cents(a.actual),
            expected: cents(a.expected),
        }
    }
}

/// One page of `rows`, which run from the page's first item and may hold more after it: as
/// CSV rendered by `report`, or as a JSON page of `U`.
fn listed<T, U>(
    mut rows: Vec<T>,
    page: Page,
    format: OutFormat,
    report: fn(&[T]) -> crate::report::Report,
    file: &str,
) -> Response
where
    U: From<T> + Serialize + ToSchema,
{
    let more = rows.len() as i64 > page.limit;
    rows.truncate(page.limit as usize);
    if format == OutFormat::Csv {
        let csv = report(&rows).render(crate::report::Format::Csv);
        return csv_response(csv, file);
    }
    let items: Vec<U> = rows.into_iter().map(U::from).collect();
    Json(PageOf {
        items,
        next_offset: page.next(more),
    })
    .into_response()
}

/// Query parameters of `/api/v1/actions`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActionParams {
    /// Only this budget's actions.
    budget: Option<String>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    #[param(inline)]
    format: OutFormat,
    /// Items per page (1 to 1,000; default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<ListLimit>,
    /// Items to skip.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 10000000)]
    offset: Option<Offset>,
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
    #[schema(value_type = String)]
    pub operation: Operation,
    /// The object's kind, e.g. `HorizontalPodAutoscaler`.
    #[schema(value_type = String)]
    pub kind: ObjectKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `done`, `planned`, `skipped`, `conflict` or `failed`.
    #[schema(value_type = String)]
    pub outcome: Outcome,
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
            operation: r.operation,
            kind: c.target.kind,
            namespace: c.target.namespace,
            name: c.target.name,
            outcome: r.outcome,
            description,
            detail: r.detail,
            fields: serde_json::to_value(&c.fields).expect("changed fields serialise"),
        }
    }
}

/// Every change costcast made, planned or restored, newest first.
#[utoipa::path(get, path = "/api/v1/actions", tag = "actions", params(ActionParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The action log", content(
            (PageOf<ActionOut> = "application/json"),
            (String = "text/csv"))),
        ReadRefusals,
    ))]
pub async fn actions(
    State(state): State<AppState>,
    Params(p): Params<ActionParams>,
) -> ApiResult<Response> {
    let format = p.format;
    let page = Page::of(p.limit, p.offset, DEFAULT_PAGE);
    let rows = state
        .ctx
        .store
        .action_log(p.budget.as_deref(), page.limit + 1, page.offset)
        .await?;
    Ok(listed::<_, ActionOut>(
        rows,
        page,
        format,
        crate::report::action_log,
        "actions.csv",
    ))
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
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Runs", content(
            (PageOf<RunOut> = "application/json"),
            (String = "text/csv"))),
        ReadRefusals,
    ))]
pub async fn runs(
    State(state): State<AppState>,
    Params(p): Params<RunsParams>,
) -> ApiResult<Response> {
    let format = p.format;
    let page = Page::of(p.limit, p.offset, DEFAULT_PAGE);
    let rows = state
        .ctx
        .store
        .runs_page(page.limit + 1, page.offset)
        .await?;
    Ok(listed::<_, RunOut>(
        rows,
        page,
        format,
        crate::report::runs,
        "runs.csv",
    ))
}
