//! Sources: each reads the outside world and returns domain cost points. None touches the store.

pub mod focus;

use std::path::PathBuf;

use crate::config::{Source, SourceKind};
use crate::domain::{CostPoint, DayRange};

/// Why a source could not be read. Every variant names the file, and where it can, the line and
/// column.
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
    /// A mandatory FOCUS column is absent.
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
}

/// What one source produced: its points and the days they cover.
#[derive(Debug)]
pub struct Batch {
    /// The source's name.
    pub source: String,
    /// The files read.
    pub files: Vec<PathBuf>,
    /// Daily points, one per day and series.
    pub points: Vec<CostPoint>,
    /// Raw rows read from the files.
    pub rows_read: u64,
    /// The days the files cover; stored data of this source in this range is replaced.
    pub covered: Option<DayRange>,
}

/// Reads one configured source, keeping days inside `range` when given.
pub fn fetch(source: &Source, range: Option<DayRange>) -> Result<Batch, IngestError> {
    match &source.kind {
        SourceKind::Focus(focus) => focus::fetch(&source.name, focus, range),
    }
}
