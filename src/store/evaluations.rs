//! What the budget, act and notify stages store: evaluations, planned changes and alerts.

use chrono::NaiveDate;
use sqlx::Row;

use super::{Result, Store, StoreError, day_bounds, day_of, to_json};
use crate::domain::{
    ActionKind, BudgetMode, Currency, Day, DayRange, Evaluation, Money, PlanOutcome, PlannedChange,
    Projection, Status,
};

/// An alert as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    /// The run that built it.
    pub run_id: i64,
    /// Where it went, e.g. `slack`.
    pub channel: String,
    /// The body, JSON.
    pub payload: serde_json::Value,
    /// `sent`, `not-configured` or `failed: ...`.
    pub outcome: String,
}

/// An `evaluations` row, as stored.
#[derive(sqlx::FromRow)]
struct EvaluationRow {
    budget: String,
    as_of: NaiveDate,
    amount: f64,
    currency: String,
    period_start: NaiveDate,
    period_end: NaiveDate,
    actual_to_date: f64,
    reported_through: Option<NaiveDate>,
    forecast_days: i32,
    projected: f64,
    lo80: f64,
    hi80: f64,
    p_breach: f64,
    status: String,
    mode: String,
    forecast_error: Option<f64>,
    steps: i32,
    drivers: String,
    plan: Option<String>,
    lagging: Option<String>,
}

impl TryFrom<EvaluationRow> for Evaluation {
    type Error = StoreError;

    fn try_from(r: EvaluationRow) -> Result<Evaluation> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("evaluation of {}: {what}", r.budget));
        let period = DayRange::new(day_of(r.period_start), day_of(r.period_end))
            .map_err(|e| corrupt(e.to_string()))?;
        let currency = Currency::parse(&r.currency).map_err(|e| corrupt(e.to_string()))?;
        let status =
            Status::parse(&r.status).ok_or_else(|| corrupt(format!("status {:?}", r.status)))?;
        let mode =
            BudgetMode::parse(&r.mode).ok_or_else(|| corrupt(format!("mode {:?}", r.mode)))?;
        let drivers =
            serde_json::from_str(&r.drivers).map_err(|e| corrupt(format!("drivers: {e}")))?;
        let plan = r
            .plan
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(format!("plan: {e}")))?;
        let lagging = r
            .lagging
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| corrupt(format!("lagging: {e}")))?
            .unwrap_or_default();
        Ok(Evaluation {
            as_of: day_of(r.as_of),
            amount: Money::new(r.amount, currency),
            projection: Projection {
                period,
                actual_to_date: r.actual_to_date,
                reported_through: r.reported_through.map(day_of),
                forecast_days: r.forecast_days.max(0) as usize,
                mean: r.projected,
                lo80: r.lo80,
                hi80: r.hi80,
                p_breach: r.p_breach,
            },
            status,
            mode,
            forecast_error: r.forecast_error,
            steps: r.steps.max(0) as u32,
            drivers,
            plan,
            lagging,
            budget: r.budget,
        })
    }
}

