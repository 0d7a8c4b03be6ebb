//! A costcast process killed with SIGKILL in the middle of a run, on both stores: nothing it had
//! not committed is visible, its run is recorded as interrupted by the next run, and the next
//! run's totals equal the export's.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono::{NaiveTime, Utc};
use common::*;
use costcast::app::Clock;
use costcast::config::Config;
use costcast::domain::{Day, RunOutcome, Step};
use costcast::pipeline::{RunOptions, run_once};

fn as_of() -> Day {
    Day::parse("2025-11-20").expect("a day")
}

/// A Prometheus that accepts every query and never answers, and says when it was first asked.
async fn stalled_prometheus() -> (String, Arc<AtomicBool>) {
    let asked = Arc::new(AtomicBool::new(false));
    let flag = asked.clone();
    let app = axum::Router::new().fallback(move || {
        let flag = flag.clone();
        async move {
            flag.store(true, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_secs(3600)).await;
            ""
        }
    });
    (serve_locally(app).await, asked)
}

/// Waits up to a minute for `done`.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what} never happened"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_killed_mid_ingest_is_recorded_as_interrupted_and_the_next_one_completes() {
    let (prometheus, asked) = stalled_prometheus().await;
    for db in both_dbs().await {
        let b = db.backend;
        asked.store(false, Ordering::SeqCst);
        let dir = tempfile::tempdir().expect("temp dir");
        let files = costcast::demo::write(dir.path(), as_of()).expect("demo writes");
        let clean = std::fs::read_to_string(&files.config).expect("demo config");
        // The stalled source comes first: the process is killed before the export is read.
        let stalled = format!(
            "[[sources]]\nname = \"k8s\"\nkind = \"prometheus\"\nurl = \"{prometheus}\"\n\
             [sources.prices]\ncurrency = \"USD\"\ncpu_core_hour = 0.04\nmemory_gib_hour = 0.005\n\n"
        );
        let with_stall = dir.path().join("stalled.toml");
        std::fs::write(
            &with_stall,
            clean.replacen("[[sources]]", &format!("{stalled}[[sources]]"), 1),
        )
        .expect("config written");

        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_costcast"))
            .args(["--config", &with_stall.display().to_string()])
            .args(["--as-of", &as_of().to_string(), "run", "--job", "daily"])
            .env("COSTCAST_DATABASE_URL", &db.url)
            .env_remove("COSTCAST_SLACK_WEBHOOK_URL")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("costcast starts");
        until("the stalled source being asked", async || {
            asked.load(Ordering::SeqCst)
        })
        .await;
        child.kill().expect("SIGKILL");
        child.wait().expect("the killed process is reaped");

        let url = db.url.clone();
        let env = move |k: &str| (k == "COSTCAST_DATABASE_URL").then(|| url.clone());
        let mut ctx =
            context(Config::load(Some(&files.config), &env).expect("config is valid")).await;
        let runs = ctx.store.runs(5).await.expect("runs");
        assert_eq!(runs.len(), 1, "{b}");
        assert_eq!(runs[0].outcome, RunOutcome::Running, "{b}");
        assert_eq!(
            ctx.store.cost_summary().await.expect("summary").points,
            0,
            "{b}"
        );

        // The next run, past the time a live run would have shown its heartbeat, records the
        // killed one as interrupted and completes.
        ctx.clock = Clock::Fixed(Utc::now() + chrono::Duration::minutes(10));
        let now = as_of()
            .date()
            .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
            .and_utc();
        run_once(&ctx, "daily", &Step::ALL, now, &RunOptions::default())
            .await
            .expect("the next run completes");
        let runs = ctx.store.runs(5).await.expect("runs");
        let outcomes: Vec<RunOutcome> = runs.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            vec![RunOutcome::Ok, RunOutcome::Interrupted],
            "{b}"
        );
        let why = runs[1].detail.error.clone().unwrap_or_default();
        assert!(why.contains("stopped without finishing"), "{b}: {why}");

        // Its totals are the export's, to the cent.
        let export = dir.path().join("billing/focus-demo.csv");
        let expected = independent_daily_sums(&export, "EffectiveCost");
        let stored = daily_totals(&ctx.store).await;
        assert_eq!(stored.len(), expected.len(), "{b}");
        for (day, want) in &expected {
            assert!(
                (stored[day] - want).abs() < 0.01,
                "{b} {day}: {} vs {want}",
                stored[day]
            );
        }
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_live_run_is_not_taken_for_a_dead_one() {
    for db in both_dbs().await {
        let b = db.backend;
        let dir = tempfile::tempdir().expect("temp dir");
        let files = costcast::demo::write(dir.path(), as_of()).expect("demo writes");
        let url = db.url.clone();
        let env = move |k: &str| (k == "COSTCAST_DATABASE_URL").then(|| url.clone());
        let ctx = context(Config::load(Some(&files.config), &env).expect("config is valid")).await;
        // A run another process started a minute ago and beat for since: alive.
        let started = Utc::now() - chrono::Duration::minutes(1);
        let other = ctx.store.start_run("daily", started).await.expect("run");
        ctx.store.beat(other, Utc::now()).await.expect("beat");
        let now = as_of()
            .date()
            .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
            .and_utc();
        run_once(&ctx, "ingest", &[Step::Ingest], now, &RunOptions::default())
            .await
            .expect("an ingest runs beside it");
        let runs = ctx.store.runs(5).await.expect("runs");
        let still = runs.iter().find(|r| r.id == other).expect("the other run");
        assert_eq!(still.outcome, RunOutcome::Running, "{b}");
        ctx.store.close().await;
    }
}

