//! Sources: each reads the outside world and returns domain points. None touches the store;
//! what a source needs to know about stored data (its last day, the billed amount it splits)
//! the pipeline hands it in [`FetchInputs`].

pub mod aws;
pub mod cur;
pub mod export;
pub mod focus;
pub mod prometheus;
pub mod rollup;

use std::path::PathBuf;

use crate::config::{Source, SourceKind};
use crate::domain::{CostPoint, Day, DayRange, DaySpans, Money, UsagePoint};

/// Why a source could not be read. Every variant names the source or file, and where it can,
/// the line, field or column.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A path or glob matched no file.
    #[error("{pattern}: no file matches")]
    NoFiles {
        /// The path or glob.
        pattern: String,
    },
    /// The file could not be opened or parsed as CSV/Parquet at all.
    #[error("{file}: {message}")]
    Unreadable {
        /// The file.
        file: PathBuf,
        /// The reader's message.
        message: String,
    },
    /// A mandatory column is absent.
    #[error("{file}: missing mandatory column {column}")]
    MissingColumn {
        /// The file.
        file: PathBuf,
        /// The missing column.
        column: String,
    },
    /// A cell holds a value costcast cannot use.
    #[error("{file} {location}, column {column}: {problem}")]
    BadValue {
        /// The file.
        file: PathBuf,
        /// `line N` for CSV (the header is line 1), `row N` for Parquet.
        location: String,
        /// The column.
        column: String,
        /// What is wrong, quoting the value.
        problem: String,
    },
    /// An API failed after retries, or answered something it does not document.
    #[error("source {source_name}: {message}")]
    Api {
        /// The configured source.
        source_name: String,
        /// What went wrong, naming the request or response field.
        message: String,
    },
    /// A source's settings cannot be used with what is stored.
    #[error("source {source_name}: {message}")]
    Setup {
        /// The configured source.
        source_name: String,
        /// What is missing.
        message: String,
    },
}

/// What one source produced.
#[derive(Debug)]
pub struct Batch {
    /// The source's name.
    pub source: String,
    /// The files read (file sources only).
    pub files: Vec<PathBuf>,
    /// Daily cost points, one per day and series.
    pub points: Vec<CostPoint>,
    /// Daily usage points (Prometheus only).
    pub usage: Vec<UsagePoint>,
    /// Raw rows read (file rows, API result rows or samples).
    pub rows_read: u64,
    /// The days fetched; stored data of this source on these days is replaced.
    pub covered: Option<DaySpans>,
    /// API requests made (each Cost Explorer request is billed).
    pub requests: u32,
    /// Days the source still marks as estimated: re-fetched on later runs until final.
    pub estimated: Vec<Day>,
}

impl Batch {
    /// A batch with nothing in it.
    pub fn empty(source: &str) -> Batch {
        Batch {
            source: source.to_string(),
            files: Vec::new(),
            points: Vec::new(),
            usage: Vec::new(),
            rows_read: 0,
            covered: None,
            requests: 0,
            estimated: Vec::new(),
        }
    }
}

/// What the store knows about a source, for incremental fetching.
#[derive(Debug, Clone, Default)]
pub struct SourceHistory {
    /// The newest stored day, if any.
    pub last_day: Option<Day>,
    /// Stored days the source marked as estimated.
    pub estimated: Vec<Day>,
}

/// What a source may need besides its settings.
#[derive(Debug, Clone)]
pub struct FetchInputs {
    /// Today (UTC), for incremental windows.
    pub today: Day,
    /// The source's stored history.
    pub history: SourceHistory,
    /// Daily billed amounts a usage source splits (Prometheus allocation), in the fetch range.
    pub billed: Vec<(Day, Money)>,
}

/// Reads one configured source, keeping days inside `range` when given.
pub async fn fetch(
    source: &Source,
    inputs: &FetchInputs,
    range: Option<DayRange>,
    http: &reqwest::Client,
) -> Result<Batch, IngestError> {
    let name = source.name.clone();
    let in_background = |f: Box<dyn FnOnce() -> Result<Batch, IngestError> + Send>| async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| IngestError::Api {
                source_name: name,
                message: format!("reader task failed: {e}"),
            })?
    };
    match &source.kind {
        SourceKind::Focus(settings) => {
            let (name, settings) = (source.name.clone(), settings.clone());
            in_background(Box::new(move || focus::fetch(&name, &settings, range))).await
        }
        SourceKind::Cur(settings) => {
            let (name, settings) = (source.name.clone(), settings.clone());
            in_background(Box::new(move || cur::fetch(&name, &settings, range))).await
        }
        SourceKind::CostExplorer(settings) => {
            aws::fetch(&source.name, settings, inputs, range).await
        }
        SourceKind::Prometheus(settings) => {
            prometheus::fetch(&source.name, settings, inputs, range, http).await
        }
    }
}
