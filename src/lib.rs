#![warn(missing_docs)]
//! costcast forecasts cloud spend and acts before a budget is blown.
//!
//! # Layout
//!
//! ```text
//!  sources ──► store ──► forecast ──► budget ──► act ──► notify
//!  ingest/     store/    forecast/    budget/    act/    act/slack.rs
//! ```
//!
//! - [`config`]: the typed TOML configuration with `COSTCAST_*` overrides.
//! - [`domain`]: the parsed values every stage speaks in (`Day`, `Money`, `Budget`, ...).
//! - [`ingest`]: reads billing sources (FOCUS CSV/Parquet) into daily cost points.
//! - [`store`]: the only SQL; PostgreSQL and SQLite behind one API.
//! - [`forecast`]: pure forecasting (the calendar model and augurs models behind one trait,
//!   outlier smoothing, intervals, backtests).
//! - [`budget`]: pure projection of a budget's period total, its breach probability, its
//!   drivers, and the hysteresis that says how far up its action ladder it is.
//! - [`act`]: makes the cluster match each budget's ladder (kube-rs, recording originals on
//!   the objects) and restores it; Slack alerts.
//! - [`pipeline`]: the stage order (`run_once`), the leader lock, restore, and job files.
//! - [`report`]: tables, CSV and JSON of what the store holds, and each report read from it.
//! - [`api`]: the report API and page (`costcast serve`), reading the store.
//! - [`app`]: what every command, the server and the tests build once: the store, the HTTP
//!   client, the Kubernetes API (connected on first use) and the clock; serving.
//! - [`cli`]: the command line, one file per command, printing what the stages return.
//! - [`demo`]: the deterministic demo organisation and the explanation of its run.
//! - [`telemetry`]: logs and traces.

pub mod act;
pub mod api;
pub mod app;
pub mod budget;
pub mod cli;
pub mod config;
pub mod demo;
pub mod domain;
pub mod forecast;
pub mod ingest;
pub mod pipeline;
pub mod report;
pub mod standalone;
pub mod store;
pub mod telemetry;
