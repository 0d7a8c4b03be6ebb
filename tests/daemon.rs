//! `costcast serve` as a daemon: its scheduler runs jobs on time, skips a run that would overlap
//! the one in progress, and on SIGTERM stops mid-run without leaving the leader lock held, and
//! with the interrupted run's trace sent to the OTLP collector.
//! On both stores, against the real binary.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use chrono::Timelike;
use common::*;
use costcast::domain::RunOutcome;
use costcast::pipeline::LEADER_LOCK;
use costcast::store::{RunRecord, Store};

const TOKEN: &str = "daemon-test-read-token-0123456789";

/// A Slack webhook that takes the request and never answers, so the run that posts it stays in
/// its notify stage, holding the leader lock, until it is stopped. Tells `tx` when a request
/// has arrived.
fn hanging_webhook() -> (String, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            if stream.read(&mut buf).is_ok_and(|n| n > 0) {
                let _ = tx.send(());
            }
            held.push(stream);
        }
    });
    (url, rx)
}

fn start_serve(config: &Path, jobs: &Path, db_url: &str, webhook: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_costcast"))
        .arg("--config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0", "--jobs-dir"])
        .arg(jobs)
        .env("COSTCAST_DATABASE_URL", db_url)
        .env("COSTCAST_SLACK_WEBHOOK_URL", webhook)
        .env("COSTCAST_API_READ_TOKENS", TOKEN)
        .env_remove("COSTCAST_API_ADMIN_TOKENS")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .expect("costcast runs");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut base = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("report page on ").nth(1) {
            base = rest.split('/').take(3).collect::<Vec<_>>().join("/").into();
            break;
        }
    }
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, base.expect("serve announces its address"))
}

async fn runs_of(store: &Store, job: &str) -> Vec<RunRecord> {
    let mut runs = store.runs(50).await.unwrap();
    runs.retain(|r| r.job == job);
    runs
}

