//! The store API on both backends: the rows written are the rows read back.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::*;
use costcast::domain::{
    Accuracy, ActionRecord, AlertMark, Anomaly, BudgetMode, BudgetState, CostPoint, Currency,
    DailyForecast, Day, DayRange, Dimensions, Driver, Engaged, Evaluation, FieldChange,
    LaggingSource, ModelKind, Money, ObjectChange, ObjectKind, ObjectRef, Operation, Outcome,
    PlanCheck, Projection, SeriesForecast, SourceFailure, Status,
};
use costcast::store::{RunOutcome, Store};

fn d(s: &str) -> Day {
    Day::parse(s).unwrap()
}

fn point(day: &str, service: &str, team: &str, amount: f64) -> CostPoint {
    let mut dims = Dimensions {
        source: "billing".into(),
        provider: "AWS".into(),
        service: service.into(),
        charge_category: "Usage".into(),
        ..Dimensions::default()
    };
    dims.tags.insert("team".into(), team.into());
    CostPoint {
        day: d(day),
        dims,
        cost: Money::new(amount, Currency::usd()),
    }
}

async fn open(db: &TestDb) -> Store {
    let store = Store::connect(&costcast::config::DatabaseUrl::new(db.url.clone()))
        .await
        .unwrap();
    let files = std::fs::read_dir(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(db.backend),
    )
    .unwrap()
    .count();
    assert_eq!(
        store.migrate().await.unwrap(),
        files,
        "{}: a fresh database gets every migration",
        db.backend
    );
    assert_eq!(
        store.migrate().await.unwrap(),
        0,
        "{}: migrating twice applies nothing",
        db.backend
    );
    store
}

#[tokio::test]
async fn replacing_a_period_removes_its_old_rows_and_keeps_the_rest() {
    for db in both_dbs().await {
        let store = open(&db).await;
        let june = DayRange::new(d("2024-06-01"), d("2024-06-30")).unwrap();
        let july = DayRange::new(d("2024-07-01"), d("2024-07-31")).unwrap();
        store
            .replace_costs(
                "billing",
                june,
                &[
                    point("2024-06-01", "EC2", "ml", 10.0),
                    point("2024-06-02", "S3", "ml", 2.5),
                ],
            )
            .await
            .unwrap();
        store
            .replace_costs("billing", july, &[point("2024-07-01", "EC2", "ml", 11.0)])
            .await
            .unwrap();

        // June again, restated: S3 is gone, EC2 changed, a new team appears. July is untouched.
        let summary = store
            .replace_costs(
                "billing",
                june,
                &[
                    point("2024-06-01", "EC2", "ml", 12.0),
                    point("2024-06-01", "EC2", "web", 1.0),
                ],
            )
            .await
            .unwrap();
        assert_eq!(
            (summary.points_removed, summary.points_written),
            (2, 2),
            "{}",
            db.backend
        );

        let totals = daily_totals(&store).await;
        let expected: std::collections::BTreeMap<String, f64> = [
            ("2024-06-01".to_string(), 13.0),
            ("2024-07-01".to_string(), 11.0),
        ]
        .into_iter()
        .collect();
        assert_eq!(totals, expected, "{}", db.backend);
        let series = store.series().await.unwrap();
        assert_eq!(
            series.len(),
            3,
            "{}: EC2/ml, S3/ml and EC2/web are known series",
            db.backend
        );
        assert!(
            series
                .iter()
                .any(|s| s.dims.tags["team"] == "web" && s.currency == Currency::usd())
        );
        let june_only = store
            .daily_costs(Some(d("2024-06-01")), Some(d("2024-06-30")))
            .await
            .unwrap();
        assert_eq!(june_only.len(), 2, "{}", db.backend);
        store.close().await;
    }
}

/// Three days of forecast for `series` at `mean`.
fn forecast(series: &str, mean: f64) -> SeriesForecast {
    SeriesForecast {
        series: series.into(),
        model: ModelKind::MstlEts,
        history_end: d("2024-06-30"),
        note: None,
        shape: Default::default(),
        points: (1..=3)
            .map(|i| DailyForecast {
                day: d("2024-06-30").add_days(i),
                mean,
                lo80: mean - 1.0,
                hi80: mean + 1.0,
                lo95: mean - 2.0,
                hi95: mean + 2.0,
                sd_level: 0.5,
                sd_noise: 0.25,
            })
            .collect(),
    }
}

