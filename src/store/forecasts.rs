//! What the forecast stage stores: forecasts, the anomalies found on the way, and backtest
//! accuracy.

use chrono::NaiveDate;
use sqlx::{QueryBuilder, Row};

use super::{INSERT_CHUNK_ROWS, Result, Store, StoreError, day_bounds, day_of, shape_of};
use crate::domain::{Accuracy, Anomaly, DailyForecast, Day, ModelKind, SeriesForecast};

/// One day of a stored forecast, with its series' model, note and shape repeated on it.
#[derive(sqlx::FromRow)]
pub(super) struct ForecastRow {
    series: String,
    model: String,
    history_end: NaiveDate,
    note: Option<String>,
    shape: Option<String>,
    day: NaiveDate,
    mean: f64,
    lo80: f64,
    hi80: f64,
    lo95: f64,
    hi95: f64,
    sd_level: f64,
    sd_noise: f64,
}

/// Forecasts from their rows, which come ordered by series and day.
pub(super) fn forecasts_of(rows: Vec<ForecastRow>) -> Result<Vec<SeriesForecast>> {
    let mut out: Vec<SeriesForecast> = Vec::new();
    for r in rows {
        let point = DailyForecast {
            day: day_of(r.day),
            mean: r.mean,
            lo80: r.lo80,
            hi80: r.hi80,
            lo95: r.lo95,
            hi95: r.hi95,
            sd_level: r.sd_level,
            sd_noise: r.sd_noise,
        };
        match out.last_mut() {
            Some(last) if last.series == r.series => last.points.push(point),
            _ => out.push(SeriesForecast {
                model: ModelKind::parse(&r.model)
                    .ok_or_else(|| StoreError::Corrupt(format!("unknown model {:?}", r.model)))?,
                series: r.series,
                history_end: day_of(r.history_end),
                note: r.note,
                shape: shape_of(r.shape)?,
                points: vec![point],
            }),
        }
    }
    Ok(out)
}