/// Waits for `child` to exit, up to `limit` (a hang detector, not a timing assertion).
fn wait_exit(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(limit) {
        Ok(status) => status.unwrap(),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("costcast serve did not exit within {limit:?} of SIGTERM");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_runs_a_scheduled_job_on_time_skips_overlaps_and_stops_cleanly_mid_run() {
    for db in both_dbs().await {
        let dir = tempfile::tempdir().unwrap();
        // The demo's config, on a fresh database, with a short grace period, exporting traces.
        let (endpoint, collector) = otlp_collector::start().await;
        let config = demo_config(
            &demo_dir(dir.path()),
            "serve.toml",
            &format!(
                "[daemon]\nshutdown_grace_secs = 4\n[telemetry.otlp]\nendpoint = \"{endpoint}\"\n"
            ),
        );
        let jobs = dir.path().join("jobs");
        std::fs::create_dir(&jobs).unwrap();
        std::fs::write(
            jobs.join("tick.toml"),
            "schedule = \"*/2 * * * * *\"\nsteps = [\"ingest\", \"forecast\", \"budgets\", \"act\", \"notify\"]\n",
        )
        .unwrap();
        let (webhook, posted) = hanging_webhook();
        let (child, base) = start_serve(&config, &jobs, &db.url, &webhook);
        let pid = child.id();

        // The first tick runs the pipeline; its alert hangs in notify, with the lock held.
        posted
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("{}: no scheduled run reached notify", db.backend));
        let store = Store::connect(&costcast::config::DatabaseUrl::new(db.url.clone()))
            .await
            .unwrap();
        let runs = runs_of(&store, "tick").await;
        let run = runs.last().expect("the scheduled run is recorded");
        assert_eq!(run.outcome, RunOutcome::Running, "{}", db.backend);
        // On time: it started within a second and a half of an even second (the schedule).
        let offset =
            (run.started_at.second() % 2) as f64 + f64::from(run.started_at.nanosecond()) / 1e9;
        assert!(
            offset < 1.5,
            "{}: started {offset:.3} s after its tick",
            db.backend
        );
        assert!(
            store
                .acquire_leader(LEADER_LOCK, Duration::ZERO, Duration::from_secs(60))
                .await
                .unwrap()
                .is_none(),
            "{}: the running job holds the leader lock",
            db.backend
        );

        // The API answers while the job runs.
        let resp = reqwest::Client::new()
            .get(format!("{base}/api/v1/runs"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);

        // The next tick finds the run still going: skipped and recorded, not stacked.
        let mut skipped = Vec::new();
        for _ in 0..100 {
            skipped = runs_of(&store, "tick").await;
            skipped.retain(|r| r.outcome == RunOutcome::Skipped);
            if !skipped.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !skipped.is_empty(),
            "{}: no skipped run recorded",
            db.backend
        );
        assert!(
            skipped[0]
                .detail
                .skipped
                .as_deref()
                .is_some_and(|s| s.contains("still going")),
            "{:?}",
            skipped[0].detail
        );
        assert_eq!(
            runs_of(&store, "tick")
                .await
                .iter()
                .filter(|r| r.outcome == RunOutcome::Running)
                .count(),
            1,
            "{}: runs are never stacked",
            db.backend
        );

        // SIGTERM mid-run: the notify stage outlasts four fifths of the 4 s grace period, is
        // interrupted, the lock is released and the process exits 0.
        let killed = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = wait_exit(child, Duration::from_secs(30));
        assert!(status.success(), "{}: {status:?}", db.backend);

        let lock = store
            .acquire_leader(LEADER_LOCK, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(
            lock.is_some(),
            "{}: the leader lock was left held",
            db.backend
        );
        lock.unwrap().release(&store).await.unwrap();
        let runs = runs_of(&store, "tick").await;
        assert!(
            runs.iter().all(|r| r.outcome != RunOutcome::Running),
            "{runs:?}"
        );
        let interrupted = runs
            .iter()
            .find(|r| r.id == run.id)
            .expect("the run is still recorded");
        assert_eq!(
            interrupted.outcome,
            RunOutcome::Interrupted,
            "{}",
            db.backend
        );
        let outcomes: Vec<(&str, &str)> = interrupted
            .detail
            .stages
            .iter()
            .map(|s| (s.step.as_str(), s.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                ("ingest", "ok"),
                ("forecast", "ok"),
                ("budgets", "ok"),
                ("act", "ok"),
                ("notify", "interrupted")
            ],
            "{}",
            db.backend
        );
        let stages = &interrupted.detail.stages;
        assert!(stages[0].counts["points_written"] > 10_000);
        assert!(stages[4].started_at <= stages[4].finished_at && stages[4].error.is_some());

        // The interrupted run's trace was flushed to the collector on the way out; the API
        // requests served meanwhile were not traced.
        let (run_span, stage_spans) = collector.run_trace(run.id);
        assert!(collector.spans().iter().all(|s| s.name != "request"));
        assert_eq!(run_span.attributes["job"], "tick");
        assert_eq!(run_span.attributes["outcome"], "interrupted");
        assert!(run_span.error && run_span.status_message.starts_with("notify: "));
        let traced: Vec<(&str, &str, bool)> = stage_spans
            .iter()
            .map(|s| {
                (
                    s.attributes["step"].as_str(),
                    s.attributes["outcome"].as_str(),
                    s.error,
                )
            })
            .collect();
        assert_eq!(
            traced,
            [
                ("ingest", "ok", false),
                ("forecast", "ok", false),
                ("budgets", "ok", false),
                ("act", "ok", false),
                ("notify", "interrupted", true)
            ],
            "{}",
            db.backend
        );
        store.close().await;
    }
}

#[test]
fn the_deploy_configmap_holds_a_valid_config_and_jobs() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/kubernetes/configmap.yaml"
    ))
    .unwrap();
    let map: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
    let data = map["data"].as_object().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let jobs = dir.path().join("jobs");
    std::fs::create_dir(&jobs).unwrap();
    for (key, value) in data {
        let path = match key.as_str() {
            "costcast.toml" => dir.path().join(key),
            _ => jobs.join(key),
        };
        std::fs::write(path, value.as_str().unwrap()).unwrap();
    }
    let config = costcast::config::Config::load(Some(&dir.path().join("costcast.toml")), &|_| None)
        .unwrap_or_else(|e| panic!("configmap.yaml's costcast.toml: {e}"));
    assert_eq!(config.daemon.shutdown_grace, Duration::from_secs(25));
    assert!(config.api.metrics_public);
    let loaded = costcast::pipeline::job::load_all(&jobs).unwrap();
    let names: Vec<&str> = loaded.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["daily", "ingest-frequent", "weekly-backtest"]);
    // The ConfigMap's jobs are the shipped ones.
    let shipped =
        costcast::pipeline::job::load_all(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs")))
            .unwrap();
    assert_eq!(loaded, shipped);
}
