//! The page the FinOps team reads (`GET /`): the budgets overview, then per budget a fan chart
//! of the period's spend, its drivers and its actions, with CSV downloads. Server-rendered HTML
//! and SVG with one embedded stylesheet; no JavaScript.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::AppState;
use super::auth::{COOKIE, Scope, cookie_token};
use super::budgets::{BudgetDetail, BudgetSummary, detail_with, summaries};
use super::chart::{self, FanChart};
use super::error::ApiError;
use super::params::Params;
use crate::budget::fan;
use crate::domain::money::format_whole;
use crate::domain::{Anomaly, Day, Evaluation, Outcome, SeriesForecast};
use crate::forecast::targets::budget_series;
use crate::report::cube::CostCube;

const CSS: &str = include_str!("assets/costcast.css");

/// How long the page's cookie lasts.
const COOKIE_MAX_AGE_SECS: u32 = 12 * 3600;

/// The page's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/assets/costcast.css", get(css))
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// HTML-escapes text for element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a path or query component.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/assets/costcast.css\"></head>\
         <body><header><h1>costcast</h1><span>{}</span></header><main>{body}</main></body></html>",
        esc(title),
        esc(title)
    )
}

fn login(message: &str) -> Response {
    let body = format!(
        "<form class=\"login\" method=\"get\" action=\"/\"><h2>Sign in</h2>\
         <p class=\"muted\">{}</p><label for=\"token\">API token (read or admin)</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>\
         <button type=\"submit\">Open the report</button></form>",
        esc(message)
    );
    (
        StatusCode::UNAUTHORIZED,
        Html(shell("costcast — sign in", &body)),
    )
        .into_response()
}

/// The page's query: a sign-in token. Other parameters are ignored rather than refused, since
/// a link into the page from a chat or a dashboard may carry its own.
#[derive(Debug, Deserialize)]
struct SignIn {
    token: Option<String>,
}

async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(query): Params<SignIn>,
) -> Response {
    // `?token=` signs in: keep it in a cookie and drop it from the address bar at once.
    if let Some(token) = query.token {
        if state.tokens.scope_of(&token).is_none() {
            return login("That token is not one this server knows.");
        }
        let cookie = format!(
            "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={COOKIE_MAX_AGE_SECS}"
        );
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_string()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response();
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let scope: Option<Scope> = bearer
        .or_else(|| cookie_token(&headers))
        .and_then(|t| state.tokens.scope_of(&t));
    if scope.is_none() {
        return login("This page needs an API token; `costcast demo --serve` prints one.");
    }
    match render(&state).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => e.into_response(),
    }
}

fn money(v: Option<f64>) -> String {
    v.map(format_whole).unwrap_or_else(|| "—".into())
}

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{:.0}%", v * 100.0))
        .unwrap_or_else(|| "—".into())
}

async fn render(state: &AppState) -> Result<String, ApiError> {
    let all = summaries(state).await?;
    let mut body = overview(&all);
    let cube = state.cube();
    let anomalies = state.ctx.store.latest_anomalies(None, None).await?;
    for (b, evaluation) in &all {
        let detail = detail_with(state, b.clone(), evaluation.clone()).await?;
        let forecast = state.ctx.store.forecast_of(&budget_series(&b.name)).await?;
        let forecast = forecast.as_ref().map(|(f, _)| f);
        let svg = budget_chart(
            state,
            &cube,
            &anomalies,
            &detail,
            evaluation.as_ref(),
            forecast,
        );
        let says = forecast.map(|f| shape_text(&f.shape));
        section(&mut body, &detail, says.as_deref(), &svg);
    }
    let title = format!(
        "{} budgets · data through {}",
        all.len(),
        cube.last_day()
            .map(|d| d.to_string())
            .unwrap_or_else(|| "—".into())
    );
    Ok(shell(&title, &body))
}

