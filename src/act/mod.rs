//! Acting on budgets: each budget's ladder steps in effect are made true on the cluster, and
//! the changes of a budget with none in effect are put back. Every change is recorded on the
//! object (annotation `costcast.io/original`) before it is made, and restore works from that
//! record. Observe mode and `--dry-run` walk the same path and stop before the final call.
//!
//! `plan` decides (pure), `execute` makes the calls; this module walks a run through the two,
//! listing before each step so a step sees what the one before it changed.

pub mod changes;
pub mod execute;
pub mod kubernetes;
pub mod plan;
pub mod slack;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::ActSettings;
use crate::domain::{ActionRecord, Budget, BudgetMode, ObjectChange, Operation, Outcome};
pub use execute::find_held;
pub use kubernetes::{Cluster, KubeError, Object};
pub use plan::ladder;
use plan::{Intent, Planner};

/// What one run acts on.
pub struct ActRun<'a> {
    /// Each budget with the ladder steps that should be in effect.
    pub budgets: Vec<(&'a Budget, u32)>,
    /// The objects held changed, as the store knows them.
    pub held: Vec<ObjectChange>,
    /// Limits and protected namespaces.
    pub settings: &'a ActSettings,
    /// Plan and record only.
    pub dry_run: bool,
    /// The time restore counts missed CronJob schedules up to.
    pub now: DateTime<Utc>,
    /// Fires when this runner may no longer change anything (its leader lock was lost):
    /// every change not yet made is recorded as skipped.
    pub halt: CancellationToken,
}

/// Makes the cluster match every budget's steps: applies what is missing, restores what a
/// budget no longer calls for (including budgets no longer configured).
pub async fn reconcile(cluster: &Cluster, run: &ActRun<'_>) -> Vec<ActionRecord> {
    let held = held_anywhere(cluster, run).await;
    let (mut planner, releasing) = Planner::start(&held, &run.budgets, run.settings);
    let (settings, now) = (run.settings, run.now);
    let restored = restore_all(cluster, releasing, !run.dry_run, settings, now, &run.halt);
    let mut records = restored.await;
    for (budget, steps) in &run.budgets {
        let execute = budget.mode == BudgetMode::Enforce && !run.dry_run;
        for (i, rule) in budget.actions.iter().enumerate().take(*steps as usize) {
            let step = i as u32 + 1;
            let Some(kinds) = plan::kinds(&rule.kind) else {
                continue;
            };
            // A namespace that cannot be listed becomes a failed record, not a failed run.
            let mut listings = Vec::new();
            for ns in &rule.namespaces {
                let whole = |outcome, detail| {
                    plan::namespace_record(budget, step, kinds[0], ns, outcome, detail)
                };
                if run.settings.protected_namespaces.contains(ns) {
                    records.push(whole(
                        Outcome::Skipped,
                        format!("namespace {ns} is protected"),
                    ));
                    continue;
                }
                match execute::list_step(cluster, rule, kinds, ns).await {
                    Ok(listing) => listings.push(listing),
                    Err(e) => records.push(whole(Outcome::Failed, e.to_string())),
                }
            }
            let protected = &run.settings.protected_namespaces;
            for target in plan::targets(rule, listings, protected) {
                for intent in planner.decide(budget, rule, step, target, execute) {
                    let record = match intent {
                        Intent::Record(record) => record,
                        Intent::Apply { change, .. } if run.halt.is_cancelled() => {
                            halted(Operation::Apply, change)
                        }
                        Intent::Apply {
                            object,
                            change,
                            execute,
                        } => execute::apply(cluster, &object, change, execute).await,
                    };
                    planner.note(&record);
                    records.push(record);
                }
            }
        }
    }
    records
}

/// A change left unmade because this runner lost the right to act.
fn halted(operation: Operation, change: ObjectChange) -> ActionRecord {
    ActionRecord {
        operation,
        change,
        outcome: Outcome::Skipped,
        detail: "not made: this runner lost the leader lock, so another may be acting".into(),
    }
}

/// The objects held changed: the store's records, and the objects in the budgets' namespaces
/// that carry costcast's label for a budget with no step in effect (or no longer configured),
/// so a change whose store row was never written (its run killed, its answer lost) is
/// restored all the same. A labelled object of a budget that is acting is left to the ladder,
/// which reads its originals from the object's record. A cluster that cannot be listed leaves
/// the store's records.
async fn held_anywhere(cluster: &Cluster, run: &ActRun<'_>) -> Vec<ObjectChange> {
    let budgets: Vec<Budget> = run.budgets.iter().map(|(b, _)| (*b).clone()).collect();
    let acting = |name: &str| {
        run.budgets
            .iter()
            .any(|(b, steps)| b.name == name && *steps > 0)
    };
    let labelled = match find_held(cluster, &budgets, Vec::new(), None).await {
        Ok((labelled, _)) => labelled,
        Err(e) => {
            tracing::warn!(error = %e, "Could not list the objects carrying costcast's label; acting on the store's records.");
            Vec::new()
        }
    };
    let mut held = run.held.clone();
    for change in labelled {
        if !acting(&change.budget) && !held.iter().any(|h| h.target == change.target) {
            tracing::warn!(object = %change.target, budget = %change.budget, "An object carries costcast's label without a record in the store; it is restored.");
            held.push(change);
        }
    }
    held
}

/// Puts each object back (see [`restore_one`]) until `halt` fires; the rest are recorded as
/// skipped.
pub async fn restore_all(
    cluster: &Cluster,
    changes: Vec<ObjectChange>,
    execute: bool,
    settings: &ActSettings,
    now: DateTime<Utc>,
    halt: &CancellationToken,
) -> Vec<ActionRecord> {
    let mut records = Vec::with_capacity(changes.len());
    for change in changes {
        records.push(match halt.is_cancelled() {
            true => halted(Operation::Restore, change),
            false => restore_one(cluster, change, execute, settings, now).await,
        });
    }
    records
}

/// Puts one object back as the record says, unless someone changed it since costcast did.
pub async fn restore_one(
    cluster: &Cluster,
    stored: ObjectChange,
    execute: bool,
    settings: &ActSettings,
    now: DateTime<Utc>,
) -> ActionRecord {
    match cluster.get(&stored.target).await {
        Ok(obj) => {
            execute::restore(cluster, plan::restore(stored, obj, settings, now), execute).await
        }
        Err(e) => execute::failed(Operation::Restore, stored, &e),
    }
}
