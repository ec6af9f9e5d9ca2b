//! Telemetry: `tracing` to stdout (text or JSON); OpenTelemetry traces, metrics and log
//! lines exported over OTLP/gRPC when an endpoint is set; W3C trace context carried
//! across every gRPC hop: extracted from incoming metadata by [`GrpcTraceLayer`] (a
//! server span per call), injected into outgoing calls by [`client_call`] (a client span
//! per call); a database span per SQL statement.
//!
//! Logging guide: a readable message plus dotted fields (`user.id = %id`); log an error
//! once, where it is handled; never log a secret (settings hold them as
//! [`crate::config::Secret`], which prints redacted).

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Histogram, UpDownCounter};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Instrument, Level};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer as _};

use crate::config::{LogFormat, TelemetrySettings};

pub mod components;

pub use components::meter;

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
    meter_providers: Vec<SdkMeterProvider>,
    logger_provider: Option<SdkLoggerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.tracer_provider.shutdown() {
            eprintln!("flushing traces at shutdown failed: {e}");
        }
        for meters in &self.meter_providers {
            if let Err(e) = meters.shutdown() {
                eprintln!("flushing metrics at shutdown failed: {e}");
            }
        }
        if let Some(loggers) = &self.logger_provider
            && let Err(e) = loggers.shutdown()
        {
            eprintln!("flushing logs at shutdown failed: {e}");
        }
    }
}

/// Targets whose lines never go out over OTLP: the exporters' own transport (a line
/// about sending lines would be sent, and so on for ever).
const NOT_EXPORTED: &str =
    "opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,h2=off,hyper=off,tonic=off,tower=off";

/// Installs logging, tracing and metrics for the process. Call once, inside the tokio
/// runtime (the OTLP exporter needs it).
///
/// Without an OTLP endpoint: log lines to stdout, and spans that still get W3C ids (for
/// log lines and audit records) and continue incoming traces. With one: spans, metrics
/// and log lines (each with the trace and span it was written in) go out over OTLP/gRPC,
/// and every SQL statement becomes a client span of the call that ran it.
pub fn init(service_name: &str, settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    init_components(service_name, &[], settings)
}

