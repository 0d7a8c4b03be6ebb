//! Budgets and their action ladders: the raw tables as written and their validation, every
//! error naming its key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{ConfigError, OneOrMany, invalid, parse_scope};
use crate::domain::{
    ActionKind, ActionRule, Budget, BudgetMode, CapLimit, Currency, Day, Money, MonthlyPlan,
    Period, Thresholds,
};

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBudget {
    name: String,
    amount: Option<f64>,
    /// One amount per month of a quarterly or yearly period.
    monthly_plan: Option<Vec<f64>>,
    currency: Option<String>,
    period: Option<String>,
    period_start: Option<String>,
    period_days: Option<i64>,
    mode: Option<String>,
    #[serde(default)]
    scope: BTreeMap<String, OneOrMany>,
    #[serde(default)]
    scope_any: Vec<BTreeMap<String, OneOrMany>>,
    warn_probability: Option<f64>,
    breach_probability: Option<f64>,
    recover_probability: Option<f64>,
    recover_days: Option<i64>,
    #[serde(default)]
    actions: Vec<RawAction>,
}

impl RawBudget {
    /// The budget's name.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// Sets its amount.
    pub(super) fn set_amount(&mut self, amount: f64) {
        self.amount = Some(amount);
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    kind: String,
    #[serde(default)]
    namespaces: Vec<String>,
    #[serde(default)]
    selector: String,
    factor: Option<f64>,
    max_replicas: Option<i64>,
    replicas: Option<i64>,
    suspend_jobs: Option<bool>,
}

fn validate_period(key: &dyn Fn(&str) -> String, raw: &RawBudget) -> Result<Period, ConfigError> {
    let name = raw.period.as_deref().unwrap_or("monthly");
    if name != "custom" && (raw.period_start.is_some() || raw.period_days.is_some()) {
        return Err(invalid(
            key("period_start"),
            "period_start and period_days only go with period = \"custom\"",
        ));
    }
    Ok(match name {
        "monthly" => Period::Monthly,
        "quarterly" => Period::Quarterly,
        "weekly" => Period::Weekly,
        "yearly" => Period::Yearly,
        "custom" => {
            let start = raw
                .period_start
                .as_deref()
                .ok_or_else(|| invalid(key("period_start"), "is required for a custom period"))?;
            let start =
                Day::parse(start).map_err(|e| invalid(key("period_start"), e.to_string()))?;
            let days = raw
                .period_days
                .ok_or_else(|| invalid(key("period_days"), "is required for a custom period"))?;
            if !(1..=366).contains(&days) {
                return Err(invalid(
                    key("period_days"),
                    format!("must be in 1..=366, got {days}"),
                ));
            }
            Period::Custom {
                start,
                length_days: days as u32,
            }
        }
        other => {
            return Err(invalid(
                key("period"),
                format!(
                    "{other:?} is not one of \"monthly\", \"quarterly\", \"yearly\", \"weekly\", \"custom\""
                ),
            ));
        }
    })
}

fn validate_thresholds(
    key: &dyn Fn(&str) -> String,
    raw: &RawBudget,
) -> Result<Thresholds, ConfigError> {
    let defaults = Thresholds::default();
    let recover_days = raw.recover_days.unwrap_or(defaults.recover_days as i64);
    if !(1..=90).contains(&recover_days) {
        return Err(invalid(
            key("recover_days"),
            format!("must be in 1..=90, got {recover_days}"),
        ));
    }
    let t = Thresholds {
        warn: raw.warn_probability.unwrap_or(defaults.warn),
        breach: raw.breach_probability.unwrap_or(defaults.breach),
        recover: raw.recover_probability.unwrap_or(defaults.recover),
        recover_days: recover_days as u32,
    };
    for (k, p) in [
        ("warn_probability", t.warn),
        ("breach_probability", t.breach),
        ("recover_probability", t.recover),
    ] {
        if !(p > 0.0 && p <= 1.0) {
            return Err(invalid(key(k), format!("must be in (0, 1], got {p}")));
        }
    }
    if t.warn > t.breach {
        return Err(invalid(
            key("warn_probability"),
            "must not be above breach_probability",
        ));
    }
    if t.recover >= t.breach {
        return Err(invalid(
            key("recover_probability"),
            "must be below breach_probability, or a budget would restore and act again on the same evaluation",
        ));
    }
    Ok(t)
}

pub(super) fn validate_budget(i: usize, raw: &RawBudget) -> Result<Budget, ConfigError> {
    let key = |k: &str| format!("budgets[{i}].{k}");
    if raw.name.trim().is_empty() {
        return Err(invalid(key("name"), "must not be empty"));
    }
    let currency = match &raw.currency {
        None => Currency::usd(),
        Some(c) => Currency::parse(c).map_err(|e| invalid(key("currency"), e.to_string()))?,
    };
    let period = validate_period(&key, raw)?;
    let plan = raw
        .monthly_plan
        .clone()
        .map(|amounts| MonthlyPlan::new(period, amounts))
        .transpose()
        .map_err(|e| invalid(key("monthly_plan"), e.to_string()))?;
    let amount = validate_amount(&key, raw.amount, plan.as_ref())?;
    let mode_name = raw.mode.as_deref().unwrap_or("observe");
    let mode = BudgetMode::parse(mode_name).ok_or_else(|| {
        invalid(
            key("mode"),
            format!("{mode_name:?} is not \"observe\" or \"enforce\""),
        )
    })?;
    let mut scope = parse_scope(&key("scope"), &raw.scope)?;
    for (j, alternative) in raw.scope_any.iter().enumerate() {
        let k = key(&format!("scope_any[{j}]"));
        if alternative.is_empty() {
            return Err(invalid(k, "is empty: it would match every cost"));
        }
        scope = scope.or_any(parse_scope(&k, alternative)?);
    }
    let thresholds = validate_thresholds(&key, raw)?;
    let actions = raw
        .actions
        .iter()
        .enumerate()
        .map(|(j, a)| validate_action(&key(&format!("actions[{j}]")), a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Budget {
        name: raw.name.clone(),
        amount: Money::new(amount, currency),
        scope,
        period,
        mode,
        thresholds,
        actions,
        plan,
    })
}

/// The period's amount: as given, or the plan's total. A plan may keep a reserve below the
/// amount but never plan more than it.
fn validate_amount(
    key: &dyn Fn(&str) -> String,
    amount: Option<f64>,
    plan: Option<&MonthlyPlan>,
) -> Result<f64, ConfigError> {
    let amount = match (amount, plan) {
        (Some(a), _) => a,
        (None, Some(plan)) => plan.total(),
        (None, None) => return Err(invalid(key("amount"), "is required (or a monthly_plan)")),
    };
    if !(amount.is_finite() && amount > 0.0) {
        return Err(invalid(key("amount"), format!("must be > 0, got {amount}")));
    }
    if let Some(plan) = plan
        && plan.total() > amount + 0.005
    {
        return Err(invalid(
            key("monthly_plan"),
            format!(
                "plans {} in all, more than the amount {amount}",
                plan.total()
            ),
        ));
    }
    Ok(amount)
}

/// A `lower-autoscaler-caps` step's limit: exactly one of `factor` and `max_replicas`.
fn cap_limit(raw: &RawAction, field: &dyn Fn(&str) -> String) -> Result<CapLimit, ConfigError> {
    match (raw.factor, raw.max_replicas) {
        (Some(f), None) if f > 0.0 && f < 1.0 => Ok(CapLimit::Factor(f)),
        (Some(f), None) => Err(invalid(
            field("factor"),
            format!("must be in (0, 1), got {f}"),
        )),
        (None, Some(n)) if (1..=10_000).contains(&n) => Ok(CapLimit::Replicas(n as u32)),
        (None, Some(n)) => Err(invalid(
            field("max_replicas"),
            format!("must be in 1..=10000, got {n}"),
        )),
        _ => Err(invalid(
            field("factor"),
            "give exactly one of factor or max_replicas for lower-autoscaler-caps",
        )),
    }
}

fn validate_action(key: &str, raw: &RawAction) -> Result<ActionRule, ConfigError> {
    let field = |f: &str| format!("{key}.{f}");
    let only_for = |f: &str, present: bool, kind: &str| {
        if present && raw.kind != kind {
            Err(invalid(
                field(f),
                format!("only applies to kind = {kind:?}"),
            ))
        } else {
            Ok(())
        }
    };
    only_for(
        "suspend_jobs",
        raw.suspend_jobs.is_some(),
        "suspend-cronjobs",
    )?;
    only_for("replicas", raw.replicas.is_some(), "scale-down")?;
    only_for("factor", raw.factor.is_some(), "lower-autoscaler-caps")?;
    only_for(
        "max_replicas",
        raw.max_replicas.is_some(),
        "lower-autoscaler-caps",
    )?;
    let kind = match raw.kind.as_str() {
        "alert" => ActionKind::Alert,
        "lower-autoscaler-caps" => ActionKind::LowerAutoscalerCaps {
            limit: cap_limit(raw, &field)?,
        },
        "suspend-cronjobs" => ActionKind::SuspendCronJobs {
            suspend_jobs: raw.suspend_jobs.unwrap_or(false),
        },
        "scale-down" => {
            let replicas = raw.replicas.unwrap_or(0);
            if !(0..=10_000).contains(&replicas) {
                return Err(invalid(
                    field("replicas"),
                    format!("must be in 0..=10000, got {replicas}"),
                ));
            }
            ActionKind::ScaleDown {
                replicas: replicas as u32,
            }
        }
        other => {
            return Err(invalid(
                field("kind"),
                format!(
                    "{other:?} is not one of alert, lower-autoscaler-caps, suspend-cronjobs, scale-down"
                ),
            ));
        }
    };
    if !matches!(kind, ActionKind::Alert) && raw.namespaces.is_empty() {
        return Err(invalid(
            field("namespaces"),
            "must name at least one namespace",
        ));
    }
    Ok(ActionRule {
        kind,
        namespaces: raw.namespaces.clone(),
        selector: raw.selector.clone(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{test_error as error, test_load as load};
    use crate::domain::{ActionKind, CapLimit, Day, Period};

    #[test]
    fn every_period_kind_parses_and_custom_needs_its_start_and_length() {
        let period = |extra: &str| {
            load(&format!("[[budgets]]\nname='a'\namount=5\n{extra}")).map(|c| c.budgets[0].period)
        };
        assert_eq!(period("").unwrap(), Period::Monthly);
        assert_eq!(period("period='quarterly'").unwrap(), Period::Quarterly);
        assert_eq!(period("period='yearly'").unwrap(), Period::Yearly);
        assert_eq!(period("period='weekly'").unwrap(), Period::Weekly);
        assert_eq!(
            period("period='custom'\nperiod_start='2024-01-05'\nperiod_days=14").unwrap(),
            Period::Custom {
                start: Day::parse("2024-01-05").unwrap(),
                length_days: 14
            }
        );
        assert_eq!(
            error("[[budgets]]\nname='a'\namount=5\nperiod='custom'\nperiod_days=14"),
            "budgets[0].period_start: is required for a custom period"
        );
        assert!(
            error("[[budgets]]\nname='a'\namount=5\nperiod='fortnightly'")
                .starts_with("budgets[0].period: \"fortnightly\" is not one of")
        );
    }

    #[test]
    fn scope_alternatives_are_or_ed_and_an_empty_one_is_refused() {
        let c = load(
            "[[budgets]]\nname='a'\namount=5\nscope={provider='AWS'}\nscope_any=[{team='ml'},{namespace=['ml-training','ml-serving']}]",
        )
        .unwrap();
        assert_eq!(
            c.budgets[0].scope.to_string(),
            "provider in [AWS] and (team in [ml] or namespace in [ml-training, ml-serving])"
        );
        assert_eq!(
            error("[[budgets]]\nname='a'\namount=5\nscope_any=[{team='ml'},{}]"),
            "budgets[0].scope_any[1]: is empty: it would match every cost"
        );
    }

    #[test]
    fn a_recover_level_at_or_above_breach_is_refused() {
        assert!(
            error("[[budgets]]\nname='a'\namount=5\nrecover_probability=0.8")
                .starts_with("budgets[0].recover_probability: must be below breach_probability")
        );
        assert_eq!(
            error("[[budgets]]\nname='a'\namount=5\nrecover_days=0"),
            "budgets[0].recover_days: must be in 1..=90, got 0"
        );
    }

    #[test]
    fn an_autoscaler_step_takes_a_factor_or_a_replica_cap_not_both() {
        let step = |extra: &str| {
            format!(
                "[[budgets]]\nname='a'\namount=5\n[[budgets.actions]]\nkind='lower-autoscaler-caps'\nnamespaces=['x']\n{extra}"
            )
        };
        let c = load(&step("max_replicas=3")).unwrap();
        assert_eq!(
            c.budgets[0].actions[0].kind,
            ActionKind::LowerAutoscalerCaps {
                limit: CapLimit::Replicas(3)
            }
        );
        assert!(
            error(&step("factor=0.5\nmax_replicas=3"))
                .starts_with("budgets[0].actions[0].factor: give exactly one")
        );
        assert!(error(&step("factor=2")).starts_with("budgets[0].actions[0].factor: must be in"));
        assert_eq!(
            error(&step("suspend_jobs=true")),
            "budgets[0].actions[0].suspend_jobs: only applies to kind = \"suspend-cronjobs\""
        );
    }
}
