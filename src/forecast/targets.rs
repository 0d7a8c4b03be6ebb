//! Which series get forecast: each budget's scope total (decisions are made there), and the
//! report grain (default service × team) with the top series by spend and the rest pooled as
//! `other`, so noise in tiny series never dominates.

use std::collections::{BTreeMap, HashMap};

use super::RECURRING_CATEGORIES;
use crate::domain::{Budget, Day, Dimension, Dimensions, Holidays};

/// A series to forecast: daily usage and recurring charges, summed over its member series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Target {
    /// The name forecasts are stored under.
    pub name: String,
    /// Daily usage-like cost.
    pub usage: Vec<(Day, f64)>,
    /// Daily recurring charges (Purchase, Tax).
    pub recurring: Vec<(Day, f64)>,
    /// The holidays its forecast may fit.
    pub holidays: Holidays,
}

impl Target {
    /// A series of daily cost with no recurring charges and no holidays.
    pub fn plain(name: impl Into<String>, usage: Vec<(Day, f64)>) -> Target {
        Target {
            name: name.into(),
            usage,
            recurring: Vec::new(),
            holidays: Holidays::default(),
        }
    }
}

/// The forecast series name of a budget's scope.
pub fn budget_series(budget: &str) -> String {
    format!("budget:{budget}")
}

/// The report series name of a set of grain values, e.g. `service=EC2|team=ml`.
pub fn grain_series(grain: &[Dimension], dims: &Dimensions) -> String {
    grain
        .iter()
        .map(|d| {
            let v = d.value_of(dims);
            format!("{d}={}", if v.is_empty() { "(none)" } else { v })
        })
        .collect::<Vec<_>>()
        .join("|")
}

/// The name the long tail of report series is pooled under.
pub const OTHER_SERIES: &str = "other";

/// Days of recent spend that rank report series.
const RANKING_DAYS: i64 = 90;

/// Builds the forecast targets from stored series and their daily costs.
pub fn build_targets(
    series: &[(i64, Dimensions)],
    costs: &[(i64, Day, f64)],
    budgets: &[Budget],
    grain: &[Dimension],
    top_series: usize,
    holidays: &Holidays,
) -> Vec<Target> {
    let last_day = costs.iter().map(|c| c.1).max();
    let rank_from = last_day.map(|d| d.add_days(-RANKING_DAYS));

    // Rank report groups by recent spend; keep the top ones, pool the rest.
    let group_of: HashMap<i64, String> = series
        .iter()
        .map(|(id, dims)| (*id, grain_series(grain, dims)))
        .collect();
    let mut recent: HashMap<&str, f64> = HashMap::new();
    for (id, day, amount) in costs {
        if rank_from.is_some_and(|from| *day > from)
            && let Some(g) = group_of.get(id)
        {
            *recent.entry(g.as_str()).or_default() += amount;
        }
    }
    let mut ranked: Vec<(&str, f64)> = recent.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let kept: std::collections::HashSet<&str> =
        ranked.iter().take(top_series).map(|(g, _)| *g).collect();

    let mut members: HashMap<i64, (bool, Vec<String>)> = HashMap::new();
    for (id, dims) in series {
        let group = &group_of[id];
        let report = if kept.contains(group.as_str()) {
            group.clone()
        } else {
            OTHER_SERIES.to_string()
        };
        let mut names = vec![report];
        names.extend(
            budgets
                .iter()
                .filter(|b| b.scope.matches(dims))
                .map(|b| budget_series(&b.name)),
        );
        let recurring = RECURRING_CATEGORIES.contains(&dims.charge_category.as_str());
        members.insert(*id, (recurring, names));
    }

    type Daily = BTreeMap<Day, f64>;
    let mut sums: BTreeMap<String, (Daily, Daily)> = BTreeMap::new();
    for b in budgets {
        sums.entry(budget_series(&b.name)).or_default();
    }
    for (id, day, amount) in costs {
        let Some((recurring, names)) = members.get(id) else {
            continue;
        };
        for name in names {
            let (usage, fees) = sums.entry(name.clone()).or_default();
            let into = if *recurring { fees } else { usage };
            *into.entry(*day).or_default() += amount;
        }
    }
    sums.into_iter()
        .map(|(name, (usage, recurring))| Target {
            name,
            usage: usage.into_iter().collect(),
            recurring: recurring.into_iter().collect(),
            holidays: holidays.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Scope;

    fn dims(service: &str, team: &str, category: &str) -> Dimensions {
        let mut d = Dimensions {
            service: service.into(),
            charge_category: category.into(),
            ..Dimensions::default()
        };
        d.tags.insert("team".into(), team.into());
        d
    }

    #[test]
    fn budgets_get_their_scope_total_and_the_tail_is_pooled() {
        let series = vec![
            (1, dims("EC2", "ml", "Usage")),
            (2, dims("S3", "ml", "Usage")),
            (3, dims("Support", "ml", "Purchase")),
            (4, dims("EC2", "web", "Usage")),
        ];
        let day = Day::parse("2024-05-01").unwrap();
        let costs = vec![
            (1, day, 100.0),
            (2, day, 1.0),
            (3, day, 50.0),
            (4, day, 30.0),
        ];
        let budget = Budget {
            scope: Scope::all().and(Dimension::Tag("team".into()), vec!["ml".into()]),
            ..Budget::monthly("ml", 1.0)
        };
        let grain = vec![Dimension::Service, Dimension::Tag("team".into())];
        let targets = build_targets(&series, &costs, &[budget], &grain, 2, &Holidays::default());
        let by_name: HashMap<&str, &Target> =
            targets.iter().map(|t| (t.name.as_str(), t)).collect();
        let ml = by_name["budget:ml"];
        assert_eq!(ml.usage, vec![(day, 101.0)]);
        assert_eq!(ml.recurring, vec![(day, 50.0)]);
        assert!(by_name.contains_key("service=EC2|team=ml"));
        assert!(by_name.contains_key("service=Support|team=ml"));
        assert_eq!(by_name["other"].usage, vec![(day, 31.0)]);
    }
}
