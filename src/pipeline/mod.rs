//! The stage order. `run_once` runs a job's steps — ingest → forecast → budgets → act →
//! notify — each reading what the previous one stored and recording what it did, so any step
//! can be re-run alone and every run can be inspected afterwards.

mod acting;
pub use acting::{restore, restore_object};
mod budgets;
pub mod daemon;
pub mod job;
mod stop;
pub use stop::Stop;

use std::collections::BTreeMap;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use crate::act::{Cluster, slack};
use tracing::Instrument;

use crate::config::{Config, Pricing, SourceKind};
use crate::domain::{
    Accuracy, ActionRecord, Currency, Day, DayRange, Evaluation, ModelChoice, Money, PlannedChange,
    Scope,
};
use crate::forecast;
use crate::ingest::{self, FetchInputs, IngestError, SourceHistory};
use crate::store::{Ingested, RunOutcome, Store, StoreError};
pub use job::{Job, JobError, Step};

/// What a run needs: configuration, the store, an HTTP client, and the Kubernetes API once a
/// step needs it.
pub struct Context {
    /// The validated configuration.
    pub config: Config,
    /// The store.
    pub store: Store,
    /// The HTTP client for webhooks.
    pub http: reqwest::Client,
    /// The Kubernetes API, connected on first use so commands that never act need none.
    pub cluster: tokio::sync::OnceCell<Result<Cluster, String>>,
}

