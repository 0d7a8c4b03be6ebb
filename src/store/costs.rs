//! Cost points and usage: replacing what a source covers, and reading series, days and
//! totals back.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use sqlx::{QueryBuilder, Row};

use super::{INSERT_CHUNK_ROWS, Result, Store, StoreError, day_bounds, day_of};
use crate::domain::{
    CostPoint, Currency, Day, DayRange, DaySpans, Dimensions, UsageMetric, UsagePoint,
};

/// A stored cost series.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSeries {
    /// The series' id.
    pub id: i64,
    /// Its dimensions.
    pub dims: Dimensions,
    /// Its currency.
    pub currency: Currency,
}

/// What one ingest of one source stores.
#[derive(Debug, Clone, Copy)]
pub struct Ingested<'a> {
    /// Daily costs.
    pub points: &'a [CostPoint],
    /// Daily usage.
    pub usage: &'a [UsagePoint],
    /// Days the source still marks as estimated.
    pub estimated: &'a [Day],
}

/// What replacing a source's period did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplaceSummary {
    /// Distinct series written.
    pub series: usize,
    /// Points written.
    pub points_written: u64,
    /// Points of the source in the period that were removed first.
    pub points_removed: u64,
    /// Usage points written.
    pub usage_written: u64,
}

/// Totals over stored cost points, for summaries and checks.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CostSummary {
    /// Stored points.
    pub points: i64,
    /// Stored series.
    pub series: i64,
    /// Sum of all amounts (across currencies).
    pub total: f64,
    /// Earliest day.
    pub first_day: Option<Day>,
    /// Latest day.
    pub last_day: Option<Day>,
}

/// The id of each series of `points`, inserted where new. Generic over the backend: the
/// statement and its binds are the same for both.
async fn series_ids<'p, DB>(
    tx: &mut sqlx::Transaction<'_, DB>,
    points: &'p [CostPoint],
) -> Result<BTreeMap<(&'p Dimensions, &'p Currency), i64>>
where
    DB: sqlx::Database,
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    (i64,): for<'r> sqlx::FromRow<'r, DB::Row>,
{
    let sql = "INSERT INTO series (source, provider, account, service, service_category, \
               charge_category, region, tags, currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
               ON CONFLICT (source, provider, account, service, service_category, \
               charge_category, region, tags, currency) DO UPDATE SET source = excluded.source \
               RETURNING id";
    let mut ids = BTreeMap::new();
    for p in points {
        let key = (&p.dims, &p.cost.currency);
        if ids.contains_key(&key) {
            continue;
        }
        let (id,): (i64,) = sqlx::query_as(sql)
            .bind(p.dims.source.clone())
            .bind(p.dims.provider.clone())
            .bind(p.dims.account.clone())
            .bind(p.dims.service.clone())
            .bind(p.dims.service_category.clone())
            .bind(p.dims.charge_category.clone())
            .bind(p.dims.region.clone())
            .bind(tags_json(&p.dims))
            .bind(p.cost.currency.as_str().to_string())
            .fetch_one(&mut **tx)
            .await?;
        ids.insert(key, id);
    }
    Ok(ids)
}

/// Marks the cost data changed, in the transaction that changes it.
const BUMP_GENERATION: &str = "UPDATE cost_generation SET generation = generation + 1";

impl Store {
    /// Replaces a source's costs for `range` with `points`, in one transaction: either every
    /// point is stored and the old ones are gone, or nothing changed.
    pub async fn replace_costs(
        &self,
        source: &str,
        range: DayRange,
        points: &[CostPoint],
    ) -> Result<ReplaceSummary> {
        self.replace_ingested(
            source,
            &DaySpans::of(range),
            &Ingested {
                points,
                usage: &[],
                estimated: &[],
            },
        )
        .await
    }

