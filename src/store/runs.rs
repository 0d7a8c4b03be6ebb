//! Run records: a run's start, its end with outcome and detail, and the newest runs.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, StoreError, to_json};
use crate::domain::{RunDetail, RunOutcome, RunRecord};

impl Store {
    /// Records the start of a run and returns its id.
    pub async fn start_run(&self, job: &str, at: DateTime<Utc>) -> Result<i64> {
        let sql = "INSERT INTO runs (job, started_at) VALUES ($1, $2) RETURNING id";
        with_pool!(self, pool => Ok(sqlx::query(sql)
            .bind(job.to_string())
            .bind(at)
            .fetch_one(pool)
            .await?
            .try_get("id")?))
    }

    /// Records that run `id` is still alive at `at`.
    pub async fn beat(&self, id: i64, at: DateTime<Utc>) -> Result<()> {
        let sql = "UPDATE runs SET heartbeat_at = $2 WHERE id = $1 AND outcome = 'running'";
        with_pool!(self, pool => {
            sqlx::query(sql).bind(id).bind(at).execute(pool).await?;
        });
        Ok(())
    }

    /// Records as interrupted, at `at`, every run still `running` whose last sign of life (its
    /// heartbeat, else its start) is older than `cutoff`: its process was killed. Their ids.
    pub async fn interrupt_abandoned(
        &self,
        cutoff: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>> {
        let select = "SELECT id, started_at, heartbeat_at FROM runs \
                      WHERE outcome = 'running' AND COALESCE(heartbeat_at, started_at) < $1";
        let update = "UPDATE runs SET outcome = 'interrupted', finished_at = $2, detail = $3 \
                      WHERE id = $1 AND outcome = 'running'";
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let abandoned: Vec<(i64, DateTime<Utc>)> = sqlx::query(select)
                .bind(cutoff)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| {
                    let beat: Option<DateTime<Utc>> = r.try_get("heartbeat_at")?;
                    Ok((r.try_get("id")?, beat.map_or_else(|| r.try_get("started_at"), Ok)?))
                })
                .collect::<Result<_>>()?;
            for (id, seen) in &abandoned {
                let detail = RunDetail {
                    error: Some(format!(
                        "its process stopped without finishing it (last seen alive at {seen})"
                    )),
                    ..RunDetail::default()
                };
                sqlx::query(update)
                    .bind(*id)
                    .bind(at)
                    .bind(to_json(&detail))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(abandoned.into_iter().map(|(id, _)| id).collect())
        })
    }

    /// Records the end of a run.
    pub async fn finish_run(
        &self,
        id: i64,
        at: DateTime<Utc>,
        outcome: RunOutcome,
        detail: &RunDetail,
    ) -> Result<()> {
        let sql = "UPDATE runs SET finished_at = $2, outcome = $3, detail = $4 WHERE id = $1";
        let outcome = outcome.as_str();
        with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(id)
                .bind(at)
                .bind(outcome)
                .bind(to_json(detail))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// The most recent runs, newest first.
    pub async fn runs(&self, limit: i64) -> Result<Vec<RunRecord>> {
        self.runs_page(limit, 0).await
    }

    /// Runs newest first, one page at a time.
    pub async fn runs_page(&self, limit: i64, offset: i64) -> Result<Vec<RunRecord>> {
        let sql = "SELECT id, job, started_at, finished_at, outcome, detail FROM runs \
                   ORDER BY id DESC LIMIT $1 OFFSET $2";
        let rows: Vec<RunRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(RunRecord::try_from).collect()
    }
}

/// A `runs` row as stored: a [`RunRecord`] once its outcome and detail parse.
#[derive(sqlx::FromRow)]
struct RunRow {
    id: i64,
    job: String,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    outcome: String,
    detail: String,
}

impl TryFrom<RunRow> for RunRecord {
    type Error = StoreError;

    fn try_from(row: RunRow) -> Result<RunRecord> {
        let outcome = RunOutcome::parse(&row.outcome).ok_or_else(|| {
            StoreError::Corrupt(format!("run {} outcome {:?}", row.id, row.outcome))
        })?;
        let detail = serde_json::from_str(&row.detail)
            .map_err(|e| StoreError::Corrupt(format!("run {} detail: {e}", row.id)))?;
        Ok(RunRecord {
            id: row.id,
            job: row.job,
            started_at: row.started_at,
            finished_at: row.finished_at,
            outcome,
            detail,
        })
    }
}
