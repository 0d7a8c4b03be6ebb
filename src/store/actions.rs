//! What budgets remember and what acting did: hysteresis state, the objects costcast holds
//! changed, and the action log.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::Row;

use super::{Result, Store, StoreError, day_of};
use crate::domain::{
    ActionRecord, AlertMark, BudgetState, Engaged, FieldChange, ObjectChange, ObjectKind,
    ObjectRef, Operation, Outcome, Status,
};

/// A budget's stored state and the last alert sent about it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredState {
    /// The hysteresis state.
    pub state: BudgetState,
    /// The last alert, if any was sent this period.
    pub alerted: Option<AlertMark>,
}

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::Corrupt(what.into())
}

/// The changed fields of a row, stored as JSON text: a column type both backends share.
struct Fields(Vec<FieldChange>);

impl TryFrom<String> for Fields {
    type Error = serde_json::Error;

    fn try_from(text: String) -> std::result::Result<Fields, serde_json::Error> {
        serde_json::from_str(&text).map(Fields)
    }
}

/// The columns of a held or logged change, as stored.
#[derive(sqlx::FromRow)]
struct ChangeRow {
    budget: String,
    step: i32,
    kind: String,
    namespace: String,
    name: String,
    #[sqlx(try_from = "String")]
    fields: Fields,
}

impl TryFrom<ChangeRow> for ObjectChange {
    type Error = StoreError;

    fn try_from(r: ChangeRow) -> Result<ObjectChange> {
        let kind =
            ObjectKind::parse(&r.kind).ok_or_else(|| corrupt(format!("kind {:?}", r.kind)))?;
        Ok(ObjectChange {
            budget: r.budget,
            step: r.step.max(0) as u32,
            target: ObjectRef {
                kind,
                namespace: r.namespace,
                name: r.name,
            },
            fields: r.fields.0,
        })
    }
}

/// An action log row, as stored.
#[derive(sqlx::FromRow)]
struct ActionRow {
    #[sqlx(flatten)]
    change: ChangeRow,
    operation: String,
    outcome: String,
    detail: String,
}

impl TryFrom<ActionRow> for ActionRecord {
    type Error = StoreError;

    fn try_from(r: ActionRow) -> Result<ActionRecord> {
        let operation = match r.operation.as_str() {
            "apply" => Operation::Apply,
            "restore" => Operation::Restore,
            other => return Err(corrupt(format!("operation {other:?}"))),
        };
        let outcome = Outcome::parse(&r.outcome)
            .ok_or_else(|| corrupt(format!("outcome {:?}", r.outcome)))?;
        Ok(ActionRecord {
            operation,
            change: r.change.try_into()?,
            outcome,
            detail: r.detail,
        })
    }
}

/// One entry of the action log, with where and when it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedAction {
    /// The entry's id (what `POST /api/v1/actions/{id}/restore` takes).
    pub id: i64,
    /// The run that made it.
    pub run_id: i64,
    /// When that run started.
    pub at: DateTime<Utc>,
    /// What was done.
    pub record: ActionRecord,
}

/// A `budget_state` row, as stored.
#[derive(sqlx::FromRow)]
struct StateRow {
    budget: String,
    period_start: NaiveDate,
    last_day: NaiveDate,
    status: String,
    steps: Option<i32>,
    calm_days: i32,
    over_at_step: f64,
    alerted: Option<String>,
}

impl TryFrom<StateRow> for StoredState {
    type Error = StoreError;

    fn try_from(r: StateRow) -> Result<StoredState> {
        let alerted = r
            .alerted
            .map(|a| serde_json::from_str(&a).map_err(|e| corrupt(format!("alerted: {e}"))))
            .transpose()?;
        let status =
            Status::parse(&r.status).ok_or_else(|| corrupt(format!("status {:?}", r.status)))?;
        let state = BudgetState {
            period_start: day_of(r.period_start),
            last_day: day_of(r.last_day),
            status,
            engaged: r.steps.map(|s| Engaged {
                steps: s.max(0) as u32,
                calm_days: r.calm_days.max(0) as u32,
                over_at_step: r.over_at_step,
            }),
        };
        Ok(StoredState { state, alerted })
    }
}

/// An action log row with its run's start, as the log's listing reads it.
#[derive(sqlx::FromRow)]
struct LoggedRow {
    id: i64,
    run_id: i64,
    started_at: DateTime<Utc>,
    #[sqlx(flatten)]
    action: ActionRow,
}

impl TryFrom<LoggedRow> for LoggedAction {
    type Error = StoreError;

    fn try_from(r: LoggedRow) -> Result<LoggedAction> {
        Ok(LoggedAction {
            id: r.id,
            run_id: r.run_id,
            at: r.started_at,
            record: r.action.try_into()?,
        })
    }
}

/// The action log's columns with their run's start (a macro so the queries stay `&'static`).
macro_rules! logged_action_sql {
    ($rest:literal) => {
        concat!(
            "SELECT a.id, a.run_id, r.started_at, a.budget, a.step, a.operation, a.kind, \
             a.namespace, a.name, a.fields, a.outcome, a.detail \
             FROM action_log a JOIN runs r ON r.id = a.run_id ",
            $rest
        )
    };
}

impl Store {
    /// The action log newest first, of one budget or all, one page at a time.
    pub async fn action_log(
        &self,
        budget: Option<&str>,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<LoggedAction>> {
        let sql = logged_action_sql!(
            "WHERE ($1 IS NULL OR a.budget = $1) ORDER BY a.id DESC LIMIT $2 OFFSET $3"
        );
        let rows: Vec<LoggedRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(budget.map(str::to_string))
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(LoggedAction::try_from).collect()
    }

    /// One entry of the action log.
    pub async fn logged_action(&self, id: i64) -> Result<Option<LoggedAction>> {
        let sql = logged_action_sql!("WHERE a.id = $1");
        let row: Option<LoggedRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await?);
        row.map(LoggedAction::try_from).transpose()
    }

