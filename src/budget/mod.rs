//! Budgets: pure. `(budget, actuals, forecast, as_of)` → a projection of the period total, the
//! probability it exceeds the amount, and a status; then the hysteresis that turns a run of
//! statuses into how far up its action ladder a budget is. Reads no clock and performs no action.

mod drivers;
mod fan;
mod state;

use distrs::Normal;

pub use drivers::{GroupCosts, MAX_DRIVERS, drivers};
pub use fan::{FanPoint, fan};
pub use state::{advance, hold};

use crate::domain::{
    Budget, Day, DayRange, Evaluation, PlanCheck, Projection, SeriesForecast, Status,
};
use crate::forecast::model::Z80;

/// Evaluates `budget` as of `as_of`.
///
/// `actuals` are the scope's daily totals. The projection counts actuals through the
/// forecast's last trusted day and the forecast after it, so days billing has not reported
/// yet are filled by the forecast rather than read as zero. The period total's spread adds the
/// forecast's level error linearly over the days (a wrong level is wrong every day) and its
/// daily noise in quadrature. A budget with a monthly plan also checks the current month
/// against its planned amount, and its status follows whichever is likelier to be exceeded.
pub fn evaluate(
    budget: &Budget,
    actuals: &[(Day, f64)],
    forecast: Option<&SeriesForecast>,
    as_of: Day,
) -> Evaluation {
    let period = budget.period.containing(as_of);
    // Nothing from `as_of` on is known yet, whatever the store holds: a replay must not see
    // the days it is replaying.
    let known_end = as_of.add_days(-1);
    // A forecast fitted on later days than that (a newer run in the store) is not used either.
    let forecast = forecast.filter(|f| f.history_end <= known_end);
    let trusted_end = match forecast {
        Some(f) => f.history_end,
        None => actuals.iter().map(|(d, _)| *d).max().unwrap_or(known_end),
    }
    .min(known_end);
    let total = Total::over(period, actuals, forecast, trusted_end);
    let amount = budget.amount.amount;
    let p_breach = total.p_over(amount);
    let plan = budget.plan.as_ref().and_then(|plan| {
        let month = DayRange::month_of(as_of);
        let planned = plan.for_month(period.start(), as_of)?;
        let t = Total::over(month, actuals, forecast, trusted_end);
        Some(PlanCheck {
            month,
            planned,
            actual_to_date: t.actual_to_date,
            projected: t.mean,
            lo80: t.lo80(),
            hi80: t.hi80(),
            p_over: t.p_over(planned),
        })
    });
    let p_worst = plan.as_ref().map_or(p_breach, |c| c.p_over.max(p_breach));
    let status = if p_worst >= budget.thresholds.breach {
        Status::Breach
    } else if p_worst >= budget.thresholds.warn {
        Status::Warn
    } else {
        Status::Ok
    };
    let reported_through = (trusted_end >= period.start()).then(|| trusted_end.min(period.end()));
    Evaluation {
        budget: budget.name.clone(),
        as_of,
        amount: budget.amount.clone(),
        projection: Projection {
            period,
            actual_to_date: total.actual_to_date,
            reported_through,
            forecast_days: total.forecast_days,
            mean: total.mean,
            lo80: total.lo80(),
            hi80: total.hi80(),
            p_breach,
        },
        status,
        mode: budget.mode,
        forecast_error: None,
        steps: 0,
        drivers: Vec::new(),
        plan,
        lagging: Vec::new(),
    }
}

/// The projected total of a range of days: what is reported, plus the forecast for the rest.
struct Total {
    actual_to_date: f64,
    forecast_days: usize,
    mean: f64,
    sd: f64,
}

impl Total {
    fn over(
        range: DayRange,
        actuals: &[(Day, f64)],
        forecast: Option<&SeriesForecast>,
        trusted_end: Day,
    ) -> Total {
        let actual_to_date: f64 = actuals
            .iter()
            .filter(|(d, _)| range.contains(*d) && *d <= trusted_end)
            .map(|(_, v)| v)
            .sum();
        let (mut mean, mut level, mut noise_var, mut forecast_days) = (actual_to_date, 0.0, 0.0, 0);
        if let Some(f) = forecast {
            let mut last = None;
            for day in range.days().filter(|d| *d > trusted_end) {
                // The forecast reaches the period's end (the forecast stage sees to it); a
                // stored forecast that stops short repeats its last day rather than assume zero.
                let point = f.points.iter().find(|p| p.day == day).or(last);
                if let Some(p) = point {
                    mean += p.mean;
                    level += p.sd_level;
                    noise_var += p.sd_noise * p.sd_noise;
                    forecast_days += 1;
                    last = Some(p);
                }
            }
        }
        Total {
            actual_to_date,
            forecast_days,
            mean,
            sd: (level * level + noise_var).sqrt(),
        }
    }

    /// The probability the total exceeds `amount`.
    fn p_over(&self, amount: f64) -> f64 {
        if self.sd > 0.0 {
            1.0 - Normal::cdf(amount, self.mean, self.sd)
        } else if self.mean > amount {
            1.0
        } else {
            0.0
        }
    }

    /// What is already spent is spent: the total cannot fall below it.
    fn lo80(&self) -> f64 {
        (self.mean - Z80 * self.sd).max(self.actual_to_date)
    }

