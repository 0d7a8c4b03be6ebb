//! The `[daemon]` and `[telemetry]` sections: where `serve` finds its jobs, how long it may take
//! to stop, how logs are written and where traces go.

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
    pub(super) otlp: Option<RawOtlp>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOtlp {
    pub(super) endpoint: Option<String>,
    timeout_secs: Option<u64>,
}

/// Short enough that a flush at shutdown still fits in `serve`'s grace period below
/// Kubernetes' 30 s; a collector that cannot take a batch in 5 s is not going to.
const DEFAULT_OTLP_TIMEOUT_SECS: u64 = 5;

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

/// How logs are written and where traces go.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TelemetrySettings {
    /// The log line format (`--log-format` or `COSTCAST_LOG_FORMAT` win over the file).
    pub log_format: LogFormat,
    /// Where run and stage spans are exported as OpenTelemetry traces; none unless configured.
    pub otlp: Option<OtlpSettings>,
}

/// An OTLP/HTTP (protobuf) trace export to a collector.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpSettings {
    /// The full URL spans are posted to, e.g. `http://otel-collector:4318/v1/traces`.
    pub traces_url: String,
    /// How long one export may take, retries included; also bounds the flush at exit.
    pub timeout: Duration,
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
    let otlp = match &raw.otlp {
        None => None,
        Some(raw) => Some(validate_otlp(raw)?),
    };
    Ok(TelemetrySettings { log_format, otlp })
}

fn validate_otlp(raw: &RawOtlp) -> Result<OtlpSettings, ConfigError> {
    const KEY: &str = "telemetry.otlp.endpoint";
    let endpoint = raw.endpoint.as_deref().ok_or_else(|| {
        invalid(
            KEY,
            "is missing: the collector's OTLP/HTTP address, e.g. http://otel-collector:4318 \
             (remove [telemetry.otlp] to turn export off)",
        )
    })?;
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| invalid(KEY, format!("{endpoint:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(
            KEY,
            format!(
                "{endpoint:?} is not an http(s) address; costcast speaks OTLP over HTTP \
                 (usually port 4318), not gRPC"
            ),
        ));
    }
    // As with OTEL_EXPORTER_OTLP_ENDPOINT, the base address gets the signal's path; a URL that
    // already ends in it is taken as it is.
    let base = endpoint.trim_end_matches('/');
    let traces_url = match base.ends_with("/v1/traces") {
        true => base.to_string(),
        false => format!("{base}/v1/traces"),
    };
    let timeout = raw.timeout_secs.unwrap_or(DEFAULT_OTLP_TIMEOUT_SECS);
    if !(1..=60).contains(&timeout) {
        return Err(invalid(
            "telemetry.otlp.timeout_secs",
            format!("{timeout} is outside 1..=60"),
        ));
    }
    Ok(OtlpSettings {
        traces_url,
        timeout: Duration::from_secs(timeout),
    })
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

    fn otlp(text: &str) -> Result<TelemetrySettings, String> {
        let raw: RawTelemetry = toml::from_str(text).map_err(|e| e.to_string())?;
        validate_telemetry(&raw).map_err(|e| e.to_string())
    }

    #[test]
    fn otlp_export_is_off_unless_configured_and_its_endpoint_gets_the_traces_path() {
        assert_eq!(otlp("").unwrap().otlp, None);
        let set = otlp("[otlp]\nendpoint = 'http://collector:4318/'").unwrap();
        let set = set.otlp.unwrap();
        assert_eq!(set.traces_url, "http://collector:4318/v1/traces");
        assert_eq!(set.timeout, Duration::from_secs(5));
        let full = otlp("[otlp]\nendpoint = 'https://otlp.example/v1/traces'\ntimeout_secs = 20")
            .unwrap()
            .otlp
            .unwrap();
        assert_eq!(full.traces_url, "https://otlp.example/v1/traces");
        assert_eq!(full.timeout, Duration::from_secs(20));
    }

    #[test]
    fn bad_otlp_settings_name_their_key() {
        for (text, key, says) in [
            (
                "[otlp]\ntimeout_secs = 5",
                "telemetry.otlp.endpoint",
                "is missing",
            ),
            (
                "[otlp]\nendpoint = 'collector:4318'",
                "telemetry.otlp.endpoint",
                "http(s)",
            ),
            (
                "[otlp]\nendpoint = 'not a url'",
                "telemetry.otlp.endpoint",
                "not a URL",
            ),
            (
                "[otlp]\nendpoint = 'grpc://c:4317'",
                "telemetry.otlp.endpoint",
                "not gRPC",
            ),
            (
                "[otlp]\nendpoint = 'http://c:4318'\ntimeout_secs = 0",
                "telemetry.otlp.timeout_secs",
                "outside 1..=60",
            ),
            (
                "[otlp]\nendpoint = 'http://c:4318'\nheaders = 'x'",
                "headers",
                "unknown field",
            ),
        ] {
            let err = otlp(text).unwrap_err();
            assert!(err.contains(key) && err.contains(says), "{text}: {err}");
        }
    }
}
