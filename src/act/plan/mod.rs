//! Deciding without touching the cluster: the ladder a budget's steps put in effect, which
//! listed objects a step reaches, what each should become given the changes costcast already
//! holds, and how a held object goes back. `execute.rs` carries these decisions out; nothing
//! here makes a call.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::changes;
use super::kubernetes::Object;
use crate::config::ActSettings;
use crate::domain::{
    ActionKind, ActionRecord, ActionRule, Budget, CapLimit, FieldChange, ObjectChange, ObjectKind,
    ObjectRef, Operation, Outcome, PlannedChange,
};

/// The ladder steps in effect as readable plans, one per step.
pub fn ladder(budget: &Budget, steps: u32) -> Vec<PlannedChange> {
    budget
        .actions
        .iter()
        .take(steps as usize)
        .enumerate()
        .map(|(i, rule)| PlannedChange {
            budget: budget.name.clone(),
            step: i as u32 + 1,
            action: rule.kind.clone(),
            namespaces: rule.namespaces.clone(),
            selector: rule.selector.clone(),
            description: describe(rule),
            mode: budget.mode,
        })
        .collect()
}

fn describe(rule: &ActionRule) -> String {
    let selector = if rule.selector.is_empty() {
        "every object".to_string()
    } else {
        format!("objects matching {}", rule.selector)
    };
    let place = format!("in {} ({selector})", rule.namespaces.join(", "));
    match &rule.kind {
        ActionKind::Alert => "Alert the channel; change nothing.".to_string(),
        ActionKind::LowerAutoscalerCaps { limit } => {
            let to = match limit {
                CapLimit::Factor(f) => format!("{:.0}% of their value", f * 100.0),
                CapLimit::Replicas(n) => format!("at most {n}"),
            };
            format!("Lower HPA maxReplicas and KEDA maxReplicaCount {place} to {to}.")
        }
        ActionKind::SuspendCronJobs { suspend_jobs } => format!(
            "Suspend CronJobs {place}{}.",
            if *suspend_jobs {
                " and the Jobs they are running"
            } else {
                ""
            }
        ),
        ActionKind::ScaleDown { replicas } => format!(
            "Scale Deployments and StatefulSets {place} down to {replicas} (capping their autoscaler instead when one manages them)."
        ),
    }
}

/// The kinds of object a step changes; `None` for a step that only alerts.
pub fn kinds(action: &ActionKind) -> Option<&'static [ObjectKind]> {
    match action {
        ActionKind::Alert => None,
        ActionKind::LowerAutoscalerCaps { .. } => Some(&[
            ObjectKind::HorizontalPodAutoscaler,
            ObjectKind::ScaledObject,
        ]),
        ActionKind::SuspendCronJobs { .. } => Some(&[ObjectKind::CronJob]),
        ActionKind::ScaleDown { .. } => Some(&[ObjectKind::Deployment, ObjectKind::StatefulSet]),
    }
}

/// What listing one namespace showed a step: the objects it reaches, and for `scale-down` the
/// autoscalers that may manage them.
#[derive(Debug, Default)]
pub struct Listing {
    /// The objects of the step's kinds (and the running Jobs of suspended CronJobs).
    pub objects: Vec<Object>,
    /// HPAs and ScaledObjects in the namespace, for `scale-down` only.
    pub autoscalers: Vec<Object>,
}

/// An object a step reaches, with the fields to change on it or why it is left alone.
pub type Target = (Object, Result<Vec<FieldChange>, String>);

/// A record about a whole namespace of a step (protected, or not listable).
pub fn namespace_record(
    budget: &Budget,
    step: u32,
    kind: ObjectKind,
    namespace: &str,
    outcome: Outcome,
    detail: String,
) -> ActionRecord {
    ActionRecord {
        operation: Operation::Apply,
        change: ObjectChange {
            budget: budget.name.clone(),
            step,
            target: ObjectRef {
                kind,
                namespace: namespace.to_string(),
                name: "*".into(),
            },
            fields: Vec::new(),
        },
        outcome,
        detail,
    }
}

/// The objects a step reaches across its listed namespaces, each once: a workload managed by
/// an autoscaler gives the autoscaler, and a KEDA-generated HPA is left to its ScaledObject.
pub fn targets(rule: &ActionRule, listings: Vec<Listing>, protected: &[String]) -> Vec<Target> {
    let mut out = Vec::new();
    for Listing {
        objects,
        autoscalers,
    } in listings
    {
        for obj in objects {
            out.push(target(rule, obj, &autoscalers, protected));
        }
    }
    // Two workloads sharing one autoscaler would otherwise change it twice.
    let mut seen = BTreeSet::new();
    out.retain(|(o, _)| seen.insert(o.target.clone()));
    out
}

