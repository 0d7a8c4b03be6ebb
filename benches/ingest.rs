//! `scripts/bench ingest` runs this on a FOCUS CSV: costcast's FOCUS reader, timed, with the
//! process's peak memory. Prints one JSON line like the Python baseline does.

use std::path::PathBuf;
use std::time::Instant;

use costcast::config::{CostColumn, FocusSource};
use costcast::ingest::focus;

fn peak_rss_mb() -> f64 {
    // VmHWM is the resident set's high-water mark, in kB.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    // RUST_LOG=costcast=debug shows the time spent summing versus converting.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .ok_or_else(|| anyhow::anyhow!("usage: ingest FILE.csv"))?;
    let settings = FocusSource {
        path: PathBuf::from(path),
        cost_column: CostColumn::EffectiveCost,
        tag_keys: vec!["team".into(), "env".into()],
    };
    let started = Instant::now();
    let batch = focus::fetch("bench", &settings, None)?;
    let seconds = started.elapsed().as_secs_f64();
    let total: f64 = batch.points.iter().map(|p| p.cost.amount).sum();
    println!(
        "{{\"engine\": \"costcast {}\", \"seconds\": {seconds:.3}, \"rows\": {}, \"groups\": {}, \"total\": {total:.2}, \"peak_rss_mb\": {:.1}}}",
        env!("CARGO_PKG_VERSION"),
        batch.rows_read,
        batch.points.len(),
        peak_rss_mb()
    );
    Ok(())
}
