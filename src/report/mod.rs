//! Rendering what the store holds for people (tables) and programs (CSV, JSON).

pub mod read;

use std::collections::BTreeMap;

use comfy_table::{Table as Grid, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};

use crate::domain::Accuracy;
use crate::domain::money::{format_amount, format_whole};
use crate::domain::{
    ActionRecord, Anomaly, Day, Dimension, Evaluation, PlannedChange, SeriesForecast, SeriesShape,
    UsageMetric, UsagePoint,
};
use crate::forecast::backtest::Summary;
use crate::store::{RunRecord, StoredSeries};

/// How a report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of objects.
    Json,
}

/// Rows of named cells; numbers stay numbers until rendered.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl Report {
    fn new(columns: &[&str]) -> Report {
        Report {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Renders in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Table => {
                let mut grid = Grid::new();
                grid.load_preset(UTF8_FULL_CONDENSED)
                    .set_header(&self.columns);
                for row in &self.rows {
                    grid.add_row(row.iter().map(cell_text));
                }
                format!("{grid}\n")
            }
            Format::Csv => {
                // Writing to memory fails only on an invalid UTF-8 cell, which a String cannot
                // hold.
                let mut out = csv::Writer::from_writer(Vec::new());
                out.write_record(&self.columns)
                    .expect("CSV written to memory");
                for row in &self.rows {
                    out.write_record(row.iter().map(|v| match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    }))
                    .expect("CSV written to memory");
                }
                let bytes = out.into_inner().expect("CSV flushed to memory");
                String::from_utf8(bytes).expect("CSV of Strings is UTF-8")
            }
            Format::Json => {
                let objects: Vec<Value> = self
                    .rows
                    .iter()
                    .map(|row| {
                        Value::Object(
                            self.columns
                                .iter()
                                .cloned()
                                .zip(row.iter().cloned())
                                .collect(),
                        )
                    })
                    .collect();
                let mut s = serde_json::to_string_pretty(&objects)
                    .expect("a serde_json::Value always serialises");
                s.push('\n');
                s
            }
        }
    }
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".to_string(),
        Value::Number(n) if n.is_f64() => format_amount(n.as_f64().unwrap_or_default()),
        other => other.to_string(),
    }
}

fn money(v: f64) -> Value {
    json!((v * 100.0).round() / 100.0)
}

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
        r.rows.push(row);
    }
    r
}

/// Planned changes with their outcome.
pub fn actions(changes: &[(PlannedChange, String)]) -> Report {
    let mut r = Report::new(&["budget", "step", "action", "mode", "outcome", "description"]);
    for (c, outcome) in changes {
        r.rows.push(vec![
            json!(c.budget),
            json!(c.step),
            json!(c.action.as_str()),
            json!(c.mode.as_str()),
            json!(outcome),
            json!(c.description),
        ]);
    }
    r
}

/// What was done to Kubernetes objects, one row per object and operation.
pub fn object_actions(records: &[ActionRecord]) -> Report {
    let mut r = Report::new(&[
        "budget",
        "step",
        "operation",
        "object",
        "outcome",
        "fields",
        "detail",
    ]);
    for a in records {
        r.rows.push(vec![
            json!(a.change.budget),
            json!(a.change.step),
            json!(a.operation.as_str()),
            json!(a.change.target.to_string()),
            json!(a.outcome.as_str()),
            json!(a.change.describe_fields()),
            json!(a.detail),
        ]);
    }
    r
}