/// [`init`] for a process running several components (`govmedia up`): spans and log
/// lines are exported as `govmedia-<component>` (see [`components`]), the rest as
/// `service_name`.
pub fn init_components(
    service_name: &str,
    component_names: &[&'static str],
    settings: &TelemetrySettings,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = || {
        EnvFilter::try_new(&settings.log)
            .map_err(|e| TelemetryError::Filter { filter: settings.log.clone(), message: e.to_string() })
    };
    let instance = uuid::Uuid::now_v7().to_string();
    let process = resource(service_name, &instance);

    let mut tracer_builder = SdkTracerProvider::builder().with_resource(process.clone());
    let (mut meter_providers, mut logger_provider) = (Vec::new(), None);
    if let Some(endpoint) = settings.otlp_endpoint.as_ref().filter(|e| !e.trim().is_empty()) {
        let exporter_error = |e: opentelemetry_otlp::ExporterBuildError| TelemetryError::Exporter {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        };
        let span_exporter =
            || opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build();
        let log_exporter =
            || opentelemetry_otlp::LogExporter::builder().with_tonic().with_endpoint(endpoint.clone()).build();
        let mut log_processors = None;
        if component_names.is_empty() {
            tracer_builder = tracer_builder.with_batch_exporter(span_exporter().map_err(exporter_error)?);
        } else {
            use opentelemetry_sdk::logs::{BatchLogProcessor, LogProcessor as _};
            use opentelemetry_sdk::trace::{BatchSpanProcessor, SpanProcessor as _};
            let mut spans = Vec::new();
            let mut logs = Vec::new();
            for name in component_names {
                let own = resource(&format!("govmedia-{name}"), &instance);
                let mut span_processor = BatchSpanProcessor::builder(span_exporter().map_err(exporter_error)?).build();
                span_processor.set_resource(&own);
                spans.push((*name, span_processor));
                let mut log_processor = BatchLogProcessor::builder(log_exporter().map_err(exporter_error)?).build();
                log_processor.set_resource(&own);
                logs.push((*name, log_processor));
            }
            let router = components::SpanRouter(components::Routes {
                process: BatchSpanProcessor::builder(span_exporter().map_err(exporter_error)?).build(),
                components: spans,
            });
            tracer_builder = tracer_builder.with_span_processor(router.install());
            log_processors = Some(components::LogRouter(components::Routes {
                process: BatchLogProcessor::builder(log_exporter().map_err(exporter_error)?).build(),
                components: logs,
            }));
        }
        let meters = |resource: Resource| -> Result<SdkMeterProvider, TelemetryError> {
            let metrics = opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .map_err(exporter_error)?;
            let reader = opentelemetry_sdk::metrics::PeriodicReader::builder(metrics)
                .with_interval(settings.metrics_interval)
                .build();
            Ok(SdkMeterProvider::builder().with_resource(resource).with_reader(reader).build())
        };
        let process_meters = meters(process.clone())?;
        opentelemetry::global::set_meter_provider(process_meters.clone());
        meter_providers.push(process_meters);
        if !component_names.is_empty() {
            let mut own = Vec::new();
            for name in component_names {
                let provider = meters(resource(&format!("govmedia-{name}"), &instance))?;
                own.push((*name, provider.clone()));
                meter_providers.push(provider);
            }
            components::install_meters(own);
        }
        let loggers = SdkLoggerProvider::builder().with_resource(process);
        logger_provider = Some(match log_processors {
            Some(router) => loggers.with_log_processor(router).build(),
            None => loggers.with_batch_exporter(log_exporter().map_err(exporter_error)?).build(),
        });
    }
    let tracer_provider = tracer_builder.build();
    let tracer = tracer_provider.tracer("govmedia");
    opentelemetry::global::set_tracer_provider(tracer_provider.clone());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    // Each layer has its own filter: the statements that become database spans are
    // debug-level events nobody wants on stdout.
    let exported_logs = match &logger_provider {
        Some(loggers) => {
            let filter = EnvFilter::try_new(format!("{},{NOT_EXPORTED}", settings.log))
                .map_err(|e| TelemetryError::Filter { filter: settings.log.clone(), message: e.to_string() })?;
            Some(OpenTelemetryTracingBridge::new(loggers).with_filter(filter))
        }
        None => None,
    };
    let statements = logger_provider.as_ref().map(|_| {
        StatementSpans.with_filter(tracing_subscriber::filter::Targets::new().with_target("sqlx::query", Level::TRACE))
    });
    let registry = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(filter()?))
        .with(exported_logs)
        .with(statements);
    let installed = match settings.log_format {
        // Colours only for a person at a terminal, never escape codes in a log file.
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(true)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
                    .with_filter(filter()?),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_filter(filter()?),
            )
            .try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)?;
    Ok(TelemetryGuard { tracer_provider, meter_providers, logger_provider })
}

/// Which database the process's statements run on (`postgresql`, `sqlite`), named on
/// its database spans. Set by the first database the process opens.
static DATABASE_SYSTEM: OnceLock<&'static str> = OnceLock::new();

/// Names the database system of this process's statements (the first call wins).
pub fn set_database_system(system: &'static str) {
    let _ = DATABASE_SYSTEM.set(system);
}

/// Makes a database span of each statement sqlx reports (`sqlx::query` events carry the
/// statement and how long it took), as a child of the span that ran it. A statement run
/// outside any traced work (migrations, background polls with nothing to do) makes no
/// span, so the trace store is not filled with roots of one statement each.
struct StatementSpans;

#[derive(Default)]
struct Statement {
    summary: String,
    text: String,
    elapsed_secs: f64,
    rows_affected: u64,
    rows_returned: u64,
}

