use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Day, DayRange, Money, Scope};

/// How often a budget's amount resets. Only calendar months (UTC) exist so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Period {
    /// A calendar month in UTC.
    Monthly,
}

impl Period {
    /// The period that contains `day`.
    pub fn containing(self, day: Day) -> DayRange {
        match self {
            Period::Monthly => DayRange::month_of(day),
        }
    }
}

/// Whether a budget may change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetMode {
    /// Plan, record and report; change nothing. The default for a new budget.
    Observe,
    /// Apply the planned changes.
    Enforce,
}

impl BudgetMode {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            BudgetMode::Observe => "observe",
            BudgetMode::Enforce => "enforce",
        }
    }

    /// Parses a stored or configured name.
    pub fn parse(s: &str) -> Option<BudgetMode> {
        match s {
            "observe" => Some(BudgetMode::Observe),
            "enforce" => Some(BudgetMode::Enforce),
            _ => None,
        }
    }
}

/// Breach probabilities at which a budget warns and at which it is in breach.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// P(breach) at or above which the status is `warn`.
    pub warn: f64,
    /// P(breach) at or above which the status is `breach`.
    pub breach: f64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            warn: 0.5,
            breach: 0.8,
        }
    }
}

/// What a step of a budget's action ladder does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ActionKind {
    /// Post an alert and change nothing.
    Alert,
    /// Lower HPA `maxReplicas` and KEDA `maxReplicaCount` to `factor` of their value.
    LowerAutoscalerCaps {
        /// The fraction of the current cap to keep, in (0, 1).
        factor: f64,
    },
    /// Set `spec.suspend = true` on CronJobs.
    SuspendCronJobs,
    /// Scale Deployments and StatefulSets down to `replicas`.
    ScaleDown {
        /// The replica count to scale to.
        replicas: u32,
    },
}

impl ActionKind {
    /// The stable name, as written in config.
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionKind::Alert => "alert",
            ActionKind::LowerAutoscalerCaps { .. } => "lower-autoscaler-caps",
            ActionKind::SuspendCronJobs => "suspend-cronjobs",
            ActionKind::ScaleDown { .. } => "scale-down",
        }
    }
}

/// One step of a budget's ladder: what to do and to which objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRule {
    /// What the step does.
    pub kind: ActionKind,
    /// Namespaces whose objects are targets.
    pub namespaces: Vec<String>,
    /// A label selector the targets must match, e.g. `costcast.io/tier=batch`.
    pub selector: String,
}

/// A spending limit over a scope of costs.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Unique name.
    pub name: String,
    /// The limit per period.
    pub amount: Money,
    /// Which costs count against it.
    pub scope: Scope,
    /// How often it resets.
    pub period: Period,
    /// Whether it may act.
    pub mode: BudgetMode,
    /// When it warns and when it breaches.
    pub thresholds: Thresholds,
    /// The ordered action ladder.
    pub actions: Vec<ActionRule>,
}

/// A budget's status for the current period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Breach unlikely.
    Ok,
    /// Breach as likely as not.
    Warn,
    /// Breach likely: act.
    Breach,
}

impl Status {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Breach => "breach",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "ok" => Some(Status::Ok),
            "warn" => Some(Status::Warn),
            "breach" => Some(Status::Breach),
            _ => None,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The expected total of a budget's current period and how sure that is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Projection {
    /// The period projected.
    pub period: DayRange,
    /// Cost of the period's days that billing has reported.
    pub actual_to_date: f64,
    /// The last reported day counted in `actual_to_date`, if any.
    pub reported_through: Option<Day>,
    /// Days of the period filled from the forecast (unreported or still to come).
    pub forecast_days: usize,
    /// Expected period total.
    pub mean: f64,
    /// Lower bound of the 80% interval of the period total.
    pub lo80: f64,
    /// Upper bound of the 80% interval of the period total.
    pub hi80: f64,
    /// Probability the period total exceeds the budget amount.
    pub p_breach: f64,
}

/// One evaluation of one budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The budget's name.
    pub budget: String,
    /// The day the evaluation was made as of.
    pub as_of: Day,
    /// The budget amount at the time.
    pub amount: Money,
    /// The projection of the period total.
    pub projection: Projection,
    /// The resulting status.
    pub status: Status,
    /// The budget's mode at the time.
    pub mode: BudgetMode,
    /// How wrong the forecast of this budget's scope was in backtest: the mean absolute error
    /// of 30-day totals, in %. `None` before a backtest has run.
    pub forecast_error: Option<f64>,
}

/// A change to a Kubernetes object (or an alert) that a budget's status calls for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// The budget that calls for it.
    pub budget: String,
    /// Its 1-based step on the budget's ladder.
    pub step: u32,
    /// What it does.
    pub action: ActionKind,
    /// Namespaces of the targets.
    pub namespaces: Vec<String>,
    /// Label selector of the targets.
    pub selector: String,
    /// A sentence a person can read: what would change and why.
    pub description: String,
    /// `observe` plans only; `enforce` applies.
    pub mode: BudgetMode,
}
