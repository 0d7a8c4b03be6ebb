//! Budgets: the overview, and one budget's history, drivers, ladder and actions.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ApiResult, ErrorBody, ReadRefusals};
use super::logs::ActionOut;
use super::params::{FormatOnly, NoParams, OutFormat, Params};
use super::{AppState, cents, csv_response};
use crate::domain::{Budget, Day, Evaluation, ObjectChange};

/// Evaluations a budget's history returns at most.
const HISTORY_LIMIT: i64 = 400;
/// Actions a budget's detail lists.
const DETAIL_ACTIONS: i64 = 50;

/// A budget and where it stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BudgetSummary {
    /// Its name.
    pub name: String,
    /// `ok`, `warn`, `breach`, `recovering`, or `unevaluated` before its first evaluation.
    pub status: String,
    /// `observe` or `enforce` (as set through the API, else the config's).
    pub mode: String,
    /// The amount per period.
    pub amount: f64,
    /// ISO 4217 code.
    pub currency: String,
    /// `monthly`, `quarterly`, `yearly`, `weekly` or a custom period.
    pub period: String,
    /// The evaluated period's first day.
    #[schema(value_type = Option<String>, format = Date)]
    pub period_start: Option<Day>,
    /// Its last day.
    #[schema(value_type = Option<String>, format = Date)]
    pub period_end: Option<Day>,
    /// The day of the newest evaluation.
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<Day>,
    /// Days of the period left after `as_of`.
    pub days_left: Option<i64>,
    /// Spend reported so far this period.
    pub spent_to_date: Option<f64>,
    /// Projected period total (mean).
    pub projected: Option<f64>,
    /// 80% interval of the projection, low.
    pub projected_lo80: Option<f64>,
    /// 80% interval of the projection, high.
    pub projected_hi80: Option<f64>,
    /// `projected / amount`.
    pub projected_ratio: Option<f64>,
    /// Probability that the period total exceeds the amount.
    pub p_breach: Option<f64>,
    /// Ladder steps in effect.
    pub steps: u32,
    /// Steps on the ladder.
    pub ladder_steps: usize,
    /// Backtest error of this budget's forecast, % of 30-day totals.
    pub forecast_error_pct: Option<f64>,
    /// Objects costcast holds changed for it.
    pub held_objects: usize,
    /// Sources of its scope whose data did not refresh in the newest run or is too old to
    /// act on.
    pub lagging_sources: Vec<String>,
    /// Whether its ladder is held where it was because some of that data is too old.
    pub ladder_held: bool,
    /// The current month against its planned amount, for a budget with a monthly plan.
    pub plan: Option<PlanOut>,
}

/// The current month of a planned quarterly or yearly budget.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PlanOut {
    /// The month's first day.
    #[schema(value_type = String, format = Date)]
    pub month_start: Day,
    /// Its planned amount.
    pub planned: f64,
    /// Its reported spend so far.
    pub spent_to_date: f64,
    /// Its projected total (mean).
    pub projected: f64,
    /// 80% interval of that total, low.
    pub projected_lo80: f64,
    /// 80% interval of that total, high.
    pub projected_hi80: f64,
    /// Probability the month's total exceeds its planned amount.
    pub p_over: f64,
}

fn summary(budget: &Budget, evaluation: Option<&Evaluation>, held: usize) -> BudgetSummary {
    let e = evaluation;
    let p = e.map(|e| &e.projection);
    BudgetSummary {
        name: budget.name.clone(),
        status: e.map_or("unevaluated", |e| e.status.as_str()).to_string(),
        mode: budget.mode.as_str().to_string(),
        amount: budget.amount.amount,
        currency: budget.amount.currency.as_str().to_string(),
        period: budget.period.describe(),
        period_start: p.map(|p| p.period.start()),
        period_end: p.map(|p| p.period.end()),
        as_of: e.map(|e| e.as_of),
        days_left: e.map(|e| e.as_of.days_until(e.projection.period.end()).max(0)),
        spent_to_date: p.map(|p| cents(p.actual_to_date)),
        projected: p.map(|p| cents(p.mean)),
        projected_lo80: p.map(|p| cents(p.lo80)),
        projected_hi80: p.map(|p| cents(p.hi80)),
        projected_ratio: e
            .filter(|e| e.amount.amount > 0.0)
            .map(|e| (e.projection.mean / e.amount.amount * 1e4).round() / 1e4),
        p_breach: p.map(|p| (p.p_breach * 1e4).round() / 1e4),
        steps: e.map_or(0, |e| e.steps),
        ladder_steps: budget.actions.len(),
        forecast_error_pct: e
            .and_then(|e| e.forecast_error)
            .map(|v| (v * 10.0).round() / 10.0),
        held_objects: held,
        lagging_sources: e.map_or(Vec::new(), |e| {
            e.lagging.iter().map(|l| l.source.clone()).collect()
        }),
        ladder_held: e.is_some_and(Evaluation::ladder_held),
        plan: e.and_then(|e| e.plan.as_ref()).map(|c| PlanOut {
            month_start: c.month.start(),
            planned: cents(c.planned),
            spent_to_date: cents(c.actual_to_date),
            projected: cents(c.projected),
            projected_lo80: cents(c.lo80),
            projected_hi80: cents(c.hi80),
            p_over: (c.p_over * 1e4).round() / 1e4,
        }),
    }
}

