//! AWS Cost Explorer: GetCostAndUsage, DAILY, paged with `NextPageToken`.
//!
//! Every request is billed (USD 0.01), so a source fetches as little as it can: the first run
//! backfills the months the API keeps; later runs fetch a trailing window plus every day the
//! API still marked `Estimated`. All pages are fetched before anything is returned, so a run
//! that fails part-way stores nothing.

use std::collections::{BTreeMap, HashSet};

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_costexplorer::Client;
use aws_sdk_costexplorer::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_costexplorer::types::{
    CostCategoryValues, DateInterval, DimensionValues, Expression, Granularity, GroupDefinition,
    GroupDefinitionType, MatchOption, ResultByTime, TagValues,
};

use super::{Batch, FetchInputs, IngestError};
use crate::config::{CeExpression, CeGroupBy, CeValues, CostExplorerSource};
use crate::domain::{CostPoint, Currency, Day, DayRange, DaySpans, Dimensions, Money};

/// The days a run asks for: an explicit range, or the incremental window from what is stored.
pub fn window(
    settings: &CostExplorerSource,
    inputs: &FetchInputs,
    range: Option<DayRange>,
) -> Option<DayRange> {
    if range.is_some() {
        return range;
    }
    let today = inputs.today;
    // The API keeps the current month and the twelve before it.
    let mut backfill_start = today.month_start();
    for _ in 1..settings.backfill_months {
        backfill_start = backfill_start.add_days(-1).month_start();
    }
    let start = match inputs.history.last_day {
        None => backfill_start,
        // The trailing window, widened back to the first day not yet stored (a job that did
        // not run for a while) and to the oldest day still estimated, but never past what the
        // API keeps.
        Some(last) => {
            let trailing = today.add_days(-i64::from(settings.refetch_days));
            let oldest_estimated = inputs.history.estimated.iter().copied().min();
            [Some(trailing), Some(last.add_days(1)), oldest_estimated]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(trailing)
                .max(backfill_start)
        }
    };
    DayRange::new(start, today).ok()
}

/// Fetches the window's daily costs, every page of it.
pub async fn fetch(
    source: &str,
    settings: &CostExplorerSource,
    inputs: &FetchInputs,
    range: Option<DayRange>,
) -> Result<Batch, IngestError> {
    let failed = |message: String| IngestError::Api {
        source_name: source.to_string(),
        message,
    };
    let Some(window) = window(settings, inputs, range) else {
        return Ok(Batch::empty(source));
    };
    let client = client(settings).await;
    let period = DateInterval::builder()
        .start(window.start().to_string())
        // The API's end date is exclusive.
        .end(window.end().add_days(1).to_string())
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let (results, requests) =
        tokio::time::timeout(settings.timeout, pages(source, settings, &client, period))
            .await
            .map_err(|_| {
                failed(format!(
                    "not finished within {} s (timeout_seconds); nothing was stored",
                    settings.timeout.as_secs()
                ))
            })?
            .map_err(failed)?;
    let (points, estimated) = convert(source, settings, &results, window).map_err(failed)?;
    tracing::info!(
        source,
        requests,
        cost_usd = f64::from(requests) * 0.01,
        "Cost Explorer requests made (each is billed USD 0.01)."
    );
    Ok(Batch {
        source: source.to_string(),
        files: Vec::new(),
        usage: Vec::new(),
        rows_read: points.len() as u64,
        points,
        covered: Some(DaySpans::of(window)),
        requests,
        estimated,
    })
}

/// A Cost Explorer client for the source's region, endpoint and retry policy.
async fn client(settings: &CostExplorerSource) -> Client {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(settings.region.clone()))
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts));
    if let Some(url) = &settings.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    Client::new(&loader.load().await)
}

