//! Logging and tracing. Log lines go to stderr, so stdout carries only the report: text for
//! people, JSON (one object a line, with the run and stage span fields) for a cluster's log
//! collector. With `[telemetry.otlp]`, the run and stage spans are also exported as
//! OpenTelemetry traces over OTLP/HTTP, one trace per run.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, OtlpSettings};

/// Why trace export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The exporter refused its settings, or its HTTP client could not be built.
    #[error("telemetry.otlp: cannot export traces to {url}: {message}")]
    Exporter {
        /// Where spans were to go.
        url: String,
        /// Why not.
        message: String,
    },
    /// Export needs the async runtime, and there was none.
    #[error("telemetry.otlp: trace export needs the async runtime, and none is running")]
    NoRuntime,
}

/// The trace pipeline, kept so the spans still queued can be flushed when the process ends.
struct Export {
    provider: SdkTracerProvider,
    timeout: Duration,
}

static EXPORT: OnceLock<Export> = OnceLock::new();

/// Installs the subscriber once; later calls do nothing. `level` is costcast's own log level
/// (and each HTTP response served is logged at info); other libraries log at warn. `RUST_LOG`
/// overrides both; it does not change what is exported, which is costcast's own spans at info.
///
/// Must be called inside the tokio runtime when `otlp` is set: exports run on it.
pub fn init(
    format: LogFormat,
    otlp: Option<&OtlpSettings>,
    level: LevelFilter,
) -> Result<(), TelemetryError> {
    let (provider, failure) = match otlp.map(exporter) {
        None => (None, None),
        Some(Ok(export)) => (Some(export), None),
        Some(Err(e)) => (None, Some(e)),
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,costcast={level},tower_http=info")));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let fmt = match format {
        LogFormat::Text => fmt
            .with_ansi(std::io::stderr().is_terminal())
            .compact()
            .boxed(),
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .boxed(),
    };
    // Only costcast's spans: HTTP request spans would be mostly probes and scrapes, and the
    // exporter's own log events must not feed back into what it exports.
    let traces = provider.as_ref().map(|export| {
        tracing_opentelemetry::layer()
            .with_tracer(export.provider.tracer("costcast"))
            .with_filter(
                Targets::new()
                    .with_target("costcast", LevelFilter::INFO)
                    .with_target("costcast::api", LevelFilter::OFF),
            )
    });
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(traces)
        .try_init()
        .is_ok();
    // Had a subscriber already been in place, this exporter would get no spans: dropped.
    if let Some(export) = provider.filter(|_| installed)
        && EXPORT.set(export).is_err()
    {
        // Only the first subscriber installed gets here (try_init fails for any later one),
        // so the slot is empty; say so should that ever change.
        tracing::warn!("An OTLP exporter was already installed; the new one is dropped.");
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Sends the spans still queued and stops exporting, waiting up to the export timeout. Call
/// once the work is done, outside async code but while the runtime is still alive: the last
/// export runs on it.
pub fn shutdown() {
    let Some(export) = EXPORT.get() else {
        return;
    };
    if let Err(e) = export
        .provider
        .shutdown_with_timeout(export.timeout + Duration::from_secs(1))
    {
        tracing::warn!(error = %e, "Could not flush the last traces to the OTLP collector.");
    }
}

/// Puts a stage's counts on its span as `costcast.<name>` attributes, so a trace backend can
/// query them; a no-op without export.
pub fn record_counts(span: &tracing::Span, counts: &BTreeMap<String, u64>) {
    for (name, &value) in counts {
        span.set_attribute(
            format!("costcast.{name}"),
            i64::try_from(value).unwrap_or(i64::MAX),
        );
    }
}

/// Marks a span as failed, with why, for trace backends; a no-op without export.
pub fn record_failure(span: &tracing::Span, message: &str) {
    span.set_status(Status::error(message.to_string()));
}

fn exporter(settings: &OtlpSettings) -> Result<Export, TelemetryError> {
    let failed = |message: String| TelemetryError::Exporter {
        url: settings.traces_url.clone(),
        message,
    };
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| TelemetryError::NoRuntime)?;
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .build()
        .map_err(|e| failed(e.to_string()))?;
    // The standard OTEL_EXPORTER_OTLP_HEADERS (and _TRACES_HEADERS) are read by the exporter:
    // that is how a collector's API key arrives, from a Secret rather than the config file.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url.clone())
        .with_timeout(settings.timeout)
        .with_http_client(OnRuntime { client, runtime })
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build();
    Ok(Export {
        provider,
        timeout: settings.timeout,
    })
}

/// `service.name` is costcast unless OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES name it; the
/// SDK reads both, and the rest of OTEL_RESOURCE_ATTRIBUTES (a cluster, a namespace) too.
fn resource() -> Resource {
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attrs| {
            attrs
                .split(',')
                .any(|kv| kv.trim().starts_with("service.name="))
        });
    let builder = Resource::builder().with_attribute(opentelemetry::KeyValue::new(
        "service.version",
        env!("CARGO_PKG_VERSION"),
    ));
    match named {
        true => builder.build(),
        false => builder.with_service_name("costcast").build(),
    }
}

/// Sends the exporter's requests with costcast's own reqwest client, on the tokio runtime.
///
/// The SDK's batch processor exports from a thread of its own under a bare executor, where a
/// reqwest future cannot make progress (it needs tokio's reactor), so each request is spawned
/// onto the runtime and its result awaited from there. The exporter's own client would be a
/// blocking reqwest of an older major version: a second HTTP stack in the build.
#[derive(Debug)]
struct OnRuntime {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let url = request.url().to_string();
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let mut out = http::Response::builder().status(response.status());
            if let Some(headers) = out.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(out.body(body)?)
        });
        let result = sent.await?;
        // The exporter's own messages say that a batch was lost, not where it was going or why.
        let trouble = match &result {
            Ok(response) if !response.status().is_success() => {
                Some(format!("answered {}", response.status()))
            }
            Ok(_) => None,
            Err(e) => Some(error_chain(e.as_ref())),
        };
        if let Some(trouble) = trouble {
            match WARNED.swap(true, Ordering::Relaxed) {
                false => tracing::warn!(
                    "OTLP export to {url} failed: {trouble}. Traces are being lost; runs go on. \
                     Later failures are logged at debug."
                ),
                true => tracing::debug!("OTLP export to {url} failed: {trouble}."),
            }
        }
        result
    }
}

/// Set by the first failed export: one clear warning, not one per batch and retry.
static WARNED: AtomicBool = AtomicBool::new(false);

/// An error and its causes on one line, each cause once (many errors repeat their source's text).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let s = cause.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        source = cause.source();
    }
    text
}