impl Store {
    /// Stores a run's forecasts.
    pub async fn save_forecasts(&self, run_id: i64, forecasts: &[SeriesForecast]) -> Result<()> {
        let shapes: std::collections::HashMap<&str, String> = forecasts
            .iter()
            .map(|f| {
                let json = serde_json::to_string(&f.shape)
                    .expect("a shape is strings, numbers and days: it always serialises");
                (f.series.as_str(), json)
            })
            .collect();
        let rows: Vec<(&SeriesForecast, &DailyForecast)> = forecasts
            .iter()
            .flat_map(|f| f.points.iter().map(move |p| (f, p)))
            .collect();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in rows.chunks(INSERT_CHUNK_ROWS / 2) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO forecasts (run_id, series, model, history_end, note, shape, day, mean, lo80, \
                     hi80, lo95, hi95, sd_level, sd_noise) ",
                );
                insert.push_values(chunk, |mut row, (f, p)| {
                    row.push_bind(run_id)
                        .push_bind(f.series.clone())
                        .push_bind(f.model.as_str())
                        .push_bind(f.history_end.date())
                        .push_bind(f.note.clone())
                        .push_bind(shapes[f.series.as_str()].clone())
                        .push_bind(p.day.date())
                        .push_bind(p.mean)
                        .push_bind(p.lo80)
                        .push_bind(p.hi80)
                        .push_bind(p.lo95)
                        .push_bind(p.hi95)
                        .push_bind(p.sd_level)
                        .push_bind(p.sd_noise);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest forecast of every series.
    pub async fn latest_forecasts(&self) -> Result<Vec<SeriesForecast>> {
        let sql = "SELECT f.series, f.model, f.history_end, f.note, f.shape, f.day, f.mean, f.lo80, f.hi80, \
                   f.lo95, f.hi95, f.sd_level, f.sd_noise FROM forecasts f JOIN (SELECT series, MAX(run_id) AS run_id \
                   FROM forecasts GROUP BY series) l ON l.series = f.series AND l.run_id = f.run_id \
                   ORDER BY f.series, f.day";
        let rows: Vec<ForecastRow> =
            with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        forecasts_of(rows)
    }

    /// Stores the anomalies a run found.
    pub async fn save_anomalies(&self, run_id: i64, anomalies: &[Anomaly]) -> Result<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in anomalies.chunks(INSERT_CHUNK_ROWS) {
                let mut insert =
                    QueryBuilder::new("INSERT INTO anomalies (run_id, series, day, actual, expected) ");
                insert.push_values(chunk, |mut row, a| {
                    row.push_bind(run_id)
                        .push_bind(a.series.clone())
                        .push_bind(a.day.date())
                        .push_bind(a.actual)
                        .push_bind(a.expected);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Anomalies found by the newest run that looked for them, within days if given.
    pub async fn latest_anomalies(
        &self,
        from: Option<Day>,
        to: Option<Day>,
    ) -> Result<Vec<Anomaly>> {
        let (from, to) = day_bounds(from, to);
        let sql = "SELECT series, day, actual, expected FROM anomalies \
                   WHERE run_id = (SELECT MAX(run_id) FROM anomalies) AND day >= $1 AND day <= $2 \
                   ORDER BY day DESC, series";
        with_pool!(self, pool => {
            let rows = sqlx::query(sql).bind(from).bind(to).fetch_all(pool).await?;
            rows.iter()
                .map(|r| Ok(Anomaly {
                    series: r.try_get("series")?,
                    day: day_of(r.try_get("day")?),
                    actual: r.try_get("actual")?,
                    expected: r.try_get("expected")?,
                }))
                .collect()
        })
    }

    /// Stores a run's backtest accuracy.
    pub async fn save_accuracy(&self, run_id: i64, scores: &[Accuracy]) -> Result<()> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for chunk in scores.chunks(INSERT_CHUNK_ROWS) {
                let mut insert = QueryBuilder::new(
                    "INSERT INTO forecast_accuracy (run_id, series, model, windows, horizon, mape, \
                     smape, mase, total_error, bias, coverage80, coverage95) ",
                );
                insert.push_values(chunk, |mut row, a| {
                    row.push_bind(run_id)
                        .push_bind(a.series.clone())
                        .push_bind(a.model.clone())
                        .push_bind(a.windows as i32)
                        .push_bind(a.horizon as i32)
                        .push_bind(a.mape)
                        .push_bind(a.smape)
                        .push_bind(a.mase)
                        .push_bind(a.total_error)
                        .push_bind(a.bias)
                        .push_bind(a.coverage80)
                        .push_bind(a.coverage95);
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// The newest accuracy of every series and model, by series then model.
    pub async fn latest_accuracy(&self) -> Result<Vec<Accuracy>> {
        let sql = "SELECT a.series, a.model, a.windows, a.horizon, a.mape, a.smape, a.mase, \
                   a.total_error, a.bias, a.coverage80, a.coverage95 FROM forecast_accuracy a \
                   JOIN (SELECT series, model, MAX(run_id) AS run_id FROM forecast_accuracy \
                   GROUP BY series, model) l ON l.series = a.series AND l.model = a.model \
                   AND l.run_id = a.run_id ORDER BY a.series, a.model";
        let rows: Vec<AccuracyRow> =
            with_pool!(self, pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows.into_iter().map(Accuracy::from).collect())
    }
}

/// A `forecast_accuracy` row as stored.
#[derive(sqlx::FromRow)]
struct AccuracyRow {
    series: String,
    model: String,
    windows: i32,
    horizon: i32,
    mape: Option<f64>,
    smape: Option<f64>,
    mase: Option<f64>,
    total_error: Option<f64>,
    bias: Option<f64>,
    coverage80: f64,
    coverage95: f64,
}

impl From<AccuracyRow> for Accuracy {
    fn from(row: AccuracyRow) -> Accuracy {
        Accuracy {
            series: row.series,
            model: row.model,
            // Written from usize; the columns are INTEGER only because SQL has no unsigned.
            windows: row.windows.max(0) as usize,
            horizon: row.horizon.max(0) as usize,
            mape: row.mape,
            smape: row.smape,
            mase: row.mase,
            total_error: row.total_error,
            bias: row.bias,
            coverage80: row.coverage80,
            coverage95: row.coverage95,
        }
    }
}
