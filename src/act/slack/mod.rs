//! Slack alerts: a Block Kit message about budgets whose status or actions changed, posted
//! to an incoming webhook.

use std::time::Duration;

use serde_json::{Value, json};

use crate::config::Secret;
use crate::domain::money::format_amount;
use crate::domain::{
    ActionRecord, Anomaly, Budget, BudgetMode, Evaluation, Operation, Outcome, PlannedChange,
    SeriesForecast, Status,
};
use crate::forecast::targets::budget_series;

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

/// Slack's limit on blocks per message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's limit on the text of one section block.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Objects listed per budget before the rest are counted.
const MAX_OBJECTS_LISTED: usize = 10;

/// What an alert is about.
pub struct Alert<'a> {
    /// The budgets to report, each at its newest evaluation.
    pub evaluations: &'a [Evaluation],
    /// The configured budgets, for their scope and ladder.
    pub budgets: &'a [Budget],
    /// The ladder steps in effect.
    pub changes: &'a [PlannedChange],
    /// What was done to objects.
    pub actions: &'a [ActionRecord],
    /// Anomalies found in the budgets' series this period.
    pub anomalies: &'a [Anomaly],
    /// The budgets' forecasts, for what their series did (a recent change of level).
    pub forecasts: &'a [SeriesForecast],
    /// The report page, when configured.
    pub report_url: Option<&'a str>,
    /// The run that built the message.
    pub run_id: i64,
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Cuts `lines` to fit one section: whole lines, then a count of those left out.
fn fit_section(lines: &[String]) -> String {
    let mut text = String::new();
    for (i, line) in lines.iter().enumerate() {
        let rest = lines.len() - i;
        let tail = format!("\n… and {rest} more");
        if text.len() + line.len() + 1 + tail.len() > MAX_SECTION_CHARS {
            text.push_str(&tail);
            return text;
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(line);
    }
    text
}

fn section(lines: &[String]) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": fit_section(lines)}})
}

fn headline(evaluations: &[Evaluation]) -> String {
    let n = |s: Status| evaluations.iter().filter(|e| e.status == s).count();
    let parts: Vec<String> = [
        (n(Status::Breach), "predicted to overrun"),
        (n(Status::Warn), "at risk"),
        (n(Status::Recovering), "recovering"),
        (n(Status::Ok), "back to ok"),
    ]
    .into_iter()
    .chain([(
        evaluations.iter().filter(|e| !e.lagging.is_empty()).count(),
        "on data that did not refresh",
    )])
    .filter(|(count, _)| *count > 0)
    .map(|(count, what)| format!("{count} budget(s) {what}"))
    .collect();
    parts.join(", ")
}

/// One line per source of the budget's scope that is behind: whether this run failed to read
/// it, how old its newest day is, and whether the ladder is held for it.
fn lagging_lines(e: &Evaluation) -> Vec<String> {
    e.lagging
        .iter()
        .map(|l| {
            let newest = match (l.newest_day, l.age_days(e.as_of)) {
                (Some(day), Some(1)) => format!("newest day {day}, 1 day old"),
                (Some(day), Some(age)) => format!("newest day {day}, {age} days old"),
                _ => "nothing stored".to_string(),
            };
            let failed = match l.refresh_failed {
                true => " did not refresh in this run",
                false => " is behind",
            };
            let held = match l.stale {
                true => ": too old to act on, the action ladder is held where it was",
                false => "",
            };
            format!(
                ":warning: Data from *{}*{failed} ({newest}){held}",
                l.source
            )
        })
        .collect()
}

fn budget_lines(a: &Alert, e: &Evaluation) -> Vec<String> {
    let budget = a.budgets.iter().find(|b| b.name == e.budget);
    let mut lines = standing_lines(e, budget);
    lines.extend(lagging_lines(e));
    lines.extend(pattern_lines(a, e));
    lines.extend(ladder_lines(a, e, budget));
    lines
}

/// Where the budget stands: status, scope, the projection against the amount, spend so far and
/// the month's plan.
fn standing_lines(e: &Evaluation, budget: Option<&Budget>) -> Vec<String> {
    let p = &e.projection;
    let icon = match e.status {
        Status::Breach => ":red_circle:",
        Status::Warn => ":large_yellow_circle:",
        Status::Recovering => ":large_orange_circle:",
        Status::Ok => ":large_green_circle:",
    };
    let cur = e.amount.currency.as_str();
    let mut lines = vec![format!(
        "{icon} *{}* is *{}*: P(overrun) {:.0}%",
        e.budget,
        e.status,
        p.p_breach * 100.0
    )];
    if let Some(b) = budget {
        lines.push(format!(
            "Scope: {} · {} · {} mode",
            b.scope,
            b.period.describe(),
            b.mode.as_str()
        ));
    }
    let over = p.mean - e.amount.amount;
    let over = if over > 0.0 {
        format!(", *{} {cur} over*", format_amount(over))
    } else {
        String::new()
    };
    lines.push(format!(
        "Projected {} {cur} (80%: {}–{}) against {} {cur} for {}{over}",
        format_amount(p.mean),
        format_amount(p.lo80),
        format_amount(p.hi80),
        format_amount(e.amount.amount),
        p.period,
    ));
    let reported = p
        .reported_through
        .map(|d| format!(", billing reported through {d}"))
        .unwrap_or_default();
    lines.push(format!(
        "Spent so far {} {cur}{reported}",
        format_amount(p.actual_to_date)
    ));
    if let Some(c) = &e.plan {
        lines.push(format!(
            "This month: projected {} {cur} against {} {cur} planned for {} (P(over) {:.0}%)",
            format_amount(c.projected),
            format_amount(c.planned),
            c.month,
            c.p_over * 100.0
        ));
    }
    lines
}

