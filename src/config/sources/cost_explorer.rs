//! `kind = "aws-cost-explorer"`: the GetCostAndUsage query a source runs, validated.

use serde::{Deserialize, Serialize};

use super::bounded;
use crate::config::{ConfigError, invalid};

/// An AWS Cost Explorer source as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCostExplorer {
    pub(super) name: String,
    metric: Option<String>,
    group_by: Option<Vec<String>>,
    filter: Option<CeExpression>,
    backfill_months: Option<i64>,
    refetch_days: Option<i64>,
    region: Option<String>,
    endpoint_url: Option<String>,
    max_attempts: Option<i64>,
    max_pages: Option<i64>,
    timeout_seconds: Option<i64>,
}

/// One GroupBy of a Cost Explorer query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CeGroupBy {
    /// A dimension such as `SERVICE` or `LINKED_ACCOUNT`.
    Dimension(String),
    /// A cost allocation tag, by key.
    Tag(String),
    /// A cost category, by name.
    CostCategory(String),
}

/// The dimensions Cost Explorer groups DAILY cost by.
const CE_DIMENSIONS: [&str; 14] = [
    "AZ",
    "INSTANCE_TYPE",
    "LEGAL_ENTITY_NAME",
    "INVOICING_ENTITY",
    "LINKED_ACCOUNT",
    "OPERATION",
    "PLATFORM",
    "PURCHASE_TYPE",
    "SERVICE",
    "TENANCY",
    "RECORD_TYPE",
    "USAGE_TYPE",
    "REGION",
    "DATABASE_ENGINE",
];

/// A Cost Explorer filter, written as in the API's JSON (`And`, `Or`, `Not`, `Dimensions`,
/// `Tags`, `CostCategories`); exactly one of them per level.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CeExpression {
    /// All must match.
    #[serde(rename = "And", default, skip_serializing_if = "Option::is_none")]
    pub and: Option<Vec<CeExpression>>,
    /// Any may match.
    #[serde(rename = "Or", default, skip_serializing_if = "Option::is_none")]
    pub or: Option<Vec<CeExpression>>,
    /// Must not match.
    #[serde(rename = "Not", default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<CeExpression>>,
    /// A dimension's values.
    #[serde(
        rename = "Dimensions",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dimensions: Option<CeValues>,
    /// A tag's values.
    #[serde(rename = "Tags", default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<CeValues>,
    /// A cost category's values.
    #[serde(
        rename = "CostCategories",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub cost_categories: Option<CeValues>,
}

/// A key and the values it must take, as in the Cost Explorer API.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CeValues {
    /// The dimension, tag key or cost category name.
    #[serde(rename = "Key")]
    pub key: String,
    /// The values.
    #[serde(rename = "Values", default)]
    pub values: Vec<String>,
    /// `EQUALS`, `ABSENT`, `STARTS_WITH`, ...
    #[serde(rename = "MatchOptions", default)]
    pub match_options: Vec<String>,
}

