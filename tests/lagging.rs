//! Sources that fail or fall behind, on the demo organisation and both stores: a failed source
//! fails alone, every budget is still evaluated, the alert names the budgets that rest on data
//! that did not refresh, and data too old to act on holds the ladder where it was.

mod common;

use std::path::Path;

use chrono::{DateTime, NaiveTime, Utc};
use common::slack_receiver::{Receiver, start};
use common::*;
use costcast::app::App;
use costcast::config::Config;
use costcast::domain::{Day, Evaluation, LaggingSource, RunOutcome, StageOutcome, Status, Step};
use costcast::pipeline::{RunError, RunOptions, RunReport, run_once};
use serde_json::Value;

fn as_of() -> Day {
    Day::parse("2025-11-20").expect("a day")
}

fn noon(day: Day) -> DateTime<Utc> {
    day.date()
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).expect("noon"))
        .and_utc()
}

/// The demo organisation in `dir` on `db`, with `extra` TOML appended to its config and alerts
/// posted to `webhook`.
async fn demo(dir: &Path, db: &TestDb, extra: &str, webhook: &str) -> App {
    let files = costcast::demo::write(dir, as_of()).expect("demo writes");
    let text = std::fs::read_to_string(&files.config).expect("demo config");
    std::fs::write(&files.config, format!("{text}\n{extra}")).expect("config written");
    let (url, hook) = (db.url.clone(), webhook.to_string());
    let env = move |k: &str| match k {
        "COSTCAST_DATABASE_URL" => Some(url.clone()),
        "COSTCAST_SLACK_WEBHOOK_URL" => Some(hook.clone()),
        _ => None,
    };
    context(Config::load(Some(&files.config), &env).expect("config is valid")).await
}

/// The daily job's every step as of noon on `day`.
async fn daily(ctx: &App, day: Day) -> Result<RunReport, RunError> {
    run_once(ctx, "daily", &Step::ALL, noon(day), &RunOptions::default()).await
}

async fn evaluation(ctx: &App, budget: &str) -> Evaluation {
    ctx.store
        .latest_evaluations()
        .await
        .expect("evaluations read")
        .into_iter()
        .find(|e| e.budget == budget)
        .expect("the budget was evaluated")
}

async fn steps(ctx: &App, budget: &str) -> u32 {
    ctx.store.budget_states().await.expect("states read")[budget]
        .state
        .steps()
}

