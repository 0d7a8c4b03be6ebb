use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Day, DomainError, Money};

/// One axis a cost can be grouped or filtered by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dimension {
    /// The configured source the row came from.
    Source,
    /// The cloud or SaaS provider (`ProviderName`).
    Provider,
    /// The sub-account, project or subscription (`SubAccountId`).
    Account,
    /// The service (`ServiceName`).
    Service,
    /// The service category (`ServiceCategory`).
    ServiceCategory,
    /// Usage, Purchase, Tax, Credit or Adjustment (`ChargeCategory`).
    ChargeCategory,
    /// The region (`RegionId`).
    Region,
    /// A tag value, by tag key (e.g. `team`).
    Tag(String),
}

impl Dimension {
    /// Names every fixed dimension answers to, in display order.
    pub const FIXED: [&'static str; 7] = [
        "source",
        "provider",
        "account",
        "service",
        "service_category",
        "charge_category",
        "region",
    ];

    /// Parses a dimension name; any other identifier is a tag key.
    pub fn parse(name: &str) -> Result<Dimension, DomainError> {
        let name = name.trim();
        Ok(match name {
            "source" => Dimension::Source,
            "provider" => Dimension::Provider,
            "account" => Dimension::Account,
            "service" => Dimension::Service,
            "service_category" => Dimension::ServiceCategory,
            "charge_category" => Dimension::ChargeCategory,
            "region" => Dimension::Region,
            _ => {
                let key = name.strip_prefix("tag:").unwrap_or(name);
                let valid = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.:/".contains(c));
                if !valid {
                    return Err(DomainError::BadDimension(name.to_string()));
                }
                Dimension::Tag(key.to_string())
            }
        })
    }

    /// The dimension's value for a row, empty when the row has none.
    pub fn value_of<'a>(&self, dims: &'a Dimensions) -> &'a str {
        match self {
            Dimension::Source => &dims.source,
            Dimension::Provider => &dims.provider,
            Dimension::Account => &dims.account,
            Dimension::Service => &dims.service,
            Dimension::ServiceCategory => &dims.service_category,
            Dimension::ChargeCategory => &dims.charge_category,
            Dimension::Region => &dims.region,
            Dimension::Tag(key) => dims.tags.get(key).map(String::as_str).unwrap_or(""),
        }
    }
}

impl fmt::Display for Dimension {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dimension::Tag(key) => f.write_str(key),
            other => {
                let i = [
                    Dimension::Source,
                    Dimension::Provider,
                    Dimension::Account,
                    Dimension::Service,
                    Dimension::ServiceCategory,
                    Dimension::ChargeCategory,
                    Dimension::Region,
                ]
                .iter()
                .position(|d| d == other)
                .unwrap_or(0);
                f.write_str(Dimension::FIXED[i])
            }
        }
    }
}

/// The dimensions that identify one stored cost series. Missing values are empty strings, so two
/// rows with the same dimensions always land on the same key.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dimensions {
    /// The configured source name.
    pub source: String,
    /// `ProviderName`.
    pub provider: String,
    /// `SubAccountId`.
    pub account: String,
    /// `ServiceName`.
    pub service: String,
    /// `ServiceCategory`.
    pub service_category: String,
    /// `ChargeCategory`.
    pub charge_category: String,
    /// `RegionId`.
    pub region: String,
    /// The configured tag keys that the row carries, with their values.
    pub tags: BTreeMap<String, String>,
}

/// One day's cost of one series.
#[derive(Debug, Clone, PartialEq)]
pub struct CostPoint {
    /// The UTC day the charge period starts on.
    pub day: Day,
    /// The series the cost belongs to.
    pub dims: Dimensions,
    /// The summed cost.
    pub cost: Money,
}

/// Which costs a budget or report covers: every condition must hold (and), and a condition holds
/// when the row's value is one of its values (or).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    conditions: Vec<(Dimension, Vec<String>)>,
}

impl Scope {
    /// A scope that matches every row.
    pub fn all() -> Scope {
        Scope::default()
    }

    /// Adds a condition: `dim` must be one of `values`.
    pub fn and(mut self, dim: Dimension, values: Vec<String>) -> Scope {
        self.conditions.push((dim, values));
        self
    }

    /// Whether a series falls inside.
    pub fn matches(&self, dims: &Dimensions) -> bool {
        self.conditions
            .iter()
            .all(|(dim, values)| values.iter().any(|v| v == dim.value_of(dims)))
    }

    /// The conditions, for display.
    pub fn conditions(&self) -> &[(Dimension, Vec<String>)] {
        &self.conditions
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.conditions.is_empty() {
            return f.write_str("all costs");
        }
        let parts: Vec<String> = self
            .conditions
            .iter()
            .map(|(d, v)| format!("{d} in [{}]", v.join(", ")))
            .collect();
        f.write_str(&parts.join(" and "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dims(service: &str, team: &str) -> Dimensions {
        let mut d = Dimensions {
            service: service.into(),
            ..Dimensions::default()
        };
        d.tags.insert("team".into(), team.into());
        d
    }

    #[test]
    fn a_scope_ands_its_conditions_and_ors_their_values() {
        let scope = Scope::all()
            .and(
                Dimension::parse("team").unwrap(),
                vec!["ml".into(), "data".into()],
            )
            .and(Dimension::Service, vec!["EC2".into()]);
        assert!(scope.matches(&dims("EC2", "ml")));
        assert!(scope.matches(&dims("EC2", "data")));
        assert!(!scope.matches(&dims("S3", "ml")));
        assert!(!scope.matches(&dims("EC2", "web")));
    }

    #[test]
    fn dimension_names_round_trip() {
        for name in Dimension::FIXED {
            assert_eq!(Dimension::parse(name).unwrap().to_string(), name);
        }
        assert_eq!(
            Dimension::parse("tag:team").unwrap(),
            Dimension::Tag("team".into())
        );
        assert!(Dimension::parse("bad name").is_err());
    }
}
