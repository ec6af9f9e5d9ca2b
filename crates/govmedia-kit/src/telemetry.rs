//! Telemetry: `tracing` to stdout (text or JSON), OpenTelemetry traces and metrics
//! exported over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace
//! context carried across every gRPC hop: extracted from incoming metadata by
//! [`GrpcTraceLayer`], injected into outgoing calls by [`inject_context`].
//!
//! Logging guide: a readable message plus dotted fields (`user.id = %id`); log an error
//! once, where it is handled; never log a secret (settings hold them as
//! [`crate::config::Secret`], which prints redacted).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use opentelemetry::KeyValue;
use opentelemetry::metrics::Histogram;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, TelemetrySettings};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter {filter:?}: {message}")]
    Filter {
        /// The filter.
        filter: String,
        /// What is wrong.
        message: String,
    },
    /// The OTLP exporter cannot be built.
    #[error("cannot set up OTLP export to {endpoint}: {message}")]
    Exporter {
        /// The endpoint.
        endpoint: String,
        /// What is wrong.
        message: String,
    },
    /// A global subscriber is already installed (for example by a test harness, or a
    /// second service in the same process): the existing one keeps working.
    #[error("a tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Keeps the exporters alive; dropping it flushes and shuts them down.
#[derive(Debug)]
pub struct TelemetryGuard {
    tracer_provider: SdkTracerProvider,
    meter_provider: Option<SdkMeterProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.tracer_provider.shutdown() {
            eprintln!("flushing traces at shutdown failed: {e}");
        }
        if let Some(meters) = &self.meter_provider
            && let Err(e) = meters.shutdown()
        {
            eprintln!("flushing metrics at shutdown failed: {e}");
        }
    }
}

/// Installs logging, tracing and metrics for the process. Call once, inside the tokio
/// runtime (the OTLP exporter needs it).
pub fn init(service_name: &str, settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_new(&settings.log)
        .map_err(|e| TelemetryError::Filter { filter: settings.log.clone(), message: e.to_string() })?;
    let resource = resource(service_name);

    let mut tracer_builder = SdkTracerProvider::builder().with_resource(resource.clone());
    let mut meter_provider = None;
    if let Some(endpoint) = settings.otlp_endpoint.as_ref().filter(|e| !e.trim().is_empty()) {
        let exporter_error = |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Exporter {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        };
        let spans = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(exporter_error)?;
        tracer_builder = tracer_builder.with_batch_exporter(spans);
        let metrics = opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(exporter_error)?;
        let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metrics)
            .with_interval(settings.metrics_interval)
            .build();
        let meters = SdkMeterProvider::builder().with_resource(resource).with_reader(reader).build();
        opentelemetry::global::set_meter_provider(meters.clone());
        meter_provider = Some(meters);
    }
    // Without an endpoint spans still get W3C ids (logged, and put in audit records), and
    // incoming trace context is still continued and passed on.
    let tracer_provider = tracer_builder.build();
    let tracer = tracer_provider.tracer("govmedia");
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let installed = match settings.log_format {
        // Colours only for a person at a terminal, never escape codes in a log file.
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(true)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true).with_current_span(true))
            .try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { tracer_provider, meter_provider })
}

/// Who is reporting: `service.name` (`govmedia-identity`, …), the release
/// (`service.version`), this process (`service.instance.id`, new at every start, so two
/// replicas are told apart), and whatever `OTEL_RESOURCE_ATTRIBUTES` adds, for example
/// `deployment.environment.name=production`.
fn resource(service_name: &str) -> Resource {
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", uuid::Uuid::now_v7().to_string()),
        ])
        .build()
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// The W3C trace context (`traceparent`, `tracestate`) carried by incoming headers.
pub fn extract_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// Puts the current span's W3C trace context on an outgoing call's metadata.
pub fn inject_context(metadata: &mut tonic::metadata::MetadataMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut MetadataInjector(metadata));
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(key, value);
        }
    }
}

/// Puts `context`'s W3C trace context on a forwarded request's headers, replacing the
/// caller's, so the next hop's span is a child of this one. A context without a valid
/// span (no tracer installed) leaves the headers as they are: the caller's trace then
/// goes on unchanged.
pub fn inject_context_headers(context: &opentelemetry::Context, headers: &mut http::HeaderMap) {
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(context, &mut HeaderInjector(headers));
    }
}

/// A client interceptor that puts the current span's trace context on every outgoing
/// call: `FooServiceClient::with_interceptor(channel, TraceContextInterceptor)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceContextInterceptor;

impl tonic::service::Interceptor for TraceContextInterceptor {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        inject_context(request.metadata_mut());
        Ok(request)
    }
}

/// The current trace id (32 lower-case hex digits), for audit records and error reports.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Bucket bounds of RPC durations, in seconds: 5 ms to 10 s, where gRPC calls fall (the
/// SDK's default bounds, 0 to 10,000, suit milliseconds and put every call in the first
/// bucket).
pub const RPC_SECONDS_BOUNDS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

/// Which part of the system a server is: the same call passes the gateway and then a
/// service, and must be counted once as each, never twice as the same thing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServerRole {
    /// A service: spans `<service>/<method>`, metric `rpc.server.call.duration`.
    #[default]
    Service,
    /// The gateway in front: spans `gateway <service>/<method>`, metric
    /// `govmedia.gateway.call.duration`.
    Gateway,
}

