//! The budgets stage: each budget's projection, its drivers, and its hysteresis state, stored
//! together so the act stage and the report read one consistent decision.

use crate::app::App;
use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::{Counts, RunReport, StageError, counts};
use crate::budget::{self, GroupCosts};
use crate::domain::{Budget, Day, Evaluation, LaggingSource, SeriesForecast, Status};
use crate::forecast::targets::{budget_series, grain_series};
use crate::store::StoredSeries;

/// Daily totals of the stored series inside `budget`'s scope.
fn scope_totals(
    series: &[StoredSeries],
    costs: &[(i64, Day, f64)],
    budget: &Budget,
) -> Vec<(Day, f64)> {
    let members: HashSet<i64> = series
        .iter()
        .filter(|s| budget.scope.matches(&s.dims))
        .map(|s| s.id)
        .collect();
    let mut by_day: BTreeMap<Day, f64> = BTreeMap::new();
    for (id, day, amount) in costs {
        if members.contains(id) {
            *by_day.entry(*day).or_default() += amount;
        }
    }
    by_day.into_iter().collect()
}

/// The report groups that hold series of `budget`'s scope, with their daily costs split into
/// inside and outside the scope.
fn groups(
    ctx: &App,
    series: &[StoredSeries],
    costs: &[(i64, Day, f64)],
    budget: &Budget,
) -> BTreeMap<String, GroupCosts> {
    let grain = &ctx.config.forecast.grain;
    let of: BTreeMap<i64, (String, bool)> = series
        .iter()
        .map(|s| {
            (
                s.id,
                (grain_series(grain, &s.dims), budget.scope.matches(&s.dims)),
            )
        })
        .collect();
    let touched: HashSet<&str> = of
        .values()
        .filter(|(_, inside)| *inside)
        .map(|(g, _)| g.as_str())
        .collect();
    let mut out: BTreeMap<String, GroupCosts> = BTreeMap::new();
    for (id, day, amount) in costs {
        let Some((group, inside)) = of.get(id) else {
            continue;
        };
        if !touched.contains(group.as_str()) {
            continue;
        }
        let g = out.entry(group.clone()).or_default();
        let side = if *inside {
            &mut g.in_scope
        } else {
            &mut g.outside
        };
        *side.entry(*day).or_default() += amount;
    }
    out
}

fn evaluate_one(
    ctx: &App,
    budget: &Budget,
    series: &[StoredSeries],
    costs: &[(i64, Day, f64)],
    forecasts: &[SeriesForecast],
    as_of: Day,
) -> Evaluation {
    let name = budget_series(&budget.name);
    let forecast = forecasts.iter().find(|f| f.series == name);
    let actuals = scope_totals(series, costs, budget);
    if forecast.is_none() {
        if series.iter().any(|s| budget.scope.matches(&s.dims)) {
            tracing::warn!(budget = %budget.name, "No forecast for this budget yet: run `costcast forecast`.");
        } else {
            tracing::warn!(budget = %budget.name, scope = %budget.scope, "No stored cost matches this budget's scope.");
        }
    }
    let mut evaluation = budget::evaluate(budget, &actuals, forecast, as_of);
    let trusted_end = forecast
        .map(|f| f.history_end)
        .or(evaluation.projection.reported_through)
        .unwrap_or(as_of);
    evaluation.drivers = budget::drivers(
        &groups(ctx, series, costs, budget),
        forecasts,
        evaluation.projection.period,
        budget.period.previous(as_of),
        trusted_end,
    );
    evaluation
}

