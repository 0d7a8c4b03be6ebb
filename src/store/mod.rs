//! The only module that runs SQL. One `Store` API over two backends — PostgreSQL for production,
//! SQLite as the embedded default — with migrations per backend in `migrations/{postgres,sqlite}`.
//!
//! The SQL below is written once for both: it sticks to what PostgreSQL and SQLite share
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`), and dates are bound as `chrono` values that
//! sqlx stores as `DATE` in PostgreSQL and ISO-8601 text in SQLite, which sort the same way.

mod postgres;
mod sqlite;

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::{PgPool, QueryBuilder, Row, SqlitePool};

use crate::config::DatabaseUrl;
use crate::domain::{
    Accuracy, ActionKind, Anomaly, BudgetMode, CostPoint, Currency, DailyForecast, Day, DayRange,
    Dimensions, Evaluation, ModelKind, Money, PlannedChange, Projection, RunDetail, SeriesForecast,
    SeriesShape, Status, UsageMetric, UsagePoint,
};
// Run records are domain types; re-exported here, where callers used to find them.
pub use crate::domain::{RunOutcome, RunRecord};

/// A store failure. Driver errors keep their source, and those that say the database stopped
/// answering are told apart from the rest, so a server can answer 503 (try again) for them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or opened.
    #[error("cannot open database {url}: {message}")]
    Unavailable {
        /// The URL, password redacted.
        url: String,
        /// Why.
        message: String,
    },
    /// Migrations failed.
    #[error("migrating the database failed: {0}")]
    Migration(String),
    /// A row conflicts with one already stored.
    #[error("conflicting row: {0}")]
    Conflict(String),
    /// A stored value does not parse back into its domain type.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The database stopped answering: every pooled connection was busy past the timeout, or
    /// the connection was lost. Worth retrying.
    #[error("the database is not answering: {0}")]
    Lost(#[source] sqlx::Error),
    /// Any other database error.
    #[error("database error: {0}")]
    Other(#[source] sqlx::Error),
}

impl StoreError {
    /// Whether the database was unreachable (cannot open, not answering) rather than refusing
    /// or failing the request itself.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. } | StoreError::Lost(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => StoreError::Lost(e),
            // PostgreSQL's class 08 (connection exception) and 57P01-03 (the server shutting
            // down or restarting) say the same from the server's side.
            sqlx::Error::Database(db)
                if db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")) =>
            {
                StoreError::Lost(e)
            }
            _ => StoreError::Other(e),
        }
    }
}

/// Shorthand for store results.
pub type Result<T> = std::result::Result<T, StoreError>;

/// A connection pool to one of the two backends.
#[derive(Clone, Debug)]
pub enum Store {
    /// PostgreSQL.
    Postgres(PgPool),
    /// SQLite.
    Sqlite(SqlitePool),
}

/// Runs the same code against whichever pool the store holds. The body is compiled once per
/// backend, so the SQL in it must be valid for both.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Postgres($pool) => $body,
            Store::Sqlite($pool) => $body,
        }
    };
}

/// A [`DailyForecast`] from a `forecasts` row of either backend.
macro_rules! forecast_point {
    ($r:expr) => {
        DailyForecast {
            day: day_of($r.try_get("day")?),
            mean: $r.try_get("mean")?,
            lo80: $r.try_get("lo80")?,
            hi80: $r.try_get("hi80")?,
            lo95: $r.try_get("lo95")?,
            hi95: $r.try_get("hi95")?,
            sd_level: $r.try_get("sd_level")?,
            sd_noise: $r.try_get("sd_noise")?,
        }
    };
}

mod actions;

pub use actions::{LeaderLock, LoggedAction, StoredState};

mod reads;

/// Rows per multi-row INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 bind limits.
const INSERT_CHUNK_ROWS: usize = 2_000;

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

/// `value` as JSON text for a TEXT column. Only maps with non-string keys fail to serialise,
/// and the types stored this way have none.
fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("stored JSON types serialise")
}

fn day_of(date: NaiveDate) -> Day {
    Day::from_date(date)
}

/// Bounds for open-ended day ranges. Not `NaiveDate::MIN/MAX`: SQLite compares dates as text,
/// and those format with a sign (`+262142-12-31`) that sorts before every real date.
fn day_bounds(from: Option<Day>, to: Option<Day>) -> (NaiveDate, NaiveDate) {
    (
        from.unwrap_or(Day::EARLIEST).date(),
        to.unwrap_or(Day::LATEST).date(),
    )
}

impl Store {
    /// Opens the database at `url`, creating a SQLite file if it does not exist.
    pub async fn connect(url: &DatabaseUrl) -> Result<Store> {
        Store::open(url, true).await
    }

    /// Opens the database at `url` for a command that only reads: a missing SQLite file is an
    /// error, not a new empty database that would answer every report with nothing.
    pub async fn connect_existing(url: &DatabaseUrl) -> Result<Store> {
        if url.expose().starts_with("sqlite:") && !sqlite::exists(url.expose()) {
            return Err(StoreError::Unavailable {
                url: url.redacted(),
                message: "no such database file; a relative path is read from the config \
                          file's folder, and `costcast ingest` creates it"
                    .into(),
            });
        }
        Store::open(url, false).await
    }

    async fn open(url: &DatabaseUrl, create: bool) -> Result<Store> {
        let unavailable = |e: sqlx::Error| StoreError::Unavailable {
            url: url.redacted(),
            message: e.to_string(),
        };
        if url.expose().starts_with("sqlite:") {
            sqlite::connect(url.expose(), create)
                .await
                .map(Store::Sqlite)
                .map_err(unavailable)
        } else {
            postgres::connect(url.expose())
                .await
                .map(Store::Postgres)
                .map_err(unavailable)
        }
    }

    /// `postgres` or `sqlite`.
    pub fn backend(&self) -> &'static str {
        match self {
            Store::Postgres(_) => "postgres",
            Store::Sqlite(_) => "sqlite",
        }
    }

    /// Applies pending migrations; returns how many were applied.
    pub async fn migrate(&self) -> Result<usize> {
        let migrator = match self {
            Store::Postgres(_) => postgres::migrator(),
            Store::Sqlite(_) => sqlite::migrator(),
        };
        let before = self.applied_migrations().await.unwrap_or(0);
        let run = with_pool!(self, pool => migrator.run(pool).await);
        run.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(self.applied_migrations().await?.saturating_sub(before))
    }

    async fn applied_migrations(&self) -> Result<usize> {
        let sql = "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success";
        let n: i64 =
            with_pool!(self, pool => sqlx::query(sql).fetch_one(pool).await?.try_get("n")?);
        Ok(n as usize)
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }

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
            range,
            &Ingested {
                points,
                usage: &[],
                estimated: &[],
            },
        )
        .await
    }

    /// Replaces everything a source stored for the days in `range` — costs, usage and the
    /// days still estimated — in one transaction: a failure leaves the old data whole.
    pub async fn replace_ingested(
        &self,
        source: &str,
        range: DayRange,
        data: &Ingested<'_>,
    ) -> Result<ReplaceSummary> {
        let (start, end) = (range.start().date(), range.end().date());
        let points = data.points;
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
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
            for chunk in data.usage.chunks(INSERT_CHUNK_ROWS) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO usage_points (source, day, namespace, labels, metric, quantity) ",
                );
                insert.push_values(chunk, |mut row, u| {
                    row.push_bind(source.to_string())
                        .push_bind(u.day.date())
                        .push_bind(u.namespace.clone())
                        .push_bind(serde_json::to_string(&u.labels).unwrap_or_else(|_| "{}".into()))
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
            let removed = sqlx::query(
                "DELETE FROM cost_points WHERE day >= $2 AND day <= $3 \
                 AND series_id IN (SELECT id FROM series WHERE source = $1)",
            )
            .bind(source.to_string())
            .bind(start)
            .bind(end)
            .execute(&mut *tx)
            .await?
            .rows_affected();

            let mut ids: BTreeMap<(&Dimensions, &Currency), i64> = BTreeMap::new();
            for p in points {
                let key = (&p.dims, &p.cost.currency);
                if ids.contains_key(&key) {
                    continue;
                }
                let id: i64 = sqlx::query(
                    "INSERT INTO series (source, provider, account, service, service_category, \
                     charge_category, region, tags, currency) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (source, provider, account, service, service_category, \
                     charge_category, region, tags, currency) DO UPDATE SET source = excluded.source \
                     RETURNING id",
                )
                .bind(p.dims.source.clone())
                .bind(p.dims.provider.clone())
                .bind(p.dims.account.clone())
                .bind(p.dims.service.clone())
                .bind(p.dims.service_category.clone())
                .bind(p.dims.charge_category.clone())
                .bind(p.dims.region.clone())
                .bind(tags_json(&p.dims))
                .bind(p.cost.currency.as_str().to_string())
                .fetch_one(&mut *tx)
                .await?
                .try_get("id")?;
                ids.insert(key, id);
            }

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

    /// Stores a run's forecasts.
    pub async fn save_forecasts(&self, run_id: i64, forecasts: &[SeriesForecast]) -> Result<()> {
        let shapes: std::collections::HashMap<&str, String> = forecasts
            .iter()
            .map(|f| {
                let json = serde_json::to_string(&f.shape)
                    .expect("a shape is strings, numbers and days: it always serialises");
                (f.series.as_str(), json)
            })
            .collect();
        let rows: Vec<(&SeriesForecast, &DailyForecast)> = forecasts
            .iter()
            .flat_map(|f| f.points.iter().map(move |p| (f, p)))
            .collect();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(INSERT_CHUNK_ROWS / 2) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO forecasts (run_id, series, model, history_end, note, shape, day, mean, lo80, \
                     hi80, lo95, hi95, sd_level, sd_noise) ",
                );
                insert.push_values(chunk, |mut row, (f, p)| {
                    row.push_bind(run_id)
                        .push_bind(f.series.clone())
                        .push_bind(f.model.as_str())
                        .push_bind(f.history_end.date())
                        .push_bind(f.note.clone())
                        .push_bind(shapes[f.series.as_str()].clone())
                        .push_bind(p.day.date())
                        .push_bind(p.mean)
                        .push_bind(p.lo80)
                        .push_bind(p.hi80)
                        .push_bind(p.lo95)
                        .push_bind(p.hi95)
                        .push_bind(p.sd_level)
                        .push_bind(p.sd_noise);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest forecast of every series.
    pub async fn latest_forecasts(&self) -> Result<Vec<SeriesForecast>> {
        let sql = "SELECT f.series, f.model, f.history_end, f.note, f.shape, f.day, f.mean, f.lo80, f.hi80, \
                   f.lo95, f.hi95, f.sd_level, f.sd_noise FROM forecasts f JOIN (SELECT series, MAX(run_id) AS run_id \
                   FROM forecasts GROUP BY series) l ON l.series = f.series AND l.run_id = f.run_id \
                   ORDER BY f.series, f.day";
        let mut out: Vec<SeriesForecast> = Vec::new();
        with_pool!(self, pool => {
            for r in sqlx::query(sql).fetch_all(pool).await? {
                let series: String = r.try_get("series")?;
                let point = forecast_point!(r);
                match out.last_mut() {
                    Some(last) if last.series == series => last.points.push(point),
                    _ => {
                        let model: String = r.try_get("model")?;
                        out.push(SeriesForecast {
                            series,
                            model: ModelKind::parse(&model)
                                .ok_or_else(|| StoreError::Corrupt(format!("unknown model {model:?}")))?,
                            history_end: day_of(r.try_get("history_end")?),
                            note: r.try_get("note")?,
                            shape: shape_of(r.try_get("shape")?)?,
                            points: vec![point],
                        });
                    }
                }
            }
        });
        Ok(out)
    }

    /// Stores the anomalies a run found.
    pub async fn save_anomalies(&self, run_id: i64, anomalies: &[Anomaly]) -> Result<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in anomalies.chunks(INSERT_CHUNK_ROWS) {
                let mut insert =
                    QueryBuilder::new("INSERT INTO anomalies (run_id, series, day, actual, expected) ");
                insert.push_values(chunk, |mut row, a| {
                    row.push_bind(run_id)
                        .push_bind(a.series.clone())
                        .push_bind(a.day.date())
                        .push_bind(a.actual)
                        .push_bind(a.expected);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Anomalies found by the newest run that looked for them, within days if given.
    pub async fn latest_anomalies(
        &self,
        from: Option<Day>,
        to: Option<Day>,
    ) -> Result<Vec<Anomaly>> {
        let (from, to) = day_bounds(from, to);
        let sql = "SELECT series, day, actual, expected FROM anomalies \
                   WHERE run_id = (SELECT MAX(run_id) FROM anomalies) AND day >= $1 AND day <= $2 \
                   ORDER BY day DESC, series";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql).bind(from).bind(to).fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok(Anomaly {
                    series: r.try_get("series")?,
                    day: day_of(r.try_get("day")?),
                    actual: r.try_get("actual")?,
                    expected: r.try_get("expected")?,
                }))
                .collect()
        })
    }

    /// Stores a run's backtest accuracy.
    pub async fn save_accuracy(&self, run_id: i64, scores: &[Accuracy]) -> Result<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in scores.chunks(INSERT_CHUNK_ROWS) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO forecast_accuracy (run_id, series, model, windows, horizon, mape, \
                     smape, mase, total_error, bias, coverage80, coverage95) ",
                );
                insert.push_values(chunk, |mut row, a| {
                    row.push_bind(run_id)
                        .push_bind(a.series.clone())
                        .push_bind(a.model.clone())
                        .push_bind(a.windows as i32)
                        .push_bind(a.horizon as i32)
                        .push_bind(a.mape)
                        .push_bind(a.smape)
                        .push_bind(a.mase)
                        .push_bind(a.total_error)
                        .push_bind(a.bias)
                        .push_bind(a.coverage80)
                        .push_bind(a.coverage95);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest accuracy of every series and model, by series then model.
    pub async fn latest_accuracy(&self) -> Result<Vec<Accuracy>> {
        let sql = "SELECT a.series, a.model, a.windows, a.horizon, a.mape, a.smape, a.mase, \
                   a.total_error, a.bias, a.coverage80, a.coverage95 FROM forecast_accuracy a \
                   JOIN (SELECT series, model, MAX(run_id) AS run_id FROM forecast_accuracy \
                   GROUP BY series, model) l ON l.series = a.series AND l.model = a.model \
                   AND l.run_id = a.run_id ORDER BY a.series, a.model";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql).fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let windows: i32 = r.try_get("windows")?;
                    let horizon: i32 = r.try_get("horizon")?;
                    Ok(Accuracy {
                        series: r.try_get("series")?,
                        model: r.try_get("model")?,
                        windows: windows as usize,
                        horizon: horizon as usize,
                        mape: r.try_get("mape")?,
                        smape: r.try_get("smape")?,
                        mase: r.try_get("mase")?,
                        total_error: r.try_get("total_error")?,
                        bias: r.try_get("bias")?,
                        coverage80: r.try_get("coverage80")?,
                        coverage95: r.try_get("coverage95")?,
                    })
                })
                .collect()
        })
    }

    /// Stores a run's budget evaluations.
    pub async fn save_evaluations(&self, run_id: i64, evaluations: &[Evaluation]) -> Result<()> {
        let sql = "INSERT INTO budget_evaluations (run_id, budget, as_of, period_start, period_end, \
                   amount, currency, actual_to_date, reported_through, forecast_days, projected, lo80, \
                   hi80, p_breach, status, mode, forecast_error, steps, drivers, plan) VALUES ($1, $2, $3, $4, \
                   $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)";
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
                    .bind(serde_json::to_string(&e.drivers).unwrap_or_else(|_| "[]".into()))
                    .bind(e.plan.as_ref().map(|c| {
                        serde_json::to_string(c)
                            .expect("a plan check is numbers and days: it always serialises")
                    }))
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
        with_pool!(self, pool => {
            let mut query = sqlx::query(sql).bind(budget);
            if let Some((since, limit)) = window {
                query = query.bind(since).bind(limit);
            }
            let rows = query.fetch_all(pool).await?;
            rows.iter()
                .map(|r| {
                    let corrupt = |what: &str| StoreError::Corrupt(what.to_string());
                    let status: String = r.try_get("status")?;
                    let mode: String = r.try_get("mode")?;
                    let currency: String = r.try_get("currency")?;
                    let reported: Option<NaiveDate> = r.try_get("reported_through")?;
                    let forecast_days: i32 = r.try_get("forecast_days")?;
                    let steps: i32 = r.try_get("steps")?;
                    let drivers: String = r.try_get("drivers")?;
                    let plan: Option<String> = r.try_get("plan")?;
                    let period = DayRange::new(
                        day_of(r.try_get("period_start")?),
                        day_of(r.try_get("period_end")?),
                    )
                    .map_err(|e| corrupt(&e.to_string()))?;
                    Ok(Evaluation {
                        budget: r.try_get("budget")?,
                        as_of: day_of(r.try_get("as_of")?),
                        amount: Money::new(
                            r.try_get("amount")?,
                            Currency::parse(&currency).map_err(|e| corrupt(&e.to_string()))?,
                        ),
                        projection: Projection {
                            period,
                            actual_to_date: r.try_get("actual_to_date")?,
                            reported_through: reported.map(day_of),
                            forecast_days: forecast_days.max(0) as usize,
                            mean: r.try_get("projected")?,
                            lo80: r.try_get("lo80")?,
                            hi80: r.try_get("hi80")?,
                            p_breach: r.try_get("p_breach")?,
                        },
                        status: Status::parse(&status).ok_or_else(|| corrupt(&status))?,
                        mode: BudgetMode::parse(&mode).ok_or_else(|| corrupt(&mode))?,
                        forecast_error: r.try_get("forecast_error")?,
                        steps: steps.max(0) as u32,
                        drivers: serde_json::from_str(&drivers)
                            .map_err(|e| corrupt(&format!("drivers: {e}")))?,
                        plan: plan
                            .map(|p| serde_json::from_str(&p))
                            .transpose()
                            .map_err(|e| corrupt(&format!("plan: {e}")))?,
                    })
                })
                .collect()
        })
    }

    /// Stores the changes a run planned (or applied), with their outcome.
    pub async fn save_planned_changes(
        &self,
        run_id: i64,
        changes: &[PlannedChange],
        outcome: &str,
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
                    .bind(outcome.to_string())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The changes planned by the newest run that planned any, with their outcome.
    pub async fn latest_planned_changes(&self) -> Result<Vec<(PlannedChange, String)>> {
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
                        r.try_get("outcome")?,
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

/// The canonical JSON of a series' tags: keys sorted, so equal tags give equal text.
fn tags_json(dims: &Dimensions) -> String {
    serde_json::to_string(&dims.tags).unwrap_or_else(|_| "{}".to_string())
}

/// A stored forecast shape; forecasts stored before shapes were have the default.
pub(crate) fn shape_of(json: Option<String>) -> Result<SeriesShape> {
    match json {
        None => Ok(SeriesShape::default()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("forecast shape {text:?}: {e}"))),
    }
}