/// Every configured budget with its newest evaluation, in config order.
pub(super) async fn summaries(
    state: &AppState,
) -> ApiResult<Vec<(BudgetSummary, Option<Evaluation>)>> {
    let evaluations = state.ctx.store.latest_evaluations().await?;
    let held = state.ctx.store.throttled(None).await?;
    // A mode set through the API since this server started wins over the one it loaded.
    let modes = state.ctx.store.budget_modes().await?;
    let mut held_by: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &held {
        *held_by.entry(c.budget.as_str()).or_default() += 1;
    }
    Ok(state
        .ctx
        .config
        .budgets
        .iter()
        .map(|b| {
            let e = evaluations.iter().find(|e| e.budget == b.name).cloned();
            let n = held_by.get(b.name.as_str()).copied().unwrap_or(0);
            let mut s = summary(b, e.as_ref(), n);
            if let Some(mode) = modes.get(&b.name) {
                s.mode = mode.as_str().to_string();
            }
            (s, e)
        })
        .collect())
}

pub(super) fn find_budget<'a>(state: &'a AppState, name: &str) -> ApiResult<&'a Budget> {
    state
        .ctx
        .config
        .budgets
        .iter()
        .find(|b| b.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no budget named {name:?}")))
}

/// The budgets: status, projected total against the amount, P(breach), days left.
#[utoipa::path(get, path = "/api/v1/budgets", tag = "budgets", params(FormatOnly),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every budget", content(
            (Vec<BudgetSummary> = "application/json"),
            (String = "text/csv"))),
        ReadRefusals,
    ))]
pub async fn list(
    State(state): State<AppState>,
    Params(p): Params<FormatOnly>,
) -> ApiResult<Response> {
    let all: Vec<BudgetSummary> = summaries(&state)
        .await?
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    if p.format == OutFormat::Csv {
        let evaluations = state.ctx.store.latest_evaluations().await?;
        let csv = crate::report::budgets(&evaluations).render(crate::report::Format::Csv);
        return Ok(csv_response(csv, "budgets.csv"));
    }
    Ok(Json(all).into_response())
}

/// One evaluation in a budget's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPoint {
    /// The day it was made as of.
    #[schema(value_type = String, format = Date)]
    pub as_of: Day,
    /// Projected period total.
    pub projected: f64,
    /// 80% interval, low.
    pub lo80: f64,
    /// 80% interval, high.
    pub hi80: f64,
    /// P(breach).
    pub p_breach: f64,
    /// Status.
    pub status: String,
    /// Ladder steps in effect.
    pub steps: u32,
}

/// A series driving a budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct DriverOut {
    /// The forecast series.
    pub series: String,
    /// Its projected total this period.
    pub projected: f64,
    /// Its total last period.
    pub previous: f64,
    /// `projected - previous`.
    pub rise: f64,
}

/// One step of a budget's ladder.
#[derive(Debug, Serialize, ToSchema)]
pub struct LadderStep {
    /// 1-based.
    pub step: u32,
    /// The action kind.
    pub action: String,
    /// What it does, for people.
    pub description: String,
    /// Whether the budget has reached it.
    pub in_effect: bool,
}

/// An object costcast holds changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeldObject {
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The step that changed it.
    pub step: u32,
    /// `field: original → set`.
    pub fields: String,
}

impl From<&ObjectChange> for HeldObject {
    fn from(c: &ObjectChange) -> HeldObject {
        HeldObject {
            kind: c.target.kind.as_str().to_string(),
            namespace: c.target.namespace.clone(),
            name: c.target.name.clone(),
            step: c.step,
            fields: c.describe_fields(),
        }
    }
}

