//! Every stored daily cost held in memory, series by day, so a year of thousands of series
//! aggregates in milliseconds: a SQL `GROUP BY` over millions of rows on every request cannot
//! answer in the tens of milliseconds a report API owes a dashboard. It is rebuilt when a newer
//! run finishes; 8 bytes per series and day (10,000 series × 400 days is 32 MB).

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{Currency, Day, Dimension, Dimensions, Scope};
use crate::store::StoredSeries;

/// How days are bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// Each day.
    #[default]
    Day,
    /// ISO weeks, labelled by their Monday.
    Week,
    /// Calendar months, labelled by their first day.
    Month,
}

impl Granularity {
    /// The first day of the bucket `day` falls in.
    pub fn bucket(self, day: Day) -> Day {
        match self {
            Granularity::Day => day,
            Granularity::Week => day.add_days(-i64::from(day.weekday_index())),
            Granularity::Month => day.month_start(),
        }
    }
}

/// One aggregation request.
#[derive(Debug, Clone)]
pub struct CostQuery {
    /// First day.
    pub from: Day,
    /// Last day (included).
    pub to: Day,
    /// Dimensions to group by; empty for one total.
    pub group_by: Vec<Dimension>,
    /// Bucket size.
    pub granularity: Granularity,
    /// Which series count.
    pub scope: Scope,
}

/// One group's amounts, aligned with [`CostTable::periods`].
#[derive(Debug, Clone, PartialEq)]
pub struct CostGroup {
    /// The group's value of each `group_by` dimension (empty when the series has none).
    pub key: Vec<String>,
    /// The currency its amounts are in.
    pub currency: Currency,
    /// The sum per period; `None` where no series of the group reported that period.
    pub amounts: Vec<Option<f64>>,
    /// The sum over all periods.
    pub total: f64,
}

/// The answer to a [`CostQuery`]: groups by total, largest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CostTable {
    /// The first day of each period.
    pub periods: Vec<Day>,
    /// The groups.
    pub groups: Vec<CostGroup>,
}

/// Fills a [`CostCube`] point by point.
#[derive(Debug)]
pub struct CubeBuilder {
    cube: CostCube,
    row_of: HashMap<i64, usize>,
}

impl CubeBuilder {
    /// Places one point; points of unknown series or outside the span are ignored.
    pub fn put(&mut self, id: i64, day: Day, amount: f64) {
        let c = &mut self.cube;
        let (Some(&row), Some(first)) = (self.row_of.get(&id), c.first) else {
            return;
        };
        let offset = first.days_until(day);
        if (0..c.days as i64).contains(&offset) {
            c.amounts[row * c.days + offset as usize] = amount;
            c.points += 1;
        }
    }

    /// The filled cube.
    pub fn finish(self) -> CostCube {
        self.cube
    }
}

/// The stored costs, dense by series and day.
#[derive(Debug, Default)]
pub struct CostCube {
    /// The store's data generation this was built from.
    pub generation: i64,
    first: Option<Day>,
    days: usize,
    series: Vec<(Dimensions, Currency)>,
    /// `series × days`; NaN where the series has no point that day.
    amounts: Vec<f64>,
    points: usize,
    tag_keys: BTreeSet<String>,
}

impl CostCube {
    /// Lays out `costs` (series id, day, amount) of `series`.
    pub fn build(
        generation: i64,
        series: Vec<StoredSeries>,
        costs: &[(i64, Day, f64)],
    ) -> CostCube {
        let first = costs.iter().map(|c| c.1).min();
        let last = costs.iter().map(|c| c.1).max();
        let mut builder = CostCube::builder(generation, series, first.zip(last));
        for &(id, day, amount) in costs {
            builder.put(id, day, amount);
        }
        builder.finish()
    }

    /// A cube for `series` over `span` (first and last day with data), filled by
    /// [`CubeBuilder::put`] one point at a time, so the points never sit in memory twice.
    pub fn builder(
        generation: i64,
        series: Vec<StoredSeries>,
        span: Option<(Day, Day)>,
    ) -> CubeBuilder {
        let days = span.map_or(0, |(f, l)| (f.days_until(l) + 1).max(0) as usize);
        let row_of = series.iter().enumerate().map(|(i, s)| (s.id, i)).collect();
        let tag_keys = series
            .iter()
            .flat_map(|s| s.dims.tags.keys().cloned())
            .collect();
        CubeBuilder {
            cube: CostCube {
                generation,
                first: span.map(|(f, _)| f),
                days,
                amounts: vec![f64::NAN; series.len() * days],
                series: series.into_iter().map(|s| (s.dims, s.currency)).collect(),
                points: 0,
                tag_keys,
            },
            row_of,
        }
    }