/// An evaluation of `budget` with every optional part filled in.
fn evaluation(budget: &str) -> Evaluation {
    Evaluation {
        budget: budget.into(),
        as_of: d("2024-06-21"),
        amount: Money::new(3000.0, Currency::parse("EUR").unwrap()),
        projection: Projection {
            period: DayRange::month_of(d("2024-06-21")),
            actual_to_date: 1900.0,
            reported_through: Some(d("2024-06-19")),
            forecast_days: 11,
            mean: 3000.0,
            lo80: 2917.7,
            hi80: 3082.3,
            p_breach: 0.5,
        },
        status: Status::Recovering,
        mode: BudgetMode::Observe,
        forecast_error: Some(3.25),
        steps: 2,
        drivers: vec![Driver {
            series: "service=EC2|team=ml".into(),
            projected: 1200.5,
            previous: 800.25,
        }],
        plan: Some(PlanCheck {
            month: DayRange::month_of(d("2024-06-21")),
            planned: 2800.0,
            actual_to_date: 1900.0,
            projected: 3000.0,
            lo80: 2917.7,
            hi80: 3082.3,
            p_over: 0.99,
        }),
        lagging: vec![LaggingSource {
            source: "aws".into(),
            newest_day: Some(d("2024-06-15")),
            refresh_failed: true,
            stale: true,
        }],
    }
}

#[tokio::test]
async fn the_newest_forecast_of_each_series_is_read_back_exactly() {
    for db in both_dbs().await {
        let store = open(&db).await;
        let first = store.start_run("forecast", Utc::now()).await.unwrap();
        store
            .save_forecasts(first, &[forecast("a", 1.0), forecast("b", 2.0)])
            .await
            .unwrap();
        let second = store.start_run("forecast", Utc::now()).await.unwrap();
        let mut newer = forecast("a", 5.0);
        newer.model = ModelKind::SeasonalNaive;
        newer.note = Some("short".into());
        store
            .save_forecasts(second, std::slice::from_ref(&newer))
            .await
            .unwrap();
        store
            .save_anomalies(
                second,
                &[Anomaly {
                    series: "a".into(),
                    day: d("2024-06-20"),
                    actual: 9.0,
                    expected: 3.0,
                }],
            )
            .await
            .unwrap();

        let latest = store.latest_forecasts().await.unwrap();
        assert_eq!(latest, vec![newer, forecast("b", 2.0)], "{}", db.backend);
        let anomalies = store
            .latest_anomalies(Some(d("2024-06-01")), None)
            .await
            .unwrap();
        assert_eq!(anomalies.len(), 1, "{}", db.backend);
        assert_eq!(anomalies[0].actual - anomalies[0].expected, 6.0);
        store.close().await;
    }
}

#[tokio::test]
async fn evaluations_and_runs_are_read_back_as_written() {
    for db in both_dbs().await {
        let store = open(&db).await;
        let run = store.start_run("budgets", Utc::now()).await.unwrap();
        let evaluation = evaluation("ml");
        store
            .save_evaluations(run, std::slice::from_ref(&evaluation))
            .await
            .unwrap();
        let detail = costcast::domain::RunDetail {
            as_of: Some(d("2024-06-20")),
            restored: Some(1),
            failed_sources: vec![SourceFailure::new("prom", "connection refused".into())],
            ..Default::default()
        };
        store
            .finish_run(run, Utc::now(), RunOutcome::Partial, &detail)
            .await
            .unwrap();

        assert_eq!(
            store.latest_evaluations().await.unwrap(),
            vec![evaluation],
            "{}",
            db.backend
        );
        let runs = store.runs(10).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            (runs[0].job.as_str(), runs[0].outcome.as_str()),
            ("budgets", "partial"),
            "{}",
            db.backend
        );
        assert_eq!(runs[0].detail, detail, "{}", db.backend);
        assert_eq!(
            runs[0].detail.failed_sources[0].to_string(),
            "source prom: connection refused"
        );
        assert!(runs[0].finished_at.is_some());
        store.close().await;
    }
}

