//! Kubernetes usage from Prometheus (`query_range`), per day and namespace, turned into cost:
//! either usage × unit prices, or a billed amount split by usage share with the unused share
//! stored as namespace `idle`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Batch, FetchInputs, IngestError};
use crate::config::{Pricing, PrometheusAllocation, PrometheusSource, UnitPrices};
use crate::domain::{
    CostPoint, Currency, Day, DayRange, DaySpans, Dimensions, Money, UsageMetric, UsagePoint,
};

/// The namespace that holds what the cluster cost but no namespace used.
pub const IDLE: &str = "idle";

/// Days per `query_range` request: Prometheus refuses more than 11,000 points per series, and
/// 30 hourly days are 720.
const DAYS_PER_REQUEST: i64 = 30;

/// Days fetched on a first run.
const BACKFILL_DAYS: i64 = 30;

/// Days re-read on every run: their billed amounts may still be settling, and an allocation
/// follows its bill. Prometheus queries cost nothing.
const REFETCH_DAYS: i64 = 3;

/// The days a run asks for: an explicit range, or from the last stored day (or the last few
/// days, whichever is earlier) through yesterday; today is still running.
pub fn window(inputs: &FetchInputs, range: Option<DayRange>) -> Option<DayRange> {
    if range.is_some() {
        return range;
    }
    let end = inputs.today.add_days(-1);
    let start = match inputs.history.last_day {
        Some(last) => last.min(end.add_days(1 - REFETCH_DAYS)),
        None => end.add_days(1 - BACKFILL_DAYS),
    };
    DayRange::new(start, end).ok()
}

#[derive(Debug, Deserialize)]
struct Response {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Series>,
}

#[derive(Debug, Deserialize)]
struct Series {
    metric: BTreeMap<String, String>,
    values: Vec<(f64, String)>,
}

/// A namespace and its kept labels.
type Owner = (String, BTreeMap<String, String>);

/// Quantity per (day, namespace, labels), from one query.
type Daily = BTreeMap<(Day, String, BTreeMap<String, String>), f64>;

struct Client<'a> {
    source: &'a str,
    settings: &'a PrometheusSource,
    http: &'a reqwest::Client,
    requests: u32,
    samples: u64,
}

impl Client<'_> {
    fn failed(&self, message: String) -> IngestError {
        IngestError::Api {
            source_name: self.source.to_string(),
            message,
        }
    }

    /// Runs `query` over `window` and sums `value × step` into hours per day; `by_namespace`
    /// requires every series to carry a `namespace` label.
    async fn daily(
        &mut self,
        what: &str,
        query: &str,
        window: DayRange,
        by_namespace: bool,
    ) -> Result<Daily, IngestError> {
        let step = i64::from(self.settings.step_seconds);
        let hours_per_sample = step as f64 / 3600.0;
        let mut daily = Daily::new();
        let mut chunk_start = window.start();
        while chunk_start <= window.end() {
            let chunk_end = chunk_start.add_days(DAYS_PER_REQUEST - 1).min(window.end());
            let data = self
                .query_range(what, query, chunk_start, chunk_end)
                .await?;
            for (i, series) in data.result.into_iter().enumerate() {
                let mut labels = series.metric;
                let namespace = if by_namespace {
                    labels.remove("namespace").ok_or_else(|| {
                        self.failed(format!(
                            "{what} query: data.result[{i}].metric has no namespace label (sum by (namespace, ...))"
                        ))
                    })?
                } else {
                    String::new()
                };
                labels.retain(|k, _| self.settings.labels.contains(k));
                for (j, (t, raw)) in series.values.iter().enumerate() {
                    let value: f64 = raw
                        .parse()
                        .ok()
                        .filter(|v: &f64| v.is_finite())
                        .ok_or_else(|| {
                            self.failed(format!(
                                "{what} query: data.result[{i}].values[{j}] {raw:?} is not a number"
                            ))
                        })?;
                    self.samples += 1;
                    let day = day_of(*t);
                    if !window.contains(day) {
                        continue;
                    }
                    *daily
                        .entry((day, namespace.clone(), labels.clone()))
                        .or_default() += value * hours_per_sample;
                }
            }
            chunk_start = chunk_end.add_days(1);
        }
        Ok(daily)
    }

    /// One `query_range` request over the days `from` to `to`, checked to be a matrix.
    async fn query_range(
        &mut self,
        what: &str,
        query: &str,
        from: Day,
        to: Day,
    ) -> Result<Data, IngestError> {
        let step = i64::from(self.settings.step_seconds);
        let start = epoch_seconds(from);
        // Samples stand for [t, t + step): the last one of a day starts a step before midnight.
        let end = epoch_seconds(to.add_days(1)) - step;
        let url = reqwest::Url::parse_with_params(
            &format!("{}/api/v1/query_range", self.settings.url),
            &[
                ("query", query),
                ("start", &start.to_string()),
                ("end", &end.to_string()),
                ("step", &step.to_string()),
            ],
        )
        .map_err(|e| self.failed(format!("{what} query: bad URL: {e}")))?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.failed(format!("{what} query: {e}")))?;
        self.requests += 1;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| self.failed(format!("{what} query: reading the answer: {e}")))?;
        let parsed: Response = serde_json::from_str(&body).map_err(|e| {
            let shown: String = body.chars().take(120).collect();
            self.failed(format!(
                "{what} query: HTTP {status}, not a Prometheus API answer ({e}): {shown:?}"
            ))
        })?;
        if parsed.status != "success" {
            return Err(self.failed(format!(
                "{what} query {query:?} failed: {}",
                parsed.error.unwrap_or_else(|| format!("HTTP {status}"))
            )));
        }
        let data = parsed
            .data
            .ok_or_else(|| self.failed(format!("{what} query: the answer has no data")))?;
        if data.result_type != "matrix" {
            return Err(self.failed(format!(
                "{what} query: data.resultType is {:?}, expected \"matrix\" (is it a range vector?)",
                data.result_type
            )));
        }
        Ok(data)
    }
}

