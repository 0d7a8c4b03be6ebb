//! Forecasts, the anomalies smoothed out of their fits, and how well models did in backtests.

use serde_json::{Value, json};

use super::{Report, money, rounded};
use crate::domain::{Accuracy, Anomaly, Day, SeriesForecast, SeriesShape};
use crate::forecast::backtest::Summary;

/// Anomalies, newest first.
pub fn anomalies(anomalies: &[Anomaly]) -> Report {
    Report::of(
        &["day", "series", "actual", "expected", "excess"],
        anomalies,
        |a| {
            vec![
                json!(a.day.to_string()),
                json!(a.series),
                money(a.actual),
                money(a.expected),
                money(a.actual - a.expected),
            ]
        },
    )
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

/// Backtest accuracy per series and model: the published accuracy.
pub fn accuracy(scores: &[Accuracy]) -> Report {
    Report::of(
        &[
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
        ],
        scores,
        |a| {
            vec![
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
            ]
        },
    )
}

/// Backtest accuracy summarised per model.
pub fn accuracy_summary(summaries: &[Summary]) -> Report {
    Report::of(
        &[
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
        ],
        summaries,
        |s| {
            vec![
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
            ]
        },
    )
}
