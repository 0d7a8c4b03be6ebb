//! Budgets and what acting on them did: where each stands, the ladder steps planned, and the
//! changes made to objects.

use serde_json::{Value, json};

use super::{Report, money, rounded};
use crate::domain::money::format_whole;
use crate::domain::{ActionRecord, Evaluation, PlanOutcome, PlannedChange};
use crate::store::LoggedAction;

/// Budgets: spend to date, projection with its 80% interval, P(breach), status and ladder step.
/// The CLI's `report budgets --format csv|json` and the API's `/api/v1/budgets?format=csv` both
/// render this.
pub fn budgets(evaluations: &[Evaluation]) -> Report {
    let mut r = Report::new(&[
        "budget",
        "period",
        "amount",
        "currency",
        "spent_to_date",
        "reported_through",
        "projected",
        "projected_lo80",
        "projected_hi80",
        "p_breach",
        "status",
        "mode",
        "steps",
        "forecast_error_pct",
        "month_planned",
        "month_projected",
        "p_over_plan",
    ]);
    for e in evaluations {
        let p = &e.projection;
        let plan = e.plan.as_ref();
        r.rows.push(vec![
            json!(e.budget),
            json!(p.period.to_string()),
            money(e.amount.amount),
            json!(e.amount.currency.as_str()),
            money(p.actual_to_date),
            p.reported_through
                .map(|d| json!(d.to_string()))
                .unwrap_or(Value::Null),
            money(p.mean),
            money(p.lo80),
            money(p.hi80),
            json!((p.p_breach * 1000.0).round() / 1000.0),
            json!(e.status.as_str()),
            json!(e.mode.as_str()),
            json!(e.steps),
            rounded(e.forecast_error, 2),
            plan.map_or(Value::Null, |c| money(c.planned)),
            plan.map_or(Value::Null, |c| money(c.projected)),
            plan.map_or(Value::Null, |c| json!((c.p_over * 1000.0).round() / 1000.0)),
        ]);
    }
    r
}

/// Budgets for a terminal: one readable line each, amounts with their currency.
pub fn budgets_summary(evaluations: &[Evaluation]) -> Report {
    let mut r = Report::new(&[
        "budget",
        "period to date",
        "projected",
        "80% interval",
        "budget",
        "P(breach)",
        "status",
        "backtest error",
    ]);
    // Only budgets with a monthly plan have a month to show; the column is left out otherwise.
    let planned = evaluations.iter().any(|e| e.plan.is_some());
    if planned {
        r.columns.push("this month vs plan".into());
    }
    // Likewise the sources behind, for budgets resting on data that did not refresh.
    let behind = evaluations.iter().any(|e| !e.lagging.is_empty());
    if behind {
        r.columns.push("data behind".into());
    }
    for e in evaluations {
        let p = &e.projection;
        let cur = e.amount.currency.as_str();
        let whole = |v: f64| format!("{} {cur}", format_whole(v));
        let mut row = vec![
            json!(e.budget),
            json!(whole(p.actual_to_date)),
            json!(whole(p.mean)),
            json!(format!("{} – {}", format_whole(p.lo80), whole(p.hi80))),
            json!(whole(e.amount.amount)),
            json!(format!("{:.0}%", p.p_breach * 100.0)),
            json!(match e.steps {
                0 => e.status.as_str().to_uppercase(),
                n => format!("{} · step {n}", e.status.as_str().to_uppercase()),
            }),
            // The forecast's own track record on this scope: 30-day totals missed by this much.
            e.forecast_error
                .map_or(json!("not yet"), |err| json!(format!("±{err:.1}%"))),
        ];
        if planned {
            row.push(e.plan.as_ref().map_or(json!(""), |c| {
                json!(format!(
                    "{} of {} planned · {:.0}% likely over",
                    format_whole(c.projected),
                    whole(c.planned),
                    c.p_over * 100.0
                ))
            }));
        }
        if behind {
            let sources: Vec<String> = e
                .lagging
                .iter()
                .map(|l| {
                    let day = l.newest_day.map_or("none".to_string(), |d| d.to_string());
                    let held = if l.stale { ", ladder held" } else { "" };
                    format!("{} (newest {day}{held})", l.source)
                })
                .collect();
            row.push(json!(sources.join("; ")));
        }
        r.rows.push(row);
    }
    r
}

/// Planned changes with their outcome.
pub fn actions(changes: &[(PlannedChange, PlanOutcome)]) -> Report {
    Report::of(
        &["budget", "step", "action", "mode", "outcome", "description"],
        changes,
        |(c, outcome)| {
            vec![
                json!(c.budget),
                json!(c.step),
                json!(c.action.as_str()),
                json!(c.mode.as_str()),
                json!(outcome.as_str()),
                json!(c.description),
            ]
        },
    )
}

/// What was done to Kubernetes objects, one row per object and operation.
pub fn object_actions(records: &[ActionRecord]) -> Report {
    Report::of(
        &[
            "budget",
            "step",
            "operation",
            "object",
            "outcome",
            "fields",
            "detail",
        ],
        records,
        |a| {
            vec![
                json!(a.change.budget),
                json!(a.change.step),
                json!(a.operation.as_str()),
                json!(a.change.target.to_string()),
                json!(a.outcome.as_str()),
                json!(a.change.describe_fields()),
                json!(a.detail),
            ]
        },
    )
}

/// The action log, newest first: every change costcast made, planned or restored. The API's
/// `/api/v1/actions?format=csv` renders this.
pub fn action_log(entries: &[LoggedAction]) -> Report {
    let mut r = Report::new(&[
        "id",
        "at",
        "budget",
        "step",
        "operation",
        "kind",
        "namespace",
        "name",
        "outcome",
        "description",
        "detail",
    ]);
    for a in entries {
        let c = &a.record.change;
        r.rows.push(vec![
            json!(a.id),
            json!(a.at.to_rfc3339()),
            json!(c.budget),
            json!(c.step),
            json!(a.record.operation.as_str()),
            json!(c.target.kind.as_str()),
            json!(c.target.namespace),
            json!(c.target.name),
            json!(a.record.outcome.as_str()),
            json!(a.record.describe()),
            json!(a.record.detail),
        ]);
    }
    r
}

/// What drives a budget: each series' projected total this period against the last, largest
/// rise first; empty before the budget's first evaluation.
pub fn drivers(evaluation: Option<&Evaluation>) -> Report {
    let mut r = Report::new(&["series", "projected", "previous", "rise"]);
    for d in evaluation.iter().flat_map(|e| &e.drivers) {
        r.rows.push(vec![
            json!(d.series),
            money(d.projected),
            money(d.previous),
            money(d.rise()),
        ]);
    }
    r
}
