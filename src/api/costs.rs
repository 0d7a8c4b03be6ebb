//! `/api/v1/costs`: stored costs grouped by dimensions and bucketed by day, week or month,
//! summed from the in-memory cube.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ApiResult, ReadRefusals};
use super::params::{Bounded, DayParam, Offset, OutFormat, Page, Params, range};
use super::{AppState, cents, csv_response};
use crate::domain::{Day, Dimension, Scope};
use crate::report::cube::{CostCube, CostQuery, CostTable, Granularity};

/// Cost groups per page at most.
const MAX_GROUPS: i64 = 10_000;

/// Query parameters of `/api/v1/costs`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CostsParams {
    /// First day, YYYY-MM-DD (default: 30 days before `to`); not after `to`, and at most
    /// 3,660 days before it.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<DayParam>,
    /// Last day included, YYYY-MM-DD (default: the newest day with data). At most 3,660 days
    /// after `from`.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<DayParam>,
    /// Dimensions to group by, comma-separated: source, provider, account, service,
    /// service_category, charge_category, region, or a tag key such as team.
    #[param(pattern = r"^[A-Za-z0-9_.:/-]+(,[A-Za-z0-9_.:/-]+)*$")]
    group_by: Option<String>,
    /// Bucket size (default `day`).
    #[serde(default)]
    #[param(inline)]
    granularity: Granularity,
    /// `dim:value`; repeat it. Values of one dimension are or-ed, dimensions and-ed.
    #[serde(default)]
    #[param(pattern = r"^[A-Za-z0-9_.:/-]+:.+$")]
    filter: Vec<String>,
    /// `json` (default) or `csv`.
    #[serde(default)]
    #[param(inline)]
    format: OutFormat,
    /// Groups per page (1 to 10,000; default 10,000).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    limit: Option<Bounded<1, MAX_GROUPS>>,
    /// Groups to skip.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 10000000)]
    offset: Option<Offset>,
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
    pub granularity: Granularity,
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

fn parse_group_by(text: Option<&str>, cube: &CostCube) -> ApiResult<Vec<Dimension>> {
    let Some(text) = text else {
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

fn parse_filters(filters: &[String], cube: &CostCube) -> ApiResult<Scope> {
    let mut conditions: Vec<(Dimension, Vec<String>)> = Vec::new();
    for f in filters {
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
        ReadRefusals,
    ))]
pub async fn costs(
    State(state): State<AppState>,
    Params(p): Params<CostsParams>,
) -> ApiResult<Response> {
    let cube = state.cube();
    let last = cube
        .last_day()
        .unwrap_or_else(|| Day::from_date(state.ctx.clock.now().date_naive()));
    let (from, to) = range(p.from, p.to, (last.add_days(-29), last))?;
    let group_by = parse_group_by(p.group_by.as_deref(), &cube)?;
    let granularity = p.granularity;
    let scope = parse_filters(&p.filter, &cube)?;
    let format = p.format;
    let page = Page::of(p.limit, p.offset, MAX_GROUPS);
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
    let page_of = CostTable {
        periods: table.periods,
        groups: table
            .groups
            .into_iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .collect(),
    };
    if format == OutFormat::Csv {
        let csv =
            crate::report::cost_periods(&page_of, &group_by).render(crate::report::Format::Csv);
        return Ok(csv_response(csv, "costs.csv"));
    }
    let groups: Vec<CostGroupOut> = page_of
        .groups
        .into_iter()
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
        granularity,
        group_by: names,
        periods: page_of.periods,
        next_offset: page.next(page.offset + (groups.len() as i64) < total_groups as i64),
        groups,
        total_groups,
    })
    .into_response())
}
