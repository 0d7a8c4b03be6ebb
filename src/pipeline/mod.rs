//! The stage order. `run_once` runs a job's steps — ingest → forecast → budgets → act →
//! notify — each reading what the previous one stored and recording what it did, so any step
//! can be re-run alone and every run can be inspected afterwards.

mod acting;
pub use acting::{restore, restore_object};
mod budgets;
pub mod daemon;
pub mod job;
mod leader;
pub use leader::{LEADER_LOCK, Leader};
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
use crate::config::SourceType;
use tracing::Instrument;

use crate::domain::{
    Accuracy, ActionRecord, Day, DayRange, Evaluation, ModelChoice, ObjectRef, PlannedChange,
    RunDetail, RunOutcome, SourceFailure, StageOutcome, StageReport, StoppedBefore,
};
use crate::forecast;
use crate::ingest::IngestError;
use crate::store::StoreError;
pub use job::{Job, JobError, Step};

/// Options that narrow or soften a run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Ingest only this source.
    pub source: Option<String>,
    /// Ingest only sources of these kinds (a job's `source_kinds`); all when empty.
    pub source_kinds: Vec<SourceType>,
    /// Ingest only these days.
    pub range: Option<DayRange>,
    /// Plan and build messages, but apply and send nothing.
    pub dry_run: bool,
    /// Asks the run to stop early (a shutdown).
    pub stop: Stop,
    /// What a backtest step scores, instead of every model over the configured windows.
    pub backtest: Option<BacktestRequest>,
    /// What a restore step puts back.
    pub restoring: Restoring,
}

/// What a restore step puts back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Restoring {
    /// Every object costcast holds changed.
    #[default]
    Every,
    /// The objects of one budget; its ladder starts again from the bottom.
    Budget(String),
    /// One object; its budget's ladder is left as it is.
    Object(ObjectRef),
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
    /// Some sources could not be read; every stage ran on the others.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Sources(Vec<SourceFailure>),
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
    /// What every stage did, when they all ran and only some sources failed.
    pub partial: Option<Box<RunReport>>,
}

impl RunError {
    /// `step` failed before the run was recorded.
    pub fn unrecorded(step: Step, source: StageError) -> RunError {
        RunError {
            step,
            source,
            run_id: None,
            partial: None,
        }
    }

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
    /// Sources this run could not read.
    pub failed_sources: Vec<SourceFailure>,
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
    let run = RecordedRun::start(ctx, job).await.map_err(|e| {
        RunError::unrecorded(steps.first().copied().unwrap_or(Step::Ingest), e.into())
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
        let at = StageAt {
            run_id,
            now,
            as_of,
            options,
        };
        let (stage, error) = run_stage(ctx, step, at, &mut lock, &mut report).await;
        report.stages.push(stage);
        if let Some(e) = error {
            failure = Some((step, e));
            break;
        }
    }
    if let Some(leader) = lock.take() {
        leader.release().await;
    }
    let detail = RunDetail {
        as_of: Some(as_of),
        stages: report.stages.clone(),
        failed_sources: report.failed_sources.clone(),
        ..RunDetail::default()
    };
    let last = steps.last().copied().unwrap_or(Step::Notify);
    finish(run, detail, failure, run_span, last).await?;
    match report.failed_sources.is_empty() {
        true => Ok(report),
        false => Err(RunError {
            step: Step::Ingest,
            source: StageError::Sources(report.failed_sources.clone()),
            run_id: Some(run_id),
            partial: Some(Box::new(report)),
        }),
    }
}

/// Records how the run ended; the run's error is the failed stage's, else a failure to record.
async fn finish(
    run: RecordedRun,
    mut detail: RunDetail,
    failure: Option<(Step, StageError)>,
    run_span: &tracing::Span,
    last: Step,
) -> Result<(), RunError> {
    let run_id = run.id();
    let outcome = match &failure {
        None if !detail.failed_sources.is_empty() => RunOutcome::Partial,
        None => RunOutcome::Ok,
        Some((_, StageError::Interrupted(_))) => RunOutcome::Interrupted,
        Some(_) => RunOutcome::Failed,
    };
    if let Some((step, e @ StageError::Interrupted(_))) = &failure
        && detail.stages.last().is_none_or(|s| s.step != *step)
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
                partial: None,
            })
        }
        (None, Err(e)) => Err(RunError {
            step: last,
            source: e.into(),
            run_id: Some(run_id),
            partial: None,
        }),
        (None, Ok(())) => Ok(()),
    }
}

