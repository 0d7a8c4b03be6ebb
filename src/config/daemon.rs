//! The `[daemon]` and `[telemetry]` sections: where `serve` finds its jobs, how long it may take
//! to stop, and where logs and traces go.

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
    pub(super) otlp_endpoint: Option<String>,
    service_name: Option<String>,
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

/// Logs and trace export.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetrySettings {
    /// The log line format (`--log-format` or `COSTCAST_LOG_FORMAT` win over the file).
    pub log_format: LogFormat,
    /// An OTLP/HTTP endpoint (e.g. `http://otel-collector:4318`) to send spans to; off when unset.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` spans carry.
    pub service_name: String,
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
    let otlp_endpoint = raw
        .otlp_endpoint
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    if let Some(url) = otlp_endpoint
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return Err(invalid(
            "telemetry.otlp_endpoint",
            format!("{url:?} must be an http(s) URL such as http://otel-collector:4318"),
        ));
    }
    Ok(TelemetrySettings {
        log_format,
        otlp_endpoint: otlp_endpoint.map(str::to_string),
        service_name: raw
            .service_name
            .clone()
            .unwrap_or_else(|| "costcast".into()),
    })
}