impl CeExpression {
    fn validate(&self, key: &str) -> Result<(), ConfigError> {
        let set = [
            self.and.is_some(),
            self.or.is_some(),
            self.not.is_some(),
            self.dimensions.is_some(),
            self.tags.is_some(),
            self.cost_categories.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        if set != 1 {
            return Err(invalid(
                key,
                "must hold exactly one of And, Or, Not, Dimensions, Tags, CostCategories",
            ));
        }
        for (name, list) in [("And", &self.and), ("Or", &self.or)] {
            if let Some(list) = list {
                if list.len() < 2 {
                    return Err(invalid(
                        format!("{key}.{name}"),
                        "needs at least two expressions",
                    ));
                }
                for (i, e) in list.iter().enumerate() {
                    e.validate(&format!("{key}.{name}[{i}]"))?;
                }
            }
        }
        if let Some(e) = &self.not {
            e.validate(&format!("{key}.Not"))?;
        }
        if let Some(d) = &self.dimensions
            && !CE_DIMENSIONS.contains(&d.key.as_str())
        {
            return Err(invalid(
                format!("{key}.Dimensions.Key"),
                format!("{:?} is not a Cost Explorer dimension", d.key),
            ));
        }
        Ok(())
    }
}

/// AWS Cost Explorer's GetCostAndUsage, DAILY.
#[derive(Debug, Clone, PartialEq)]
pub struct CostExplorerSource {
    /// `UnblendedCost`, `AmortizedCost`, `NetAmortizedCost`, `NetUnblendedCost` or `BlendedCost`.
    pub metric: String,
    /// Up to two groupings.
    pub group_by: Vec<CeGroupBy>,
    /// An optional filter.
    pub filter: Option<CeExpression>,
    /// Months fetched on the first run (the API keeps 13).
    pub backfill_months: u32,
    /// Trailing days re-fetched on every later run, besides days still estimated.
    pub refetch_days: u32,
    /// The region the client signs for (Cost Explorer lives in `us-east-1`).
    pub region: String,
    /// Another endpoint (tests, proxies); the SDK's default otherwise.
    pub endpoint_url: Option<String>,
    /// Attempts per request, throttling and transient errors included.
    pub max_attempts: u32,
    /// Pages one run may fetch: each is a billed request, and an API that kept answering with
    /// a next page would otherwise be paid for forever.
    pub max_pages: u32,
    /// The longest one run may spend fetching, retries included.
    pub timeout: std::time::Duration,
}

const CE_METRICS: [&str; 5] = [
    "UnblendedCost",
    "AmortizedCost",
    "NetAmortizedCost",
    "NetUnblendedCost",
    "BlendedCost",
];

pub(super) fn cost_explorer(
    raw: &RawCostExplorer,
    key: &dyn Fn(&str) -> String,
) -> Result<CostExplorerSource, ConfigError> {
    let metric = raw.metric.clone().unwrap_or_else(|| "UnblendedCost".into());
    if !CE_METRICS.contains(&metric.as_str()) {
        return Err(invalid(
            key("metric"),
            format!("{metric:?} is not one of {}", CE_METRICS.join(", ")),
        ));
    }
    let mut group_by = Vec::new();
    let written = raw
        .group_by
        .clone()
        .unwrap_or_else(|| vec!["SERVICE".into()]);
    if written.len() > 2 {
        return Err(invalid(
            key("group_by"),
            format!(
                "Cost Explorer groups by at most two keys, got {}",
                written.len()
            ),
        ));
    }
    for (j, g) in written.iter().enumerate() {
        let parsed = match g.split_once(':') {
            Some(("TAG", k)) if !k.is_empty() => CeGroupBy::Tag(k.to_string()),
            Some(("COST_CATEGORY", k)) if !k.is_empty() => CeGroupBy::CostCategory(k.to_string()),
            None if CE_DIMENSIONS.contains(&g.as_str()) => CeGroupBy::Dimension(g.clone()),
            _ => {
                return Err(invalid(
                    key(&format!("group_by[{j}]")),
                    format!(
                        "{g:?} is not a Cost Explorer dimension (e.g. \"SERVICE\"), \"TAG:key\" or \"COST_CATEGORY:name\""
                    ),
                ));
            }
        };
        group_by.push(parsed);
    }
    if let Some(filter) = &raw.filter {
        filter.validate(&key("filter"))?;
    }
    Ok(CostExplorerSource {
        metric,
        group_by,
        filter: raw.filter.clone(),
        backfill_months: bounded(key("backfill_months"), raw.backfill_months, 13, 13)?,
        refetch_days: bounded(key("refetch_days"), raw.refetch_days, 3, 90)?,
        region: raw.region.clone().unwrap_or_else(|| "us-east-1".into()),
        endpoint_url: raw.endpoint_url.clone(),
        max_attempts: bounded(key("max_attempts"), raw.max_attempts, 5, 20)?,
        max_pages: bounded(key("max_pages"), raw.max_pages, 1000, 100_000)?,
        timeout: std::time::Duration::from_secs(u64::from(bounded(
            key("timeout_seconds"),
            raw.timeout_seconds,
            600,
            86_400,
        )?)),
    })
}
