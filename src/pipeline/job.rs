//! Job files: `jobs/NAME.toml` names a cron schedule and the steps to run.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One stage of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Read sources into the store.
    Ingest,
    /// Forecast every target series.
    Forecast,
    /// Evaluate budgets.
    Budgets,
    /// Plan (and in enforce mode apply) changes.
    Act,
    /// Send alerts.
    Notify,
}

impl Step {
    /// Every step, in pipeline order.
    pub const ALL: [Step; 5] = [
        Step::Ingest,
        Step::Forecast,
        Step::Budgets,
        Step::Act,
        Step::Notify,
    ];
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Ingest => "ingest",
            Step::Forecast => "forecast",
            Step::Budgets => "budgets",
            Step::Act => "act",
            Step::Notify => "notify",
        })
    }
}

/// A scheduled job.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// Cron expression with seconds, e.g. `0 0 6 * * *`.
    pub schedule: String,
    /// Steps, run in the order given.
    pub steps: Vec<Step>,
}

/// A job file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The file could not be read.
    #[error("cannot read job file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a valid job.
    #[error("job file {path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        message: String,
    },
}

impl Job {
    /// Loads `dir/NAME.toml`.
    pub fn load(dir: &Path, name: &str) -> Result<Job, JobError> {
        let path = dir.join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).map_err(|source| JobError::Read {
            path: path.clone(),
            source,
        })?;
        let job: Job = toml::from_str(&text).map_err(|e| JobError::Invalid {
            path: path.clone(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let fields = job.schedule.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(JobError::Invalid {
                path,
                message: format!(
                    "schedule: {:?} needs 6 or 7 fields (seconds first), has {fields}",
                    job.schedule
                ),
            });
        }
        if job.steps.is_empty() {
            return Err(JobError::Invalid {
                path,
                message: "steps: must list at least one step".into(),
            });
        }
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_daily_job_runs_every_stage_in_order() {
        let job = Job::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs").as_path(),
            "daily",
        )
        .unwrap();
        assert_eq!(job.steps, Step::ALL.to_vec());
    }

    #[test]
    fn an_unknown_step_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.toml"),
            "schedule = '0 0 6 * * *'\nsteps = ['ingest', 'dance']\n",
        )
        .unwrap();
        let err = Job::load(dir.path(), "x").unwrap_err().to_string();
        assert!(err.contains("x.toml") && err.contains("dance"), "{err}");
    }
}
