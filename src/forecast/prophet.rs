//! Prophet through augurs, with the Stan model compiled to WebAssembly: the engine many teams
//! already use, available side by side (`--features prophet`; it adds wasmtime to the build).

use std::num::NonZeroU32;
use std::sync::OnceLock;

use augurs::prophet::wasmstan::WasmstanOptimizer;
use augurs::prophet::{IncludeHistory, Prophet, TrainingData};

use super::model::{Bounds, ModelError, ModelForecast, Z80, Z95};
use super::prepare::DailySeries;
use crate::domain::ModelKind;

/// Building the optimizer compiles the Stan model (about a second): once per process.
fn optimizer() -> WasmstanOptimizer {
    static OPTIMIZER: OnceLock<WasmstanOptimizer> = OnceLock::new();
    OPTIMIZER.get_or_init(WasmstanOptimizer::new).clone()
}

fn engine(e: impl std::fmt::Display) -> ModelError {
    ModelError::Engine(format!("prophet: {e}"))
}

/// Forecasts `horizon` days after `series` with Prophet's defaults.
pub fn forecast(series: &DailySeries, horizon: usize) -> Result<ModelForecast, ModelError> {
    let horizon_days = NonZeroU32::new(horizon as u32).ok_or_else(|| engine("empty horizon"))?;
    let seconds = |i: usize| {
        series
            .day(i)
            .date()
            .and_hms_opt(0, 0, 0)
            .map_or(0, |t| t.and_utc().timestamp())
    };
    let ds: Vec<i64> = (0..series.values.len()).map(seconds).collect();
    let data = TrainingData::new(ds, series.values.clone()).map_err(engine)?;
    let mut prophet = Prophet::new(Default::default(), optimizer());
    prophet.fit(data, Default::default()).map_err(engine)?;
    let future = prophet
        .make_future_dataframe(horizon_days, IncludeHistory::No)
        .map_err(engine)?;
    let predictions = prophet.predict(future).map_err(engine)?;
    let yhat = predictions.yhat;
    // Prophet's default interval is 80%; the 95% bound assumes the same normal spread.
    let upper = yhat.upper.unwrap_or_else(|| yhat.point.clone());
    let mut out = ModelForecast::constant(ModelKind::Prophet, 0.0, horizon);
    for (h, (mean, hi)) in yhat.point.iter().zip(&upper).enumerate().take(horizon) {
        let sd = ((hi - mean) / Z80).max(0.0);
        out.mean[h] = mean.max(0.0);
        out.sd_level[h] = sd;
        out.bounds[h] = Bounds {
            lo80: (mean - Z80 * sd).max(0.0),
            hi80: (mean + Z80 * sd).max(0.0),
            lo95: (mean - Z95 * sd).max(0.0),
            hi95: (mean + Z95 * sd).max(0.0),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Day;

    #[test]
    fn prophet_follows_a_weekly_cycle() {
        let start = Day::parse("2024-01-01").unwrap();
        let values: Vec<f64> = (0..120)
            .map(|t| if t % 7 >= 5 { 60.0 } else { 100.0 })
            .collect();
        let f = forecast(
            &DailySeries {
                start,
                values,
                holidays: Default::default(),
                excursions: Vec::new(),
            },
            14,
        )
        .unwrap();
        // Day 120 is a Tuesday (a weekday), day 124 a Saturday.
        assert!((f.mean[0] - 100.0).abs() < 10.0, "{:?}", f.mean);
        assert!((f.mean[4] - 60.0).abs() < 10.0, "{:?}", f.mean);
    }
}
