//! The period's cumulative spend as a fan: actuals to the last trusted day, then the forecast
//! with its 80% and 95% bands, day by day. The same arithmetic as [`super::evaluate`], so the
//! fan ends exactly on the projection the budget decided on.

use crate::domain::{Day, DayRange, SeriesForecast};
use crate::forecast::model::{Z80, Z95};

/// One day of the fan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FanPoint {
    /// The day.
    pub day: Day,
    /// That day's reported cost, if trusted.
    pub actual: Option<f64>,
    /// Cumulative spend through the day: actual while trusted, then forecast mean.
    pub cumulative: f64,
    /// Whether `cumulative` includes forecast days.
    pub forecast: bool,
    /// 80% band of the cumulative spend (equal to it on actual days).
    pub lo80: f64,
    /// 80% band, high.
    pub hi80: f64,
    /// 95% band, low.
    pub lo95: f64,
    /// 95% band, high.
    pub hi95: f64,
}

/// The fan over `period`: `actuals` (daily totals of the scope) through the forecast's last
/// trusted day, then its daily forecast.
pub fn fan(
    period: DayRange,
    actuals: &[(Day, f64)],
    forecast: Option<&SeriesForecast>,
) -> Vec<FanPoint> {
    let trusted_end = match forecast {
        Some(f) => f.history_end,
        None => actuals
            .iter()
            .map(|(d, _)| *d)
            .max()
            .unwrap_or(period.start().add_days(-1)),
    };
    let (mut total, mut level, mut noise_var) = (0.0, 0.0, 0.0);
    let mut last = None;
    let mut out = Vec::new();
    for day in period.days() {
        if day <= trusted_end {
            let actual = actuals.iter().find(|(d, _)| *d == day).map(|(_, v)| *v);
            total += actual.unwrap_or(0.0);
            out.push(FanPoint {
                day,
                actual,
                cumulative: total,
                forecast: false,
                lo80: total,
                hi80: total,
                lo95: total,
                hi95: total,
            });
            continue;
        }
        let Some(f) = forecast else { break };
        // As in the projection: a horizon shorter than the period repeats its last day.
        let Some(p) = f.points.iter().find(|p| p.day == day).or(last) else {
            break;
        };
        last = Some(p);
        total += p.mean;
        level += p.sd_level;
        noise_var += p.sd_noise * p.sd_noise;
        let sd = (level * level + noise_var).sqrt();
        out.push(FanPoint {
            day,
            actual: None,
            cumulative: total,
            forecast: true,
            lo80: total - Z80 * sd,
            hi80: total + Z80 * sd,
            lo95: total - Z95 * sd,
            hi95: total + Z95 * sd,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::d;
    use crate::domain::{Budget, DailyForecast, ModelKind};

    #[test]
    fn the_fan_ends_on_the_projection() {
        let actuals: Vec<(Day, f64)> = (0..19)
            .map(|i| (d("2024-06-01").add_days(i), 100.0))
            .collect();
        let forecast = SeriesForecast {
            series: "budget:b".into(),
            model: ModelKind::MstlEts,
            history_end: d("2024-06-19"),
            note: None,
            shape: Default::default(),
            points: (1..=5)
                .map(|h| DailyForecast {
                    day: d("2024-06-19").add_days(h),
                    mean: 110.0,
                    lo80: 0.0,
                    hi80: 0.0,
                    lo95: 0.0,
                    hi95: 0.0,
                    sd_level: 5.0,
                    sd_noise: 10.0,
                })
                .collect(),
        };
        let budget = Budget::monthly("b", 3000.0);
        let e = super::super::evaluate(&budget, &actuals, Some(&forecast), d("2024-06-21"));
        let points = fan(e.projection.period, &actuals, Some(&forecast));
        assert_eq!(points.len(), 30);
        assert_eq!(points[18].cumulative, 1900.0);
        assert!(!points[18].forecast && points[19].forecast);
        let end = points[29];
        assert!((end.cumulative - e.projection.mean).abs() < 1e-9);
        assert!((end.lo80 - e.projection.lo80).abs() < 1e-9);
        assert!((end.hi80 - e.projection.hi80).abs() < 1e-9);
        assert!(end.lo95 < end.lo80 && end.hi95 > end.hi80);
    }
}
