//! What the report API reads besides the stage outputs: pages of runs, one series' forecast,
//! budget modes set through the API, and the cheap checks `/readyz` and the cost cache make.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use sqlx::Row;

use super::{Result, Store, StoreError, day_of};
use crate::domain::{BudgetMode, Day, SeriesForecast};

/// A forecast row with when its run started.
#[derive(sqlx::FromRow)]
struct TimedRow {
    #[sqlx(flatten)]
    row: super::forecasts::ForecastRow,
    started_at: DateTime<Utc>,
}

impl Store {
    /// Answers when the database does (`/readyz`).
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// The cost data's version, bumped in every transaction that writes or drops cost or
    /// usage rows: a cache of the data is current while this stays the same, whatever order
    /// runs finish in and however much run history is pruned.
    pub async fn data_generation(&self) -> Result<i64> {
        let sql = "SELECT generation AS n FROM cost_generation";
        with_pool!(self, pool => Ok(sqlx::query(sql).fetch_one(pool).await?.try_get("n")?))
    }

    /// The first and last day with cost data.
    pub async fn cost_span(&self) -> Result<Option<(Day, Day)>> {
        let sql = "SELECT MIN(day) AS first_day, MAX(day) AS last_day FROM cost_points";
        with_pool!(self, pool => {
            let row = sqlx::query(sql).fetch_one(pool).await?;
            let first: Option<NaiveDate> = row.try_get("first_day")?;
            let last: Option<NaiveDate> = row.try_get("last_day")?;
            Ok(first.zip(last).map(|(f, l)| (day_of(f), day_of(l))))
        })
    }

    /// Calls `each` with every stored cost point (series id, day, amount), streaming the rows
    /// so millions of them never sit in memory at once. Returns how many there were.
    pub async fn each_cost(&self, mut each: impl FnMut(i64, Day, f64) + Send) -> Result<u64> {
        let sql = "SELECT series_id, day, amount FROM cost_points";
        let mut count = 0;
        with_pool!(self, pool => {
            let mut rows = sqlx::query(sql).fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let day: NaiveDate = r.try_get("day")?;
                each(r.try_get("series_id")?, day_of(day), r.try_get("amount")?);
                count += 1;
            }
        });
        Ok(count)
    }

    /// The newest forecast of one series and when its run started.
    pub async fn forecast_of(
        &self,
        series: &str,
    ) -> Result<Option<(SeriesForecast, DateTime<Utc>)>> {
        let sql = "SELECT f.series, f.model, f.history_end, f.note, f.shape, f.day, f.mean, f.lo80, \
                   f.hi80, f.lo95, f.hi95, f.sd_level, f.sd_noise, r.started_at FROM forecasts f \
                   JOIN runs r ON r.id = f.run_id \
                   WHERE f.series = $1 AND f.run_id = (SELECT MAX(run_id) FROM forecasts WHERE series = $1) \
                   ORDER BY f.day";
        let rows: Vec<TimedRow> = with_pool!(self, pool => sqlx::query_as(sql)
            .bind(series.to_string())
            .fetch_all(pool)
            .await?);
        let Some(started_at) = rows.first().map(|r| r.started_at) else {
            return Ok(None);
        };
        let forecast = super::forecasts::forecasts_of(rows.into_iter().map(|r| r.row).collect())?;
        Ok(forecast.into_iter().next().map(|f| (f, started_at)))
    }

    /// Names of every series with a stored forecast.
    pub async fn forecast_series(&self) -> Result<Vec<String>> {
        let sql = "SELECT DISTINCT series FROM forecasts ORDER BY series";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter().map(|r| Ok(r.try_get("series")?)).collect()
        })
    }

    /// Budget modes set through the API, by budget.
    pub async fn budget_modes(&self) -> Result<BTreeMap<String, BudgetMode>> {
        let sql = "SELECT budget, mode FROM budget_modes";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let mode: String = r.try_get("mode")?;
                    let mode = BudgetMode::parse(&mode)
                        .ok_or_else(|| StoreError::Corrupt(format!("budget mode {mode:?}")))?;
                    Ok((r.try_get("budget")?, mode))
                })
                .collect()
        })
    }

    /// Sets a budget's mode over the config file's.
    pub async fn set_budget_mode(
        &self,
        budget: &str,
        mode: BudgetMode,
        at: DateTime<Utc>,
    ) -> Result<()> {
        let sql = "INSERT INTO budget_modes (budget, mode, set_at) VALUES ($1, $2, $3) \
                   ON CONFLICT (budget) DO UPDATE SET mode = excluded.mode, set_at = excluded.set_at";
        with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(budget.to_string())
                .bind(mode.as_str())
                .bind(at)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Claims the scheduled `tick` of `job` for `holder`; `false` when another replica already
    /// has it.
    pub async fn claim_tick(&self, job: &str, tick: DateTime<Utc>, holder: &str) -> Result<bool> {
        let sql = "INSERT INTO schedule_claims (job, tick, claimed_by) VALUES ($1, $2, $3) \
                   ON CONFLICT (job, tick) DO NOTHING";
        let claimed = with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(job.to_string())
                .bind(tick)
                .bind(holder.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(claimed == 1)
    }
}
