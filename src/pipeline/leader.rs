//! The leader guard: evaluating and acting both move budget state, so one runner at a time
//! holds the store's leader lock while it does either. Every path that evaluates or acts (a
//! run's budgets and act stages, `act restore`, a restore asked for through the API) takes it
//! here and gives it back through [`Leader::release`].

use std::time::Duration;

use super::{StageError, Stop};
use crate::app::App;
use crate::store::{LeaderLock, Store};

/// The leader lock's name: one runner at a time may evaluate and act.
pub const LEADER_LOCK: &str = "costcast-act";

/// How often a waiting runner asks for the lock again.
const RETRY: Duration = Duration::from_millis(200);

/// The held leader lock. Dropped without [`Leader::release`] (a cancelled run), a PostgreSQL
/// lock goes with its connection and a SQLite lock row expires.
pub struct Leader {
    lock: LeaderLock,
    store: Store,
}

impl Leader {
    /// Takes the lock, waiting up to `act.lock_wait_secs`; an abort through `stop` ends the
    /// wait.
    pub async fn take(app: &App, stop: &Stop) -> Result<Leader, StageError> {
        let wait = Duration::from_secs(app.config.act.lock_wait_secs);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // One attempt at a time, so an abort never lands between the lock being taken on
            // the server and its guard being built.
            if let Some(lock) = app
                .store
                .acquire_leader(LEADER_LOCK, Duration::ZERO)
                .await?
            {
                return Ok(Leader {
                    lock,
                    store: app.store.clone(),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(StageError::Other(format!(
                    "another costcast runner has held the leader lock for over {} s (act.lock_wait_secs); this run did not evaluate or act",
                    wait.as_secs()
                )));
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY) => {}
                () = stop.aborted() => return Err(StageError::Interrupted(
                    "stopped while waiting for the leader lock".into(),
                )),
            }
        }
    }

    /// Gives the lock back; a failure is logged, since the lock then expires on its own.
    pub async fn release(self) {
        if let Err(e) = self.lock.release(&self.store).await {
            tracing::error!(error = %e, "Could not release the leader lock.");
        }
    }
}
