//! Models: MSTL with an AutoETS trend (augurs), and seasonal naive for short series.

use augurs::ets::AutoETS;
use augurs::ets::trend::AutoETSTrendModel;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};

use super::prepare::median;
use crate::domain::ModelKind;

/// z-score of the 80% central interval.
pub const Z80: f64 = 1.281_551_565_545;
/// z-score of the 95% central interval.
pub const Z95: f64 = 1.959_963_984_540;

/// Days of history below which MSTL is not attempted: four weekly cycles.
pub const MIN_MSTL_DAYS: usize = 28;
/// Days of history from which a yearly cycle is fitted as well: two full years.
pub const MIN_YEARLY_DAYS: usize = 730;

/// A model's forecast: the mean and the two error components, per day.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelForecast {
    /// The model used.
    pub model: ModelKind,
    /// Why a fallback was used.
    pub note: Option<String>,
    /// Mean per day (may be negative; clipping happens when intervals are formed).
    pub mean: Vec<f64>,
    /// Standard deviation shared across days.
    pub sd_level: Vec<f64>,
    /// Standard deviation independent per day.
    pub sd_noise: Vec<f64>,
}

/// Fits the best model the history allows and forecasts `horizon` days.
pub fn fit_and_forecast(y: &[f64], horizon: usize) -> ModelForecast {
    if y.len() < MIN_MSTL_DAYS {
        let note = format!(
            "{} days of history (MSTL needs {MIN_MSTL_DAYS}): seasonal naive",
            y.len()
        );
        return seasonal_naive(y, horizon, Some(note));
    }
    match mstl_ets(y, horizon) {
        Ok(f) => f,
        Err(e) => seasonal_naive(
            y,
            horizon,
            Some(format!("MSTL failed ({e}): seasonal naive")),
        ),
    }
}

/// MSTL decomposition with weekly (and, with two years, yearly) seasonality; AutoETS on the
/// trend.
///
/// augurs' interval carries only the trend model's uncertainty, which under-covers; the
/// remainder's robust spread is added as an independent daily error so the 80% interval
/// means 80%.
fn mstl_ets(y: &[f64], horizon: usize) -> Result<ModelForecast, String> {
    let periods = if y.len() >= MIN_YEARLY_DAYS {
        vec![7, 365]
    } else {
        vec![7]
    };
    let trend = AutoETSTrendModel::from(AutoETS::non_seasonal());
    let fitted = MSTLModel::new(periods, trend)
        .fit(y)
        .map_err(|e| e.to_string())?;
    let forecast = fitted.predict(horizon, 0.8).map_err(|e| e.to_string())?;
    let mut remainder: Vec<f64> = fitted.fit().remainder().iter().map(|r| *r as f64).collect();
    let centre = median(&mut remainder.clone());
    let mut deviations: Vec<f64> = remainder.iter_mut().map(|r| (*r - centre).abs()).collect();
    let noise = 1.4826 * median(&mut deviations);
    let sd_level: Vec<f64> = match &forecast.intervals {
        Some(iv) => iv
            .upper
            .iter()
            .zip(&forecast.point)
            .map(|(u, p)| ((u - p) / Z80).max(0.0))
            .collect(),
        None => vec![0.0; horizon],
    };
    if forecast.point.iter().any(|v| !v.is_finite()) {
        return Err("non-finite forecast".into());
    }
    Ok(ModelForecast {
        model: ModelKind::MstlEts,
        note: None,
        mean: forecast.point,
        sd_level,
        sd_noise: vec![noise; horizon],
    })
}

/// The last complete week repeated; the error is the spread of week-over-week changes.
pub fn seasonal_naive(y: &[f64], horizon: usize, note: Option<String>) -> ModelForecast {
    if y.is_empty() {
        return ModelForecast {
            model: ModelKind::SeasonalNaive,
            note,
            mean: vec![0.0; horizon],
            sd_level: vec![0.0; horizon],
            sd_noise: vec![0.0; horizon],
        };
    }
    let season = 7.min(y.len());
    let last = &y[y.len() - season..];
    let mean: Vec<f64> = (0..horizon).map(|h| last[h % season]).collect();
    let diffs: Vec<f64> = y.windows(season + 1).map(|w| w[season] - w[0]).collect();
    let sd = if diffs.len() >= 2 {
        let m = diffs.iter().sum::<f64>() / diffs.len() as f64;
        (diffs.iter().map(|d| (d - m).powi(2)).sum::<f64>() / (diffs.len() - 1) as f64).sqrt()
    } else {
        // Too little history to measure the spread: assume a quarter of the level.
        0.25 * last.iter().sum::<f64>() / season as f64
    };
    ModelForecast {
        model: ModelKind::SeasonalNaive,
        note,
        mean,
        sd_level: vec![0.0; horizon],
        sd_noise: vec![sd / std::f64::consts::SQRT_2; horizon],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weekly_with_trend(n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let weekly = if i % 7 >= 5 { -30.0 } else { 10.0 };
                100.0 + 0.1 * i as f64 + weekly + ((i * 7919) % 13) as f64 * 0.5
            })
            .collect()
    }

    #[test]
    fn mstl_keeps_the_weekly_cycle_and_the_level() {
        let y = weekly_with_trend(200);
        let f = fit_and_forecast(&y, 14);
        assert_eq!(f.model, ModelKind::MstlEts);
        // Day 200 is i % 7 == 4 (a weekday), 201 and 202 weekend: the cycle must survive
        // within 10% of the true value, which is ~130 on weekdays and ~90 at weekends.
        let truth: Vec<f64> = (200..214)
            .map(|i| 100.0 + 0.1 * i as f64 + if i % 7 >= 5 { -30.0 } else { 10.0 } + 3.0)
            .collect();
        for (f, t) in f.mean.iter().zip(&truth) {
            assert!((f - t).abs() / t < 0.10, "forecast {f} vs truth {t}");
        }
        assert!(f.sd_noise[0] > 0.0);
    }

    #[test]
    fn two_years_of_history_fit_the_yearly_cycle_too() {
        // A yearly swing of ±30 around 100: after two years, the forecast for the next peak
        // must be above the level and the trough below it (within the swing's half).
        let yearly =
            |i: usize| 100.0 + 30.0 * (2.0 * std::f64::consts::PI * i as f64 / 365.0).sin();
        let y: Vec<f64> = (0..800)
            .map(|i| yearly(i) + if i % 7 >= 5 { -10.0 } else { 0.0 })
            .collect();
        let f = fit_and_forecast(&y, 210);
        assert_eq!(f.model, ModelKind::MstlEts);
        // Day 821 (horizon index 21) is a yearly peak, day 1004 (index 204) a trough.
        assert!(f.mean[21] > 115.0, "peak forecast {}", f.mean[21]);
        assert!(f.mean[204] < 85.0, "trough forecast {}", f.mean[204]);
    }

    #[test]
    fn a_short_series_falls_back_to_seasonal_naive_and_says_so() {
        let y: Vec<f64> = (0..10).map(|i| i as f64).collect();
        let f = fit_and_forecast(&y, 9);
        assert_eq!(f.model, ModelKind::SeasonalNaive);
        assert!(f.note.as_deref().unwrap_or("").contains("10 days"));
        assert_eq!(f.mean[..7], [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(f.mean[7], 3.0);
    }
}
