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

/// The tables that hold a run's history: each table, the columns under which the newest run's
/// rows are kept whatever their age (what the "latest" reads look for), and its cut-off.
const HISTORY: [(&str, &[&str], Cut); 7] = [
    ("forecasts", &["series"], Cut::Forecasts),
    ("anomalies", &[], Cut::Forecasts),
    ("forecast_accuracy", &["series", "model"], Cut::Forecasts),
    ("budget_evaluations", &["budget"], Cut::Evaluations),
    ("alerts", &["channel"], Cut::Alerts),
    ("planned_changes", &[], Cut::Runs),
    ("action_log", &[], Cut::Runs),
];

/// State rows that keep the run they name alive: (table, column).
const STATE: [(&str, &str); 2] = [
    ("budget_state", "updated_run"),
    ("throttled_objects", "run_id"),
];

/// Deletes `table`'s rows of runs started before `$1`, except the newest run's under `keep`.
fn prune_history(table: &str, keep: &[&str]) -> String {
    let same: Vec<String> = keep
        .iter()
        .map(|c| format!("l.{c} = {table}.{c}"))
        .collect();
    let of_key = match same.is_empty() {
        true => String::new(),
        false => format!(" WHERE {}", same.join(" AND ")),
    };
    format!(
        "DELETE FROM {table} WHERE run_id IN (SELECT id FROM runs WHERE started_at < $1) \
         AND run_id < (SELECT MAX(l.run_id) FROM {table} l{of_key})"
    )
}

/// Deletes the finished runs started before `$1` that no history or state row names.
fn prune_runs() -> String {
    let named = HISTORY
        .iter()
        .map(|(table, _, _)| (*table, "run_id"))
        .chain(STATE)
        .map(|(table, column)| {
            format!(" AND NOT EXISTS (SELECT 1 FROM {table} x WHERE x.{column} = runs.id)")
        })
        .collect::<String>();
    format!("DELETE FROM runs WHERE started_at < $1 AND outcome <> 'running'{named}")
}

/// Schedule claims by the tick they claimed.
const CLAIMS: &str = "DELETE FROM schedule_claims WHERE tick < $1";

#[derive(Clone, Copy)]
enum Cut {
    Runs,
    Forecasts,
    Evaluations,
    Alerts,
}

impl Store {
    /// Deletes the history `before` allows, all or nothing.
    pub async fn prune(&self, before: &PruneBefore) -> Result<Pruned> {
        let mut pruned = Pruned::default();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (table, keep, cut) in HISTORY {
                let (at, count) = match cut {
                    Cut::Runs => (before.runs, &mut pruned.actions),
                    Cut::Forecasts => (before.forecasts, &mut pruned.forecasts),
                    Cut::Evaluations => (before.evaluations, &mut pruned.evaluations),
                    Cut::Alerts => (before.alerts, &mut pruned.alerts),
                };
                // Built from the constants above only.
                let sql = sqlx::AssertSqlSafe(prune_history(table, keep));
                *count += sqlx::query(sql).bind(at).execute(&mut *tx).await?.rows_affected();
            }
            pruned.claims = sqlx::query(CLAIMS)
                .bind(before.claims)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            pruned.runs = sqlx::query(sqlx::AssertSqlSafe(prune_runs()))
                .bind(before.runs)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
        });
        Ok(pruned)
    }
}
