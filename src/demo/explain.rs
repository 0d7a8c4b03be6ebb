//! What `costcast demo` tells a newcomer once the demo run is done: what was ingested, where
//! each budget stands, what its ladder would do, and the commands to try next.

use crate::config::Config;
use crate::domain::Status;
use crate::domain::money::format_amount;
use crate::pipeline::RunReport;
use crate::report::{self, Format};
use crate::store::CostSummary;

use super::DemoFiles;

/// What the explanation is about.
pub struct DemoRun<'a> {
    /// The day the demo was run as of.
    pub as_of: crate::domain::Day,
    /// What the store holds after the run.
    pub summary: &'a CostSummary,
    /// What the run did.
    pub report: &'a RunReport,
    /// The demo's config.
    pub config: &'a Config,
    /// The files the demo wrote.
    pub files: &'a DemoFiles,
}

/// The explanation, ending with "Where to look next": commands that start with `invoked_as`
/// and read `config_shown` (the config's path as the user should type it).
pub fn explanation(run: &DemoRun<'_>, invoked_as: &str, config_shown: &str) -> String {
    let mut out = String::new();
    let summary = run.summary;
    let day = |d: Option<crate::domain::Day>| d.map(|d| d.to_string()).unwrap_or_default();
    out.push_str(&format!(
        "\ncostcast demo — Northwind Analytics, as of {}\n\n",
        run.as_of
    ));
    out.push_str(&format!(
        "Ingested {} daily cost points in {} series ({} to {}), total {} USD.\n\n",
        summary.points,
        summary.series,
        day(summary.first_day),
        day(summary.last_day),
        format_amount(summary.total),
    ));
    out.push_str(&budgets(run));
    out.push_str(&ladders(run));
    if let Some(alert) = &run.report.alert {
        out.push_str(&format!(
            "Slack message that would be sent (no webhook configured):\n{}\n\n",
            serde_json::to_string_pretty(alert).expect("a serde_json::Value always serialises")
        ));
    }
    out.push_str(&next_steps(run, invoked_as, config_shown));
    out
}

fn budgets(run: &DemoRun<'_>) -> String {
    let evaluations = &run.report.evaluations;
    let breaches = evaluations
        .iter()
        .filter(|e| e.status == Status::Breach)
        .count();
    format!(
        "Budgets this month (projected = spend to date + forecast for the remaining days):\n{}\
         {breaches} of {} budgets predicted to breach. \"Backtest error\" is how far this \
         forecast missed 30-day totals of the same scope, held out from its own history.\n\n",
        report::budgets_summary(evaluations).render(Format::Table),
        evaluations.len()
    )
}

/// Each budget with steps in effect, and what every step of its ladder does.
fn ladders(run: &DemoRun<'_>) -> String {
    let mut out = String::new();
    for e in run.report.evaluations.iter().filter(|e| e.steps > 0) {
        let Some(budget) = run.config.budgets.iter().find(|b| b.name == e.budget) else {
            continue;
        };
        out.push_str(&format!(
            "{}: step {} of its {}-step action ladder is in effect ({} mode: described, not applied).\n",
            e.budget,
            e.steps,
            budget.actions.len(),
            budget.mode.as_str()
        ));
        for c in crate::act::ladder(budget, budget.actions.len() as u32) {
            let when = match c.step <= e.steps {
                true => "in effect",
                false => "if the breach persists",
            };
            out.push_str(&format!("  step {} ({when}): {}\n", c.step, c.description));
        }
        out.push('\n');
    }
    out
}

fn next_steps(run: &DemoRun<'_>, me: &str, cfg: &str) -> String {
    let files = run.files;
    let mut out = format!(
        "Where to look next:\n  database     {}\n  export       {}\n  config       {cfg}\n",
        files.database.display(),
        files.export.display()
    );
    for next in [
        "report budgets",
        "report forecasts",
        "report anomalies",
        "report accuracy   (backtest of every forecast series)",
        "backtest          (every model side by side)",
        "report costs --group-by team,service",
        "run --job daily   (the scheduled pipeline, from jobs/daily.toml)",
    ] {
        out.push_str(&format!("  {me} --config {cfg} {next}\n"));
    }
    out
}
