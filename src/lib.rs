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
//! - [`forecast`]: pure forecasting (MSTL + AutoETS, outlier smoothing, intervals).
//! - [`budget`]: pure projection of a budget's period total and its breach probability.
//! - [`act`]: plans Kubernetes changes from a budget's ladder; Slack alerts.
//! - [`pipeline`]: the stage order (`run_once`) and job files.
//! - [`report`]: tables, CSV and JSON of what the store holds.
//! - [`demo`]: the deterministic demo organisation.
//! - [`startup`], [`telemetry`], [`cli`]: wiring.

pub mod act;
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
pub mod startup;
pub mod store;
pub mod telemetry;
