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
//! - [`act`]: makes the cluster match each budget's ladder: a pure plan (what each object
//!   should become, given the changes held) and an executor (kube-rs, recording originals on
//!   the objects) that carries it out and restores; Slack alerts.
//! - [`pipeline`]: the stage order (`run_once`), the recorded run and leader guards, restore,
//!   and job files.
//! - [`report`]: one read model per report, rendered to table, CSV and JSON for the CLI and the
//!   API alike, and the in-memory cost cube the cost reports query.
//! - [`api`]: the report API and page (`costcast serve`): typed query parameters, handlers that
//!   render `report` models.
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
