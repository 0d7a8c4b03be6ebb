//! Models behind one trait: the calendar regression (the default), MSTL with an AutoETS trend
//! and non-seasonal AutoETS (augurs), and seasonal naive. Every model forecasts a dense daily
//! series; clipping at zero and recurring charges are handled by the caller.

use augurs::ets::AutoETS;
use augurs::ets::trend::AutoETSTrendModel;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};

use super::calendar;
use super::prepare::{DailySeries, median};
use crate::domain::{LevelChange, ModelKind};

/// z-score of the 80% central interval.
pub const Z80: f64 = 1.281_551_565_545;
/// z-score of the 95% central interval.
pub const Z95: f64 = 1.959_963_984_540;

/// Days of history below which MSTL is not attempted: four weekly cycles.
pub const MIN_MSTL_DAYS: usize = 28;
/// Days of history from which MSTL fits a yearly cycle as well: two full years.
pub const MIN_YEARLY_DAYS: usize = 730;

/// Why a model could not forecast a series.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ModelError {
    /// Not enough history for the model.
    #[error("{days} days of history ({needed} needed)")]
    TooShort {
        /// Days available.
        days: usize,
        /// Days the model needs.
        needed: usize,
    },
    /// The regression's normal matrix could not be factored.
    #[error("the regression is singular")]
    Singular,
    /// The underlying engine failed.
    #[error("{0}")]
    Engine(String),
}

/// The interval bounds of one forecast day.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Bounds {
    /// Lower bound of the 80% interval.
    pub lo80: f64,
    /// Upper bound of the 80% interval.
    pub hi80: f64,
    /// Lower bound of the 95% interval.
    pub lo95: f64,
    /// Upper bound of the 95% interval.
    pub hi95: f64,
}

impl Bounds {
    /// The bounds of a stored forecast day.
    pub fn of(p: &crate::domain::DailyForecast) -> Bounds {
        Bounds {
            lo80: p.lo80,
            hi80: p.hi80,
            lo95: p.lo95,
            hi95: p.hi95,
        }
    }
}

/// A model's forecast: mean, interval and the two error components, per day.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelForecast {
    /// The model used.
    pub model: ModelKind,
    /// What the fit found worth saying (a fallback, a level shift).
    pub note: Option<String>,
    /// Mean per day, never negative.
    pub mean: Vec<f64>,
    /// Interval bounds per day, never negative.
    pub bounds: Vec<Bounds>,
    /// Standard deviation shared across days (a wrong level or trend).
    pub sd_level: Vec<f64>,
    /// Standard deviation independent per day.
    pub sd_noise: Vec<f64>,
    /// A change of level near the end of the history that the model found.
    pub change: Option<LevelChange>,
}

impl ModelForecast {
    /// `value` every day with no uncertainty.
    pub fn constant(model: ModelKind, value: f64, horizon: usize) -> ModelForecast {
        let bounds = Bounds {
            lo80: value,
            hi80: value,
            lo95: value,
            hi95: value,
        };
        ModelForecast {
            model,
            note: None,
            mean: vec![value; horizon],
            bounds: vec![bounds; horizon],
            sd_level: vec![0.0; horizon],
            sd_noise: vec![0.0; horizon],
            change: None,
        }
    }

    /// Multiplies each day (mean, bounds and spreads) by its factor: a yearly peak or dip the
    /// usage model was fitted without.
    pub fn scale_days(&mut self, factors: &[f64]) {
        for (h, f) in factors.iter().enumerate().filter(|(_, f)| **f != 1.0) {
            let (Some(m), Some(b)) = (self.mean.get_mut(h), self.bounds.get_mut(h)) else {
                continue;
            };
            *m *= f;
            for bound in [&mut b.lo80, &mut b.hi80, &mut b.lo95, &mut b.hi95] {
                *bound *= f;
            }
            for sd in [self.sd_level.get_mut(h), self.sd_noise.get_mut(h)]
                .into_iter()
                .flatten()
            {
                *sd *= f;
            }
        }
    }

    /// A forecast with normal errors around `mean`, clipped at zero.
    fn normal(model: ModelKind, mean: &[f64], sd_level: Vec<f64>, sd_noise: Vec<f64>) -> Self {
        let bounds = mean
            .iter()
            .zip(sd_level.iter().zip(&sd_noise))
            .map(|(m, (l, e))| {
                let sd = l.hypot(*e);
                Bounds {
                    lo80: (m - Z80 * sd).max(0.0),
                    hi80: (m + Z80 * sd).max(0.0),
                    lo95: (m - Z95 * sd).max(0.0),
                    hi95: (m + Z95 * sd).max(0.0),
                }
            })
            .collect();
        ModelForecast {
            model,
            note: None,
            mean: mean.iter().map(|m| m.max(0.0)).collect(),
            bounds,
            sd_level,
            sd_noise,
            change: None,
        }
    }
}