    /// Replaces everything a source stored on the days `covered` — costs, usage and the days
    /// still estimated — in one transaction: a failure leaves the old data whole.
    pub async fn replace_ingested(
        &self,
        source: &str,
        covered: &DaySpans,
        data: &Ingested<'_>,
    ) -> Result<ReplaceSummary> {
        let points = data.points;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut removed = 0u64;
            for range in covered.ranges() {
                let (start, end) = (range.start().date(), range.end().date());
                for sql in [
                    "DELETE FROM usage_points WHERE source = $1 AND day >= $2 AND day <= $3",
                    "DELETE FROM estimated_days WHERE source = $1 AND day >= $2 AND day <= $3",
                ] {
                    sqlx::query(sql)
                        .bind(source.to_string())
                        .bind(start)
                        .bind(end)
                        .execute(&mut *tx)
                        .await?;
                }
                removed += sqlx::query(
                    "DELETE FROM cost_points WHERE day >= $2 AND day <= $3 \
                     AND series_id IN (SELECT id FROM series WHERE source = $1)",
                )
                .bind(source.to_string())
                .bind(start)
                .bind(end)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            for chunk in data.usage.chunks(INSERT_CHUNK_ROWS) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO usage_points (source, day, namespace, labels, metric, quantity) ",
                );
                insert.push_values(chunk, |mut row, u| {
                    row.push_bind(source.to_string())
                        .push_bind(u.day.date())
                        .push_bind(u.namespace.clone())
                        .push_bind(super::to_json(&u.labels))
                        .push_bind(u.metric.name())
                        .push_bind(u.quantity);
                });
                insert.build().execute(&mut *tx).await?;
            }
            for chunk in data.estimated.chunks(INSERT_CHUNK_ROWS) {
                let mut insert = QueryBuilder::new("INSERT INTO estimated_days (source, day) ");
                insert.push_values(chunk, |mut row, d| {
                    row.push_bind(source.to_string()).push_bind(d.date());
                });
                insert.push(" ON CONFLICT (source, day) DO NOTHING");
                insert.build().execute(&mut *tx).await?;
            }
            let ids = series_ids(&mut tx, points).await?;

