//! Carrying decisions out on the cluster: listing what a step reaches, applying a change with
//! its record on the object, and putting a held object back. What to do is decided in
//! `plan.rs`; nothing here decides it.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::changes::{self, ORIGINAL_ANNOTATION, THROTTLED_LABEL};
use super::kubernetes::{self, Cluster, KubeError, Object};
use super::plan::{Listing, Restore};
use crate::domain::{
    ActionKind, ActionRecord, ActionRule, Budget, ObjectChange, ObjectKind, ObjectRef, Operation,
    Outcome,
};

/// Lists a step's objects in one namespace, and for `scale-down` the autoscalers that may
/// manage them; for `suspend-cronjobs` with `suspend_jobs`, the running Jobs of the CronJobs.
pub async fn list_step(
    cluster: &Cluster,
    rule: &ActionRule,
    kinds: &[ObjectKind],
    ns: &str,
) -> Result<Listing, KubeError> {
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
    Ok(Listing {
        objects,
        autoscalers,
    })
}

/// The metadata part of a patch: costcast's label and record set to `change`, or removed.
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

/// A failed call as a record, with a hint for the errors people can fix.
pub fn failed(operation: Operation, change: ObjectChange, e: &KubeError) -> ActionRecord {
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

/// Whether a failed call may have been carried out all the same: the connection was lost or
/// timed out, or the server (or a proxy in front of it) failed after accepting the request.
/// Refusals (conflict, forbidden, invalid) certainly changed nothing.
fn answer_lost(e: &KubeError) -> bool {
    e.code().is_none_or(|code| code >= 500)
}

/// What reading an object back after a lost answer showed.
enum ReadBack {
    /// Every field `change` sets holds the value it sets.
    Applied,
    /// Not every field does, or the object is gone.
    NotApplied,
    /// It could not be read either.
    Unknown(KubeError),
}

/// Reads `change`'s object back to learn whether a call whose answer was lost went through.
async fn read_back(cluster: &Cluster, change: &ObjectChange) -> ReadBack {
    match cluster.get(&change.target).await {
        Ok(Some(obj)) if change.fields.iter().all(|f| obj.field(&f.field) == f.set) => {
            ReadBack::Applied
        }
        Ok(_) => ReadBack::NotApplied,
        Err(e) => ReadBack::Unknown(e),
    }
}

/// Records the change on the object and makes it, in one patch where the API allows; a
/// replica count goes through the `scale` subresource after the record is on the object.
///
/// When the answer to the change is lost (a timeout, a dropped connection, a 5xx), the object
/// is read back: a change that went through is done, with its record on the object; one that
/// did not is failed. When it cannot be read back either, the record stays on the object, so
/// restore finds it by its label whatever the store says.
pub async fn apply(
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
        apply_scaled(cluster, target, &change, &set, rv).await
    } else {
        match cluster
            .patch(target, &with_fields(markers(Some(&change), rv), &set))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) => Err(settle(cluster, &change, e).await),
        }
    };
    let done = |change: ObjectChange, detail: String| {
        tracing::info!(object = %target, budget = %change.budget, step = change.step, fields = %change.describe_fields(), "Changed an object.");
        ActionRecord {
            operation: Operation::Apply,
            change,
            outcome: Outcome::Done,
            detail,
        }
    };
    match result {
        Ok(()) => done(change, String::new()),
        Err(Applied::Lost(e)) => done(
            change,
            format!("the answer was lost ({e}); read back, the change is on the object"),
        ),
        Err(Applied::Not(e)) => failed(Operation::Apply, change, &e),
        Err(Applied::Unknown { lost, read }) => {
            let mut record = failed(Operation::Apply, change, &lost);
            record.detail.push_str(&format!(
                "; the object could not be read back ({read}): its record stays on it, and restore finds it by its label"
            ));
            record
        }
    }
}

/// Why a change did not plainly succeed.
enum Applied {
    /// Its answer was lost, but reading the object back showed it went through.
    Lost(KubeError),
    /// It did not go through.
    Not(KubeError),
    /// Its answer was lost and the object could not be read back.
    Unknown {
        /// The lost call's error.
        lost: KubeError,
        /// The read's error.
        read: KubeError,
    },
}

/// Settles a failed call of `change` by reading the object back when its answer was lost.
async fn settle(cluster: &Cluster, change: &ObjectChange, e: KubeError) -> Applied {
    if !answer_lost(&e) {
        return Applied::Not(e);
    }
    match read_back(cluster, change).await {
        ReadBack::Applied => Applied::Lost(e),
        ReadBack::NotApplied => Applied::Not(e),
        ReadBack::Unknown(read) => Applied::Unknown { lost: e, read },
    }
}

/// The record first, then the replica count through the `scale` subresource.
async fn apply_scaled(
    cluster: &Cluster,
    target: &ObjectRef,
    change: &ObjectChange,
    set: &[(&str, Value)],
    rv: Option<&str>,
) -> Result<(), Applied> {
    // A record whose answer was lost changed nothing yet: the scale is not tried, and a
    // record left on the object restores values it already has.
    cluster
        .patch(target, &markers(Some(change), rv))
        .await
        .map_err(Applied::Not)?;
    let Some((_, replicas)) = set.iter().find(|(f, _)| *f == "spec.replicas") else {
        return Ok(());
    };
    let Err(e) = cluster.scale(target, replicas).await else {
        return Ok(());
    };
    let settled = settle(cluster, change, e).await;
    if let Applied::Not(_) = settled {
        // Take the record back off: nothing was changed after all.
        if let Err(undo) = cluster.patch(target, &markers(None, None)).await {
            tracing::error!(object = %target, error = %undo, "Could not remove costcast's annotation after a failed scale.");
        }
    }
    Err(settled)
}

/// Carries out a restore, or only plans it unless `execute`.
pub async fn restore(cluster: &Cluster, decided: Restore, execute: bool) -> ActionRecord {
    let record = |change: ObjectChange, outcome, detail: String| ActionRecord {
        operation: Operation::Restore,
        change,
        outcome,
        detail,
    };
    let (obj, change, back, detail) = match decided {
        Restore::Gone(change) => {
            return record(change, Outcome::Done, "the object no longer exists".into());
        }
        Restore::Conflict {
            object,
            change,
            detail,
        } => {
            let rv = object.resource_version.as_deref();
            if execute && let Err(e) = cluster.patch(&object.target, &markers(None, rv)).await {
                return failed(Operation::Restore, change, &e);
            }
            return record(change, Outcome::Conflict, detail);
        }
        Restore::Put {
            object,
            change,
            back,
            detail,
        } => (object, change, back, detail),
    };
    if !execute {
        return record(change, Outcome::Planned, detail);
    }
    let back: Vec<(&str, Value)> = back.iter().map(|(f, v)| (f.as_str(), v.clone())).collect();
    let rv = obj.resource_version.as_deref();
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
