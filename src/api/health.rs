//! Probes and metrics: `/healthz` (the process answers), `/readyz` (the store answers; how old
//! the last run is), and `/metrics` in the Prometheus text format, read from the store on each
//! scrape so every replica reports the same numbers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::budgets::BudgetSummary;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::params::{NoParams, Params};
use crate::domain::{Day, RunOutcome, RunRecord, StageReport, Step};

/// `/healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// The costcast version.
    pub version: String,
}

/// The process is up. Open: no token needed.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses(
        (status = 200, description = "Up", body = Health),
        (status = 400, description = "A parameter was given; none is taken", body = ErrorBody),
    ))]
pub async fn healthz(_: Params<NoParams>) -> ApiResult<Json<Health>> {
    Ok(Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}

/// `/readyz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`, or `unavailable` when the store does not answer.
    pub status: String,
    /// `ok` or `unreachable`.
    pub store: String,
    /// The newest run, if any.
    pub last_run: Option<LastRun>,
}

/// The newest run, as `/readyz` reports it.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastRun {
    /// Run id.
    pub id: i64,
    /// Job.
    pub job: String,
    /// How it ended: `running` (or died), `ok`, `failed`, `interrupted` or `skipped`.
    #[schema(value_type = String)]
    pub outcome: RunOutcome,
    /// Seconds since it started.
    pub age_seconds: i64,
    /// Older than `api.stale_run_hours`: the daily job may not be running.
    pub stale: bool,
}

/// Ready when the store answers; reports the newest run's age. Open: no token needed.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 400, description = "A parameter was given; none is taken", body = ErrorBody),
        (status = 503, description = "The store does not answer", body = Readiness),
    ))]
pub async fn readyz(State(state): State<AppState>, _: Params<NoParams>) -> ApiResult<Response> {
    let store = &state.ctx.store;
    if let Err(e) = store.ping().await {
        tracing::warn!(error = %e, "Readiness: the store does not answer.");
        let body = Readiness {
            status: "unavailable".into(),
            store: "unreachable".into(),
            last_run: None,
        };
        return Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
    }
    let stale_after = state.ctx.config.api.stale_run_hours as i64 * 3600;
    let last_run = store.runs_page(1, 0).await?.into_iter().next().map(|r| {
        let age = (state.ctx.clock.now() - r.started_at).num_seconds().max(0);
        LastRun {
            id: r.id,
            job: r.job,
            outcome: r.outcome,
            age_seconds: age,
            stale: age > stale_after,
        }
    });
    Ok(Json(Readiness {
        status: "ready".into(),
        store: "ok".into(),
        last_run,
    })
    .into_response())
}

type Labels = Vec<(String, String)>;
type Gauges = Family<Labels, Gauge<f64, AtomicU64>>;

/// A registry being filled for one scrape.
struct Scrape {
    registry: Registry,
    families: BTreeMap<&'static str, Gauges>,
}

impl Scrape {
    fn gauge(&mut self, name: &'static str, help: &str, labels: &[(&str, &str)], value: f64) {
        let family = self.families.entry(name).or_insert_with(|| {
            let f = Gauges::default();
            self.registry.register(name, help, f.clone());
            f
        });
        let labels: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        family.get_or_create(&labels).set(value);
    }
}

/// Prometheus metrics: per budget projected ratio and P(breach), each job's and stage's last
/// run time and outcome, rows ingested, forecast error. Open or token-protected by config.
#[utoipa::path(get, path = "/metrics", tag = "health",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text", body = String),
        (status = 400, description = "A parameter was given; none is taken", body = ErrorBody),
        (status = 401, description = "No or an unknown token, when metrics need one", body = ErrorBody),
    ))]
