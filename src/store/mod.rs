//! The only module that runs SQL. One `Store` API over two backends — PostgreSQL for production,
//! SQLite as the embedded default — with migrations per backend in `migrations/{postgres,sqlite}`.
//!
//! The SQL below is written once for both: it sticks to what PostgreSQL and SQLite share
//! (`$n` placeholders, `ON CONFLICT`, `RETURNING`), and dates are bound as `chrono` values that
//! sqlx stores as `DATE` in PostgreSQL and ISO-8601 text in SQLite, which sort the same way.

mod postgres;
mod sqlite;

use chrono::NaiveDate;
use sqlx::{PgPool, Row, SqlitePool};

use crate::config::DatabaseUrl;
use crate::domain::{Day, SeriesShape};
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

/// Rows per multi-row INSERT: well under SQLite's 32,766 and PostgreSQL's 65,535 bind limits.
const INSERT_CHUNK_ROWS: usize = 2_000;

mod actions;

pub use actions::{LoggedAction, StoredState};
mod leader;
pub use leader::LeaderLock;

mod costs;
mod reads;
pub use costs::{CostSummary, Ingested, ReplaceSummary, StoredSeries};
mod evaluations;
pub use evaluations::AlertRecord;
mod forecasts;
mod retention;
pub use retention::{PruneBefore, Pruned};
mod runs;

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
}

/// A stored forecast shape; forecasts stored before shapes were have the default.
pub(crate) fn shape_of(json: Option<String>) -> Result<SeriesShape> {
    match json {
        None => Ok(SeriesShape::default()),
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| StoreError::Corrupt(format!("forecast shape {text:?}: {e}"))),
    }
}
