//! Parsed, valid-by-construction values that every stage speaks in.
//!
//! Nothing here knows about SQL, polars, HTTP or Kubernetes: these types are the contract between
//! stages, so a value that exists has already been checked at the edge where it came in.

mod action;
mod budget;
mod day;
#[cfg(test)]
pub(crate) use day::d;
mod dimensions;
mod forecast;
mod freshness;
mod holidays;
pub mod money;
mod plan;
mod run;
mod usage;

pub use action::{
    ActionRecord, FieldChange, ObjectChange, ObjectKind, ObjectRef, Operation, Outcome,
};
pub use budget::{
    ActionKind, ActionRule, AlertMark, Budget, BudgetMode, BudgetState, CapLimit, Driver, Engaged,
    Evaluation, Period, PlanOutcome, PlannedChange, Projection, Status, Thresholds,
};
pub use day::{Day, DayRange, DaySpans};
pub use dimensions::{CostPoint, Dimension, Dimensions, Scope};
pub use forecast::{
    Accuracy, Anomaly, DailyForecast, LevelChange, ModelChoice, ModelKind, SeriesForecast,
    SeriesShape, TrendClass,
};
pub use freshness::LaggingSource;
pub use holidays::{Builtin, Event, Holiday, HolidayCalendar, Holidays};
pub use money::{Currency, Money};
pub use plan::{MonthlyPlan, PlanCheck, PlanError};
pub use run::{
    RunDetail, RunOutcome, RunRecord, SourceFailure, StageOutcome, StageReport, Step, StoppedBefore,
};
pub use usage::{UsageMetric, UsagePoint};

/// A value that failed to parse into a domain type; the caller adds where it came from.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A calendar day that is not `YYYY-MM-DD`.
    #[error("{0:?} is not a date (expected YYYY-MM-DD)")]
    BadDay(String),
    /// A currency code that is not three ASCII letters.
    #[error("{0:?} is not an ISO 4217 currency code")]
    BadCurrency(String),
    /// A dimension name costcast does not store.
    #[error("unknown dimension {0:?}")]
    BadDimension(String),
    /// A range whose end is before its start.
    #[error("range ends ({end}) before it starts ({start})")]
    EmptyRange {
        /// First day of the range.
        start: Day,
        /// Last day of the range.
        end: Day,
    },
}
