//! The act and notify stages: the cluster is made to match each budget's ladder position, and
//! people hear about it when something changed, not on every run.

use crate::app::App;
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{Counts, Restoring, RunOptions, RunReport, StageError, counts};
use crate::act::{self, ActRun, slack};
use crate::domain::{
    ActionKind, ActionRecord, AlertMark, Budget, BudgetMode, Evaluation, ObjectChange, ObjectRef,
    Operation, Outcome, PlanOutcome, PlannedChange, Status,
};
use crate::forecast::targets::budget_series;

/// Whether a budget's steps in effect reach Kubernetes objects.
fn touches_cluster(budget: &Budget, steps: u32) -> bool {
    budget
        .actions
        .iter()
        .take(steps as usize)
        .any(|r| r.kind != ActionKind::Alert)
}

/// Makes the cluster match each budget's ladder position and records what was planned and done.
pub(super) async fn act_stage(
    ctx: &App,
    run_id: i64,
    now: DateTime<Utc>,
    options: &RunOptions,
    halt: CancellationToken,
    report: &mut RunReport,
) -> Result<Counts, StageError> {
    let states = ctx.store.budget_states().await?;
    let budgets: Vec<(&Budget, u32)> = ctx
        .config
        .budgets
        .iter()
        .map(|b| (b, states.get(&b.name).map_or(0, |s| s.state.steps())))
        .collect();
    let changes: Vec<PlannedChange> = budgets
        .iter()
        .flat_map(|(b, steps)| act::ladder(b, *steps))
        .collect();
    let held = ctx.store.throttled(None).await?;
    let outcome = match options.dry_run {
        true => PlanOutcome::DryRun,
        false => PlanOutcome::Planned,
    };
    // The plan is stored before the cluster is touched: a run killed while acting leaves
    // what it set out to do, and its changes carry costcast's label on the objects.
    ctx.store
        .save_planned_changes(run_id, &changes, outcome)
        .await?;
    let records = act_on_cluster(ctx, budgets, held, options, now, halt).await?;
    ctx.store.save_actions(run_id, &records).await?;
    let c = act_counts(&changes, &records);
    report.changes = changes;
    report.actions = records;
    report.acted = true;
    Ok(c)
}

/// Reconciles the cluster with the budgets' steps, when any step or held object needs it.
/// Without a Kubernetes API, observe-mode steps are planned without their objects; enforce-mode
/// ones (and held objects) fail the stage.
async fn act_on_cluster(
    ctx: &App,
    budgets: Vec<(&Budget, u32)>,
    held: Vec<ObjectChange>,
    options: &RunOptions,
    now: DateTime<Utc>,
    halt: CancellationToken,
) -> Result<Vec<ActionRecord>, StageError> {
    // A budget that may change objects is checked for objects holding costcast's label even
    // with no step in effect: the store may have lost the record of one.
    let needs_cluster = !held.is_empty()
        || budgets
            .iter()
            .any(|(b, _)| touches_cluster(b, b.actions.len() as u32));
    if !needs_cluster {
        return Ok(Vec::new());
    }
    match ctx.cluster().await {
        Ok(cluster) => {
            let run = ActRun {
                budgets,
                held,
                settings: &ctx.config.act,
                dry_run: options.dry_run,
                now,
                halt,
            };
            Ok(act::reconcile(cluster, &run).await)
        }
        Err(e) => {
            let must_act = !held.is_empty()
                || budgets
                    .iter()
                    .any(|(b, steps)| b.mode == BudgetMode::Enforce && touches_cluster(b, *steps));
            if must_act && !options.dry_run {
                return Err(StageError::Other(format!(
                    "{e}. Budgets in enforce mode need it: set kubernetes.api_url, or run in a cluster or with a kubeconfig."
                )));
            }
            tracing::info!(error = %e, "No Kubernetes API; observe-mode steps are planned without their target objects.");
            Ok(Vec::new())
        }
    }
}

/// The act stage's counts: steps in effect, and objects by what was done to them.
fn act_counts(changes: &[PlannedChange], records: &[ActionRecord]) -> Counts {
    let n = |op: Operation, o: Outcome| {
        records
            .iter()
            .filter(|r| r.operation == op && r.outcome == o)
            .count() as u64
    };
    let failed = records
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .count();
    if failed > 0 {
        tracing::error!(failed, "Some changes failed; the alert lists them.");
    }
    counts([
        ("steps", changes.len() as u64),
        ("applied", n(Operation::Apply, Outcome::Done)),
        ("planned", n(Operation::Apply, Outcome::Planned)),
        ("restored", n(Operation::Restore, Outcome::Done)),
        ("skipped", n(Operation::Apply, Outcome::Skipped)),
        (
            "conflicts",
            records
                .iter()
                .filter(|r| r.outcome == Outcome::Conflict)
                .count() as u64,
        ),
        ("failed", failed as u64),
    ])
}

