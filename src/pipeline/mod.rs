//! The stage order. `run_once` runs a job's steps — ingest → forecast → budgets → act →
//! notify — each reading what the previous one stored and recording what it did, so any step
//! can be re-run alone and every run can be inspected afterwards.

mod acting;
pub use acting::{restore, restore_object};
mod budgets;
pub mod daemon;
pub mod job;
mod recorded;
pub use recorded::RecordedRun;
mod stop;
pub use stop::Stop;

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::act::slack;
use crate::app::App;
use tracing::Instrument;

use crate::domain::{
    Accuracy, ActionRecord, Day, DayRange, Evaluation, ModelChoice, PlannedChange, RunDetail,
    RunOutcome, StageOutcome, StageReport, StoppedBefore,
};
use crate::forecast;
use crate::ingest::IngestError;
use crate::store::StoreError;
pub use job::{Job, JobError, Step};

/// The leader lock's name: one runner at a time may evaluate and act.
pub const LEADER_LOCK: &str = "costcast-act";

/// Options that narrow or soften a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Ingest only this source.
    pub source: Option<String>,
    /// Ingest only sources of these kinds (a job's `source_kinds`); all when empty.
    pub source_kinds: Vec<String>,
    /// Ingest only these days.
    pub range: Option<DayRange>,
    /// Plan and build messages, but apply and send nothing.
    pub dry_run: bool,
    /// Asks the run to stop early (a shutdown).
    pub stop: Stop,
    /// What a backtest step scores, instead of every model over the configured windows.
    pub backtest: Option<BacktestRequest>,
}

/// The models and windows a backtest step scores.
#[derive(Debug, Clone)]
pub struct BacktestRequest {
    /// The windows and their length.
    pub plan: forecast::backtest::Plan,
    /// The models scored.
    pub models: Vec<ModelChoice>,
}

/// Why a stage failed.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// A source could not be read.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The alert could not be delivered.
    #[error(transparent)]
    Slack(#[from] slack::SlackError),
    /// Stopped by a shutdown; what the stage had not committed was rolled back.
    #[error("interrupted by shutdown: {0}")]
    Interrupted(String),
    /// The request names something that does not exist; nothing ran.
    #[error("{0}")]
    Refused(String),
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

/// A failed run: which stage, and why.
#[derive(Debug, thiserror::Error)]
#[error("{step} failed: {source}")]
pub struct RunError {
    /// The stage that failed.
    pub step: Step,
    /// Why.
    #[source]
    pub source: StageError,
    /// The run's id, when it was recorded.
    pub run_id: Option<i64>,
}

impl RunError {
    /// Whether the run was stopped by a shutdown rather than failing.
    pub fn interrupted(&self) -> bool {
        matches!(self.source, StageError::Interrupted(_))
    }
}

/// What a run did, for printing.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// The run's id.
    pub run_id: i64,
    /// Stages in order.
    pub stages: Vec<StageReport>,
    /// Budget evaluations made by this run.
    pub evaluations: Vec<Evaluation>,
    /// Changes planned by this run.
    pub changes: Vec<PlannedChange>,
    /// The alert built, if any budget was at risk.
    pub alert: Option<Value>,
    /// What became of the alert.
    pub alert_outcome: Option<String>,
    /// Whether this run planned actions (so `changes` is current, even when empty).
    pub acted: bool,
    /// What this run did to Kubernetes objects.
    pub actions: Vec<ActionRecord>,
    /// Backtest scores made by this run.
    pub accuracy: Vec<Accuracy>,
}

/// Runs `steps` in order as one recorded run of `job`, as of `now`.
///
/// Each stage is recorded with its start, end, outcome, counts and error. A stop asked for
/// through `options.stop` ends the run before its next stage; an abort interrupts the stage in
/// progress. Either way the leader lock is released and the run is recorded as interrupted.
pub async fn run_once(
    ctx: &App,
    job: &str,
    steps: &[Step],
    now: DateTime<Utc>,
    options: &RunOptions,
) -> Result<RunReport, RunError> {
    let run_span = tracing::info_span!(
        "run",
        job,
        run_id = tracing::field::Empty,
        outcome = tracing::field::Empty
    );
    run_stages(ctx, job, steps, now, options, &run_span)
        .instrument(run_span.clone())
        .await
}

