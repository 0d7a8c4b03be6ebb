//! The leader guard: evaluating and acting both move budget state, so one runner at a time
//! holds the store's leader lock while it does either. Every path that evaluates or acts (a
//! run's budgets and act stages, `act restore`, a restore asked for through the API) takes it
//! here and gives it back through [`Leader::release`].
//!
//! A held lock is renewed by a keeper task every quarter of `act.lock_ttl_secs`. When it can no
//! longer be sure it holds the lock, the lock is counted lost: [`Leader::lost`] fires and the
//! holder makes no further change, since another runner may already hold the lock.

use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{StageError, Stop};
use crate::app::App;
use crate::store::{LeaderLock, Store};

/// The leader lock's name: one runner at a time may evaluate and act.
pub const LEADER_LOCK: &str = "costcast-act";

/// How often a waiting runner asks for the lock again.
const RETRY: Duration = Duration::from_millis(200);

/// The held leader lock. Dropped without [`Leader::release`] (a cancelled run), its keeper
/// stops: a PostgreSQL lock goes with its connection and a SQLite lock row lapses.
pub struct Leader {
    lost: CancellationToken,
    release: Option<oneshot::Sender<()>>,
    keeper: JoinHandle<()>,
}

impl Leader {
    /// Takes the lock, waiting up to `act.lock_wait_secs`; an abort through `stop` ends the
    /// wait.
    pub async fn take(app: &App, stop: &Stop) -> Result<Leader, StageError> {
        let wait = Duration::from_secs(app.config.act.lock_wait_secs);
        let ttl = Duration::from_secs(app.config.act.lock_ttl_secs);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // One attempt at a time, so an abort never lands between the lock being taken on
            // the server and its guard being built.
            if let Some(lock) = app
                .store
                .acquire_leader(LEADER_LOCK, Duration::ZERO, ttl)
                .await?
            {
                return Ok(Leader::keep(lock, app.store.clone(), ttl));
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

    /// Hands a taken lock to a keeper task that renews it until released.
    pub fn keep(lock: LeaderLock, store: Store, ttl: Duration) -> Leader {
        let lost = CancellationToken::new();
        let (release, released) = oneshot::channel();
        let keeper = tokio::spawn(renew(lock, store, ttl, lost.clone(), released));
        Leader {
            lost,
            release: Some(release),
            keeper,
        }
    }

    /// Fires once the lock is lost; the holder must then make no further change.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Gives the lock back; a failure is logged, since the lock then lapses on its own.
    pub async fn release(mut self) {
        if let Some(release) = self.release.take() {
            // The keeper gone already means the lock was lost: nothing to give back.
            let _ = release.send(());
        }
        if let Err(e) = (&mut self.keeper).await {
            tracing::error!(error = %e, "The leader lock's keeper ended abnormally.");
        }
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        // Released, the keeper has finished; otherwise stopping it drops the lock unreleased.
        self.keeper.abort();
    }
}

/// Renews `lock` every quarter of `ttl` until `released` fires (then gives it back) or the lock
/// is lost (then `lost` fires): another runner holds it, a PostgreSQL renewal fails or goes
/// unanswered for that quarter (the session, and the lock with it, may be gone), or SQLite
/// renewals have failed for so long that the row could lapse before the one after next. A SQLite
/// renewal may fail while another process holds the database's write lock, and the row stays
/// this runner's until it lapses, so those failures are retried until then.
async fn renew(
    mut lock: LeaderLock,
    store: Store,
    ttl: Duration,
    lost: CancellationToken,
    mut released: oneshot::Receiver<()>,
) {
    let every = ttl / 4;
    let patient = matches!(store, Store::Sqlite(_));
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::select! {
            _ = &mut released => {
                if let Err(e) = lock.release(&store).await {
                    tracing::error!(error = %e, "Could not release the leader lock; it lapses on its own.");
                }
                return;
            }
            () = tokio::time::sleep(every) => {}
        }
        // `taken`: the store says the lock is another's; otherwise it could not say.
        let (why, taken) = match tokio::time::timeout(every, lock.renew(&store, ttl)).await {
            Ok(Ok(true)) => {
                renewed = tokio::time::Instant::now();
                continue;
            }
            Ok(Ok(false)) => ("it lapsed and another runner may hold it".to_string(), true),
            Ok(Err(e)) => (format!("the store did not renew it: {e}"), false),
            Err(_) => (
                format!(
                    "the store did not answer its renewal within {} ms",
                    every.as_millis()
                ),
                false,
            ),
        };
        if patient && !taken && renewed.elapsed() + 2 * every < ttl {
            tracing::warn!(reason = %why, "Could not renew the leader lock; retrying before it lapses.");
            continue;
        }
        tracing::error!(reason = %why, "Lost the leader lock; this runner makes no further change.");
        lost.cancel();
        return;
    }
}