/// A forecasting model.
pub trait Model: Sync {
    /// Which model this is.
    fn kind(&self) -> ModelKind;
    /// Forecasts `horizon` days after the end of `series`.
    fn forecast(&self, series: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError>;
}

/// The calendar regression ([`calendar`]).
pub struct Calendar;
/// MSTL with an AutoETS trend.
pub struct MstlEts;
/// Non-seasonal AutoETS.
pub struct Ets;
/// The last week repeated.
pub struct SeasonalNaive;
/// The last week's mean, shaped by the weekday profile.
pub struct RunRate;
/// `auto`'s blend ([`super::blend`]).
pub struct Blend;

impl Model for RunRate {
    fn kind(&self) -> ModelKind {
        ModelKind::RunRate
    }
    fn forecast(&self, s: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError> {
        Ok(run_rate(&s.values, horizon))
    }
}

impl Model for Blend {
    fn kind(&self) -> ModelKind {
        ModelKind::Blend
    }
    fn forecast(&self, s: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError> {
        Ok(super::blend::forecast(s, horizon))
    }
}

impl Model for Calendar {
    fn kind(&self) -> ModelKind {
        ModelKind::Calendar
    }
    fn forecast(&self, s: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError> {
        calendar::forecast(s, horizon)
    }
}

impl Model for MstlEts {
    fn kind(&self) -> ModelKind {
        ModelKind::MstlEts
    }
    fn forecast(&self, s: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError> {
        mstl_ets(&s.values, horizon)
    }
}

impl Model for Ets {
    fn kind(&self) -> ModelKind {
        ModelKind::Ets
    }
    fn forecast(&self, s: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError> {
        ets(&s.values, horizon)
    }
}

impl Model for SeasonalNaive {
    fn kind(&self) -> ModelKind {
        ModelKind::SeasonalNaive
    }
    fn forecast(&self, s: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError> {
        Ok(seasonal_naive(&s.values, horizon))
    }
}

/// Prophet with its default options, fitted by augurs with Stan compiled to WebAssembly.
pub struct Prophet;

impl Model for Prophet {
    fn kind(&self) -> ModelKind {
        ModelKind::Prophet
    }
    #[cfg(feature = "prophet")]
    fn forecast(&self, s: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError> {
        super::prophet::forecast(s, horizon)
    }
    #[cfg(not(feature = "prophet"))]
    fn forecast(&self, _: &DailySeries, _: usize) -> Result<ModelForecast, ModelError> {
        Err(ModelError::Engine(
            "this build has no Prophet: build with --features prophet".into(),
        ))
    }
}

/// The model of a kind.
pub fn model(kind: ModelKind) -> &'static dyn Model {
    match kind {
        ModelKind::Calendar => &Calendar,
        ModelKind::MstlEts => &MstlEts,
        ModelKind::Ets => &Ets,
        ModelKind::SeasonalNaive => &SeasonalNaive,
        ModelKind::RunRate => &RunRate,
        ModelKind::Blend => &Blend,
        ModelKind::Prophet => &Prophet,
    }
}

/// Forecasts with `kind`, falling back to seasonal naive (and saying why) when it cannot.
pub fn fit_and_forecast(series: &DailySeries, kind: ModelKind, horizon: usize) -> ModelForecast {
    model(kind).forecast(series, horizon).unwrap_or_else(|e| {
        let mut f = seasonal_naive(&series.values, horizon);
        f.note = Some(format!("{kind}: {e}; seasonal naive used"));
        f
    })
}

/// Fits an augurs model on at least four weeks and forecasts `horizon` days with an 80%
/// interval, refusing a non-finite forecast.
fn fit_augurs<M: Fit>(
    model: &M,
    y: &[f64],
    horizon: usize,
) -> Result<(M::Fitted, augurs::Forecast), ModelError> {
    if y.len() < MIN_MSTL_DAYS {
        return Err(ModelError::TooShort {
            days: y.len(),
            needed: MIN_MSTL_DAYS,
        });
    }
    let engine = |e: &dyn std::error::Error| ModelError::Engine(e.to_string());
    let fitted = model.fit(y).map_err(|e| engine(&e))?;
    let forecast = fitted.predict(horizon, 0.8).map_err(|e| engine(&e))?;
    match forecast.point.iter().all(|v| v.is_finite()) {
        true => Ok((fitted, forecast)),
        false => Err(ModelError::Engine("non-finite forecast".into())),
    }
}

/// MSTL decomposition with weekly (and, with two years, yearly) seasonality; AutoETS on the
/// trend.
///
/// augurs' interval carries only the trend model's uncertainty, which under-covers; the
/// remainder's robust spread is added as an independent daily error.
fn mstl_ets(y: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
    let periods = if y.len() >= MIN_YEARLY_DAYS {
        vec![7, 365]
    } else {
        vec![7]
    };
    let trend = AutoETSTrendModel::from(AutoETS::non_seasonal());
    let (fitted, forecast) = fit_augurs(&MSTLModel::new(periods, trend), y, horizon)?;
    let remainder: Vec<f64> = fitted.fit().remainder().iter().map(|r| *r as f64).collect();
    let noise = robust_sd(&remainder);
    let sd_level = level_sd(&forecast, horizon);
    Ok(ModelForecast::normal(
        ModelKind::MstlEts,
        &forecast.point,
        sd_level,
        vec![noise; horizon],
    ))
}

/// Non-seasonal AutoETS: the level and trend a plain exponential smoother sees.
fn ets(y: &[f64], horizon: usize) -> Result<ModelForecast, ModelError> {
    let (_, forecast) = fit_augurs(&AutoETS::non_seasonal(), y, horizon)?;
    let sd_level = level_sd(&forecast, horizon);
    Ok(ModelForecast::normal(
        ModelKind::Ets,
        &forecast.point,
        sd_level,
        vec![0.0; horizon],
    ))
}

/// The standard deviation implied by an augurs 80% interval.
fn level_sd(forecast: &augurs::Forecast, horizon: usize) -> Vec<f64> {
    match &forecast.intervals {
        Some(iv) => iv
            .upper
            .iter()
            .zip(&forecast.point)
            .map(|(u, p)| ((u - p) / Z80).max(0.0))
            .collect(),
        None => vec![0.0; horizon],
    }
}

/// 1.4826 × the median absolute deviation: a standard deviation spikes do not inflate.
pub fn robust_sd(values: &[f64]) -> f64 {
    let centre = median(&mut values.to_vec());
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - centre).abs()).collect();
    1.4826 * median(&mut deviations)
}

/// The last complete week repeated; the error is the spread of week-over-week changes.
pub fn seasonal_naive(y: &[f64], horizon: usize) -> ModelForecast {
    if y.is_empty() {
        return ModelForecast::constant(ModelKind::SeasonalNaive, 0.0, horizon);
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
    ModelForecast::normal(
        ModelKind::SeasonalNaive,
        &mean,
        vec![0.0; horizon],
        vec![sd / std::f64::consts::SQRT_2; horizon],
    )
}

/// Weeks the run rate's weekday profile is measured on.
const PROFILE_WEEKS: usize = 8;

/// The mean of the last seven days, every day, shaped by how each weekday compared with its
/// week over the last eight weeks. The level error is how much the next 30 days' mean moved
/// from the 7 days' before it at earlier origins; the daily noise is the spread of days around
/// their week's profile.
pub fn run_rate(y: &[f64], horizon: usize) -> ModelForecast {
    let n = y.len();
    if n < 7 {
        return seasonal_naive(y, horizon);
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len().max(1) as f64;
    let level = mean(&y[n - 7..]);
    let weeks = (n / 7).min(PROFILE_WEEKS);
    let recent = &y[n - 7 * weeks..];
    let overall = mean(recent);
    let profile: Vec<f64> = (0..7)
        .map(|k| {
            let days: Vec<f64> = recent.iter().skip(k).step_by(7).copied().collect();
            match overall > 0.0 {
                true => mean(&days) / overall,
                false => 1.0,
            }
        })
        .collect();
    let forecast: Vec<f64> = (0..horizon)
        // `recent` starts a whole number of weeks back, so its day k shares a weekday with
        // forecast day h when h ≡ k (mod 7).
        .map(|h| level * profile[h % 7])
        .collect();
    let moves: Vec<f64> = (1..=12)
        .filter_map(|k| {
            let origin = n.checked_sub(30 * k)?;
            let before = mean(&y[origin.checked_sub(7)?..origin]);
            (before > 0.0).then(|| mean(&y[origin..origin + 30]) / before - 1.0)
        })
        .collect();
    let level_sd = match moves.len() >= 2 {
        true => (moves.iter().map(|m| m * m).sum::<f64>() / moves.len() as f64).sqrt(),
        false => 0.2,
    };
    let residuals: Vec<f64> = recent
        .iter()
        .enumerate()
        .map(|(i, v)| v - overall * profile[i % 7])
        .collect();
    let noise = robust_sd(&residuals);
    ModelForecast::normal(
        ModelKind::RunRate,
        &forecast,
        forecast.iter().map(|m| m * level_sd).collect(),
        vec![noise; horizon],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<f64>) -> DailySeries {
        DailySeries {
            start: crate::domain::Day::parse("2024-01-01").unwrap(),
            values,
            holidays: Default::default(),
            excursions: Vec::new(),
        }
    }

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
        let f = fit_and_forecast(&series(y), ModelKind::MstlEts, 14);
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
        let f = fit_and_forecast(&series(y), ModelKind::MstlEts, 210);
        assert_eq!(f.model, ModelKind::MstlEts);
        // Day 821 (horizon index 21) is a yearly peak, day 1004 (index 204) a trough.
        assert!(f.mean[21] > 115.0, "peak forecast {}", f.mean[21]);
        assert!(f.mean[204] < 85.0, "trough forecast {}", f.mean[204]);
    }

    #[test]
    fn a_short_series_falls_back_to_seasonal_naive_and_says_so() {
        let y: Vec<f64> = (0..10).map(|i| i as f64).collect();
        let f = fit_and_forecast(&series(y), ModelKind::Calendar, 9);
        assert_eq!(f.model, ModelKind::SeasonalNaive);
        assert!(
            f.note.as_deref().unwrap_or("").contains("10 days"),
            "{:?}",
            f.note
        );
        assert_eq!(f.mean[..7], [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
        assert_eq!(f.mean[7], 3.0);
    }
}