/// Where a stage runs: its run, the time the run acts as of, and the run's options.
#[derive(Clone, Copy)]
struct StageAt<'a> {
    run_id: i64,
    now: DateTime<Utc>,
    as_of: Day,
    options: &'a RunOptions,
}

/// Runs one stage, taking the leader lock first for the stages that move budget state, and
/// reports it; an abort through the run's stop interrupts it, rolling back what it had not
/// committed.
async fn run_stage(
    ctx: &App,
    step: Step,
    at: StageAt<'_>,
    lock: &mut Option<Leader>,
    report: &mut RunReport,
) -> (StageReport, Option<StageError>) {
    let StageAt {
        run_id,
        now,
        as_of,
        options,
    } = at;
    let span = tracing::info_span!("stage", step = %step, outcome = tracing::field::Empty);
    let started_at = ctx.clock.now();
    let started = Instant::now();
    // Boxed: each stage's future is large and deep, and every command's future would
    // otherwise nest all of them, past the compiler's layout depth for the binary.
    let work = Box::pin(async {
        if matches!(step, Step::Budgets | Step::Act | Step::Restore) && lock.is_none() {
            // Evaluating, acting and restoring all move budget state: runners take turns.
            *lock = Some(Leader::take(ctx, &options.stop).await?);
        }
        let halt = lock.as_ref().map(Leader::lost).unwrap_or_default();
        let counts = match step {
            Step::Ingest => ingest_stage(ctx, options, now, report).await,
            Step::Forecast => forecast_stage(ctx, run_id, as_of).await,
            Step::Budgets => budgets::stage(ctx, run_id, as_of, report).await,
            Step::Act => acting::act_stage(ctx, run_id, now, options, halt.clone(), report).await,
            Step::Notify => acting::notify_stage(ctx, run_id, as_of, options, report).await,
            Step::Backtest => backtest_stage(ctx, run_id, as_of, options, report).await,
            Step::Restore => {
                acting::restore_stage(ctx, run_id, now, options, halt.clone(), report).await
            }
            Step::Prune => prune_stage(ctx).await,
        }?;
        match halt.is_cancelled() {
            true => Err(StageError::Other(format!(
                "the leader lock was lost during {step} (see the log for why); changes not yet made were left for the next run"
            ))),
            false => Ok(counts),
        }
    })
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
    // A partial ingest is not an error of the stage: the run goes on with the sources read.
    let (outcome, counts, said, error) = match result {
        Ok(counts) if step == Step::Ingest && !report.failed_sources.is_empty() => {
            let failed = StageError::Sources(report.failed_sources.clone()).to_string();
            tracing::warn!(millis, counts = ?counts, failed, "Stage finished without some sources.");
            crate::telemetry::record_counts(&span, &counts);
            (StageOutcome::Partial, counts, Some(failed), None)
        }
        Ok(counts) => {
            tracing::info!(millis, counts = ?counts, "Stage finished.");
            crate::telemetry::record_counts(&span, &counts);
            (StageOutcome::Ok, counts, None, None)
        }
        Err(e) => {
            let outcome = match e {
                StageError::Interrupted(_) => StageOutcome::Interrupted,
                _ => StageOutcome::Failed,
            };
            tracing::error!(millis, error = %e, "Stage {}.", outcome.as_str());
            crate::telemetry::record_failure(&span, &e.to_string());
            (outcome, BTreeMap::new(), Some(e.to_string()), Some(e))
        }
    };
    span.record("outcome", outcome.as_str());
    let stage = StageReport {
        step,
        started_at,
        finished_at: ctx.clock.now(),
        millis,
        outcome,
        counts,
        error: said,
    };
    (stage, error)
}

type Counts = BTreeMap<String, u64>;

fn counts<const N: usize>(pairs: [(&str, u64); N]) -> Counts {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

mod ingesting;
pub use ingesting::drop_unconfigured;
use ingesting::ingest_stage;
mod forecasting;
use forecasting::{backtest_stage, forecast_stage};
mod pruning;
pub use forecasting::{load_targets, trusted_through};
use pruning::prune_stage;
