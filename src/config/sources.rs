//! `[[sources]]`: where billing and usage data come from, one kind per entry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, OneOrMany, invalid, parse_scope};
use crate::domain::{Currency, Dimension, Scope};

/// A source entry as written: its `kind` picks the variant, and each variant takes only its own
/// keys, so a key another kind uses (or a typo) is refused by name when the file is read.
#[derive(Debug, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub(crate) enum RawSource {
    /// `kind = "focus"`.
    Focus(RawFile),
    /// `kind = "aws-cur"`.
    AwsCur(RawFile),
    /// `kind = "aws-cost-explorer"`.
    AwsCostExplorer(RawCostExplorer),
    /// `kind = "prometheus"`.
    Prometheus(RawPrometheus),
}

/// A file source (FOCUS or CUR) as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    name: String,
    path: String,
    cost_column: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    tags: Vec<String>,
}

/// An AWS Cost Explorer source as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCostExplorer {
    name: String,
    metric: Option<String>,
    group_by: Option<Vec<String>>,
    filter: Option<CeExpression>,
    backfill_months: Option<i64>,
    refetch_days: Option<i64>,
    region: Option<String>,
    endpoint_url: Option<String>,
    max_attempts: Option<i64>,
}

/// A Prometheus source as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrometheus {
    name: String,
    url: String,
    basis: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    labels: Vec<String>,
    step_seconds: Option<i64>,
    queries: Option<RawQueries>,
    prices: Option<RawPrices>,
    allocate: Option<RawAllocate>,
    units: Option<UnitQuery>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawQueries {
    cpu: Option<String>,
    memory: Option<String>,
    gpu: Option<String>,
    cpu_capacity: Option<String>,
    memory_capacity: Option<String>,
    gpu_capacity: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawPrices {
    currency: Option<String>,
    cpu_core_hour: Option<f64>,
    memory_gib_hour: Option<f64>,
    gpu_hour: Option<f64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RawAllocate {
    scope: BTreeMap<String, OneOrMany>,
    cpu_weight: Option<f64>,
    memory_weight: Option<f64>,
    gpu_weight: Option<f64>,
}

/// Which FOCUS cost column is summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CostColumn {
    /// Amortized cost after discounts: what a team really consumed. The default.
    EffectiveCost,
    /// What the invoice charges.
    BilledCost,
    /// Public list price.
    ListCost,
    /// Negotiated price before commitment discounts.
    ContractedCost,
}

impl CostColumn {
    /// The FOCUS column name.
    pub fn column(self) -> &'static str {
        match self {
            CostColumn::EffectiveCost => "EffectiveCost",
            CostColumn::BilledCost => "BilledCost",
            CostColumn::ListCost => "ListCost",
            CostColumn::ContractedCost => "ContractedCost",
        }
    }

    fn parse(s: &str) -> Option<CostColumn> {
        [
            CostColumn::EffectiveCost,
            CostColumn::BilledCost,
            CostColumn::ListCost,
            CostColumn::ContractedCost,
        ]
        .into_iter()
        .find(|c| c.column() == s)
    }
}

/// A FOCUS export: files matching a path or glob.
#[derive(Debug, Clone, PartialEq)]
pub struct FocusSource {
    /// The path or glob, resolved against the config file's folder.
    pub path: PathBuf,
    /// The cost column to sum.
    pub cost_column: CostColumn,
    /// Tag keys kept as dimensions (from the `Tags` JSON).
    pub tag_keys: Vec<String>,
}

/// A legacy AWS Cost and Usage Report: CSV files matching a path or glob.
#[derive(Debug, Clone, PartialEq)]
pub struct CurSource {
    /// The path or glob, resolved against the config file's folder.
    pub path: PathBuf,
    /// The cost column to sum (default `lineItem/UnblendedCost`).
    pub cost_column: String,
    /// Tag keys kept as dimensions (from `resourceTags/user:KEY` columns).
    pub tag_keys: Vec<String>,
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
}

/// Where Prometheus usage comes from: what pods request, or what they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrometheusBasis {
    /// Resource requests (what the scheduler reserves; what most allocation tools charge).
    Requests,
    /// Measured usage.
    Usage,
}

