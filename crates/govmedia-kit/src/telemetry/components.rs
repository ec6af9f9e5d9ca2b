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
//! reports as the process itself. Nothing here runs under `govmedia serve`, where the
//! process is one component.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry::InstrumentationScope;
use opentelemetry::trace::{Span as _, SpanId, TraceContextExt};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{BatchLogProcessor, LogProcessor, SdkLogRecord};
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
