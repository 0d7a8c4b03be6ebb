//! Values that must not reach a log (tokens, webhook URLs, database passwords), and the
//! database URL with a relative SQLite path resolved against the config file's folder.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{ConfigError, DEFAULT_DATABASE_URL, RawConfig, invalid};

/// A value that must never reach a log: `Debug`, `Display` and serialization print `[redacted]`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[redacted]")
    }
}

/// A database URL; its password, if any, is redacted when shown.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The full URL, for the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://") else {
            return url.clone();
        };
        let rest = &url[scheme_end + 3..];
        let Some(at) = rest.find('@') else {
            return url.clone();
        };
        match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:[redacted]{}",
                &url[..scheme_end + 3],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

/// `[database] url`, a relative SQLite path resolved against `base_dir`.
pub(super) fn validate_database(
    raw: &RawConfig,
    base_dir: &Path,
) -> Result<DatabaseUrl, ConfigError> {
    let database_url = raw
        .database
        .url
        .clone()
        .unwrap_or_else(|| DatabaseUrl::new(DEFAULT_DATABASE_URL));
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| database_url.expose().starts_with(p))
    {
        return Err(invalid(
            "database.url",
            "must start with sqlite:, postgres:// or postgresql://",
        ));
    }
    Ok(resolve_sqlite(database_url, base_dir))
}

/// A relative SQLite path resolved against `base_dir` (the config file's folder), as source
/// paths are, so every command finds the same database from whatever folder it is run.
pub(super) fn resolve_sqlite(url: DatabaseUrl, base_dir: &Path) -> DatabaseUrl {
    let text = url.expose();
    let Some(rest) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    else {
        return url;
    };
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, format!("?{query}")),
        None => (rest, String::new()),
    };
    let in_memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    if in_memory || Path::new(path).is_absolute() || base_dir.as_os_str().is_empty() {
        return url;
    }
    DatabaseUrl::new(format!("sqlite://{}{query}", base_dir.join(path).display()))
}
