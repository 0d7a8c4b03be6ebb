//! `costcast run --job NAME` (what a CronJob runs) and `costcast migrate`, and the one way
//! every command runs pipeline steps: as a recorded run, with its summary line.

use std::path::PathBuf;
use std::time::Instant;

use chrono::{DateTime, Utc};
use clap::Args;

use super::{Failure, print};
use crate::app::App;
use crate::app::serve::shutdown_signal;
use crate::pipeline::{self, Job, RunOptions, RunReport, Step, Stop};

/// Options of `costcast run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job's name.
    #[arg(long)]
    job: String,
    /// Folder holding job files (default: daemon.jobs_dir, `jobs`).
    #[arg(long, value_name = "DIR")]
    jobs_dir: Option<PathBuf>,
    /// Plan and build alerts, but apply and send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs the job's steps once and prints what they did.
pub async fn run(app: &App, args: RunArgs, now: DateTime<Utc>) -> Result<(), Failure> {
    let dir = args
        .jobs_dir
        .as_deref()
        .unwrap_or(&app.config.daemon.jobs_dir);
    let job = Job::load(dir, &args.job).map_err(|e| Failure::usage(e.to_string()))?;
    let options = RunOptions {
        dry_run: args.dry_run,
        source_kinds: job.source_kinds,
        stop: stop_on_signal(app.config.daemon.shutdown_grace),
        ..RunOptions::default()
    };
    let report = execute(app, &args.job, &job.steps, now, &options).await?;
    print::run(&report);
    Ok(())
}

/// Says the database is migrated (connecting the app applied what was pending) and drops
/// what it holds for sources no longer configured.
pub async fn migrate(app: &App) -> Result<(), Failure> {
    let dropped = pipeline::drop_unconfigured(app)
        .await
        .map_err(Failure::run)?;
    for source in &dropped {
        println!("Dropped the data of source {source}: it is no longer configured.");
    }
    println!(
        "Database {} ({}) is up to date.",
        app.config.database_url.redacted(),
        app.store.backend()
    );
    Ok(())
}

/// Runs `steps` as one recorded run of `job` and prints its summary line. A run that went on
/// without some sources prints what it did and fails naming them.
pub async fn execute(
    app: &App,
    job: &str,
    steps: &[Step],
    now: DateTime<Utc>,
    options: &RunOptions,
) -> Result<RunReport, Failure> {
    let started = Instant::now();
    let summary = |report: &RunReport| {
        eprintln!(
            "{}",
            print::summary_line(report, started.elapsed().as_secs_f64())
        );
    };
    match pipeline::run_once(app, job, steps, now, options).await {
        Ok(report) => {
            summary(&report);
            Ok(report)
        }
        Err(mut e) => {
            if let Some(report) = e.partial.take() {
                summary(&report);
                print::run(&report);
            }
            Err(Failure::run(e))
        }
    }
}

/// A stop that SIGTERM or SIGINT asks for (a CronJob pod being deleted): the stage in progress
/// may finish for four fifths of `grace`, then it is interrupted, so the pod exits before the
/// kubelet kills it.
fn stop_on_signal(grace: std::time::Duration) -> Stop {
    let stop = Stop::new();
    let signalled = stop.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        signalled.finish();
        tokio::time::sleep(grace.mul_f64(0.8)).await;
        signalled.abort();
    });
    stop
}
