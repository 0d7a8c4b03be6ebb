//! A local Slack incoming-webhook receiver that records what it got and answers as scripted.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::Value;

/// What the receiver got, and how it answers.
#[derive(Clone, Default)]
pub struct Receiver {
    /// Every body received, in order.
    pub bodies: Arc<Mutex<Vec<Value>>>,
    /// Statuses to answer with, in order; 200 once they run out.
    pub script: Arc<Mutex<Vec<u16>>>,
}

async fn hook(State(r): State<Receiver>, body: String) -> axum::response::Response {
    r.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_str(&body).unwrap_or(Value::Null));
    let mut script = r.script.lock().unwrap();
    let status = if script.is_empty() {
        200
    } else {
        script.remove(0)
    };
    let code = StatusCode::from_u16(status).unwrap();
    // Slack sends Retry-After with every 429; 3 s is longer than costcast's own first backoff
    // (2 s), so a test can tell which one was honoured.
    if status == 429 {
        ([("retry-after", "3")], code).into_response()
    } else {
        code.into_response()
    }
}

/// Starts a receiver answering `script`'s statuses in order, then 200; returns its URL.
pub async fn start(script: Vec<u16>) -> (String, Receiver) {
    let receiver = Receiver {
        script: Arc::new(Mutex::new(script)),
        ..Receiver::default()
    };
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(receiver.clone());
    (
        format!("{}/hook", super::serve_locally(app).await),
        receiver,
    )
}