fn rpc_duration(role: ServerRole) -> &'static Histogram<f64> {
    static SERVICE: OnceLock<Histogram<f64>> = OnceLock::new();
    static GATEWAY: OnceLock<Histogram<f64>> = OnceLock::new();
    let (cell, name, description) = match role {
        ServerRole::Service => (&SERVICE, "rpc.server.call.duration", "Duration of gRPC calls handled by this service"),
        ServerRole::Gateway => (
            &GATEWAY,
            "govmedia.gateway.call.duration",
            "Duration of gRPC calls through the gateway, upstream included",
        ),
    };
    cell.get_or_init(|| {
        opentelemetry::global::meter("govmedia")
            .f64_histogram(name)
            .with_unit("s")
            .with_description(description)
            .with_boundaries(RPC_SECONDS_BOUNDS.to_vec())
            .build()
    })
}

/// Health probes (`grpc.health.v1.Health`) come every few seconds from every orchestrator
/// and load balancer: traced, they would be most of all spans and drown the calls people
/// make, so they get neither a span nor a duration.
fn is_health_probe(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.Health/")
}

/// A tower layer giving every incoming gRPC call a server span (a child of the caller's
/// trace when `traceparent` is present) and recording its duration, named by the
/// server's [`ServerRole`]. Health probes are passed through untraced.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcTraceLayer {
    /// What this server is.
    pub role: ServerRole,
}

impl<S> tower::Layer<S> for GrpcTraceLayer {
    type Service = GrpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTrace { inner, role: self.role }
    }
}

/// The service of [`GrpcTraceLayer`].
#[derive(Debug, Clone)]
pub struct GrpcTrace<S> {
    inner: S,
    role: ServerRole,
}

impl<S, B, R> tower::Service<http::Request<B>> for GrpcTrace<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if is_health_probe(request.uri().path()) {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            return Box::pin(async move { inner.call(request).await });
        }
        let path = request.uri().path().trim_start_matches('/');
        let (service, method) = path.split_once('/').unwrap_or((path, ""));
        let (service, method) = (service.to_owned(), method.to_owned());
        let role = self.role;
        let name = match role {
            ServerRole::Service => format!("{service}/{method}"),
            ServerRole::Gateway => format!("gateway {service}/{method}"),
        };
        let span = tracing::info_span!(
            "grpc.server",
            otel.name = %name,
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = %service,
            rpc.method = %method,
            rpc.grpc.status_code = tracing::field::Empty,
            enduser.id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        // A malformed or absent traceparent leaves the span as a new root.
        let _ = span.set_parent(extract_context(request.headers()));
        // Every log line of the call carries them (the span's fields), so an operator goes
        // from a log line to its trace and back.
        let context = span.context();
        let otel_span = context.span();
        let ids = otel_span.span_context();
        if ids.is_valid() {
            span.record("trace_id", ids.trace_id().to_string());
            span.record("span_id", ids.span_id().to_string());
        }
        // The ready clone is used; a fresh clone stays for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        Box::pin(
            async move {
                let result = inner.call(request).await;
                // Trailers-only responses (every error) carry grpc-status in the headers;
                // a successful streaming body carries it in trailers, read as 0 here.
                let code = match &result {
                    Ok(response) => response
                        .headers()
                        .get("grpc-status")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<i64>().ok())
                        .unwrap_or(0),
                    Err(_) => 2,
                };
                tracing::Span::current().record("rpc.grpc.status_code", code);
                // A call answered with an error leaves one line, in the call's span (so with
                // its trace id): the server's own failures as warnings, refusals as info.
                match code {
                    0 => {}
                    2 | 4 | 13 | 14 | 15 => {
                        tracing::warn!(rpc.grpc.status_code = code, "call failed");
                    }
                    _ => tracing::info!(rpc.grpc.status_code = code, "call refused"),
                }
                rpc_duration(role).record(
                    started.elapsed().as_secs_f64(),
                    &[
                        KeyValue::new("rpc.system", "grpc"),
                        KeyValue::new("rpc.service", service),
                        KeyValue::new("rpc.method", method),
                        KeyValue::new("rpc.grpc.status_code", code),
                    ],
                );
                result
            }
            .instrument(span),
        )
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    #[test]
    fn a_forwarded_request_carries_this_hop_and_keeps_the_trace() {
        let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let mut headers = http::HeaderMap::new();
        headers.insert("traceparent", caller.parse().expect("header"));

        // No tracer: the caller's context goes on untouched.
        inject_context_headers(&opentelemetry::Context::new(), &mut headers);
        assert_eq!(headers["traceparent"], caller);

        // This hop's span, in the caller's trace: the next hop sees it as the parent.
        let hop = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("trace id"),
            SpanId::from_hex("b7ad6b7169203331").expect("span id"),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        inject_context_headers(&opentelemetry::Context::new().with_remote_span_context(hop), &mut headers);
        assert_eq!(headers["traceparent"], "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01");
        let extracted = extract_context(&headers);
        assert_eq!(extracted.span().span_context().span_id(), SpanId::from_hex("b7ad6b7169203331").expect("id"));
    }
}