            let mut written = 0u64;
            for chunk in points.chunks(INSERT_CHUNK_ROWS) {
                let mut insert = QueryBuilder::new("INSERT INTO cost_points (series_id, day, amount) ");
                insert.push_values(chunk, |mut row, p| {
                    row.push_bind(ids[&(&p.dims, &p.cost.currency)])
                        .push_bind(p.day.date())
                        .push_bind(p.cost.amount);
                });
                insert.push(" ON CONFLICT (series_id, day) DO UPDATE SET amount = excluded.amount");
                written += insert.build().execute(&mut *tx).await?.rows_affected();
            }
            sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(ReplaceSummary {
                series: ids.len(),
                points_written: written,
                points_removed: removed,
                usage_written: data.usage.len() as u64,
            })
        })
    }

    /// The earliest day on or after `since` that any source still marks as estimated.
    pub async fn first_estimated_day(&self, since: Day) -> Result<Option<Day>> {
        with_pool!(self, pool => {
            let first: Option<NaiveDate> =
                sqlx::query("SELECT MIN(day) AS first FROM estimated_days WHERE day >= $1")
                    .bind(since.date())
                    .fetch_one(pool)
                    .await?
                    .try_get("first")?;
            Ok(first.map(day_of))
        })
    }

    /// What is stored for `source`: its newest day (costs or usage) and the days it still
    /// marks as estimated.
    pub async fn source_history(&self, source: &str) -> Result<(Option<Day>, Vec<Day>)> {
        with_pool!(self, pool => {
            let last_cost: Option<NaiveDate> = sqlx::query(
                "SELECT MAX(day) AS last FROM cost_points \
                 WHERE series_id IN (SELECT id FROM series WHERE source = $1)",
            )
            .bind(source.to_string())
            .fetch_one(pool)
            .await?
            .try_get("last")?;
            let last_usage: Option<NaiveDate> =
                sqlx::query("SELECT MAX(day) AS last FROM usage_points WHERE source = $1")
                    .bind(source.to_string())
                    .fetch_one(pool)
                    .await?
                    .try_get("last")?;
            let estimated = sqlx::query("SELECT day FROM estimated_days WHERE source = $1 ORDER BY day")
                .bind(source.to_string())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok(day_of(r.try_get("day")?)))
                .collect::<Result<Vec<Day>>>()?;
            Ok((last_cost.max(last_usage).map(day_of), estimated))
        })
    }

    /// Drops everything stored for sources not in `configured` (costs, their series, usage
    /// and estimated days), in one transaction; the sources dropped, with their cost points.
    pub async fn drop_sources_except(&self, configured: &[&str]) -> Result<Vec<(String, u64)>> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let stored: Vec<String> = sqlx::query(
                "SELECT source FROM series UNION SELECT source FROM usage_points \
                 UNION SELECT source FROM estimated_days",
            )
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|r| r.try_get("source"))
            .collect::<std::result::Result<_, _>>()?;
            let mut dropped = Vec::new();
            for source in stored.into_iter().filter(|s| !configured.contains(&s.as_str())) {
                let points = sqlx::query(
                    "DELETE FROM cost_points WHERE series_id IN (SELECT id FROM series WHERE source = $1)",
                )
                .bind(source.clone())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                for sql in [
                    "DELETE FROM series WHERE source = $1",
                    "DELETE FROM usage_points WHERE source = $1",
                    "DELETE FROM estimated_days WHERE source = $1",
                ] {
                    sqlx::query(sql).bind(source.clone()).execute(&mut *tx).await?;
                }
                dropped.push((source, points));
            }
            if !dropped.is_empty() {
                sqlx::query(BUMP_GENERATION).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(dropped)
        })
    }

    /// Each source's newest stored day (costs or usage) before `before`, so a replay sees
    /// what that day saw.
    pub async fn newest_days(&self, before: Day) -> Result<BTreeMap<String, Day>> {
        let sql = "SELECT source, MAX(day) AS last FROM (\
                   SELECT s.source AS source, c.day AS day FROM cost_points c \
                   JOIN series s ON s.id = c.series_id WHERE c.day < $1 \
                   UNION ALL SELECT source, day FROM usage_points WHERE day < $1) d \
                   GROUP BY source";
        with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(before.date())
                .fetch_all(pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("source")?, day_of(r.try_get("last")?))))
                .collect()
        })
    }

    /// Stored usage of `source`, optionally within days, oldest first.
    pub async fn usage(
        &self,
        source: &str,
        from: Option<Day>,
        to: Option<Day>,
    ) -> Result<Vec<UsagePoint>> {
        let (from, to) = day_bounds(from, to);
        let sql = "SELECT day, namespace, labels, metric, quantity FROM usage_points \
                   WHERE source = $1 AND day >= $2 AND day <= $3 \
                   ORDER BY day, namespace, labels, metric";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql)
                .bind(source.to_string())
                .bind(from)
                .bind(to)
                .fetch_all(pool)
                .await?;
            rows.iter()
                .map(|r| {
                    let labels: String = r.try_get("labels")?;
                    let metric: String = r.try_get("metric")?;
                    Ok(UsagePoint {
                        day: day_of(r.try_get("day")?),
                        namespace: r.try_get("namespace")?,
                        labels: serde_json::from_str(&labels)
                            .map_err(|e| StoreError::Corrupt(format!("usage labels {labels:?}: {e}")))?,
                        metric: UsageMetric::parse(&metric)
                            .ok_or_else(|| StoreError::Corrupt(format!("usage metric {metric:?}")))?,
                        quantity: r.try_get("quantity")?,
                    })
                })
                .collect()
        })
    }

    /// Every stored series.
    pub async fn series(&self) -> Result<Vec<StoredSeries>> {
        let sql = "SELECT id, source, provider, account, service, service_category, \
                   charge_category, region, tags, currency FROM series ORDER BY id";
        let rows = with_pool!(self, pool => {
            let mut out = Vec::new();
            for row in sqlx::query(sql).fetch_all(pool).await? {
                let tags: String = row.try_get("tags")?;
                let currency: String = row.try_get("currency")?;
                out.push(StoredSeries {
                    id: row.try_get("id")?,
                    dims: Dimensions {
                        source: row.try_get("source")?,
                        provider: row.try_get("provider")?,
                        account: row.try_get("account")?,
                        service: row.try_get("service")?,
                        service_category: row.try_get("service_category")?,
                        charge_category: row.try_get("charge_category")?,
                        region: row.try_get("region")?,
                        tags: serde_json::from_str(&tags)
                            .map_err(|e| StoreError::Corrupt(format!("series tags {tags:?}: {e}")))?,
                    },
                    currency: Currency::parse(&currency)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                });
            }
            out
        });
        Ok(rows)
    }

    /// Daily amounts `(series id, day, amount)` of every series, optionally within days.
    pub async fn daily_costs(
        &self,
        from: Option<Day>,
        to: Option<Day>,
    ) -> Result<Vec<(i64, Day, f64)>> {
        let (from, to) = day_bounds(from, to);
        let sql = "SELECT series_id, day, amount FROM cost_points \
                   WHERE day >= $1 AND day <= $2 ORDER BY series_id, day";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql).bind(from).bind(to).fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok((r.try_get("series_id")?, day_of(r.try_get("day")?), r.try_get("amount")?)))
                .collect()
        })
    }

    /// Counts and totals over every stored cost point.
    pub async fn cost_summary(&self) -> Result<CostSummary> {
        let sql = "SELECT COUNT(*) AS points, COUNT(DISTINCT series_id) AS series, \
                   COALESCE(SUM(amount), 0.0) AS total, MIN(day) AS first_day, MAX(day) AS last_day \
                   FROM cost_points";
        with_pool!(self, pool => {
            let row = sqlx::query(sql).fetch_one(pool).await?;
            let first: Option<NaiveDate> = row.try_get("first_day")?;
            let last: Option<NaiveDate> = row.try_get("last_day")?;
            Ok(CostSummary {
                points: row.try_get("points")?,
                series: row.try_get("series")?,
                total: row.try_get("total")?,
                first_day: first.map(day_of),
                last_day: last.map(day_of),
            })
        })
    }
}

/// The canonical JSON of a series' tags: keys sorted, so equal tags give equal text.
fn tags_json(dims: &Dimensions) -> String {
    super::to_json(&dims.tags)
}