async fn run_stages(
    ctx: &App,
    job: &str,
    steps: &[Step],
    now: DateTime<Utc>,
    options: &RunOptions,
    run_span: &tracing::Span,
) -> Result<RunReport, RunError> {
    // Runs are stamped with the wall clock; `now` may be a replayed day (`--as-of`) and is
    // recorded as the run's `as_of` instead.
    let run = RecordedRun::start(ctx, job).await.map_err(|e| RunError {
        step: steps.first().copied().unwrap_or(Step::Ingest),
        source: e.into(),
        run_id: None,
    })?;
    let run_id = run.id();
    run_span.record("run_id", run_id);
    tracing::info!(steps = steps.len(), "Run started.");
    let mut report = RunReport {
        run_id,
        ..RunReport::default()
    };
    let as_of = Day::from_date(now.date_naive());
    let mut lock = None;
    let mut failure = None;
    for &step in steps {
        if options.stop.is_finishing() {
            failure = Some((
                step,
                StageError::Interrupted(format!(
                    "stopped before {step}; the next run picks up from there"
                )),
            ));
            break;
        }
        let span = tracing::info_span!("stage", step = %step, outcome = tracing::field::Empty);
        let started_at = ctx.clock.now();
        let started = Instant::now();
        let work = async {
            if matches!(step, Step::Budgets | Step::Act) && lock.is_none() {
                // Evaluating and acting both move budget state: two runners must take turns.
                lock = Some(take_lock(ctx, &options.stop).await?);
            }
            match step {
                Step::Ingest => ingest_stage(ctx, options, now).await,
                Step::Forecast => forecast_stage(ctx, run_id, as_of).await,
                Step::Budgets => budgets::stage(ctx, run_id, as_of, &mut report).await,
                Step::Act => acting::act_stage(ctx, run_id, now, options, &mut report).await,
                Step::Notify => {
                    acting::notify_stage(ctx, run_id, as_of, options, &mut report).await
                }
                Step::Backtest => backtest_stage(ctx, run_id, as_of, options, &mut report).await,
            }
        }
        .instrument(span.clone());
        // Dropping the stage's future mid-flight drops its open transaction, which rolls back.
        let result = tokio::select! {
            biased;
            result = work => result,
            () = options.stop.aborted() => Err(StageError::Interrupted(format!(
                "{step} was interrupted when the shutdown grace period ran out; its uncommitted writes were rolled back"
            ))),
        };
        let millis = started.elapsed().as_millis() as u64;
        let _entered = span.enter();
        let (outcome, counts, error) = match result {
            Ok(counts) => {
                tracing::info!(millis, counts = ?counts, "Stage finished.");
                crate::telemetry::record_counts(&span, &counts);
                (StageOutcome::Ok, counts, None)
            }
            Err(e) => {
                let outcome = match e {
                    StageError::Interrupted(_) => StageOutcome::Interrupted,
                    _ => StageOutcome::Failed,
                };
                tracing::error!(millis, error = %e, "Stage {}.", outcome.as_str());
                let message = e.to_string();
                crate::telemetry::record_failure(&span, &message);
                failure = Some((step, e));
                (outcome, BTreeMap::new(), Some(message))
            }
        };
        span.record("outcome", outcome.as_str());
        report.stages.push(StageReport {
            step,
            started_at,
            finished_at: ctx.clock.now(),
            millis,
            outcome,
            counts,
            error,
        });
        if failure.is_some() {
            break;
        }
    }
    release(ctx, lock.take()).await;
    let outcome = match &failure {
        None => RunOutcome::Ok,
        Some((_, StageError::Interrupted(_))) => RunOutcome::Interrupted,
        Some(_) => RunOutcome::Failed,
    };
    let mut detail = RunDetail {
        as_of: Some(as_of),
        stages: report.stages.clone(),
        ..RunDetail::default()
    };
    if let Some((step, e @ StageError::Interrupted(_))) = &failure
        && report.stages.last().is_none_or(|s| s.step != *step)
    {
        detail.stopped_before = Some(StoppedBefore {
            step: *step,
            reason: e.to_string(),
        });
    }
    let recorded = run.finish(outcome, &detail).await;
    tracing::info!(outcome = outcome.as_str(), "Run finished.");
    run_span.record("outcome", outcome.as_str());
    if let Some((step, e)) = &failure {
        crate::telemetry::record_failure(run_span, &format!("{step}: {e}"));
    }
    match (failure, recorded) {
        (Some((step, source)), recorded) => {
            if let Err(store_err) = recorded {
                tracing::error!(error = %store_err, "Could not record the run's end.");
            }
            Err(RunError {
                step,
                source,
                run_id: Some(run_id),
            })
        }
        (None, Err(e)) => Err(RunError {
            step: steps.last().copied().unwrap_or(Step::Notify),
            source: e.into(),
            run_id: Some(run_id),
        }),
        (None, Ok(())) => Ok(report),
    }
}

/// Takes the leader lock, waiting up to `act.lock_wait_secs`; an abort ends the wait.
async fn take_lock(ctx: &App, stop: &Stop) -> Result<crate::store::LeaderLock, StageError> {
    let wait = std::time::Duration::from_secs(ctx.config.act.lock_wait_secs);
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // One attempt at a time, so an abort never lands between the lock being taken on the
        // server and its guard being built.
        if let Some(lock) = ctx
            .store
            .acquire_leader(LEADER_LOCK, std::time::Duration::ZERO)
            .await?
        {
            return Ok(lock);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StageError::Other(format!(
                "another costcast runner has held the leader lock for over {} s (act.lock_wait_secs); this run did not evaluate or act",
                wait.as_secs()
            )));
        }
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {}
            () = stop.aborted() => return Err(StageError::Interrupted(
                "stopped while waiting for the leader lock".into(),
            )),
        }
    }
}

async fn release(ctx: &App, lock: Option<crate::store::LeaderLock>) {
    if let Some(lock) = lock
        && let Err(e) = lock.release(&ctx.store).await
    {
        tracing::error!(error = %e, "Could not release the leader lock.");
    }
}

type Counts = BTreeMap<String, u64>;

fn counts<const N: usize>(pairs: [(&str, u64); N]) -> Counts {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

mod ingesting;
use ingesting::ingest_stage;
mod forecasting;
use forecasting::{backtest_stage, forecast_stage};
pub use forecasting::{load_targets, trusted_through};