pub async fn metrics(State(state): State<AppState>, _: Params<NoParams>) -> ApiResult<Response> {
    let mut s = Scrape {
        registry: Registry::with_prefix("costcast"),
        families: BTreeMap::new(),
    };
    let budgets = super::budgets::summaries(&state).await?;
    s.budgets(budgets.iter().map(|(b, _)| b));
    s.runs(&state.ctx.store.runs_page(200, 0).await?);
    for source in &state.ctx.config.sources {
        let (last_day, estimated) = state.ctx.store.source_history(&source.name).await?;
        s.source(&source.name, last_day, estimated.len());
    }
    let cube = state.cube();
    s.gauge(
        "cost_points",
        "Daily cost points held",
        &[],
        cube.points() as f64,
    );
    s.gauge(
        "cost_series",
        "Cost series held",
        &[],
        cube.series_count() as f64,
    );
    let mut body = String::new();
    encode(&mut body, &s.registry)
        .map_err(|e| ApiError::internal(format!("the metrics did not encode: {e}")))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

impl Scrape {
    /// Per budget: projected ratio, P(breach), ladder steps, held objects, status and error.
    fn budgets<'a>(&mut self, budgets: impl Iterator<Item = &'a BudgetSummary>) {
        for b in budgets {
            let l = [("budget", b.name.as_str())];
            if let Some(r) = b.projected_ratio {
                self.gauge(
                    "budget_projected_ratio",
                    "Projected period total over the budget amount",
                    &l,
                    r,
                );
            }
            if let Some(p) = b.p_breach {
                self.gauge(
                    "budget_breach_probability",
                    "Probability that the period total exceeds the budget",
                    &l,
                    p,
                );
            }
            self.gauge(
                "budget_steps",
                "Action ladder steps in effect",
                &l,
                f64::from(b.steps),
            );
            self.gauge(
                "budget_ladder_held",
                "1 while the budget's ladder is held because data it draws on is too old",
                &l,
                f64::from(u8::from(b.ladder_held)),
            );
            self.gauge(
                "budget_held_objects",
                "Kubernetes objects the budget holds changed",
                &l,
                b.held_objects as f64,
            );
            let status = [("budget", b.name.as_str()), ("status", b.status.as_str())];
            self.gauge(
                "budget_status",
                "1 for the budget's current status",
                &status,
                1.0,
            );
            if let Some(e) = b.forecast_error_pct {
                self.gauge(
                    "budget_forecast_error_percent",
                    "Backtest error of the budget's forecast, % of 30-day totals",
                    &l,
                    e,
                );
            }
        }
    }

    /// Per job, its newest finished run; per stage, its newest run.
    fn runs(&mut self, runs: &[RunRecord]) {
        let mut jobs_seen = BTreeSet::new();
        let mut stages_seen = std::collections::HashSet::new();
        let mut succeeded = BTreeSet::new();
        // A skipped run did nothing, so it says nothing about the job's health.
        // The label is `job_name`: Prometheus owns `job` (the scrape job) and would rename ours.
        for run in runs
            .iter()
            .filter(|r| !matches!(r.outcome, RunOutcome::Running | RunOutcome::Skipped))
        {
            let l = [("job_name", run.job.as_str())];
            if run.outcome == RunOutcome::Ok && succeeded.insert(run.job.clone()) {
                self.gauge(
                    "run_last_success_timestamp_seconds",
                    "When the job's newest successful run finished",
                    &l,
                    run.finished_at.unwrap_or(run.started_at).timestamp() as f64,
                );
            }
            if jobs_seen.insert(run.job.clone()) {
                self.gauge(
                    "run_last_start_timestamp_seconds",
                    "When the job's newest finished run started",
                    &l,
                    run.started_at.timestamp() as f64,
                );
                self.gauge(
                    "run_last_success",
                    "1 if the job's newest finished run succeeded",
                    &l,
                    f64::from(u8::from(run.outcome == RunOutcome::Ok)),
                );
            }
            for stage in &run.detail.stages {
                if stages_seen.insert(stage.step) {
                    self.stage(run, stage);
                }
            }
        }
    }

    fn stage(&mut self, run: &RunRecord, stage: &StageReport) {
        let l = [("stage", stage.step.as_str())];
        self.gauge(
            "stage_last_timestamp_seconds",
            "When the newest run of the stage started",
            &l,
            run.started_at.timestamp() as f64,
        );
        self.gauge(
            "stage_last_success",
            "1 if the newest run of the stage succeeded",
            &l,
            f64::from(u8::from(stage.error.is_none())),
        );
        self.gauge(
            "stage_last_duration_seconds",
            "How long the newest run of the stage took",
            &l,
            stage.millis as f64 / 1000.0,
        );
        if stage.step == Step::Ingest
            && let Some(&n) = stage.counts.get("points_written")
        {
            self.gauge(
                "ingest_last_points_written",
                "Daily cost points the newest ingest wrote",
                &[],
                n as f64,
            );
        }
    }

    /// A source's newest reported day and its days still estimated.
    fn source(&mut self, name: &str, last_day: Option<Day>, estimated: usize) {
        let l = [("source", name)];
        if let Some(day) = last_day {
            self.gauge(
                "source_last_day_timestamp_seconds",
                "Start (UTC) of the newest day the source has reported costs for",
                &l,
                day.date()
                    .and_time(chrono::NaiveTime::MIN)
                    .and_utc()
                    .timestamp() as f64,
            );
        }
        self.gauge(
            "source_estimated_days",
            "Days the source still marks as estimated (they are re-read)",
            &l,
            estimated as f64,
        );
    }
}
