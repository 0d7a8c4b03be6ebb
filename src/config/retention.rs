//! The `[retention]` section: how many days of run history the daily job keeps. The newest
//! forecast of each series, evaluation of each budget and alert of each channel are kept
//! whatever their age, since the reports and the next run read them.

use serde::{Deserialize, Serialize};

use super::{ConfigError, in_range};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetention {
    runs_days: Option<i64>,
    forecasts_days: Option<i64>,
    evaluations_days: Option<i64>,
    alerts_days: Option<i64>,
    claims_days: Option<i64>,
}

/// Days of history kept, counted back from when the pruning runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetentionSettings {
    /// Run records with the changes they planned and the actions they logged; a run that
    /// something kept still refers to stays.
    pub runs_days: u32,
    /// Forecasts, the anomalies found with them and backtest accuracy.
    pub forecasts_days: u32,
    /// Budget evaluations.
    pub evaluations_days: u32,
    /// Alerts sent (or that failed).
    pub alerts_days: u32,
    /// Schedule claims of `serve` replicas.
    pub claims_days: u32,
}

impl Default for RetentionSettings {
    fn default() -> RetentionSettings {
        RetentionSettings {
            runs_days: 400,
            forecasts_days: 90,
            evaluations_days: 400,
            alerts_days: 400,
            claims_days: 30,
        }
    }
}

pub(super) fn validate_retention(raw: &RawRetention) -> Result<RetentionSettings, ConfigError> {
    let d = RetentionSettings::default();
    let days = |key: &str, v: Option<i64>, default: u32| {
        in_range(
            format!("retention.{key}"),
            v,
            1..=36_500,
            i64::from(default),
        )
        .map(|n| n as u32)
    };
    Ok(RetentionSettings {
        runs_days: days("runs_days", raw.runs_days, d.runs_days)?,
        forecasts_days: days("forecasts_days", raw.forecasts_days, d.forecasts_days)?,
        evaluations_days: days("evaluations_days", raw.evaluations_days, d.evaluations_days)?,
        alerts_days: days("alerts_days", raw.alerts_days, d.alerts_days)?,
        claims_days: days("claims_days", raw.claims_days, d.claims_days)?,
    })
}

#[cfg(test)]
mod tests {
    use super::RetentionSettings;
    use crate::config::{test_error as error, test_load as load};

    #[test]
    fn retention_has_defaults_and_names_a_bad_key() {
        let c = load("[retention]\nforecasts_days = 30").unwrap();
        let want = RetentionSettings {
            forecasts_days: 30,
            ..RetentionSettings::default()
        };
        assert_eq!(c.retention, want);
        assert_eq!((want.runs_days, want.claims_days), (400, 30));
        let e = error("[retention]\nalerts_days = 0");
        assert_eq!(e, "retention.alerts_days: must be in 1..=36500, got 0");
        let e = error("[retention]\nruns = 5");
        assert!(e.contains("unknown field `runs`"), "{e}");
    }
}