impl Store {
    /// Stores a run's budget evaluations.
    pub async fn save_evaluations(&self, run_id: i64, evaluations: &[Evaluation]) -> Result<()> {
        let sql = "INSERT INTO budget_evaluations (run_id, budget, as_of, period_start, period_end, \
                   amount, currency, actual_to_date, reported_through, forecast_days, projected, lo80, \
                   hi80, p_breach, status, mode, forecast_error, steps, drivers, plan, lagging) VALUES ($1, $2, \
                   $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for e in evaluations {
                let p = &e.projection;
                sqlx::query(sql)
                    .bind(run_id)
                    .bind(e.budget.clone())
                    .bind(e.as_of.date())
                    .bind(p.period.start().date())
                    .bind(p.period.end().date())
                    .bind(e.amount.amount)
                    .bind(e.amount.currency.as_str().to_string())
                    .bind(p.actual_to_date)
                    .bind(p.reported_through.map(Day::date))
                    .bind(p.forecast_days as i32)
                    .bind(p.mean)
                    .bind(p.lo80)
                    .bind(p.hi80)
                    .bind(p.p_breach)
                    .bind(e.status.as_str())
                    .bind(e.mode.as_str())
                    .bind(e.forecast_error)
                    .bind(e.steps as i32)
                    .bind(super::to_json(&e.drivers))
                    .bind(e.plan.as_ref().map(|c| {
                        serde_json::to_string(c)
                            .expect("a plan check is numbers and days: it always serialises")
                    }))
                    .bind((!e.lagging.is_empty()).then(|| to_json(&e.lagging)))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest evaluation of every budget, by budget name.
    pub async fn latest_evaluations(&self) -> Result<Vec<Evaluation>> {
        let sql = "SELECT e.* FROM budget_evaluations e JOIN (SELECT budget, MAX(run_id) AS run_id \
                   FROM budget_evaluations GROUP BY budget) l ON l.budget = e.budget \
                   AND l.run_id = e.run_id WHERE $1 IS NULL OR e.budget = $1 ORDER BY e.budget";
        self.select_evaluations(sql, None, None).await
    }

    /// A budget's evaluations, oldest first: the newest `limit`, from `since` if given.
    pub async fn evaluation_history(
        &self,
        budget: &str,
        since: Option<Day>,
        limit: i64,
    ) -> Result<Vec<Evaluation>> {
        let sql = "SELECT * FROM (SELECT e.*, e.run_id AS rid FROM budget_evaluations e \
                   WHERE e.budget = $1 AND e.as_of >= $2 ORDER BY e.run_id DESC LIMIT $3) h \
                   ORDER BY rid";
        let (since, _) = day_bounds(since, None);
        self.select_evaluations(sql, Some(budget.to_string()), Some((since, limit)))
            .await
    }

    async fn select_evaluations(
        &self,
        sql: &'static str,
        budget: Option<String>,
        window: Option<(NaiveDate, i64)>,
    ) -> Result<Vec<Evaluation>> {
        let rows: Vec<EvaluationRow> = with_pool!(self, pool => {
            let mut query = sqlx::query_as(sql).bind(budget);
            if let Some((since, limit)) = window {
                query = query.bind(since).bind(limit);
            }
            query.fetch_all(pool).await?
        });
        rows.into_iter().map(Evaluation::try_from).collect()
    }

    /// Stores the changes a run planned (or applied), with their outcome.
    pub async fn save_planned_changes(
        &self,
        run_id: i64,
        changes: &[PlannedChange],
        outcome: PlanOutcome,
    ) -> Result<()> {
        let sql = "INSERT INTO planned_changes (run_id, budget, step, action, namespaces, selector, \
                   description, mode, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for c in changes {
                sqlx::query(sql)
                    .bind(run_id)
                    .bind(c.budget.clone())
                    .bind(c.step as i32)
                    .bind(to_json(&c.action))
                    .bind(to_json(&c.namespaces))
                    .bind(c.selector.clone())
                    .bind(c.description.clone())
                    .bind(c.mode.as_str())
                    .bind(outcome.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The changes planned by the newest run that planned any, with their outcome.
    pub async fn latest_planned_changes(&self) -> Result<Vec<(PlannedChange, PlanOutcome)>> {
        let sql = "SELECT budget, step, action, namespaces, selector, description, mode, outcome \
                   FROM planned_changes WHERE run_id = (SELECT MAX(run_id) FROM planned_changes) \
                   ORDER BY budget, step";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let action: String = r.try_get("action")?;
                    let namespaces: String = r.try_get("namespaces")?;
                    let mode: String = r.try_get("mode")?;
                    let step: i32 = r.try_get("step")?;
                    let action: ActionKind = serde_json::from_str(&action)
                        .map_err(|e| StoreError::Corrupt(format!("action {action:?}: {e}")))?;
                    Ok((
                        PlannedChange {
                            budget: r.try_get("budget")?,
                            step: step.max(0) as u32,
                            action,
                            namespaces: serde_json::from_str(&namespaces).map_err(|e| {
                                StoreError::Corrupt(format!("namespaces {namespaces:?}: {e}"))
                            })?,
                            selector: r.try_get("selector")?,
                            description: r.try_get("description")?,
                            mode: BudgetMode::parse(&mode)
                                .ok_or_else(|| StoreError::Corrupt(format!("mode {mode:?}")))?,
                        },
                        {
                            let outcome: String = r.try_get("outcome")?;
                            outcome.parse().map_err(|_| {
                                StoreError::Corrupt(format!("plan outcome {outcome:?}"))
                            })?
                        },
                    ))
                })
                .collect()
        })
    }

    /// Records an alert built by a run and what became of it.
    pub async fn save_alert(
        &self,
        run_id: i64,
        channel: &str,
        payload: &serde_json::Value,
        outcome: &str,
    ) -> Result<()> {
        let sql = "INSERT INTO alerts (run_id, channel, payload, outcome) VALUES ($1, $2, $3, $4)";
        with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(run_id)
                .bind(channel.to_string())
                .bind(payload.to_string())
                .bind(outcome.to_string())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Every recorded alert, oldest first.
    pub async fn alerts(&self) -> Result<Vec<AlertRecord>> {
        let sql = "SELECT run_id, channel, payload, outcome FROM alerts ORDER BY run_id, channel";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let payload: String = r.try_get("payload")?;
                    Ok(AlertRecord {
                        run_id: r.try_get("run_id")?,
                        channel: r.try_get("channel")?,
                        payload: serde_json::from_str(&payload)
                            .map_err(|e| StoreError::Corrupt(format!("alert payload: {e}")))?,
                        outcome: r.try_get("outcome")?,
                    })
                })
                .collect()
        })
    }
}
