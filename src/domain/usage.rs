use std::collections::BTreeMap;
use std::fmt;

use super::Day;

/// What a usage quantity measures.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UsageMetric {
    /// CPU core-hours.
    CpuCoreHours,
    /// Memory GiB-hours.
    MemoryGibHours,
    /// GPU-hours.
    GpuHours,
    /// A business counter for unit economics (e.g. requests served), by name.
    Units(String),
}

impl UsageMetric {
    /// The stored name: `cpu_core_hours`, `memory_gib_hours`, `gpu_hours` or `units:NAME`.
    pub fn name(&self) -> String {
        match self {
            UsageMetric::CpuCoreHours => "cpu_core_hours".into(),
            UsageMetric::MemoryGibHours => "memory_gib_hours".into(),
            UsageMetric::GpuHours => "gpu_hours".into(),
            UsageMetric::Units(n) => format!("units:{n}"),
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<UsageMetric> {
        Some(match s {
            "cpu_core_hours" => UsageMetric::CpuCoreHours,
            "memory_gib_hours" => UsageMetric::MemoryGibHours,
            "gpu_hours" => UsageMetric::GpuHours,
            other => UsageMetric::Units(other.strip_prefix("units:")?.to_string()),
        })
    }
}

impl fmt::Display for UsageMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One day's usage of one namespace (and its configured labels).
#[derive(Debug, Clone, PartialEq)]
pub struct UsagePoint {
    /// The day (UTC).
    pub day: Day,
    /// The Kubernetes namespace.
    pub namespace: String,
    /// Other kept labels, e.g. `team`.
    pub labels: BTreeMap<String, String>,
    /// What is measured.
    pub metric: UsageMetric,
    /// How much.
    pub quantity: f64,
}