impl tracing::field::Visit for Statement {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        match field.name() {
            "summary" => value.clone_into(&mut self.summary),
            "db.statement" => value.trim().clone_into(&mut self.text),
            _ => {}
        }
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        if field.name() == "elapsed_secs" {
            self.elapsed_secs = value;
        }
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        match field.name() {
            "rows_affected" => self.rows_affected = value,
            "rows_returned" => self.rows_returned = value,
            _ => {}
        }
    }

    fn record_debug(&mut self, _field: &tracing::field::Field, _value: &dyn std::fmt::Debug) {}
}

/// The longest statement text put on a span: a many-row INSERT is thousands of
/// placeholders, and the first lines say what it is.
const STATEMENT_TEXT_LIMIT: usize = 2048;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementSpans {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        // The span that ran the statement is entered here (sqlx's SQLite worker enters the
        // caller's span too), so its OpenTelemetry context is the current one.
        let parent = opentelemetry::Context::current();
        if !parent.span().span_context().is_valid() {
            return;
        }
        let mut statement = Statement::default();
        event.record(&mut statement);
        let summary = statement.summary.trim_end_matches(" …").to_owned();
        let mut text = if statement.text.is_empty() { statement.summary.clone() } else { statement.text };
        if text.len() > STATEMENT_TEXT_LIMIT {
            let cut = (0..=STATEMENT_TEXT_LIMIT).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            text.truncate(cut);
            text.push_str(" …");
        }
        let end = std::time::SystemTime::now();
        let start = end.checked_sub(Duration::from_secs_f64(statement.elapsed_secs.max(0.0))).unwrap_or(end);
        let tracer = opentelemetry::global::tracer("govmedia.database");
        let mut span = tracer
            .span_builder(summary.clone())
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("db.system.name", *DATABASE_SYSTEM.get().unwrap_or(&"other_sql")),
                KeyValue::new("db.query.summary", summary),
                KeyValue::new("db.query.text", text),
                KeyValue::new("db.response.returned_rows", statement.rows_returned as i64),
                KeyValue::new("govmedia.db.rows_affected", statement.rows_affected as i64),
            ])
            .start_with_context(&tracer, &parent);
        span.end_with_timestamp(end);
    }
}

