//! How actions reach Kubernetes, whatever the budget: limits, protected namespaces, the leader
//! lock, and where the API is; every error naming its key.

use serde::{Deserialize, Serialize};

use super::{ConfigError, in_range, invalid};

/// Namespaces costcast never changes unless `act.protected_namespaces` says otherwise.
pub const DEFAULT_PROTECTED_NAMESPACES: [&str; 3] =
    ["kube-system", "kube-public", "kube-node-lease"];

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAct {
    protected_namespaces: Option<Vec<String>>,
    max_changes_per_run: Option<i64>,
    lock_wait_secs: Option<i64>,
    lock_ttl_secs: Option<i64>,
    cronjob_starting_deadline_secs: Option<i64>,
    max_data_age_days: Option<i64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKubernetes {
    api_url: Option<String>,
}

/// How actions are applied, whatever the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct ActSettings {
    /// Namespaces never changed.
    pub protected_namespaces: Vec<String>,
    /// Objects one run may change (restores do not count); the rest wait for the next run.
    pub max_changes_per_run: usize,
    /// How long a run waits for another runner's leader lock before giving up.
    pub lock_wait_secs: u64,
    /// How long the leader lock outlives a holder that stops renewing it (it is renewed every
    /// quarter of this); a holder that cannot renew in time stops acting.
    pub lock_ttl_secs: u64,
    /// Set on a restored CronJob without `startingDeadlineSeconds` that missed more than 100
    /// schedules while suspended, so the controller starts it again.
    pub cronjob_starting_deadline_secs: u64,
    /// A budget whose scope draws on a source with no day newer than this many days before
    /// the evaluation's day is evaluated and reported, but its ladder neither climbs nor comes
    /// down.
    pub max_data_age_days: u32,
}

impl Default for ActSettings {
    fn default() -> ActSettings {
        ActSettings {
            protected_namespaces: DEFAULT_PROTECTED_NAMESPACES.map(String::from).to_vec(),
            max_changes_per_run: 20,
            lock_wait_secs: 60,
            lock_ttl_secs: 60,
            cronjob_starting_deadline_secs: 3600,
            max_data_age_days: 3,
        }
    }
}

/// Where the Kubernetes API is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KubernetesSettings {
    /// An API URL without authentication (`kubectl proxy`); unset means in-cluster config or
    /// the kubeconfig, as kubectl finds them.
    pub api_url: Option<String>,
}

pub(super) fn validate_act(raw: &RawAct) -> Result<ActSettings, ConfigError> {
    let defaults = ActSettings::default();
    let whole = |key: &str, v: Option<i64>, min: i64, max: i64, default: u64| {
        in_range(format!("act.{key}"), v, min..=max, default as i64).map(|n| n as u64)
    };
    Ok(ActSettings {
        protected_namespaces: raw
            .protected_namespaces
            .clone()
            .unwrap_or(defaults.protected_namespaces),
        max_changes_per_run: whole(
            "max_changes_per_run",
            raw.max_changes_per_run,
            0,
            10_000,
            defaults.max_changes_per_run as u64,
        )? as usize,
        lock_wait_secs: whole(
            "lock_wait_secs",
            raw.lock_wait_secs,
            0,
            3600,
            defaults.lock_wait_secs,
        )?,
        lock_ttl_secs: whole(
            "lock_ttl_secs",
            raw.lock_ttl_secs,
            2,
            3600,
            defaults.lock_ttl_secs,
        )?,
        cronjob_starting_deadline_secs: whole(
            "cronjob_starting_deadline_secs",
            raw.cronjob_starting_deadline_secs,
            10,
            86_400 * 7,
            defaults.cronjob_starting_deadline_secs,
        )?,
        max_data_age_days: whole(
            "max_data_age_days",
            raw.max_data_age_days,
            1,
            366,
            u64::from(defaults.max_data_age_days),
        )? as u32,
    })
}

pub(super) fn validate_kubernetes(raw: &RawKubernetes) -> Result<KubernetesSettings, ConfigError> {
    if let Some(url) = &raw.api_url
        && !(url.starts_with("https://") || url.starts_with("http://"))
    {
        return Err(invalid("kubernetes.api_url", "must be an http(s) URL"));
    }
    Ok(KubernetesSettings {
        api_url: raw.api_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{test_error as error, test_load as load};

    #[test]
    fn act_settings_have_defaults_and_name_a_bad_key() {
        let c = load("").unwrap();
        assert_eq!(c.act.max_changes_per_run, 20);
        assert!(
            c.act
                .protected_namespaces
                .contains(&"kube-system".to_string())
        );
        assert_eq!(
            error("[act]\nmax_changes_per_run=-1"),
            "act.max_changes_per_run: must be in 0..=10000, got -1"
        );
        assert_eq!((c.act.lock_wait_secs, c.act.lock_ttl_secs), (60, 60));
        assert_eq!(
            error("[act]\nlock_ttl_secs=1"),
            "act.lock_ttl_secs: must be in 2..=3600, got 1"
        );
        assert_eq!(c.act.max_data_age_days, 3);
        assert_eq!(
            error("[act]\nmax_data_age_days=0"),
            "act.max_data_age_days: must be in 1..=366, got 0"
        );
        assert_eq!(
            error("[kubernetes]\napi_url='localhost:8001'"),
            "kubernetes.api_url: must be an http(s) URL"
        );
    }
}