fn epoch_seconds(day: Day) -> i64 {
    day.date()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
        .timestamp()
}

fn day_of(t: f64) -> Day {
    let epoch = Day::from_ymd(1970, 1, 1).expect("the epoch is a valid date");
    epoch.add_days((t / 86_400.0).floor() as i64)
}

/// Fetches usage over the window and prices or allocates it.
pub async fn fetch(
    source: &str,
    settings: &PrometheusSource,
    inputs: &FetchInputs,
    range: Option<DayRange>,
    http: &reqwest::Client,
) -> Result<Batch, IngestError> {
    let Some(window) = window(inputs, range) else {
        return Ok(Batch::empty(source));
    };
    let mut client = Client {
        source,
        settings,
        http,
        requests: 0,
        samples: 0,
    };
    let q = &settings.queries;
    let usage = [
        (
            UsageMetric::CpuCoreHours,
            client.daily("cpu", &q.cpu, window, true).await?,
        ),
        (
            UsageMetric::MemoryGibHours,
            client.daily("memory", &q.memory, window, true).await?,
        ),
        (
            UsageMetric::GpuHours,
            client.daily("gpu", &q.gpu, window, true).await?,
        ),
    ];
    let mut points = usage_points(&usage);
    if let Some(units) = &settings.units {
        let daily = client
            .daily(&units.name, &units.query, window, true)
            .await?;
        // A counter's increase per step is a count, not a rate: undo the hours scaling.
        let per_sample = 3600.0 / f64::from(settings.step_seconds);
        points.extend(daily.into_iter().map(|((day, ns, labels), q)| UsagePoint {
            day,
            namespace: ns,
            labels,
            metric: UsageMetric::Units(units.name.clone()),
            quantity: q * per_sample,
        }));
    }
    let costs = match &settings.pricing {
        Pricing::Prices(prices) => priced(source, &usage, prices),
        Pricing::Allocate(allocation) => {
            let capacity = [
                client
                    .daily("cpu capacity", &q.cpu_capacity, window, false)
                    .await?,
                client
                    .daily("memory capacity", &q.memory_capacity, window, false)
                    .await?,
                client
                    .daily("gpu capacity", &q.gpu_capacity, window, false)
                    .await?,
            ];
            allocated(source, &usage, &capacity, allocation, &inputs.billed)?
        }
    };
    // No sample at all is a Prometheus without the data (a retention gap, a query gone wrong),
    // not a cluster that used nothing: idle namespaces still have samples, at zero. Replacing
    // the window with it would delete what is stored.
    let covered = match client.samples {
        0 => {
            tracing::warn!(
                source,
                %window,
                "Prometheus answered no samples for the window; its stored usage is kept."
            );
            None
        }
        _ => Some(DaySpans::of(window)),
    };
    Ok(Batch {
        source: source.to_string(),
        files: Vec::new(),
        points: costs,
        usage: points,
        rows_read: client.samples,
        covered,
        requests: client.requests,
        estimated: Vec::new(),
    })
}

/// The hours per day, namespace and labels of each metric, as stored usage.
fn usage_points(usage: &[(UsageMetric, Daily)]) -> Vec<UsagePoint> {
    let mut points = Vec::new();
    for (metric, daily) in usage {
        points.extend(daily.iter().map(|((day, ns, labels), q)| UsagePoint {
            day: *day,
            namespace: ns.clone(),
            labels: labels.clone(),
            metric: metric.clone(),
            quantity: *q,
        }));
    }
    points
}

fn dims(source: &str, namespace: &str, labels: &BTreeMap<String, String>) -> Dimensions {
    let mut tags = labels.clone();
    tags.insert("namespace".into(), namespace.to_string());
    Dimensions {
        source: source.to_string(),
        provider: "Kubernetes".into(),
        service: "Kubernetes".into(),
        charge_category: "Usage".into(),
        tags,
        ..Dimensions::default()
    }
}

fn cents(amount: f64) -> i64 {
    (amount * 100.0).round() as i64
}

