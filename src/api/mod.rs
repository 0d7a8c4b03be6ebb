//! The report API and page (`costcast serve`): axum routes over what the store holds, bearer
//! tokens with a read and an admin scope, JSON or CSV, an OpenAPI document generated from the
//! handlers themselves, `/metrics`, and health probes. It reads; its writes are asking `act`
//! to restore an object and setting a budget's mode.

mod admin;
mod auth;
mod budgets;
mod chart;
mod costs;
mod error;
mod forecasts;
mod health;
mod logs;
mod page;
mod params;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Info, OpenApi as OpenApiDoc};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use auth::{Scope, Tokens};
pub use error::{ApiError, ErrorBody};

use crate::app::App;
use crate::report::cube::CostCube;
use crate::store::StoreError;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// Config, store and clients.
    pub ctx: Arc<App>,
    /// The configured tokens.
    pub tokens: Arc<Tokens>,
    /// The stored costs in memory, swapped whole when another run finishes.
    pub cube: Arc<RwLock<Arc<CostCube>>>,
    /// The OpenAPI document generated from the routes, filled in by [`router`].
    pub openapi: Arc<String>,
}

impl AppState {
    /// The current cost cube.
    pub fn cube(&self) -> Arc<CostCube> {
        match self.cube.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Rebuilds the cube whenever the cost data has changed, checked every `api.refresh_secs`.
pub async fn refresh_cube(state: AppState) {
    let every = Duration::from_secs(state.ctx.config.api.refresh_secs);
    loop {
        tokio::time::sleep(every).await;
        let current = state.cube().generation;
        match state.ctx.store.data_generation().await {
            Ok(g) if g == current => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "Cannot check the store for new cost data.");
                continue;
            }
        }
        match crate::report::read::cube(&state.ctx.store).await {
            Ok(cube) => {
                tracing::info!(
                    generation = cube.generation,
                    series = cube.series_count(),
                    points = cube.points(),
                    "Cost data reloaded."
                );
                if let Ok(mut slot) = state.cube.write() {
                    *slot = Arc::new(cube);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "Reloading cost data failed; serving the previous.")
            }
        }
    }
}

/// The state for `ctx`, with the costs loaded.
pub async fn state(ctx: Arc<App>) -> Result<AppState, StoreError> {
    let cube = crate::report::read::cube(&ctx.store).await?;
    Ok(AppState {
        tokens: Arc::new(Tokens::new(&ctx.config.api)),
        ctx,
        cube: Arc::new(RwLock::new(Arc::new(cube))),
        openapi: Arc::new(String::new()),
    })
}

fn document(mut doc: OpenApiDoc) -> OpenApiDoc {
    let mut info = Info::new("costcast report API", env!("CARGO_PKG_VERSION"));
    info.description = Some(
        "Cloud spend, forecasts, budgets and the actions costcast took. Send \
         `Authorization: Bearer TOKEN`: a read token for GET, an admin token for POST."
            .into(),
    );
    doc.info = info;
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    doc
}

/// The whole application: API, page, probes, with request ids, tracing and optional CORS. The
/// OpenAPI document is generated here from the very routes served.
pub fn router(state: AppState) -> Router {
    let read = OpenApiRouter::new()
        .routes(routes!(costs::costs))
        .routes(routes!(forecasts::forecasts))
        .routes(routes!(budgets::list))
        .routes(routes!(budgets::detail))
        .routes(routes!(budgets::drivers))
        .routes(routes!(logs::anomalies))
        .routes(routes!(logs::actions))
        .routes(routes!(logs::runs))
        .routes(routes!(forecasts::accuracy))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_read,
        ));
    let admin = OpenApiRouter::new()
        .routes(routes!(admin::restore))
        .routes(routes!(admin::set_mode))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    let metrics = OpenApiRouter::new()
        .routes(routes!(health::metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_metrics,
        ));
    let open = OpenApiRouter::new()
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz));
    let (api, doc) = read
        .merge(admin)
        .merge(metrics)
        .merge(open)
        .split_for_parts();
    // The document is built from our own types, which all serialise.
    let openapi = document(doc)
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    let state = AppState {
        openapi: Arc::new(openapi),
        ..state
    };

    let cors = &state.ctx.config.api.cors_origins;
    let mut app = api
        .merge(page::routes())
        .route("/api/v1/openapi.json", axum::routing::get(openapi_json))
        .fallback(not_found)
        .with_state(state.clone());
    if !cors.is_empty() {
        let origins: Vec<HeaderValue> = cors.iter().filter_map(|o| o.parse().ok()).collect();
        app = app.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]),
        );
    }
    app.layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
            let id = request
                .headers()
                .get(REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            // The path only: query strings can carry a page token.
            tracing::info_span!("request", id, method = %request.method(), path = request.uri().path())
        })
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn openapi_json(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.as_str().to_string(),
    )
        .into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; /api/v1/openapi.json lists them")
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    state: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    tokio::spawn(refresh_cube(state.clone()));
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A CSV response.
pub(crate) fn csv_response(body: String, filename: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
        .into_response()
}

/// Money as it goes out: to the cent, so sums match the source.
pub(crate) fn cents(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