/// The budgets table, each budget's monthly plan, and the charts' legend.
fn overview(all: &[(BudgetSummary, Option<Evaluation>)]) -> String {
    let mut body = String::new();
    body.push_str(
        "<h2>Budgets</h2><table class=\"budgets\"><thead><tr><th>Budget</th><th>Status</th>\
         <th class=\"num\">Spent</th><th class=\"num\">Projected</th><th class=\"num\">Budget</th>\
         <th class=\"num\">Projected / budget</th><th class=\"num\">P(breach)</th>\
         <th class=\"num\">Days left</th><th>Mode</th></tr></thead><tbody>",
    );
    for (b, _) in all {
        body.push_str(&format!(
            "<tr class=\"budget-row\" data-budget=\"{n}\"><td><a href=\"#budget-{id}\">{n}</a></td>\
             <td><span class=\"status status-{s}\">{s}{step}</span></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{} {}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            money(b.spent_to_date),
            money(b.projected),
            format_whole(b.amount),
            esc(&b.currency),
            pct(b.projected_ratio),
            pct(b.p_breach),
            b.days_left
                .map(|d| d.to_string())
                .unwrap_or_else(|| "—".into()),
            esc(&b.mode),
            n = esc(&b.name),
            id = enc(&b.name),
            s = esc(&b.status),
            step = if b.steps > 0 {
                format!(" · step {}", b.steps)
            } else {
                String::new()
            },
        ));
    }
    body.push_str("</tbody></table>");
    for (b, _) in all {
        if let Some(plan) = &b.plan {
            body.push_str(&format!(
                "<p class=\"plan\">{}: this month projected {} of {} {} planned \
                 (P(over) {})</p>",
                esc(&b.name),
                format_whole(plan.projected),
                format_whole(plan.planned),
                esc(&b.currency),
                pct(Some(plan.p_over)),
            ));
        }
    }
    body.push_str(
        "<p class=\"legend\"><span><i style=\"background:#1b2a3a\"></i>spend to date</span>\
         <span><i style=\"background:#1b2a3a;opacity:.5\"></i>forecast mean</span>\
         <span><i style=\"background:#9fc0ee\"></i>80% band</span>\
         <span><i style=\"background:#cfe0f7\"></i>95% band</span>\
         <span><i style=\"background:#c62828\"></i>budget</span>\
         <span><i style=\"background:#d97706\"></i>anomaly</span>\
         <span><i style=\"background:#7c3aed\"></i>action</span>\
         <span><i style=\"background:#b8c4d0\"></i>daily spend</span></p>",
    );
    body
}

/// One budget's fan chart: the period's actual and forecast spend, its anomalies and the days
/// actions were made.
fn budget_chart(
    state: &AppState,
    cube: &CostCube,
    anomalies: &[Anomaly],
    detail: &BudgetDetail,
    evaluation: Option<&Evaluation>,
    forecast: Option<&SeriesForecast>,
) -> String {
    let b = &detail.summary;
    let budget = state.ctx.config.budgets.iter().find(|x| x.name == b.name);
    let fan_points = match (evaluation, budget) {
        (Some(e), Some(budget)) => {
            let period = e.projection.period;
            let actuals = cube.daily(&budget.scope, period.start(), period.end());
            fan(period, &actuals, forecast)
        }
        _ => Vec::new(),
    };
    let series = budget_series(&b.name);
    let marks: Vec<(Day, f64, f64)> = anomalies
        .iter()
        .filter(|a| a.series == series)
        .map(|a| (a.day, a.actual, a.expected))
        .collect();
    let actions: Vec<(Day, String)> = detail
        .actions
        .iter()
        .filter(|a| a.outcome == Outcome::Done)
        .map(|a| (Day::from_date(a.at.date_naive()), a.description.clone()))
        .collect();
    chart::render(&FanChart {
        budget: &b.name,
        fan: &fan_points,
        amount: b.amount,
        currency: &b.currency,
        as_of: b.as_of,
        anomalies: &marks,
        actions: &actions,
    })
}

