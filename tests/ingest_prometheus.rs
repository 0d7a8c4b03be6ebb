//! Prometheus usage ingestion against a real Prometheus holding ten backfilled days
//! (scripts/peers/gen_openmetrics.py: 2026-01-01..10), on both stores.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use common::*;
use costcast::app::App;
use costcast::domain::{
    CostPoint, Currency, Day, DayRange, Dimensions, Money, UsageMetric, UsagePoint,
};
use costcast::pipeline::{RunError, RunOptions, RunReport};

fn prometheus_url() -> String {
    std::env::var("COSTCAST_TEST_PROMETHEUS_URL").unwrap_or_else(|_| {
        panic!(
            "COSTCAST_TEST_PROMETHEUS_URL is not set. Prometheus tests query a real server with \
             backfilled usage: run them through scripts/test, which installs (apt-get install \
             prometheus), backfills (scripts/peers/gen_openmetrics.py + promtool) and starts it."
        )
    })
}

fn d(s: &str) -> Day {
    Day::parse(s).unwrap()
}

/// The data's first three days.
fn three_days() -> Option<DayRange> {
    Some(DayRange::new(d("2026-01-02"), d("2026-01-04")).unwrap())
}

/// Ingests one source as of the morning after the data ends.
async fn ingest_source(
    ctx: &App,
    source: &str,
    range: Option<DayRange>,
) -> Result<RunReport, RunError> {
    let options = RunOptions {
        source: Some(source.to_string()),
        range,
        ..RunOptions::default()
    };
    ingest_with(
        ctx,
        Utc.with_ymd_and_hms(2026, 1, 11, 7, 0, 0).unwrap(),
        options,
    )
    .await
}

fn prices_toml(url: &str) -> String {
    format!(
        r#"
[[sources]]
name = "k8s"
kind = "prometheus"
url = "{url}"
labels = ["team"]
units = {{ name = "requests", query = "sum by (namespace, team) (rate(http_requests_total[2h])) * 3600" }}
[sources.prices]
currency = "USD"
cpu_core_hour = 0.04
memory_gib_hour = 0.005
gpu_hour = 2.5
"#
    )
}

fn usage_of(usage: &[UsagePoint], day: &str, ns: &str, metric: &UsageMetric) -> f64 {
    usage
        .iter()
        .filter(|u| u.day == d(day) && u.namespace == ns && &u.metric == metric)
        .map(|u| u.quantity)
        .sum()
}

fn cost_by_namespace(points: &[(Dimensions, Day, f64)], day: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (dims, at, amount) in points {
        if *at == d(day) {
            let ns = dims.tags.get("namespace").cloned().unwrap_or_default();
            *out.entry(ns).or_default() += amount;
        }
    }
    out
}

