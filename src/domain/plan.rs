//! Monthly plans inside a quarterly or yearly budget: each month's planned amount, and how the
//! current month stands against its share.

use serde::{Deserialize, Serialize};

use super::{Day, DayRange, Period};

/// Why a monthly plan does not fit its budget.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// Only quarters and years are split into months.
    #[error("only a quarterly or yearly budget has a monthly plan, not a {0} one")]
    PeriodNotSplit(String),
    /// One amount per month, no more, no fewer.
    #[error("needs {expected} amounts (one per month of a {period} period), got {got}")]
    WrongLength {
        /// Months in the period.
        expected: usize,
        /// Amounts given.
        got: usize,
        /// The period, as configured.
        period: String,
    },
    /// A month's amount is negative or not a number.
    #[error("month {month}'s amount must be >= 0, got {amount}")]
    BadAmount {
        /// 1-based position in the plan.
        month: usize,
        /// The amount given.
        amount: f64,
    },
}

/// What a quarterly or yearly budget plans to spend in each of its months, in order.
///
/// A plan spreads the period's amount unevenly (a launch month, the holiday season), and each
/// month is checked against its own share as well as the period against the whole.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthlyPlan {
    amounts: Vec<f64>,
}

impl MonthlyPlan {
    /// A plan for `period`: one non-negative amount per month of it.
    pub fn new(period: Period, amounts: Vec<f64>) -> Result<MonthlyPlan, PlanError> {
        let expected = match period {
            Period::Quarterly => 3,
            Period::Yearly => 12,
            other => return Err(PlanError::PeriodNotSplit(other.describe())),
        };
        if amounts.len() != expected {
            return Err(PlanError::WrongLength {
                expected,
                got: amounts.len(),
                period: period.describe(),
            });
        }
        if let Some((i, &amount)) = amounts
            .iter()
            .enumerate()
            .find(|(_, a)| !(a.is_finite() && **a >= 0.0))
        {
            return Err(PlanError::BadAmount {
                month: i + 1,
                amount,
            });
        }
        Ok(MonthlyPlan { amounts })
    }

    /// The plan's total over the period.
    pub fn total(&self) -> f64 {
        self.amounts.iter().sum()
    }

    /// The planned amount for the month containing `day`, in the period starting `period_start`.
    pub fn for_month(&self, period_start: Day, day: Day) -> Option<f64> {
        let months = (day.year() - period_start.year()) * 12 + day.month() as i32
            - period_start.month() as i32;
        usize::try_from(months)
            .ok()
            .and_then(|i| self.amounts.get(i).copied())
    }
}

/// The current month of a planned budget against its planned amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanCheck {
    /// The month checked: the one containing the evaluation's day.
    pub month: DayRange,
    /// Its planned amount.
    pub planned: f64,
    /// Its reported spend so far.
    pub actual_to_date: f64,
    /// Its expected total.
    pub projected: f64,
    /// Lower bound of the 80% interval of its total.
    pub lo80: f64,
    /// Upper bound of the 80% interval of its total.
    pub hi80: f64,
    /// Probability the month's total exceeds its planned amount.
    pub p_over: f64,
}
