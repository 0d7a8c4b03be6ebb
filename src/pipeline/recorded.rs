//! A recorded run: the one way a run is started and ended, so every kind of run (a pipeline
//! run, a restore, a skipped tick) leaves the same record, and none is left `running` by an
//! early return.

use crate::app::{App, Clock};
use crate::domain::{RunDetail, RunOutcome};
use crate::store::{Store, StoreError};

/// A run whose start is recorded; [`RecordedRun::finish`] records its end. Dropped unfinished
/// (an early error return, a cancelled future), it is recorded as `interrupted`.
pub struct RecordedRun {
    store: Store,
    clock: Clock,
    id: i64,
    open: bool,
}

impl RecordedRun {
    /// Records the start of a run of `job`, stamped with the app's clock.
    pub async fn start(app: &App, job: &str) -> Result<RecordedRun, StoreError> {
        let id = app.store.start_run(job, app.clock.now()).await?;
        Ok(RecordedRun {
            store: app.store.clone(),
            clock: app.clock,
            id,
            open: true,
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
        self.store
            .finish_run(self.id, self.clock.now(), outcome, detail)
            .await
    }
}

impl Drop for RecordedRun {
    fn drop(&mut self) {
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