/// The demo's config on `url`, with a fresh pool each time: a new connection prepares its
/// statements again, so the statement a fault waits for is sent.
async fn demo_app(config: &std::path::Path, url: &str) -> costcast::app::App {
    let url = url.to_string();
    let env = move |k: &str| (k == "COSTCAST_DATABASE_URL").then(|| url.clone());
    context(Config::load(Some(config), &env).expect("config is valid")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_going_down_mid_ingest_and_mid_forecast_write_fails_the_run_and_loses_nothing() {
    let db = postgres_db().await;
    let mut url = reqwest::Url::parse(&db.url).expect("a URL");
    let upstream = format!(
        "{}:{}",
        url.host_str().expect("host"),
        url.port().expect("port")
    );
    let proxy = common::tcp_proxy::Proxy::start(&upstream).await;
    url.set_port(Some(proxy.port)).expect("a port");
    let url = url.to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let files = costcast::demo::write(dir.path(), as_of()).expect("demo writes");
    let now = as_of()
        .date()
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
        .and_utc();
    let daily = async |ctx: &costcast::app::App| {
        run_once(ctx, "daily", &Step::ALL, now, &RunOptions::default()).await
    };
    let down = Duration::from_secs(2);

    // The server goes away as the export's rows are sent, and is back two seconds later.
    proxy.cut_on("INSERT INTO cost_points", down);
    let ctx = demo_app(&files.config, &url).await;
    let failed = daily(&ctx).await.expect_err("the run fails");
    assert_eq!(proxy.fired.load(Ordering::SeqCst), 1, "the fault went off");
    assert_eq!(failed.step, Step::Ingest, "{failed}");
    let said = format!("{failed:#}");
    assert!(said.contains("database"), "a clear message: {said}");
    let ctx = demo_app(&files.config, &url).await;
    assert_eq!(
        ctx.store.cost_summary().await.expect("summary").points,
        0,
        "no partial day"
    );
    let runs = ctx.store.runs(5).await.expect("runs");
    assert_eq!(runs[0].outcome, RunOutcome::Failed, "{runs:?}");

    // The next run completes, with the export's totals to the cent.
    daily(&ctx).await.expect("the next run completes");
    let export = dir.path().join("billing/focus-demo.csv");
    let expected = independent_daily_sums(&export, "EffectiveCost");
    let stored = daily_totals(&ctx.store).await;
    assert_eq!(stored.len(), expected.len());
    for (day, want) in &expected {
        assert!(
            (stored[day] - want).abs() < 0.01,
            "{day}: {} vs {want}",
            stored[day]
        );
    }
    let forecasts = ctx.store.latest_forecasts().await.expect("forecasts");
    assert!(!forecasts.is_empty());

    // Down again as the next run's forecasts are written: that run fails in the forecast
    // stage and the forecasts read are still the last complete run's, none half-written.
    proxy.cut_on("INSERT INTO forecasts", down);
    let ctx = demo_app(&files.config, &url).await;
    let failed = daily(&ctx).await.expect_err("the run fails");
    assert_eq!(proxy.fired.load(Ordering::SeqCst), 2, "the fault went off");
    assert_eq!(failed.step, Step::Forecast, "{failed}");
    let ctx = demo_app(&files.config, &url).await;
    assert_eq!(
        ctx.store.latest_forecasts().await.expect("forecasts"),
        forecasts
    );
    assert_eq!(
        daily_totals(&ctx.store).await,
        stored,
        "the ingest of that run is kept"
    );
    let next = daily(&ctx).await.expect("the next run completes");
    let newest = ctx.store.latest_forecasts().await.expect("forecasts");
    assert_eq!(newest.len(), forecasts.len(), "run {}", next.run_id);
    let outcomes: Vec<RunOutcome> = ctx
        .store
        .runs(5)
        .await
        .expect("runs")
        .iter()
        .map(|r| r.outcome)
        .collect();
    assert_eq!(
        outcomes,
        [
            RunOutcome::Ok,
            RunOutcome::Failed,
            RunOutcome::Ok,
            RunOutcome::Failed
        ],
        "each failed run is recorded as failed"
    );
}