/// What the forecast found in a budget's series, in one line.
fn shape_text(shape: &crate::domain::SeriesShape) -> String {
    let mut parts = Vec::new();
    if let (Some(trend), Some(percent)) = (shape.trend, shape.trend_percent_per_month) {
        parts.push(format!("{} ({percent:+.0}% a month)", trend.as_str()));
    }
    if let Some(s) = crate::report::seasonality(shape) {
        parts.push(s);
    }
    if let Some(c) = shape.change {
        parts.push(c.to_string());
    }
    match parts.is_empty() {
        true => "no pattern yet".into(),
        false => parts.join(" · "),
    }
}

fn section(body: &mut String, d: &BudgetDetail, says: Option<&str>, svg: &str) {
    let b = &d.summary;
    let name = enc(&b.name);
    body.push_str(&format!(
        "<section class=\"budget\" id=\"budget-{name}\" data-budget=\"{n}\"><h2>{n} \
         <span class=\"status status-{s}\">{s}</span></h2><p class=\"muted\">{} period {} to {} · \
         projected {} {} (80%: {} to {}) against {} · P(breach) {} · {} mode</p>{svg}",
        esc(&b.period),
        b.period_start.map(|d| d.to_string()).unwrap_or_default(),
        b.period_end.map(|d| d.to_string()).unwrap_or_default(),
        money(b.projected),
        esc(&b.currency),
        money(b.projected_lo80),
        money(b.projected_hi80),
        format_whole(b.amount),
        pct(b.p_breach),
        esc(&b.mode),
        n = esc(&b.name),
        s = esc(&b.status),
    ));
    if let Some(says) = says {
        body.push_str(&format!("<p class=\"shape\">Spend is {}</p>", esc(says)));
    }
    drivers_table(body, d, &name);
    ladder_table(body, d);
    actions_table(body, d, &name);
    body.push_str("</section>");
}

fn drivers_table(body: &mut String, d: &BudgetDetail, name: &str) {
    body.push_str(&format!("<h3>Top drivers<a class=\"csv\" href=\"/api/v1/budgets/{name}/drivers?format=csv\">CSV</a></h3>\
         <table class=\"drivers\"><thead><tr><th>Series</th><th class=\"num\">Projected</th>\
         <th class=\"num\">Last period</th><th class=\"num\">Rise</th></tr></thead><tbody>"
    ));
    if d.drivers.is_empty() {
        body.push_str(
            "<tr><td colspan=\"4\" class=\"muted\">No drivers: nothing in scope rose.</td></tr>",
        );
    }
    for r in &d.drivers {
        body.push_str(&format!("<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            esc(&r.series),
            format_whole(r.projected),
            format_whole(r.previous),
            format_whole(r.rise)
        ));
    }
    body.push_str("</tbody></table>");
}

fn ladder_table(body: &mut String, d: &BudgetDetail) {
    if !d.ladder.is_empty() {
        body.push_str("<h3>Action ladder</h3><table class=\"ladder\"><tbody>");
        for step in &d.ladder {
            body.push_str(&format!(
                "<tr><td>step {}</td><td>{}</td><td>{}</td></tr>",
                step.step,
                esc(&step.description),
                if step.in_effect { "in effect" } else { "" }
            ));
        }
        body.push_str("</tbody></table>");
    }
}

fn actions_table(body: &mut String, d: &BudgetDetail, name: &str) {
    body.push_str(&format!("<h3>Recent actions<a class=\"csv\" href=\"/api/v1/actions?budget={name}&amp;format=csv\">CSV</a></h3>\
         <table class=\"actions\"><thead><tr><th>When</th><th>Step</th><th>Object</th><th>Outcome</th>\
         <th>What</th></tr></thead><tbody>"
    ));
    if d.actions.is_empty() {
        body.push_str("<tr><td colspan=\"5\" class=\"muted\">No actions recorded.</td></tr>");
    }
    for a in d.actions.iter().take(20) {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} {}/{}</td><td>{}</td><td>{}</td></tr>",
            a.at.format("%Y-%m-%d %H:%M"),
            a.step,
            a.kind.as_str(),
            esc(&a.namespace),
            esc(&a.name),
            a.outcome.as_str(),
            esc(&a.description)
        ));
    }
    body.push_str("</tbody></table>");
}