fn target(rule: &ActionRule, obj: Object, autoscalers: &[Object], protected: &[String]) -> Target {
    if let Some(why) = changes::guard(&obj, protected) {
        return (obj, Err(why));
    }
    match (&rule.kind, obj.target.kind) {
        (ActionKind::LowerAutoscalerCaps { .. }, ObjectKind::HorizontalPodAutoscaler) => {
            if let Some(so) = changes::keda_owner(&obj) {
                let why = format!(
                    "generated by KEDA ScaledObject {so}, which reverts it; its ScaledObject is capped instead"
                );
                return (obj, Err(why));
            }
        }
        (ActionKind::ScaleDown { .. }, ObjectKind::Deployment | ObjectKind::StatefulSet) => {
            // An autoscaler would scale the workload straight back: cap it instead.
            let manager = autoscalers.iter().find(|a| {
                changes::scale_target(a).is_some_and(|(kind, name)| {
                    kind == obj.target.kind.as_str() && name == obj.target.name
                }) && changes::keda_owner(a).is_none()
            });
            if let Some(a) = manager {
                let verdict = match changes::guard(a, protected) {
                    Some(why) => Err(why),
                    None => Ok(changes::fields_for(&rule.kind, a)),
                };
                return (a.clone(), verdict);
            }
        }
        _ => {}
    }
    let fields = changes::fields_for(&rule.kind, &obj);
    (obj, Ok(fields))
}

/// One thing the executor is to do for an object a step reaches.
#[derive(Debug)]
pub enum Intent {
    /// Record this; no call to the cluster (skipped, refused, or held again from the object).
    Record(ActionRecord),
    /// Make `change` on `object`; only plan it unless `execute`.
    Apply {
        /// The object as listed.
        object: Object,
        /// What to record on it and set.
        change: ObjectChange,
        /// False in observe mode and dry runs.
        execute: bool,
    },
}

/// The changes costcast holds and the run's change count, as one run's decisions are made.
pub struct Planner<'a> {
    held: BTreeMap<ObjectRef, ObjectChange>,
    changed: usize,
    settings: &'a ActSettings,
}

impl<'a> Planner<'a> {
    /// Starts from the changes the store holds, and returns with it those to put back first,
    /// in the store's order: their budget is gone or no longer has the step that made them in
    /// effect (recovery, or a new period starting from the bottom of the ladder). Restoring
    /// first frees objects a budget still acting may want.
    pub fn start(
        held: &[ObjectChange],
        budgets: &[(&Budget, u32)],
        settings: &'a ActSettings,
    ) -> (Planner<'a>, Vec<ObjectChange>) {
        let configured: BTreeSet<&str> = budgets.iter().map(|(b, _)| b.name.as_str()).collect();
        let (release, keep): (Vec<_>, Vec<_>) = held.iter().cloned().partition(|c| {
            !configured.contains(c.budget.as_str())
                || budgets
                    .iter()
                    .any(|(b, steps)| b.name == c.budget && c.step > *steps)
        });
        let planner = Planner {
            held: keep.into_iter().map(|c| (c.target.clone(), c)).collect(),
            changed: 0,
            settings,
        };
        (planner, release)
    }

    /// What to do with one object a step of `budget` reaches.
    pub fn decide(
        &mut self,
        budget: &Budget,
        rule: &ActionRule,
        step: u32,
        (object, verdict): Target,
        execute: bool,
    ) -> Vec<Intent> {
        let mut intents = Vec::new();
        // The store may have lost what the object still records: the object wins, or the next
        // change would record costcast's own values as the originals.
        if !self.held.contains_key(&object.target) {
            match changes::recorded(&object) {
                Some(Ok(found)) => {
                    self.held.insert(object.target.clone(), found.clone());
                    intents.push(Intent::Record(ActionRecord {
                        operation: Operation::Apply,
                        change: found,
                        outcome: if execute {
                            Outcome::Done
                        } else {
                            Outcome::Planned
                        },
                        detail:
                            "held again from the record on the object (the store did not have it)"
                                .into(),
                    }));
                }
                Some(Err(why)) => {
                    intents.push(Intent::Record(skipped(budget, step, &object, why)));
                    return intents;
                }
                None => {}
            }
        }
        let change = match next_change(budget, rule, step, &object, verdict, &self.held) {
            Ok(Some(change)) => change,
            Ok(None) => return intents,
            Err(why) => {
                intents.push(Intent::Record(skipped(budget, step, &object, why)));
                return intents;
            }
        };
        let limit = self.settings.max_changes_per_run;
        if self.changed >= limit {
            intents.push(Intent::Record(ActionRecord {
                operation: Operation::Apply,
                change,
                outcome: Outcome::Skipped,
                detail: format!(
                    "change limit of {limit} objects per run reached; the next run continues"
                ),
            }));
            return intents;
        }
        self.changed += 1;
        intents.push(Intent::Apply {
            object,
            change,
            execute,
        });
        intents
    }

    /// Takes note of what was done, so a later step sees a change that was made.
    pub fn note(&mut self, record: &ActionRecord) {
        if record.operation == Operation::Apply && record.outcome == Outcome::Done {
            self.held
                .insert(record.change.target.clone(), record.change.clone());
        }
    }
}

