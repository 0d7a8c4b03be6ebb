//! The leader lock that keeps two runners from evaluating or acting at once: a session-level
//! advisory lock on PostgreSQL, a row with an expiry on SQLite.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;

use super::{Result, Store};

/// A held leader lock; [`LeaderLock::release`] gives it back. Dropping it without releasing
/// frees a PostgreSQL lock when its connection closes, and a SQLite lock when it lapses.
pub struct LeaderLock {
    name: String,
    holder: String,
    /// PostgreSQL advisory locks belong to a session, so the connection is held with the lock.
    pg: Option<PoolConnection<sqlx::Postgres>>,
}

impl Store {
    /// Takes the leader lock `name`, waiting up to `wait` for another holder to release it.
    /// `None` when it is still held after that. A SQLite lock lapses `ttl` after it was taken
    /// or last renewed; a PostgreSQL lock ends with its session.
    pub async fn acquire_leader(
        &self,
        name: &str,
        wait: Duration,
        ttl: Duration,
    ) -> Result<Option<LeaderLock>> {
        let deadline = tokio::time::Instant::now() + wait;
        let holder = format!(
            "{}-{}",
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or(0)
        );
        loop {
            if let Some(lock) = self.try_leader(name, &holder, ttl).await? {
                return Ok(Some(lock));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn try_leader(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<LeaderLock>> {
        match self {
            Store::Postgres(pool) => {
                let mut conn = pool.acquire().await?;
                // hashtext maps the name to the lock's key on the server every runner shares.
                let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext($1))")
                    .bind(name.to_string())
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(got.then(|| LeaderLock {
                    name: name.to_string(),
                    holder: holder.to_string(),
                    pg: Some(conn),
                }))
            }
            Store::Sqlite(pool) => {
                let now = Utc::now();
                let expires = now + lapse(ttl);
                // One statement, so SQLite's write lock makes take-or-fail atomic.
                let taken = sqlx::query(
                    "INSERT INTO leader_lock (name, holder, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                     expires_at = excluded.expires_at WHERE leader_lock.expires_at < $4",
                )
                .bind(name.to_string())
                .bind(holder.to_string())
                .bind(stamp(expires))
                .bind(stamp(now))
                .execute(pool)
                .await?
                .rows_affected();
                Ok((taken == 1).then(|| LeaderLock {
                    name: name.to_string(),
                    holder: holder.to_string(),
                    pg: None,
                }))
            }
        }
    }
}

/// A lock's time to live as a timestamp offset, capped at a day.
fn lapse(ttl: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(ttl.min(Duration::from_secs(86_400)))
        .unwrap_or(chrono::TimeDelta::days(1))
}

/// A lock time as text that sorts as time does: fixed digits, one offset.
fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

impl LeaderLock {
    /// Whether the lock is still this holder's, extending a SQLite lock by `ttl` from now.
    /// `false` when it lapsed and another runner took it; an error when the store cannot say
    /// (for PostgreSQL, the session holding the lock may be gone with it).
    pub async fn renew(&mut self, store: &Store, ttl: Duration) -> Result<bool> {
        match (store, self.pg.as_mut()) {
            (Store::Postgres(_), Some(conn)) => {
                // A session-level advisory lock lasts as long as its session: the question is
                // whether this connection's backend still holds it.
                let held: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
                     AND pid = pg_backend_pid() AND granted)",
                )
                .fetch_one(&mut **conn)
                .await?;
                Ok(held)
            }
            (Store::Sqlite(pool), _) => {
                let now = Utc::now();
                let renewed = sqlx::query(
                    "UPDATE leader_lock SET expires_at = $1 \
                     WHERE name = $2 AND holder = $3 AND expires_at >= $4",
                )
                .bind(stamp(now + lapse(ttl)))
                .bind(self.name.clone())
                .bind(self.holder.clone())
                .bind(stamp(now))
                .execute(pool)
                .await?
                .rows_affected();
                Ok(renewed == 1)
            }
            (Store::Postgres(_), None) => Ok(false),
        }
    }

    /// Gives the lock back.
    pub async fn release(mut self, store: &Store) -> Result<()> {
        match (store, self.pg.take()) {
            (Store::Postgres(_), Some(mut conn)) => {
                sqlx::query("SELECT pg_advisory_unlock(hashtext($1))")
                    .bind(self.name.clone())
                    .execute(&mut *conn)
                    .await?;
            }
            (Store::Sqlite(pool), _) => {
                sqlx::query("DELETE FROM leader_lock WHERE name = $1 AND holder = $2")
                    .bind(self.name.clone())
                    .bind(self.holder.clone())
                    .execute(pool)
                    .await?;
            }
            (Store::Postgres(_), None) => {}
        }
        Ok(())
    }
}

impl Drop for LeaderLock {
    fn drop(&mut self) {
        // Not released (a panic, a cancelled run): the session must end, or the pool would
        // hand the still-locked connection to the next caller and hold the lock for ever.
        if let Some(conn) = self.pg.take() {
            drop(conn.detach());
        }
    }
}
