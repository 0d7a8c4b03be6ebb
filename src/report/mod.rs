//! Rendering what the store holds for people (tables) and programs (CSV, JSON).

pub mod budgets;
pub mod costs;
pub mod cube;
pub mod forecasts;
pub mod read;
pub mod runs;

use comfy_table::{Table as Grid, presets::UTF8_FULL_CONDENSED};
use serde_json::{Value, json};

use crate::domain::money::format_amount;
pub use budgets::{action_log, actions, budgets, budgets_summary, drivers, object_actions};
pub use costs::{cost_periods, costs, unit_costs};
pub use forecasts::{
    accuracy, accuracy_summary, anomalies, forecast_totals, forecasts, seasonality,
};
pub use runs::runs;

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
    pub(crate) fn new(columns: &[&str]) -> Report {
        Report {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// A report of `columns` with one row per item, as `row` writes it.
    pub(crate) fn of<T>(columns: &[&str], items: &[T], row: impl Fn(&T) -> Vec<Value>) -> Report {
        Report {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows: items.iter().map(row).collect(),
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

/// An amount rounded to the cent.
pub(crate) fn money(v: f64) -> Value {
    json!((v * 100.0).round() / 100.0)
}

/// `v` rounded to `places` decimals; null when absent.
pub(crate) fn rounded(v: Option<f64>, places: i32) -> Value {
    let scale = 10f64.powi(places);
    v.map_or(Value::Null, |v| json!((v * scale).round() / scale))
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
