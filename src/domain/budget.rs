use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Day, DayRange, LaggingSource, Money, MonthlyPlan, PlanCheck, Scope};

/// How often a budget's amount resets. Every period is in UTC days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Period {
    /// A calendar month.
    Monthly,
    /// A calendar quarter: January, April, July or October to the end of the third month.
    Quarterly,
    /// Monday to Sunday.
    Weekly,
    /// A calendar year.
    Yearly,
    /// `length_days` days from `start`, then the next `length_days`, and so on (before `start`
    /// too, so every day belongs to exactly one period).
    Custom {
        /// First day of one period.
        start: Day,
        /// Days per period, at least 1.
        length_days: u32,
    },
}

impl Period {
    /// The period that contains `day`.
    pub fn containing(self, day: Day) -> DayRange {
        // Every arm builds start <= end; the fallback only keeps the signature total.
        let range =
            |start: Day, end: Day| DayRange::new(start, end).unwrap_or(DayRange::month_of(day));
        match self {
            Period::Monthly => DayRange::month_of(day),
            Period::Quarterly => {
                let first_month = (day.month() - 1) / 3 * 3 + 1;
                let start = Day::from_ymd(day.year(), first_month, 1).unwrap_or(day);
                let end = Day::from_ymd(day.year(), first_month + 2, 1)
                    .unwrap_or(day)
                    .month_end();
                range(start, end)
            }
            Period::Yearly => {
                let start = Day::from_ymd(day.year(), 1, 1).unwrap_or(day);
                range(start, Day::from_ymd(day.year(), 12, 31).unwrap_or(day))
            }
            Period::Weekly => {
                let start = day.add_days(-(day.weekday_index() as i64));
                range(start, start.add_days(6))
            }
            Period::Custom { start, length_days } => {
                let len = length_days.max(1) as i64;
                let k = start.days_until(day).div_euclid(len);
                let first = start.add_days(k * len);
                range(first, first.add_days(len - 1))
            }
        }
    }

    /// The period just before the one that contains `day`.
    pub fn previous(self, day: Day) -> DayRange {
        self.containing(self.containing(day).start().add_days(-1))
    }

    /// How it is written in config.
    pub fn describe(self) -> String {
        match self {
            Period::Monthly => "monthly".into(),
            Period::Quarterly => "quarterly".into(),
            Period::Weekly => "weekly".into(),
            Period::Yearly => "yearly".into(),
            Period::Custom { start, length_days } => {
                format!("every {length_days} days from {start}")
            }
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

/// Breach probabilities at which a budget warns, is in breach, and counts as recovered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// P(breach) at or above which the status is `warn`.
    pub warn: f64,
    /// P(breach) at or above which the status is `breach` and the ladder starts.
    pub breach: f64,
    /// P(breach) below which a budget that acted counts a calm evaluation day.
    pub recover: f64,
    /// Consecutive calm evaluation days before everything is restored.
    pub recover_days: u32,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            warn: 0.5,
            breach: 0.8,
            recover: 0.3,
            recover_days: 2,
        }
    }
}

/// How far an autoscaler cap is lowered.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CapLimit {
    /// Keep this fraction of the current cap, in (0, 1).
    Factor(f64),
    /// Lower the cap to this many replicas (never raise it).
    Replicas(u32),
}

impl CapLimit {
    /// The new cap for a current cap of `current`: at least 1 and never above `current`.
    pub fn apply(self, current: i64) -> i64 {
        let target = match self {
            CapLimit::Factor(f) => (current as f64 * f).floor() as i64,
            CapLimit::Replicas(n) => n as i64,
        };
        target.clamp(1, current.max(1))
    }
}

/// What a step of a budget's action ladder does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ActionKind {
    /// Post an alert and change nothing.
    Alert,
    /// Lower HPA `maxReplicas` and KEDA `maxReplicaCount`.
    LowerAutoscalerCaps {
        /// How far.
        limit: CapLimit,
    },
    /// Set `spec.suspend = true` on CronJobs.
    SuspendCronJobs {
        /// Also suspend the Jobs those CronJobs are running.
        suspend_jobs: bool,
    },
    /// Scale Deployments and StatefulSets down to `replicas` (capping their autoscaler
    /// instead when one manages them).
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
            ActionKind::SuspendCronJobs { .. } => "suspend-cronjobs",
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
    /// Planned amounts for each month of a quarterly or yearly period, if the budget has them.
    pub plan: Option<MonthlyPlan>,
}

impl Budget {
    /// A monthly budget of `amount` USD over all spend, in observe mode with default thresholds
    /// and no ladder: the base that examples and tests change what they need on.
    pub fn monthly(name: &str, amount: f64) -> Budget {
        Budget {
            name: name.to_string(),
            amount: Money::new(amount, super::Currency::usd()),
            scope: Scope::all(),
            period: Period::Monthly,
            mode: BudgetMode::Observe,
            thresholds: Thresholds::default(),
            actions: Vec::new(),
            plan: None,
        }
    }
}

