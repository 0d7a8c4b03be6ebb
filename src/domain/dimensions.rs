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

/// Conditions that must all hold: each holds when the row's value is one of its values.
type Conditions = Vec<(Dimension, Vec<String>)>;

/// Which costs a budget or report covers: every condition must hold (and), a condition holds
/// when the row's value is one of its values (or), and when alternatives are given, at least
/// one of them must hold as well (or of ands).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scope {
    conditions: Conditions,
    any_of: Vec<Conditions>,
}

fn all_hold(conditions: &Conditions, dims: &Dimensions) -> bool {
    conditions
        .iter()
        .all(|(dim, values)| values.iter().any(|v| v == dim.value_of(dims)))
}

fn describe(conditions: &Conditions) -> String {
    conditions
        .iter()
        .map(|(d, v)| format!("{d} in [{}]", v.join(", ")))
        .collect::<Vec<_>>()
        .join(" and ")
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

    /// Adds an alternative: a row matches when it meets every other condition and at least one
    /// of the alternatives.
    pub fn or_any(mut self, alternative: Scope) -> Scope {
        self.any_of.push(alternative.conditions);
        self
    }

    /// Whether a series falls inside.
    pub fn matches(&self, dims: &Dimensions) -> bool {
        all_hold(&self.conditions, dims)
            && (self.any_of.is_empty() || self.any_of.iter().any(|c| all_hold(c, dims)))
    }

    /// The conditions, for display.
    pub fn conditions(&self) -> &[(Dimension, Vec<String>)] {
        &self.conditions
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.conditions.is_empty() {
            parts.push(describe(&self.conditions));
        }
        if !self.any_of.is_empty() {
            let alternatives: Vec<String> = self.any_of.iter().map(describe).collect();
            parts.push(format!("({})", alternatives.join(" or ")));
        }
        if parts.is_empty() {
            return f.write_str("all costs");
        }
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
    fn alternatives_or_their_and_ed_conditions() {
        let ml = Scope::all().and(Dimension::parse("team").unwrap(), vec!["ml".into()]);
        let ec2 = Scope::all().and(Dimension::Service, vec!["EC2".into()]);
        let scope = Scope::all().or_any(ml).or_any(ec2);
        assert!(scope.matches(&dims("S3", "ml")));
        assert!(scope.matches(&dims("EC2", "web")));
        assert!(!scope.matches(&dims("S3", "web")));
        assert_eq!(scope.to_string(), "(team in [ml] or service in [EC2])");
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