/// Every page of daily costs over `period`, and the requests it took. A page token seen
/// before, or more than `max_pages` pages, is an error: each page is a billed request.
async fn pages(
    source: &str,
    settings: &CostExplorerSource,
    client: &Client,
    period: DateInterval,
) -> Result<(Vec<ResultByTime>, u32), String> {
    let groups: Vec<GroupDefinition> = settings
        .group_by
        .iter()
        .map(|g| {
            let (kind, key) = match g {
                CeGroupBy::Dimension(k) => (GroupDefinitionType::Dimension, k),
                CeGroupBy::Tag(k) => (GroupDefinitionType::Tag, k),
                CeGroupBy::CostCategory(k) => (GroupDefinitionType::CostCategory, k),
            };
            GroupDefinition::builder().r#type(kind).key(key).build()
        })
        .collect();
    let mut results: Vec<ResultByTime> = Vec::new();
    let mut token: Option<String> = None;
    let mut seen: HashSet<String> = HashSet::new();
    let mut requests = 0u32;
    loop {
        let response = client
            .get_cost_and_usage()
            .time_period(period.clone())
            .granularity(Granularity::Daily)
            .metrics(&settings.metric)
            .set_group_by((!groups.is_empty()).then(|| groups.clone()))
            .set_filter(settings.filter.as_ref().map(expression))
            .set_next_page_token(token.take())
            .send()
            .await;
        requests += 1;
        let page = response.map_err(|e| describe(&e))?;
        results.extend(page.results_by_time().iter().cloned());
        tracing::info!(
            source,
            page = requests,
            days = page.results_by_time().len(),
            "Cost Explorer page fetched."
        );
        match page.next_page_token() {
            Some(t) if !t.is_empty() => {
                if !seen.insert(t.to_string()) {
                    return Err(format!(
                        "page {requests} repeats the NextPageToken {t:?} of an earlier page; \
                         stopped rather than pay for the same pages again"
                    ));
                }
                if requests >= settings.max_pages {
                    return Err(format!(
                        "more than {} pages (max_pages); stopped after {requests} billed requests",
                        settings.max_pages
                    ));
                }
                token = Some(t.to_string());
            }
            _ => break,
        }
    }
    Ok((results, requests))
}

/// An SDK error as one line: the service's code and message when it answered, else the cause.
fn describe<E, R>(err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match err {
        SdkError::ServiceError(e) => {
            let inner = e.err();
            match (inner.code(), inner.message()) {
                (Some(code), Some(msg)) => format!("{code}: {msg}"),
                (Some(code), None) => code.to_string(),
                _ => inner.to_string(),
            }
        }
        other => crate::telemetry::error_chain(other),
    }
}

/// Turns result periods into cost points and the list of days still estimated.
fn convert(
    source: &str,
    settings: &CostExplorerSource,
    results: &[ResultByTime],
    window: DayRange,
) -> Result<(Vec<CostPoint>, Vec<Day>), String> {
    let mut totals: BTreeMap<(Day, Dimensions, Currency), f64> = BTreeMap::new();
    let mut estimated = Vec::new();
    for (i, period) in results.iter().enumerate() {
        let at = |field: &str| format!("ResultsByTime[{i}].{field}");
        let (start, end) = period
            .time_period()
            .map(|p| (p.start(), p.end()))
            .ok_or_else(|| format!("{} is missing", at("TimePeriod")))?;
        let day = Day::parse(start)
            .map_err(|_| format!("{}: {start:?} is not a date", at("TimePeriod.Start")))?;
        if Day::parse(end).ok() != Some(day.add_days(1)) {
            return Err(format!(
                "{}: {start}..{end} is not one day, but DAILY was asked for",
                at("TimePeriod")
            ));
        }
        if !window.contains(day) {
            return Err(format!(
                "{}: {day} is outside the requested {window}",
                at("TimePeriod.Start")
            ));
        }
        if period.estimated() {
            estimated.push(day);
        }
        let base = Dimensions {
            source: source.to_string(),
            provider: "AWS".into(),
            ..Dimensions::default()
        };
        if settings.group_by.is_empty() {
            if let Some((amount, currency)) = metric(period.total(), &settings.metric)
                .map_err(|e| format!("{}: {e}", at("Total")))?
            {
                *totals.entry((day, base, currency)).or_default() += amount;
            }
            continue;
        }
        // Grouped results carry amounts in Groups (Total is empty); a day without spend comes
        // back as `Groups: []`.
        for (j, group) in period.groups().iter().enumerate() {
            let at = |field: &str| at(&format!("Groups[{j}].{field}"));
            if group.keys().len() != settings.group_by.len() {
                return Err(format!(
                    "{} has {} keys for {} GroupBy",
                    at("Keys"),
                    group.keys().len(),
                    settings.group_by.len()
                ));
            }
            let mut dims = base.clone();
            for (key, grouping) in group.keys().iter().zip(&settings.group_by) {
                apply_key(&mut dims, grouping, key).map_err(|e| format!("{}: {e}", at("Keys")))?;
            }
            let Some((amount, currency)) = metric(group.metrics(), &settings.metric)
                .map_err(|e| format!("{}: {e}", at("Metrics")))?
            else {
                return Err(format!("{} has no {}", at("Metrics"), settings.metric));
            };
            *totals.entry((day, dims, currency)).or_default() += amount;
        }
    }
    let points = totals
        .into_iter()
        .map(|((day, dims, currency), amount)| CostPoint {
            day,
            dims,
            cost: Money::new(amount, currency),
        })
        .collect();
    Ok((points, estimated))
}

