//! The `[daemon]` and `[telemetry]` sections: where `serve` finds its jobs, how long it may take
//! to stop, and how logs are written.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid};

/// Below Kubernetes' default `terminationGracePeriodSeconds` (30), so the pod exits on its own
/// before the kubelet kills it.
const DEFAULT_GRACE_SECS: u64 = 25;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDaemon {
    jobs_dir: Option<PathBuf>,
    shutdown_grace_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTelemetry {
    pub(super) log_format: Option<String>,
}

/// How the scheduler in `costcast serve` runs.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSettings {
    /// The folder of job files (`NAME.toml`); relative paths resolve against the config file.
    pub jobs_dir: PathBuf,
    /// How long a stop (SIGTERM) may take: the run in progress gets most of it to finish its
    /// stage, then is interrupted and rolled back.
    pub shutdown_grace: Duration,
}

/// Log lines: text for people, JSON for log collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Compact human-readable lines.
    #[default]
    Text,
    /// One JSON object a line, with the span fields (run id, stage) on every line.
    Json,
}

impl LogFormat {
    /// Parses `text` or `json`.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetrySettings {
    /// The log line format (`--log-format` or `COSTCAST_LOG_FORMAT` win over the file).
    pub log_format: LogFormat,
}

pub(super) fn validate_daemon(
    raw: &RawDaemon,
    base_dir: &Path,
) -> Result<DaemonSettings, ConfigError> {
    let grace = raw.shutdown_grace_secs.unwrap_or(DEFAULT_GRACE_SECS);
    if !(1..=3600).contains(&grace) {
        return Err(invalid(
            "daemon.shutdown_grace_secs",
            format!("{grace} is outside 1..=3600"),
        ));
    }
    let jobs_dir = raw
        .jobs_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("jobs"));
    // The default stays relative to the working directory, where `costcast run --job` has
    // always looked; a configured folder is read relative to the file that names it.
    let jobs_dir = match raw.jobs_dir {
        Some(_) if jobs_dir.is_relative() => base_dir.join(jobs_dir),
        _ => jobs_dir,
    };
    Ok(DaemonSettings {
        jobs_dir,
        shutdown_grace: Duration::from_secs(grace),
    })
}

pub(super) fn validate_telemetry(raw: &RawTelemetry) -> Result<TelemetrySettings, ConfigError> {
    let log_format = match raw.log_format.as_deref() {
        None => LogFormat::Text,
        Some(s) => LogFormat::parse(s).ok_or_else(|| {
            invalid(
                "telemetry.log_format",
                format!("{s:?} is not \"text\" or \"json\""),
            )
        })?,
    };
    Ok(TelemetrySettings { log_format })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_key_and_a_set_jobs_dir_follows_the_config_file() {
        let raw: RawDaemon = toml::from_str("shutdown_grace_secs = 0").unwrap();
        let err = validate_daemon(&raw, Path::new("/etc/costcast"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("daemon.shutdown_grace_secs"), "{err}");
        let raw: RawTelemetry = toml::from_str("log_format = 'xml'").unwrap();
        let err = validate_telemetry(&raw).unwrap_err().to_string();
        assert!(err.contains("telemetry.log_format"), "{err}");

        let raw: RawDaemon = toml::from_str("jobs_dir = 'jobs'").unwrap();
        let set = validate_daemon(&raw, Path::new("/etc/costcast")).unwrap();
        assert_eq!(set.jobs_dir, Path::new("/etc/costcast/jobs"));
        assert_eq!(set.shutdown_grace, Duration::from_secs(25));
        let default = validate_daemon(&RawDaemon::default(), Path::new("/etc/costcast")).unwrap();
        assert_eq!(default.jobs_dir, Path::new("jobs"));
    }
}
