//! `costcast forecast --input`: forecasting a long CSV (`series_id,date,value`) with no
//! database, for trying the forecaster on your own series.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::domain::Day;
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

/// Reads `input`, forecasts each series `horizon` days past its last date, writes the
/// forecast CSV to `output`; returns the number of series forecast.
pub fn run(input: &Path, horizon: usize, output: &mut dyn Write) -> Result<usize, StandaloneError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StandaloneError::Io { path, source }
    };
    let mut text = String::new();
    std::fs::File::open(input)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(io(input))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let bad = |line: u64, message: String| StandaloneError::BadLine {
        path: input.to_path_buf(),
        line,
        message,
    };
    let headers = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
    let position = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            bad(
                1,
                format!("missing column {name} (need series_id,date,value)"),
            )
        })
    };
    let (id_col, date_col, value_col) = (
        position("series_id")?,
        position("date")?,
        position("value")?,
    );

    let mut series: BTreeMap<String, Vec<(Day, f64)>> = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.map_err(|e| bad(line, e.to_string()))?;
        let field = |c: usize| record.get(c).unwrap_or("");
        let day =
            Day::parse(field(date_col)).map_err(|e| bad(line, format!("column date: {e}")))?;
        let value: f64 = field(value_col).parse().map_err(|_| {
            bad(
                line,
                format!("column value: {:?} is not a number", field(value_col)),
            )
        })?;
        series
            .entry(field(id_col).to_string())
            .or_default()
            .push((day, value));
    }

    let mut writer = csv::Writer::from_writer(output);
    let write_err = |e: csv::Error| StandaloneError::Io {
        path: PathBuf::from("output"),
        source: std::io::Error::other(e),
    };
    writer
        .write_record(["series_id", "date", "mean", "lo80", "hi80", "lo95", "hi95"])
        .map_err(write_err)?;
    let mut count = 0;
    for (id, points) in series {
        let Some(end) = points.iter().map(|p| p.0).max() else {
            continue;
        };
        let target = Target {
            name: id.clone(),
            usage: points,
            recurring: Vec::new(),
        };
        let Some((f, _)) = forecast::forecast_target(&target, end, horizon) else {
            continue;
        };
        for p in f.points {
            let n = |v: f64| format!("{v:.4}");
            writer
                .write_record([
                    id.clone(),
                    p.day.to_string(),
                    n(p.mean),
                    n(p.lo80),
                    n(p.hi80),
                    n(p.lo95),
                    n(p.hi95),
                ])
                .map_err(write_err)?;
        }
        count += 1;
    }
    writer.flush().map_err(|e| StandaloneError::Io {
        path: PathBuf::from("output"),
        source: e,
    })?;
    Ok(count)
}
