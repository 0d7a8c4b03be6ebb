//! The report API over real HTTP: the demo organisation served from each store, checked
//! against what the store holds; every endpoint group's 401 and 403; bad parameters; the two
//! admin writes, one of them against the in-process Kubernetes API.

mod common;

use std::sync::Arc;

use chrono::{NaiveTime, Utc};
use common::fake_kube::FakeKube;
use common::*;
use costcast::app::App;
use costcast::config::Config;
use costcast::domain::Day;
use costcast::pipeline::{RunOptions, Step, run_once};
use reqwest::StatusCode;
use serde_json::{Value, json};

const READ: &str = "read-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

fn as_of() -> Day {
    Day::parse("2025-11-20").unwrap()
}

fn noon(d: Day) -> chrono::DateTime<Utc> {
    d.date()
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
        .and_utc()
}

/// The env a deployment would give: the database and the two tokens.
fn env_for(
    db: &TestDb,
    extra: &'static [(&'static str, &'static str)],
) -> impl Fn(&str) -> Option<String> {
    let url = db.url.clone();
    move |k: &str| match k {
        "COSTCAST_DATABASE_URL" => Some(url.clone()),
        "COSTCAST_API_READ_TOKENS" => Some(READ.into()),
        "COSTCAST_API_ADMIN_TOKENS" => Some(ADMIN.into()),
        _ => extra
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string()),
    }
}

/// A running server and what it serves.
struct Server {
    base: String,
    ctx: Arc<App>,
    http: reqwest::Client,
    dir: tempfile::TempDir,
}

