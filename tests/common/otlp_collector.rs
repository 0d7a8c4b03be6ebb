//! A local OpenTelemetry collector's OTLP/HTTP trace endpoint: decodes what it is sent with the
//! OTLP protobuf types and keeps the spans.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message;

/// One span as received, with the attributes as text.
#[derive(Debug, Clone)]
pub struct SeenSpan {
    /// The span's name (`run`, `stage`, ...).
    pub name: String,
    /// Its trace, hex.
    pub trace_id: String,
    /// Its id, hex.
    pub span_id: String,
    /// Its parent's id, hex; empty for a root.
    pub parent_span_id: String,
    /// Attributes, values rendered as text.
    pub attributes: BTreeMap<String, String>,
    /// Whether it was marked as failed.
    pub error: bool,
    /// The status message, if any.
    pub status_message: String,
    /// The `service.name` of the resource it came with.
    pub service_name: String,
    /// When it started, in nanoseconds since the epoch.
    pub start_nanos: u64,
}

/// What the collector received.
#[derive(Clone, Default)]
pub struct Collector {
    /// The content type of each request, in order.
    pub content_types: Arc<Mutex<Vec<String>>>,
    /// Every span, in the order received.
    pub spans: Arc<Mutex<Vec<SeenSpan>>>,
    /// What it answers a well-formed export with.
    answer: u16,
}

impl Collector {
    /// The spans received so far.
    pub fn spans(&self) -> Vec<SeenSpan> {
        self.spans.lock().unwrap().clone()
    }

    /// The `run` span of run `run_id` and its `stage` spans, in the order the stages ran.
    /// Panics unless there is exactly one such run span and every stage is its child.
    pub fn run_trace(&self, run_id: i64) -> (SeenSpan, Vec<SeenSpan>) {
        let spans = self.spans();
        let id = run_id.to_string();
        let runs: Vec<&SeenSpan> = spans
            .iter()
            .filter(|s| s.name == "run" && s.attributes.get("run_id") == Some(&id))
            .collect();
        assert_eq!(runs.len(), 1, "one run span for run {run_id}: {spans:#?}");
        let run = runs[0].clone();
        let mut stages: Vec<SeenSpan> = spans
            .iter()
            .filter(|s| s.name == "stage" && s.parent_span_id == run.span_id)
            .cloned()
            .collect();
        assert!(
            stages.iter().all(|s| s.trace_id == run.trace_id),
            "a run is one trace: {stages:#?}"
        );
        stages.sort_by_key(|s| s.start_nanos);
        (run, stages)
    }

    /// How many export requests arrived.
    pub fn requests(&self) -> usize {
        self.content_types.lock().unwrap().len()
    }
}

fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(f)) => f.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), text(&kv.value)))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn traces(State(c): State<Collector>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    c.content_types.lock().unwrap().push(content_type);
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return StatusCode::BAD_REQUEST;
    };
    let mut spans = c.spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = attributes(
            &resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        );
        let service_name = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                let status = span.status.unwrap_or_default();
                spans.push(SeenSpan {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    attributes: attributes(&span.attributes),
                    error: status.code == SpanStatus::Error as i32,
                    status_message: status.message,
                    service_name: service_name.clone(),
                    start_nanos: span.start_time_unix_nano,
                });
            }
        }
    }
    StatusCode::from_u16(c.answer).unwrap_or(StatusCode::OK)
}

/// Starts a collector; returns its base address (what `telemetry.otlp.endpoint` takes).
pub async fn start() -> (String, Collector) {
    start_answering(200).await
}

/// Starts a collector that keeps what it is sent but answers with `status`.
pub async fn start_answering(status: u16) -> (String, Collector) {
    let collector = Collector {
        answer: status,
        ..Collector::default()
    };
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(collector.clone());
    (super::serve_locally(app).await, collector)
}
