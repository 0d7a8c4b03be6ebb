//! Stopping a run from outside: first politely (finish the stage in progress, start no other),
//! then, when the grace period runs out, by interrupting the stage.

use tokio_util::sync::CancellationToken;

/// A run's stop signals. The default never fires.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    finish: CancellationToken,
    abort: CancellationToken,
}

impl Stop {
    /// Signals that never fire until asked.
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Asks the run to stop once its current stage is done.
    pub fn finish(&self) {
        self.finish.cancel();
    }

    /// Interrupts the current stage: its future is dropped, so its open transaction rolls back,
    /// and the run then releases the leader lock and records itself as interrupted.
    pub fn abort(&self) {
        self.finish.cancel();
        self.abort.cancel();
    }

    /// Whether a stop has been asked for.
    pub fn is_finishing(&self) -> bool {
        self.finish.is_cancelled()
    }

    /// Resolves once a stop has been asked for.
    pub async fn finishing(&self) {
        self.finish.cancelled().await;
    }

    /// Resolves once the run is to be interrupted.
    pub async fn aborted(&self) {
        self.abort.cancelled().await;
    }
}
