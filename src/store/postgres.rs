//! PostgreSQL: the production store shared by the job and the API replicas.

use std::str::FromStr;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL migrations.
pub fn migrator() -> &'static Migrator {
    &MIGRATOR
}

/// Connects a pool to `url`.
pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    // The server probes an idle connection after 30 s and drops it after three unanswered
    // probes 10 s apart (or data unacknowledged for 60 s), so a runner cut off by the network
    // loses its session, and with it the leader lock, within about a minute instead of the
    // kernel's two hours.
    let options = PgConnectOptions::from_str(url)?.options([
        ("tcp_keepalives_idle", "30"),
        ("tcp_keepalives_interval", "10"),
        ("tcp_keepalives_count", "3"),
        ("tcp_user_timeout", "60000"),
    ]);
    PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}