/// What the spend does: a recent change of level, the drivers and the anomalies.
fn pattern_lines(a: &Alert, e: &Evaluation) -> Vec<String> {
    let mut lines = Vec::new();
    let series = budget_series(&e.budget);
    if let Some(change) = a
        .forecasts
        .iter()
        .find(|f| f.series == series)
        .and_then(|f| f.shape.change)
    {
        let likely = match change.holds < 1.0 {
            true => format!(" ({:.0}% likely to hold)", 100.0 * change.holds),
            false => String::new(),
        };
        lines.push(format!("{}{likely}", capitalise(&change.to_string())));
    }
    if !e.drivers.is_empty() {
        let drivers: Vec<String> = e
            .drivers
            .iter()
            .map(|d| {
                format!(
                    "{} +{} ({} vs {} last period)",
                    d.series,
                    format_amount(d.rise()),
                    format_amount(d.projected),
                    format_amount(d.previous)
                )
            })
            .collect();
        lines.push(format!("Drivers: {}", drivers.join("; ")));
    }
    let anomalies: Vec<&Anomaly> = a.anomalies.iter().filter(|x| x.series == series).collect();
    if !anomalies.is_empty() {
        let shown: Vec<String> = anomalies
            .iter()
            .take(3)
            .map(|x| {
                format!(
                    "{} {} (expected {})",
                    x.day,
                    format_amount(x.actual),
                    format_amount(x.expected)
                )
            })
            .collect();
        let more = anomalies.len().saturating_sub(3);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        lines.push(format!("Anomalies: {}{more}", shown.join(", ")));
    }
    lines
}

/// The ladder: the steps in effect, what they did to objects, and how to restore.
fn ladder_lines(a: &Alert, e: &Evaluation, budget: Option<&Budget>) -> Vec<String> {
    let mut lines = Vec::new();
    let ladder = budget.map_or(0, |b| b.actions.len());
    if e.steps > 0 {
        lines.push(format!("Action ladder: step {} of {ladder}", e.steps));
    }
    let steps: Vec<&PlannedChange> = a.changes.iter().filter(|c| c.budget == e.budget).collect();
    if !steps.is_empty() {
        let observe = steps.iter().all(|c| c.mode == BudgetMode::Observe);
        lines.push(if observe {
            "Steps in effect (observe mode: nothing is changed):".to_string()
        } else {
            "Steps in effect:".to_string()
        });
        lines.extend(
            steps
                .iter()
                .map(|c| format!("• {}. {}", c.step, c.description)),
        );
    }
    let objects: Vec<&ActionRecord> = a
        .actions
        .iter()
        .filter(|r| r.change.budget == e.budget)
        .collect();
    if !objects.is_empty() {
        lines.push("Objects:".to_string());
        lines.extend(
            objects
                .iter()
                .take(MAX_OBJECTS_LISTED)
                .map(|r| format!("• {}", r.describe())),
        );
        if objects.len() > MAX_OBJECTS_LISTED {
            lines.push(format!(
                "… and {} more objects",
                objects.len() - MAX_OBJECTS_LISTED
            ));
        }
    }
    let holds = objects
        .iter()
        .any(|r| r.operation == Operation::Apply && r.outcome == Outcome::Done);
    if holds || (e.steps > 0 && budget.is_some_and(|b| b.mode == BudgetMode::Enforce)) {
        lines.push(format!(
            "To restore now: `costcast act restore --budget {}`",
            e.budget
        ));
    }
    lines
}

/// The Block Kit message for `a`: a header, one section per budget, and a footer, within
/// Slack's limits of 50 blocks and 3,000 characters per section.
pub fn build_message(a: &Alert) -> Value {
    let mut evaluations: Vec<&Evaluation> = a.evaluations.iter().collect();
    evaluations.sort_by(|x, y| {
        y.status
            .cmp(&x.status)
            .then(y.projection.p_breach.total_cmp(&x.projection.p_breach))
    });
    let headline = headline(a.evaluations);
    let names: Vec<&str> = evaluations.iter().map(|e| e.budget.as_str()).collect();
    let mut blocks = vec![json!({
        "type": "header",
        "text": {"type": "plain_text", "text": format!("costcast: {headline}")}
    })];
    // Header, footer and a possible "more" line leave 47 sections.
    let room = MAX_BLOCKS - 3;
    for e in evaluations.iter().take(room) {
        blocks.push(section(&budget_lines(a, e)));
    }
    if evaluations.len() > room {
        blocks.push(section(&[format!(
            "… and {} more budgets: see the report.",
            evaluations.len() - room
        )]));
    }
    let mut footer = format!("costcast run {}", a.run_id);
    if let Some(e) = evaluations.first() {
        footer.push_str(&format!(" · as of {}", e.as_of));
    }
    if let Some(url) = a.report_url {
        footer.push_str(&format!(" · <{url}|Open the report>"));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": footer}]}));
    json!({
        "text": format!("costcast: {headline}: {}", names.join(", ")),
        "blocks": blocks,
    })
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

#[cfg(test)]
mod tests;
