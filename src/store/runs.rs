//! Run records: a run's start, its end with outcome and detail, and the newest runs.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Result, Store, to_json};
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
}