/// The amount and unit of `name` in a metrics map; `None` when the map lacks it.
fn metric(
    metrics: Option<&std::collections::HashMap<String, aws_sdk_costexplorer::types::MetricValue>>,
    name: &str,
) -> Result<Option<(f64, Currency)>, String> {
    let Some(value) = metrics.and_then(|m| m.get(name)) else {
        return Ok(None);
    };
    let raw = value.amount().unwrap_or_default();
    let amount: f64 = raw
        .parse()
        .ok()
        .filter(|a: &f64| a.is_finite())
        .ok_or_else(|| format!("{name}.Amount {raw:?} is not a number"))?;
    let unit = value.unit().unwrap_or("USD");
    let currency = Currency::parse(unit)
        .map_err(|e| format!("{name}.Unit {unit:?} is not a currency: {e}"))?;
    Ok(Some((amount, currency)))
}

/// Puts one group key into the dimensions: `SERVICE` values into `service`, `team$ml` into tag
/// `team` (and `team$`, untagged, into no tag), other dimensions into a lower-case tag.
fn apply_key(dims: &mut Dimensions, grouping: &CeGroupBy, key: &str) -> Result<(), String> {
    match grouping {
        CeGroupBy::Dimension(d) => match d.as_str() {
            "SERVICE" => dims.service = key.to_string(),
            "LINKED_ACCOUNT" => dims.account = key.to_string(),
            "REGION" => dims.region = key.to_string(),
            "RECORD_TYPE" => dims.charge_category = record_type(key).to_string(),
            other => {
                dims.tags
                    .insert(other.to_ascii_lowercase(), key.to_string());
            }
        },
        CeGroupBy::Tag(name) | CeGroupBy::CostCategory(name) => {
            let (k, v) = key
                .split_once('$')
                .ok_or_else(|| format!("{key:?} is not in the KEY$value form"))?;
            if k != name {
                return Err(format!("{key:?} is not a value of {name:?}"));
            }
            if !v.is_empty() {
                dims.tags.insert(name.clone(), v.to_string());
            }
        }
    }
    Ok(())
}

/// Cost Explorer record types in FOCUS's `ChargeCategory` vocabulary.
fn record_type(raw: &str) -> &str {
    match raw {
        "Usage" | "DiscountedUsage" | "Savings Plan Covered Usage" | "Savings Plan Negation" => {
            "Usage"
        }
        "Recurring reservation fee"
        | "Upfront reservation fee"
        | "Savings Plan Recurring Fee"
        | "Savings Plan Upfront Fee"
        | "Support fee"
        | "Fee" => "Purchase",
        "Tax" => "Tax",
        "Credit" | "Refund" | "Enterprise Discount Program Discount" | "Bundled Discount" => {
            "Credit"
        }
        other => other,
    }
}

fn values(v: &CeValues) -> (String, Vec<String>, Vec<MatchOption>) {
    (
        v.key.clone(),
        v.values.clone(),
        v.match_options
            .iter()
            .map(|m| MatchOption::from(m.as_str()))
            .collect(),
    )
}

