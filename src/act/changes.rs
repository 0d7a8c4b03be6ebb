//! Pure decisions about one object: whether costcast may touch it, which fields a ladder step
//! changes on it, the record kept in its annotation, and whether someone changed it since.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::kubernetes::Object;
use crate::domain::{ActionKind, FieldChange, ObjectChange, ObjectKind};

/// The annotation that holds what costcast changed and the values before (JSON).
pub const ORIGINAL_ANNOTATION: &str = "costcast.io/original";
/// The label on every object costcast holds changed, so restore finds them without the store.
pub const THROTTLED_LABEL: &str = "costcast.io/throttled";
/// The label whose value `critical` puts an object out of reach.
pub const TIER_LABEL: &str = "costcast.io/tier";
/// The label KEDA puts on the HPA it generates for a ScaledObject.
pub const KEDA_HPA_LABEL: &str = "scaledobject.keda.sh/name";

/// Missed schedules after which the CronJob controller will not start a job on its own.
pub const CRONJOB_MISSED_LIMIT: usize = 100;

/// Why `obj` must be left alone whatever the step says, or `None` when it may be changed.
pub fn guard(obj: &Object, protected: &[String]) -> Option<String> {
    if protected.contains(&obj.target.namespace) {
        return Some(format!("namespace {} is protected", obj.target.namespace));
    }
    if obj.labels.get(TIER_LABEL).map(String::as_str) == Some("critical") {
        return Some(format!("labelled {TIER_LABEL}=critical"));
    }
    None
}

/// The name of the ScaledObject that generated this HPA, if KEDA made it.
pub fn keda_owner(hpa: &Object) -> Option<String> {
    hpa.labels.get(KEDA_HPA_LABEL).cloned().or_else(|| {
        hpa.owners
            .iter()
            .find(|(kind, _)| kind == "ScaledObject")
            .map(|(_, name)| name.clone())
    })
}

/// The workload an HPA or ScaledObject scales, as (kind, name).
pub fn scale_target(autoscaler: &Object) -> Option<(String, String)> {
    let name = autoscaler
        .field("spec.scaleTargetRef.name")
        .as_str()?
        .to_string();
    let kind = autoscaler
        .field("spec.scaleTargetRef.kind")
        .as_str()
        // KEDA defaults the kind to Deployment.
        .unwrap_or("Deployment")
        .to_string();
    Some((kind, name))
}

fn int(v: &Value, default: i64) -> i64 {
    v.as_i64().unwrap_or(default)
}

/// A field change when the value moves, nothing when it already is where the step wants it.
fn lower(obj: &Object, field: &str, default: i64, to: i64) -> Option<FieldChange> {
    let original = obj.field(field);
    let current = int(&original, default);
    (to < current).then(|| FieldChange {
        field: field.to_string(),
        original,
        set: json!(to),
    })
}

