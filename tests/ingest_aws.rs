//! Cost Explorer ingestion against moto's server (canned GetCostAndUsage results, matched to
//! requests in order), and against a local stub for throttling, on both stores.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::{DateTime, TimeZone, Utc};
use common::*;
use costcast::app::App;
use costcast::domain::{Day, DayRange};
use costcast::pipeline::{RunError, RunOptions, RunReport};
use serde_json::{Value, json};

fn moto_url() -> String {
    std::env::var("COSTCAST_TEST_MOTO_URL").unwrap_or_else(|_| {
        panic!(
            "COSTCAST_TEST_MOTO_URL is not set. Cost Explorer tests run against moto's server: run \
             them through scripts/test, which starts it, or start it yourself \
             (pip install 'moto[server]'; moto_server -H 127.0.0.1 -p 55055) and export \
             COSTCAST_TEST_MOTO_URL=http://127.0.0.1:55055."
        )
    })
}

/// The AWS SDK's credential chain reads these; moto checks no signature.
fn fake_credentials() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: set once, before any AWS client reads the environment in this process.
        unsafe {
            std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
            std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
            std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        }
    });
}

/// Empties moto's queue and bindings, then queues `results` for the next distinct requests.
async fn inject(results: Vec<Value>) {
    let http = reqwest::Client::new();
    let base = moto_url();
    let reset = http
        .post(format!("{base}/moto-api/reset"))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!("moto at {base} does not answer ({e}): is scripts/test running it?")
        });
    assert!(reset.status().is_success());
    let r = http
        .post(format!("{base}/moto-api/static/ce/cost-and-usage-results"))
        .json(&json!({ "results": results }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        201,
        "moto accepts the injected results"
    );
}

fn source_toml(endpoint: &str, extra: &str) -> String {
    format!(
        "[[sources]]\nname = \"aws\"\nkind = \"aws-cost-explorer\"\nendpoint_url = \"{endpoint}\"\nmax_attempts = 3\n{extra}\n"
    )
}

fn d(day: &str) -> Day {
    Day::parse(day).unwrap()
}

fn at(day: &str) -> DateTime<Utc> {
    let d = Day::parse(day).unwrap().date();
    Utc.from_utc_datetime(&d.and_hms_opt(7, 0, 0).unwrap())
}

/// Ingests as of 07:00 on `now`, over `range` or the incremental window.
async fn ingest_at(ctx: &App, now: &str, range: Option<DayRange>) -> Result<RunReport, RunError> {
    let options = RunOptions {
        range,
        ..RunOptions::default()
    };
    ingest_with(ctx, at(now), options).await
}

/// One day of a page: its start, `(service, amount)` groups, and whether it is estimated.
type PageDay<'a> = (&'a str, &'a [(&'a str, &'a str)], bool);

