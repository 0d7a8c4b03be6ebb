//! Job files: `jobs/NAME.toml` names a cron schedule and the steps to run. The standard jobs
//! are built in, so `run --job daily` works in any folder; a file of the same name overrides
//! one, and a jobs folder, when there is one, holds every job `serve` schedules.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer};

use crate::config::SourceType;
pub use crate::domain::Step;

/// A scheduled job, checked as it is read: its schedule parses as the scheduler will parse it,
/// its source kinds exist, and it has steps.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// When it runs.
    pub schedule: Schedule,
    /// Steps, run in the order given.
    pub steps: Vec<Step>,
    /// Ingest only sources of these kinds (e.g. `aws-cost-explorer`); every source when empty.
    #[serde(default)]
    pub source_kinds: Vec<SourceType>,
}

/// A cron expression with seconds first, e.g. `0 0 6 * * *`, parsed once.
#[derive(Debug, Clone)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.text == other.text
    }
}

impl Schedule {
    /// Parses `text` as the scheduler does: seconds first, and a day must match both the
    /// day-of-month and the day-of-week fields.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields = text.split_whitespace().count();
        if !(6..=7).contains(&fields) {
            return Err(format!(
                "{text:?} needs 6 or 7 fields (seconds first), has {fields}"
            ));
        }
        // Checked by the scheduler that will run it too, so a file `run --job` accepts never
        // fails later inside `serve`.
        tokio_cron_scheduler::Job::new_async(text, |_, _| Box::pin(async {}))
            .map_err(|e| format!("{text:?} is not a cron expression: {e}"))?;
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(text)
            .map_err(|e| format!("{text:?} is not a cron expression: {e}"))?;
        Ok(Schedule {
            text: text.to_string(),
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Schedule, D::Error> {
        let text = String::deserialize(d)?;
        Schedule::parse(&text).map_err(serde::de::Error::custom)
    }
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

/// The jobs shipped with costcast, as in the repository's `jobs/` folder.
const BUILT_IN: [(&str, &str); 3] = [
    ("daily", include_str!("../../jobs/daily.toml")),
    (
        "ingest-frequent",
        include_str!("../../jobs/ingest-frequent.toml"),
    ),
    (
        "weekly-backtest",
        include_str!("../../jobs/weekly-backtest.toml"),
    ),
];

impl Job {
    /// Loads `dir/NAME.toml`, or the built-in job of that name when the file does not exist.
    pub fn load(dir: &Path, name: &str) -> Result<Job, JobError> {
        let path = dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => Job::parse(&text, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => match built_in(name) {
                Some((text, path)) => Job::parse(text, path),
                None => Err(JobError::Read { path, source: e }),
            },
            Err(source) => Err(JobError::Read { path, source }),
        }
    }

    /// Parses and checks a job file's text; `path` names it in errors.
    fn parse(text: &str, path: PathBuf) -> Result<Job, JobError> {
        let job: Job = toml::from_str(text).map_err(|e| JobError::Invalid {
            path: path.clone(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        if job.steps.is_empty() {
            return Err(JobError::Invalid {
                path,
                message: "steps: must list at least one step".into(),
            });
        }
        Ok(job)
    }
}

impl Job {
    /// The newest occurrence of the schedule at or before `now` (UTC): the tick a run fired
    /// by the scheduler belongs to, the same on every replica whatever its firing delay.
    pub fn tick_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.cron.find_previous_occurrence(&now, true).ok()
    }
}

/// The text of the built-in job `name`, and how errors name it.
fn built_in(name: &str) -> Option<(&'static str, PathBuf)> {
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| (*text, PathBuf::from(format!("(built in) jobs/{n}.toml"))))
}

/// Every job in `dir` (`*.toml`), by name; the built-in jobs when `dir` does not exist.
pub fn load_all(dir: &Path) -> Result<Vec<(String, Job)>, JobError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return BUILT_IN
                .iter()
                .map(|(name, _)| Job::load(dir, name).map(|job| (name.to_string(), job)))
                .collect();
        }
        Err(source) => {
            return Err(JobError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let path = e.path();
            (path.extension()? == "toml")
                .then(|| path.file_stem()?.to_str().map(str::to_string))
                .flatten()
        })
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| Job::load(dir, &name).map(|job| (name, job)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_daily_job_runs_every_stage_in_order_then_prunes() {
        let job = Job::load(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs").as_path(),
            "daily",
        )
        .unwrap();
        let mut steps = Step::ALL.to_vec();
        steps.push(Step::Prune);
        assert_eq!(job.steps, steps);
    }

    #[test]
    fn the_built_in_jobs_are_the_shipped_files_and_a_file_overrides_one() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
        let empty = tempfile::tempdir().unwrap();
        let nowhere = empty.path().join("no-jobs-here");
        let built_in = load_all(&nowhere).unwrap();
        assert_eq!(built_in, load_all(&shipped).unwrap());
        assert_eq!(built_in.len(), 3);
        std::fs::write(
            empty.path().join("daily.toml"),
            "schedule = \"0 0 1 * * *\"\nsteps = [\"ingest\"]\n",
        )
        .unwrap();
        let daily = Job::load(empty.path(), "daily").unwrap();
        assert_eq!(daily.steps, vec![Step::Ingest]);
        let err = Job::load(&nowhere, "nope").unwrap_err().to_string();
        assert!(err.starts_with("cannot read job file"), "{err}");
    }

    #[test]
    fn a_run_belongs_to_the_tick_it_fired_for() {
        let job = Job {
            schedule: Schedule::parse("0 15 2,10,18 * * *").unwrap(),
            steps: vec![Step::Ingest],
            source_kinds: Vec::new(),
        };
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // Fired 700 ms late, or exactly on time: the same tick.
        for fired in ["2026-11-23T10:15:00.700Z", "2026-11-23T10:15:00Z"] {
            assert_eq!(
                job.tick_at_or_before(at(fired)),
                Some(at("2026-11-23T10:15:00Z"))
            );
        }
        let weekly = Job {
            schedule: Schedule::parse("0 0 7 * * Mon").unwrap(),
            ..job
        };
        // 2026-11-25 is a Wednesday; the tick is Monday the 23rd.
        assert_eq!(
            weekly.tick_at_or_before(at("2026-11-25T12:00:00Z")),
            Some(at("2026-11-23T07:00:00Z"))
        );
    }

    #[test]
    fn every_shipped_job_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
        let jobs = load_all(&dir).unwrap();
        let names: Vec<&str> = jobs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["daily", "ingest-frequent", "weekly-backtest"]);
        assert_eq!(jobs[1].1.source_kinds, [SourceType::AwsCostExplorer]);
        assert_eq!(jobs[2].1.steps, [Step::Backtest]);
    }

    #[test]
    fn a_schedule_the_scheduler_rejects_names_the_key() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expect) in [
            (
                "schedule = '0 0 25 * * *'\nsteps = ['ingest']\n",
                "schedule",
            ),
            (
                "schedule = '0 0 6 * *'\nsteps = ['ingest']\n",
                "6 or 7 fields",
            ),
            ("schedule = '0 0 6 * * *'\nsteps = []\n", "steps"),
            (
                "schedule = '0 0 6 * * *'\nsteps = ['ingest']\nsource_kinds = ['gcp']\n",
                "source_kinds",
            ),
        ] {
            std::fs::write(dir.path().join("bad.toml"), text).unwrap();
            let err = Job::load(dir.path(), "bad").unwrap_err().to_string();
            assert!(err.contains("bad.toml") && err.contains(expect), "{err}");
        }
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
