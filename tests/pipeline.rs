//! The whole pipeline on the demo organisation, on both stores.

mod common;

use chrono::{NaiveTime, Utc};
use common::*;
use costcast::config::Config;
use costcast::domain::RunOutcome;
use costcast::domain::{ActionKind, BudgetMode, Day, PlanOutcome, Status};
use costcast::pipeline::{RunOptions, Step, run_once};

fn as_of() -> Day {
    Day::parse("2025-11-20").unwrap()
}

fn demo_config(dir: &std::path::Path, db: &TestDb) -> Config {
    let files = costcast::demo::write(dir, as_of()).expect("demo writes");
    let url = db.url.clone();
    let env = move |k: &str| (k == "COSTCAST_DATABASE_URL").then(|| url.clone());
    Config::load(Some(&files.config), &env).expect("demo config is valid")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_pipeline_predicts_a_breach_and_records_every_stage_on_both_stores() {
    let now = as_of()
        .date()
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
        .and_utc();
    for db in both_dbs().await {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(demo_config(dir.path(), &db)).await;
        let report = run_once(&ctx, "demo", &Step::ALL, now, &RunOptions::default())
            .await
            .expect("the demo pipeline runs");
        let b = db.backend;

        // Ingest: the stored total equals the export's, to the cent.
        let export = dir.path().join("billing/focus-demo.csv");
        let expected: f64 = independent_daily_sums(&export, "EffectiveCost")
            .values()
            .sum();
        let summary = ctx.store.cost_summary().await.unwrap();
        assert!(
            (summary.total - expected).abs() < 0.01,
            "{b}: stored {} vs export {expected}",
            summary.total
        );
        assert_eq!(summary.last_day, Some(as_of().add_days(-1)), "{b}");

        // Forecast: every target 45 days ahead, from the last trusted day (lag 1).
        let forecasts = ctx.store.latest_forecasts().await.unwrap();
        assert!(forecasts.len() >= 10, "{b}: {} forecasts", forecasts.len());
        for f in &forecasts {
            assert_eq!(f.points.len(), 45, "{b} {}", f.series);
            assert_eq!(f.history_end, as_of().add_days(-2), "{b} {}", f.series);
            assert!(
                f.points
                    .iter()
                    .all(|p| p.lo95 >= 0.0 && p.lo95 <= p.lo80 && p.hi80 <= p.hi95)
            );
        }
        assert!(
            forecasts.iter().any(|f| f.series == "budget:ml-team"),
            "{b}"
        );

        // Anomalies: the runaway jobs are found.
        let anomalies = ctx.store.latest_anomalies(None, None).await.unwrap();
        assert!(
            !anomalies.is_empty(),
            "{b}: the runaway jobs were not flagged"
        );

        // Backtest: every forecast series scored on three 30-day windows of its own history,
        // and each budget carries its forecast's error.
        let accuracy = ctx.store.latest_accuracy().await.unwrap();
        assert_eq!(accuracy.len(), forecasts.len(), "{b}");
        for a in &accuracy {
            assert_eq!(
                (a.model.as_str(), a.windows, a.horizon),
                ("calendar", 3, 30),
                "{b}"
            );
            assert!((0.0..=1.0).contains(&a.coverage80), "{b}: {a:?}");
        }
        for e in &report.evaluations {
            let scored = accuracy
                .iter()
                .find(|a| a.series == format!("budget:{}", e.budget))
                .and_then(|a| a.total_error);
            assert!(scored.is_some(), "{b}: {} has no backtest", e.budget);
            assert_eq!(e.forecast_error, scored, "{b}");
        }

        // Budgets: three, the ML team's in breach, stored as evaluated.
        assert_eq!(report.evaluations.len(), 3, "{b}");
        let ml = report
            .evaluations
            .iter()
            .find(|e| e.budget == "ml-team")
            .unwrap();
        assert_eq!(ml.status, Status::Breach, "{b}: {ml:?}");
        assert!(ml.projection.p_breach >= 0.8);
        assert!(
            ml.projection.lo80 <= ml.projection.mean && ml.projection.mean <= ml.projection.hi80
        );
        assert_eq!(ml.projection.reported_through, Some(as_of().add_days(-2)));
        assert!(
            ml.projection.actual_to_date > 0.0 && ml.projection.mean > ml.projection.actual_to_date
        );
        assert_eq!(ctx.store.latest_evaluations().await.unwrap(), {
            let mut e = report.evaluations.clone();
            e.sort_by(|a, b| a.budget.cmp(&b.budget));
            e
        });

        // Act: a first day in breach puts the first step of the ladder (alert) in effect,
        // in observe mode, recorded; nothing applied.
        assert_eq!(ml.steps, 1, "{b}");
        let planned = ctx.store.latest_planned_changes().await.unwrap();
        let ml_steps: Vec<_> = planned
            .iter()
            .filter(|(c, _)| c.budget == "ml-team")
            .collect();
        assert_eq!(ml_steps.len(), 1, "{b}: {planned:?}");
        assert_eq!(ml_steps[0].0.action, ActionKind::Alert, "{b}");
        assert!(
            planned
                .iter()
                .all(|(c, outcome)| c.mode == BudgetMode::Observe
                    && *outcome == PlanOutcome::Planned)
        );

        // Notify: the message is built and recorded, not sent (no webhook).
        let alerts = ctx.store.alerts().await.unwrap();
        assert_eq!(alerts.len(), 1, "{b}");
        assert_eq!(alerts[0].outcome, "not-configured");
        assert!(
            alerts[0].payload["text"]
                .as_str()
                .unwrap()
                .contains("ml-team")
        );

        let runs = ctx.store.runs(5).await.unwrap();
        assert_eq!(runs[0].outcome, RunOutcome::Ok, "{b}");
        assert_eq!(runs[0].detail.stages.len(), 5);
        assert_eq!(
            runs[0].detail.as_of.map(|d| d.to_string()).as_deref(),
            Some("2025-11-20"),
            "{b}: a replayed day is recorded as such"
        );
        ctx.store.close().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_stage_runs_alone_from_what_the_previous_one_stored() {
    let now = Utc::now();
    let db = sqlite_db();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(demo_config(dir.path(), &db)).await;
    let opts = RunOptions::default();
    // Forecasting an empty store fails and says what to run first.
    let err = run_once(&ctx, "forecast", &[Step::Forecast], now, &opts)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("run `costcast ingest` first"),
        "{err}"
    );
    for step in Step::ALL {
        run_once(&ctx, &step.to_string(), &[step], now, &opts)
            .await
            .unwrap();
    }
    let runs = ctx.store.runs(10).await.unwrap();
    assert_eq!(runs.len(), 6);
    assert_eq!(
        runs.iter().filter(|r| r.outcome == RunOutcome::Ok).count(),
        5
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_never_lists_changes_planned_by_an_earlier_run() {
    let now = as_of()
        .date()
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
        .and_utc();
    let db = sqlite_db();
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(demo_config(dir.path(), &db)).await;
    let first = run_once(&ctx, "daily", &Step::ALL, now, &RunOptions::default())
        .await
        .unwrap();
    assert!(!first.changes.is_empty());
    ctx.store.close().await;

    // The same budgets with their action ladders removed: nothing is planned any more.
    let text = std::fs::read_to_string(dir.path().join("costcast.toml")).unwrap();
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with("[[budgets.actions]]") {
            skipping = true;
        } else if line.starts_with('[') {
            skipping = false;
        }
        if !skipping {
            kept.push(line);
        }
    }
    let ctx = context(config(&kept.join("\n"), dir.path(), &db)).await;
    let second = run_once(&ctx, "daily", &Step::ALL, now, &RunOptions::default())
        .await
        .unwrap();
    assert!(second.changes.is_empty());
    let alert = second
        .alert
        .expect("ml-team still breaches, so there is an alert");
    let text = alert["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(text.contains("*ml-team* is *breach*"), "{text}");
    assert!(
        !text.contains("Planned"),
        "a stale plan reached the alert: {text}"
    );
}

/// A year of a steady bill (1,000 a weekday, 700 a weekend day, 4% noise) whose spend rises 50%
/// on 2025-06-10 and stays there, in the store in full: every later day is already stored, as
/// it is when a bill is replayed.
fn jump_bill() -> Vec<costcast::domain::CostPoint> {
    use costcast::domain::{Currency, Dimensions, Money};
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2025);
    let noise = Normal::new(0.0, 0.04).unwrap();
    let jump = Day::parse("2025-06-10").unwrap();
    let start = Day::parse("2024-06-01").unwrap();
    (0..395)
        .map(|t| {
            let day = start.add_days(t);
            let weekday = if day.weekday_index() >= 5 {
                700.0
            } else {
                1000.0
            };
            let level = if day >= jump { 1.5 } else { 1.0 };
            let dims = Dimensions {
                source: "billing".into(),
                provider: "AWS".into(),
                service: "EC2".into(),
                charge_category: "Usage".into(),
                ..Dimensions::default()
            };
            let wobble: f64 = noise.sample(&mut rng);
            let amount: f64 = weekday * level * wobble.exp();
            costcast::domain::CostPoint {
                day,
                dims,
                cost: Money::new((amount * 100.0).round() / 100.0, Currency::usd()),
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_jump_in_spend_breaches_its_budget_within_days_and_a_roomy_budget_never_does() {
    let points = jump_bill();
    let june = costcast::domain::DayRange::new(
        Day::parse("2025-06-01").unwrap(),
        Day::parse("2025-06-30").unwrap(),
    )
    .unwrap();
    let truth: f64 = points
        .iter()
        .filter(|p| june.contains(p.day))
        .map(|p| p.cost.amount)
        .sum();
    // Tight: the month overran it by 9%, and it is 25% over what June would have cost without
    // the jump. Roomy: 8% over what June really cost.
    // The blend (auto) follows the jump as fast as the calendar model: the backtest windows
    // that missed it do not widen a forecast that already knows it.
    for model in ["calendar", "auto"] {
        let toml = format!(
            r#"
[forecast]
model = "{model}"

[[sources]]
name = "billing"
kind = "focus"
path = "replayed.csv"

[[budgets]]
name = "tight"
amount = {tight:.2}
currency = "USD"

[[budgets]]
name = "roomy"
amount = {roomy:.2}
currency = "USD"
"#,
            tight = truth / 1.09,
            roomy = 1.08 * truth,
        );
        for db in both_dbs().await {
            let dir = tempfile::tempdir().unwrap();
            let ctx = context(config(&toml, dir.path(), &db)).await;
            let whole =
                costcast::domain::DayRange::new(points[0].day, points[points.len() - 1].day)
                    .unwrap();
            ctx.store
                .replace_costs("billing", whole, &points)
                .await
                .unwrap();
            let b = format!("{} {model}", db.backend);
            let mut first_breach = None;
            for as_of in june.days().skip(1) {
                let now = as_of
                    .date()
                    .and_time(NaiveTime::from_hms_opt(7, 0, 0).unwrap())
                    .and_utc();
                run_once(
                    &ctx,
                    "daily",
                    &[Step::Forecast, Step::Budgets],
                    now,
                    &RunOptions::default(),
                )
                .await
                .expect("the replayed day runs");
                let evaluations = ctx.store.latest_evaluations().await.unwrap();
                let of = |name: &str| {
                    evaluations
                        .iter()
                        .find(|e| e.budget == name)
                        .unwrap_or_else(|| panic!("{b}: no evaluation of {name} on {as_of}"))
                };
                let (tight, roomy) = (of("tight"), of("roomy"));
                // The replay sees nothing from its own day on: spend to date stops at the day
                // before the last trusted one, whatever the store holds.
                assert_eq!(tight.as_of, as_of, "{b}");
                let seen: f64 = points
                    .iter()
                    .filter(|p| june.contains(p.day) && p.day <= as_of.add_days(-2))
                    .map(|p| p.cost.amount)
                    .sum();
                assert!(
                    (tight.projection.actual_to_date - seen).abs() < 0.01,
                    "{b} {as_of}: spent {} vs {seen}",
                    tight.projection.actual_to_date
                );
                assert_ne!(roomy.status, Status::Breach, "{b} {as_of}: {roomy:?}");
                if tight.status == Status::Breach && first_breach.is_none() {
                    first_breach = Some(as_of);
                }
            }
            // Billing lags a day and today is never complete: the jump on the 10th is first seen on
            // the 12th (and warned of from the 13th). Six days of it (the 17th) take P(breach)
            // past 80%, and no day before does: until then the odds that it reverts, and the
            // outcomes between reverting and holding, keep the interval wide, and backtest
            // windows from before the jump may not narrow it.
            assert_eq!(
                first_breach,
                Some(Day::parse("2025-06-17").unwrap()),
                "{b}: first breach"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_yearly_budget_is_forecast_to_the_end_of_its_year_on_both_stores() {
    let points = jump_bill();
    let toml = r#"
[[sources]]
name = "billing"
kind = "focus"
path = "replayed.csv"

[forecast]
horizon_days = 30

[[budgets]]
name = "year"
amount = 400000
currency = "USD"
period = "yearly"
"#;
    let as_of = Day::parse("2025-06-20").unwrap();
    let now = as_of
        .date()
        .and_time(NaiveTime::from_hms_opt(7, 0, 0).unwrap())
        .and_utc();
    for db in both_dbs().await {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(config(toml, dir.path(), &db)).await;
        let whole =
            costcast::domain::DayRange::new(points[0].day, points[points.len() - 1].day).unwrap();
        ctx.store
            .replace_costs("billing", whole, &points)
            .await
            .unwrap();
        run_once(
            &ctx,
            "daily",
            &[Step::Forecast, Step::Budgets],
            now,
            &RunOptions::default(),
        )
        .await
        .expect("the run succeeds");
        let b = db.backend;
        // Every forecast reaches 31 December, not just the 30 configured days, so the year's
        // projection is forecast day by day rather than the 30th day repeated.
        let forecasts = ctx.store.latest_forecasts().await.unwrap();
        let year = forecasts
            .iter()
            .find(|f| f.series == "budget:year")
            .unwrap();
        assert_eq!(year.history_end, Day::parse("2025-06-18").unwrap(), "{b}");
        assert_eq!(
            year.points.last().map(|p| p.day),
            Day::parse("2025-12-31").ok(),
            "{b}"
        );
        let evaluation = &ctx.store.latest_evaluations().await.unwrap()[0];
        let period = evaluation.projection.period;
        assert_eq!(
            (period.start(), period.end()),
            (
                Day::parse("2025-01-01").unwrap(),
                Day::parse("2025-12-31").unwrap()
            ),
            "{b}"
        );
        assert_eq!(
            evaluation.projection.forecast_days, 196,
            "{b}: 19 June to 31 December"
        );
        let forecast_sum: f64 = year.points.iter().map(|p| p.mean).sum();
        assert!(
            (evaluation.projection.mean - evaluation.projection.actual_to_date - forecast_sum)
                .abs()
                < 0.01,
            "{b}: the projection is spend to date plus every forecast day"
        );
    }
}