/// PromQL per resource; each returns one value per namespace (and label) at each step.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusQueries {
    /// CPU cores.
    pub cpu: String,
    /// Memory GiB.
    pub memory: String,
    /// GPUs.
    pub gpu: String,
    /// Allocatable CPU cores of the cluster.
    pub cpu_capacity: String,
    /// Allocatable memory GiB of the cluster.
    pub memory_capacity: String,
    /// Allocatable GPUs of the cluster.
    pub gpu_capacity: String,
}

/// Prices per unit of usage.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitPrices {
    /// The prices' currency.
    pub currency: Currency,
    /// Per CPU core-hour.
    pub cpu_core_hour: f64,
    /// Per memory GiB-hour.
    pub memory_gib_hour: f64,
    /// Per GPU-hour.
    pub gpu_hour: f64,
}

/// Splits a billed amount across namespaces by usage share; the unused share is `idle`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusAllocation {
    /// Which stored costs are the cluster's bill.
    pub scope: Scope,
    /// Share of the bill attributed to CPU, memory and GPU (sums to 1).
    pub weights: [f64; 3],
}

/// A counter stored per day and namespace for unit economics (e.g. requests served).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnitQuery {
    /// What is counted, e.g. `requests`.
    pub name: String,
    /// PromQL giving the count per step and namespace, e.g. an `increase(...)` over the step.
    pub query: String,
}

/// Kubernetes usage from Prometheus, turned into cost per namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusSource {
    /// The server, e.g. `http://prometheus:9090`.
    pub url: String,
    /// Requests or usage.
    pub basis: PrometheusBasis,
    /// Labels kept besides `namespace` (stored as tags).
    pub labels: Vec<String>,
    /// Query resolution in seconds.
    pub step_seconds: u32,
    /// The queries (defaults follow kube-state-metrics and cAdvisor names).
    pub queries: PrometheusQueries,
    /// How usage becomes cost.
    pub pricing: Pricing,
    /// An optional counter for cost per unit.
    pub units: Option<UnitQuery>,
}

/// How Prometheus usage becomes cost.
#[derive(Debug, Clone, PartialEq)]
pub enum Pricing {
    /// Usage times unit prices.
    Prices(UnitPrices),
    /// A billed amount split by usage share.
    Allocate(PrometheusAllocation),
}

/// Where a source's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// FOCUS CSV or Parquet files.
    Focus(FocusSource),
    /// Legacy AWS CUR CSV files.
    Cur(CurSource),
    /// AWS Cost Explorer.
    CostExplorer(CostExplorerSource),
    /// Kubernetes usage from Prometheus.
    Prometheus(PrometheusSource),
}

/// A configured billing source.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Unique name, stored with every row.
    pub name: String,
    /// What it reads.
    pub kind: SourceKind,
}

/// The source kinds a config (and a job's `source_kinds`) may name.
pub const SOURCE_KINDS: [&str; 4] = ["focus", "aws-cur", "aws-cost-explorer", "prometheus"];

impl SourceKind {
    /// The `kind` key's value for this source.
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Focus(_) => "focus",
            SourceKind::Cur(_) => "aws-cur",
            SourceKind::CostExplorer(_) => "aws-cost-explorer",
            SourceKind::Prometheus(_) => "prometheus",
        }
    }
}

pub(crate) fn validate_source(
    i: usize,
    raw: &RawSource,
    base_dir: &Path,
) -> Result<Source, ConfigError> {
    let key = |k: &str| format!("sources[{i}].{k}");
    let (name, kind) = match raw {
        RawSource::Focus(f) => (&f.name, SourceKind::Focus(focus(f, base_dir, &key)?)),
        RawSource::AwsCur(f) => (&f.name, SourceKind::Cur(cur(f, base_dir, &key)?)),
        RawSource::AwsCostExplorer(c) => {
            (&c.name, SourceKind::CostExplorer(cost_explorer(c, &key)?))
        }
        RawSource::Prometheus(p) => (&p.name, SourceKind::Prometheus(prometheus(p, &key)?)),
    };
    if name.trim().is_empty() {
        return Err(invalid(key("name"), "must not be empty"));
    }
    Ok(Source {
        name: name.clone(),
        kind,
    })
}