/// The sources `budget`'s scope draws on that this run failed to read (`failed`) or whose
/// newest day (`newest`) is more than `max_age` days before `as_of`.
fn lagging(
    budget: &Budget,
    series: &[StoredSeries],
    newest: &BTreeMap<String, Day>,
    failed: &HashSet<&str>,
    as_of: Day,
    max_age: u32,
) -> Vec<LaggingSource> {
    let sources: BTreeSet<&str> = series
        .iter()
        .filter(|s| budget.scope.matches(&s.dims))
        .map(|s| s.dims.source.as_str())
        .collect();
    sources
        .into_iter()
        .filter_map(|source| {
            let newest_day = newest.get(source).copied();
            // A source with nothing before `as_of` had not started yet: it is not behind.
            let stale = newest_day.is_some_and(|d| d.days_until(as_of) > i64::from(max_age));
            let refresh_failed = failed.contains(source);
            (stale || refresh_failed).then(|| LaggingSource {
                source: source.to_string(),
                newest_day,
                refresh_failed,
                stale,
            })
        })
        .collect()
}

/// Evaluates every budget as of `as_of`, moves its hysteresis state on, and stores both. A
/// budget drawing on data too old to act on is evaluated, but its ladder is held where it was.
pub(super) async fn stage(
    ctx: &App,
    run_id: i64,
    as_of: Day,
    report: &mut RunReport,
) -> Result<Counts, StageError> {
    let forecasts = ctx.store.latest_forecasts().await?;
    let accuracy = ctx.store.latest_accuracy().await?;
    let states = ctx.store.budget_states().await?;
    let configured = ctx.config.forecast.model.to_string();
    let series = ctx.store.series().await?;
    // Drivers compare with the previous period, so costs are read from its start.
    let earliest = ctx
        .config
        .budgets
        .iter()
        .map(|b| b.period.previous(as_of).start())
        .min();
    // Nothing from `as_of` on is read, so a replay sees what that day saw.
    let costs = match earliest {
        Some(from) => {
            ctx.store
                .daily_costs(Some(from), Some(as_of.add_days(-1)))
                .await?
        }
        None => Vec::new(),
    };
    let newest = ctx.store.newest_days(as_of).await?;
    let failed: HashSet<&str> = report
        .failed_sources
        .iter()
        .map(|f| f.source.as_str())
        .collect();
    let max_age = ctx.config.act.max_data_age_days;
    let mut evaluations = Vec::new();
    let mut new_states = Vec::new();
    for b in &ctx.config.budgets {
        let mut evaluation = evaluate_one(ctx, b, &series, &costs, &forecasts, as_of);
        evaluation.lagging = lagging(b, &series, &newest, &failed, as_of, max_age);
        evaluation.forecast_error = accuracy
            .iter()
            .find(|a| a.series == budget_series(&b.name) && a.model == configured)
            .and_then(|a| a.total_error);
        let previous = states.get(&b.name).map(|s| &s.state);
        let state = match evaluation.ladder_held() {
            true => {
                tracing::warn!(budget = %b.name, lagging = ?evaluation.lagging, "Data too old to act on: the action ladder is held.");
                budget::hold(previous, &mut evaluation)
            }
            false => budget::advance(b, previous, &mut evaluation),
        };
        if previous.map(|p| p.steps()) != Some(state.steps()) && state.steps() > 0 {
            tracing::warn!(budget = %b.name, steps = state.steps(), p_breach = evaluation.projection.p_breach, "Budget moved up its action ladder.");
        }
        new_states.push((b.name.clone(), state));
        evaluations.push(evaluation);
    }
    ctx.store.save_evaluations(run_id, &evaluations).await?;
    ctx.store.save_budget_states(run_id, &new_states).await?;
    let n = |s| evaluations.iter().filter(|e| e.status == s).count() as u64;
    let c = counts([
        ("budgets", evaluations.len() as u64),
        ("ok", n(Status::Ok)),
        ("warn", n(Status::Warn)),
        ("breach", n(Status::Breach)),
        ("recovering", n(Status::Recovering)),
        (
            "held",
            evaluations.iter().filter(|e| e.ladder_held()).count() as u64,
        ),
    ]);
    report.evaluations = evaluations;
    Ok(c)
}
