//! Slack delivery against a local webhook receiver that records what it got.

mod common;

use chrono::NaiveTime;
use common::slack_receiver::start;
use common::*;
use costcast::act::slack;
use costcast::config::{Config, Secret};
use costcast::domain::Day;
use costcast::pipeline::{RunOptions, Step, run_once};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_server_error_is_retried_and_the_payload_arrives_intact() {
    let (url, receiver) = start(vec![503]).await;
    let payload = json!({"text": "hello", "blocks": []});
    let attempts = slack::send(
        &costcast::app::http_client().expect("the HTTP client builds"),
        &Secret::new(url),
        &payload,
    )
    .await
    .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(
        *receiver.bodies.lock().unwrap(),
        vec![payload.clone(), payload]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_message_waits_for_retry_after_and_is_delivered() {
    let (url, receiver) = start(vec![429]).await;
    let started = std::time::Instant::now();
    let attempts = slack::send(
        &costcast::app::http_client().expect("the HTTP client builds"),
        &Secret::new(url),
        &json!({"text": "x"}),
    )
    .await
    .unwrap();
    assert_eq!(attempts, 2);
    assert_eq!(receiver.bodies.lock().unwrap().len(), 2);
    // Retry-After: 3 was honoured: the backoff alone would have waited 2 s.
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_secs(3), "{waited:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_message_is_not_retried_and_the_error_hides_the_webhook() {
    let (url, receiver) = start(vec![400]).await;
    let err = slack::send(
        &costcast::app::http_client().expect("the HTTP client builds"),
        &Secret::new(url.clone()),
        &json!({"text": "x"}),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("400"), "{err}");
    assert!(!err.contains(&url), "the webhook URL is a secret: {err}");
    assert_eq!(receiver.bodies.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pipeline_posts_one_block_kit_message_naming_the_breaching_budget() {
    let (url, receiver) = start(vec![]).await;
    let db = sqlite_db();
    let dir = tempfile::tempdir().unwrap();
    let as_of = Day::parse("2025-11-20").unwrap();
    let files = costcast::demo::write(dir.path(), as_of).unwrap();
    let db_url = db.url.clone();
    let env = move |k: &str| match k {
        "COSTCAST_DATABASE_URL" => Some(db_url.clone()),
        "COSTCAST_SLACK_WEBHOOK_URL" => Some(url.clone()),
        _ => None,
    };
    let ctx = context(Config::load(Some(&files.config), &env).unwrap()).await;
    let now = as_of
        .date()
        .and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap())
        .and_utc();
    // A dry run builds the message but sends nothing.
    run_once(
        &ctx,
        "daily",
        &Step::ALL,
        now,
        &RunOptions {
            dry_run: true,
            ..RunOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(receiver.bodies.lock().unwrap().is_empty());
    assert_eq!(ctx.store.alerts().await.unwrap()[0].outcome, "dry-run");

    run_once(&ctx, "daily", &Step::ALL, now, &RunOptions::default())
        .await
        .unwrap();

    let bodies = receiver.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert!(body["text"].as_str().unwrap().contains("ml-team"), "{body}");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let section = blocks.iter().find(|b| b["type"] == "section").unwrap();
    let text = section["text"]["text"].as_str().unwrap();
    assert!(text.contains("*ml-team* is *breach*"), "{text}");
    assert!(text.contains("observe mode: nothing is changed"), "{text}");
    assert!(text.contains("Scope: team in [ml]"), "{text}");
    assert!(text.contains("Drivers: "), "{text}");
    let alerts = ctx.store.alerts().await.unwrap();
    assert_eq!(alerts[1].outcome, "sent");
    assert_eq!(&alerts[1].payload, body);

    // The same status on a later run of the same day: no second message.
    run_once(&ctx, "daily", &Step::ALL, now, &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(receiver.bodies.lock().unwrap().len(), 1);
}