async fn stored_costs(ctx: &App, source: &str) -> Vec<(Dimensions, Day, f64)> {
    let series: BTreeMap<i64, Dimensions> = ctx
        .store
        .series()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.dims.source == source)
        .map(|s| (s.id, s.dims))
        .collect();
    ctx.store
        .daily_costs(None, None)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(id, day, amount)| Some((series.get(&id)?.clone(), day, amount)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_per_namespace_is_priced_and_counted_per_day() {
    for db in both_dbs().await {
        let ctx = context(config(&prices_toml(&prometheus_url()), Path::new("/"), &db)).await;
        let report = ingest_source(&ctx, "k8s", three_days())
            .await
            .expect("ingests");
        let counts = &report.stages[0].counts;
        // cpu, memory, gpu and units: one request each for three days.
        assert_eq!(counts["requests"], 4, "{}", db.backend);
        assert_eq!(counts["days_written"], 3);

        let usage = ctx.store.usage("k8s", None, None).await.unwrap();
        let cpu = UsageMetric::CpuCoreHours;
        let mem = UsageMetric::MemoryGibHours;
        for day in ["2026-01-02", "2026-01-03", "2026-01-04"] {
            assert_eq!(usage_of(&usage, day, "payments", &cpu), 48.0, "{day}");
            assert_eq!(usage_of(&usage, day, "search", &cpu), 24.0, "{day}");
            assert_eq!(
                usage_of(&usage, day, "batch", &cpu),
                24.0,
                "{day}: 2 cores × 12 h"
            );
            assert_eq!(usage_of(&usage, day, "payments", &mem), 96.0, "{day}");
            assert_eq!(
                usage_of(&usage, day, "batch", &mem),
                96.0,
                "{day}: 8 GiB × 12 h"
            );
            let gpu = UsageMetric::GpuHours;
            assert_eq!(usage_of(&usage, day, "ml", &gpu), 6.0, "{day}: 1 GPU × 6 h");
            let requests = UsageMetric::Units("requests".into());
            assert!(
                (usage_of(&usage, day, "payments", &requests) - 86_400.0).abs() < 1e-6,
                "{day}: one request per second"
            );
        }
        assert!(usage.iter().all(|u| u.labels.contains_key("team")));

        // Cost = core-hours × 0.04 + GiB-hours × 0.005, per namespace and day.
        let costs = cost_by_namespace(&stored_costs(&ctx, "k8s").await, "2026-01-03");
        assert_eq!(costs["payments"], 48.0 * 0.04 + 96.0 * 0.005);
        assert_eq!(costs["batch"], 24.0 * 0.04 + 96.0 * 0.005);
        assert_eq!(costs["ml"], 6.0 * 2.5);

        // Unit economics: payments served 86,400 requests a day for 2.4 USD a day.
        let usage_by_source: Vec<(String, UsagePoint)> = usage
            .iter()
            .map(|u| ("k8s".to_string(), u.clone()))
            .collect();
        let units = costcast::report::unit_costs(
            &usage_by_source,
            &ctx.store.series().await.unwrap(),
            &ctx.store.daily_costs(None, None).await.unwrap(),
        );
        let payments = units
            .rows
            .iter()
            .find(|r| r[1] == "payments")
            .expect("a payments row");
        assert_eq!(payments[2], "requests");
        assert_eq!(payments[3], 259_200.0);
        assert_eq!(payments[4], 7.2);
        assert_eq!(payments[6], (2.4_f64 / 86.4 * 10_000.0).round() / 10_000.0);

        // Idempotent: the same period again changes nothing.
        let before = (ctx.store.cost_summary().await.unwrap(), usage.len());
        ingest_source(&ctx, "k8s", three_days())
            .await
            .expect("again");
        let after = (
            ctx.store.cost_summary().await.unwrap(),
            ctx.store.usage("k8s", None, None).await.unwrap().len(),
        );
        assert_eq!(before.0.points, after.0.points);
        assert_eq!(before.0.total, after.0.total);
        assert_eq!(before.1, after.1);
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_billed_cluster_cost_is_split_by_usage_share_and_idle_to_the_cent() {
    let toml = format!(
        r#"
[[sources]]
name = "billing"
kind = "focus"
path = "unused.csv"

[[sources]]
name = "k8s"
kind = "prometheus"
url = "{}"
[sources.allocate]
scope = {{ service = "Amazon Elastic Kubernetes Service" }}
"#,
        prometheus_url()
    );
    let bills = [
        ("2026-01-02", 123.45),
        ("2026-01-03", 99.99),
        ("2026-01-04", 0.07),
    ];
    for db in both_dbs().await {
        let ctx = context(config(&toml, Path::new("/"), &db)).await;
        // The cluster's bill, as a billing source would have stored it, plus a cost outside
        // the scope that must not be split.
        let mut points = Vec::new();
        for (day, amount) in bills {
            for (service, amount) in [
                ("Amazon Elastic Kubernetes Service", amount),
                ("Amazon Simple Storage Service", 1000.0),
            ] {
                points.push(CostPoint {
                    day: d(day),
                    dims: Dimensions {
                        source: "billing".into(),
                        provider: "AWS".into(),
                        service: service.into(),
                        charge_category: "Usage".into(),
                        ..Dimensions::default()
                    },
                    cost: Money::new(amount, Currency::usd()),
                });
            }
        }
        ctx.store
            .replace_costs("billing", three_days().unwrap(), &points)
            .await
            .unwrap();

        ingest_source(&ctx, "k8s", three_days())
            .await
            .expect("allocates");
        let stored = stored_costs(&ctx, "k8s").await;
        for (day, bill) in bills {
            let by_ns = cost_by_namespace(&stored, day);
            let cents: i64 = by_ns.values().map(|a| (a * 100.0).round() as i64).sum();
            assert_eq!(
                cents,
                (bill * 100.0_f64).round() as i64,
                "{} {day}: {by_ns:?}",
                db.backend
            );
            // payments: 0.65·48/192 + 0.35·96/768 of the bill; search and batch 0.125 each.
            let exact = bill * (0.65 * 48.0 / 192.0 + 0.35 * 96.0 / 768.0);
            assert!(
                (by_ns["payments"] - exact).abs() <= 0.01,
                "{day}: {by_ns:?}"
            );
            if bill > 1.0 {
                assert!(
                    (by_ns["search"] - bill * 0.125).abs() <= 0.01,
                    "{day}: {by_ns:?}"
                );
                assert!(
                    (by_ns["idle"] - bill * (1.0 - 0.45625)).abs() <= 0.02,
                    "{by_ns:?}"
                );
            }
        }
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_query_or_one_without_namespace_names_the_query_and_stores_nothing() {
    let url = prometheus_url();
    for (queries, expected) in [
        (
            "[sources.queries]\ncpu = \"sum by (namespace) (kube_pod_container_resource_requests{resource=\\\"cpu\\\"}\"",
            "cpu query",
        ),
        (
            "[sources.queries]\ncpu = \"sum(kube_pod_container_resource_requests{resource=\\\"cpu\\\"})\"",
            "no namespace label",
        ),
    ] {
        for db in both_dbs().await {
            let good = prices_toml(&url);
            let ctx = context(config(&good, Path::new("/"), &db)).await;
            ingest_source(&ctx, "k8s", three_days())
                .await
                .expect("good");
            let before = (
                ctx.store.cost_summary().await.unwrap(),
                ctx.store.usage("k8s", None, None).await.unwrap(),
            );

            let bad = format!("{good}{queries}\n");
            let ctx2 = context(config(&bad, Path::new("/"), &db)).await;
            let err = ingest_source(&ctx2, "k8s", three_days())
                .await
                .expect_err("refused")
                .to_string();
            assert!(
                err.contains("source k8s") && err.contains(expected),
                "{err}"
            );
            let after = (
                ctx.store.cost_summary().await.unwrap(),
                ctx.store.usage("k8s", None, None).await.unwrap(),
            );
            assert_eq!(before.0.points, after.0.points, "{}", db.backend);
            assert_eq!(before.1, after.1, "{}", db.backend);
            ctx.store.close().await;
        }
    }
}

/// A store with the data's first three days ingested from the real Prometheus, and the usage
/// stored.
async fn seeded(db: &TestDb) -> (App, Vec<UsagePoint>) {
    let good = context(config(&prices_toml(&prometheus_url()), Path::new("/"), db)).await;
    ingest_source(&good, "k8s", three_days())
        .await
        .expect("good");
    let usage = good.store.usage("k8s", None, None).await.unwrap();
    (good, usage)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_that_is_not_the_prometheus_api_is_refused_and_stores_nothing() {
    // A proxy's login page where Prometheus should be.
    let app = axum::Router::new()
        .fallback(|| async { axum::response::Html("<html><body>Please sign in</body></html>") });
    let url = serve_locally(app).await;
    for db in both_dbs().await {
        let (good, before) = seeded(&db).await;

        let bad = context(config(&prices_toml(&url), Path::new("/"), &db)).await;
        let err = ingest_source(&bad, "k8s", three_days())
            .await
            .expect_err("refused")
            .to_string();
        assert!(
            err.contains("source k8s")
                && err.contains("cpu query: HTTP 200 OK, not a Prometheus API answer")
                && err.contains("Please sign in"),
            "{err}"
        );
        assert_eq!(good.store.usage("k8s", None, None).await.unwrap(), before);
        good.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_answer_keeps_the_stored_usage() {
    // A Prometheus that answers every query with no series, as one whose retention dropped the
    // window does.
    let app = axum::Router::new().fallback(|| async {
        axum::Json(serde_json::json!({
            "status": "success",
            "data": {"resultType": "matrix", "result": []}
        }))
    });
    let url = serve_locally(app).await;
    for db in both_dbs().await {
        let (good, usage) = seeded(&db).await;
        let costs = stored_costs(&good, "k8s").await;
        assert!(!usage.is_empty() && !costs.is_empty(), "{}", db.backend);

        let empty = context(config(&prices_toml(&url), Path::new("/"), &db)).await;
        let report = ingest_source(&empty, "k8s", three_days())
            .await
            .expect("an empty answer is not an error");
        assert_eq!(
            report.stages[0].counts.get("days_written").copied(),
            Some(0),
            "{}: nothing replaced",
            db.backend
        );
        assert_eq!(good.store.usage("k8s", None, None).await.unwrap(), usage);
        assert_eq!(stored_costs(&good, "k8s").await, costs);
        good.store.close().await;
    }
}
