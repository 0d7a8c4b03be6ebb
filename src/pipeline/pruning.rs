//! The prune stage: run history older than `[retention]` keeps is deleted, counted back from
//! the wall clock (not a replayed day), so a replay never prunes what a live run needs.

use chrono::{DateTime, TimeDelta, Utc};

use super::{Counts, StageError, counts};
use crate::app::App;
use crate::store::PruneBefore;

/// Deletes what the retention settings no longer keep and counts it.
pub(super) async fn prune_stage(ctx: &App) -> Result<Counts, StageError> {
    let now = ctx.clock.now();
    let r = &ctx.config.retention;
    let back = |days: u32| -> DateTime<Utc> { now - TimeDelta::days(i64::from(days)) };
    let pruned = ctx
        .store
        .prune(&PruneBefore {
            runs: back(r.runs_days),
            forecasts: back(r.forecasts_days),
            evaluations: back(r.evaluations_days),
            alerts: back(r.alerts_days),
            claims: back(r.claims_days),
        })
        .await?;
    tracing::info!(?pruned, "Old run history pruned.");
    Ok(counts([
        ("runs", pruned.runs),
        ("forecast_rows", pruned.forecasts),
        ("evaluations", pruned.evaluations),
        ("action_rows", pruned.actions),
        ("alerts", pruned.alerts),
        ("claims", pruned.claims),
    ]))
}
