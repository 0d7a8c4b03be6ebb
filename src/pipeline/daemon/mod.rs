//! `costcast serve`'s scheduler: the jobs in `jobs/*.toml` on their cron schedules
//! (tokio-cron-scheduler), one run at a time, and a stop that lets the run in progress end well.
//!
//! One run at a time per process: a trigger that finds a run still going is skipped, logged and
//! recorded, never queued behind it (a stacked run would read the same data twice). Across
//! replicas the leader lock keeps evaluating and acting single; ingest and forecast are
//! idempotent, so two replicas running them only repeat work.

use crate::app::App;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::RecordedRun;
use super::{Job, RunOptions, Stop, run_once};
use crate::domain::{RunDetail, RunOutcome};

/// A boxed future, as the scheduler's callbacks need.
pub type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Runs one job; the pipeline in production, a stand-in in tests.
pub trait Runner: Send + Sync + 'static {
    /// Runs job `name` until it ends or `stop` ends it.
    fn run(&self, name: &str, job: &Job, stop: Stop) -> BoxFuture;
    /// Records that a run of `name` was skipped because `running` was still going.
    fn skipped(&self, name: &str, running: &str) -> BoxFuture;
}

/// Why the scheduler could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The cron scheduler refused a job or failed to start.
    #[error("scheduling job {job}: {message}")]
    Schedule {
        /// The job.
        job: String,
        /// The scheduler's message.
        message: String,
    },
}

/// What a trigger did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Triggered {
    /// A run started.
    Started,
    /// The previous run of `running` was still going, so none started.
    Skipped {
        /// The job still running.
        running: String,
    },
    /// Shutting down: no new runs.
    Refused,
}

/// How a stop went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stopped {
    /// No run was in progress.
    #[default]
    Idle,
    /// The run in progress finished its stage and stopped.
    Finished,
    /// The run's stage outlasted most of the grace period, so it was interrupted and rolled
    /// back; the run then released the lock and recorded itself.
    Interrupted,
    /// Even the interrupted run did not end within the grace period; its task was dropped.
    /// A PostgreSQL leader lock goes with its session; a SQLite lock row expires.
    Abandoned,
}

struct Current {
    job: String,
    stop: Stop,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct State {
    current: Option<Current>,
    stopping: bool,
}

/// The jobs and the one run slot.
pub struct Daemon<R: Runner> {
    runner: Arc<R>,
    jobs: BTreeMap<String, Job>,
    state: Mutex<State>,
}

impl<R: Runner> Daemon<R> {
    /// A daemon over `jobs`, run by `runner`.
    pub fn new(runner: R, jobs: Vec<(String, Job)>) -> Arc<Daemon<R>> {
        Arc::new(Daemon {
            runner: Arc::new(runner),
            jobs: jobs.into_iter().collect(),
            state: Mutex::new(State::default()),
        })
    }

    /// The jobs, by name.
    pub fn jobs(&self) -> &BTreeMap<String, Job> {
        &self.jobs
    }

    /// Starts a run of `name` unless one is in progress or the daemon is stopping.
    pub fn trigger(&self, name: &str) -> Triggered {
        let Some(job) = self.jobs.get(name) else {
            tracing::error!(job = name, "No such job.");
            return Triggered::Refused;
        };
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.stopping {
            tracing::info!(job = name, "Shutting down: not starting a run.");
            return Triggered::Refused;
        }
        if let Some(current) = &state.current
            && !current.task.is_finished()
        {
            let running = current.job.clone();
            tracing::warn!(
                job = name,
                running = %running,
                "Skipped: the previous run is still going (runs are never stacked)."
            );
            tokio::spawn(self.runner.skipped(name, &running));
            return Triggered::Skipped { running };
        }
        let stop = Stop::new();
        let task = tokio::spawn(self.runner.run(name, job, stop.clone()));
        state.current = Some(Current {
            job: name.to_string(),
            stop,
            task,
        });
        Triggered::Started
    }

    /// Whether a run is in progress.
    pub fn busy(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state
            .current
            .as_ref()
            .is_some_and(|c| !c.task.is_finished())
    }

    /// Stops taking runs and ends the one in progress within `grace`: it may finish its
    /// current stage for four fifths of it, then its stage is interrupted, and the last fifth
    /// is for the rollback, the lock's release and the run's record.
    pub async fn shutdown(&self, grace: Duration) -> Stopped {
        let current = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.stopping = true;
            state.current.take()
        };
        let Some(mut current) = current else {
            return Stopped::Idle;
        };
        if current.task.is_finished() {
            return Stopped::Idle;
        }
        tracing::info!(job = %current.job, grace_secs = grace.as_secs_f64(), "Letting the run in progress finish its stage.");
        current.stop.finish();
        let soft = grace.mul_f64(0.8);
        if tokio::time::timeout(soft, &mut current.task).await.is_ok() {
            return Stopped::Finished;
        }
        tracing::warn!(job = %current.job, "The stage outlasted the grace period: interrupting it.");
        current.stop.abort();
        if tokio::time::timeout(grace - soft, &mut current.task)
            .await
            .is_ok()
        {
            return Stopped::Interrupted;
        }
        tracing::error!(job = %current.job, "The run did not end after being interrupted; dropping it.");
        current.task.abort();
        Stopped::Abandoned
    }
}

