//! `[[sources]]`: where billing and usage data come from, one kind per entry.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod cost_explorer;
mod prometheus;

pub use cost_explorer::{CeExpression, CeGroupBy, CeValues, CostExplorerSource};
use cost_explorer::{RawCostExplorer, cost_explorer};
pub use prometheus::{
    Pricing, PrometheusAllocation, PrometheusBasis, PrometheusQueries, PrometheusSource,
    UnitPrices, UnitQuery,
};
use prometheus::{RawPrometheus, prometheus};

use super::{ConfigError, invalid};
use crate::domain::Dimension;

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

/// The kinds of source, as a config's `kind` key and a job's `source_kinds` name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case")]
pub enum SourceType {
    /// FOCUS CSV or Parquet files.
    Focus,
    /// Legacy AWS CUR CSV files.
    AwsCur,
    /// AWS Cost Explorer.
    AwsCostExplorer,
    /// Kubernetes usage from Prometheus.
    Prometheus,
}

impl SourceKind {
    /// The kind of source this is.
    pub fn source_type(&self) -> SourceType {
        match self {
            SourceKind::Focus(_) => SourceType::Focus,
            SourceKind::Cur(_) => SourceType::AwsCur,
            SourceKind::CostExplorer(_) => SourceType::AwsCostExplorer,
            SourceKind::Prometheus(_) => SourceType::Prometheus,
        }
    }

    /// The `kind` key's value for this source.
    pub fn name(&self) -> &'static str {
        self.source_type().into()
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

/// An integer key in `1..=max`, `default` when absent.
pub(super) fn bounded(
    key: String,
    value: Option<i64>,
    default: u32,
    max: u32,
) -> Result<u32, ConfigError> {
    let v = value.unwrap_or(i64::from(default));
    if v < 1 || v > i64::from(max) {
        return Err(invalid(key, format!("must be 1 to {max}, got {v}")));
    }
    Ok(v as u32)
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
        assert_eq!((ce.max_pages, ce.timeout.as_secs()), (1000, 600));
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
        assert_eq!(
            error(&format!("{CE}max_pages = 0\n")),
            "sources[0].max_pages: must be 1 to 100000, got 0"
        );
        assert!(
            error(&format!("{CE}timeout_seconds = -5\n")).starts_with("sources[0].timeout_seconds")
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
