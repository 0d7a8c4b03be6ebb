//! The two admin writes: setting a budget's mode, and restoring one object costcast holds.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::budgets::find_budget;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::logs::ActionOut;
use super::params::{NoParams, Params};
use crate::domain::BudgetMode;

/// The body of a mode change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeRequest {
    /// `observe` (plan and report only) or `enforce` (apply).
    #[schema(pattern = "^(observe|enforce)$")]
    pub mode: String,
}

/// A budget's mode after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModeResponse {
    /// The budget.
    pub budget: String,
    /// The mode now in force.
    pub mode: String,
    /// The mode before.
    pub previous: String,
}

fn json_body<T: for<'de> Deserialize<'de>>(headers: &HeaderMap, body: &Bytes) -> ApiResult<T> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    if !is_json {
        return Err(ApiError::unsupported_media());
    }
    serde_json::from_slice(body).map_err(|e| ApiError::bad_param("body", e))
}

/// Sets a budget to observe or enforce; it wins over the config file from the next run on.
#[utoipa::path(post, path = "/api/v1/budgets/{name}/mode", tag = "admin",
    params(("name" = String, Path, description = "The budget's name")),
    request_body(content = ModeRequest, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The mode was set", body = ModeResponse),
        (status = 400, description = "The body is not {\"mode\": \"observe\"|\"enforce\"}", body = ErrorBody),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such budget", body = ErrorBody),
        (status = 415, description = "The body is not JSON", body = ErrorBody),
    ))]
pub async fn set_mode(
    State(state): State<AppState>,
    Path(name): Path<String>,
    _: Params<NoParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<ModeResponse>> {
    let budget = find_budget(&state, &name)?;
    let request: ModeRequest = json_body(&headers, &body)?;
    let mode = BudgetMode::parse(&request.mode).ok_or_else(|| {
        ApiError::bad_param(
            "mode",
            format!("{:?} is not observe or enforce", request.mode),
        )
    })?;
    let previous = state
        .ctx
        .store
        .budget_modes()
        .await?
        .get(&name)
        .copied()
        .unwrap_or(budget.mode);
    state
        .ctx
        .store
        .set_budget_mode(&name, mode, state.ctx.clock.now())
        .await?;
    tracing::info!(budget = %name, mode = mode.as_str(), previous = previous.as_str(), "Budget mode set through the API.");
    Ok(Json(ModeResponse {
        budget: name,
        mode: mode.as_str().to_string(),
        previous: previous.as_str().to_string(),
    }))
}

/// Puts back the object an action log entry changed, if costcast still holds it.
#[utoipa::path(post, path = "/api/v1/actions/{id}/restore", tag = "admin",
    params(("id" = i64, Path, description = "An action log entry's id", minimum = 1)),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the restore did (done, conflict or failed)", body = ActionOut),
        (status = 400, description = "The id is not a positive whole number", body = ErrorBody),
        (status = 401, description = "No or an unknown token", body = ErrorBody),
        (status = 403, description = "Not an admin token", body = ErrorBody),
        (status = 404, description = "No such action", body = ErrorBody),
        (status = 409, description = "costcast no longer holds the object", body = ErrorBody),
        (status = 503, description = "No Kubernetes API is configured or reachable", body = ErrorBody),
    ))]
pub async fn restore(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _: Params<NoParams>,
) -> ApiResult<Json<ActionOut>> {
    let id: i64 = id.parse().ok().filter(|n| *n >= 1).ok_or_else(|| {
        ApiError::bad_param("id", format!("{id:?} is not a positive whole number"))
    })?;
    let Some(entry) = state.ctx.store.logged_action(id).await? else {
        return Err(ApiError::not_found(format!("no action {id}")));
    };
    let target = entry.record.change.target.clone();
    let restored = crate::pipeline::restore_object(&state.ctx, &target, state.ctx.clock.now())
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, object = %target, "Restore through the API failed.");
            ApiError::unavailable(format!(
                "cannot restore {target}: the Kubernetes API or the store is unavailable"
            ))
        })?;
    let Some(record) = restored else {
        return Err(ApiError::conflict(format!(
            "costcast does not hold {target}; nothing to restore"
        )));
    };
    let newest = state
        .ctx
        .store
        .action_log(Some(&record.change.budget), 1, 0)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::unavailable("the restore was not recorded"))?;
    Ok(Json(ActionOut::from(newest)))
}