    /// Every budget's stored state, by name.
    pub async fn budget_states(&self) -> Result<BTreeMap<String, StoredState>> {
        let sql = "SELECT budget, period_start, last_day, status, steps, calm_days, over_at_step, \
                   alerted FROM budget_state";
        let rows: Vec<StateRow> =
            with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        rows.into_iter()
            .map(|r| Ok((r.budget.clone(), StoredState::try_from(r)?)))
            .collect()
    }

    /// Saves budgets' new states in one transaction; the alert marks of a budget whose period
    /// changed are cleared, so the new period alerts afresh.
    pub async fn save_budget_states(
        &self,
        run_id: i64,
        states: &[(String, BudgetState)],
    ) -> Result<()> {
        let sql = "INSERT INTO budget_state (budget, period_start, last_day, status, steps, \
                   calm_days, over_at_step, alerted, updated_run) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8) \
                   ON CONFLICT (budget) DO UPDATE SET \
                   alerted = CASE WHEN budget_state.period_start = excluded.period_start \
                     THEN budget_state.alerted ELSE NULL END, \
                   period_start = excluded.period_start, last_day = excluded.last_day, \
                   status = excluded.status, steps = excluded.steps, \
                   calm_days = excluded.calm_days, over_at_step = excluded.over_at_step, \
                   updated_run = excluded.updated_run";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (budget, s) in states {
                sqlx::query(sql)
                    .bind(budget.clone())
                    .bind(s.period_start.date())
                    .bind(s.last_day.date())
                    .bind(s.status.as_str())
                    .bind(s.engaged.map(|e| e.steps as i32))
                    .bind(s.engaged.map_or(0, |e| e.calm_days as i32))
                    .bind(s.engaged.map_or(0.0, |e| e.over_at_step))
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Records that `mark` was alerted for `budget`.
    pub async fn mark_alerted(&self, budget: &str, mark: &AlertMark) -> Result<()> {
        let sql = "UPDATE budget_state SET alerted = $1 WHERE budget = $2";
        let json = super::to_json(mark);
        with_pool!(self, pool => {
            sqlx::query(sql).bind(json).bind(budget.to_string()).execute(pool).await?;
        });
        Ok(())
    }

    /// The objects costcast holds changed, for one budget or all.
    pub async fn throttled(&self, budget: Option<&str>) -> Result<Vec<ObjectChange>> {
        let sql = "SELECT kind, namespace, name, budget, step, fields FROM throttled_objects \
                   WHERE ($1 IS NULL OR budget = $1) ORDER BY budget, kind, namespace, name";
        let rows: Vec<ChangeRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(budget.map(str::to_string))
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(ObjectChange::try_from).collect()
    }

    /// Logs a run's action records and, in the same transaction, keeps the table of objects
    /// held changed in step: an applied change is held, a restored or conflicting one released.
    pub async fn save_actions(&self, run_id: i64, records: &[ActionRecord]) -> Result<()> {
        let log = "INSERT INTO action_log (run_id, budget, step, operation, kind, namespace, name, \
                   fields, outcome, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let hold = "INSERT INTO throttled_objects (kind, namespace, name, budget, step, fields, \
                    run_id) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (kind, namespace, name) \
                    DO UPDATE SET budget = excluded.budget, step = excluded.step, \
                    fields = excluded.fields, run_id = excluded.run_id";
        let release =
            "DELETE FROM throttled_objects WHERE kind = $1 AND namespace = $2 AND name = $3";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for r in records {
                let c = &r.change;
                let t = &c.target;
                sqlx::query(log)
                    .bind(run_id)
                    .bind(c.budget.clone())
                    .bind(c.step as i32)
                    .bind(r.operation.as_str())
                    .bind(t.kind.as_str())
                    .bind(t.namespace.clone())
                    .bind(t.name.clone())
                    .bind(super::to_json(&c.fields))
                    .bind(r.outcome.as_str())
                    .bind(r.detail.clone())
                    .execute(&mut *tx)
                    .await?;
                match (r.operation, r.outcome) {
                    (Operation::Apply, Outcome::Done) => {
                        sqlx::query(hold)
                            .bind(t.kind.as_str())
                            .bind(t.namespace.clone())
                            .bind(t.name.clone())
                            .bind(c.budget.clone())
                            .bind(c.step as i32)
                            .bind(super::to_json(&c.fields))
                            .bind(run_id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    (Operation::Restore, Outcome::Done | Outcome::Conflict) => {
                        sqlx::query(release)
                            .bind(t.kind.as_str())
                            .bind(t.namespace.clone())
                            .bind(t.name.clone())
                            .execute(&mut *tx)
                            .await?;
                    }
                    _ => {}
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The action records of one run, in the order they were made.
    pub async fn actions(&self, run_id: i64) -> Result<Vec<ActionRecord>> {
        let sql = "SELECT budget, step, operation, kind, namespace, name, fields, outcome, detail \
                   FROM action_log WHERE run_id = $1 ORDER BY id";
        let rows: Vec<ActionRow> =
            with_pool!(self, pool => sqlx::query_as(sql).bind(run_id).fetch_all(pool).await?);
        rows.into_iter().map(ActionRecord::try_from).collect()
    }

    /// The newest run that logged actions, if any.
    pub async fn latest_action_run(&self) -> Result<Option<i64>> {
        let sql = "SELECT MAX(run_id) AS run_id FROM action_log";
        with_pool!(self, pool => {
            let row = sqlx::query(sql).fetch_one(pool).await?;
            Ok(row.try_get("run_id")?)
        })
    }
}
