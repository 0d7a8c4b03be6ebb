//! Drivers: the report series inside a budget's scope whose projected period total rose most
//! against the last period, so an alert says where the money goes, not just how much.

use std::collections::BTreeMap;

use crate::domain::{Day, DayRange, Driver, SeriesForecast};

/// Drivers an alert names.
pub const MAX_DRIVERS: usize = 3;

/// Days of recent history that estimate a group's in-scope share and run rate.
const RECENT_DAYS: i64 = 28;

/// Daily costs of one report group, split by whether they fall inside the budget's scope.
#[derive(Debug, Clone, Default)]
pub struct GroupCosts {
    /// Daily totals of the group's series inside the scope.
    pub in_scope: BTreeMap<Day, f64>,
    /// Daily totals of the group's series outside it.
    pub outside: BTreeMap<Day, f64>,
}

/// The groups with the largest rise, largest first, at most [`MAX_DRIVERS`], rises only.
///
/// A group's projection is its in-scope cost through `trusted_end` plus the rest of the period
/// from its report forecast, scaled by the share of the group's recent cost the scope covers.
/// A group without a forecast of its own (pooled into `other`) continues at its recent daily
/// rate.
pub fn drivers(
    groups: &BTreeMap<String, GroupCosts>,
    forecasts: &[SeriesForecast],
    period: DayRange,
    previous: DayRange,
    trusted_end: Day,
) -> Vec<Driver> {
    let recent_from = trusted_end.add_days(-RECENT_DAYS);
    let sum = |m: &BTreeMap<Day, f64>, f: &dyn Fn(Day) -> bool| -> f64 {
        m.iter().filter(|(d, _)| f(**d)).map(|(_, v)| v).sum()
    };
    let mut out: Vec<Driver> = groups
        .iter()
        .filter(|(_, g)| !g.in_scope.is_empty())
        .map(|(name, g)| {
            let recent = |d: Day| d > recent_from && d <= trusted_end;
            let recent_in = sum(&g.in_scope, &recent);
            let recent_all = recent_in + sum(&g.outside, &recent);
            let to_date = sum(&g.in_scope, &|d| period.contains(d) && d <= trusted_end);
            let rest_days = period.days().filter(|d| *d > trusted_end);
            let rest: f64 = match forecasts.iter().find(|f| &f.series == name) {
                Some(f) => {
                    let share = if recent_all > 0.0 {
                        recent_in / recent_all
                    } else {
                        1.0
                    };
                    let mean =
                        |d: Day| f.points.iter().find(|p| p.day == d).map_or(0.0, |p| p.mean);
                    share * rest_days.map(mean).sum::<f64>()
                }
                None => recent_in / RECENT_DAYS as f64 * rest_days.count() as f64,
            };
            // In cents, as money is shown: a value with a dozen digits after the point would
            // not read back from the store bit for bit.
            let cents = |v: f64| (v * 100.0).round() / 100.0;
            Driver {
                series: name.clone(),
                projected: cents(to_date + rest),
                previous: cents(sum(&g.in_scope, &|d| previous.contains(d))),
            }
        })
        .filter(|d| d.rise() > 0.0)
        .collect();
    out.sort_by(|a, b| b.rise().total_cmp(&a.rise()).then(a.series.cmp(&b.series)));
    out.truncate(MAX_DRIVERS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::d;
    use crate::domain::{DailyForecast, ModelKind};

    fn flat(from: &str, to: &str, v: f64) -> BTreeMap<Day, f64> {
        DayRange::new(d(from), d(to))
            .unwrap()
            .days()
            .map(|day| (day, v))
            .collect()
    }

    #[test]
    fn the_series_that_rose_most_leads_and_falling_ones_are_left_out() {
        let mut groups = BTreeMap::new();
        // Doubled this month: 10/day in May, 20/day in June.
        let mut ec2 = flat("2024-05-01", "2024-05-31", 10.0);
        ec2.extend(flat("2024-06-01", "2024-06-10", 20.0));
        groups.insert(
            "service=EC2".to_string(),
            GroupCosts {
                in_scope: ec2,
                ..Default::default()
            },
        );
        // Fell: 10/day in May, 5/day in June.
        let mut s3 = flat("2024-05-01", "2024-05-31", 10.0);
        s3.extend(flat("2024-06-01", "2024-06-10", 5.0));
        groups.insert(
            "service=S3".to_string(),
            GroupCosts {
                in_scope: s3,
                ..Default::default()
            },
        );
        // Forecast of 30/day, but only half of the group is in scope.
        let mut rds = flat("2024-05-01", "2024-05-31", 2.0);
        rds.extend(flat("2024-06-01", "2024-06-10", 2.0));
        groups.insert(
            "service=RDS".to_string(),
            GroupCosts {
                in_scope: rds.clone(),
                outside: rds,
            },
        );
        let forecast = SeriesForecast {
            series: "service=RDS".into(),
            model: ModelKind::Calendar,
            history_end: d("2024-06-10"),
            note: None,
            shape: Default::default(),
            points: DayRange::new(d("2024-06-11"), d("2024-06-30"))
                .unwrap()
                .days()
                .map(|day| DailyForecast {
                    day,
                    mean: 30.0,
                    lo80: 0.0,
                    hi80: 0.0,
                    lo95: 0.0,
                    hi95: 0.0,
                    sd_level: 0.0,
                    sd_noise: 0.0,
                })
                .collect(),
        };
        let june = DayRange::month_of(d("2024-06-15"));
        let may = DayRange::month_of(d("2024-05-15"));
        let out = drivers(&groups, &[forecast], june, may, d("2024-06-10"));
        let names: Vec<&str> = out.iter().map(|d| d.series.as_str()).collect();
        assert_eq!(names, vec!["service=RDS", "service=EC2"]);
        // RDS: 10 days × 2 + 20 days × 30 × 0.5 = 320, against 62 in May.
        assert!((out[0].projected - 320.0).abs() < 1e-9, "{:?}", out[0]);
        assert_eq!(out[0].previous, 62.0);
        // EC2 has no forecast: 10 days × 20, then its 28-day rate, (18×10 + 10×20)/28 a day,
        // to the cent.
        let rate = (18.0 * 10.0 + 10.0 * 20.0) / 28.0;
        assert!(
            (out[1].projected - (200.0 + 20.0 * rate)).abs() < 0.005,
            "{:?}",
            out[1]
        );
    }
}
