//! A recorded run: the one way a run is started and ended, so every kind of run (a pipeline
//! run, a restore, a skipped tick) leaves the same record, and none is left `running` by an
//! early return or, once the next run starts, by a killed process.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::app::{App, Clock};
use crate::domain::{RunDetail, RunOutcome};
use crate::store::{Store, StoreError};

/// How often a running run records that its process is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
/// A run whose process has not shown it is alive for this long was killed (SIGKILL, the
/// out-of-memory killer, a lost node): the next run to start records it as interrupted.
pub const ABANDONED_AFTER: Duration = Duration::from_secs(10 * HEARTBEAT.as_secs());

/// A run whose start is recorded; [`RecordedRun::finish`] records its end. Dropped unfinished
/// (an early error return, a cancelled future), it is recorded as `interrupted`.
pub struct RecordedRun {
    store: Store,
    clock: Clock,
    id: i64,
    open: bool,
    heartbeat: JoinHandle<()>,
}

impl RecordedRun {
    /// Records the start of a run of `job`, stamped with the app's clock, after recording as
    /// interrupted the runs whose processes died; its heartbeat runs until it ends.
    pub async fn start(app: &App, job: &str) -> Result<RecordedRun, StoreError> {
        let now = app.clock.now();
        let cutoff = now - chrono::Duration::seconds(ABANDONED_AFTER.as_secs() as i64);
        for id in app.store.interrupt_abandoned(cutoff, now).await? {
            tracing::warn!(
                run_id = id,
                "A run whose process stopped without finishing it is recorded as interrupted."
            );
        }
        let id = app.store.start_run(job, now).await?;
        let (store, clock) = (app.store.clone(), app.clock);
        let heartbeat = tokio::spawn(async move {
            let mut every = tokio::time::interval(HEARTBEAT);
            loop {
                every.tick().await;
                if let Err(e) = store.beat(id, clock.now()).await {
                    tracing::warn!(run_id = id, error = %e, "Could not record the run's heartbeat.");
                }
            }
        });
        Ok(RecordedRun {
            store: app.store.clone(),
            clock: app.clock,
            id,
            open: true,
            heartbeat,
        })
    }

    /// The run's id.
    pub fn id(&self) -> i64 {
        self.id
    }

    /// Records how the run ended and what it did.
    pub async fn finish(
        mut self,
        outcome: RunOutcome,
        detail: &RunDetail,
    ) -> Result<(), StoreError> {
        self.open = false;
        self.heartbeat.abort();
        self.store
            .finish_run(self.id, self.clock.now(), outcome, detail)
            .await
    }
}

impl Drop for RecordedRun {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if !self.open {
            return;
        }
        // Drop cannot wait, so the record is written by a task on the runtime, if one is left.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (store, id, at) = (self.store.clone(), self.id, self.clock.now());
        runtime.spawn(async move {
            let detail = RunDetail::default();
            if let Err(e) = store
                .finish_run(id, at, RunOutcome::Interrupted, &detail)
                .await
            {
                tracing::error!(run_id = id, error = %e, "Could not record the end of an abandoned run.");
            }
        });
    }
}