#[tokio::test]
async fn backtest_accuracy_is_read_back_from_the_newest_run() {
    let accuracy = |series: &str, total_error: Option<f64>| Accuracy {
        series: series.into(),
        model: "calendar".into(),
        windows: 3,
        horizon: 30,
        mape: Some(4.5),
        smape: Some(4.4),
        mase: Some(0.61),
        total_error,
        bias: total_error.map(|e| -e),
        coverage80: 0.8,
        coverage95: 0.95,
    };
    for db in both_dbs().await {
        let store = open(&db).await;
        let older = store.start_run("daily", Utc::now()).await.unwrap();
        store
            .save_accuracy(older, &[accuracy("budget:ml", Some(9.0))])
            .await
            .unwrap();
        let newer = store.start_run("daily", Utc::now()).await.unwrap();
        // A series whose held-out days cost nothing has no total error: stored as NULL.
        let rows = vec![
            accuracy("budget:ml", Some(2.5)),
            accuracy("service=EC2", None),
        ];
        store.save_accuracy(newer, &rows).await.unwrap();
        assert_eq!(
            store.latest_accuracy().await.unwrap(),
            rows,
            "{}",
            db.backend
        );
        store.close().await;
    }
}

#[tokio::test]
async fn budget_state_survives_a_round_trip_and_a_new_period_clears_the_alert_mark() {
    for db in both_dbs().await {
        let b = db.backend;
        let store = open(&db).await;
        let run = store.start_run("budgets", Utc::now()).await.unwrap();
        let june = BudgetState {
            period_start: d("2024-06-01"),
            last_day: d("2024-06-12"),
            status: Status::Breach,
            engaged: Some(Engaged {
                steps: 3,
                calm_days: 0,
                over_at_step: 412.5,
            }),
        };
        store
            .save_budget_states(run, &[("ml".into(), june)])
            .await
            .unwrap();
        let mark = AlertMark {
            status: Status::Breach,
            steps: 3,
            day: d("2024-06-12"),
        };
        store.mark_alerted("ml", &mark).await.unwrap();
        let got = store.budget_states().await.unwrap();
        assert_eq!(got["ml"].state, june, "{b}");
        assert_eq!(got["ml"].alerted, Some(mark), "{b}");

        // The same period keeps the mark; the next one starts without it.
        let later = BudgetState {
            last_day: d("2024-06-13"),
            ..june
        };
        store
            .save_budget_states(run, &[("ml".into(), later)])
            .await
            .unwrap();
        assert_eq!(
            store.budget_states().await.unwrap()["ml"].alerted,
            Some(mark),
            "{b}"
        );
        let july = BudgetState {
            period_start: d("2024-07-01"),
            last_day: d("2024-07-01"),
            status: Status::Ok,
            engaged: None,
        };
        store
            .save_budget_states(run, &[("ml".into(), july)])
            .await
            .unwrap();
        let got = store.budget_states().await.unwrap();
        assert_eq!((got["ml"].state, got["ml"].alerted), (july, None), "{b}");
    }
}

fn change(name: &str, budget: &str) -> ObjectChange {
    ObjectChange {
        budget: budget.into(),
        step: 2,
        target: ObjectRef {
            kind: ObjectKind::HorizontalPodAutoscaler,
            namespace: "ml".into(),
            name: name.into(),
        },
        fields: vec![FieldChange {
            field: "spec.maxReplicas".into(),
            original: serde_json::json!(10),
            set: serde_json::json!(5),
        }],
    }
}

fn record(operation: Operation, change: ObjectChange, outcome: Outcome) -> ActionRecord {
    ActionRecord {
        operation,
        change,
        outcome,
        detail: String::new(),
    }
}

#[tokio::test]
async fn applied_changes_are_held_until_restored_or_conflicting_and_every_record_is_logged() {
    for db in both_dbs().await {
        let b = db.backend;
        let store = open(&db).await;
        let run = store.start_run("act", Utc::now()).await.unwrap();
        store
            .save_actions(
                run,
                &[
                    record(Operation::Apply, change("a", "ml"), Outcome::Done),
                    record(Operation::Apply, change("b", "ml"), Outcome::Done),
                    record(Operation::Apply, change("c", "ml"), Outcome::Planned),
                    record(Operation::Apply, change("d", "ml"), Outcome::Failed),
                    record(Operation::Apply, change("e", "data"), Outcome::Done),
                ],
            )
            .await
            .unwrap();
        let held: Vec<String> = store
            .throttled(Some("ml"))
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.target.name)
            .collect();
        assert_eq!(held, vec!["a", "b"], "{b}");
        assert_eq!(store.throttled(None).await.unwrap().len(), 3, "{b}");
        assert_eq!(
            store.throttled(Some("ml")).await.unwrap()[0],
            change("a", "ml"),
            "{b}"
        );

        let run2 = store.start_run("act", Utc::now()).await.unwrap();
        store
            .save_actions(
                run2,
                &[
                    record(Operation::Restore, change("a", "ml"), Outcome::Done),
                    record(Operation::Restore, change("b", "ml"), Outcome::Conflict),
                ],
            )
            .await
            .unwrap();
        assert!(store.throttled(Some("ml")).await.unwrap().is_empty(), "{b}");
        assert_eq!(store.latest_action_run().await.unwrap(), Some(run2), "{b}");
        let log = store.actions(run).await.unwrap();
        assert_eq!(log.len(), 5, "{b}");
        assert_eq!(log[3].outcome, Outcome::Failed, "{b}");
    }
}

