//! SQLite: the embedded default, a file next to the config.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite migrations.
pub fn migrator() -> &'static Migrator {
    &MIGRATOR
}

/// Opens (creating if needed) the database file at `url`.
pub async fn connect(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    // An in-memory database exists once per connection, so it must have exactly one.
    let max = if url.contains(":memory:") || url.contains("mode=memory") {
        1
    } else {
        4
    };
    SqlitePoolOptions::new()
        .max_connections(max)
        .connect_with(options)
        .await
}
