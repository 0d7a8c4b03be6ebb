//! Pruning run history by age, in one transaction. The newest row each "latest" read looks
//! for (a series' forecast, a budget's evaluation, a channel's alert, the last plan and action
//! run) is kept whatever its age, and a run goes only once nothing refers to it.

use chrono::{DateTime, Utc};

use super::{Result, Store};

/// Rows from runs started before these times may go.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PruneBefore {
    /// Run records, their planned changes and their action log.
    pub runs: DateTime<Utc>,
    /// Forecasts, anomalies and backtest accuracy.
    pub forecasts: DateTime<Utc>,
    /// Budget evaluations.
    pub evaluations: DateTime<Utc>,
    /// Alerts.
    pub alerts: DateTime<Utc>,
    /// Schedule claims, by their tick.
    pub claims: DateTime<Utc>,
}

/// Rows deleted, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pruned {
    /// Run records.
    pub runs: u64,
    /// Forecast days, anomalies and accuracy rows.
    pub forecasts: u64,
    /// Budget evaluations.
    pub evaluations: u64,
    /// Planned changes and action log rows.
    pub actions: u64,
    /// Alerts.
    pub alerts: u64,
    /// Schedule claims.
    pub claims: u64,
}

/// Each table's pruning: the statement, which cut-off it takes, and what it counts toward.
/// `$1` is the cut-off.
const STEPS: [(&str, Cut); 8] = [
    (
        "DELETE FROM forecasts WHERE run_id IN (SELECT id FROM runs WHERE started_at < $1) \
         AND run_id < (SELECT MAX(l.run_id) FROM forecasts l WHERE l.series = forecasts.series)",
        Cut::Forecasts,
    ),
    (
        "DELETE FROM anomalies WHERE run_id IN (SELECT id FROM runs WHERE started_at < $1) \
         AND run_id < (SELECT MAX(run_id) FROM anomalies)",
        Cut::Forecasts,
    ),
    (
        "DELETE FROM forecast_accuracy WHERE run_id IN (SELECT id FROM runs WHERE started_at < $1) \
         AND run_id < (SELECT MAX(l.run_id) FROM forecast_accuracy l \
                       WHERE l.series = forecast_accuracy.series AND l.model = forecast_accuracy.model)",
        Cut::Forecasts,
    ),
    (
        "DELETE FROM budget_evaluations WHERE run_id IN (SELECT id FROM runs WHERE started_at < $1) \
         AND run_id < (SELECT MAX(l.run_id) FROM budget_evaluations l \
                       WHERE l.budget = budget_evaluations.budget)",
        Cut::Evaluations,
    ),
    (
        "DELETE FROM alerts WHERE run_id IN (SELECT id FROM runs WHERE started_at < $1) \
         AND run_id < (SELECT MAX(l.run_id) FROM alerts l WHERE l.channel = alerts.channel)",
        Cut::Alerts,
    ),
    (
        "DELETE FROM planned_changes WHERE run_id IN (SELECT id FROM runs WHERE started_at < $1) \
         AND run_id < (SELECT MAX(run_id) FROM planned_changes)",
        Cut::Runs,
    ),
    (
        "DELETE FROM action_log WHERE run_id IN (SELECT id FROM runs WHERE started_at < $1) \
         AND run_id < (SELECT MAX(run_id) FROM action_log)",
        Cut::Runs,
    ),
    ("DELETE FROM schedule_claims WHERE tick < $1", Cut::Claims),
];

/// The last step: runs old enough, finished, and referred to by nothing left.
const RUNS: &str = "DELETE FROM runs WHERE started_at < $1 AND outcome <> 'running' \
    AND NOT EXISTS (SELECT 1 FROM forecasts x WHERE x.run_id = runs.id) \
    AND NOT EXISTS (SELECT 1 FROM anomalies x WHERE x.run_id = runs.id) \
    AND NOT EXISTS (SELECT 1 FROM forecast_accuracy x WHERE x.run_id = runs.id) \
    AND NOT EXISTS (SELECT 1 FROM budget_evaluations x WHERE x.run_id = runs.id) \
    AND NOT EXISTS (SELECT 1 FROM alerts x WHERE x.run_id = runs.id) \
    AND NOT EXISTS (SELECT 1 FROM planned_changes x WHERE x.run_id = runs.id) \
    AND NOT EXISTS (SELECT 1 FROM action_log x WHERE x.run_id = runs.id) \
    AND NOT EXISTS (SELECT 1 FROM budget_state x WHERE x.updated_run = runs.id) \
    AND NOT EXISTS (SELECT 1 FROM throttled_objects x WHERE x.run_id = runs.id)";

#[derive(Clone, Copy)]
enum Cut {
    Runs,
    Forecasts,
    Evaluations,
    Alerts,
    Claims,
}

impl Store {
    /// Deletes the history `before` allows, all or nothing.
    pub async fn prune(&self, before: &PruneBefore) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (sql, cut) in STEPS {
                let (at, count) = match cut {
                    Cut::Runs => (before.runs, &mut pruned.actions),
                    Cut::Forecasts => (before.forecasts, &mut pruned.forecasts),
                    Cut::Evaluations => (before.evaluations, &mut pruned.evaluations),
                    Cut::Alerts => (before.alerts, &mut pruned.alerts),
                    Cut::Claims => (before.claims, &mut pruned.claims),
                };
                *count += sqlx::query(sql).bind(at).execute(&mut *tx).await?.rows_affected();
            }
            pruned.runs = sqlx::query(RUNS)
                .bind(before.runs)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        });
        Ok(pruned)
    }
}
