//! Slack alerts: a Block Kit message about budgets at risk, posted to an incoming webhook.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Secret;
use crate::domain::money::format_amount;
use crate::domain::{BudgetMode, Evaluation, PlannedChange, Status};

/// Why a message could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    /// Slack answered with an error status after every attempt.
    #[error("Slack answered {status} after {attempts} attempt(s): {body}")]
    Rejected {
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The last response body, cut to 200 characters.
        body: String,
    },
    /// The webhook could not be reached.
    #[error("cannot reach the Slack webhook after {attempts} attempt(s): {message}")]
    Unreachable {
        /// Attempts made.
        attempts: u32,
        /// The transport error, without the URL (it is a secret).
        message: String,
    },
}

/// Attempts per message, the first included.
const MAX_ATTEMPTS: u32 = 3;
/// Longest wait a `Retry-After` header is honoured for.
const MAX_RETRY_AFTER_SECS: u64 = 30;

/// The message for the budgets at risk, or `None` when every budget is ok.
pub fn build_message(
    evaluations: &[Evaluation],
    changes: &[PlannedChange],
    run_id: i64,
) -> Option<Value> {
    let mut at_risk: Vec<&Evaluation> = evaluations
        .iter()
        .filter(|e| e.status != Status::Ok)
        .collect();
    if at_risk.is_empty() {
        return None;
    }
    at_risk.sort_by(|a, b| {
        b.status
            .cmp(&a.status)
            .then(b.projection.p_breach.total_cmp(&a.projection.p_breach))
    });
    let breaches = at_risk
        .iter()
        .filter(|e| e.status == Status::Breach)
        .count();
    let warnings = at_risk.len() - breaches;
    let headline = match (breaches, warnings) {
        (0, w) => format!("{w} budget(s) at risk of overrun"),
        (b, 0) => format!("{b} budget(s) predicted to overrun"),
        (b, w) => format!("{b} budget(s) predicted to overrun, {w} at risk"),
    };
    let names: Vec<&str> = at_risk.iter().map(|e| e.budget.as_str()).collect();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": format!("costcast: {headline}")}
    })];
    for e in &at_risk {
        let p = &e.projection;
        let icon = if e.status == Status::Breach {
            ":red_circle:"
        } else {
            ":large_yellow_circle:"
        };
        let cur = e.amount.currency.as_str();
        let reported = p
            .reported_through
            .map(|d| format!(", billing reported through {d}"))
            .unwrap_or_default();
        let mut text = format!(
            "{icon} *{}* is *{}*: P(overrun) {:.0}%\nProjected {} {cur} (80%: {}–{}) against {} {cur} for {}\nMonth to date {} {cur}{reported}",
            e.budget,
            e.status,
            p.p_breach * 100.0,
            format_amount(p.mean),
            format_amount(p.lo80),
            format_amount(p.hi80),
            format_amount(e.amount.amount),
            p.period,
            format_amount(p.actual_to_date),
        );
        let mine: Vec<&PlannedChange> = changes.iter().filter(|c| c.budget == e.budget).collect();
        if !mine.is_empty() {
            let verb = if mine.iter().all(|c| c.mode == BudgetMode::Observe) {
                "Planned (observe mode: nothing was changed)"
            } else {
                "Changes"
            };
            text.push_str(&format!("\n{verb}:"));
            for c in mine {
                text.push_str(&format!("\n• {}. {}", c.step, c.description));
            }
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": format!("costcast run {run_id} · as of {}", at_risk[0].as_of)}]
    }));
    Some(json!({
        "text": format!("costcast: {headline}: {}", names.join(", ")),
        "blocks": blocks,
    }))
}

/// Posts `payload` to the webhook, retrying rate limits (honouring `Retry-After`), server
/// errors and connection failures.
///
/// The loop is hand-written: reqwest's retry policy has no backoff and ignores `Retry-After`,
/// which Slack sends with every 429.
pub async fn send(
    client: &reqwest::Client,
    webhook: &Secret,
    payload: &Value,
) -> Result<u32, SlackError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let wait = match client.post(webhook.expose()).json(payload).send().await {
            Ok(resp) if resp.status().is_success() => return Ok(attempt),
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let body: String = resp
                    .text()
                    .await
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                let retryable = status.as_u16() == 429 || status.is_server_error();
                if !retryable || attempt >= MAX_ATTEMPTS {
                    return Err(SlackError::Rejected {
                        status: status.as_u16(),
                        attempts: attempt,
                        body,
                    });
                }
                Duration::from_secs(
                    retry_after
                        .unwrap_or(1 << attempt)
                        .min(MAX_RETRY_AFTER_SECS),
                )
            }
            Err(e) => {
                if attempt >= MAX_ATTEMPTS {
                    return Err(SlackError::Unreachable {
                        attempts: attempt,
                        message: e.without_url().to_string(),
                    });
                }
                Duration::from_millis(500 << attempt)
            }
        };
        tracing::warn!(
            attempt,
            wait_ms = wait.as_millis() as u64,
            "Slack delivery failed; retrying."
        );
        tokio::time::sleep(wait).await;
    }
}
