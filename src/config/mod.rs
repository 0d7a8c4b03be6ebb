//! The typed configuration: a TOML file, then `COSTCAST_*` environment overrides, validated into
//! settings whose every error names the key at fault.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod act;
mod api;
mod budgets;
mod daemon;
mod forecast;
mod retention;
mod secrets;
mod sources;

pub use api::{ApiSettings, DEFAULT_LISTEN};
use api::{RawApi, tokens_from_env, validate_api};
pub use daemon::{DaemonSettings, LogFormat, OtlpSettings, TelemetrySettings};
use daemon::{RawDaemon, RawTelemetry, validate_daemon, validate_telemetry};

pub use sources::{
    CeExpression, CeGroupBy, CeValues, CostColumn, CostExplorerSource, CurSource, FocusSource,
    Pricing, PrometheusAllocation, PrometheusBasis, PrometheusQueries, PrometheusSource, Source,
    SourceKind, SourceType, UnitPrices, UnitQuery,
};
use sources::{RawSource, validate_source};

pub use act::{ActSettings, KubernetesSettings};
use act::{RawAct, RawKubernetes, validate_act, validate_kubernetes};
use budgets::{RawBudget, validate_budget};
pub use forecast::ForecastSettings;
use forecast::{RawForecast, validate_forecast};
pub use retention::RetentionSettings;
use retention::{RawRetention, validate_retention};
use secrets::validate_database;
pub use secrets::{DatabaseUrl, Secret};

use crate::domain::{Budget, Dimension, ModelKind, Scope};

/// The database used when neither the config file nor the environment names one.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://costcast.db";

/// A configuration problem, naming the file or key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped key.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key and line.
        message: String,
    },
    /// A key has a value costcast cannot use.
    #[error("{key}: {message}")]
    Invalid {
        /// The dotted key, e.g. `budgets[2].amount`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A whole-number key within `range`, `default` when absent; out of range, an error naming it.
pub(crate) fn in_range(
    key: impl Into<String>,
    value: Option<i64>,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if range.contains(&n) => Ok(n),
        Some(n) => Err(invalid(
            key,
            format!("must be in {}..={}, got {n}", range.start(), range.end()),
        )),
    }
}

pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

// ---- The file as written -------------------------------------------------------------------

/// The config file as deserialized, before validation.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    forecast: RawForecast,
    #[serde(default)]
    sources: Vec<RawSource>,
    #[serde(default)]
    budgets: Vec<RawBudget>,
    #[serde(default)]
    act: RawAct,
    #[serde(default)]
    kubernetes: RawKubernetes,
    #[serde(default)]
    notify: RawNotify,
    #[serde(default)]
    api: RawApi,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    telemetry: RawTelemetry,
    #[serde(default)]
    retention: RawRetention,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<DatabaseUrl>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    slack: Option<RawSlack>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawSlack {
    webhook_url: Option<Secret>,
    report_url: Option<String>,
    daily_digest: Option<bool>,
}

impl RawConfig {
    /// Sets the amount of the budget named `name`; false when there is none.
    pub fn set_budget_amount(&mut self, name: &str, amount: f64) -> bool {
        match self.budgets.iter_mut().find(|b| b.name() == name) {
            Some(b) => {
                b.set_amount(amount);
                true
            }
            None => false,
        }
    }
}

// ---- Validated settings --------------------------------------------------------------------

/// Where alerts go.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NotifySettings {
    /// Slack incoming-webhook URL; without one the message is built and recorded, not sent.
    pub slack_webhook: Option<Secret>,
    /// The report page alerts link to.
    pub report_url: Option<String>,
    /// Also post the at-risk budgets once a day when nothing changed.
    pub daily_digest: bool,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The database.
    pub database_url: DatabaseUrl,
    /// Forecast settings.
    pub forecast: ForecastSettings,
    /// Billing sources.
    pub sources: Vec<Source>,
    /// Budgets.
    pub budgets: Vec<Budget>,
    /// How actions are applied.
    pub act: ActSettings,
    /// The Kubernetes API the actions go to.
    pub kubernetes: KubernetesSettings,
    /// Alert destinations.
    pub notify: NotifySettings,
    /// The report API.
    pub api: ApiSettings,
    /// The scheduler in `serve`.
    pub daemon: DaemonSettings,
    /// Logs and traces.
    pub telemetry: TelemetrySettings,
    /// How much run history the daily job keeps.
    pub retention: RetentionSettings,
    raw: std::sync::Arc<RawConfig>,
}