/// The configured filter in the SDK's types.
fn expression(e: &CeExpression) -> Expression {
    let mut b = Expression::builder();
    if let Some(list) = &e.and {
        b = b.set_and(Some(list.iter().map(expression).collect()));
    }
    if let Some(list) = &e.or {
        b = b.set_or(Some(list.iter().map(expression).collect()));
    }
    if let Some(inner) = &e.not {
        b = b.not(expression(inner));
    }
    if let Some(v) = &e.dimensions {
        let (key, vals, opts) = values(v);
        b = b.dimensions(
            DimensionValues::builder()
                .key(key.as_str().into())
                .set_values(Some(vals))
                .set_match_options((!opts.is_empty()).then_some(opts))
                .build(),
        );
    }
    if let Some(v) = &e.tags {
        let (key, vals, opts) = values(v);
        b = b.tags(
            TagValues::builder()
                .key(key)
                .set_values(Some(vals))
                .set_match_options((!opts.is_empty()).then_some(opts))
                .build(),
        );
    }
    if let Some(v) = &e.cost_categories {
        let (key, vals, opts) = values(v);
        b = b.cost_categories(
            CostCategoryValues::builder()
                .key(key)
                .set_values(Some(vals))
                .set_match_options((!opts.is_empty()).then_some(opts))
                .build(),
        );
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::SourceHistory;

    fn settings() -> CostExplorerSource {
        CostExplorerSource {
            metric: "UnblendedCost".into(),
            group_by: vec![CeGroupBy::Dimension("SERVICE".into())],
            filter: None,
            backfill_months: 13,
            refetch_days: 3,
            region: "us-east-1".into(),
            endpoint_url: None,
            max_attempts: 3,
            max_pages: 1000,
            timeout: std::time::Duration::from_secs(600),
        }
    }

    fn inputs(last_day: Option<&str>, estimated: &[&str]) -> FetchInputs {
        FetchInputs {
            today: Day::parse("2026-11-22").unwrap(),
            history: SourceHistory {
                last_day: last_day.map(|d| Day::parse(d).unwrap()),
                estimated: estimated.iter().map(|d| Day::parse(d).unwrap()).collect(),
            },
            billed: Vec::new(),
        }
    }

    #[test]
    fn a_first_run_backfills_thirteen_months() {
        let w = window(&settings(), &inputs(None, &[]), None).unwrap();
        assert_eq!(w.start().to_string(), "2025-11-01");
        assert_eq!(w.end().to_string(), "2026-11-22");
    }

    #[test]
    fn later_runs_refetch_the_trailing_window_and_estimated_days_only() {
        let w = window(&settings(), &inputs(Some("2026-11-21"), &[]), None).unwrap();
        assert_eq!(w.start().to_string(), "2026-11-19");
        let w = window(
            &settings(),
            &inputs(Some("2026-11-21"), &["2026-11-10", "2026-11-21"]),
            None,
        )
        .unwrap();
        assert_eq!(w.start().to_string(), "2026-11-10");
    }

    #[test]
    fn a_long_pause_refetches_the_gap_but_never_past_the_api_limit() {
        let w = window(&settings(), &inputs(Some("2026-10-01"), &[]), None).unwrap();
        assert_eq!(w.start().to_string(), "2026-10-02");
        let w = window(&settings(), &inputs(Some("2024-01-01"), &[]), None).unwrap();
        assert_eq!(w.start().to_string(), "2025-11-01");
    }

    #[test]
    fn the_filter_becomes_the_sdk_expression() {
        let filter: CeExpression = serde_json::from_str(
            r#"{"And": [{"Not": {"Dimensions": {"Key": "RECORD_TYPE", "Values": ["Credit"]}}},
                        {"Tags": {"Key": "team", "Values": ["ml"], "MatchOptions": ["EQUALS"]}}]}"#,
        )
        .unwrap();
        let e = expression(&filter);
        let and = e.and();
        assert_eq!(and.len(), 2);
        let dims = and[0].not().and_then(|n| n.dimensions()).unwrap();
        assert_eq!(dims.key().map(|k| k.as_str()), Some("RECORD_TYPE"));
        assert_eq!(dims.values(), ["Credit"]);
        let tags = and[1].tags().unwrap();
        assert_eq!(tags.key(), Some("team"));
        assert_eq!(tags.match_options(), [MatchOption::Equals]);
    }

    #[test]
    fn tag_keys_split_on_the_dollar_and_untagged_keeps_no_tag() {
        let mut d = Dimensions::default();
        apply_key(&mut d, &CeGroupBy::Tag("team".into()), "team$ml").unwrap();
        assert_eq!(d.tags.get("team").map(String::as_str), Some("ml"));
        let mut d = Dimensions::default();
        apply_key(&mut d, &CeGroupBy::Tag("team".into()), "team$").unwrap();
        assert!(d.tags.is_empty());
        assert!(apply_key(&mut d, &CeGroupBy::Tag("team".into()), "env$prod").is_err());
        assert!(apply_key(&mut d, &CeGroupBy::Tag("team".into()), "ml").is_err());
    }
}