/// Schedules every job on its cron (UTC) until `shutdown` resolves, then stops the scheduler
/// and the run in progress within `grace`.
pub async fn run<R: Runner>(
    daemon: Arc<Daemon<R>>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Result<Stopped, DaemonError> {
    let failed = |job: &str, e: &dyn std::fmt::Display| DaemonError::Schedule {
        job: job.to_string(),
        message: e.to_string(),
    };
    let mut scheduler = tokio_cron_scheduler::JobScheduler::new()
        .await
        .map_err(|e| failed("(scheduler)", &e))?;
    let mut ids = Vec::new();
    for (name, job) in daemon.jobs() {
        let d = daemon.clone();
        let n = name.clone();
        let cron = tokio_cron_scheduler::Job::new_async(job.schedule.as_str(), move |_, _| {
            let d = d.clone();
            let n = n.clone();
            Box::pin(async move {
                d.trigger(&n);
            })
        })
        .map_err(|e| failed(name, &e))?;
        ids.push((
            name.clone(),
            scheduler.add(cron).await.map_err(|e| failed(name, &e))?,
        ));
    }
    scheduler
        .start()
        .await
        .map_err(|e| failed("(scheduler)", &e))?;
    for (name, id) in &ids {
        let next = scheduler.next_tick_for_job(*id).await.ok().flatten();
        tracing::info!(
            job = %name,
            schedule = %daemon.jobs()[name].schedule,
            next = ?next.map(|t| t.to_rfc3339()),
            "Job scheduled."
        );
    }
    shutdown.await;
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "The cron scheduler did not stop cleanly.");
    }
    Ok(daemon.shutdown(grace).await)
}

/// Runs jobs through the pipeline on the shared context.
pub struct PipelineRunner {
    ctx: Arc<App>,
}

impl PipelineRunner {
    /// A runner over `ctx`.
    pub fn new(ctx: Arc<App>) -> PipelineRunner {
        PipelineRunner { ctx }
    }
}

impl Runner for PipelineRunner {
    fn run(&self, name: &str, job: &Job, stop: Stop) -> BoxFuture {
        let ctx = self.ctx.clone();
        let name = name.to_string();
        let job = job.clone();
        Box::pin(async move {
            // Every replica's scheduler fires at the same second; the one that claims the
            // tick runs it, so scheduled runs stay single across replicas.
            let Some(tick) = job.tick_at_or_before(ctx.clock.now()) else {
                tracing::error!(job = %name, "The schedule has no past occurrence; not running.");
                return;
            };
            let holder = format!("{}:{}", hostname(), std::process::id());
            match ctx.store.claim_tick(&name, tick, &holder).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(job = %name, tick = %tick.to_rfc3339(), "Another replica runs this tick.");
                    return;
                }
                Err(e) => {
                    tracing::error!(job = %name, error = %e, "Run not started: the store is unavailable.");
                    return;
                }
            }
            // Budget modes set through the API since the last run apply to this one.
            let run_ctx = match ctx.refreshed().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(job = %name, error = %e, "Run not started: the store is unavailable.");
                    return;
                }
            };
            let options = RunOptions {
                source_kinds: job.source_kinds.clone(),
                stop,
                ..RunOptions::default()
            };
            let started = std::time::Instant::now();
            match run_once(&run_ctx, &name, &job.steps, ctx.clock.now(), &options).await {
                Ok(report) => tracing::info!(
                    job = %name,
                    run_id = report.run_id,
                    stages = report.stages.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "Scheduled run finished."
                ),
                Err(e) if e.interrupted() => {
                    tracing::warn!(job = %name, run_id = ?e.run_id, error = %e, "Scheduled run interrupted.")
                }
                Err(e) => {
                    tracing::error!(job = %name, run_id = ?e.run_id, error = %e, "Scheduled run failed.")
                }
            }
        })
    }

    fn skipped(&self, name: &str, running: &str) -> BoxFuture {
        let ctx = self.ctx.clone();
        let name = name.to_string();
        let running = running.to_string();
        Box::pin(async move {
            let detail = RunDetail {
                skipped: Some(format!("the previous run ({running}) was still going")),
                ..RunDetail::default()
            };
            let recorded = match RecordedRun::start(&ctx, &name).await {
                Ok(run) => run.finish(RunOutcome::Skipped, &detail).await,
                Err(e) => Err(e),
            };
            if let Err(e) = recorded {
                tracing::error!(job = %name, error = %e, "Could not record the skipped run.");
            }
        })
    }
}

/// This machine's name (the pod's, in Kubernetes), for the claim record.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

#[cfg(test)]
mod tests;
