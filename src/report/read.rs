//! Each report as the CLI prints it, read from the store: what to load for it, then its
//! table, CSV or JSON.

use crate::app::App;
use crate::config::SourceKind;
use crate::domain::{Day, Dimension, Scope};
use crate::store::{Store, StoreError};

use super::Format;
use super::cube::{CostCube, CostQuery, CostTable, Granularity};

/// Which report, with what only it takes.
#[derive(Debug, Clone)]
pub enum Query {
    /// Cost totals grouped by these dimensions.
    Costs(Vec<Dimension>),
    /// The newest forecast of every series.
    Forecasts,
    /// The newest evaluation of every budget.
    Budgets,
    /// The changes planned by the newest run, and what it did to objects.
    Actions,
    /// Days smoothed out of the fit as anomalies.
    Anomalies,
    /// Recent runs and their stages.
    Runs,
    /// Cost per 1,000 units per namespace, from Prometheus sources.
    Units,
    /// Backtest accuracy of every forecast series.
    Accuracy,
}

/// The days a report covers, both ends included; open when `None`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Days {
    /// From this day.
    pub from: Option<Day>,
    /// Up to this day.
    pub to: Option<Day>,
}

/// How many runs the runs report lists.
const RUNS_LISTED: i64 = 20;

/// Reads what `query` needs from the app's store and renders it in `format`.
pub async fn render(
    app: &App,
    query: &Query,
    days: Days,
    format: Format,
) -> Result<String, StoreError> {
    let store = &app.store;
    let Days { from, to } = days;
    Ok(match query {
        Query::Costs(group_by) => {
            let (series, costs) = (store.series().await?, store.daily_costs(from, to).await?);
            let span = costs
                .iter()
                .map(|c| c.1)
                .min()
                .zip(costs.iter().map(|c| c.1).max());
            let table = match span {
                Some((first, last)) => CostCube::build(0, series, &costs).query(&CostQuery {
                    from: first,
                    to: last,
                    group_by: group_by.clone(),
                    granularity: Granularity::Day,
                    scope: Scope::all(),
                }),
                None => CostTable::default(),
            };
            super::costs(&table, group_by).render(format)
        }
        Query::Units => {
            let mut usage = Vec::new();
            for source in &app.config.sources {
                if matches!(source.kind, SourceKind::Prometheus(_)) {
                    let points = store.usage(&source.name, from, to).await?;
                    usage.extend(points.into_iter().map(|u| (source.name.clone(), u)));
                }
            }
            let (series, costs) = (store.series().await?, store.daily_costs(from, to).await?);
            super::unit_costs(&usage, &series, &costs).render(format)
        }
        Query::Accuracy => super::accuracy(&store.latest_accuracy().await?).render(format),
        Query::Forecasts => {
            let forecasts = store.latest_forecasts().await?;
            match format {
                Format::Table => super::forecast_totals(&forecasts).render(format),
                _ => super::forecasts(&forecasts, from, to).render(format),
            }
        }
        Query::Budgets => {
            let evaluations = store.latest_evaluations().await?;
            match format {
                Format::Table => super::budgets_summary(&evaluations).render(format),
                _ => super::budgets(&evaluations).render(format),
            }
        }
        Query::Actions => {
            let steps = super::actions(&store.latest_planned_changes().await?).render(format);
            let records = match store.latest_action_run().await? {
                Some(run) => store.actions(run).await?,
                None => Vec::new(),
            };
            format!("{steps}{}", super::object_actions(&records).render(format))
        }
        Query::Anomalies => {
            super::anomalies(&store.latest_anomalies(from, to).await?).render(format)
        }
        Query::Runs => super::runs(&store.runs(RUNS_LISTED).await?).render(format),
    })
}

/// Loads every stored cost into a cube tagged with the store's current generation, streamed
/// straight into place: a year of 10,000 series never sits in memory as rows.
pub async fn cube(store: &Store) -> Result<CostCube, StoreError> {
    let generation = store.data_generation().await?;
    let series = store.series().await?;
    let span = store.cost_span().await?;
    let mut builder = CostCube::builder(generation, series, span);
    store
        .each_cost(|id, day, amount| builder.put(id, day, amount))
        .await?;
    Ok(builder.finish())
}
