//! `costcast forecast --input` and `costcast backtest --input`: forecasting a long CSV (`series_id,date,value`) with no
//! database, for trying the forecaster on your own series.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::domain::{Day, ModelChoice, SeriesForecast};
use crate::forecast::prepare::DailySeries;
use crate::forecast::{self, Target};

/// A problem with the input or output file.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line could not be used.
    #[error("{path} line {line}: {message}")]
    BadLine {
        /// The file.
        path: PathBuf,
        /// The line, header = 1.
        line: u64,
        /// What is wrong.
        message: String,
    },
}

/// Series read from a long CSV: name and dense daily values (missing days are zero spend).
pub type Series = Vec<(String, DailySeries)>;

/// Reads a long CSV `series_id,date,value` (`cost` is accepted for `value`).
pub fn read_series(input: &Path) -> Result<Series, StandaloneError> {
    let mut text = String::new();
    std::fs::File::open(input)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|source| StandaloneError::Io {
            path: input.to_path_buf(),
            source,
        })?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let bad = |line: u64, message: String| StandaloneError::BadLine {
        path: input.to_path_buf(),
        line,
        message,
    };
    let headers = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let position = |names: &[&str]| {
        headers
            .iter()
            .position(|h| names.contains(&h))
            .ok_or_else(|| {
                bad(
                    1,
                    format!("missing column {} (need series_id,date,value)", names[0]),
                )
            })
    };
    let (id_col, date_col, value_col) = (
        position(&["series_id"])?,
        position(&["date"])?,
        position(&["value", "cost"])?,
    );
    let value_name = &headers[value_col];

    let mut points: BTreeMap<String, Vec<(Day, f64)>> = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| bad(line, e.to_string()))?;
        let field = |c: usize| record.get(c).unwrap_or("");
        let day =
            Day::parse(field(date_col)).map_err(|e| bad(line, format!("column date: {e}")))?;
        let value: f64 = field(value_col)
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite())
            .ok_or_else(|| {
                bad(
                    line,
                    format!(
                        "column {value_name}: {:?} is not a number",
                        field(value_col)
                    ),
                )
            })?;
        points
            .entry(field(id_col).to_string())
            .or_default()
            .push((day, value));
    }
    Ok(points
        .into_iter()
        .filter_map(|(id, p)| {
            let end = p.iter().map(|(d, _)| *d).max()?;
            DailySeries::from_points(&p, end).map(|s| (id, s))
        })
        .collect())
}

/// What `forecast` did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecasted {
    /// Series forecast.
    pub series: usize,
    /// Seconds spent fitting and forecasting (not reading or writing).
    pub fit_seconds: f64,
}

/// Each series as a forecast target ending on its last day: no recurring charges or holidays
/// beyond what its own history shows.
pub fn targets(series: &Series) -> Vec<(Target, Day)> {
    series
        .iter()
        .filter_map(|(id, s)| {
            let last = s.values.len().checked_sub(1)?;
            let target = Target::plain(id.clone(), s.points());
            Some((target, s.day(last)))
        })
        .collect()
}

/// Forecasts each series `horizon` days past its last date with `choice` and writes the
/// forecast CSV to `output`. With `backtest_windows` > 0 each forecast's level error is pooled
/// with the 30-day totals that many windows of its own history missed, as a forecast run does.
pub fn forecast(
    series: &Series,
    horizon: usize,
    choice: ModelChoice,
    backtest_windows: usize,
    output: &mut dyn Write,
) -> Result<Forecasted, StandaloneError> {
    let started = std::time::Instant::now();
    let targets = targets(series);
    let mut forecasts: Vec<SeriesForecast> = targets
        .par_iter()
        .filter_map(|(target, end)| {
            forecast::forecast_target(target, *end, horizon, choice).map(|(f, _)| f)
        })
        .collect();
    forecast::calibrate_by_backtest(&targets, &mut forecasts, choice, backtest_windows);
    let fit_seconds = started.elapsed().as_secs_f64();
    let mut writer = csv::Writer::from_writer(output);
    let write_err = |e: csv::Error| StandaloneError::Io {
        path: PathBuf::from("output"),
        source: std::io::Error::other(e),
    };
    writer
        .write_record([
            "series_id",
            "date",
            "mean",
            "lo80",
            "hi80",
            "lo95",
            "hi95",
            "sd_level",
            "sd_noise",
            "change_day",
            "change_percent",
        ])
        .map_err(write_err)?;
    for f in &forecasts {
        // The recent change, repeated on each day as the series' other fields would be.
        let (change_day, change_percent) = match &f.shape.change {
            Some(c) => (c.day.to_string(), format!("{:.1}", c.percent)),
            None => (String::new(), String::new()),
        };
        for p in &f.points {
            let n = |v: f64| format!("{v:.4}");
            writer
                .write_record([
                    f.series.clone(),
                    p.day.to_string(),
                    n(p.mean),
                    n(p.lo80),
                    n(p.hi80),
                    n(p.lo95),
                    n(p.hi95),
                    n(p.sd_level),
                    n(p.sd_noise),
                    change_day.clone(),
                    change_percent.clone(),
                ])
                .map_err(write_err)?;
        }
    }
    writer.flush().map_err(|e| StandaloneError::Io {
        path: PathBuf::from("output"),
        source: e,
    })?;
    Ok(Forecasted {
        series: forecasts.len(),
        fit_seconds,
    })
}
