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

/// Whether a SQLite URL names a file that exists (an in-memory database always does).
pub fn exists(url: &str) -> bool {
    let in_memory = url.contains(":memory:") || url.contains("mode=memory");
    in_memory || SqliteConnectOptions::from_str(url).is_ok_and(|o| o.get_filename().exists())
}

/// Opens the database file at `url`, creating it if `create` and it is missing.
pub async fn connect(url: &str, create: bool) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(create)
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
