//! OpenTelemetry export, against the real binary and a stand-in collector: with
//! `[telemetry.otlp]` a run reaches the collector as one trace of its stages; without it nothing
//! is sent, even with the standard OTEL_* variables set; a collector that is down or refuses
//! costs the traces and never the run; a bad endpoint is refused before anything runs.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use costcast::config::DatabaseUrl;
use costcast::domain::RunOutcome;
use costcast::store::{RunRecord, Store};

/// `costcast run --job daily` on `config` and `db`, with `envs` set and no stray OTLP settings.
async fn run_daily(config: &Path, db: &TestDb, envs: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_costcast"))
        .arg("--config")
        .arg(config)
        .args(["run", "--job", "daily", "--jobs-dir"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs"))
        .env("COSTCAST_DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .env_remove("COSTCAST_OTLP_ENDPOINT")
        .env_remove("COSTCAST_SLACK_WEBHOOK_URL")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("OTEL_RESOURCE_ATTRIBUTES")
        .envs(envs.iter().copied())
        .output()
        .await
        .expect("costcast runs")
}

async fn runs(db: &TestDb) -> Vec<RunRecord> {
    let store = Store::connect(&DatabaseUrl::new(db.url.clone()))
        .await
        .unwrap();
    let runs = store.runs(10).await.unwrap();
    store.close().await;
    runs
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_reaches_the_configured_collector_as_one_trace_of_its_stages() {
    for db in both_dbs().await {
        let dir = tempfile::tempdir().unwrap();
        let (endpoint, collector) = otlp_collector::start().await;
        let config = demo_config(
            &demo_dir(dir.path()),
            "traced.toml",
            &format!("[telemetry.otlp]\nendpoint = \"{endpoint}\"\n"),
        );
        let out = run_daily(
            &config,
            &db,
            &[("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k1")],
        )
        .await;
        assert!(out.status.success(), "{}: {}", db.backend, stderr(&out));

        let stored = runs(&db).await;
        assert_eq!(stored.len(), 1, "{}", db.backend);
        let run = &stored[0];
        assert_eq!((run.job.as_str(), run.outcome.as_str()), ("daily", "ok"));
        assert!(collector.requests() >= 1);
        assert!(
            collector
                .content_types
                .lock()
                .unwrap()
                .iter()
                .all(|t| t == "application/x-protobuf")
        );

        let (run_span, stages) = collector.run_trace(run.id);
        assert_eq!(run_span.service_name, "costcast");
        assert_eq!(
            run_span.parent_span_id, "",
            "a run is the root of its trace"
        );
        assert_eq!(run_span.attributes["job"], "daily");
        assert_eq!(run_span.attributes["outcome"], "ok");
        assert!(!run_span.error);
        let steps: Vec<&str> = stages
            .iter()
            .map(|s| s.attributes["step"].as_str())
            .collect();
        assert_eq!(
            steps,
            ["ingest", "forecast", "budgets", "act", "notify", "prune"]
        );
        assert!(
            stages
                .iter()
                .all(|s| s.attributes["outcome"] == "ok" && !s.error)
        );
        // A stage's counts are attributes, equal to what the run recorded.
        let recorded = &run.detail.stages;
        for (i, stage) in stages.iter().enumerate() {
            let counts = &recorded[i].counts;
            assert!(!counts.is_empty(), "{}", stage.attributes["step"]);
            for (name, value) in counts {
                assert_eq!(
                    stage.attributes.get(&format!("costcast.{name}")),
                    Some(&value.to_string()),
                    "{}.{name}",
                    stage.attributes["step"]
                );
            }
        }
        assert!(recorded[0].counts["points_written"] > 10_000);
        // Work inside a stage nests under it: the one source read during ingest.
        let sources: Vec<_> = collector
            .spans()
            .into_iter()
            .filter(|s| s.name == "ingest")
            .collect();
        assert_eq!(sources.len(), 1);
        assert_eq!(sources[0].parent_span_id, stages[0].span_id);
        assert_eq!(sources[0].attributes["source"], "demo-focus");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_exported_unless_configured() {
    let db = sqlite_db();
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, collector) = otlp_collector::start().await;
    let config = demo_dir(dir.path()).join("costcast.toml");
    // The standard variables configure an export that is on; they do not turn it on.
    let out = run_daily(
        &config,
        &db,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint),
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(runs(&db).await[0].outcome, RunOutcome::Ok);
    assert_eq!(collector.requests(), 0);

    // COSTCAST_OTLP_ENDPOINT does turn it on, like the config key.
    let out = run_daily(&config, &db, &[("COSTCAST_OTLP_ENDPOINT", &endpoint)]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let latest = &runs(&db).await[0];
    let (run_span, _) = collector.run_trace(latest.id);
    assert_eq!(run_span.attributes["job"], "daily");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_is_down_or_refuses_costs_the_traces_not_the_run() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (refusing, refused) = otlp_collector::start_answering(400).await;
    for (endpoint, says) in [
        (closed.as_str(), "Connection refused"),
        (refusing.as_str(), "answered 400 Bad Request"),
    ] {
        let db = sqlite_db();
        let dir = tempfile::tempdir().unwrap();
        let config = demo_config(
            &demo_dir(dir.path()),
            "traced.toml",
            &format!("[telemetry.otlp]\nendpoint = \"{endpoint}\"\ntimeout_secs = 2\n"),
        );
        let out = run_daily(&config, &db, &[]).await;
        let err = stderr(&out);
        assert!(out.status.success(), "{endpoint}: {err}");
        let stored = runs(&db).await;
        assert_eq!(stored[0].outcome, RunOutcome::Ok, "{endpoint}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("ml-team"),
            "the report is printed"
        );
        let warning = format!("OTLP export to {endpoint}/v1/traces failed: ");
        assert_eq!(
            err.matches(&warning).count(),
            1,
            "one warning naming the collector: {err}"
        );
        assert!(err.contains(says), "{endpoint}: {err}");
    }
    // The refusing collector did get the spans.
    assert!(refused.spans().iter().any(|s| s.name == "run"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_endpoint_is_refused_before_anything_runs() {
    let db = sqlite_db();
    let dir = tempfile::tempdir().unwrap();
    let demo = demo_dir(dir.path());
    let out = run_daily(&demo.join("costcast.toml"), &db, &[]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    for (config, envs) in [
        (
            demo_config(
                &demo,
                "grpc.toml",
                "[telemetry.otlp]\nendpoint = \"grpc://collector:4317\"\n",
            ),
            vec![],
        ),
        (
            demo.join("costcast.toml"),
            vec![("COSTCAST_OTLP_ENDPOINT", "collector:4318")],
        ),
    ] {
        let out = run_daily(&config, &db, &envs).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains("telemetry.otlp.endpoint") && err.contains("not an http(s) address"),
            "{err}"
        );
    }
    assert_eq!(runs(&db).await.len(), 1, "the bad configs ran nothing");
}
