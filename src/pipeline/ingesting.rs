//! The ingest stage: each configured source read into the store, billing days replaced as a
//! whole and usage kept beside them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tracing::Instrument;

use super::{Counts, RunOptions, RunReport, StageError, counts};
use crate::app::App;
use crate::config::{Pricing, Source, SourceKind};
use crate::domain::{Currency, Day, DayRange, Money, Scope, SourceFailure};
use crate::ingest::{self, FetchInputs, SourceHistory};
use crate::store::{Ingested, StoreError};

/// Reads every selected source into the store, one after another, and sums their counts.
///
/// A source that cannot be read fails alone: its error goes to `report.failed_sources`, what
/// it had stored stays as it was, and the others are read. A store that fails fails the stage.
pub(super) async fn ingest_stage(
    ctx: &App,
    options: &RunOptions,
    now: DateTime<Utc>,
    report: &mut RunReport,
) -> Result<Counts, StageError> {
    let sources = selected(ctx, options)?;
    let dropped = drop_unconfigured(ctx).await?;
    let mut total = counts([
        ("sources", 0),
        ("files", 0),
        ("rows_read", 0),
        ("requests", 0),
        ("points_written", 0),
        ("points_removed", 0),
        ("usage_written", 0),
        ("days_written", 0),
    ]);
    let today = Day::from_date(now.date_naive());
    for source in sources {
        let counts = match ingest_source(ctx, &source, options, today).await {
            Ok(counts) => counts,
            Err(e @ (StageError::Store(_) | StageError::Interrupted(_))) => return Err(e),
            Err(e) => {
                tracing::error!(source = %source.name, error = %e, "Source failed; the other sources go on.");
                let error = crate::telemetry::error_chain(&e);
                report
                    .failed_sources
                    .push(SourceFailure::new(&source.name, error));
                continue;
            }
        };
        for (key, n) in counts {
            *total.entry(key).or_default() += n;
        }
    }
    total.insert("failed_sources".into(), report.failed_sources.len() as u64);
    total.insert("sources_dropped".into(), dropped.len() as u64);
    Ok(total)
}

/// Drops what the store holds for sources no longer in the configuration, so a source taken
/// out stops counting in budgets and forecasts; the sources dropped, each with a log line.
pub async fn drop_unconfigured(ctx: &App) -> Result<Vec<String>, StoreError> {
    let configured: Vec<&str> = ctx.config.sources.iter().map(|s| s.name.as_str()).collect();
    let dropped = ctx.store.drop_sources_except(&configured).await?;
    for (source, points) in &dropped {
        tracing::warn!(
            source,
            points,
            "Source is no longer configured: dropped its {points} cost points, its usage and its series."
        );
    }
    Ok(dropped.into_iter().map(|(source, _)| source).collect())
}

/// The sources a run ingests: the one named, or those of the kinds asked for, or all.
fn selected(ctx: &App, options: &RunOptions) -> Result<Vec<Source>, StageError> {
    let sources: Vec<_> = match &options.source {
        Some(name) => vec![ctx.config.source(name).cloned().ok_or_else(|| {
            StageError::Other(format!("no source named {name:?} in the configuration"))
        })?],
        None => ctx
            .config
            .sources
            .iter()
            .filter(|s| {
                options.source_kinds.is_empty()
                    || options.source_kinds.contains(&s.kind.source_type())
            })
            .cloned()
            .collect(),
    };
    if sources.is_empty() && options.source_kinds.is_empty() {
        tracing::warn!("No sources are configured: nothing to ingest.");
    } else if sources.is_empty() {
        tracing::info!(kinds = ?options.source_kinds, "No source of these kinds is configured: nothing to ingest.");
    }
    Ok(sources)
}

/// Reads one source and replaces the days it covers; its counts, empty when it had nothing in
/// range.
async fn ingest_source(
    ctx: &App,
    source: &Source,
    options: &RunOptions,
    today: Day,
) -> Result<Counts, StageError> {
    let started = std::time::Instant::now();
    let name = source.name.clone();
    let (last_day, estimated) = ctx.store.source_history(&name).await?;
    let mut inputs = FetchInputs {
        today,
        history: SourceHistory {
            last_day,
            estimated,
        },
        billed: Vec::new(),
    };
    if let SourceKind::Prometheus(settings) = &source.kind
        && let Pricing::Allocate(allocation) = &settings.pricing
    {
        let window = ingest::prometheus::window(&inputs, options.range);
        inputs.billed = billed(ctx, &name, &allocation.scope, window).await?;
    }
    let span = tracing::info_span!("ingest", source = %name);
    let batch = ingest::fetch(source, &inputs, options.range, &ctx.http)
        .instrument(span)
        .await?;
    let Some(covered) = batch.covered else {
        tracing::warn!(source = %name, "Source had nothing in range; nothing stored.");
        return Ok(Counts::new());
    };
    let written = ctx
        .store
        .replace_ingested(
            &name,
            &covered,
            &Ingested {
                points: &batch.points,
                usage: &batch.usage,
                estimated: &batch.estimated,
            },
        )
        .await?;
    tracing::info!(
        source = %name,
        files = batch.files.len(),
        rows = batch.rows_read,
        requests = batch.requests,
        points = written.points_written,
        usage = written.usage_written,
        series = written.series,
        replaced = written.points_removed,
        days = covered.len_days(),
        estimated_days = batch.estimated.len(),
        seconds = format_args!("{:.2}", started.elapsed().as_secs_f64()),
        "Source ingested: {} rows read, {} days written ({covered}), {} requests, {:.2} s.",
        batch.rows_read,
        covered.len_days(),
        batch.requests,
        started.elapsed().as_secs_f64(),
    );
    Ok(counts([
        ("sources", 1),
        ("files", batch.files.len() as u64),
        ("rows_read", batch.rows_read),
        ("requests", u64::from(batch.requests)),
        ("points_written", written.points_written),
        ("points_removed", written.points_removed),
        ("usage_written", written.usage_written),
        ("days_written", covered.len_days() as u64),
    ]))
}

/// The daily billed amounts inside `scope` (from other sources), for usage allocation.
async fn billed(
    ctx: &App,
    source: &str,
    scope: &Scope,
    window: Option<DayRange>,
) -> Result<Vec<(Day, Money)>, StageError> {
    let Some(window) = window else {
        return Ok(Vec::new());
    };
    let series: BTreeMap<i64, Currency> = ctx
        .store
        .series()
        .await?
        .into_iter()
        .filter(|s| s.dims.source != source && scope.matches(&s.dims))
        .map(|s| (s.id, s.currency))
        .collect();
    if series.is_empty() {
        return Err(StageError::Other(format!(
            "source {source}: allocate.scope ({scope}) matches no stored cost; ingest the billing source first"
        )));
    }
    let mut daily: BTreeMap<(Day, Currency), f64> = BTreeMap::new();
    for (id, day, amount) in ctx
        .store
        .daily_costs(Some(window.start()), Some(window.end()))
        .await?
    {
        if let Some(currency) = series.get(&id) {
            *daily.entry((day, currency.clone())).or_default() += amount;
        }
    }
    Ok(daily
        .into_iter()
        .map(|((day, currency), amount)| (day, Money::new(amount, currency)))
        .collect())
}
