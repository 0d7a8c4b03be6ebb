//! Costs: totals per group, and unit economics against Prometheus usage.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::cube::CostTable;
use super::{Report, money};
use crate::domain::{Day, Dimension, UsageMetric, UsagePoint};
use crate::store::StoredSeries;

/// Cost totals per group of `group_by` dimensions, largest first, with the first and last
/// day each group reported: `table` answers a day-granularity query of the cube.
pub fn costs(table: &CostTable, group_by: &[Dimension]) -> Report {
    let mut columns: Vec<String> = group_by.iter().map(ToString::to_string).collect();
    columns.extend(["currency", "from", "to", "cost"].map(String::from));
    let rows = table
        .groups
        .iter()
        .filter_map(|g| {
            let mut reported = table
                .periods
                .iter()
                .zip(&g.amounts)
                .filter_map(|(day, a)| a.map(|_| *day));
            let first = reported.next()?;
            let last = reported.next_back().unwrap_or(first);
            let mut row: Vec<Value> = g.key.iter().cloned().map(Value::String).collect();
            row.extend([
                json!(g.currency.as_str()),
                json!(first.to_string()),
                json!(last.to_string()),
                money(g.total),
            ]);
            Some(row)
        })
        .collect();
    Report { columns, rows }
}

/// Costs per period and group, a row wherever the group reported: the API's costs CSV.
pub fn cost_periods(table: &CostTable, group_by: &[Dimension]) -> Report {
    let mut columns = vec!["period".to_string()];
    columns.extend(group_by.iter().map(ToString::to_string));
    columns.extend(["currency", "amount"].map(String::from));
    let mut rows = Vec::new();
    for g in &table.groups {
        for (period, amount) in table.periods.iter().zip(&g.amounts) {
            if let Some(a) = amount {
                let mut row = vec![json!(period.to_string())];
                row.extend(g.key.iter().cloned().map(Value::String));
                row.extend([json!(g.currency.as_str()), money(*a)]);
                rows.push(row);
            }
        }
    }
    Report { columns, rows }
}

/// Unit economics: per source and namespace, the counted units (e.g. requests), the cost of the
/// same days, and the cost per 1,000 units. `usage` pairs each point with its source.
pub fn unit_costs(
    usage: &[(String, UsagePoint)],
    series: &[StoredSeries],
    costs: &[(i64, Day, f64)],
) -> Report {
    let mut units: BTreeMap<(String, String, String), (f64, Vec<Day>)> = BTreeMap::new();
    for (source, u) in usage {
        if let UsageMetric::Units(name) = &u.metric {
            let entry = units
                .entry((source.clone(), u.namespace.clone(), name.clone()))
                .or_default();
            entry.0 += u.quantity;
            entry.1.push(u.day);
        }
    }
    let by_id: BTreeMap<i64, &StoredSeries> = series.iter().map(|s| (s.id, s)).collect();
    let mut r = Report::new(&[
        "source",
        "namespace",
        "unit",
        "units",
        "cost",
        "currency",
        "cost_per_1000",
    ]);
    for ((source, namespace, unit), (count, days)) in units {
        // Only the days that were counted, so a partial count never meets a full cost.
        let mut cost = 0.0;
        let mut currency = String::new();
        for (id, day, amount) in costs {
            let Some(s) = by_id.get(id) else { continue };
            if s.dims.source == source
                && s.dims.tags.get("namespace") == Some(&namespace)
                && days.contains(day)
            {
                cost += amount;
                currency = s.currency.as_str().to_string();
            }
        }
        let per_1000 = if count > 0.0 {
            json!((cost / count * 1000.0 * 10_000.0).round() / 10_000.0)
        } else {
            Value::Null
        };
        r.rows.push(vec![
            json!(source),
            json!(namespace),
            json!(unit),
            json!(count.round()),
            money(cost),
            json!(currency),
            per_1000,
        ]);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, d};
    use crate::report::Format;
    use crate::report::cube::CostGroup;

    fn table() -> CostTable {
        let group = |team: &str, amounts: Vec<Option<f64>>| CostGroup {
            key: vec![team.to_string()],
            currency: Currency::usd(),
            total: amounts.iter().flatten().sum(),
            amounts,
        };
        CostTable {
            periods: vec![d("2025-01-01"), d("2025-01-02"), d("2025-01-03")],
            groups: vec![
                group("ml", vec![None, Some(10.006), Some(20.0)]),
                group("web", vec![Some(1.0), None, None]),
            ],
        }
    }

    #[test]
    fn totals_name_the_days_each_group_reported_and_periods_skip_the_silent_ones() {
        let team = [Dimension::Tag("team".into())];
        assert_eq!(
            costs(&table(), &team).render(Format::Csv),
            "team,currency,from,to,cost\n\
             ml,USD,2025-01-02,2025-01-03,30.01\n\
             web,USD,2025-01-01,2025-01-01,1.0\n"
        );
        assert_eq!(
            cost_periods(&table(), &team).render(Format::Csv),
            "period,team,currency,amount\n\
             2025-01-02,ml,USD,10.01\n\
             2025-01-03,ml,USD,20.0\n\
             2025-01-01,web,USD,1.0\n"
        );
    }
}
