//! What a finished run prints: its summary line on stderr, its tables on stdout.

use crate::domain::PlanOutcome;
use crate::pipeline::RunReport;
use crate::report::{self, Format};

/// One line: what the run did, in counts.
pub fn summary_line(report: &RunReport, secs: f64) -> String {
    let parts: Vec<String> = report
        .stages
        .iter()
        .map(|s| {
            let counts: Vec<String> = s.counts.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{} ({})", s.step, counts.join(" "))
        })
        .collect();
    let without = match report.failed_sources.len() {
        0 => String::new(),
        n => format!(" without {n} failed source(s)"),
    };
    format!(
        "Run {} finished{without} in {secs:.1} s: {}.",
        report.run_id,
        parts.join(", ")
    )
}

/// The run's budgets, planned changes, object actions and alert, each as a table.
pub fn run(report: &RunReport) {
    if !report.evaluations.is_empty() {
        print!(
            "{}",
            report::budgets_summary(&report.evaluations).render(Format::Table)
        );
    }
    if !report.changes.is_empty() {
        let with_outcome: Vec<_> = report
            .changes
            .iter()
            .map(|c| (c.clone(), PlanOutcome::Planned))
            .collect();
        print!("{}", report::actions(&with_outcome).render(Format::Table));
    }
    if !report.actions.is_empty() {
        print!(
            "{}",
            report::object_actions(&report.actions).render(Format::Table)
        );
    }
    if let (Some(alert), Some(outcome)) = (&report.alert, &report.alert_outcome) {
        println!("Slack message ({outcome}):\n{}", pretty(alert));
    }
}

/// A JSON value indented for a person.
pub fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).expect("a serde_json::Value always serialises")
}