/// Everything about one budget.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetDetail {
    /// Where it stands.
    pub summary: BudgetSummary,
    /// Its evaluations, oldest first: projection and P(breach) over time.
    pub history: Vec<HistoryPoint>,
    /// The series whose projected total rose most against the last period.
    pub drivers: Vec<DriverOut>,
    /// Its action ladder and how far up it is.
    pub ladder: Vec<LadderStep>,
    /// Objects it holds changed.
    pub held: Vec<HeldObject>,
    /// Its newest 50 actions, planned and applied.
    pub actions: Vec<ActionOut>,
}

/// What drives a budget; nothing before its first evaluation.
fn drivers_of(e: Option<&Evaluation>) -> Vec<DriverOut> {
    e.iter()
        .flat_map(|e| &e.drivers)
        .map(|d| DriverOut {
            series: d.series.clone(),
            projected: cents(d.projected),
            previous: cents(d.previous),
            rise: cents(d.rise()),
        })
        .collect()
}

/// Everything about one budget, gathered for the API.
async fn detail_of(state: &AppState, name: &str) -> ApiResult<BudgetDetail> {
    let (summary, evaluation) = summaries(state)
        .await?
        .into_iter()
        .find(|(s, _)| s.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no budget named {name:?}")))?;
    detail_with(state, summary, evaluation).await
}

/// The rest of one budget's detail, given its summary and newest evaluation (the page has them
/// for every budget already).
pub(super) async fn detail_with(
    state: &AppState,
    summary: BudgetSummary,
    evaluation: Option<Evaluation>,
) -> ApiResult<BudgetDetail> {
    let owned_name = summary.name.clone();
    let name = owned_name.as_str();
    let budget = find_budget(state, name)?;
    let history = state
        .ctx
        .store
        .evaluation_history(name, None, HISTORY_LIMIT)
        .await?
        .into_iter()
        .map(|e| HistoryPoint {
            as_of: e.as_of,
            projected: cents(e.projection.mean),
            lo80: cents(e.projection.lo80),
            hi80: cents(e.projection.hi80),
            p_breach: e.projection.p_breach,
            status: e.status.as_str().to_string(),
            steps: e.steps,
        })
        .collect();
    let steps = summary.steps;
    let ladder = crate::act::ladder(budget, budget.actions.len() as u32)
        .into_iter()
        .map(|c| LadderStep {
            step: c.step,
            action: c.action.as_str().to_string(),
            description: c.description,
            in_effect: c.step <= steps,
        })
        .collect();
    let held = state
        .ctx
        .store
        .throttled(Some(name))
        .await?
        .iter()
        .map(HeldObject::from)
        .collect();
    let actions = state
        .ctx
        .store
        .action_log(Some(name), DETAIL_ACTIONS, 0)
        .await?
        .into_iter()
        .map(ActionOut::from)
        .collect();
    Ok(BudgetDetail {
        drivers: drivers_of(evaluation.as_ref()),
        summary,
        history,
        ladder,
        held,
        actions,
    })
}

/// One budget: status, projection history, P(breach) over time, drivers, ladder and actions.
#[utoipa::path(get, path = "/api/v1/budgets/{name}", tag = "budgets",
    params(("name" = String, Path, description = "The budget's name")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The budget", body = BudgetDetail),
        ReadRefusals,
        (status = 404, description = "No such budget", body = ErrorBody),
    ))]
pub async fn detail(
    State(state): State<AppState>,
    Path(name): Path<String>,
    _: Params<NoParams>,
) -> ApiResult<Json<BudgetDetail>> {
    Ok(Json(detail_of(&state, &name).await?))
}

/// The series driving a budget: projected total this period against the last.
#[utoipa::path(get, path = "/api/v1/budgets/{name}/drivers", tag = "budgets",
    params(("name" = String, Path, description = "The budget's name"), FormatOnly),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Drivers, largest rise first", content(
            (Vec<DriverOut> = "application/json"),
            (String = "text/csv"))),
        ReadRefusals,
        (status = 404, description = "No such budget", body = ErrorBody),
    ))]
pub async fn drivers(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Params(p): Params<FormatOnly>,
) -> ApiResult<Response> {
    find_budget(&state, &name)?;
    let evaluations = state.ctx.store.latest_evaluations().await?;
    let evaluation = evaluations.iter().find(|e| e.budget == name);
    if p.format == OutFormat::Csv {
        let csv = crate::report::drivers(evaluation).render(crate::report::Format::Csv);
        return Ok(csv_response(csv, &format!("{name}-drivers.csv")));
    }
    let drivers = drivers_of(evaluation);
    Ok(Json(drivers).into_response())
}