impl Config {
    /// Loads `path` (or built-in defaults when `None`), applies `env` overrides and validates.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (raw, base_dir) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let raw = Config::parse_raw(&text, path)?;
                let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
                (raw, dir)
            }
            None => (RawConfig::default(), PathBuf::new()),
        };
        Config::from_raw(raw, &base_dir, env)
    }

    /// Parses TOML text; `origin` names the file in errors.
    pub fn parse_raw(text: &str, origin: &Path) -> Result<RawConfig, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })
    }

    /// Applies `env` overrides to `raw` and validates; relative paths resolve against `base_dir`.
    pub fn from_raw(
        mut raw: RawConfig,
        base_dir: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        apply_env(&mut raw, env)?;
        let forecast = validate_forecast(&raw.forecast)?;
        let sources = raw
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| validate_source(i, s, base_dir))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(dup) = first_duplicate(sources.iter().map(|s| s.name.as_str())) {
            return Err(invalid("sources", format!("two sources are named {dup:?}")));
        }
        let budgets = raw
            .budgets
            .iter()
            .enumerate()
            .map(|(i, b)| validate_budget(i, b))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(dup) = first_duplicate(budgets.iter().map(|b| b.name.as_str())) {
            return Err(invalid("budgets", format!("two budgets are named {dup:?}")));
        }
        Ok(Config {
            database_url: validate_database(&raw, base_dir)?,
            forecast,
            sources,
            budgets,
            act: validate_act(&raw.act)?,
            kubernetes: validate_kubernetes(&raw.kubernetes)?,
            notify: validate_notify(&raw)?,
            api: validate_api(&raw.api)?,
            daemon: validate_daemon(&raw.daemon, base_dir)?,
            telemetry: validate_telemetry(&raw.telemetry)?,
            retention: validate_retention(&raw.retention)?,
            raw: std::sync::Arc::new(raw),
        })
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        let mut text = toml::to_string_pretty(&self.raw)
            .unwrap_or_else(|e| format!("# cannot render config: {e}\n"));
        if self.raw.database.url.is_none() {
            // The empty table serde writes would repeat the header added here.
            let rest = text.replacen("[database]\n\n", "", 1);
            text = format!(
                "# database.url is the default\n[database]\nurl = {:?}\n\n{rest}",
                self.database_url.redacted()
            );
        }
        text
    }

    /// The source named `name`.
    pub fn source(&self, name: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.name == name)
    }
}

/// The `COSTCAST_*` environment variables, which override the file.
fn apply_env(raw: &mut RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    if let Some(url) = env("COSTCAST_DATABASE_URL") {
        raw.database.url = Some(DatabaseUrl::new(url));
    }
    if let Some(hook) = env("COSTCAST_SLACK_WEBHOOK_URL") {
        raw.notify
            .slack
            .get_or_insert_with(RawSlack::default)
            .webhook_url = Some(Secret::new(hook));
    }
    if let Some(tokens) = env("COSTCAST_API_READ_TOKENS") {
        raw.api.read_tokens = Some(tokens_from_env(&tokens));
    }
    if let Some(tokens) = env("COSTCAST_API_ADMIN_TOKENS") {
        raw.api.admin_tokens = Some(tokens_from_env(&tokens));
    }
    if let Some(listen) = env("COSTCAST_API_LISTEN") {
        raw.api.listen = Some(listen);
    }
    if let Some(format) = env("COSTCAST_LOG_FORMAT") {
        raw.telemetry.log_format = Some(format);
    }
    if let Some(endpoint) = env("COSTCAST_OTLP_ENDPOINT") {
        raw.telemetry
            .otlp
            .get_or_insert_with(Default::default)
            .endpoint = Some(endpoint);
    }
    for (var, slot) in [
        (
            "COSTCAST_FORECAST_HORIZON_DAYS",
            &mut raw.forecast.horizon_days,
        ),
        (
            "COSTCAST_FORECAST_BILLING_LAG_DAYS",
            &mut raw.forecast.billing_lag_days,
        ),
    ] {
        if let Some(v) = env(var) {
            *slot = Some(
                v.trim()
                    .parse()
                    .map_err(|_| invalid(var, format!("{v:?} is not a whole number")))?,
            );
        }
    }
    Ok(())
}

/// `[notify.slack]`: URLs must be http(s).
fn validate_notify(raw: &RawConfig) -> Result<NotifySettings, ConfigError> {
    let slack = raw.notify.slack.as_ref();
    let notify = NotifySettings {
        slack_webhook: slack.and_then(|s| s.webhook_url.clone()),
        report_url: slack.and_then(|s| s.report_url.clone()),
        daily_digest: slack.and_then(|s| s.daily_digest).unwrap_or(false),
    };
    let web = |url: &str| url.starts_with("https://") || url.starts_with("http://");
    if notify.report_url.as_deref().is_some_and(|u| !web(u)) {
        return Err(invalid("notify.slack.report_url", "must be an http(s) URL"));
    }
    if notify
        .slack_webhook
        .as_ref()
        .is_some_and(|h| !web(h.expose()))
    {
        return Err(invalid(
            "notify.slack.webhook_url",
            "must be an http(s) URL",
        ));
    }
    Ok(notify)
}

fn first_duplicate<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

/// The model names, comma-separated, for messages.
pub fn model_names() -> String {
    ModelKind::available()
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A scope table (`dimension = value | [values]`), every condition required; `key` names it.
pub(crate) fn parse_scope(
    key: &str,
    raw: &BTreeMap<String, OneOrMany>,
) -> Result<Scope, ConfigError> {
    let mut scope = Scope::all();
    for (dim, values) in raw {
        let d =
            Dimension::parse(dim).map_err(|e| invalid(format!("{key}.{dim}"), e.to_string()))?;
        let values = match values {
            OneOrMany::One(v) => vec![v.clone()],
            OneOrMany::Many(v) => v.clone(),
        };
        if values.is_empty() {
            return Err(invalid(format!("{key}.{dim}"), "lists no values"));
        }
        scope = scope.and(d, values);
    }
    Ok(scope)
}

/// Parses and validates `text` as a config file with no environment, for unit tests.
#[cfg(test)]
pub(crate) fn test_load(text: &str) -> Result<Config, ConfigError> {
    let raw = Config::parse_raw(text, Path::new("costcast.toml"))?;
    Config::from_raw(raw, Path::new(""), &|_| None)
}

/// The error `text` is refused with, for unit tests.
#[cfg(test)]
pub(crate) fn test_error(text: &str) -> String {
    match test_load(text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests;