/// Caps an autoscaler's maximum at `max`, lowering its minimum too when it would be above.
fn cap(obj: &Object, max: i64, min_floor: i64) -> Vec<FieldChange> {
    let (max_field, max_default, min_field, min_default) = match obj.target.kind {
        ObjectKind::ScaledObject => ("spec.maxReplicaCount", 100, "spec.minReplicaCount", 0),
        _ => ("spec.maxReplicas", 1, "spec.minReplicas", 1),
    };
    let max = max.max(min_floor.max(1));
    [
        lower(obj, max_field, max_default, max),
        lower(obj, min_field, min_default, max),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The fields `action` changes on `obj`; empty when it asks for nothing new.
///
/// An autoscaler reached by `scale-down` (because it manages the workload) is capped at the
/// step's replica count instead: HPAs cannot go below one replica, ScaledObjects can idle at 0.
pub fn fields_for(action: &ActionKind, obj: &Object) -> Vec<FieldChange> {
    let kind = obj.target.kind;
    match (action, kind) {
        (ActionKind::LowerAutoscalerCaps { limit }, ObjectKind::HorizontalPodAutoscaler) => {
            cap(obj, limit.apply(int(&obj.field("spec.maxReplicas"), 1)), 1)
        }
        (ActionKind::LowerAutoscalerCaps { limit }, ObjectKind::ScaledObject) => cap(
            obj,
            limit.apply(int(&obj.field("spec.maxReplicaCount"), 100)),
            1,
        ),
        (ActionKind::SuspendCronJobs { .. }, ObjectKind::CronJob | ObjectKind::Job) => {
            let original = obj.field("spec.suspend");
            if original.as_bool() == Some(true) {
                Vec::new()
            } else {
                vec![FieldChange {
                    field: "spec.suspend".into(),
                    original,
                    set: json!(true),
                }]
            }
        }
        (ActionKind::ScaleDown { replicas }, ObjectKind::Deployment | ObjectKind::StatefulSet) => {
            lower(obj, "spec.replicas", 1, *replicas as i64)
                .into_iter()
                .collect()
        }
        (ActionKind::ScaleDown { replicas }, ObjectKind::HorizontalPodAutoscaler) => {
            cap(obj, *replicas as i64, 1)
        }
        (ActionKind::ScaleDown { replicas }, ObjectKind::ScaledObject) => {
            let max = (*replicas as i64).max(1);
            [
                lower(obj, "spec.maxReplicaCount", 100, max),
                lower(obj, "spec.minReplicaCount", 0, *replicas as i64),
            ]
            .into_iter()
            .flatten()
            .collect()
        }
        _ => Vec::new(),
    }
}

/// The change recorded in the object's annotation, if it carries one; an error names why the
/// annotation does not parse.
pub fn recorded(obj: &Object) -> Option<Result<ObjectChange, String>> {
    let text = obj.annotations.get(ORIGINAL_ANNOTATION)?;
    Some(serde_json::from_str(text).map_err(|e| {
        format!("its {ORIGINAL_ANNOTATION} annotation does not parse ({e}); restore it by hand")
    }))
}

/// `obj` as it was before `held` changed it: the values a ladder step is measured against.
pub fn as_original(obj: &Object, held: &ObjectChange) -> Object {
    let mut o = obj.clone();
    for f in &held.fields {
        let mut at = &mut o.data;
        let keys: Vec<&str> = f.field.split('.').collect();
        for key in &keys[..keys.len() - 1] {
            at = &mut at[*key];
        }
        at[keys[keys.len() - 1]] = f.original.clone();
    }
    o
}

/// Folds newly changed fields into a change already held: a field changed twice keeps its
/// first original, so restore goes back to the value before costcast, not in between.
pub fn merge(mut held: ObjectChange, step: u32, fields: Vec<FieldChange>) -> ObjectChange {
    held.step = held.step.max(step);
    for f in fields {
        match held.fields.iter_mut().find(|h| h.field == f.field) {
            Some(h) => h.set = f.set,
            None => held.fields.push(f),
        }
    }
    held
}

/// The fields whose value is no longer what costcast set, described for people.
pub fn drift(change: &ObjectChange, obj: &Object) -> Vec<String> {
    change
        .fields
        .iter()
        .filter_map(|f| {
            let now = obj.field(&f.field);
            (now != f.set).then(|| format!("{} is {now} (costcast set {})", f.field, f.set))
        })
        .collect()
}

/// Schedules of `schedule` between `since` and `now`, counting no further than `cap + 1`.
/// `None` when the schedule does not parse.
pub fn missed_schedules(
    schedule: &str,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
    cap: usize,
) -> Option<usize> {
    let cron: croner::Cron = schedule.parse().ok()?;
    Some(
        cron.iter_after(since)
            .take_while(|t| *t <= now)
            .take(cap + 1)
            .count(),
    )
}

/// Whether a CronJob about to be unsuspended needs `startingDeadlineSeconds` to start again:
/// without one, the controller refuses a CronJob that missed over 100 schedules.
pub fn needs_starting_deadline(obj: &Object, now: DateTime<Utc>) -> bool {
    if obj.target.kind != ObjectKind::CronJob
        || !obj.field("spec.startingDeadlineSeconds").is_null()
    {
        return false;
    }
    let since = obj
        .field("status.lastScheduleTime")
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or(obj.created);
    let Some(schedule) = obj.field("spec.schedule").as_str().map(str::to_string) else {
        return false;
    };
    match since {
        Some(since) => missed_schedules(&schedule, since, now, CRONJOB_MISSED_LIMIT)
            .is_none_or(|n| n > CRONJOB_MISSED_LIMIT),
        // No history to count from: setting the deadline is the safe side.
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::{CapLimit, ObjectRef};

    fn object(kind: ObjectKind, data: Value) -> Object {
        Object {
            target: ObjectRef {
                kind,
                namespace: "ml".into(),
                name: "x".into(),
            },
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            owners: vec![],
            resource_version: Some("1".into()),
            created: None,
            data,
        }
    }

    #[test]
    fn an_hpa_cap_keeps_min_at_or_below_max() {
        let hpa = object(
            ObjectKind::HorizontalPodAutoscaler,
            json!({"spec": {"minReplicas": 4, "maxReplicas": 10}}),
        );
        let f = fields_for(
            &ActionKind::LowerAutoscalerCaps {
                limit: CapLimit::Factor(0.3),
            },
            &hpa,
        );
        assert_eq!(
            f,
            vec![
                FieldChange {
                    field: "spec.maxReplicas".into(),
                    original: json!(10),
                    set: json!(3)
                },
                FieldChange {
                    field: "spec.minReplicas".into(),
                    original: json!(4),
                    set: json!(3)
                },
            ]
        );
    }

    #[test]
    fn a_cap_never_raises_and_never_goes_below_one() {
        let hpa = object(
            ObjectKind::HorizontalPodAutoscaler,
            json!({"spec": {"maxReplicas": 2}}),
        );
        let caps = |n| {
            fields_for(
                &ActionKind::LowerAutoscalerCaps {
                    limit: CapLimit::Replicas(n),
                },
                &hpa,
            )
        };
        assert!(caps(5).is_empty());
        let f = fields_for(
            &ActionKind::LowerAutoscalerCaps {
                limit: CapLimit::Factor(0.1),
            },
            &hpa,
        );
        assert_eq!(f[0].set, json!(1));
    }

    #[test]
    fn a_scaled_object_uses_kedas_defaults_when_fields_are_unset() {
        let so = object(ObjectKind::ScaledObject, json!({"spec": {}}));
        let f = fields_for(&ActionKind::ScaleDown { replicas: 0 }, &so);
        assert_eq!(
            f,
            vec![FieldChange {
                field: "spec.maxReplicaCount".into(),
                original: Value::Null,
                set: json!(1)
            }]
        );
    }

    #[test]
    fn a_suspended_cronjob_needs_nothing_and_an_unset_suspend_is_recorded_as_null() {
        let cj = object(
            ObjectKind::CronJob,
            json!({"spec": {"schedule": "* * * * *"}}),
        );
        let f = fields_for(
            &ActionKind::SuspendCronJobs {
                suspend_jobs: false,
            },
            &cj,
        );
        assert_eq!(f[0].original, Value::Null);
        let done = object(ObjectKind::CronJob, json!({"spec": {"suspend": true}}));
        assert!(
            fields_for(
                &ActionKind::SuspendCronJobs {
                    suspend_jobs: false
                },
                &done
            )
            .is_empty()
        );
    }

    #[test]
    fn a_second_change_keeps_the_first_original() {
        let held = ObjectChange {
            budget: "b".into(),
            step: 2,
            target: object(ObjectKind::HorizontalPodAutoscaler, json!({})).target,
            fields: vec![FieldChange {
                field: "spec.maxReplicas".into(),
                original: json!(10),
                set: json!(5),
            }],
        };
        let merged = merge(
            held,
            4,
            vec![FieldChange {
                field: "spec.maxReplicas".into(),
                original: json!(5),
                set: json!(1),
            }],
        );
        assert_eq!(merged.step, 4);
        assert_eq!(merged.fields[0].original, json!(10));
        assert_eq!(merged.fields[0].set, json!(1));
    }

    #[test]
    fn critical_objects_and_protected_namespaces_are_guarded() {
        let mut o = object(ObjectKind::Deployment, json!({}));
        assert_eq!(guard(&o, &[]), None);
        assert!(guard(&o, &["ml".to_string()]).is_some());
        o.labels.insert(TIER_LABEL.into(), "critical".into());
        assert!(guard(&o, &[]).unwrap().contains("critical"));
    }

    #[test]
    fn a_cronjob_that_missed_over_a_hundred_schedules_needs_a_deadline() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let cj = |last: &str| {
            object(
                ObjectKind::CronJob,
                json!({"spec": {"schedule": "*/5 * * * *"}, "status": {"lastScheduleTime": last}}),
            )
        };
        let now = at("2024-06-10T12:00:00Z");
        // Suspended for 8 hours at every 5 minutes: 96 missed, it starts on its own.
        assert!(!needs_starting_deadline(&cj("2024-06-10T04:00:00Z"), now));
        // Suspended for 9 hours: 108 missed.
        assert!(needs_starting_deadline(&cj("2024-06-10T03:00:00Z"), now));
        assert_eq!(
            missed_schedules("*/5 * * * *", at("2024-06-10T03:00:00Z"), now, 1000),
            Some(108)
        );
    }
}