/// What a step still has to change on `obj`: `Ok(None)` when nothing, `Err` when the object
/// must be left alone (and why).
fn next_change(
    budget: &Budget,
    rule: &ActionRule,
    step: u32,
    obj: &Object,
    fields_or_skip: Result<Vec<FieldChange>, String>,
    held: &BTreeMap<ObjectRef, ObjectChange>,
) -> Result<Option<ObjectChange>, String> {
    let fields = fields_or_skip?;
    match held.get(&obj.target) {
        Some(h) if h.budget != budget.name => {
            Err(format!("already changed by budget {}", h.budget))
        }
        Some(h) => {
            // A person changed what costcast set: going further would overwrite them.
            let drift = changes::drift(h, obj);
            if !drift.is_empty() {
                return Err(format!(
                    "changed since costcast changed it ({}); left as it is",
                    drift.join(", ")
                ));
            }
            // Held by this budget: a step is measured against the values before costcast, so
            // a re-run never halves a halved cap again; only a later step that goes further
            // changes the object.
            let new: Vec<_> = changes::fields_for(&rule.kind, &changes::as_original(obj, h))
                .into_iter()
                .filter(|f| {
                    h.fields
                        .iter()
                        .find(|x| x.field == f.field)
                        .is_none_or(|x| lower_than(&f.set, &x.set))
                })
                .collect();
            Ok((!new.is_empty()).then(|| changes::merge(h.clone(), step, new)))
        }
        None if fields.is_empty() => Ok(None),
        None => Ok(Some(ObjectChange {
            budget: budget.name.clone(),
            step,
            target: obj.target.clone(),
            fields,
        })),
    }
}

/// Whether `new` goes further than `held` (a lower count, or a suspend where there was none).
fn lower_than(new: &Value, held: &Value) -> bool {
    match (new.as_i64(), held.as_i64()) {
        (Some(n), Some(h)) => n < h,
        _ => new != held,
    }
}

fn skipped(budget: &Budget, step: u32, obj: &Object, why: String) -> ActionRecord {
    ActionRecord {
        operation: Operation::Apply,
        change: ObjectChange {
            budget: budget.name.clone(),
            step,
            target: obj.target.clone(),
            fields: Vec::new(),
        },
        outcome: Outcome::Skipped,
        detail: why,
    }
}

/// How a held object goes back.
#[derive(Debug)]
pub enum Restore {
    /// The object no longer exists: nothing to put back.
    Gone(ObjectChange),
    /// Someone changed it since costcast did: leave it, only take costcast's record off.
    Conflict {
        /// The object as it is now.
        object: Object,
        /// The change as recorded.
        change: ObjectChange,
        /// The drift and the original values, for people.
        detail: String,
    },
    /// Put the original values back.
    Put {
        /// The object as it is now.
        object: Object,
        /// The change as recorded.
        change: ObjectChange,
        /// Each field and the value it gets.
        back: Vec<(String, Value)>,
        /// Anything set beyond the originals, and why.
        detail: String,
    },
}

/// How `stored` goes back on `obj` as it is now. The record on the object wins over the
/// store's: it travels with the object.
pub fn restore(
    stored: ObjectChange,
    obj: Option<Object>,
    settings: &ActSettings,
    now: DateTime<Utc>,
) -> Restore {
    let Some(object) = obj else {
        return Restore::Gone(stored);
    };
    let change = changes::recorded(&object)
        .and_then(Result::ok)
        .filter(|c| c.budget == stored.budget)
        .unwrap_or(stored);
    let drift = changes::drift(&change, &object);
    if !drift.is_empty() {
        let originals = change
            .fields
            .iter()
            .map(|f| format!("{} = {}", f.field, f.original))
            .collect::<Vec<_>>()
            .join(", ");
        let detail = format!(
            "changed since costcast changed it ({}); left as it is. Original values: {originals}",
            drift.join(", "),
        );
        return Restore::Conflict {
            object,
            change,
            detail,
        };
    }
    let mut back: Vec<(String, Value)> = change
        .fields
        .iter()
        .map(|f| (f.field.clone(), f.original.clone()))
        .collect();
    let mut detail = String::new();
    let unsuspends = change.fields.iter().any(|f| f.field == "spec.suspend");
    if unsuspends && changes::needs_starting_deadline(&object, now) {
        back.push((
            "spec.startingDeadlineSeconds".into(),
            json!(settings.cronjob_starting_deadline_secs),
        ));
        detail = format!(
            "set spec.startingDeadlineSeconds = {} so the CronJob starts again after missing over {} schedules",
            settings.cronjob_starting_deadline_secs,
            changes::CRONJOB_MISSED_LIMIT
        );
    }
    Restore::Put {
        object,
        change,
        back,
        detail,
    }
}

#[cfg(test)]
mod tests;