fn focus(
    raw: &RawFile,
    base_dir: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<FocusSource, ConfigError> {
    let cost_column = match raw.cost_column.as_deref() {
        None => CostColumn::EffectiveCost,
        Some(c) => CostColumn::parse(c).ok_or_else(|| {
            invalid(
                key("cost_column"),
                format!("{c:?} is not one of EffectiveCost, BilledCost, ListCost, ContractedCost"),
            )
        })?,
    };
    Ok(FocusSource {
        path: base_dir.join(&raw.path),
        cost_column,
        tag_keys: tag_keys(raw, key)?,
    })
}

fn cur(
    raw: &RawFile,
    base_dir: &Path,
    key: &dyn Fn(&str) -> String,
) -> Result<CurSource, ConfigError> {
    Ok(CurSource {
        path: base_dir.join(&raw.path),
        cost_column: raw
            .cost_column
            .clone()
            .unwrap_or_else(|| "lineItem/UnblendedCost".into()),
        tag_keys: tag_keys(raw, key)?,
    })
}

/// A file source's `tags`, each a key usable as a `tag:` dimension.
fn tag_keys(raw: &RawFile, key: &dyn Fn(&str) -> String) -> Result<Vec<String>, ConfigError> {
    for (j, t) in raw.tags.iter().enumerate() {
        if !matches!(Dimension::parse(t), Ok(Dimension::Tag(_))) {
            return Err(invalid(
                key(&format!("tags[{j}]")),
                format!("{t:?} is not a usable tag key"),
            ));
        }
    }
    Ok(raw.tags.clone())
}

const CE_METRICS: [&str; 5] = [
    "UnblendedCost",
    "AmortizedCost",
    "NetAmortizedCost",
    "NetUnblendedCost",
    "BlendedCost",
];

fn bounded(key: String, value: Option<i64>, default: u32, max: u32) -> Result<u32, ConfigError> {
    let v = value.unwrap_or(i64::from(default));
    if v < 1 || v > i64::from(max) {
        return Err(invalid(key, format!("must be 1 to {max}, got {v}")));
    }
    Ok(v as u32)
}

fn cost_explorer(
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
    })
}

/// kube-state-metrics and cAdvisor names, summed per namespace (and the configured labels).
fn default_queries(basis: PrometheusBasis, by: &str) -> PrometheusQueries {
    let (cpu, memory) = match basis {
        PrometheusBasis::Requests => (
            format!("sum by ({by}) (kube_pod_container_resource_requests{{resource=\"cpu\"}})"),
            format!(
                "sum by ({by}) (kube_pod_container_resource_requests{{resource=\"memory\"}}) / 1073741824"
            ),
        ),
        PrometheusBasis::Usage => (
            format!(
                "sum by ({by}) (rate(container_cpu_usage_seconds_total{{container!=\"\"}}[5m]))"
            ),
            format!(
                "sum by ({by}) (container_memory_working_set_bytes{{container!=\"\"}}) / 1073741824"
            ),
        ),
    };
    PrometheusQueries {
        cpu,
        memory,
        gpu: format!(
            "sum by ({by}) (kube_pod_container_resource_requests{{resource=\"nvidia_com_gpu\"}})"
        ),
        cpu_capacity: "sum(kube_node_status_allocatable{resource=\"cpu\"})".into(),
        memory_capacity: "sum(kube_node_status_allocatable{resource=\"memory\"}) / 1073741824"
            .into(),
        gpu_capacity: "sum(kube_node_status_allocatable{resource=\"nvidia_com_gpu\"})".into(),
    }
}