/// Whether a budget is worth a message now: its status or ladder position changed since the
/// last alert, an object of it conflicted or failed, its data is behind or the daily digest is
/// due (these two once a day).
fn worth_alerting(
    e: &Evaluation,
    last: Option<&AlertMark>,
    records: &[ActionRecord],
    digest: bool,
) -> bool {
    let troubled = records.iter().any(|r| {
        r.change.budget == e.budget && matches!(r.outcome, Outcome::Conflict | Outcome::Failed)
    });
    let changed = match last {
        None => e.status != Status::Ok,
        Some(m) => m.status != e.status || m.steps != e.steps,
    };
    let first_today = last.is_none_or(|m| m.day < e.as_of);
    let digest_due = digest && e.status != Status::Ok && first_today;
    // Data that did not refresh is said once a day, whatever the budget's status.
    let behind = !e.lagging.is_empty() && first_today;
    troubled || changed || digest_due || behind
}

/// The steps and object changes a message reports: this run's when it acted, even when there
/// are none; only a notify run on its own falls back to the newest stored.
async fn current_actions(
    ctx: &App,
    report: &RunReport,
) -> Result<(Vec<PlannedChange>, Vec<ActionRecord>), StageError> {
    if report.acted {
        return Ok((report.changes.clone(), report.actions.clone()));
    }
    let changes = ctx
        .store
        .latest_planned_changes()
        .await?
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let records = match ctx.store.latest_action_run().await? {
        Some(run) => ctx.store.actions(run).await?,
        None => Vec::new(),
    };
    Ok((changes, records))
}

pub(super) async fn notify_stage(
    ctx: &App,
    run_id: i64,
    as_of: crate::domain::Day,
    options: &RunOptions,
    report: &mut RunReport,
) -> Result<Counts, StageError> {
    let evaluations = ctx.store.latest_evaluations().await?;
    let states = ctx.store.budget_states().await?;
    let (changes, records) = current_actions(ctx, report).await?;
    let chosen: Vec<Evaluation> = evaluations
        .into_iter()
        .filter(|e| ctx.config.budgets.iter().any(|b| b.name == e.budget))
        .filter(|e| {
            let last = states.get(&e.budget).and_then(|s| s.alerted.as_ref());
            worth_alerting(e, last, &records, ctx.config.notify.daily_digest)
        })
        .collect();
    if chosen.is_empty() {
        return Ok(counts([("messages", 0)]));
    }
    let period_start = chosen
        .iter()
        .map(|e| e.projection.period.start())
        .min()
        .unwrap_or(as_of);
    let anomalies = ctx
        .store
        .latest_anomalies(Some(period_start), None)
        .await?
        .into_iter()
        .filter(|a| chosen.iter().any(|e| a.series == budget_series(&e.budget)))
        .collect::<Vec<_>>();
    let forecasts = ctx.store.latest_forecasts().await?;
    let message = slack::build_message(&slack::Alert {
        evaluations: &chosen,
        budgets: &ctx.config.budgets,
        changes: &changes,
        actions: &records,
        anomalies: &anomalies,
        forecasts: &forecasts,
        report_url: ctx.config.notify.report_url.as_deref(),
        run_id,
    });
    let (outcome, result) = match (&ctx.config.notify.slack_webhook, options.dry_run) {
        (None, _) => ("not-configured".to_string(), Ok(0)),
        (Some(_), true) => ("dry-run".to_string(), Ok(0)),
        (Some(hook), false) => match slack::send(&ctx.http, hook, &message).await {
            Ok(attempts) => ("sent".to_string(), Ok(attempts)),
            Err(e) => (format!("failed: {e}"), Err(e)),
        },
    };
    ctx.store
        .save_alert(run_id, "slack", &message, &outcome)
        .await?;
    // A message that did not get through is tried again by the next run.
    if result.is_ok() && !options.dry_run {
        for e in &chosen {
            let mark = AlertMark {
                status: e.status,
                steps: e.steps,
                day: e.as_of,
            };
            ctx.store.mark_alerted(&e.budget, &mark).await?;
        }
    }
    report.alert = Some(message);
    report.alert_outcome = Some(outcome);
    let attempts = result?;
    Ok(counts([("messages", 1), ("attempts", attempts as u64)]))
}