impl Context {
    /// The Kubernetes API, connecting on the first call.
    pub async fn cluster(&self) -> Result<&Cluster, String> {
        self.cluster
            .get_or_init(|| async {
                Cluster::connect(self.config.kubernetes.api_url.as_deref())
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
            .as_ref()
            .map_err(Clone::clone)
    }
}

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

/// What one stage did, as recorded in the run's detail.
#[derive(Debug, Clone, Serialize)]
pub struct StageReport {
    /// The stage.
    pub step: Step,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Wall time in milliseconds.
    pub millis: u64,
    /// `ok`, `failed` or `interrupted`.
    pub outcome: &'static str,
    /// Counts, by name.
    pub counts: BTreeMap<String, u64>,
    /// The error, if it failed.
    pub error: Option<String>,
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
    ctx: &Context,
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
    ctx: &Context,
    job: &str,
    steps: &[Step],
    now: DateTime<Utc>,
    options: &RunOptions,
    run_span: &tracing::Span,
) -> Result<RunReport, RunError> {
    // Runs are stamped with the wall clock; `now` may be a replayed day (`--as-of`) and is
    // recorded as the run's `as_of` instead.
    let run_id = ctx
        .store
        .start_run(job, Utc::now())
        .await
        .map_err(|e| RunError {
            step: steps.first().copied().unwrap_or(Step::Ingest),
            source: e.into(),
            run_id: None,
        })?;
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
        let started_at = Utc::now();
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
                Step::Backtest => backtest_stage(ctx, run_id, as_of, &mut report).await,
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
                ("ok", counts, None)
            }
            Err(e) => {
                let outcome = match e {
                    StageError::Interrupted(_) => "interrupted",
                    _ => "failed",
                };
                tracing::error!(millis, error = %e, "Stage {outcome}.");
                let message = e.to_string();
                crate::telemetry::record_failure(&span, &message);
                failure = Some((step, e));
                (outcome, BTreeMap::new(), Some(message))
            }
        };
        span.record("outcome", outcome);
        report.stages.push(StageReport {
            step,
            started_at,
            finished_at: Utc::now(),
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
    let mut detail = json!({ "as_of": as_of.to_string(), "stages": report.stages });
    if let Some((step, e @ StageError::Interrupted(_))) = &failure
        && report.stages.last().is_none_or(|s| s.step != *step)
    {
        detail["stopped_before"] = json!({ "step": step, "reason": e.to_string() });
    }
    let recorded = ctx
        .store
        .finish_run(run_id, Utc::now(), outcome, &detail)
        .await;
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
async fn take_lock(ctx: &Context, stop: &Stop) -> Result<crate::store::LeaderLock, StageError> {
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

async fn release(ctx: &Context, lock: Option<crate::store::LeaderLock>) {
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

async fn ingest_stage(
    ctx: &Context,
    options: &RunOptions,
    now: DateTime<Utc>,
) -> Result<Counts, StageError> {
    let sources: Vec<_> = match &options.source {
        Some(name) => vec![ctx.config.source(name).cloned().ok_or_else(|| {
            StageError::Other(format!("no source named {name:?} in the configuration"))
        })?],
        None => ctx
            .config
            .sources
            .iter()
            .filter(|s| {
                options.source_kinds.is_empty()
                    || options.source_kinds.iter().any(|k| k == s.kind.name())
            })
            .cloned()
            .collect(),
    };
    if sources.is_empty() && options.source_kinds.is_empty() {
        tracing::warn!("No sources are configured: nothing to ingest.");
    } else if sources.is_empty() {
        tracing::info!(kinds = ?options.source_kinds, "No source of these kinds is configured: nothing to ingest.");
    }
    let mut total = counts([
        ("sources", 0),
        ("files", 0),
        ("rows_read", 0),
        ("requests", 0),
        ("points_written", 0),
        ("points_removed", 0),
        ("usage_written", 0),
        ("days_written", 0),
    ]);
    let today = Day::from_date(now.date_naive());
    for source in sources {
        let started = std::time::Instant::now();
        let name = source.name.clone();
        let (last_day, estimated) = ctx.store.source_history(&name).await?;
        let mut inputs = FetchInputs {
            today,
            history: SourceHistory {
                last_day,
                estimated,
            },
            billed: Vec::new(),
        };
        if let SourceKind::Prometheus(settings) = &source.kind
            && let Pricing::Allocate(allocation) = &settings.pricing
        {
            let window = ingest::prometheus::window(&inputs, options.range);
            inputs.billed = billed(ctx, &name, &allocation.scope, window).await?;
        }
        let span = tracing::info_span!("ingest", source = %name);
        let batch = ingest::fetch(&source, &inputs, options.range, &ctx.http)
            .instrument(span)
            .await?;
        let Some(covered) = batch.covered else {
            tracing::warn!(source = %name, "Source had nothing in range; nothing stored.");
            continue;
        };
        let written = ctx
            .store
            .replace_ingested(
                &name,
                covered,
                &Ingested {
                    points: &batch.points,
                    usage: &batch.usage,
                    estimated: &batch.estimated,
                },
            )
            .await?;
        tracing::info!(
            source = %name,
            files = batch.files.len(),
            rows = batch.rows_read,
            requests = batch.requests,
            points = written.points_written,
            usage = written.usage_written,
            series = written.series,
            replaced = written.points_removed,
            days = covered.len_days(),
            estimated_days = batch.estimated.len(),
            seconds = format_args!("{:.2}", started.elapsed().as_secs_f64()),
            "Source ingested: {} rows read, {} days written ({covered}), {} requests, {:.2} s.",
            batch.rows_read,
            covered.len_days(),
            batch.requests,
            started.elapsed().as_secs_f64(),
        );
        for (key, n) in [
            ("sources", 1),
            ("files", batch.files.len() as u64),
            ("rows_read", batch.rows_read),
            ("requests", u64::from(batch.requests)),
            ("points_written", written.points_written),
            ("points_removed", written.points_removed),
            ("usage_written", written.usage_written),
            ("days_written", covered.len_days() as u64),
        ] {
            *total.entry(key.to_string()).or_default() += n;
        }
    }
    Ok(total)
}

/// The daily billed amounts inside `scope` (from other sources), for usage allocation.
async fn billed(
    ctx: &Context,
    source: &str,
    scope: &Scope,
    window: Option<DayRange>,
) -> Result<Vec<(Day, Money)>, StageError> {
    let Some(window) = window else {
        return Ok(Vec::new());
    };
    let series: BTreeMap<i64, Currency> = ctx
        .store
        .series()
        .await?
        .into_iter()
        .filter(|s| s.dims.source != source && scope.matches(&s.dims))
        .map(|s| (s.id, s.currency))
        .collect();
    if series.is_empty() {
        return Err(StageError::Other(format!(
            "source {source}: allocate.scope ({scope}) matches no stored cost; ingest the billing source first"
        )));
    }
    let mut daily: BTreeMap<(Day, Currency), f64> = BTreeMap::new();
    for (id, day, amount) in ctx
        .store
        .daily_costs(Some(window.start()), Some(window.end()))
        .await?
    {
        if let Some(currency) = series.get(&id) {
            *daily.entry((day, currency.clone())).or_default() += amount;
        }
    }
    Ok(daily
        .into_iter()
        .map(|((day, currency), amount)| (day, Money::new(amount, currency)))
        .collect())
}

/// The last day trusted for fitting as of `as_of`: today is never complete, the
/// `billing_lag_days` before it are still being reported, and a day a source still marks as
/// estimated (Cost Explorer's `Estimated`) may yet change. Later days are forecast (nowcast), so
/// a half-reported day never reads as a drop.
pub fn trusted_through(
    as_of: Day,
    billing_lag_days: u32,
    last_stored: Option<Day>,
    first_estimated: Option<Day>,
) -> Option<Day> {
    let by_lag = as_of.add_days(-1 - billing_lag_days as i64);
    let by_estimate = first_estimated.map_or(by_lag, |d| d.add_days(-1));
    last_stored.map(|last| last.min(by_lag).min(by_estimate))
}

/// How far back an estimated day still holds the forecast's history back: sources mark only
/// their newest days estimated, and an older mark is a source that stopped reporting, which the
/// ingest summary shows rather than the forecast silently shortening.
const ESTIMATED_LOOKBACK_DAYS: i64 = 31;

/// The forecast targets built from the store, each with the last day its fit trusts.
pub async fn load_targets(
    ctx: &Context,
    as_of: Day,
) -> Result<Vec<(forecast::Target, Day)>, StageError> {
    let settings = &ctx.config.forecast;
    let summary = ctx.store.cost_summary().await?;
    let first_estimated = ctx
        .store
        .first_estimated_day(as_of.add_days(-ESTIMATED_LOOKBACK_DAYS))
        .await?;
    let Some(history_end) = trusted_through(
        as_of,
        settings.billing_lag_days,
        summary.last_day,
        first_estimated,
    ) else {
        return Err(StageError::Other(
            "the store holds no costs yet: run `costcast ingest` first".into(),
        ));
    };
    let series: Vec<(i64, crate::domain::Dimensions)> = ctx
        .store
        .series()
        .await?
        .into_iter()
        .map(|s| (s.id, s.dims))
        .collect();
    let costs = ctx.store.daily_costs(None, Some(history_end)).await?;
    let targets = forecast::build_targets(
        &series,
        &costs,
        &ctx.config.budgets,
        &settings.grain,
        settings.top_series,
        &settings.holidays,
    );
    Ok(targets.into_iter().map(|t| (t, history_end)).collect())
}

/// Days to forecast: `forecast.horizon_days`, or more when a budget's period (a quarter, a
/// year) ends later, so every budget's projection is forecast to its period's end.
fn horizon_days(ctx: &Context, targets: &[(forecast::Target, Day)], as_of: Day) -> usize {
    let history_end = targets.iter().map(|(_, end)| *end).min().unwrap_or(as_of);
    let to_period_ends = ctx.config.budgets.iter().map(|b| {
        history_end
            .days_until(b.period.containing(as_of).end())
            .max(0) as usize
    });
    to_period_ends
        .chain([ctx.config.forecast.horizon_days as usize])
        .max()
        .unwrap_or(0)
}

/// Days each backtest window of a forecast run covers: the month a budget is judged on.
pub const BACKTEST_HORIZON: usize = forecast::backtest::WINDOW_DAYS;

async fn forecast_stage(ctx: &Context, run_id: i64, as_of: Day) -> Result<Counts, StageError> {
    let settings = ctx.config.forecast.clone();
    let targets = load_targets(ctx, as_of).await?;
    let horizon = horizon_days(ctx, &targets, as_of);
    let (output, accuracy) = tokio::task::spawn_blocking(move || {
        let mut output = forecast::forecast_targets(&targets, horizon, settings.model);
        let accuracy = forecast::calibrate_by_backtest(
            &targets,
            &mut output.forecasts,
            settings.model,
            settings.backtest_windows,
        );
        (output, accuracy)
    })
    .await
    .map_err(|e| StageError::Other(format!("forecast task panicked: {e}")))?;
    ctx.store.save_forecasts(run_id, &output.forecasts).await?;
    ctx.store.save_anomalies(run_id, &output.anomalies).await?;
    ctx.store.save_accuracy(run_id, &accuracy).await?;
    let fallbacks = output
        .forecasts
        .iter()
        .filter(|f| {
            f.note
                .as_deref()
                .is_some_and(|n| n.contains("seasonal naive used"))
        })
        .count();
    Ok(counts([
        ("series", output.forecasts.len() as u64),
        ("fallbacks", fallbacks as u64),
        ("anomalies", output.anomalies.len() as u64),
        ("backtested", accuracy.len() as u64),
    ]))
}

/// Scores `auto` and every model on the store's forecast series, `forecast.backtest_windows`
/// windows of [`BACKTEST_HORIZON`] days (at least one), and stores the scores.
async fn backtest_stage(
    ctx: &Context,
    run_id: i64,
    as_of: Day,
    report: &mut RunReport,
) -> Result<Counts, StageError> {
    let targets = load_targets(ctx, as_of).await?;
    let plan = forecast::backtest::Plan {
        horizon: BACKTEST_HORIZON,
        windows: ctx.config.forecast.backtest_windows.max(1),
    };
    let choices = ModelChoice::every();
    let models = choices.len() as u64;
    let series = targets.len() as u64;
    let scores =
        tokio::task::spawn_blocking(move || forecast::backtest::run(&targets, &choices, plan))
            .await
            .map_err(|e| StageError::Other(format!("backtest task panicked: {e}")))?;
    ctx.store.save_accuracy(run_id, &scores).await?;
    let scored = scores.len() as u64;
    report.accuracy = scores;
    Ok(counts([
        ("series", series),
        ("models", models),
        ("scores", scored),
        ("windows", plan.windows as u64),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fit_stops_before_lagged_and_estimated_days() {
        let d = |s: &str| Day::parse(s).unwrap();
        let as_of = d("2024-06-20");
        // Lag 1: today and yesterday are not trusted.
        assert_eq!(
            trusted_through(as_of, 1, Some(d("2024-06-19")), None),
            Some(d("2024-06-18"))
        );
        // A day still estimated three days back holds the history before it.
        assert_eq!(
            trusted_through(as_of, 1, Some(d("2024-06-19")), Some(d("2024-06-16"))),
            Some(d("2024-06-15"))
        );
        // Stored data that stops early ends the history there.
        assert_eq!(
            trusted_through(as_of, 1, Some(d("2024-06-10")), None),
            Some(d("2024-06-10"))
        );
        assert_eq!(trusted_through(as_of, 1, None, None), None);
    }
}