/// Runs, newest first, one row per stage: when it started, how it ended, what it counted and
/// why it failed. A run with no stages (skipped, or failed before its first) gets one row.
pub fn runs(runs: &[RunRecord]) -> Report {
    let mut r = Report::new(&[
        "run",
        "job",
        "started_at",
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

/// Anomalies, newest first.
pub fn anomalies(anomalies: &[Anomaly]) -> Report {
    let mut r = Report::new(&["day", "series", "actual", "expected", "excess"]);
    for a in anomalies {
        r.rows.push(vec![
            json!(a.day.to_string()),
            json!(a.series),
            money(a.actual),
            money(a.expected),
            money(a.actual - a.expected),
        ]);
    }
    r
}

/// Forecasts: one row per series and day, optionally only days in `[from, to]`. The CLI's
/// `report forecasts --format csv|json` and the API's `/api/v1/forecasts?format=csv` both
/// render this.
pub fn forecasts(forecasts: &[SeriesForecast], from: Option<Day>, to: Option<Day>) -> Report {
    let mut r = Report::new(&[
        "series", "model", "day", "mean", "lo80", "hi80", "lo95", "hi95",
    ]);
    for f in forecasts {
        for p in &f.points {
            if from.is_some_and(|d| p.day < d) || to.is_some_and(|d| p.day > d) {
                continue;
            }
            r.rows.push(vec![
                json!(f.series),
                json!(f.model.as_str()),
                json!(p.day.to_string()),
                money(p.mean),
                money(p.lo80),
                money(p.hi80),
                money(p.lo95),
                money(p.hi95),
            ]);
        }
    }
    r
}

/// A summary of forecasts: one row per series with the horizon total.
pub fn forecast_totals(forecasts: &[SeriesForecast]) -> Report {
    let mut r = Report::new(&[
        "series",
        "model",
        "from",
        "to",
        "days",
        "total",
        "trend",
        "seasonality",
        "change",
        "note",
    ]);
    for f in forecasts {
        let (Some(first), Some(last)) = (f.points.first(), f.points.last()) else {
            continue;
        };
        let shape = &f.shape;
        r.rows.push(vec![
            json!(f.series),
            json!(f.model.as_str()),
            json!(first.day.to_string()),
            json!(last.day.to_string()),
            json!(f.points.len()),
            money(f.points.iter().map(|p| p.mean).sum()),
            match (shape.trend, shape.trend_percent_per_month) {
                (Some(class), Some(percent)) => {
                    json!(format!("{} ({percent:+.0}%/mo)", class.as_str()))
                }
                _ => Value::Null,
            },
            seasonality(shape).map_or(Value::Null, Value::String),
            shape.change.map_or(Value::Null, |c| json!(c.to_string())),
            f.note.as_ref().map(|n| json!(n)).unwrap_or(Value::Null),
        ]);
    }
    r
}

/// The seasonality a forecast found, in words: `weekly 0.85, monthly on 1/15, yearly 0.7`.
pub fn seasonality(shape: &SeriesShape) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(s) = shape.weekly {
        parts.push(format!("weekly {s:.2}"));
    }
    if !shape.month_days.is_empty() {
        parts.push(format!("monthly on {}", shape.month_days.join("/")));
    }
    parts.extend(shape.charges.iter().cloned());
    parts.extend(shape.events.iter().cloned());
    if let Some(s) = shape.yearly {
        parts.push(format!("yearly {s:.2}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Cost totals per group of `group_by` dimensions over the daily `costs`, largest first.
pub fn costs(series: &[StoredSeries], costs: &[(i64, Day, f64)], group_by: &[Dimension]) -> Report {
    let by_id: BTreeMap<i64, &StoredSeries> = series.iter().map(|s| (s.id, s)).collect();
    let mut totals: BTreeMap<(Vec<String>, String), (f64, Day, Day)> = BTreeMap::new();
    for (id, day, amount) in costs {
        let Some(s) = by_id.get(id) else { continue };
        let key: Vec<String> = group_by
            .iter()
            .map(|d| d.value_of(&s.dims).to_string())
            .collect();
        let entry = totals
            .entry((key, s.currency.as_str().to_string()))
            .or_insert((0.0, *day, *day));
        entry.0 += amount;
        entry.1 = entry.1.min(*day);
        entry.2 = entry.2.max(*day);
    }
    let mut columns: Vec<String> = group_by.iter().map(|d| d.to_string()).collect();
    columns.extend(["currency", "from", "to", "cost"].map(String::from));
    let mut rows: Vec<(f64, Vec<Value>)> = totals
        .into_iter()
        .map(|((key, currency), (total, first, last))| {
            let mut row: Vec<Value> = key.into_iter().map(Value::String).collect();
            row.extend([
                json!(currency),
                json!(first.to_string()),
                json!(last.to_string()),
                money(total),
            ]);
            (total, row)
        })
        .collect();
    rows.sort_by(|a, b| b.0.total_cmp(&a.0));
    Report {
        columns,
        rows: rows.into_iter().map(|(_, r)| r).collect(),
    }
}

/// Unit economics: per source and namespace, the counted units (e.g. requests), the cost of the
/// same days, and the cost per 1,000 units. `usage` pairs each point with its source.
pub fn unit_costs(
    usage: &[(String, UsagePoint)],
    series: &[StoredSeries],
    costs: &[(i64, Day, f64)],
) -> Report {
    let mut units: BTreeMap<(String, String, String), (f64, Vec<Day>)> = BTreeMap::new();
    for (source, u) in usage {
        if let UsageMetric::Units(name) = &u.metric {
            let entry = units
                .entry((source.clone(), u.namespace.clone(), name.clone()))
                .or_default();
            entry.0 += u.quantity;
            entry.1.push(u.day);
        }
    }
    let by_id: BTreeMap<i64, &StoredSeries> = series.iter().map(|s| (s.id, s)).collect();
    let mut r = Report::new(&[
        "source",
        "namespace",
        "unit",
        "units",
        "cost",
        "currency",
        "cost_per_1000",
    ]);
    for ((source, namespace, unit), (count, days)) in units {
        // Only the days that were counted, so a partial count never meets a full cost.
        let mut cost = 0.0;
        let mut currency = String::new();
        for (id, day, amount) in costs {
            let Some(s) = by_id.get(id) else { continue };
            if s.dims.source == source
                && s.dims.tags.get("namespace") == Some(&namespace)
                && days.contains(day)
            {
                cost += amount;
                currency = s.currency.as_str().to_string();
            }
        }
        let per_1000 = if count > 0.0 {
            json!((cost / count * 1000.0 * 10_000.0).round() / 10_000.0)
        } else {
            Value::Null
        };
        r.rows.push(vec![
            json!(source),
            json!(namespace),
            json!(unit),
            json!(count.round()),
            money(cost),
            json!(currency),
            per_1000,
        ]);
    }
    r
}

fn rounded(v: Option<f64>, places: i32) -> Value {
    let scale = 10f64.powi(places);
    v.map_or(Value::Null, |v| json!((v * scale).round() / scale))
}

/// Backtest accuracy per series and model: the published accuracy.
pub fn accuracy(scores: &[Accuracy]) -> Report {
    let mut r = Report::new(&[
        "series",
        "model",
        "windows",
        "horizon",
        "mape",
        "smape",
        "mase",
        "total_error_pct",
        "bias_pct",
        "coverage80",
        "coverage95",
    ]);
    for a in scores {
        r.rows.push(vec![
            json!(a.series),
            json!(a.model),
            json!(a.windows),
            json!(a.horizon),
            rounded(a.mape, 2),
            rounded(a.smape, 2),
            rounded(a.mase, 3),
            rounded(a.total_error, 2),
            rounded(a.bias, 2),
            rounded(Some(a.coverage80), 3),
            rounded(Some(a.coverage95), 3),
        ]);
    }
    r
}

/// Backtest accuracy summarised per model.
pub fn accuracy_summary(summaries: &[Summary]) -> Report {
    let mut r = Report::new(&[
        "model",
        "series",
        "MASE mean",
        "MASE median",
        "sMAPE median %",
        "total err median %",
        "total err p90 %",
        "bias median %",
        "80% coverage",
        "95% coverage",
    ]);
    for s in summaries {
        r.rows.push(vec![
            json!(s.model),
            json!(s.series),
            rounded(s.mase_mean, 3),
            rounded(s.mase_median, 3),
            rounded(s.smape_median, 2),
            rounded(s.total_error_median, 2),
            rounded(s.total_error_p90, 2),
            rounded(s.bias_median, 2),
            rounded(s.coverage80, 3),
            rounded(s.coverage95, 3),
        ]);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_and_json_keep_numbers_and_table_groups_thousands() {
        let mut r = Report::new(&["name", "cost"]);
        r.rows.push(vec![json!("a,b"), money(12345.678)]);
        assert_eq!(r.render(Format::Csv), "name,cost\n\"a,b\",12345.68\n");
        assert!(r.render(Format::Json).contains("\"cost\": 12345.68"));
        assert!(r.render(Format::Table).contains("12,345.68"));
    }
}
