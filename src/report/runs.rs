//! Runs and their stages.

use serde_json::{Value, json};

use super::Report;
use crate::store::RunRecord;

/// Runs, newest first, one row per stage: when it started, how it ended, what it counted and
/// why it failed. A run with no stages (skipped, or failed before its first) gets one row.
pub fn runs(runs: &[RunRecord]) -> Report {
    let mut r = Report::new(&[
        "run",
        "job",
        "started_at",
        "finished_at",
        "outcome",
        "stage",
        "stage_started_at",
        "seconds",
        "stage_outcome",
        "counts",
        "error",
    ]);
    for run in runs {
        let head = [
            json!(run.id),
            json!(run.job),
            json!(run.started_at.to_rfc3339()),
            json!(run.finished_at.map(|t| t.to_rfc3339())),
            json!(run.outcome.as_str()),
        ];
        let stages = &run.detail.stages;
        if stages.is_empty() {
            let why = json!(run.detail.why_nothing_ran());
            r.rows.push(
                head.iter()
                    .cloned()
                    .chain(std::iter::repeat_n(Value::Null, 5))
                    .chain([why])
                    .collect(),
            );
            continue;
        }
        for stage in stages {
            let counts: Vec<String> = stage
                .counts
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let seconds = (stage.millis as f64 / 100.0).round() / 10.0;
            r.rows.push(
                head.iter()
                    .cloned()
                    .chain([
                        json!(stage.step.as_str()),
                        json!(stage.started_at),
                        json!(seconds),
                        json!(stage.outcome.as_str()),
                        json!(counts.join(" ")),
                        json!(stage.error),
                    ])
                    .collect(),
            );
        }
    }
    r
}
