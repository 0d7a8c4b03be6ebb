//! Acting on budget statuses: planning Kubernetes changes from a budget's ladder, and Slack
//! alerts. Planning is pure; only `slack` talks to the outside world so far. In `observe` mode
//! (the default) a plan is described and recorded, never applied.

pub mod slack;

use crate::domain::{ActionKind, ActionRule, Budget, Evaluation, PlannedChange, Status};

/// Namespaces costcast never changes, whatever a budget's rules say.
pub const PROTECTED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// The label that marks an object as never to be throttled.
pub const CRITICAL_LABEL: &str = "costcast.io/tier";

/// The changes `budget`'s ladder calls for given its evaluation: every step on `breach`, only
/// alert steps on `warn`, nothing on `ok`.
pub fn plan(budget: &Budget, evaluation: &Evaluation) -> Vec<PlannedChange> {
    let steps = match evaluation.status {
        Status::Ok => return Vec::new(),
        Status::Warn => budget
            .actions
            .iter()
            .enumerate()
            .filter(|(_, a)| a.kind == ActionKind::Alert)
            .collect::<Vec<_>>(),
        Status::Breach => budget.actions.iter().enumerate().collect(),
    };
    steps
        .into_iter()
        .filter_map(|(i, rule)| {
            let namespaces: Vec<String> = rule
                .namespaces
                .iter()
                .filter(|ns| !PROTECTED_NAMESPACES.contains(&ns.as_str()))
                .cloned()
                .collect();
            if namespaces.is_empty() && rule.kind != ActionKind::Alert {
                return None;
            }
            let selector = guarded_selector(&rule.selector);
            Some(PlannedChange {
                budget: budget.name.clone(),
                step: i as u32 + 1,
                action: rule.kind.clone(),
                description: describe(rule, &namespaces, &selector),
                namespaces,
                selector,
                mode: budget.mode,
            })
        })
        .collect()
}

/// The rule's selector with the critical tier excluded, so no rule can reach critical objects.
fn guarded_selector(selector: &str) -> String {
    let guard = format!("{CRITICAL_LABEL}!=critical");
    if selector.trim().is_empty() {
        guard
    } else {
        format!("{},{guard}", selector.trim())
    }
}

fn describe(rule: &ActionRule, namespaces: &[String], selector: &str) -> String {
    let place = format!("in namespace {} matching {selector}", namespaces.join(", "));
    match &rule.kind {
        ActionKind::Alert => "Alert the channel; change nothing.".to_string(),
        ActionKind::LowerAutoscalerCaps { factor } => format!(
            "Lower HorizontalPodAutoscaler maxReplicas and KEDA ScaledObject maxReplicaCount {place} to {:.0}% of their current value.",
            factor * 100.0
        ),
        ActionKind::SuspendCronJobs => format!("Suspend CronJobs {place}."),
        ActionKind::ScaleDown { replicas } => {
            format!("Scale Deployments and StatefulSets {place} down to {replicas} replicas.")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        BudgetMode, Currency, Day, DayRange, Money, Period, Projection, Scope, Thresholds,
    };

    fn budget() -> Budget {
        let rule = |kind, ns: &[&str]| ActionRule {
            kind,
            namespaces: ns.iter().map(|s| s.to_string()).collect(),
            selector: "costcast.io/tier=batch".into(),
        };
        Budget {
            name: "ml".into(),
            amount: Money::new(100.0, Currency::usd()),
            scope: Scope::all(),
            period: Period::Monthly,
            mode: BudgetMode::Observe,
            thresholds: Thresholds::default(),
            actions: vec![
                rule(ActionKind::Alert, &[]),
                rule(
                    ActionKind::LowerAutoscalerCaps { factor: 0.5 },
                    &["ml", "kube-system"],
                ),
                rule(ActionKind::SuspendCronJobs, &["kube-system"]),
            ],
        }
    }

    fn evaluation(status: Status) -> Evaluation {
        let day = Day::parse("2024-06-10").unwrap();
        Evaluation {
            budget: "ml".into(),
            as_of: day,
            amount: Money::new(100.0, Currency::usd()),
            projection: Projection {
                period: DayRange::month_of(day),
                actual_to_date: 0.0,
                reported_through: None,
                forecast_days: 0,
                mean: 0.0,
                lo80: 0.0,
                hi80: 0.0,
                p_breach: 0.0,
            },
            status,
            mode: BudgetMode::Observe,
            forecast_error: None,
        }
    }

    #[test]
    fn a_breach_plans_the_ladder_without_protected_namespaces_or_critical_objects() {
        let changes = plan(&budget(), &evaluation(Status::Breach));
        // The suspend step only named kube-system, so it is dropped entirely.
        assert_eq!(changes.len(), 2);
        let caps = &changes[1];
        assert_eq!(caps.step, 2);
        assert_eq!(caps.namespaces, vec!["ml".to_string()]);
        assert_eq!(
            caps.selector,
            "costcast.io/tier=batch,costcast.io/tier!=critical"
        );
        assert!(caps.description.contains("50%"), "{}", caps.description);
        assert_eq!(caps.mode, BudgetMode::Observe);
    }

    #[test]
    fn a_warning_only_alerts_and_ok_does_nothing() {
        let warn = plan(&budget(), &evaluation(Status::Warn));
        assert_eq!(warn.len(), 1);
        assert_eq!(warn[0].action, ActionKind::Alert);
        assert!(plan(&budget(), &evaluation(Status::Ok)).is_empty());
    }
}
