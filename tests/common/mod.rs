//! Shared test helpers: a fresh database per test on each backend, configs, fixtures.
#![allow(dead_code)]

pub mod fake_kube;
pub mod otlp_collector;
pub mod slack_receiver;
pub mod tcp_proxy;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use chrono::Utc;
use costcast::app::App;
use costcast::config::Config;
use costcast::domain::{DailyForecast, Day, ModelKind, SeriesForecast};
use costcast::pipeline::{RunError, RunOptions, RunReport, Step, run_once};
use costcast::store::Store;
use sqlx::Connection;

/// Serves `app` on a free local port; returns its base address, `http://127.0.0.1:PORT`.
pub async fn serve_locally(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// A database for one test; the SQLite file lives as long as this value.
pub struct TestDb {
    /// Which backend.
    pub backend: &'static str,
    /// Its URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite file.
pub fn sqlite_db() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    TestDb {
        backend: "sqlite",
        url,
        _dir: Some(dir),
    }
}

/// A fresh, empty PostgreSQL database on the server `scripts/test` started.
pub async fn postgres_db() -> TestDb {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let admin = std::env::var("COSTCAST_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "COSTCAST_TEST_POSTGRES_URL is not set. Store tests run on PostgreSQL as well as SQLite: \
             run them through scripts/test, which starts a throwaway PostgreSQL, or point \
             COSTCAST_TEST_POSTGRES_URL at a server where you may create databases \
             (e.g. postgres://postgres@127.0.0.1:55432/postgres)."
        )
    });
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
        panic!("cannot connect to COSTCAST_TEST_POSTGRES_URL={admin}: {e}. Is the server from scripts/test running?")
    });
    let name = format!(
        "costcast_test_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst),
        chrono::Utc::now().timestamp_subsec_nanos()
    );
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    TestDb {
        backend: "postgres",
        url: format!("{base}/{name}"),
        _dir: None,
    }
}

/// One fresh database on each backend: every store test runs on both.
pub async fn both_dbs() -> Vec<TestDb> {
    vec![sqlite_db(), postgres_db().await]
}

/// A config from TOML text whose relative paths resolve against `base_dir`, on `db`.
pub fn config(toml_text: &str, base_dir: &Path, db: &TestDb) -> Config {
    let raw = Config::parse_raw(toml_text, Path::new("test.toml")).expect("test config parses");
    let url = db.url.clone();
    let env = move |k: &str| (k == "COSTCAST_DATABASE_URL").then(|| url.clone());
    Config::from_raw(raw, base_dir, &env).expect("test config is valid")
}

/// The app a command would build.
pub async fn context(config: Config) -> App {
    App::connect(config)
        .await
        .expect("store opens and migrates")
}

/// A file in tests/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Sum of stored amounts per day.
pub async fn daily_totals(store: &Store) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for (_, day, amount) in store.daily_costs(None, None).await.expect("read costs") {
        *out.entry(day.to_string()).or_insert(0.0) += amount;
    }
    out
}

/// The index of `name` in a CSV header.
pub fn column_of(headers: &csv::StringRecord, name: &str) -> usize {
    headers
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name}"))
}

/// Sum of a FOCUS CSV column per day, parsed independently of costcast's reader: the first
/// ten characters of ChargePeriodStart, amounts parsed with `str::parse`.
pub fn independent_daily_sums(
    path: &Path,
    column: &str,
) -> std::collections::BTreeMap<String, f64> {
    let mut reader = csv::Reader::from_path(path).expect("fixture opens");
    let headers = reader.headers().expect("header").clone();
    let (day_i, cost_i) = (
        column_of(&headers, "ChargePeriodStart"),
        column_of(&headers, column),
    );
    let mut out = std::collections::BTreeMap::new();
    for record in reader.records() {
        let record = record.expect("record");
        let day = record[day_i][..10].to_string();
        let amount: f64 = record[cost_i].parse().expect("number");
        *out.entry(day).or_insert(0.0) += amount;
    }
    out
}

/// A fixture CSV with one cell replaced; `line` counts the header as line 1.
pub fn corrupt_fixture(name: &str, line: usize, column: &str, value: &str) -> String {
    let mut reader = csv::Reader::from_path(fixture(name)).expect("fixture opens");
    let headers = reader.headers().expect("header").clone();
    let i = headers
        .iter()
        .position(|h| h == column)
        .unwrap_or_else(|| panic!("{name} has no column {column}"));
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(&headers).expect("write header");
    for (n, record) in reader.records().enumerate() {
        let mut fields: Vec<String> = record.expect("record").iter().map(String::from).collect();
        if n + 2 == line {
            fields[i] = value.to_string();
        }
        out.write_record(&fields).expect("write record");
    }
    String::from_utf8(out.into_inner().expect("flush")).expect("utf-8")
}

/// Runs the ingest step alone, as of `now`.
pub async fn ingest_with(
    ctx: &App,
    now: chrono::DateTime<chrono::Utc>,
    options: RunOptions,
) -> Result<RunReport, RunError> {
    run_once(ctx, "ingest", &[Step::Ingest], now, &options).await
}

/// Runs the ingest step alone, now, over every source and day.
pub async fn ingest(ctx: &App) -> Result<RunReport, RunError> {
    ingest_with(ctx, chrono::Utc::now(), RunOptions::default()).await
}

/// A June forecast of 100 a day (level error 5, daily noise 10), from a history ending on
/// 31 May: the June total is 3,000 ± 160, so a budget of 2,500 is in breach (P ≈ 1) and one
/// of 4,000 is ok (P ≈ 0).
pub async fn store_forecast(ctx: &App) {
    let run = ctx.store.start_run("forecast", Utc::now()).await.unwrap();
    let points = (1..=45)
        .map(|i| DailyForecast {
            day: Day::parse("2024-05-31").unwrap().add_days(i),
            mean: 100.0,
            lo80: 80.0,
            hi80: 120.0,
            lo95: 70.0,
            hi95: 130.0,
            sd_level: 5.0,
            sd_noise: 10.0,
        })
        .collect();
    let f = SeriesForecast {
        series: "budget:ml".into(),
        model: ModelKind::Calendar,
        history_end: Day::parse("2024-05-31").unwrap(),
        note: None,
        shape: Default::default(),
        points,
    };
    ctx.store.save_forecasts(run, &[f]).await.unwrap();
}

/// Writes the demo organisation (config, billing export, SQLite store) into `dir/demo` with the
/// real binary; returns that folder.
pub fn demo_dir(dir: &Path) -> PathBuf {
    let demo = dir.join("demo");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_costcast"))
        .args(["demo", "--dir"])
        .arg(&demo)
        .env("RUST_LOG", "warn")
        .output()
        .expect("costcast runs");
    assert!(
        out.status.success(),
        "costcast demo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    demo
}

/// The demo's config with `extra` TOML appended, written as `name` beside it.
pub fn demo_config(demo: &Path, name: &str, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(demo.join("costcast.toml")).expect("demo config");
    let path = demo.join(name);
    std::fs::write(&path, format!("{text}\n{extra}")).expect("write config");
    path
}