/// Who is reporting: `service.name` (`govmedia-identity`, …), the release
/// (`service.version`), this process (`service.instance.id`, new at every start, so two
/// replicas are told apart), and whatever `OTEL_RESOURCE_ATTRIBUTES` adds, for example
/// `deployment.environment.name=production`.
fn resource(service_name: &str, instance: &str) -> Resource {
    Resource::builder()
        .with_service_name(service_name.to_owned())
        .with_attributes([
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("service.instance.id", instance.to_owned()),
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

/// The current span id (16 lower-case hex digits): with the trace id, what an audit
/// record keeps so the relay's delivery span can link back to the change that made it.
pub fn current_span_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| span_context.span_id().to_string())
}

/// Links `span` to the span `(trace_id, span_id)` of another trace (hex, as
/// [`current_trace_id`] and [`current_span_id`] give them): the outbox relay's delivery
/// links to each change whose audit records it carries, so a trace store leads from a
/// request to the delivery of its audit record. Ids that do not parse are skipped.
pub fn add_link(span: &tracing::Span, trace_id: &str, span_id: &str) {
    let (Ok(trace), Ok(id)) = (TraceId::from_hex(trace_id), SpanId::from_hex(span_id)) else { return };
    let linked = SpanContext::new(trace, id, TraceFlags::SAMPLED, true, TraceState::default());
    if linked.is_valid() {
        span.add_link(linked);
    }
}

/// Calls another service with a client span around the call (`<service>/<method>`,
/// kind client, the answer's gRPC code) and the span's trace context on the request, so
/// the callee's server span is its child. `call` makes the call:
/// `client_call("govmedia.identity.v1.AccessService", "CheckPermission", request, |r| client.check_permission(r))`.
pub async fn client_call<Req, Resp, Fut>(
    service: &'static str,
    method: &'static str,
    mut request: tonic::Request<Req>,
    call: impl FnOnce(tonic::Request<Req>) -> Fut,
) -> Result<tonic::Response<Resp>, tonic::Status>
where
    Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let span = tracing::info_span!(
        "grpc.client",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "client",
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = tracing::field::Empty,
    );
    async move {
        inject_context(request.metadata_mut());
        let answer = call(request).await;
        let code = match &answer {
            Ok(_) => 0,
            Err(status) => status.code() as i32,
        };
        tracing::Span::current().record("rpc.grpc.status_code", code);
        answer
    }
    .instrument(span)
    .await
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

fn rpc_duration(role: ServerRole, component: Option<&'static str>) -> &'static Histogram<f64> {
    static SERVICE: components::PerComponent<Histogram<f64>> = components::PerComponent::new();
    static GATEWAY: components::PerComponent<Histogram<f64>> = components::PerComponent::new();
    let (cell, name, description) = match role {
        ServerRole::Service => (&SERVICE, "rpc.server.call.duration", "Duration of gRPC calls handled by this service"),
        ServerRole::Gateway => (
            &GATEWAY,
            "govmedia.gateway.call.duration",
            "Duration of gRPC calls through the gateway, upstream included",
        ),
    };
    cell.get(component, |meter| {
        meter
            .f64_histogram(name)
            .with_unit("s")
            .with_description(description)
            .with_boundaries(RPC_SECONDS_BOUNDS.to_vec())
            .build()
    })
}

/// Calls being handled now, by service: the saturation a dashboard sets beside the
/// request rate (a call cancelled by its client is counted out when dropped too).
fn active_calls(role: ServerRole, component: Option<&'static str>) -> &'static UpDownCounter<i64> {
    static SERVICE: components::PerComponent<UpDownCounter<i64>> = components::PerComponent::new();
    static GATEWAY: components::PerComponent<UpDownCounter<i64>> = components::PerComponent::new();
    let (cell, name) = match role {
        ServerRole::Service => (&SERVICE, "govmedia.rpc.server.active_calls"),
        ServerRole::Gateway => (&GATEWAY, "govmedia.gateway.active_calls"),
    };
    cell.get(component, |meter| {
        meter.i64_up_down_counter(name).with_unit("{call}").with_description("gRPC calls being handled").build()
    })
}

/// One call counted in [`active_calls`] until dropped: when answered, or when its
/// client goes away and the call's future is dropped unfinished.
struct InFlight {
    counter: &'static UpDownCounter<i64>,
    attributes: [KeyValue; 1],
}

impl InFlight {
    fn new(role: ServerRole, component: Option<&'static str>, service: &str) -> Self {
        let counter = active_calls(role, component);
        let attributes = [KeyValue::new("rpc.service", service.to_owned())];
        counter.add(1, &attributes);
        Self { counter, attributes }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.counter.add(-1, &self.attributes);
    }
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
            server.address = tracing::field::Empty,
            server.port = tracing::field::Empty,
            enduser.id = tracing::field::Empty,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        // The name the caller reached this server by (HTTP/2 `:authority`).
        if let Some(authority) = request.uri().authority() {
            span.record("server.address", authority.host());
            if let Some(port) = authority.port_u16() {
                span.record("server.port", port);
            }
        }
        // A malformed or absent traceparent leaves the span as a new root.
        let _ = span.set_parent(extract_context(request.headers()));
        // Every log line of the call carries them (the span's fields), so an operator goes
        // from a log line to its trace and back.
        let context = span.context();
        let otel_span = context.span();
        let ids = otel_span.span_context();
        let component = match role {
            ServerRole::Gateway => Some("gateway"),
            ServerRole::Service => components::component_of_service(&service),
        };
        if ids.is_valid() {
            span.record("trace_id", ids.trace_id().to_string());
            span.record("span_id", ids.span_id().to_string());
            if let Some(component) = component {
                components::claim(ids.span_id(), component);
            }
        }
        // The ready clone is used; a fresh clone stays for the next poll_ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        let in_flight = InFlight::new(role, component, &service);
        Box::pin(
            async move {
                let result = inner.call(request).await;
                drop(in_flight);
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
                rpc_duration(role, component).record(
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