/// A budget's status for the current period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Breach unlikely.
    Ok,
    /// Breach as likely as not.
    Warn,
    /// The budget acted and the breach has become less likely; its changes stay until
    /// P(breach) has been below the recover level for enough days.
    Recovering,
    /// Breach likely: act.
    Breach,
}

impl Status {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Recovering => "recovering",
            Status::Breach => "breach",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "ok" => Some(Status::Ok),
            "warn" => Some(Status::Warn),
            "recovering" => Some(Status::Recovering),
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

/// A budget that has started acting: how far up its ladder it is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Engaged {
    /// Ladder steps in effect, from the first (0 only for an empty ladder).
    pub steps: u32,
    /// Consecutive evaluation days with P(breach) below the recover level.
    pub calm_days: u32,
    /// The projected amount over budget when the current step was reached.
    pub over_at_step: f64,
}

/// What a budget remembers between evaluations: the hysteresis state.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BudgetState {
    /// The period the state belongs to; a new period starts from scratch.
    pub period_start: Day,
    /// The newest evaluation day counted.
    pub last_day: Day,
    /// The status of that evaluation.
    pub status: Status,
    /// Set while the budget is acting.
    pub engaged: Option<Engaged>,
}

impl BudgetState {
    /// Ladder steps that should be in effect.
    pub fn steps(&self) -> u32 {
        self.engaged.map_or(0, |e| e.steps)
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
    /// Ladder steps in effect after this evaluation.
    pub steps: u32,
    /// The series whose projected period total rose most against the last period.
    pub drivers: Vec<Driver>,
    /// The current month against its planned amount, for a budget with a monthly plan.
    #[serde(default)]
    pub plan: Option<PlanCheck>,
    /// Sources of the budget's scope whose data did not refresh in this run or is too old to
    /// act on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lagging: Vec<LaggingSource>,
}

impl Evaluation {
    /// Whether the ladder stays where it was: some of the budget's data is too old to act on,
    /// so it neither climbs nor comes down on it.
    pub fn ladder_held(&self) -> bool {
        self.lagging.iter().any(|l| l.stale)
    }
}

/// A series inside a budget's scope and how its period total moves against the last period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Driver {
    /// The report series, e.g. `service=EC2|team=ml`.
    pub series: String,
    /// Its projected total for the current period.
    pub projected: f64,
    /// Its total over the previous period.
    pub previous: f64,
}

impl Driver {
    /// How much more the series is projected to cost than last period.
    pub fn rise(&self) -> f64 {
        self.projected - self.previous
    }
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

/// How a run recorded the ladder steps in effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::EnumString)]
#[strum(serialize_all = "kebab-case")]
pub enum PlanOutcome {
    /// Planned by a run that acts (and, in enforce mode, applies).
    Planned,
    /// Planned by a `--dry-run`, which applies and sends nothing.
    DryRun,
}

impl PlanOutcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What a budget's last alert said, so the next run alerts only on a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMark {
    /// The status alerted.
    pub status: Status,
    /// The ladder steps in effect then.
    pub steps: u32,
    /// The evaluation day.
    pub day: Day,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::d;

    fn range(p: Period, day: &str) -> (String, String) {
        let r = p.containing(d(day));
        (r.start().to_string(), r.end().to_string())
    }

    #[test]
    fn every_period_kind_covers_the_day_it_is_asked_about() {
        let s = |a: &str, b: &str| (a.to_string(), b.to_string());
        // 2024-06-12 is a Wednesday.
        for (period, day, first, last) in [
            (Period::Monthly, "2024-02-10", "2024-02-01", "2024-02-29"),
            (Period::Quarterly, "2024-05-31", "2024-04-01", "2024-06-30"),
            (Period::Quarterly, "2024-12-31", "2024-10-01", "2024-12-31"),
            (Period::Quarterly, "2024-01-01", "2024-01-01", "2024-03-31"),
            (Period::Weekly, "2024-06-12", "2024-06-10", "2024-06-16"),
            (Period::Weekly, "2024-06-16", "2024-06-10", "2024-06-16"),
        ] {
            assert_eq!(range(period, day), s(first, last), "{period:?} {day}");
        }
        let fortnight = Period::Custom {
            start: d("2024-01-05"),
            length_days: 14,
        };
        assert_eq!(
            range(fortnight, "2024-01-19"),
            s("2024-01-19", "2024-02-01")
        );
        // Days before the start belong to earlier periods of the same length.
        assert_eq!(
            range(fortnight, "2024-01-04"),
            s("2023-12-22", "2024-01-04")
        );
    }

    #[test]
    fn the_previous_period_is_the_one_just_before() {
        let p = Period::Quarterly.previous(d("2024-01-15"));
        assert_eq!((p.start(), p.end()), (d("2023-10-01"), d("2023-12-31")));
        let w = Period::Weekly.previous(d("2024-06-12"));
        assert_eq!((w.start(), w.end()), (d("2024-06-03"), d("2024-06-09")));
    }
}