    /// Stored points.
    pub fn points(&self) -> usize {
        self.points
    }

    /// Stored series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// The newest day with data.
    pub fn last_day(&self) -> Option<Day> {
        self.first.map(|f| f.add_days(self.days as i64 - 1))
    }

    /// Whether a dimension exists in the data: a fixed one, or a tag some series carries.
    pub fn knows(&self, dim: &Dimension) -> bool {
        match dim {
            Dimension::Tag(key) => self.tag_keys.contains(key),
            _ => true,
        }
    }

    /// Sums the costs the query asks for.
    pub fn query(&self, q: &CostQuery) -> CostTable {
        let (periods, bucket_of_day) = buckets(q);
        let buckets = periods.len();
        let Some(first) = self.first else {
            return CostTable {
                periods,
                groups: Vec::new(),
            };
        };
        // The part of the query range the cube holds, as offsets into both.
        let lo = first.days_until(q.from).max(0) as usize;
        let hi = (first.days_until(q.to) + 1).clamp(0, self.days as i64) as usize;
        let skip = q.from.days_until(first).max(0) as usize;

        let mut index: HashMap<(Vec<&str>, &Currency), usize> = HashMap::new();
        let mut keys: Vec<(Vec<&str>, &Currency)> = Vec::new();
        let mut sums: Vec<f64> = Vec::new();
        let mut seen: Vec<bool> = Vec::new();
        for (row, (dims, currency)) in self.series.iter().enumerate() {
            if lo >= hi || !q.scope.matches(dims) {
                continue;
            }
            let key = (
                q.group_by
                    .iter()
                    .map(|d| d.value_of(dims))
                    .collect::<Vec<_>>(),
                currency,
            );
            let group = *index.entry(key.clone()).or_insert_with(|| {
                keys.push(key);
                sums.resize(sums.len() + buckets, 0.0);
                seen.resize(seen.len() + buckets, false);
                keys.len() - 1
            });
            let base = group * buckets;
            let values = &self.amounts[row * self.days + lo..row * self.days + hi];
            if q.granularity == Granularity::Day {
                // Day buckets line up with the values: a branch-free loop the compiler vectorises.
                let at = base + skip..base + skip + values.len();
                for ((sum, s), v) in sums[at.clone()].iter_mut().zip(&mut seen[at]).zip(values) {
                    let present = !v.is_nan();
                    *sum += if present { *v } else { 0.0 };
                    *s |= present;
                }
                continue;
            }
            for (i, v) in values.iter().enumerate() {
                if !v.is_nan() {
                    let b = base + bucket_of_day[skip + i];
                    sums[b] += v;
                    seen[b] = true;
                }
            }
        }
        let mut groups = to_groups(keys, &sums, &seen, buckets);
        groups.sort_by(|a, b| b.total.total_cmp(&a.total).then_with(|| a.key.cmp(&b.key)));
        CostTable { periods, groups }
    }

    /// Daily totals of one scope in one currency's worth of series, for charts.
    pub fn daily(&self, scope: &Scope, from: Day, to: Day) -> Vec<(Day, f64)> {
        let table = self.query(&CostQuery {
            from,
            to,
            group_by: Vec::new(),
            granularity: Granularity::Day,
            scope: scope.clone(),
        });
        let mut out: Vec<(Day, f64)> = Vec::new();
        for group in &table.groups {
            for (day, amount) in table.periods.iter().zip(&group.amounts) {
                if let Some(a) = amount {
                    match out.iter_mut().find(|(d, _)| d == day) {
                        Some((_, v)) => *v += a,
                        None => out.push((*day, *a)),
                    }
                }
            }
        }
        out.sort_by_key(|(d, _)| *d);
        out
    }
}

/// The first day of each period of a query, and each queried day's period.
fn buckets(q: &CostQuery) -> (Vec<Day>, Vec<usize>) {
    let mut periods: Vec<Day> = Vec::new();
    let mut bucket_of_day = Vec::with_capacity(q.from.days_until(q.to) as usize + 1);
    let mut day = q.from;
    while day <= q.to {
        let start = q.granularity.bucket(day);
        if periods.last() != Some(&start) {
            periods.push(start);
        }
        bucket_of_day.push(periods.len() - 1);
        day = day.add_days(1);
    }
    (periods, bucket_of_day)
}