fn prometheus(
    raw: &RawPrometheus,
    key: &dyn Fn(&str) -> String,
) -> Result<PrometheusSource, ConfigError> {
    let url = raw.url.clone();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(invalid(
            key("url"),
            format!("{url:?} is not an http(s) URL"),
        ));
    }
    let basis = match raw.basis.as_deref().unwrap_or("requests") {
        "requests" => PrometheusBasis::Requests,
        "usage" => PrometheusBasis::Usage,
        other => {
            return Err(invalid(
                key("basis"),
                format!("{other:?} is not \"requests\" or \"usage\""),
            ));
        }
    };
    let labels = raw.labels.clone();
    for (j, l) in labels.iter().enumerate() {
        let ok = !l.is_empty()
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && l != "namespace";
        if !ok {
            return Err(invalid(
                key(&format!("labels[{j}]")),
                format!("{l:?} is not a Prometheus label name other than namespace"),
            ));
        }
    }
    let by = std::iter::once("namespace".to_string())
        .chain(labels.iter().cloned())
        .collect::<Vec<_>>()
        .join(", ");
    let mut queries = default_queries(basis, &by);
    if let Some(q) = &raw.queries {
        for (target, given) in [
            (&mut queries.cpu, &q.cpu),
            (&mut queries.memory, &q.memory),
            (&mut queries.gpu, &q.gpu),
            (&mut queries.cpu_capacity, &q.cpu_capacity),
            (&mut queries.memory_capacity, &q.memory_capacity),
            (&mut queries.gpu_capacity, &q.gpu_capacity),
        ] {
            if let Some(g) = given {
                *target = g.clone();
            }
        }
    }
    let pricing = match (&raw.prices, &raw.allocate) {
        (Some(p), None) => {
            let currency = Currency::parse(p.currency.as_deref().unwrap_or("USD"))
                .map_err(|e| invalid(key("prices.currency"), e.to_string()))?;
            let price = |name: &str, v: Option<f64>| match v.unwrap_or(0.0) {
                v if v.is_finite() && v >= 0.0 => Ok(v),
                v => Err(invalid(
                    key(&format!("prices.{name}")),
                    format!("must be a price >= 0, got {v}"),
                )),
            };
            Pricing::Prices(UnitPrices {
                currency,
                cpu_core_hour: price("cpu_core_hour", p.cpu_core_hour)?,
                memory_gib_hour: price("memory_gib_hour", p.memory_gib_hour)?,
                gpu_hour: price("gpu_hour", p.gpu_hour)?,
            })
        }
        (None, Some(a)) => {
            let scope = parse_scope(&key("allocate.scope"), &a.scope)?;
            if scope.conditions().is_empty() {
                return Err(invalid(
                    key("allocate.scope"),
                    "must select the cluster's cost (e.g. service = \"Amazon Elastic Kubernetes Service\")",
                ));
            }
            // OpenCost's default prices put about 65% of a typical node's cost on CPU.
            let weights = [
                a.cpu_weight.unwrap_or(0.65),
                a.memory_weight.unwrap_or(0.35),
                a.gpu_weight.unwrap_or(0.0),
            ];
            let total: f64 = weights.iter().sum();
            if weights.iter().any(|w| !w.is_finite() || *w < 0.0) || (total - 1.0).abs() > 1e-9 {
                return Err(invalid(
                    key("allocate"),
                    format!(
                        "cpu_weight, memory_weight and gpu_weight must be >= 0 and sum to 1, got {weights:?}"
                    ),
                ));
            }
            Pricing::Allocate(PrometheusAllocation { scope, weights })
        }
        _ => {
            return Err(invalid(
                key("prices"),
                "give exactly one of [prices] (unit prices) or [allocate] (split a billed amount)",
            ));
        }
    };
    if let Some(u) = &raw.units
        && (u.name.trim().is_empty() || u.query.trim().is_empty())
    {
        return Err(invalid(key("units"), "needs a name and a query"));
    }
    Ok(PrometheusSource {
        url: url.trim_end_matches('/').to_string(),
        basis,
        labels,
        step_seconds: bounded(key("step_seconds"), raw.step_seconds, 3600, 86_400)?,
        queries,
        pricing,
        units: raw.units.clone(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let raw = Config::parse_raw(text, Path::new("costcast.toml"))?;
        Config::from_raw(raw, Path::new("/etc/costcast"), &|_| None)
    }

    fn error(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    const CE: &str = "[[sources]]\nname = 'aws'\nkind = 'aws-cost-explorer'\n";
    const PROM: &str = "[[sources]]\nname = 'k8s'\nkind = 'prometheus'\nurl = 'http://p:9090'\n";

    #[test]
    fn cost_explorer_defaults_and_a_filter_in_the_api_shape() {
        let c = load(&format!(
            "{CE}group_by = ['SERVICE', 'TAG:team']\n[sources.filter]\nNot = {{ Dimensions = {{ Key = 'RECORD_TYPE', Values = ['Credit'] }} }}\n"
        ))
        .unwrap();
        let super::SourceKind::CostExplorer(ce) = &c.sources[0].kind else {
            panic!("not Cost Explorer")
        };
        assert_eq!(ce.metric, "UnblendedCost");
        assert_eq!((ce.backfill_months, ce.refetch_days), (13, 3));
        assert_eq!(ce.group_by[1], super::CeGroupBy::Tag("team".into()));
        assert!(ce.filter.as_ref().unwrap().not.is_some());
    }

    #[test]
    fn cost_explorer_mistakes_name_the_key() {
        assert!(
            error(&format!("{CE}metric = 'Cost'\n")).starts_with("sources[0].metric: \"Cost\"")
        );
        assert!(
            error(&format!("{CE}group_by = ['SERVICE', 'REGION', 'TAG:a']\n"))
                .starts_with("sources[0].group_by: Cost Explorer groups by at most two")
        );
        assert!(error(&format!("{CE}group_by = ['TAG:']\n")).starts_with("sources[0].group_by[0]"));
        assert!(
            error(&format!("{CE}backfill_months = 14\n")).starts_with("sources[0].backfill_months")
        );
        assert!(
            error(&format!(
                "{CE}[sources.filter]\nAnd = [{{ Tags = {{ Key = 'team', Values = ['ml'] }} }}, {{ Dimensions = {{ Key = 'SERVISE', Values = ['x'] }} }}]\n"
            ))
            .starts_with("sources[0].filter.And[1].Dimensions.Key: \"SERVISE\"")
        );
        assert!(
            error(&format!(
                "{CE}[sources.filter]\nTags = {{ Key = 'team', Values = ['ml'] }}\nDimensions = {{ Key = 'SERVICE', Values = ['x'] }}\n"
            ))
            .starts_with("sources[0].filter: must hold exactly one")
        );
    }

    #[test]
    fn a_field_of_another_kind_is_refused() {
        let e = error(&format!("{CE}path = 'x.csv'\n"));
        assert!(e.starts_with("config file costcast.toml: "), "{e}");
        assert!(e.contains("unknown field `path`"), "{e}");
        let e = error("[[sources]]\nname = 'a'\nkind = 'focus '\npath = 'x.csv'\n");
        assert!(
            e.contains("unknown variant `focus `, expected one of `focus`"),
            "{e}"
        );
        let e = error("[[sources]]\nname = 'k'\nkind = 'prometheus'\n[sources.prices]\n");
        assert!(e.contains("missing field `url`"), "{e}");
    }

    #[test]
    fn prometheus_needs_exactly_one_pricing_and_sane_weights() {
        assert!(error(PROM).starts_with("sources[0].prices: give exactly one"));
        let priced = load(&format!(
            "{PROM}labels = ['team']\n[sources.prices]\ncpu_core_hour = 0.03\n"
        ))
        .unwrap();
        let super::SourceKind::Prometheus(p) = &priced.sources[0].kind else {
            panic!("not Prometheus")
        };
        assert!(p.queries.cpu.contains("sum by (namespace, team)"));
        assert!(
            p.queries
                .cpu
                .contains("kube_pod_container_resource_requests")
        );
        assert_eq!(p.step_seconds, 3600);
        let measured = load(&format!(
            "{PROM}basis = 'usage'
[sources.prices]
"
        ))
        .unwrap();
        let super::SourceKind::Prometheus(p) = &measured.sources[0].kind else {
            panic!("not Prometheus")
        };
        assert!(p.queries.cpu.contains("container_cpu_usage_seconds_total"));
        assert!(
            p.queries
                .memory
                .contains("container_memory_working_set_bytes")
        );
        assert!(
            error(&format!(
                "{PROM}[sources.allocate]\nscope = {{ service = 'EKS' }}\ncpu_weight = 0.9\n"
            ))
            .starts_with("sources[0].allocate: cpu_weight, memory_weight and gpu_weight")
        );
        assert!(
            error(&format!("{PROM}labels = ['namespace']\n[sources.prices]\n"))
                .starts_with("sources[0].labels[0]")
        );
        assert!(
            error(&format!("{PROM}[sources.prices]\ngpu_hour = -1.0\n"))
                .starts_with("sources[0].prices.gpu_hour")
        );
    }
}
