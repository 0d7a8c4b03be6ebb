//! Acting on budgets: each budget's ladder steps in effect are made true on the cluster, and
//! the changes of a budget with none in effect are put back. Every change is recorded on the
//! object (annotation `costcast.io/original`) before it is made, and restore works from that
//! record. Observe mode and `--dry-run` walk the same path and stop before the final call.

pub mod changes;
pub mod kubernetes;
pub mod slack;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::config::ActSettings;
use crate::domain::{
    ActionKind, ActionRecord, ActionRule, Budget, BudgetMode, FieldChange, ObjectChange,
    ObjectKind, ObjectRef, Operation, Outcome, PlannedChange,
};
use changes::{ORIGINAL_ANNOTATION, THROTTLED_LABEL};
pub use kubernetes::{Cluster, KubeError, Object};

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
}

/// The ladder steps in effect as readable plans, one per step.
pub fn plan(budget: &Budget, steps: u32) -> Vec<PlannedChange> {
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
                crate::domain::CapLimit::Factor(f) => format!("{:.0}% of their value", f * 100.0),
                crate::domain::CapLimit::Replicas(n) => format!("at most {n}"),
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

/// Makes the cluster match every budget's steps: applies what is missing, restores what a
/// budget no longer calls for (including budgets no longer configured).
pub async fn reconcile(cluster: &Cluster, run: &ActRun<'_>) -> Vec<ActionRecord> {
    let mut records = Vec::new();
    let configured: BTreeSet<&str> = run.budgets.iter().map(|(b, _)| b.name.as_str()).collect();
    let mut held: BTreeMap<ObjectRef, ObjectChange> = run
        .held
        .iter()
        .map(|c| (c.target.clone(), c.clone()))
        .collect();

    // Restore first: it frees objects a budget still acting may want. An object goes back
    // when its budget is gone or no longer has the step that changed it in effect (recovery,
    // or a new period starting from the bottom of the ladder).
    let releasing: Vec<ObjectChange> = run
        .held
        .iter()
        .filter(|c| {
            !configured.contains(c.budget.as_str())
                || run
                    .budgets
                    .iter()
                    .any(|(b, steps)| b.name == c.budget && c.step > *steps)
        })
        .cloned()
        .collect();
    for change in releasing {
        held.remove(&change.target);
        let record = restore_one(cluster, change, !run.dry_run, run.settings, run.now).await;
        records.push(record);
    }

    let mut changed = 0;
    for (budget, steps) in &run.budgets {
        let execute = budget.mode == BudgetMode::Enforce && !run.dry_run;
        for (i, rule) in budget.actions.iter().enumerate().take(*steps as usize) {
            let step = i as u32 + 1;
            for (obj, fields_or_skip) in
                targets(cluster, rule, run.settings, &mut records, budget, step).await
            {
                // The store may have lost what the object still records: the object wins, or
                // the next change would record costcast's own values as the originals.
                if !held.contains_key(&obj.target) {
                    match changes::recorded(&obj) {
                        Some(Ok(found)) => {
                            held.insert(obj.target.clone(), found.clone());
                            records.push(ActionRecord {
                                operation: Operation::Apply,
                                change: found,
                                outcome: if execute { Outcome::Done } else { Outcome::Planned },
                                detail: "held again from the record on the object (the store did not have it)".into(),
                            });
                        }
                        Some(Err(why)) => {
                            records.push(skipped(budget, step, &obj, why));
                            continue;
                        }
                        None => {}
                    }
                }
                let change = match next_change(budget, rule, step, &obj, fields_or_skip, &held) {
                    Ok(Some(change)) => change,
                    Ok(None) => continue,
                    Err(why) => {
                        records.push(skipped(budget, step, &obj, why));
                        continue;
                    }
                };
                if changed >= run.settings.max_changes_per_run {
                    records.push(ActionRecord {
                        operation: Operation::Apply,
                        change,
                        outcome: Outcome::Skipped,
                        detail: format!(
                            "change limit of {} objects per run reached; the next run continues",
                            run.settings.max_changes_per_run
                        ),
                    });
                    continue;
                }
                changed += 1;
                let record = apply_one(cluster, &obj, change, execute).await;
                if record.outcome == Outcome::Done {
                    held.insert(obj.target.clone(), record.change.clone());
                }
                records.push(record);
            }
        }
    }
    records
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

type Target = (Object, Result<Vec<FieldChange>, String>);

/// The objects a step reaches, each with the fields to change or why it is left alone.
/// A namespace that cannot be listed becomes a failed record, not a failed run.
async fn targets(
    cluster: &Cluster,
    rule: &ActionRule,
    settings: &ActSettings,
    records: &mut Vec<ActionRecord>,
    budget: &Budget,
    step: u32,
) -> Vec<Target> {
    let kinds: &[ObjectKind] = match rule.kind {
        ActionKind::Alert => return Vec::new(),
        ActionKind::LowerAutoscalerCaps { .. } => &[
            ObjectKind::HorizontalPodAutoscaler,
            ObjectKind::ScaledObject,
        ],
        ActionKind::SuspendCronJobs { .. } => &[ObjectKind::CronJob],
        ActionKind::ScaleDown { .. } => &[ObjectKind::Deployment, ObjectKind::StatefulSet],
    };
    let mut out = Vec::new();
    for ns in &rule.namespaces {
        let whole_namespace = |outcome, detail| ActionRecord {
            operation: Operation::Apply,
            change: ObjectChange {
                budget: budget.name.clone(),
                step,
                target: ObjectRef {
                    kind: kinds[0],
                    namespace: ns.clone(),
                    name: "*".into(),
                },
                fields: Vec::new(),
            },
            outcome,
            detail,
        };
        if settings.protected_namespaces.contains(ns) {
            records.push(whole_namespace(
                Outcome::Skipped,
                format!("namespace {ns} is protected"),
            ));
            continue;
        }
        let listed = list_step(cluster, rule, kinds, ns).await;
        let (objects, autoscalers) = match listed {
            Ok(v) => v,
            Err(e) => {
                records.push(whole_namespace(Outcome::Failed, e.to_string()));
                continue;
            }
        };
        for obj in objects {
            if let Some(why) = changes::guard(&obj, &settings.protected_namespaces) {
                out.push((obj, Err(why)));
                continue;
            }
            match (&rule.kind, obj.target.kind) {
                (ActionKind::LowerAutoscalerCaps { .. }, ObjectKind::HorizontalPodAutoscaler) => {
                    if let Some(so) = changes::keda_owner(&obj) {
                        let why = format!(
                            "generated by KEDA ScaledObject {so}, which reverts it; its ScaledObject is capped instead"
                        );
                        out.push((obj, Err(why)));
                        continue;
                    }
                }
                (
                    ActionKind::ScaleDown { .. },
                    ObjectKind::Deployment | ObjectKind::StatefulSet,
                ) => {
                    // An autoscaler would scale the workload straight back: cap it instead.
                    let manager = autoscalers.iter().find(|a| {
                        changes::scale_target(a).is_some_and(|(kind, name)| {
                            kind == obj.target.kind.as_str() && name == obj.target.name
                        }) && changes::keda_owner(a).is_none()
                    });
                    if let Some(a) = manager {
                        let a = a.clone();
                        let verdict = match changes::guard(&a, &settings.protected_namespaces) {
                            Some(why) => Err(why),
                            None => Ok(changes::fields_for(&rule.kind, &a)),
                        };
                        out.push((a, verdict));
                        continue;
                    }
                }
                _ => {}
            }
            let fields = changes::fields_for(&rule.kind, &obj);
            out.push((obj, Ok(fields)));
        }
    }
    // Two workloads sharing one autoscaler would otherwise change it twice.
    let mut seen = BTreeSet::new();
    out.retain(|(o, _)| seen.insert(o.target.clone()));
    out
}

/// Lists a step's objects in one namespace, and for `scale-down` the autoscalers that may
/// manage them; for `suspend-cronjobs` with `suspend_jobs`, the running Jobs of the CronJobs.
async fn list_step(
    cluster: &Cluster,
    rule: &ActionRule,
    kinds: &[ObjectKind],
    ns: &str,
) -> Result<(Vec<Object>, Vec<Object>), KubeError> {
    let mut objects = Vec::new();
    for kind in kinds {
        objects.extend(cluster.list(*kind, ns, &rule.selector).await?);
    }
    let mut autoscalers = Vec::new();
    match rule.kind {
        ActionKind::ScaleDown { .. } if !objects.is_empty() => {
            // ScaledObjects first: KEDA's own HPA is skipped, its ScaledObject capped.
            autoscalers.extend(cluster.list(ObjectKind::ScaledObject, ns, "").await?);
            autoscalers.extend(
                cluster
                    .list(ObjectKind::HorizontalPodAutoscaler, ns, "")
                    .await?,
            );
        }
        ActionKind::SuspendCronJobs { suspend_jobs: true } if !objects.is_empty() => {
            let crons: BTreeSet<String> = objects.iter().map(|o| o.target.name.clone()).collect();
            let jobs = cluster.list(ObjectKind::Job, ns, "").await?;
            objects.extend(jobs.into_iter().filter(|j| {
                let running = j.field("status.active").as_i64().unwrap_or(0) > 0;
                running
                    && j.owners
                        .iter()
                        .any(|(kind, name)| kind == "CronJob" && crons.contains(name))
            }));
        }
        _ => {}
    }
    Ok((objects, autoscalers))
}

fn markers(change: Option<&ObjectChange>, resource_version: Option<&str>) -> Value {
    let (label, annotation) = match change {
        Some(c) => (
            json!("true"),
            json!(serde_json::to_string(c).expect("an ObjectChange serialises")),
        ),
        None => (Value::Null, Value::Null),
    };
    let mut meta = json!({
        "labels": {THROTTLED_LABEL: label},
        "annotations": {ORIGINAL_ANNOTATION: annotation},
    });
    if let Some(rv) = resource_version {
        meta["resourceVersion"] = json!(rv);
    }
    json!({ "metadata": meta })
}

fn with_fields(mut patch: Value, fields: &[(&str, Value)]) -> Value {
    let spec = kubernetes::merge_patch(fields);
    if let (Some(p), Some(s)) = (patch.as_object_mut(), spec.as_object()) {
        for (k, v) in s {
            p.insert(k.clone(), v.clone());
        }
    }
    patch
}

fn failed(operation: Operation, change: ObjectChange, e: &KubeError) -> ActionRecord {
    let detail = match e.code() {
        Some(409) => {
            format!("{e} (the object changed while costcast patched it; the next run retries)")
        }
        Some(403) => {
            format!(
                "{e} (costcast's service account may not do this: see deploy/kubernetes/rbac.yaml)"
            )
        }
        _ => e.to_string(),
    };
    ActionRecord {
        operation,
        change,
        outcome: Outcome::Failed,
        detail,
    }
}

/// Records the change on the object and makes it, in one patch where the API allows; a
/// replica count goes through the `scale` subresource after the record is on the object.
async fn apply_one(
    cluster: &Cluster,
    obj: &Object,
    change: ObjectChange,
    execute: bool,
) -> ActionRecord {
    if !execute {
        return ActionRecord {
            operation: Operation::Apply,
            change,
            outcome: Outcome::Planned,
            detail: String::new(),
        };
    }
    let target = &obj.target;
    let set: Vec<(&str, Value)> = change
        .fields
        .iter()
        .map(|f| (f.field.as_str(), f.set.clone()))
        .collect();
    let rv = obj.resource_version.as_deref();
    let result = if target.kind.scales() {
        match cluster.patch(target, &markers(Some(&change), rv)).await {
            Ok(()) => match set.iter().find(|(f, _)| *f == "spec.replicas") {
                Some((_, replicas)) => match cluster.scale(target, replicas).await {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        // Take the record back off: nothing was changed after all.
                        if let Err(undo) = cluster.patch(target, &markers(None, None)).await {
                            tracing::error!(object = %target, error = %undo, "Could not remove costcast's annotation after a failed scale.");
                        }
                        Err(e)
                    }
                },
                None => Ok(()),
            },
            Err(e) => Err(e),
        }
    } else {
        cluster
            .patch(target, &with_fields(markers(Some(&change), rv), &set))
            .await
    };
    match result {
        Ok(()) => {
            tracing::info!(object = %target, budget = %change.budget, step = change.step, fields = %change.describe_fields(), "Changed an object.");
            ActionRecord {
                operation: Operation::Apply,
                change,
                outcome: Outcome::Done,
                detail: String::new(),
            }
        }
        Err(e) => failed(Operation::Apply, change, &e),
    }
}

/// Puts one object back as the record says, unless someone changed it since costcast did.
/// The record on the object wins over the store's: it travels with the object.
pub async fn restore_one(
    cluster: &Cluster,
    stored: ObjectChange,
    execute: bool,
    settings: &ActSettings,
    now: DateTime<Utc>,
) -> ActionRecord {
    let record = |change: ObjectChange, outcome, detail: String| ActionRecord {
        operation: Operation::Restore,
        change,
        outcome,
        detail,
    };
    let obj = match cluster.get(&stored.target).await {
        Ok(Some(obj)) => obj,
        Ok(None) => {
            return record(stored, Outcome::Done, "the object no longer exists".into());
        }
        Err(e) => return failed(Operation::Restore, stored, &e),
    };
    let change = changes::recorded(&obj)
        .and_then(Result::ok)
        .filter(|c| c.budget == stored.budget)
        .unwrap_or(stored);
    let drift = changes::drift(&change, &obj);
    let rv = obj.resource_version.as_deref();
    if !drift.is_empty() {
        let detail = format!(
            "changed since costcast changed it ({}); left as it is. Original values: {}",
            drift.join(", "),
            change
                .fields
                .iter()
                .map(|f| format!("{} = {}", f.field, f.original))
                .collect::<Vec<_>>()
                .join(", ")
        );
        if execute && let Err(e) = cluster.patch(&obj.target, &markers(None, rv)).await {
            return failed(Operation::Restore, change, &e);
        }
        return record(change, Outcome::Conflict, detail);
    }
    let mut back: Vec<(&str, Value)> = change
        .fields
        .iter()
        .map(|f| (f.field.as_str(), f.original.clone()))
        .collect();
    let mut detail = String::new();
    let unsuspends = change.fields.iter().any(|f| f.field == "spec.suspend");
    if unsuspends && changes::needs_starting_deadline(&obj, now) {
        back.push((
            "spec.startingDeadlineSeconds",
            json!(settings.cronjob_starting_deadline_secs),
        ));
        detail = format!(
            "set spec.startingDeadlineSeconds = {} so the CronJob starts again after missing over {} schedules",
            settings.cronjob_starting_deadline_secs,
            changes::CRONJOB_MISSED_LIMIT
        );
    }
    if !execute {
        return record(change, Outcome::Planned, detail);
    }
    let result = if obj.target.kind.scales() {
        let replicas = back
            .iter()
            .find(|(f, _)| *f == "spec.replicas")
            // An unset replica count means the default of one.
            .map(|(_, v)| if v.is_null() { json!(1) } else { v.clone() });
        match replicas {
            Some(r) => match cluster.scale(&obj.target, &r).await {
                Ok(()) => cluster.patch(&obj.target, &markers(None, None)).await,
                Err(e) => Err(e),
            },
            None => cluster.patch(&obj.target, &markers(None, rv)).await,
        }
    } else {
        cluster
            .patch(&obj.target, &with_fields(markers(None, rv), &back))
            .await
    };
    match result {
        Ok(()) => {
            tracing::info!(object = %obj.target, budget = %change.budget, "Restored an object.");
            record(change, Outcome::Done, detail)
        }
        Err(e) => failed(Operation::Restore, change, &e),
    }
}

/// The changes to restore for `budget` (or all): the store's records, plus objects that carry
/// costcast's label in the namespaces budgets act in, so restore works with the store lost.
/// A labelled object whose record does not parse comes back as a failed restore naming it.
pub async fn find_held(
    cluster: &Cluster,
    budgets: &[Budget],
    stored: Vec<ObjectChange>,
    budget: Option<&str>,
) -> Result<(Vec<ObjectChange>, Vec<ActionRecord>), KubeError> {
    let mut unreadable = Vec::new();
    let mut found: BTreeMap<ObjectRef, ObjectChange> = stored
        .into_iter()
        .filter(|c| budget.is_none_or(|b| c.budget == b))
        .map(|c| (c.target.clone(), c))
        .collect();
    let namespaces: BTreeSet<&str> = budgets
        .iter()
        .flat_map(|b| b.actions.iter())
        .flat_map(|r| r.namespaces.iter().map(String::as_str))
        .collect();
    let selector = format!("{THROTTLED_LABEL}=true");
    for ns in namespaces {
        for kind in ObjectKind::ALL {
            for obj in cluster.list(kind, ns, &selector).await? {
                match changes::recorded(&obj) {
                    Some(Ok(c)) if budget.is_none_or(|b| c.budget == b) => {
                        found.entry(obj.target.clone()).or_insert(c);
                    }
                    Some(Err(why)) if !found.contains_key(&obj.target) => {
                        unreadable.push(ActionRecord {
                            operation: Operation::Restore,
                            change: ObjectChange {
                                budget: budget.unwrap_or("").to_string(),
                                step: 0,
                                target: obj.target.clone(),
                                fields: Vec::new(),
                            },
                            outcome: Outcome::Failed,
                            detail: why,
                        });
                    }
                    _ => {}
                }
            }
        }
    }
    Ok((found.into_values().collect(), unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money, Period, Scope, Thresholds};

    fn hpa(max: i64, min: i64) -> Object {
        Object {
            target: ObjectRef {
                kind: ObjectKind::HorizontalPodAutoscaler,
                namespace: "ml".into(),
                name: "api".into(),
            },
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            owners: vec![],
            resource_version: None,
            created: None,
            data: json!({"spec": {"maxReplicas": max, "minReplicas": min}}),
        }
    }

    fn caps_budget() -> Budget {
        Budget {
            name: "ml".into(),
            amount: Money::new(100.0, Currency::usd()),
            scope: Scope::all(),
            period: Period::Monthly,
            mode: BudgetMode::Enforce,
            thresholds: Thresholds::default(),
            plan: None,
            actions: vec![],
        }
    }

    #[test]
    fn a_held_object_is_measured_against_its_original_and_a_persons_edit_is_left_alone() {
        let rule = |limit| ActionRule {
            kind: ActionKind::LowerAutoscalerCaps { limit },
            namespaces: vec!["ml".into()],
            selector: String::new(),
        };
        let half = rule(crate::domain::CapLimit::Factor(0.5));
        let held_change = ObjectChange {
            budget: "ml".into(),
            step: 2,
            target: hpa(5, 2).target,
            fields: vec![FieldChange {
                field: "spec.maxReplicas".into(),
                original: json!(10),
                set: json!(5),
            }],
        };
        let held = BTreeMap::from([(held_change.target.clone(), held_change.clone())]);
        let b = caps_budget();
        let next = |obj: &Object, r: &ActionRule, step| {
            let fields = Ok(changes::fields_for(&r.kind, obj));
            next_change(&b, r, step, obj, fields, &held)
        };
        // The same step again: 10 halved is still 5, nothing to do.
        assert_eq!(next(&hpa(5, 2), &half, 2), Ok(None));
        // A later step that goes further: lowered from the original's point of view.
        let three = rule(crate::domain::CapLimit::Replicas(3));
        let merged = next(&hpa(5, 2), &three, 3).unwrap().unwrap();
        assert_eq!(merged.fields[0].original, json!(10));
        assert_eq!(merged.fields[0].set, json!(3));
        // Someone raised the cap to 8 since: costcast does not go further over their edit.
        let why = next(&hpa(8, 2), &three, 3).unwrap_err();
        assert!(
            why.contains("spec.maxReplicas is 8 (costcast set 5)"),
            "{why}"
        );
    }

    #[test]
    fn the_plan_lists_only_the_steps_in_effect() {
        let rule = |kind| ActionRule {
            kind,
            namespaces: vec!["ml".into()],
            selector: "costcast.io/tier=batch".into(),
        };
        let budget = Budget {
            name: "ml".into(),
            amount: Money::new(100.0, Currency::usd()),
            scope: Scope::all(),
            period: Period::Monthly,
            mode: BudgetMode::Observe,
            thresholds: Thresholds::default(),
            plan: None,
            actions: vec![
                rule(ActionKind::Alert),
                rule(ActionKind::LowerAutoscalerCaps {
                    limit: crate::domain::CapLimit::Factor(0.5),
                }),
                rule(ActionKind::SuspendCronJobs {
                    suspend_jobs: false,
                }),
            ],
        };
        assert!(plan(&budget, 0).is_empty());
        let two = plan(&budget, 2);
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].step, 2);
        assert!(two[1].description.contains("50%"), "{}", two[1].description);
        assert!(two[1].description.contains("costcast.io/tier=batch"));
    }
}