fn page(days: &[PageDay<'_>], token: Option<&str>) -> Value {
    let results: Vec<Value> = days
        .iter()
        .map(|(start, groups, estimated)| {
            let end = Day::parse(start).unwrap().add_days(1).to_string();
            json!({
                "TimePeriod": {"Start": start, "End": end},
                "Total": {},
                "Groups": groups.iter().map(|(service, amount)| json!({
                    "Keys": [service],
                    "Metrics": {"UnblendedCost": {"Amount": amount, "Unit": "USD"}}
                })).collect::<Vec<_>>(),
                "Estimated": estimated,
            })
        })
        .collect();
    let mut body = json!({
        "ResultsByTime": results,
        "GroupDefinitions": [{"Type": "DIMENSION", "Key": "SERVICE"}],
        "DimensionValueAttributes": [],
    });
    if let Some(t) = token {
        body["NextPageToken"] = json!(t);
    }
    body
}

async fn estimated_days(ctx: &App) -> Vec<String> {
    let (_, days) = ctx.store.source_history("aws").await.unwrap();
    days.iter().map(Day::to_string).collect()
}

fn close(stored: &BTreeMap<String, f64>, expected: &[(&str, f64)], backend: &str) {
    let want: BTreeMap<String, f64> = expected.iter().map(|(d, a)| (d.to_string(), *a)).collect();
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{backend}: stored days"
    );
    for (day, a) in &want {
        assert!(
            (stored[day] - a).abs() < 1e-9,
            "{backend} {day}: stored {} vs {a}",
            stored[day]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paged_backfill_is_stored_and_a_later_run_replaces_only_the_refetched_days() {
    fake_credentials();
    let first = vec![
        page(
            &[
                (
                    "2024-01-01",
                    &[
                        ("Amazon Elastic Compute Cloud - Compute", "123.4500000000"),
                        ("Amazon Simple Storage Service", "7.1000000000"),
                    ],
                    false,
                ),
                (
                    "2024-01-02",
                    &[
                        ("Amazon Elastic Compute Cloud - Compute", "130.0000000000"),
                        ("Amazon Simple Storage Service", "7.2000000000"),
                    ],
                    false,
                ),
            ],
            Some("page-2-token"),
        ),
        page(
            &[(
                "2024-01-03",
                &[
                    ("Amazon Elastic Compute Cloud - Compute", "128.9900000000"),
                    ("AWS Lambda", "0.0000001234"),
                ],
                true,
            )],
            None,
        ),
        // The later run's one request: 2024-01-03 is now final and lower, 01-04 is new, and
        // 01-05 has no spend yet and is still estimated.
        page(
            &[
                (
                    "2024-01-03",
                    &[("Amazon Elastic Compute Cloud - Compute", "120.0000000000")],
                    false,
                ),
                (
                    "2024-01-04",
                    &[("Amazon Elastic Compute Cloud - Compute", "99.5000000000")],
                    false,
                ),
                ("2024-01-05", &[], true),
            ],
            None,
        ),
    ];
    inject(first).await;
    for db in both_dbs().await {
        let ctx = context(config(&source_toml(&moto_url(), ""), Path::new("/"), &db)).await;

        // First run: no history, so a 13-month backfill, fetched in two pages.
        let report = ingest_at(&ctx, "2024-01-04", None).await.expect("backfill");
        let counts = &report.stages[0].counts;
        assert_eq!(
            counts["requests"], 2,
            "{}: one request per page",
            db.backend
        );
        assert_eq!(counts["points_written"], 6, "{}", db.backend);
        close(
            &daily_totals(&ctx.store).await,
            &[
                ("2024-01-01", 130.55),
                ("2024-01-02", 137.2),
                ("2024-01-03", 128.9900001234),
            ],
            db.backend,
        );
        assert_eq!(estimated_days(&ctx).await, ["2024-01-03"], "{}", db.backend);
        // Forecasts stop before the first estimated day; one before the window is not counted.
        let first = |since: &str| {
            let store = &ctx.store;
            let since = Day::parse(since).unwrap();
            async move { store.first_estimated_day(since).await.unwrap() }
        };
        assert_eq!(
            first("2023-12-01").await,
            Day::parse("2024-01-03").ok(),
            "{}",
            db.backend
        );
        assert_eq!(first("2024-01-04").await, None, "{}", db.backend);
        let services: Vec<String> = ctx
            .store
            .series()
            .await
            .unwrap()
            .into_iter()
            .map(|s| {
                assert_eq!(s.dims.provider, "AWS");
                s.dims.service
            })
            .collect();
        assert!(services.contains(&"AWS Lambda".to_string()));

        // Later run, two days on: only the trailing window and the estimated day are fetched
        // and replaced; the final days before them are neither re-fetched nor touched.
        let report = ingest_at(&ctx, "2024-01-06", None)
            .await
            .expect("incremental");
        assert_eq!(report.stages[0].counts["requests"], 1, "{}", db.backend);
        close(
            &daily_totals(&ctx.store).await,
            &[
                ("2024-01-01", 130.55),
                ("2024-01-02", 137.2),
                ("2024-01-03", 120.0),
                ("2024-01-04", 99.5),
            ],
            db.backend,
        );
        assert_eq!(estimated_days(&ctx).await, ["2024-01-05"], "{}", db.backend);

        // The same run again changes nothing (moto answers the same request the same way).
        let before = ctx.store.cost_summary().await.unwrap();
        ingest_at(&ctx, "2024-01-06", None).await.expect("repeat");
        let after = ctx.store.cost_summary().await.unwrap();
        assert_eq!((before.points, before.total), (after.points, after.total));
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_recorded_daily_tag_response_is_stored_to_the_cent() {
    fake_credentials();
    let recorded: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture(
            "ce_get_cost_and_usage_daily_tag_groupby_2023-12.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let response = recorded["byUser"].clone();
    // The expected totals, straight from the JSON.
    let mut expected: BTreeMap<String, f64> = BTreeMap::new();
    let mut estimated = Vec::new();
    for period in response["ResultsByTime"].as_array().unwrap() {
        let day = period["TimePeriod"]["Start"].as_str().unwrap().to_string();
        if period["Estimated"].as_bool().unwrap() {
            estimated.push(day.clone());
        }
        for g in period["Groups"].as_array().unwrap() {
            let amount: f64 = g["Metrics"]["BlendedCost"]["Amount"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            *expected.entry(day.clone()).or_default() += amount;
        }
    }
    assert_eq!(estimated.len(), 10);
    inject(vec![response]).await;
    let range = DayRange::new(
        Day::parse("2023-12-12").unwrap(),
        Day::parse("2024-01-10").unwrap(),
    )
    .unwrap();
    for db in both_dbs().await {
        let toml = source_toml(
            &moto_url(),
            "metric = \"BlendedCost\"\ngroup_by = [\"TAG:CreatedBy\"]",
        );
        let ctx = context(config(&toml, Path::new("/"), &db)).await;
        let report = ingest_at(&ctx, "2024-01-11", Some(range))
            .await
            .expect("the recorded response ingests");
        assert_eq!(report.stages[0].counts["requests"], 1);
        let stored = daily_totals(&ctx.store).await;
        // Days that came back as `Groups: []` hold no spend and store no point.
        assert_eq!(stored.len(), expected.len(), "{}", db.backend);
        for (day, want) in &expected {
            assert!(
                (stored[day] - want).abs() < 0.005,
                "{} {day}: {} vs {want}",
                db.backend,
                stored[day]
            );
        }
        assert_eq!(estimated_days(&ctx).await, estimated, "{}", db.backend);
        let users: Vec<String> = ctx
            .store
            .series()
            .await
            .unwrap()
            .into_iter()
            .filter_map(|s| s.dims.tags.get("CreatedBy").cloned())
            .collect();
        assert!(users.contains(&"user-1".to_string()), "{users:?}");
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_response_that_breaks_the_documented_shape_names_the_field_and_stores_nothing() {
    fake_credentials();
    let good = page(&[("2024-02-01", &[("AWS Lambda", "1.5")], false)], None);
    let mut bad_amount = page(&[("2024-02-02", &[("AWS Lambda", "1.5")], false)], None);
    bad_amount["ResultsByTime"][0]["Groups"][0]["Metrics"]["UnblendedCost"]["Amount"] =
        json!("one dollar");
    let mut bad_tag = page(&[("2024-02-01", &[("AWS Lambda", "1.5")], false)], None);
    bad_tag["ResultsByTime"][0]["Groups"][0]["Keys"] = json!(["AWS Lambda"]);
    let range = |d: &str| {
        let d = Day::parse(d).unwrap();
        Some(DayRange::new(d, d).unwrap())
    };
    for db in both_dbs().await {
        // Each case is a distinct request (its own day), so moto hands out the next result.
        inject(vec![good.clone(), bad_amount.clone()]).await;
        let ctx = context(config(&source_toml(&moto_url(), ""), Path::new("/"), &db)).await;
        ingest_at(&ctx, "2024-03-01", range("2024-02-01"))
            .await
            .expect("good");
        let before = daily_totals(&ctx.store).await;
        let err = ingest_at(&ctx, "2024-03-01", range("2024-02-02"))
            .await
            .expect_err("a non-numeric amount is refused")
            .to_string();
        assert!(
            err.contains("source aws")
                && err.contains("ResultsByTime[0].Groups[0].Metrics")
                && err.contains("\"one dollar\" is not a number"),
            "{err}"
        );
        // The refused day is outside the stored one: nothing of it, and the rest intact.
        assert_eq!(daily_totals(&ctx.store).await, before, "{}", db.backend);

        inject(vec![bad_tag.clone()]).await;
        let tagged = source_toml(&moto_url(), "group_by = [\"TAG:team\"]");
        let ctx2 = context(config(&tagged, Path::new("/"), &db)).await;
        let err = ingest_at(&ctx2, "2024-03-01", range("2024-02-01"))
            .await
            .expect_err("a tag key without KEY$ is refused")
            .to_string();
        assert!(
            err.contains("Groups[0].Keys") && err.contains("KEY$value"),
            "{err}"
        );
        assert_eq!(daily_totals(&ctx.store).await, before, "{}", db.backend);

        // A real recorded MONTHLY response where DAILY was asked for.
        let monthly: Value = serde_json::from_str(
            &std::fs::read_to_string(fixture(
                "ce_get_cost_and_usage_monthly_by_service_2023.json",
            ))
            .unwrap(),
        )
        .unwrap();
        inject(vec![monthly]).await;
        let months = DayRange::new(d("2023-04-01"), d("2023-09-30")).unwrap();
        let err = ingest_at(&ctx, "2024-03-01", Some(months))
            .await
            .expect_err("monthly periods are refused")
            .to_string();
        assert!(
            err.contains("ResultsByTime[0].TimePeriod: 2023-04-01..2023-05-01 is not one day"),
            "{err}"
        );
        assert_eq!(daily_totals(&ctx.store).await, before, "{}", db.backend);
        ctx.store.close().await;
    }
}

/// A proxy in front of moto that fails the first `failures` requests with `status` and the
/// error type `kind`, as Cost Explorer's front end does under load, then forwards each request
/// to moto, which answers with 2024-02-01's page; and how many requests it saw.
async fn failing_stub(
    failures: u32,
    status: axum::http::StatusCode,
    kind: &'static str,
) -> (String, Arc<AtomicU32>) {
    use axum::http::{HeaderMap, header};
    use axum::routing::post;

    inject(vec![page(
        &[("2024-02-01", &[("AWS Lambda", "2.25")], false)],
        None,
    )])
    .await;
    let seen = Arc::new(AtomicU32::new(0));
    let counter = seen.clone();
    let app = axum::Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n < failures {
                    let mut answer = HeaderMap::new();
                    answer.insert(
                        header::CONTENT_TYPE,
                        "application/x-amz-json-1.1".parse().unwrap(),
                    );
                    answer.insert("x-amzn-errortype", kind.parse().unwrap());
                    let error = json!({"__type": kind, "message": "injected"}).to_string();
                    return (status, answer, axum::body::Bytes::from(error));
                }
                let mut forwarded = headers.clone();
                forwarded.remove(header::HOST);
                forwarded.remove(header::CONTENT_LENGTH);
                let reply = reqwest::Client::new()
                    .post(moto_url())
                    .headers(forwarded)
                    .body(body)
                    .send()
                    .await
                    .expect("moto answers");
                let mut answer = HeaderMap::new();
                for name in [header::CONTENT_TYPE, "x-amzn-requestid".parse().unwrap()] {
                    if let Some(v) = reply.headers().get(&name) {
                        answer.insert(name, v.clone());
                    }
                }
                let code = reply.status();
                (code, answer, reply.bytes().await.expect("moto's body"))
            }
        }),
    );
    let url = serve_locally(app).await;
    (url, seen)
}

/// [`failing_stub`] throttling like Cost Explorer does.
async fn throttling_stub(throttled: u32) -> (String, Arc<AtomicU32>) {
    failing_stub(
        throttled,
        axum::http::StatusCode::BAD_REQUEST,
        "LimitExceededException",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn throttling_is_retried_with_backoff_and_a_run_that_still_fails_stores_nothing() {
    fake_credentials();
    let day = Day::parse("2024-02-01").unwrap();
    let range = Some(DayRange::new(day, day).unwrap());
    for db in both_dbs().await {
        // Throttled twice, then answered: the SDK's retries absorb it.
        let (url, seen) = throttling_stub(2).await;
        let ctx = context(config(&source_toml(&url, ""), Path::new("/"), &db)).await;
        let report = ingest_at(&ctx, "2024-03-01", range).await.expect("retried");
        assert_eq!(
            seen.load(Ordering::SeqCst),
            3,
            "two throttled attempts, then one answered"
        );
        assert_eq!(
            report.stages[0].counts["requests"], 1,
            "one logical request"
        );
        close(
            &daily_totals(&ctx.store).await,
            &[("2024-02-01", 2.25)],
            db.backend,
        );

        // Throttled past max_attempts (3): the run fails, says why, and the stored day stays.
        let (url, seen) = throttling_stub(u32::MAX).await;
        fails_keeping_the_stored_day(&ctx, &db, &url, "", range, "LimitExceededException").await;
        assert_eq!(seen.load(Ordering::SeqCst), 3, "max_attempts = 3");
        ctx.store.close().await;
    }
}

/// A store holding 2024-02-01 of source `aws` at 2.25, fetched from moto through the proxy.
async fn seeded(db: &TestDb) -> App {
    let (url, _) = throttling_stub(0).await;
    let ctx = context(config(&source_toml(&url, ""), Path::new("/"), db)).await;
    let day = d("2024-02-01");
    ingest_at(&ctx, "2024-03-01", Some(DayRange::new(day, day).unwrap()))
        .await
        .expect("seeded");
    ctx
}

/// Ingests `range` from `endpoint` (with the source settings `extra`) into the store of `kept`,
/// which holds 2024-02-01 at 2.25: the run must fail naming source `aws` and `expected`, and the
/// stored day must stay as it was.
async fn fails_keeping_the_stored_day(
    kept: &App,
    db: &TestDb,
    endpoint: &str,
    extra: &str,
    range: Option<DayRange>,
    expected: &str,
) {
    let ctx = context(config(&source_toml(endpoint, extra), Path::new("/"), db)).await;
    let err = ingest_at(&ctx, "2024-03-01", range)
        .await
        .expect_err(expected)
        .to_string();
    assert!(
        err.contains("source aws") && err.contains(expected),
        "{}: {err}",
        db.backend
    );
    close(
        &daily_totals(&kept.store).await,
        &[("2024-02-01", 2.25)],
        db.backend,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_and_a_run_that_still_fails_stores_nothing() {
    use axum::http::StatusCode;
    fake_credentials();
    let day = d("2024-02-01");
    let range = Some(DayRange::new(day, day).unwrap());
    for db in both_dbs().await {
        // Two 500s, then an answer: retried, and the day is stored.
        let (url, seen) = failing_stub(2, StatusCode::INTERNAL_SERVER_ERROR, "InternalError").await;
        let ctx = context(config(&source_toml(&url, ""), Path::new("/"), &db)).await;
        ingest_at(&ctx, "2024-03-01", range).await.expect("retried");
        assert_eq!(seen.load(Ordering::SeqCst), 3, "two 500s, then one answer");
        close(
            &daily_totals(&ctx.store).await,
            &[("2024-02-01", 2.25)],
            db.backend,
        );

        // 503s past max_attempts (3): the run fails naming the source, the stored day stays.
        let (url, seen) = failing_stub(
            u32::MAX,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
        )
        .await;
        fails_keeping_the_stored_day(&ctx, &db, &url, "", range, "ServiceUnavailable").await;
        assert_eq!(seen.load(Ordering::SeqCst), 3, "max_attempts = 3");
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_page_token_or_too_many_pages_stops_the_run_and_stores_nothing() {
    fake_credentials();
    let range = Some(DayRange::new(d("2024-02-01"), d("2024-02-03")).unwrap());
    const NINE: &[(&str, &str)] = &[("AWS Lambda", "9.00")];
    const EIGHT: &[(&str, &str)] = &[("AWS Lambda", "8.00")];
    for db in both_dbs().await {
        let ctx = seeded(&db).await;

        // Every page names the same next page: moto would answer it forever.
        inject(vec![
            page(&[("2024-02-01", NINE, false)], Some("again")),
            page(&[("2024-02-02", NINE, false)], Some("again")),
        ])
        .await;
        let repeated = "repeats the NextPageToken \"again\"";
        fails_keeping_the_stored_day(&ctx, &db, &moto_url(), "", range, repeated).await;

        // Three distinct pages where two are allowed: stopped after two billed requests.
        inject(vec![
            page(&[("2024-02-01", EIGHT, false)], Some("t1")),
            page(&[("2024-02-02", EIGHT, false)], Some("t2")),
            page(&[("2024-02-03", EIGHT, false)], None),
        ])
        .await;
        let capped = "more than 2 pages (max_pages)";
        fails_keeping_the_stored_day(&ctx, &db, &moto_url(), "max_pages = 2", range, capped).await;

        // The same three pages with room for them are stored: the cap, not the pages, stopped it.
        let roomy = context(config(&source_toml(&moto_url(), ""), Path::new("/"), &db)).await;
        ingest_at(&roomy, "2024-03-01", range)
            .await
            .expect("three pages");
        close(
            &daily_totals(&ctx.store).await,
            &[
                ("2024-02-01", 8.0),
                ("2024-02-02", 8.0),
                ("2024-02-03", 8.0),
            ],
            db.backend,
        );
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_cost_explorer_fails_at_the_deadline_and_stores_nothing() {
    use axum::routing::post;
    fake_credentials();
    let day = d("2024-02-01");
    let range = Some(DayRange::new(day, day).unwrap());
    for db in both_dbs().await {
        let ctx = seeded(&db).await;
        // Accepts the request and never answers.
        let stalled = axum::Router::new().route(
            "/",
            post(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                ""
            }),
        );
        let url = serve_locally(stalled).await;
        let deadline = "not finished within 1 s (timeout_seconds)";
        fails_keeping_the_stored_day(&ctx, &db, &url, "timeout_seconds = 1", range, deadline).await;
        ctx.store.close().await;
    }
}