/// The groups that reported anything, from their sums and whether each period reported.
fn to_groups(
    keys: Vec<(Vec<&str>, &Currency)>,
    sums: &[f64],
    seen: &[bool],
    buckets: usize,
) -> Vec<CostGroup> {
    keys.into_iter()
        .enumerate()
        .filter(|(g, _)| seen[g * buckets..(g + 1) * buckets].iter().any(|s| *s))
        .map(|(g, (key, currency))| {
            let cells = &sums[g * buckets..(g + 1) * buckets];
            let flags = &seen[g * buckets..(g + 1) * buckets];
            CostGroup {
                key: key.into_iter().map(str::to_string).collect(),
                currency: currency.clone(),
                amounts: cells
                    .iter()
                    .zip(flags)
                    .map(|(v, s)| s.then_some(*v))
                    .collect(),
                total: cells.iter().sum(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::d as day;

    fn series(id: i64, service: &str, team: &str) -> StoredSeries {
        let mut dims = Dimensions {
            service: service.into(),
            ..Dimensions::default()
        };
        dims.tags.insert("team".into(), team.into());
        StoredSeries {
            id,
            dims,
            currency: Currency::parse("USD").unwrap_or_else(|_| unreachable!()),
        }
    }

    #[test]
    fn groups_buckets_and_filters_sum_to_the_cent() {
        let all = vec![
            series(1, "EC2", "ml"),
            series(2, "EC2", "web"),
            series(3, "S3", "ml"),
        ];
        let mut costs = Vec::new();
        for d in 0..40 {
            let dd = day("2026-01-20").add_days(d);
            costs.push((1, dd, 1.25));
            costs.push((2, dd, 2.50));
            if d % 2 == 0 {
                costs.push((3, dd, 0.10));
            }
        }
        let cube = CostCube::build(7, all, &costs);
        assert_eq!(cube.points(), 100);
        assert_eq!(cube.last_day(), Some(day("2026-02-28")));
        assert!(cube.knows(&Dimension::Tag("team".into())));
        assert!(!cube.knows(&Dimension::Tag("owner".into())));

        let by_service = cube.query(&CostQuery {
            from: day("2026-01-01"),
            to: day("2026-03-31"),
            group_by: vec![Dimension::Service],
            granularity: Granularity::Month,
            scope: Scope::all(),
        });
        let months: Vec<String> = by_service.periods.iter().map(Day::to_string).collect();
        assert_eq!(months, ["2026-01-01", "2026-02-01", "2026-03-01"]);
        assert_eq!(by_service.groups[0].key, ["EC2"]);
        // January has 12 days of data (20th to 31st), February 28.
        assert_eq!(
            by_service.groups[0].amounts,
            [Some(45.0), Some(105.0), None]
        );
        assert_eq!(by_service.groups[1].key, ["S3"]);
        assert!((by_service.groups[1].total - 2.0).abs() < 1e-9);

        let ml = cube.query(&CostQuery {
            from: day("2026-02-01"),
            to: day("2026-02-07"),
            group_by: vec![Dimension::Tag("team".into())],
            granularity: Granularity::Week,
            scope: Scope::all().and(Dimension::Tag("team".into()), vec!["ml".into()]),
        });
        assert_eq!(ml.periods, [day("2026-01-26"), day("2026-02-02")]);
        assert_eq!(ml.groups.len(), 1);
        assert_eq!(ml.groups[0].key, ["ml"]);
        // Sunday 1 Feb alone in the first week: 1.25, plus S3 on even offsets (1 Feb is 12).
        assert_eq!(ml.groups[0].amounts[0], Some(1.35));
    }

    #[test]
    fn a_range_outside_the_data_is_empty_not_a_panic() {
        let cube = CostCube::build(
            1,
            vec![series(1, "EC2", "ml")],
            &[(1, day("2026-01-05"), 3.0)],
        );
        for (from, to) in [("2025-01-01", "2025-02-01"), ("2027-01-01", "2027-01-03")] {
            let t = cube.query(&CostQuery {
                from: day(from),
                to: day(to),
                group_by: vec![],
                granularity: Granularity::Day,
                scope: Scope::all(),
            });
            assert!(t.groups.is_empty(), "{from}..{to}");
            assert_eq!(t.periods.len() as i64, day(from).days_until(day(to)) + 1);
        }
        let empty = CostCube::default();
        assert_eq!(
            empty.daily(&Scope::all(), day("2026-01-01"), day("2026-01-02")),
            vec![]
        );
    }
}
