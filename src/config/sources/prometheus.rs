//! `kind = "prometheus"`: the PromQL a source runs and how its usage becomes cost, validated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::bounded;
use crate::config::{ConfigError, OneOrMany, invalid, parse_scope};
use crate::domain::{Currency, Scope};

/// A Prometheus source as written.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrometheus {
    pub(super) name: String,
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

pub(super) fn prometheus(
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
    let pricing = pricing(raw, key)?;
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

/// `prices` (unit prices) or `allocate` (a share of a billed amount), exactly one.
fn pricing(raw: &RawPrometheus, key: &dyn Fn(&str) -> String) -> Result<Pricing, ConfigError> {
    match (&raw.prices, &raw.allocate) {
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
            Ok(Pricing::Prices(UnitPrices {
                currency,
                cpu_core_hour: price("cpu_core_hour", p.cpu_core_hour)?,
                memory_gib_hour: price("memory_gib_hour", p.memory_gib_hour)?,
                gpu_hour: price("gpu_hour", p.gpu_hour)?,
            }))
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
            Ok(Pricing::Allocate(PrometheusAllocation { scope, weights }))
        }
        _ => Err(invalid(
            key("prices"),
            "give exactly one of [prices] (unit prices) or [allocate] (split a billed amount)",
        )),
    }
}
