//! Run records: how a run ended and what each of its stages did. The pipeline writes them and
//! every reader (reports, the API, `/metrics`) reads the same types back.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Day;

/// One stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Step {
    /// Read sources into the store.
    Ingest,
    /// Forecast every target series.
    Forecast,
    /// Evaluate budgets.
    Budgets,
    /// Plan (and in enforce mode apply) changes.
    Act,
    /// Send alerts.
    Notify,
    /// Score every model by rolling-origin backtest of the store's series (weekly).
    Backtest,
    /// Put back what costcast holds changed (`act restore`, or one object through the API).
    Restore,
    /// Delete run history older than `[retention]` keeps (daily).
    Prune,
}

impl Step {
    /// The daily pipeline's steps, in order.
    pub const ALL: [Step; 5] = [
        Step::Ingest,
        Step::Forecast,
        Step::Budgets,
        Step::Act,
        Step::Notify,
    ];

    /// The word job files and run records use.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a run ended, or that it has not yet.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum RunOutcome {
    /// Started and not finished: in progress, or its process died.
    Running,
    /// Every stage succeeded.
    Ok,
    /// A stage failed; the detail names it.
    Failed,
    /// Every stage ran, but some sources could not be read; the detail names them.
    Partial,
    /// Stopped by a shutdown before its last stage; the next run picks up.
    Interrupted,
    /// Not started, because the previous run was still going.
    Skipped,
}

impl RunOutcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The outcome a stored word names.
    pub fn parse(word: &str) -> Option<RunOutcome> {
        word.parse().ok()
    }

    /// `Ok` when `ok`, else `Failed`.
    pub fn of(ok: bool) -> RunOutcome {
        match ok {
            true => RunOutcome::Ok,
            false => RunOutcome::Failed,
        }
    }
}

impl fmt::Display for RunOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one stage ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum StageOutcome {
    /// It did its work.
    Ok,
    /// It failed; the report's `error` says why.
    Failed,
    /// It did its work on some of its inputs; the report's `error` says which failed and why.
    Partial,
    /// A shutdown stopped it; what it had not committed was rolled back.
    Interrupted,
}

impl StageOutcome {
    /// The stored word.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// What one stage did, as recorded in the run's detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageReport {
    /// The stage.
    pub step: Step,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// Wall time in milliseconds.
    pub millis: u64,
    /// How it ended.
    pub outcome: StageOutcome,
    /// Counts, by name.
    pub counts: BTreeMap<String, u64>,
    /// The error, if it failed.
    pub error: Option<String>,
}

/// The step a run stopped before, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoppedBefore {
    /// The step that did not start.
    pub step: Step,
    /// Why.
    pub reason: String,
}

/// A source a run could not read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceFailure {
    /// The source's name.
    pub source: String,
    /// Why, as the ingest error said it, naming the source.
    pub error: String,
}

impl SourceFailure {
    /// `source` failed with `error`; the error is prefixed with the source's name unless it
    /// begins with it.
    pub fn new(source: &str, error: String) -> SourceFailure {
        let named = format!("source {source}");
        SourceFailure {
            source: source.to_string(),
            error: match error.starts_with(&named) {
                true => error,
                false => format!("{named}: {error}"),
            },
        }
    }
}

impl fmt::Display for SourceFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.error)
    }
}

/// What a run did, stored with it. Every field is optional so that each kind of run (a
/// pipeline run, a restore, a skipped tick) records what it has, and older records still read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    /// The day the run evaluated as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<Day>,
    /// Its stages, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageReport>,
    /// Sources it could not read; every stage ran on the others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_sources: Vec<SourceFailure>,
    /// The step a shutdown stopped it before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_before: Option<StoppedBefore>,
    /// Why it was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// Objects a restore put back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<u64>,
    /// The budget a restore was for (none: every budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<String>,
    /// The object a restore through the API was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// Why a run with no stages failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl RunDetail {
    /// Why a run with no stages did nothing: it was skipped, or stopped before its first step.
    pub fn why_nothing_ran(&self) -> Option<&str> {
        self.skipped
            .as_deref()
            .or(self.stopped_before.as_ref().map(|s| s.reason.as_str()))
    }
}

/// A run as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// Run id.
    pub id: i64,
    /// The job or command that ran.
    pub job: String,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// End time, if finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// What it did.
    pub detail: RunDetail,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_detail_written_before_run_records_were_typed_still_reads() {
        let old = r#"{"as_of":"2025-06-10","stages":[{"step":"ingest","started_at":"2025-06-10T06:30:00Z",
            "finished_at":"2025-06-10T06:30:01Z","millis":800,"outcome":"ok","counts":{"points":3},
            "error":null}],"stopped_before":{"step":"forecast","reason":"shutdown"}}"#;
        let detail: RunDetail = serde_json::from_str(old).unwrap();
        assert_eq!(detail.stages[0].outcome, StageOutcome::Ok);
        assert_eq!(detail.stages[0].counts["points"], 3);
        assert_eq!(detail.why_nothing_ran(), Some("shutdown"));
        let restore: RunDetail =
            serde_json::from_str(r#"{"restored": 2, "budget": null, "backtested": 4}"#).unwrap();
        assert_eq!(restore.restored, Some(2));
        assert_eq!(
            RunOutcome::parse("interrupted"),
            Some(RunOutcome::Interrupted)
        );
        assert_eq!(RunOutcome::parse("done"), None);
    }
}