/// Usage × unit prices, per day and namespace, to the cent.
fn priced(source: &str, usage: &[(UsageMetric, Daily); 3], prices: &UnitPrices) -> Vec<CostPoint> {
    let rates = [
        prices.cpu_core_hour,
        prices.memory_gib_hour,
        prices.gpu_hour,
    ];
    let mut totals: BTreeMap<(Day, String, BTreeMap<String, String>), f64> = BTreeMap::new();
    for ((_, daily), rate) in usage.iter().zip(rates) {
        for (key, q) in daily {
            *totals.entry(key.clone()).or_default() += q * rate;
        }
    }
    totals
        .into_iter()
        .map(|((day, ns, labels), amount)| CostPoint {
            day,
            dims: dims(source, &ns, &labels),
            cost: Money::new(cents(amount) as f64 / 100.0, prices.currency.clone()),
        })
        .collect()
}

/// Splits each day's billed amount: namespace share = Σ over resources of weight × usage /
/// capacity; what no namespace used is `idle`. Shares are rounded to cents by largest
/// remainder, so namespaces plus idle equal the bill to the cent.
fn allocated(
    source: &str,
    usage: &[(UsageMetric, Daily); 3],
    capacity: &[Daily; 3],
    allocation: &PrometheusAllocation,
    billed: &[(Day, Money)],
) -> Result<Vec<CostPoint>, IngestError> {
    let currencies: Vec<&Currency> = billed.iter().map(|(_, m)| &m.currency).collect();
    if currencies.windows(2).any(|w| w[0] != w[1]) {
        return Err(IngestError::Setup {
            source_name: source.to_string(),
            message: "the billed amounts in allocate.scope are in more than one currency".into(),
        });
    }
    let mut points = Vec::new();
    for (day, bill) in billed {
        let total_cents = cents(bill.amount);
        let shares = shares_of_day(*day, usage, capacity, allocation.weights);
        let (exact, given) = to_cents(shares, total_cents);
        let allocated: i64 = given.iter().sum();
        for (((ns, labels), _), c) in exact.iter().zip(&given) {
            if *c != 0 {
                points.push(CostPoint {
                    day: *day,
                    dims: dims(source, ns, labels),
                    cost: Money::new(*c as f64 / 100.0, bill.currency.clone()),
                });
            }
        }
        points.push(CostPoint {
            day: *day,
            dims: dims(source, IDLE, &BTreeMap::new()),
            cost: Money::new(
                (total_cents - allocated) as f64 / 100.0,
                bill.currency.clone(),
            ),
        });
    }
    Ok(points)
}

/// Each owner's share of `day`'s bill: the resources the cluster has (capacity > 0) share it
/// by their weights, and each resource by what each owner used of its capacity.
fn shares_of_day(
    day: Day,
    usage: &[(UsageMetric, Daily); 3],
    capacity: &[Daily; 3],
    mut weights: [f64; 3],
) -> BTreeMap<Owner, f64> {
    let mut shares: BTreeMap<Owner, f64> = BTreeMap::new();
    let mut resource_usage = Vec::new();
    for (r, (_, daily)) in usage.iter().enumerate() {
        let used: Vec<_> = daily.iter().filter(|((d, _, _), _)| *d == day).collect();
        let used_total: f64 = used.iter().map(|(_, q)| **q).sum();
        let cap = capacity[r]
            .iter()
            .filter(|((d, _, _), _)| *d == day)
            .map(|(_, q)| *q)
            .sum::<f64>()
            .max(used_total);
        if cap <= 0.0 {
            weights[r] = 0.0;
        }
        resource_usage.push((used, cap));
    }
    let weight_sum: f64 = weights.iter().sum();
    if weight_sum > 0.0 {
        for (r, (used, cap)) in resource_usage.iter().enumerate() {
            let w = weights[r] / weight_sum;
            if w == 0.0 {
                continue;
            }
            for ((_, ns, labels), q) in used {
                *shares.entry((ns.clone(), labels.clone())).or_default() += w * **q / cap;
            }
        }
    }
    shares
}

/// Shares of `total_cents` in whole cents by largest remainder: floor every share, then hand
/// out the leftover cents (never more than the whole bill) to the largest fractions. Returns
/// the exact amounts with the cents given to each.
fn to_cents(shares: BTreeMap<Owner, f64>, total_cents: i64) -> (Vec<(Owner, f64)>, Vec<i64>) {
    let exact: Vec<(Owner, f64)> = shares
        .into_iter()
        .map(|(k, share)| (k, share.clamp(0.0, 1.0) * total_cents as f64))
        .collect();
    let mut given: Vec<i64> = exact.iter().map(|(_, c)| c.floor() as i64).collect();
    let wanted = (exact.iter().map(|(_, c)| c).sum::<f64>().round() as i64).min(total_cents);
    let mut order: Vec<usize> = (0..exact.len()).collect();
    order.sort_by(|a, b| {
        let fa = exact[*a].1 - exact[*a].1.floor();
        let fb = exact[*b].1 - exact[*b].1.floor();
        fb.total_cmp(&fa)
    });
    let mut left = wanted - given.iter().sum::<i64>();
    for i in order {
        if left <= 0 {
            break;
        }
        given[i] += 1;
        left -= 1;
    }
    (exact, given)
}

#[cfg(test)]
mod tests;