/// The text of every section of the newest message `receiver` got.
fn last_message(receiver: &Receiver) -> (String, String) {
    let bodies = receiver.bodies.lock().expect("receiver lock");
    let body = bodies.last().expect("a message was posted");
    let sections: Vec<&str> = body["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter(|b| b["type"] == "section")
        .filter_map(|b| b["text"]["text"].as_str())
        .collect();
    (
        body["text"].as_str().unwrap_or_default().to_string(),
        sections.join("\n"),
    )
}

/// A Prometheus source nobody answers for.
const DEAD_PROMETHEUS: &str = r#"
[[sources]]
name = "k8s"
kind = "prometheus"
url = "http://127.0.0.1:9"
[sources.prices]
currency = "USD"
cpu_core_hour = 0.04
memory_gib_hour = 0.005
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_source_fails_alone_and_every_budget_is_still_evaluated() {
    let (webhook, receiver) = start(vec![]).await;
    for db in both_dbs().await {
        let b = db.backend;
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = demo(dir.path(), &db, DEAD_PROMETHEUS, &webhook).await;
        let err = daily(&ctx, as_of())
            .await
            .expect_err("a run without one of its sources fails");
        assert!(err.to_string().contains("source k8s"), "{b}: {err}");
        let report = err.partial.expect("every stage ran");
        let outcomes: Vec<(Step, StageOutcome)> =
            report.stages.iter().map(|s| (s.step, s.outcome)).collect();
        assert_eq!(
            outcomes,
            vec![
                (Step::Ingest, StageOutcome::Partial),
                (Step::Forecast, StageOutcome::Ok),
                (Step::Budgets, StageOutcome::Ok),
                (Step::Act, StageOutcome::Ok),
                (Step::Notify, StageOutcome::Ok),
            ],
            "{b}"
        );

        // The FOCUS export was stored, and every budget evaluated as of the day.
        let summary = ctx.store.cost_summary().await.expect("summary");
        assert_eq!(summary.last_day, Some(as_of().add_days(-1)), "{b}");
        let evaluations = ctx.store.latest_evaluations().await.expect("evaluations");
        assert_eq!(evaluations.len(), ctx.config.budgets.len(), "{b}");
        assert!(evaluations.iter().all(|e| e.as_of == as_of()), "{b}");
        // No budget draws on the Prometheus source: none is behind, and the ladder climbs.
        assert!(evaluations.iter().all(|e| e.lagging.is_empty()), "{b}");
        assert_eq!(evaluation(&ctx, "ml-team").await.status, Status::Breach);
        assert_eq!(steps(&ctx, "ml-team").await, 1, "{b}");

        let runs = ctx.store.runs(1).await.expect("runs");
        assert_eq!(runs[0].outcome, RunOutcome::Partial, "{b}");
        let failed = &runs[0].detail.failed_sources;
        assert_eq!(failed.len(), 1, "{b}");
        assert_eq!(failed[0].source, "k8s", "{b}");
        assert!(failed[0].error.starts_with("source k8s"), "{b}: {failed:?}");
        let alerts = ctx.store.alerts().await.expect("alerts");
        assert_eq!(alerts.last().map(|a| a.outcome.as_str()), Some("sent"));
    }
    assert_eq!(receiver.bodies.lock().expect("lock").len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alert_names_the_budgets_resting_on_a_source_that_did_not_refresh() {
    let (webhook, receiver) = start(vec![]).await;
    for db in both_dbs().await {
        let b = db.backend;
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = demo(dir.path(), &db, "", &webhook).await;
        ingest(&ctx).await.expect("the export ingests");
        let before = daily_totals(&ctx.store).await;

        // The next export has a row whose cost is not a number: the source fails naming the
        // file and line, what it had stored stays, and the budgets run on it.
        let export = dir.path().join("billing/focus-demo.csv");
        let mut text = std::fs::read_to_string(&export).expect("export");
        let row = text.lines().nth(1).expect("a data row").to_string();
        let header: Vec<&str> = text.lines().next().expect("a header").split(',').collect();
        let at = header
            .iter()
            .position(|c| *c == "EffectiveCost")
            .expect("a cost column");
        let mut broken: Vec<&str> = row.split(',').collect();
        broken[at] = "twelve";
        text.push_str(&broken.join(","));
        text.push('\n');
        std::fs::write(&export, text).expect("export written");
        let lines = std::fs::read_to_string(&export)
            .expect("export")
            .lines()
            .count();

        let err = daily(&ctx, as_of())
            .await
            .expect_err("the run goes on without the source, and says so");
        let said = err.to_string();
        assert!(
            said.contains("source demo-focus") && said.contains(&format!("line {lines}")),
            "{b}: {said}"
        );
        assert_eq!(daily_totals(&ctx.store).await, before, "{b}");
        for budget in ["ml-team", "data-team", "compute"] {
            let e = evaluation(&ctx, budget).await;
            assert_eq!(
                e.lagging,
                vec![LaggingSource {
                    source: "demo-focus".into(),
                    newest_day: Some(as_of().add_days(-1)),
                    refresh_failed: true,
                    stale: false,
                }],
                "{b} {budget}"
            );
            assert!(!e.ladder_held(), "{b} {budget}");
        }
        // A day old is fresh enough to act on: the ladder still climbs.
        assert_eq!(steps(&ctx, "ml-team").await, 1, "{b}");
        let (text, sections) = last_message(&receiver);
        assert!(
            text.contains("3 budget(s) on data that did not refresh"),
            "{b}: {text}"
        );
        let line = format!(
            "Data from *demo-focus* did not refresh in this run (newest day {}, 1 day old)",
            as_of().add_days(-1)
        );
        assert_eq!(sections.matches(&line).count(), 3, "{b}: {sections}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn data_too_old_to_act_on_holds_the_ladder_where_it_was() {
    let (webhook, receiver) = start(vec![]).await;
    for db in both_dbs().await {
        let b = db.backend;
        let dir = tempfile::tempdir().expect("temp dir");
        let ctx = demo(dir.path(), &db, "", &webhook).await;
        daily(&ctx, as_of()).await.expect("the demo runs");
        assert_eq!(steps(&ctx, "ml-team").await, 1, "{b}");

        // Ten days on, nothing newer has arrived. The budget is still evaluated and still in
        // breach, but on a new day in breach its ladder would climb: it stays at step 1.
        let later = as_of().add_days(10);
        let report = daily(&ctx, later)
            .await
            .expect("a run on old data succeeds");
        let e = evaluation(&ctx, "ml-team").await;
        assert_eq!((e.as_of, e.status), (later, Status::Breach), "{b}");
        assert!(e.ladder_held(), "{b}: {:?}", e.lagging);
        assert_eq!(
            e.lagging,
            vec![LaggingSource {
                source: "demo-focus".into(),
                newest_day: Some(as_of().add_days(-1)),
                refresh_failed: false,
                stale: true,
            }],
            "{b}"
        );
        assert_eq!((e.steps, steps(&ctx, "ml-team").await), (1, 1), "{b}");
        let budgets = report
            .stages
            .iter()
            .find(|s| s.step == Step::Budgets)
            .expect("a budgets stage");
        assert_eq!(budgets.counts["held"], 3, "{b}");
        let (_, sections) = last_message(&receiver);
        assert!(
            sections.contains("11 days old): too old to act on, the action ladder is held"),
            "{b}: {sections}"
        );

        // Fresh data again (the export through the later day): the ladder moves on.
        costcast::demo::write(dir.path(), later.add_days(1)).expect("demo rewrites");
        daily(&ctx, later)
            .await
            .expect("the run on fresh data succeeds");
        let e = evaluation(&ctx, "ml-team").await;
        assert!(e.lagging.is_empty(), "{b}: {:?}", e.lagging);
        assert_eq!(steps(&ctx, "ml-team").await, 2, "{b}");
    }
    let bodies: Vec<Value> = receiver.bodies.lock().expect("lock").clone();
    assert!(bodies.len() >= 4, "{} messages", bodies.len());
}
