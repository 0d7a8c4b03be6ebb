//! The `[api]` section: where `costcast serve` listens and who may read or change what.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{ConfigError, Secret, invalid};

/// The address `serve` listens on unless told otherwise: loopback, so nothing is exposed by
/// accident.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Shortest token accepted: a guessable token is no token.
const MIN_TOKEN_CHARS: usize = 16;

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    pub(super) listen: Option<String>,
    pub(super) read_tokens: Option<Vec<Secret>>,
    pub(super) admin_tokens: Option<Vec<Secret>>,
    metrics_public: Option<bool>,
    cors_origins: Option<Vec<String>>,
    refresh_secs: Option<u64>,
    stale_run_hours: Option<u64>,
}

/// The report API's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Tokens that may read (`Authorization: Bearer …`).
    pub read_tokens: Vec<Secret>,
    /// Tokens that may read and also restore objects and change budget modes.
    pub admin_tokens: Vec<Secret>,
    /// Serve `/metrics` without a token (for a Prometheus scraper inside the cluster).
    pub metrics_public: bool,
    /// Origins allowed cross-origin requests; empty keeps CORS off.
    pub cors_origins: Vec<String>,
    /// How often the in-memory cost data checks the store for cost data written since it was
    /// loaded.
    pub refresh_secs: u64,
    /// `/readyz` calls the last run stale past this many hours.
    pub stale_run_hours: u64,
}

impl ApiSettings {
    /// Whether any token is configured; `serve` refuses to start without one.
    pub fn has_tokens(&self) -> bool {
        !(self.read_tokens.is_empty() && self.admin_tokens.is_empty())
    }
}

/// Splits a comma-separated token list from the environment.
pub(super) fn tokens_from_env(value: &str) -> Vec<Secret> {
    value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(Secret::new)
        .collect()
}

pub(super) fn validate_api(raw: &RawApi) -> Result<ApiSettings, ConfigError> {
    let listen = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = listen.parse().map_err(|_| {
        invalid(
            "api.listen",
            format!("{listen:?} is not an address such as 127.0.0.1:8080"),
        )
    })?;
    let read_tokens = raw.read_tokens.clone().unwrap_or_default();
    let admin_tokens = raw.admin_tokens.clone().unwrap_or_default();
    for (key, tokens) in [
        ("api.read_tokens", &read_tokens),
        ("api.admin_tokens", &admin_tokens),
    ] {
        if let Some(i) = tokens
            .iter()
            .position(|t| t.expose().chars().count() < MIN_TOKEN_CHARS)
        {
            return Err(invalid(
                format!("{key}[{i}]"),
                format!("tokens must be at least {MIN_TOKEN_CHARS} characters"),
            ));
        }
        // The page keeps a token in a cookie: only characters a cookie value takes as is.
        if let Some(i) = tokens.iter().position(|t| {
            !t.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~+/=".contains(c))
        }) {
            return Err(invalid(
                format!("{key}[{i}]"),
                "tokens are letters, digits and - . _ ~ + / = (e.g. `openssl rand -hex 24`)",
            ));
        }
    }
    let cors_origins = raw.cors_origins.clone().unwrap_or_default();
    if let Some(bad) = cors_origins
        .iter()
        .find(|o| !(o.starts_with("https://") || o.starts_with("http://")) || o.ends_with('/'))
    {
        return Err(invalid(
            "api.cors_origins",
            format!("{bad:?} is not an origin such as https://grafana.example.com"),
        ));
    }
    let refresh_secs = raw.refresh_secs.unwrap_or(30);
    if !(1..=3600).contains(&refresh_secs) {
        return Err(invalid(
            "api.refresh_secs",
            format!("{refresh_secs} is outside 1..=3600"),
        ));
    }
    let stale_run_hours = raw.stale_run_hours.unwrap_or(36);
    if stale_run_hours == 0 {
        return Err(invalid("api.stale_run_hours", "must be at least 1"));
    }
    Ok(ApiSettings {
        listen,
        read_tokens,
        admin_tokens,
        metrics_public: raw.metrics_public.unwrap_or(false),
        cors_origins,
        refresh_secs,
        stale_run_hours,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(read: &[&str]) -> RawApi {
        RawApi {
            read_tokens: Some(read.iter().map(|t| Secret::new(*t)).collect()),
            ..RawApi::default()
        }
    }

    #[test]
    fn short_or_odd_tokens_and_bad_settings_name_their_key() {
        let err = |r: RawApi| validate_api(&r).unwrap_err().to_string();
        assert!(err(raw(&["short"])).contains("api.read_tokens[0]"));
        assert!(
            err(raw(&["0123456789abcdef", "0123456789abcdef;x"])).contains("api.read_tokens[1]")
        );
        let mut r = raw(&[]);
        r.listen = Some("localhost".into());
        assert!(err(r).contains("api.listen"));
        let mut r = raw(&[]);
        r.cors_origins = Some(vec!["grafana.example.com".into()]);
        assert!(err(r).contains("api.cors_origins"));
        let mut r = raw(&[]);
        r.refresh_secs = Some(0);
        assert!(err(r).contains("api.refresh_secs"));
        let ok = validate_api(&raw(&["0123456789abcdef"])).unwrap();
        assert!(ok.has_tokens() && !ok.metrics_public && ok.cors_origins.is_empty());
        assert_eq!(ok.listen.to_string(), DEFAULT_LISTEN);
    }
}