    fn hi80(&self) -> f64 {
        self.mean + Z80 * self.sd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::d;
    use crate::domain::{DailyForecast, ModelKind, MonthlyPlan, Period};

    fn budget(amount: f64) -> Budget {
        Budget::monthly("b", amount)
    }

    /// 100 a day through the 19th of June, then a forecast of 100 ± (level 5, noise 10).
    fn june() -> (Vec<(Day, f64)>, SeriesForecast) {
        let actuals: Vec<(Day, f64)> = (0..19)
            .map(|i| (d("2024-06-01").add_days(i), 100.0))
            .collect();
        let points = (1..=45)
            .map(|h| DailyForecast {
                day: d("2024-06-19").add_days(h),
                mean: 100.0,
                lo80: 80.0,
                hi80: 120.0,
                lo95: 70.0,
                hi95: 130.0,
                sd_level: 5.0,
                sd_noise: 10.0,
            })
            .collect();
        let f = SeriesForecast {
            series: "budget:b".into(),
            model: ModelKind::MstlEts,
            history_end: d("2024-06-19"),
            note: None,
            shape: Default::default(),
            points,
        };
        (actuals, f)
    }

    #[test]
    fn a_planned_month_over_its_share_breaches_a_year_that_is_not() {
        let (actuals, f) = june();
        let mut year = budget(100_000.0);
        year.period = Period::Yearly;
        let mut plan = vec![8000.0; 12];
        // June plans 2,500; it is on course for 3,000 (1,900 spent plus 11 days of 100).
        plan[5] = 2500.0;
        year.plan = Some(MonthlyPlan::new(Period::Yearly, plan.clone()).unwrap());
        let e = evaluate(&year, &actuals, Some(&f), d("2024-06-21"));
        let c = e.plan.clone().expect("a planned budget checks its month");
        assert_eq!(c.month, DayRange::month_of(d("2024-06-01")));
        assert_eq!((c.planned, c.actual_to_date), (2500.0, 1900.0));
        assert!((c.projected - 3000.0).abs() < 1e-9);
        assert!(c.p_over > 0.99, "{}", c.p_over);
        assert!(
            e.projection.p_breach < 0.01,
            "the year is far from its amount"
        );
        assert_eq!(e.status, Status::Breach, "the month drives the status");

        plan[5] = 4000.0;
        year.plan = Some(MonthlyPlan::new(Period::Yearly, plan).unwrap());
        let e = evaluate(&year, &actuals, Some(&f), d("2024-06-21"));
        assert!(e.plan.is_some_and(|c| c.p_over < 0.01));
        assert_eq!(e.status, Status::Ok);
    }

    #[test]
    fn a_plan_finds_each_months_amount_from_the_period_start() {
        let plan = MonthlyPlan::new(Period::Quarterly, vec![1.0, 2.0, 3.0]).unwrap();
        assert_eq!(plan.for_month(d("2024-04-01"), d("2024-06-30")), Some(3.0));
        assert_eq!(plan.for_month(d("2024-04-01"), d("2024-04-01")), Some(1.0));
        assert_eq!(plan.for_month(d("2024-04-01"), d("2024-07-01")), None);
        assert_eq!(plan.for_month(d("2024-04-01"), d("2024-03-31")), None);
        assert_eq!(plan.total(), 6.0);
        assert!(MonthlyPlan::new(Period::Yearly, vec![1.0; 11]).is_err());
        assert!(MonthlyPlan::new(Period::Quarterly, vec![1.0, f64::NAN, 1.0]).is_err());
    }

    #[test]
    fn the_projection_is_actuals_plus_the_rest_of_the_month() {
        let (actuals, f) = june();
        let e = evaluate(&budget(3500.0), &actuals, Some(&f), d("2024-06-21"));
        assert_eq!(e.projection.actual_to_date, 1900.0);
        assert_eq!(e.projection.forecast_days, 11);
        assert!((e.projection.mean - 3000.0).abs() < 1e-9);
        // sd = sqrt((11*5)^2 + 11*10^2) = sqrt(3025 + 1100) = 64.2
        let sd = (3025.0f64 + 1100.0).sqrt();
        assert!((e.projection.hi80 - (3000.0 + Z80 * sd)).abs() < 1e-6);
        assert!(e.projection.p_breach < 0.001);
        assert_eq!(e.status, Status::Ok);
    }

    #[test]
    fn status_follows_the_breach_probability() {
        let (actuals, f) = june();
        let at = |amount| evaluate(&budget(amount), &actuals, Some(&f), d("2024-06-21"));
        assert_eq!(at(3000.0).status, Status::Warn, "P = 0.5 at the mean");
        assert_eq!(at(2900.0).status, Status::Breach);
        assert!((at(3000.0).projection.p_breach - 0.5).abs() < 1e-6);
    }

    #[test]
    fn unreported_days_are_forecast_not_read_as_zero() {
        let (actuals, mut f) = june();
        // Billing has only reported through the 15th: the 16th-19th must come from the
        // forecast even though actuals exist for them.
        f.history_end = d("2024-06-15");
        for (i, p) in f.points.iter_mut().enumerate() {
            p.day = d("2024-06-16").add_days(i as i64);
        }
        let e = evaluate(&budget(5000.0), &actuals, Some(&f), d("2024-06-17"));
        assert_eq!(e.projection.actual_to_date, 1500.0);
        assert_eq!(e.projection.forecast_days, 15);
        assert_eq!(e.projection.reported_through, Some(d("2024-06-15")));
    }
}