/// Puts back what costcast changed for `budget` (or every budget), found in the store and by
/// costcast's label on the cluster, as a run of the restore step. A restored budget starts its
/// ladder again from the first step if its breach persists.
pub async fn restore(
    ctx: &App,
    budget: Option<&str>,
    dry_run: bool,
    now: DateTime<Utc>,
) -> Result<RunReport, super::RunError> {
    let refuse = |source: StageError| super::RunError::unrecorded(super::Step::Restore, source);
    if let Some(name) = budget
        && !ctx.config.budgets.iter().any(|b| b.name == name)
        && ctx
            .store
            .throttled(Some(name))
            .await
            .map_err(|e| refuse(e.into()))?
            .is_empty()
    {
        return Err(refuse(StageError::Refused(format!(
            "no budget named {name:?} is configured or holds changes"
        ))));
    }
    let options = RunOptions {
        dry_run,
        restoring: budget.map_or(Restoring::Every, |b| Restoring::Budget(b.to_string())),
        ..RunOptions::default()
    };
    // Boxed: the restore command's future would otherwise nest the whole pipeline's, past
    // the compiler's layout depth for the binary.
    Box::pin(super::run_once(
        ctx,
        "restore",
        &[super::Step::Restore],
        now,
        &options,
    ))
    .await
}

/// Puts one object costcast holds back (asked for through the report API), as a run of the
/// restore step. `None` when costcast does not hold the object. The budget's ladder is left as
/// it is: while the budget stays in breach, its next act run applies the step again, unless its
/// mode is set to observe.
pub async fn restore_object(
    ctx: &App,
    target: &ObjectRef,
    now: DateTime<Utc>,
) -> Result<Option<ActionRecord>, super::RunError> {
    let held = ctx
        .store
        .throttled(None)
        .await
        .map_err(|e| super::RunError::unrecorded(super::Step::Restore, e.into()))?;
    if !held.iter().any(|c| &c.target == target) {
        return Ok(None);
    }
    let options = RunOptions {
        restoring: Restoring::Object(target.clone()),
        ..RunOptions::default()
    };
    let run = super::run_once(ctx, "api-restore", &[super::Step::Restore], now, &options);
    let report = Box::pin(run).await?;
    Ok(report.actions.into_iter().next())
}

/// The restore step: puts back what `options.restoring` names and records every object.
pub(super) async fn restore_stage(
    ctx: &App,
    run_id: i64,
    now: DateTime<Utc>,
    options: &RunOptions,
    halt: CancellationToken,
    report: &mut RunReport,
) -> Result<Counts, StageError> {
    let records = match &options.restoring {
        Restoring::Every => restore_held(ctx, run_id, None, options.dry_run, now, halt).await?,
        Restoring::Budget(b) => {
            restore_held(ctx, run_id, Some(b), options.dry_run, now, halt).await?
        }
        Restoring::Object(target) => {
            let held = ctx.store.throttled(None).await?;
            let change = held
                .into_iter()
                .find(|c| &c.target == target)
                .ok_or_else(|| StageError::Refused(format!("costcast does not hold {target}")))?;
            let cluster = ctx
                .cluster()
                .await
                .map_err(|e| StageError::Other(e.to_string()))?;
            let record = act::restore_one(cluster, change, true, &ctx.config.act, now).await;
            ctx.store
                .save_actions(run_id, std::slice::from_ref(&record))
                .await?;
            vec![record]
        }
    };
    let n = |o: Outcome| records.iter().filter(|r| r.outcome == o).count() as u64;
    let failed = n(Outcome::Failed);
    if failed > 0 {
        tracing::error!(
            failed,
            "Some objects could not be restored; the run lists them."
        );
    }
    let counts = counts([
        ("objects", records.len() as u64),
        ("restored", n(Outcome::Done)),
        ("planned", n(Outcome::Planned)),
        ("conflicts", n(Outcome::Conflict)),
        ("failed", failed),
    ]);
    report.actions = records;
    report.acted = true;
    Ok(counts)
}

/// Puts back every held object of `budget` (or of all) and resets the ladders restored.
async fn restore_held(
    ctx: &App,
    run_id: i64,
    budget: Option<&str>,
    dry_run: bool,
    now: DateTime<Utc>,
    halt: CancellationToken,
) -> Result<Vec<ActionRecord>, StageError> {
    let stored = ctx.store.throttled(budget).await?;
    let cluster = ctx
        .cluster()
        .await
        .map_err(|e| StageError::Other(e.to_string()))?;
    let (held, mut records) = act::find_held(cluster, &ctx.config.budgets, stored, budget)
        .await
        .map_err(|e| StageError::Other(e.to_string()))?;
    records.extend(act::restore_all(cluster, held, !dry_run, &ctx.config.act, now, &halt).await);
    ctx.store.save_actions(run_id, &records).await?;
    if !dry_run {
        let states = ctx.store.budget_states().await?;
        let reset: Vec<_> = states
            .into_iter()
            .filter(|(name, _)| budget.is_none_or(|b| b == name))
            .map(|(name, s)| {
                (
                    name,
                    crate::domain::BudgetState {
                        engaged: None,
                        ..s.state
                    },
                )
            })
            .collect();
        ctx.store.save_budget_states(run_id, &reset).await?;
    }
    Ok(records)
}