impl Server {
    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("server answers");
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn text(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(READ)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    /// A read request sent from a browser page at `origin`.
    async fn get_from(&self, origin: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("Origin", origin)
            .bearer_auth(READ)
            .send()
            .await
            .unwrap()
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

async fn start(ctx: App, dir: tempfile::TempDir) -> Server {
    let ctx = Arc::new(ctx);
    let state = costcast::api::state(ctx.clone())
        .await
        .expect("state loads");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(costcast::api::serve(
        state,
        listener,
        std::future::pending(),
    ));
    Server {
        base,
        ctx,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        dir,
    }
}

/// The demo organisation, run through the whole pipeline on `db`, then served.
async fn demo_server(db: &TestDb, extra: &'static [(&'static str, &'static str)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let files = costcast::demo::write(dir.path(), as_of()).expect("demo writes");
    let config = Config::load(Some(&files.config), &env_for(db, extra)).expect("demo config");
    let ctx = context(config).await;
    run_once(
        &ctx,
        "demo",
        &Step::ALL,
        noon(as_of()),
        &RunOptions::default(),
    )
    .await
    .expect("the demo pipeline runs");
    start(ctx, dir).await
}

/// Sum of stored costs from `from` to `to` of series whose dimensions pass `keep`, independent
/// of the API's cube.
async fn stored_sum(
    ctx: &App,
    from: Day,
    to: Day,
    keep: impl Fn(&costcast::domain::Dimensions) -> bool,
) -> f64 {
    let series = ctx.store.series().await.unwrap();
    let kept: Vec<i64> = series
        .iter()
        .filter(|s| keep(&s.dims))
        .map(|s| s.id)
        .collect();
    ctx.store
        .daily_costs(Some(from), Some(to))
        .await
        .unwrap()
        .iter()
        .filter(|(id, _, _)| kept.contains(id))
        .map(|(_, _, v)| v)
        .sum()
}

/// `costcast report WHAT --format csv` on the server's store, as a user at a terminal runs it.
async fn cli_csv(s: &Server, db: &TestDb, what: &str) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_costcast"))
        .arg("--config")
        .arg(s.dir.path().join("costcast.toml"))
        .args(["report", what, "--format", "csv"])
        .env("COSTCAST_DATABASE_URL", &db.url)
        .output()
        .await
        .expect("costcast runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("CSV is UTF-8")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_and_the_api_give_the_same_csv_for_each_report_on_both_stores() {
    for db in both_dbs().await {
        let b = db.backend;
        let s = demo_server(&db, &[]).await;
        let (status, api) = s.text("/api/v1/budgets?format=csv").await;
        assert_eq!(status, StatusCode::OK, "{b}");
        let cli = cli_csv(&s, &db, "budgets").await;
        assert!(
            cli.starts_with("budget,period,amount,currency,spent_to_date,"),
            "{b}: {cli}"
        );
        assert_eq!(
            cli.lines().count(),
            4,
            "{b}: three budgets and a header: {cli}"
        );
        assert_eq!(api, cli, "{b}: budgets");

        let (status, api) = s.text("/api/v1/forecasts?budget=ml-team&format=csv").await;
        assert_eq!(status, StatusCode::OK, "{b}");
        let cli = cli_csv(&s, &db, "forecasts").await;
        let mut lines = cli.lines();
        let header = lines.next().unwrap_or_default();
        assert_eq!(header, "series,model,day,mean,lo80,hi80,lo95,hi95", "{b}");
        let of_budget: Vec<&str> = lines.filter(|l| l.starts_with("budget:ml-team,")).collect();
        assert!(!of_budget.is_empty(), "{b}: {cli}");
        assert_eq!(
            api,
            format!("{header}\n{}\n", of_budget.join("\n")),
            "{b}: forecasts"
        );

        let (_, api) = s.text("/api/v1/accuracy?format=csv").await;
        assert_eq!(api, cli_csv(&s, &db, "accuracy").await, "{b}: accuracy");

        // The demo's anomalies (all of them, from 2020 on) and runs fit on one page of either.
        let (_, api) = s.text("/api/v1/anomalies?format=csv&from=2020-01-01").await;
        let cli = cli_csv(&s, &db, "anomalies").await;
        assert!(
            cli.starts_with("day,series,actual,expected,excess\n"),
            "{b}: {cli}"
        );
        assert_eq!(api, cli, "{b}: anomalies");
        let (_, api) = s.text("/api/v1/runs?format=csv").await;
        let cli = cli_csv(&s, &db, "runs").await;
        assert!(
            cli.starts_with("run,job,started_at,finished_at,outcome,stage,"),
            "{b}: {cli}"
        );
        assert!(cli.lines().count() > 5, "{b}: a row per stage: {cli}");
        assert_eq!(api, cli, "{b}: runs");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_serves_the_demo_data_as_stored_on_both_stores() {
    for db in both_dbs().await {
        let b = db.backend;
        let s = demo_server(&db, &[]).await;

        // Budgets: what the newest evaluations say.
        let (status, budgets) = s.get("/api/v1/budgets", Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{b}: {budgets}");
        let evaluations = s.ctx.store.latest_evaluations().await.unwrap();
        assert_eq!(budgets.as_array().unwrap().len(), 3, "{b}");
        for e in &evaluations {
            let got = budgets
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["name"] == e.budget.as_str())
                .unwrap();
            assert_eq!(got["status"], e.status.as_str(), "{b} {}", e.budget);
            assert!(
                (got["projected"].as_f64().unwrap() - e.projection.mean).abs() < 0.006,
                "{b}"
            );
            assert!(
                (got["p_breach"].as_f64().unwrap() - e.projection.p_breach).abs() < 1e-4,
                "{b}"
            );
            assert_eq!(
                got["days_left"],
                as_of().days_until(e.projection.period.end()),
                "{b}"
            );
        }
        let ml = budgets
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "ml-team")
            .unwrap();
        assert_eq!(ml["status"], "breach", "{b}");
        assert_eq!(ml["ladder_steps"], 3, "{b}");

        // One year of costs by service: every cent of the store, grouped.
        let (from, to) = (as_of().add_days(-365), as_of().add_days(-1));
        let (status, costs) = s
            .get(
                &format!("/api/v1/costs?from={from}&to={to}&group_by=service"),
                Some(READ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{b}: {costs}");
        assert_eq!(costs["periods"].as_array().unwrap().len(), 365, "{b}");
        let groups = costs["groups"].as_array().unwrap();
        let api_total: f64 = groups.iter().map(|g| g["total"].as_f64().unwrap()).sum();
        let stored = stored_sum(&s.ctx, from, to, |_| true).await;
        assert!(
            (api_total - stored).abs() < 0.01 * groups.len() as f64,
            "{b}: {api_total} vs {stored}"
        );
        let totals: Vec<f64> = groups
            .iter()
            .map(|g| g["total"].as_f64().unwrap())
            .collect();
        assert!(
            totals.windows(2).all(|w| w[0] >= w[1]),
            "{b}: largest first"
        );
        for g in groups {
            let sum: f64 = g["amounts"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_f64)
                .sum();
            assert!(
                (sum - g["total"].as_f64().unwrap()).abs() < 0.01 * 365.0,
                "{b}: {}",
                g["key"]
            );
        }

        // A month of the ml team by month: a filter on a tag.
        let (status, ml_costs) = s
            .get(
                "/api/v1/costs?from=2025-10-01&to=2025-10-31&granularity=month&filter=team:ml",
                Some(READ),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{b}");
        assert_eq!(ml_costs["periods"], json!(["2025-10-01"]), "{b}");
        let want = stored_sum(
            &s.ctx,
            Day::parse("2025-10-01").unwrap(),
            Day::parse("2025-10-31").unwrap(),
            |d| d.tags.get("team").map(String::as_str) == Some("ml"),
        )
        .await;
        assert!(
            (ml_costs["groups"][0]["total"].as_f64().unwrap() - want).abs() < 0.01,
            "{b}"
        );

        // CSV: one row per period and group with a value.
        let (status, csv) = s
            .text(&format!(
                "/api/v1/costs?from={from}&to={to}&group_by=service,team&format=csv"
            ))
            .await;
        assert_eq!(status, StatusCode::OK);
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("period,service,team,currency,amount"),
            "{b}"
        );
        let csv_total: f64 = lines
            .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
            .sum();
        assert!(
            (csv_total - stored).abs() < 1.0,
            "{b}: {csv_total} vs {stored}"
        );

        // One budget: history, drivers, ladder.
        let (status, detail) = s.get("/api/v1/budgets/ml-team", Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{b}: {detail}");
        assert_eq!(detail["history"].as_array().unwrap().len(), 1, "{b}");
        assert_eq!(detail["ladder"].as_array().unwrap().len(), 3, "{b}");
        assert_eq!(detail["ladder"][0]["in_effect"], true, "{b}");
        let ml_eval = evaluations.iter().find(|e| e.budget == "ml-team").unwrap();
        assert_eq!(
            detail["drivers"].as_array().unwrap().len(),
            ml_eval.drivers.len(),
            "{b}"
        );
        assert!(!ml_eval.drivers.is_empty(), "{b}");
        let (_, drivers_csv) = s.text("/api/v1/budgets/ml-team/drivers?format=csv").await;
        assert_eq!(
            drivers_csv.lines().count(),
            ml_eval.drivers.len() + 1,
            "{b}"
        );

        // The budget's forecast, as stored.
        let (status, f) = s.get("/api/v1/forecasts?budget=ml-team", Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        assert_eq!(f["series"], "budget:ml-team");
        assert_eq!(f["points"].as_array().unwrap().len(), 45, "{b}");
        assert_eq!(f["history_end"], as_of().add_days(-2).to_string(), "{b}");
        let p = &f["points"][0];
        assert!(
            p["lo95"].as_f64() <= p["lo80"].as_f64() && p["hi80"].as_f64() <= p["hi95"].as_f64()
        );
        let (status, _) = s
            .get("/api/v1/forecasts?series=no-such-series", Some(READ))
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{b}");

        // Anomalies, a page at a time.
        let stored_anomalies = s
            .ctx
            .store
            .latest_anomalies(None, None)
            .await
            .unwrap()
            .len();
        assert!(stored_anomalies > 5, "{b}");
        let (_, page1) = s
            .get("/api/v1/anomalies?from=2024-01-01&limit=5", Some(READ))
            .await;
        assert_eq!(page1["items"].as_array().unwrap().len(), 5, "{b}");
        assert_eq!(page1["next_offset"], 5, "{b}");
        let mut seen = 0;
        let mut offset = Some(0);
        while let Some(o) = offset {
            let (_, page) = s
                .get(
                    &format!("/api/v1/anomalies?from=2024-01-01&limit=7&offset={o}"),
                    Some(READ),
                )
                .await;
            seen += page["items"].as_array().unwrap().len();
            offset = page["next_offset"].as_i64();
        }
        assert_eq!(
            seen, stored_anomalies,
            "{b}: pages cover every anomaly once"
        );

        // Runs, and the probes.
        // Backtest scores: every stored one, filtered by model, and as CSV.
        let stored = s.ctx.store.latest_accuracy().await.unwrap();
        assert!(!stored.is_empty(), "{b}");
        let (_, all) = s.get("/api/v1/accuracy", Some(READ)).await;
        assert_eq!(all.as_array().unwrap().len(), stored.len(), "{b}");
        assert_eq!(all[0]["series"], stored[0].series.as_str());
        assert_eq!(all[0]["coverage80"], stored[0].coverage80);
        let model = stored[0].model.clone();
        let (_, one) = s
            .get(&format!("/api/v1/accuracy?model={model}"), Some(READ))
            .await;
        let of_model = stored.iter().filter(|a| a.model == model).count();
        assert_eq!(one.as_array().unwrap().len(), of_model, "{b}");
        let (_, none) = s
            .get("/api/v1/accuracy?model=no-such-model", Some(READ))
            .await;
        assert_eq!(none, json!([]));
        let (_, csv) = s.text("/api/v1/accuracy?format=csv").await;
        assert!(
            csv.starts_with("series,model,windows,horizon,mape"),
            "{csv}"
        );
        assert_eq!(csv.lines().count(), stored.len() + 1, "{b}");

        let (_, runs) = s.get("/api/v1/runs", Some(READ)).await;
        assert_eq!(runs["items"][0]["job"], "demo", "{b}");
        assert_eq!(runs["items"][0]["outcome"], "ok", "{b}");
        let (status, ready) = s.get("/readyz", None).await;
        assert_eq!(status, StatusCode::OK, "{b}");
        assert_eq!(ready["store"], "ok");
        assert_eq!(ready["last_run"]["job"], "demo");

        // Metrics: the same numbers, in the exposition format.
        let (status, metrics) = s.text("/metrics").await;
        assert_eq!(status, StatusCode::OK, "{b}");
        let line = metrics
            .lines()
            .find(|l| l.starts_with("costcast_budget_breach_probability{budget=\"ml-team\"}"))
            .unwrap_or_else(|| panic!("{b}: {metrics}"));
        let value: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((value - ml_eval.projection.p_breach).abs() < 1e-4, "{b}");
        for name in [
            "costcast_budget_projected_ratio{budget=\"compute\"}",
            "costcast_run_last_success{job_name=\"demo\"} 1",
            "costcast_stage_last_success{stage=\"ingest\"} 1",
            "costcast_ingest_last_points_written",
            "costcast_source_last_day_timestamp_seconds{source=\"demo-focus\"}",
            "costcast_run_last_success_timestamp_seconds{job_name=\"demo\"}",
            "costcast_budget_forecast_error_percent{budget=\"ml-team\"}",
        ] {
            assert!(
                metrics.contains(name),
                "{b}: {name} missing from\n{metrics}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_lists_every_route_the_server_answers() {
    let db = sqlite_db();
    let s = demo_server(&db, &[]).await;
    let (status, doc) = s.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    let want = [
        "/api/v1/costs",
        "/api/v1/forecasts",
        "/api/v1/budgets",
        "/api/v1/budgets/{name}",
        "/api/v1/budgets/{name}/drivers",
        "/api/v1/anomalies",
        "/api/v1/actions",
        "/api/v1/runs",
        "/api/v1/accuracy",
        "/api/v1/actions/{id}/restore",
        "/api/v1/budgets/{name}/mode",
        "/healthz",
        "/readyz",
        "/metrics",
    ];
    let mut sorted: Vec<&str> = paths.iter().map(|p| p.as_str()).collect();
    sorted.sort();
    let mut expected = want.to_vec();
    expected.sort();
    assert_eq!(sorted, expected);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Every documented GET answers as documented with a read token (no 404 from a path typo).
    for path in want
        .iter()
        .filter(|p| !p.contains('{') && doc["paths"][**p]["get"].is_object())
    {
        let q = if *path == "/api/v1/forecasts" {
            "?budget=ml-team"
        } else {
            ""
        };
        let (status, body) = s.get(&format!("{path}{q}"), Some(READ)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }
}

/// Every endpoint group, with a request that would succeed with the right token.
fn groups() -> Vec<(&'static str, &'static str, Option<Value>, bool)> {
    vec![
        ("GET", "/api/v1/costs?group_by=service", None, false),
        ("GET", "/api/v1/forecasts?budget=ml-team", None, false),
        ("GET", "/api/v1/budgets", None, false),
        ("GET", "/api/v1/budgets/ml-team", None, false),
        ("GET", "/api/v1/budgets/ml-team/drivers", None, false),
        ("GET", "/api/v1/anomalies", None, false),
        ("GET", "/api/v1/actions", None, false),
        ("GET", "/api/v1/runs", None, false),
        ("GET", "/api/v1/accuracy", None, false),
        ("GET", "/metrics", None, false),
        (
            "POST",
            "/api/v1/budgets/ml-team/mode",
            Some(json!({"mode": "observe"})),
            true,
        ),
        ("POST", "/api/v1/actions/1/restore", None, true),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_endpoint_group_refuses_a_missing_or_unknown_token_and_the_wrong_scope() {
    let db = sqlite_db();
    let s = demo_server(&db, &[]).await;
    for (method, path, body, admin) in groups() {
        for token in [None, Some("not-a-token-of-this-server"), Some("")] {
            let (status, err) = match method {
                "GET" => s.get(path, token).await,
                _ => s.post(path, token, body.clone()).await,
            };
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}"
            );
            assert_eq!(err["error"]["code"], "unauthorized", "{method} {path}");
        }
        let (status, err) = match method {
            "GET" => s.get(path, Some(READ)).await,
            _ => s.post(path, Some(READ), body.clone()).await,
        };
        if admin {
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} with a read token"
            );
            assert_eq!(err["error"]["code"], "forbidden");
        } else {
            assert_eq!(
                status,
                StatusCode::OK,
                "{method} {path} with a read token: {err}"
            );
        }
    }
    // The header must say Bearer for clients to know what to send.
    let resp = s
        .http
        .get(format!("{}/api/v1/budgets", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert!(resp.headers().contains_key("x-request-id"));
    // Probes are open.
    for path in ["/healthz", "/readyz", "/api/v1/openapi.json"] {
        assert_eq!(s.get(path, None).await.0, StatusCode::OK, "{path}");
    }
    // No CORS unless configured.
    let resp = s.get_from("https://evil.example", "/api/v1/budgets").await;
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_signs_in_with_a_cookie_that_never_grants_admin() {
    let db = sqlite_db();
    let s = demo_server(&db, &[]).await;
    let resp = s.http.get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.text().await.unwrap().contains("<form class=\"login\""));

    let resp = s
        .http
        .get(format!("{}/?token={ADMIN}", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()["location"], "/");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_string();

    let page = s
        .http
        .get(format!("{}/", s.base))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("class=\"budget-row\"").count(), 3);
    assert_eq!(html.matches("<svg class=\"fan-chart\"").count(), 3);
    // The page's CSV links work with the cookie.
    let csv = s
        .http
        .get(format!(
            "{}/api/v1/budgets/ml-team/drivers?format=csv",
            s.base
        ))
        .header("Cookie", &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    // An admin token in a cookie is still only read: a cross-site form cannot change a mode.
    let post = s
        .http
        .post(format!("{}/api/v1/budgets/ml-team/mode", s.base))
        .header("Cookie", &pair)
        .json(&json!({"mode": "enforce"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::FORBIDDEN);
    let bad = s
        .http
        .get(format!("{}/?token=wrong-token-0123456789", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_and_cors_follow_the_config() {
    let db = sqlite_db();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[api]\nmetrics_public = true\ncors_origins = [\"https://grafana.example.com\"]\n\
         read_tokens = [\"{READ}\"]\n"
    );
    let config = config(&text, dir.path(), &db);
    let s = start(context(config).await, dir).await;
    let (status, _) = s.get("/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    let resp = s
        .get_from("https://grafana.example.com", "/api/v1/budgets")
        .await;
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "https://grafana.example.com"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_are_400s_that_name_the_parameter_and_sql_stays_data() {
    let db = sqlite_db();
    let s = demo_server(&db, &[]).await;
    let cases = [
        ("/api/v1/costs?from=2025-13-01", "from"),
        ("/api/v1/costs?to=yesterday", "to"),
        ("/api/v1/costs?from=2025-10-02&to=2025-10-01", "from"),
        ("/api/v1/costs?from=1990-01-01&to=2025-01-01", "from"),
        ("/api/v1/costs?from=0001-01-01", "from"),
        ("/api/v1/costs?group_by=colour", "group_by"),
        ("/api/v1/costs?group_by=service,service", "group_by"),
        ("/api/v1/costs?group_by=a%20b", "group_by"),
        ("/api/v1/costs?granularity=hour", "granularity"),
        ("/api/v1/costs?filter=service", "filter"),
        ("/api/v1/costs?filter=owner:me", "filter"),
        ("/api/v1/costs?format=xml", "format"),
        ("/api/v1/costs?limit=0", "limit"),
        ("/api/v1/costs?from=2025-01-01&from=2025-02-01", "from"),
        ("/api/v1/runs?limit=100000", "limit"),
        ("/api/v1/runs?offset=-1", "offset"),
        ("/api/v1/runs?colour=red", "colour"),
        ("/api/v1/accuracy?model=Bad%20Model", "model"),
        ("/api/v1/anomalies?to=2025-02-30", "to"),
        ("/api/v1/forecasts", "series"),
        ("/api/v1/forecasts?series=a&budget=b", "budget"),
        ("/api/v1/budgets/ml-team?x=1", "x"),
    ];
    for (path, param) in cases {
        let (status, err) = s.get(path, Some(READ)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {err}");
        assert_eq!(err["error"]["code"], "bad_parameter", "{path}");
        let message = err["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{param}: ")),
            "{path}: {message}"
        );
    }
    let (status, err) = s
        .post("/api/v1/actions/abc/restore", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("id: ")
    );
    let (status, err) = s
        .post(
            "/api/v1/budgets/ml-team/mode",
            Some(ADMIN),
            Some(json!({"mode": "chaos"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("mode: "),
        "{err}"
    );
    let (status, _) = s
        .post(
            "/api/v1/budgets/ml-team/mode",
            Some(ADMIN),
            Some(json!({"mood": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let resp = s
        .http
        .post(format!("{}/api/v1/budgets/ml-team/mode", s.base))
        .bearer_auth(ADMIN)
        .body("mode=enforce")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(
        s.ctx.store.budget_modes().await.unwrap().is_empty(),
        "a refused mode change stores nothing"
    );
    let (status, err) = s.get("/api/v1/budgets/no-such-budget", Some(READ)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "not_found");
    let (status, err) = s.get("/api/v2/everything", Some(READ)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(err["error"]["code"], "not_found");
    let (status, _) = s
        .post("/api/v1/actions/999999/restore", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Values that look like SQL are only ever data.
    let runs_before = s.ctx.store.runs_page(100, 0).await.unwrap().len();
    let (status, body) = s
        .get(
            "/api/v1/actions?budget=x'%3B%20DROP%20TABLE%20runs%3B--",
            Some(READ),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["items"], json!([]));
    let (status, body) = s
        .get("/api/v1/costs?filter=service:'%20OR%201=1%20--", Some(READ))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["groups"], json!([]));
    assert_eq!(
        s.ctx.store.runs_page(100, 0).await.unwrap().len(),
        runs_before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mode_set_through_the_api_is_what_the_next_run_uses_on_both_stores() {
    for db in both_dbs().await {
        let b = db.backend;
        let s = demo_server(&db, &[]).await;
        let (status, body) = s
            .post(
                "/api/v1/budgets/ml-team/mode",
                Some(ADMIN),
                Some(json!({"mode": "enforce"})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{b}: {body}");
        assert_eq!(
            body,
            json!({"budget": "ml-team", "mode": "enforce", "previous": "observe"})
        );
        let (_, budgets) = s.get("/api/v1/budgets", Some(READ)).await;
        let ml = budgets
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == "ml-team")
            .unwrap()
            .clone();
        assert_eq!(ml["mode"], "enforce", "{b}");
        // The next command's context (what a CronJob run builds) uses it.
        let path = s.dir.path().join("costcast.toml");
        let fresh = context(Config::load(Some(&path), &env_for(&db, &[])).unwrap()).await;
        let budget = fresh
            .config
            .budgets
            .iter()
            .find(|x| x.name == "ml-team")
            .unwrap();
        assert_eq!(budget.mode.as_str(), "enforce", "{b}");
        let modes = s.ctx.store.budget_modes().await.unwrap();
        assert_eq!(modes.len(), 1, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restore_through_the_api_puts_the_object_back_on_both_stores() {
    for db in both_dbs().await {
        let b = db.backend;
        let kube = FakeKube::start().await;
        kube.enforce_rbac(include_str!("../deploy/kubernetes/rbac.yaml"));
        kube.put(json!({"kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": "ml", "labels": {"costcast.io/tier": "batch"}},
            "spec": {"minReplicas": 2, "maxReplicas": 10,
                     "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"}}}));
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[kubernetes]\napi_url = \"{}\"\n\n[api]\nread_tokens = [\"{READ}\"]\nadmin_tokens = [\"{ADMIN}\"]\n\n\
             [[budgets]]\nname = \"ml\"\namount = 2500\nmode = \"enforce\"\n\n\
             [[budgets.actions]]\nkind = \"lower-autoscaler-caps\"\nfactor = 0.5\nnamespaces = [\"ml\"]\n\
             selector = \"costcast.io/tier=batch\"\n",
            kube.url
        );
        let ctx = context(config(&text, dir.path(), &db)).await;
        store_forecast(&ctx).await;
        let at = noon(Day::parse("2024-06-10").unwrap());
        run_once(
            &ctx,
            "daily",
            &[Step::Budgets, Step::Act],
            at,
            &RunOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(
            kube.get("HorizontalPodAutoscaler", "ml", "api")["spec"]["maxReplicas"],
            5,
            "{b}"
        );
        let s = start(ctx, dir).await;

        let (_, log) = s.get("/api/v1/actions?budget=ml", Some(READ)).await;
        let applied = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["operation"] == "apply")
            .unwrap()
            .clone();
        assert_eq!(applied["outcome"], "done", "{b}");
        let id = applied["id"].as_i64().unwrap();

        let (status, restored) = s
            .post(&format!("/api/v1/actions/{id}/restore"), Some(ADMIN), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{b}: {restored}");
        assert_eq!(restored["operation"], "restore", "{b}");
        assert_eq!(restored["outcome"], "done", "{b}");
        let hpa = kube.get("HorizontalPodAutoscaler", "ml", "api");
        assert_eq!(hpa["spec"]["maxReplicas"], 10, "{b}");
        assert!(
            hpa["metadata"]["annotations"]
                .get("costcast.io/original")
                .is_none(),
            "{b}"
        );
        assert!(s.ctx.store.throttled(None).await.unwrap().is_empty(), "{b}");
        let runs = s.ctx.store.runs_page(1, 0).await.unwrap();
        assert_eq!(runs[0].job, "api-restore", "{b}");

        let (status, again) = s
            .post(&format!("/api/v1/actions/{id}/restore"), Some(ADMIN), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{b}: {again}");
        let (_, detail) = s.get("/api/v1/budgets/ml", Some(READ)).await;
        assert_eq!(detail["held"], json!([]), "{b}");
        assert_eq!(detail["actions"].as_array().unwrap().len(), 2, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_renders_budgets_and_fan_charts_in_headless_chromium() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "/usr/bin/chromium is missing: scripts/test installs it (apt-get install chromium)"
    );
    let db = sqlite_db();
    let s = demo_server(&db, &[]).await;
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("page");
    std::fs::create_dir_all(&out).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let url = format!("{}/?token={READ}", s.base);
    let run = |extra: Vec<String>| {
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra);
        args.push(url.clone());
        let chromium = chromium.to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(chromium).args(args).output()
        })
    };
    let dom = run(vec!["--dump-dom".into()])
        .await
        .unwrap()
        .expect("chromium runs");
    let html = String::from_utf8_lossy(&dom.stdout).to_string();
    assert_eq!(
        html.matches("class=\"budget-row\"").count(),
        3,
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    for budget in ["ml-team", "data-team", "compute"] {
        assert!(
            html.contains(&format!(
                "<svg class=\"fan-chart\" data-budget=\"{budget}\""
            )),
            "{budget}"
        );
    }
    for class in [
        "band-95",
        "band-80",
        "forecast-mean",
        "actual",
        "budget-line",
        "anomaly",
        "daily",
    ] {
        assert!(
            html.contains(&format!("class=\"{class}\"")),
            "{class} missing"
        );
    }
    assert!(html.contains("status-breach"));
    assert!(html.contains("/api/v1/budgets/ml-team/drivers?format=csv"));

    let shot = out.join("costcast-page.png");
    let _ = std::fs::remove_file(&shot);
    run(vec![
        format!("--screenshot={}", shot.display()),
        "--window-size=1280,2600".into(),
    ])
    .await
    .unwrap()
    .expect("chromium runs");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 50_000,
        "screenshot {} is {size} bytes",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}
