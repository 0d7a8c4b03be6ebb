//! The planner's decisions on objects as listed, without a cluster.

use super::*;
use crate::domain::BudgetMode;

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
        mode: BudgetMode::Enforce,
        ..Budget::monthly("ml", 100.0)
    }
}

#[test]
fn a_held_object_is_measured_against_its_original_and_a_persons_edit_is_left_alone() {
    let rule = |limit| ActionRule {
        kind: ActionKind::LowerAutoscalerCaps { limit },
        namespaces: vec!["ml".into()],
        selector: String::new(),
    };
    let half = rule(CapLimit::Factor(0.5));
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
    let three = rule(CapLimit::Replicas(3));
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
fn the_ladder_lists_only_the_steps_in_effect() {
    let rule = |kind| ActionRule {
        kind,
        namespaces: vec!["ml".into()],
        selector: "costcast.io/tier=batch".into(),
    };
    let budget = Budget {
        actions: vec![
            rule(ActionKind::Alert),
            rule(ActionKind::LowerAutoscalerCaps {
                limit: CapLimit::Factor(0.5),
            }),
            rule(ActionKind::SuspendCronJobs {
                suspend_jobs: false,
            }),
        ],
        ..Budget::monthly("ml", 100.0)
    };
    assert!(ladder(&budget, 0).is_empty());
    let two = ladder(&budget, 2);
    assert_eq!(two.len(), 2);
    assert_eq!(two[1].step, 2);
    assert!(two[1].description.contains("50%"), "{}", two[1].description);
    assert!(two[1].description.contains("costcast.io/tier=batch"));
}

#[test]
fn a_change_limit_skips_the_rest_and_a_made_change_is_held_for_the_next_step() {
    let settings = ActSettings {
        max_changes_per_run: 1,
        ..ActSettings::default()
    };
    let b = caps_budget();
    let rule = ActionRule {
        kind: ActionKind::LowerAutoscalerCaps {
            limit: CapLimit::Factor(0.5),
        },
        namespaces: vec!["ml".into()],
        selector: String::new(),
    };
    let (mut planner, release) = Planner::start(&[], &[(&b, 1)], &settings);
    assert!(release.is_empty());
    let obj = hpa(10, 2);
    let fields = Ok(changes::fields_for(&rule.kind, &obj));
    let intents = planner.decide(&b, &rule, 1, (obj.clone(), fields.clone()), true);
    let Some(Intent::Apply { change, .. }) = intents.first() else {
        panic!("{intents:?}")
    };
    assert_eq!(change.fields[0].set, json!(5));
    let mut other = obj.clone();
    other.target.name = "web".into();
    let intents = planner.decide(&b, &rule, 1, (other, fields), true);
    assert!(
        matches!(&intents[..], [Intent::Record(r)] if r.outcome == Outcome::Skipped && r.detail.contains("change limit of 1")),
        "{intents:?}"
    );
}
