use super::*;
use crate::pipeline::Step;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::sync::Notify;

/// A run that takes a lock and holds it until its gate opens or it is stopped; it
/// releases the lock however it ends, as `run_once` does.
#[derive(Default)]
struct Gated {
    lock: Arc<AtomicBool>,
    started: Arc<Notify>,
    gate: Arc<Notify>,
    /// Whether the stage ignores a polite stop (a long stage) and needs the abort.
    stubborn: bool,
    /// Whether the run ignores even the abort (hung in a call that never returns).
    hung: bool,
    runs: Arc<AtomicUsize>,
    skipped: Arc<Mutex<Vec<(String, String)>>>,
    ended: Arc<Mutex<Vec<&'static str>>>,
}

impl Runner for Gated {
    fn run(&self, _name: &str, _job: &Job, stop: Stop) -> BoxFuture {
        let (lock, started, gate) = (self.lock.clone(), self.started.clone(), self.gate.clone());
        let (stubborn, hung, ended) = (self.stubborn, self.hung, self.ended.clone());
        self.runs.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            assert!(!lock.swap(true, Ordering::SeqCst), "lock already held");
            started.notify_one();
            let how = if hung {
                std::future::pending::<()>().await;
                "never"
            } else if stubborn {
                tokio::select! {
                    () = gate.notified() => "finished",
                    () = stop.aborted() => "interrupted",
                }
            } else {
                tokio::select! {
                    () = gate.notified() => "finished",
                    () = stop.finishing() => "stopped after its stage",
                }
            };
            lock.store(false, Ordering::SeqCst);
            ended.lock().unwrap().push(how);
        })
    }

    fn skipped(&self, name: &str, running: &str) -> BoxFuture {
        self.skipped
            .lock()
            .unwrap()
            .push((name.into(), running.into()));
        Box::pin(async {})
    }
}

fn jobs() -> Vec<(String, Job)> {
    ["daily", "ingest-frequent"]
        .into_iter()
        .map(|n| {
            let job = Job {
                schedule: super::super::job::Schedule::parse("0 * * * * *").unwrap(),
                steps: vec![Step::Ingest],
                source_kinds: Vec::new(),
            };
            (n.to_string(), job)
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_overlapping_trigger_is_skipped_and_recorded_not_stacked() {
    let runner = Gated::default();
    let (gate, started, skipped, runs) = (
        runner.gate.clone(),
        runner.started.clone(),
        runner.skipped.clone(),
        runner.runs.clone(),
    );
    let daemon = Daemon::new(runner, jobs());
    assert_eq!(daemon.trigger("daily"), Triggered::Started);
    started.notified().await;
    assert_eq!(
        daemon.trigger("ingest-frequent"),
        Triggered::Skipped {
            running: "daily".into()
        }
    );
    assert_eq!(
        daemon.trigger("daily"),
        Triggered::Skipped {
            running: "daily".into()
        }
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(
        *skipped.lock().unwrap(),
        [
            ("ingest-frequent".to_string(), "daily".to_string()),
            ("daily".to_string(), "daily".to_string())
        ]
    );
    gate.notify_one();
    while daemon.busy() {
        tokio::task::yield_now().await;
    }
    assert_eq!(daemon.trigger("ingest-frequent"), Triggered::Started);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

type Ended = Arc<Mutex<Vec<&'static str>>>;

/// A daemon over `runner` with a `daily` run started: the daemon, the run's lock and how
/// its runs ended.
async fn daily_started(runner: Gated) -> (Arc<Daemon<Gated>>, Arc<AtomicBool>, Ended) {
    let (started, lock, ended) = (
        runner.started.clone(),
        runner.lock.clone(),
        runner.ended.clone(),
    );
    let daemon = Daemon::new(runner, jobs());
    assert_eq!(daemon.trigger("daily"), Triggered::Started);
    started.notified().await;
    assert!(lock.load(Ordering::SeqCst));
    (daemon, lock, ended)
}

#[tokio::test(start_paused = true)]
async fn a_stop_lets_the_stage_finish_then_refuses_new_runs() {
    let (daemon, lock, ended) = daily_started(Gated::default()).await;
    let begun = tokio::time::Instant::now();
    assert_eq!(
        daemon.shutdown(Duration::from_secs(25)).await,
        Stopped::Finished
    );
    // The polite stop needed no waiting on the clock at all.
    assert_eq!(begun.elapsed(), Duration::ZERO);
    assert!(!lock.load(Ordering::SeqCst), "the lock is released");
    assert_eq!(*ended.lock().unwrap(), ["stopped after its stage"]);
    assert_eq!(daemon.trigger("daily"), Triggered::Refused);
}

#[tokio::test(start_paused = true)]
async fn a_stage_that_outlasts_the_grace_is_interrupted_and_releases_the_lock() {
    let (daemon, lock, ended) = daily_started(Gated {
        stubborn: true,
        ..Gated::default()
    })
    .await;
    let begun = tokio::time::Instant::now();
    let grace = Duration::from_secs(10);
    assert_eq!(daemon.shutdown(grace).await, Stopped::Interrupted);
    // Interrupted at four fifths of the grace period, and ended within it.
    assert_eq!(begun.elapsed(), Duration::from_secs(8));
    assert!(!lock.load(Ordering::SeqCst));
    assert_eq!(*ended.lock().unwrap(), ["interrupted"]);
}

#[tokio::test(start_paused = true)]
async fn a_run_that_ignores_the_abort_is_dropped_at_the_end_of_the_grace() {
    let (daemon, _, _) = daily_started(Gated {
        hung: true,
        ..Gated::default()
    })
    .await;
    let begun = tokio::time::Instant::now();
    assert_eq!(
        daemon.shutdown(Duration::from_secs(10)).await,
        Stopped::Abandoned
    );
    assert_eq!(begun.elapsed(), Duration::from_secs(10));
    assert!(!daemon.busy());
}

#[tokio::test(start_paused = true)]
async fn an_injected_shutdown_ends_the_scheduler_with_nothing_running() {
    let runner = Gated::default();
    let runs = runner.runs.clone();
    let daemon = Daemon::new(runner, jobs());
    let stopped = run(daemon.clone(), async {}, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(stopped, Stopped::Idle);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(daemon.trigger("daily"), Triggered::Refused);
}
