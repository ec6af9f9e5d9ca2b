//! One process, several components, each reporting as itself.
//!
//! `govmedia up` runs identity, audit, content, interaction and the gateway in one
//! process, yet a trace store and a log store must see `govmedia-identity`, …,
//! `govmedia-gateway` as under `govmedia serve`: a resource (`service.name`) belongs to
//! an exporter, so spans and log lines are routed to one exporter per component.
//!
//! A span belongs to the component that claims it ([`claim`]: a server span by the
//! service it serves, an outbox delivery by its relay) or else to its parent's; a log line
//! to its span's. What belongs to none (start-up, background polls outside any call)
//! reports as the process itself.
//!
//! Metrics have a meter provider per component ([`meter`]); an instrument recorded by
//! more than one component (the kit's: calls, transactions, outboxes) is made once per
//! component ([`PerComponent`]). Nothing here routes under `govmedia serve`, where the
//! process is one component and every meter is the global one.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::{Span as _, SpanId, TraceContextExt};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{BatchLogProcessor, LogProcessor, SdkLogRecord};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{BatchSpanProcessor, Span, SpanData, SpanProcessor};

/// Which component each live span belongs to; present only when routing is on.
static OWNERS: OnceLock<Mutex<HashMap<SpanId, &'static str>>> = OnceLock::new();

fn owners() -> Option<std::sync::MutexGuard<'static, HashMap<SpanId, &'static str>>> {
    OWNERS.get().map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Says that the span `span_id` (and what it starts) belongs to `component`. A no-op
/// unless this process routes by component.
pub fn claim(span_id: SpanId, component: &'static str) {
    if let Some(mut owners) = owners() {
        owners.insert(span_id, component);
    }
}

fn owner_of(span_id: SpanId) -> Option<&'static str> {
    owners().and_then(|o| o.get(&span_id).copied())
}

/// The component a service's gRPC name belongs to: `govmedia.<component>.v1.…`.
pub fn component_of_service(service: &str) -> Option<&'static str> {
    let mut parts = service.split('.');
    match (parts.next(), parts.next()) {
        (Some("govmedia"), Some("identity")) => Some("identity"),
        (Some("govmedia"), Some("audit")) => Some("audit"),
        (Some("govmedia"), Some("content")) => Some("content"),
        (Some("govmedia"), Some("interaction")) => Some("interaction"),
        _ => None,
    }
}

/// Each component's meter provider; present only when routing is on.
static METERS: OnceLock<Vec<(&'static str, SdkMeterProvider)>> = OnceLock::new();

/// Installs the components' meter providers (once per process).
pub(super) fn install_meters(meters: Vec<(&'static str, SdkMeterProvider)>) {
    let _ = METERS.set(meters);
}

/// The meter `component`'s instruments are made from: its own provider under
/// `govmedia up`, the process's (global) one otherwise or for `None`.
pub fn meter(component: Option<&str>) -> Meter {
    component
        .and_then(|c| METERS.get()?.iter().find(|(name, _)| *name == c))
        .map_or_else(|| opentelemetry::global::meter("govmedia"), |(_, provider)| provider.meter("govmedia"))
}

/// `component` when this process routes by component, else `None` (the process).
pub fn routed(component: &'static str) -> Option<&'static str> {
    METERS.get().and_then(|m| m.iter().any(|(name, _)| *name == component).then_some(component))
}

/// The component the current span belongs to, when this process routes by component:
/// for what is measured inside a call without knowing whose (a transaction's start).
pub fn current() -> Option<&'static str> {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    METERS.get()?;
    let context = tracing::Span::current().context();
    let span = context.span();
    owner_of(span.span_context().span_id())
}

/// One instrument per component, made on first use from the component's meter; under
/// `govmedia serve` a single one.
#[derive(Debug)]
pub struct PerComponent<I> {
    cells: [OnceLock<I>; 6],
}

impl<I> Default for PerComponent<I> {
    fn default() -> Self {
        Self::new()
    }
}

impl<I> PerComponent<I> {
    /// No instrument made yet.
    pub const fn new() -> Self {
        Self { cells: [const { OnceLock::new() }; 6] }
    }

    /// `component`'s instrument, made by `make` from its meter the first time.
    pub fn get(&self, component: Option<&'static str>, make: impl FnOnce(Meter) -> I) -> &I {
        let component = component.filter(|_| METERS.get().is_some());
        let index = match component {
            Some("identity") => 0,
            Some("audit") => 1,
            Some("content") => 2,
            Some("interaction") => 3,
            Some("gateway") => 4,
            _ => 5,
        };
        self.cells[index].get_or_init(|| make(meter(component)))
    }
}

/// A processor per component and one for the rest, each flushed and shut down with the
/// others.
#[derive(Debug)]
pub(super) struct Routes<P> {
    pub(super) process: P,
    pub(super) components: Vec<(&'static str, P)>,
}

impl<P> Routes<P> {
    /// The processor of `owner`'s component, or the process's.
    fn to(&self, owner: Option<&'static str>) -> &P {
        owner
            .and_then(|o| self.components.iter().find(|(name, _)| *name == o))
            .map_or(&self.process, |(_, processor)| processor)
    }

    /// Runs `f` on every processor, even after one failed; the first error is answered.
    fn all(&self, f: impl Fn(&P) -> OTelSdkResult) -> OTelSdkResult {
        let results: Vec<OTelSdkResult> =
            std::iter::once(&self.process).chain(self.components.iter().map(|(_, p)| p)).map(f).collect();
        results.into_iter().find(Result::is_err).unwrap_or(Ok(()))
    }
}

/// Routes ended spans to their component's batch processor (each with the component's
/// resource), the rest to the process's.
#[derive(Debug)]
pub(super) struct SpanRouter(pub(super) Routes<BatchSpanProcessor>);

impl SpanRouter {
    /// Turns on ownership tracking for the process.
    pub(super) fn install(self) -> Self {
        let _ = OWNERS.set(Mutex::new(HashMap::new()));
        self
    }
}

impl SpanProcessor for SpanRouter {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        let parent = cx.span().span_context().clone();
        if parent.is_valid()
            && let Some(owner) = owner_of(parent.span_id())
        {
            claim(span.span_context().span_id(), owner);
        }
    }

    fn on_end(&self, span: SpanData) {
        let owner = owners().and_then(|mut o| o.remove(&span.span_context.span_id()));
        self.0.to(owner).on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.all(BatchSpanProcessor::force_flush)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.all(|p| p.shutdown_with_timeout(timeout))
    }

    fn set_resource(&mut self, resource: &Resource) {
        // The components' resources are their own, set when they were made.
        self.0.process.set_resource(resource);
    }
}

/// Routes log lines to the component of the span they were written in.
#[derive(Debug)]
pub(super) struct LogRouter(pub(super) Routes<BatchLogProcessor>);

impl LogProcessor for LogRouter {
    fn emit(&self, data: &mut SdkLogRecord, instrumentation: &InstrumentationScope) {
        let owner = data.trace_context().and_then(|t| owner_of(t.span_id));
        self.0.to(owner).emit(data, instrumentation);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.all(BatchLogProcessor::force_flush)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.all(|p| p.shutdown_with_timeout(timeout))
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.0.process.set_resource(resource);
    }
}