#[tokio::test]
async fn the_leader_lock_has_one_holder_at_a_time_and_lapses_only_when_not_renewed() {
    const TTL: Duration = Duration::from_secs(2);
    for db in both_dbs().await {
        let b = db.backend;
        let one = open(&db).await;
        // A second runner: its own connections to the same database.
        let two = Store::connect(&costcast::config::DatabaseUrl::new(db.url.clone()))
            .await
            .unwrap();
        let mut held = one
            .acquire_leader("act", Duration::ZERO, TTL)
            .await
            .unwrap()
            .expect("free");
        let waited = std::time::Instant::now();
        assert!(
            two.acquire_leader("act", Duration::from_millis(300), TTL)
                .await
                .unwrap()
                .is_none(),
            "{b}"
        );
        assert!(
            waited.elapsed() >= Duration::from_millis(300),
            "{b}: it waited"
        );
        // Another name is another lock.
        let other = two.acquire_leader("other", Duration::ZERO, TTL).await;
        assert!(other.unwrap().is_some(), "{b}");
        // Renewed every half second, the lock outlives its time to live twice over.
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert!(held.renew(&one, TTL).await.unwrap(), "{b}: renewed");
        }
        let taken = two.acquire_leader("act", Duration::ZERO, TTL).await;
        assert!(
            taken.unwrap().is_none(),
            "{b}: a renewed lock is still held"
        );
        held.release(&one).await.unwrap();
        let again = two
            .acquire_leader("act", Duration::ZERO, TTL)
            .await
            .unwrap();
        assert!(again.is_some(), "{b}: released locks can be taken");
        // A holder that dies without releasing: PostgreSQL frees the lock with its session;
        // SQLite's lock row holds until it lapses, one time to live after its last renewal.
        drop(again);
        let at_once = one.acquire_leader("act", Duration::ZERO, TTL).await;
        assert_eq!(at_once.unwrap().is_some(), b == "postgres", "{b}");
        if b == "sqlite" {
            let mut stale = two
                .acquire_leader("stale", Duration::ZERO, TTL)
                .await
                .unwrap()
                .expect("free");
            let lapsed = one.acquire_leader("act", TTL * 2, TTL).await.unwrap();
            assert!(lapsed.is_some(), "{b}: an unrenewed lock lapses");
            // Its old holder, back too late, learns it lost the lock.
            let overtaken = one.acquire_leader("stale", TTL * 2, TTL).await.unwrap();
            assert!(overtaken.is_some(), "{b}");
            assert!(
                !stale.renew(&two, TTL).await.unwrap(),
                "{b}: lost, not renewed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_report_api_reads_comes_back_paged_and_streamed() {
    for db in both_dbs().await {
        let b = db.backend;
        let store = open(&db).await;
        assert_eq!(store.cost_span().await.unwrap(), None, "{b}");
        assert_eq!(store.data_generation().await.unwrap(), 0, "{b}");
        let june = DayRange::new(d("2024-06-01"), d("2024-06-30")).unwrap();
        let points = [
            point("2024-06-03", "EC2", "ml", 10.25),
            point("2024-06-01", "S3", "ml", 2.5),
            point("2024-06-30", "EC2", "web", 7.0),
        ];
        store.replace_costs("billing", june, &points).await.unwrap();
        assert_eq!(
            store.cost_span().await.unwrap(),
            Some((d("2024-06-01"), d("2024-06-30"))),
            "{b}"
        );
        let mut streamed = Vec::new();
        let n = store
            .each_cost(|id, day, amount| streamed.push((id, day, amount)))
            .await
            .unwrap();
        streamed.sort_by(|x, y| x.partial_cmp(y).unwrap());
        let mut listed = store.daily_costs(None, None).await.unwrap();
        listed.sort_by(|x, y| x.partial_cmp(y).unwrap());
        assert_eq!((n, streamed), (3, listed), "{b}");

        // Runs page newest first; finishing them leaves the cost data's generation alone.
        let written = store.data_generation().await.unwrap();
        assert_eq!(written, 1, "{b}: one write of costs");
        for i in 0..5 {
            let run = store
                .start_run(&format!("job{i}"), Utc::now())
                .await
                .unwrap();
            if i < 4 {
                store
                    .finish_run(run, Utc::now(), RunOutcome::Ok, &Default::default())
                    .await
                    .unwrap();
            }
        }
        let first = store.runs_page(2, 0).await.unwrap();
        let second = store.runs_page(2, 2).await.unwrap();
        let jobs: Vec<&str> = first
            .iter()
            .chain(&second)
            .map(|r| r.job.as_str())
            .collect();
        assert_eq!(jobs, ["job4", "job3", "job2", "job1"], "{b}");
        assert_eq!(first[0].outcome, RunOutcome::Running, "{b}");
        assert_eq!(store.data_generation().await.unwrap(), written, "{b}");
        // Every write or drop of cost data moves it on; a drop of nothing does not.
        store.replace_costs("billing", june, &points).await.unwrap();
        assert_eq!(store.data_generation().await.unwrap(), written + 1, "{b}");
        store.drop_sources_except(&["billing"]).await.unwrap();
        assert_eq!(store.data_generation().await.unwrap(), written + 1, "{b}");
        store.drop_sources_except(&[]).await.unwrap();
        assert_eq!(store.data_generation().await.unwrap(), written + 2, "{b}");
        store.replace_costs("billing", june, &points).await.unwrap();

        // A mode set twice keeps the second.
        assert!(store.budget_modes().await.unwrap().is_empty(), "{b}");
        store
            .set_budget_mode("ml", BudgetMode::Enforce, Utc::now())
            .await
            .unwrap();
        store
            .set_budget_mode("ml", BudgetMode::Observe, Utc::now())
            .await
            .unwrap();
        store
            .set_budget_mode("web", BudgetMode::Enforce, Utc::now())
            .await
            .unwrap();
        let modes = store.budget_modes().await.unwrap();
        assert_eq!(modes.get("ml"), Some(&BudgetMode::Observe), "{b}");
        assert_eq!(modes.get("web"), Some(&BudgetMode::Enforce), "{b}");

        // The action log: newest first, by budget, one page at a time, each entry by its id.
        let run = store.start_run("act", Utc::now()).await.unwrap();
        let records: Vec<ActionRecord> = ["a", "b", "c"]
            .iter()
            .map(|n| {
                record(
                    Operation::Apply,
                    change(n, if *n == "b" { "web" } else { "ml" }),
                    Outcome::Done,
                )
            })
            .collect();
        store.save_actions(run, &records).await.unwrap();
        let ml = store.action_log(Some("ml"), 10, 0).await.unwrap();
        let names: Vec<&str> = ml
            .iter()
            .map(|a| a.record.change.target.name.as_str())
            .collect();
        assert_eq!(names, ["c", "a"], "{b}");
        assert_eq!(
            store.action_log(None, 1, 1).await.unwrap()[0]
                .record
                .change
                .target
                .name,
            "b",
            "{b}"
        );
        let one = store.logged_action(ml[1].id).await.unwrap().unwrap();
        assert_eq!(
            (one.run_id, one.record.clone()),
            (run, records[0].clone()),
            "{b}"
        );
        assert_eq!(
            store.logged_action(ml[0].id + 100).await.unwrap(),
            None,
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leader_cut_off_from_postgres_counts_its_lock_lost_and_the_server_frees_it() {
    use costcast::pipeline::{LEADER_LOCK, Leader};
    const TTL: Duration = Duration::from_secs(2);
    let db = postgres_db().await;
    let mut url = reqwest::Url::parse(&db.url).unwrap();
    let upstream = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let proxy = common::tcp_proxy::Proxy::start(&upstream).await;
    url.set_port(Some(proxy.port)).unwrap();
    let config_url = costcast::config::DatabaseUrl::new(url.to_string());
    let direct = open(&db).await;
    let cut_off = Store::connect(&config_url).await.unwrap();

    // Sessions ask the server to probe idle clients, so a vanished holder's lock is freed.
    let Store::Postgres(pool) = &cut_off else {
        unreachable!()
    };
    let idle: String = sqlx::query_scalar("SHOW tcp_keepalives_idle")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(idle, "30");

    let lock = cut_off
        .acquire_leader(LEADER_LOCK, Duration::ZERO, TTL)
        .await
        .unwrap()
        .expect("free");
    let leader = Leader::keep(lock, cut_off.clone(), TTL);
    tokio::time::sleep(TTL).await;
    assert!(!leader.lost().is_cancelled(), "renewed while reachable");

    // The route to the server goes dead: renewals go unanswered, and within two renewal
    // periods the holder counts the lock lost and stops acting.
    proxy.stall();
    tokio::time::timeout(TTL * 2, leader.lost().cancelled())
        .await
        .expect("the lock is counted lost");
    let held = direct.acquire_leader(LEADER_LOCK, Duration::ZERO, TTL);
    assert!(held.await.unwrap().is_none(), "the server still holds it");
    // The connection ends (as the server's keepalive ends it): the lock is free.
    proxy.cut();
    let taken = direct
        .acquire_leader(LEADER_LOCK, Duration::from_secs(10), TTL)
        .await
        .unwrap();
    assert!(taken.is_some(), "another runner takes the lock");
    leader.release().await;
}

#[tokio::test]
async fn pruning_deletes_old_history_but_keeps_what_the_latest_reads_and_held_state_need() {
    use costcast::store::{PruneBefore, Pruned};
    let ago = |days: i64| Utc::now() - chrono::TimeDelta::days(days);
    for db in both_dbs().await {
        let b = db.backend;
        let store = open(&db).await;
        let finished = async |job: &str, days: i64| {
            let run = store.start_run(job, ago(days)).await.unwrap();
            let detail = Default::default();
            store
                .finish_run(run, ago(days), RunOutcome::Ok, &detail)
                .await
                .unwrap();
            run
        };
        let (old, idle, mid, new) = (
            finished("daily", 500).await,
            finished("ingest", 450).await,
            finished("daily", 100).await,
            finished("daily", 1).await,
        );
        // Series a was forecast by every run; b last by the old one.
        store
            .save_forecasts(old, &[forecast("a", 1.0), forecast("b", 2.0)])
            .await
            .unwrap();
        store
            .save_forecasts(mid, &[forecast("a", 3.0)])
            .await
            .unwrap();
        store
            .save_forecasts(new, &[forecast("a", 4.0)])
            .await
            .unwrap();
        // Budget ml evaluated by the old and the new run; web last by the old one.
        let (ml, web) = (evaluation("ml"), evaluation("web"));
        store
            .save_evaluations(old, &[ml.clone(), web.clone()])
            .await
            .unwrap();
        store
            .save_evaluations(new, std::slice::from_ref(&ml))
            .await
            .unwrap();
        for run in [old, new] {
            let payload = serde_json::json!({"run": run});
            store
                .save_alert(run, "slack", &payload, "sent")
                .await
                .unwrap();
            let applied = record(
                Operation::Apply,
                change(&format!("w{run}"), "ml"),
                Outcome::Done,
            );
            store.save_actions(run, &[applied]).await.unwrap();
        }
        // The object the old run changed is still held, so that run stays (its log goes).
        assert_eq!(store.throttled(None).await.unwrap().len(), 2, "{b}");
        for days in [40, 2] {
            assert!(
                store
                    .claim_tick("daily", ago(days), "replica")
                    .await
                    .unwrap()
            );
        }
        let before = PruneBefore {
            runs: ago(400),
            forecasts: ago(90),
            evaluations: ago(400),
            alerts: ago(400),
            claims: ago(30),
        };
        let pruned = store.prune(&before).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                runs: 1,
                forecasts: 6,
                evaluations: 1,
                actions: 1,
                alerts: 1,
                claims: 1,
            },
            "{b}: the idle run; a's old and mid forecasts; ml's old evaluation, alert and action"
        );
        let latest = store.latest_forecasts().await.unwrap();
        assert_eq!(latest, vec![forecast("a", 4.0), forecast("b", 2.0)], "{b}");
        let evaluations = store.latest_evaluations().await.unwrap();
        assert_eq!(evaluations, vec![ml, web], "{b}");
        let alerts = store.alerts().await.unwrap();
        assert_eq!(
            alerts.iter().map(|a| a.run_id).collect::<Vec<_>>(),
            [new],
            "{b}"
        );
        let runs: Vec<i64> = store.runs(10).await.unwrap().iter().map(|r| r.id).collect();
        assert_eq!(runs, [new, mid, old], "{b}: {idle} went");
        assert!(store.actions(old).await.unwrap().is_empty(), "{b}");
        assert_eq!(store.actions(new).await.unwrap().len(), 1, "{b}");
        // Pruning again finds nothing more.
        assert_eq!(
            store.prune(&before).await.unwrap(),
            Pruned::default(),
            "{b}"
        );
        store.close().await;
    }
}
