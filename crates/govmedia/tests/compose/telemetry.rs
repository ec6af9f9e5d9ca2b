//! What the compose deployment exported over OTLP during the story, checked as an
//! operator relies on it: in the trace store, on the dashboards, in the log store.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use crate::common::otlp::{Received, ReceivedSpan, prometheus_names, text};

const COMPONENTS: [&str; 5] = ["identity", "audit", "content", "interaction", "gateway"];

/// The RPC histograms' bucket bounds, in seconds (govmedia_kit::telemetry::RPC_SECONDS_BOUNDS).
const RPC_SECONDS_BOUNDS: [f64; 14] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];

fn is_server(s: &ReceivedSpan) -> bool {
    s.span.kind == SpanKind::Server as i32
}

fn id(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Checks everything; `audited_traces` are the trace ids the audit log holds for the
/// story's created drafts, `secret` a password the story used.
pub(crate) fn check(received: &Received, audited_traces: &[String], secret: &str) {
    let spans = received.spans();
    let metrics = received.metrics();
    let logs = received.logs();
    resources(received);
    assert!(
        !spans.iter().any(|s| s.span.name.contains("grpc.health")),
        "health probes are not traced: {:?}",
        spans.iter().filter(|s| s.span.name.contains("grpc.health")).map(|s| &s.span.name).next()
    );
    counted_once(&spans, &metrics);
    request_to_audit_record(&spans, audited_traces);
    calls_between_services(&spans);
    log_lines(received);
    dashboards(&metrics);
    for line in &logs {
        let body = text(&line.record.body);
        assert!(!body.contains(secret), "a password in an exported log line: {body}");
        for value in crate::common::otlp::attributes(&line.record.attributes).values() {
            assert!(!value.contains(secret), "a password in an exported log line's fields: {body}");
        }
    }
}

/// Each component reports as itself: `service.name` govmedia-<component>, the release,
/// an instance id, the deployment environment the compose file sets.
fn resources(received: &Received) {
    let spans = received.spans();
    let metrics = received.metrics();
    let logs = received.logs();
    for component in COMPONENTS {
        let name = format!("govmedia-{component}");
        let resource =
            &spans.iter().find(|s| s.service() == name).unwrap_or_else(|| panic!("no spans from {name}")).resource;
        assert_eq!(resource.get("service.version").map(String::as_str), Some(env!("CARGO_PKG_VERSION")), "{name}");
        assert_eq!(resource.get("service.instance.id").map(String::len), Some(36), "{name}: {resource:?}");
        assert_eq!(
            resource.get("deployment.environment.name").map(String::as_str),
            Some("production"),
            "{name}: {resource:?}"
        );
        assert!(metrics.iter().any(|m| m.resource.get("service.name") == Some(&name)), "no metrics from {name}");
        assert!(logs.iter().any(|l| l.resource.get("service.name") == Some(&name)), "no log lines from {name}");
    }
}

/// The gateway's calls are the gateway's (`gateway <service>/<method>`,
/// `govmedia.gateway.call.duration`), the services' are theirs: each call the gateway
/// forwarded has exactly one server span in a service, as its child. Histograms are in
/// seconds with bounds that fit calls.
fn counted_once(spans: &[ReceivedSpan], metrics: &[crate::common::otlp::ReceivedMetric]) {
    let gateway: Vec<&ReceivedSpan> =
        spans.iter().filter(|s| is_server(s) && s.service() == "govmedia-gateway").collect();
    let services: Vec<&ReceivedSpan> =
        spans.iter().filter(|s| is_server(s) && s.service() != "govmedia-gateway").collect();
    assert!(gateway.len() > 20, "the story's calls through the gateway: {}", gateway.len());
    assert!(gateway.iter().all(|s| s.span.name.starts_with("gateway ")), "gateway spans are named as the gateway's");
    assert!(services.iter().all(|s| !s.span.name.starts_with("gateway ")), "services' spans are their own");
    let mut children: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    for s in &services {
        *children.entry(s.span.parent_span_id.clone()).or_default() += 1;
    }
    for g in gateway.iter().filter(|g| g.attribute("rpc.grpc.status_code") == "0") {
        assert_eq!(
            children.get(&g.span.span_id).copied().unwrap_or(0),
            1,
            "{} answered by exactly one service span",
            g.span.name
        );
        assert!(g.attribute("server.port").parse::<u16>().is_ok(), "{}: server.port", g.span.name);
    }

    let histogram = |name: &str, service: &str| {
        metrics
            .iter()
            .filter(|m| m.metric.name == name && m.resource.get("service.name").map(String::as_str) == Some(service))
            .collect::<Vec<_>>()
    };
    for component in COMPONENTS {
        let service = format!("govmedia-{component}");
        let (own, other) = if component == "gateway" {
            ("govmedia.gateway.call.duration", "rpc.server.call.duration")
        } else {
            ("rpc.server.call.duration", "govmedia.gateway.call.duration")
        };
        let found = histogram(own, &service);
        assert!(!found.is_empty(), "{service} exported no {own}");
        assert!(histogram(other, &service).is_empty(), "{service} counted its calls as {other} too");
        for m in found {
            assert_eq!(m.metric.unit, "s", "{own} in seconds");
            let Some(Data::Histogram(h)) = &m.metric.data else { panic!("{own} is a histogram") };
            for point in &h.data_points {
                assert_eq!(point.explicit_bounds, RPC_SECONDS_BOUNDS, "{own} bounds");
            }
        }
    }
}

/// One request leads to its audit record: the caller's CreateDraft through the gateway to
/// content, a database span for its statements, and the relay's delivery (a span linking
/// to it) to the audit service's AppendEvents, whose record keeps the request's trace id.
fn request_to_audit_record(spans: &[ReceivedSpan], audited_traces: &[String]) {
    let created: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| {
            s.service() == "govmedia-gateway"
                && s.span.name == "gateway govmedia.content.v1.DraftService/CreateDraft"
                && s.attribute("rpc.grpc.status_code") == "0"
        })
        .collect();
    assert!(!created.is_empty(), "the story created a draft through the gateway");
    let edge = created
        .iter()
        .find(|s| audited_traces.contains(&id(&s.span.trace_id)))
        .unwrap_or_else(|| panic!("no audit record holds a CreateDraft trace; audited: {audited_traces:?}"));
    let trace = &edge.span.trace_id;
    let in_trace: Vec<&ReceivedSpan> = spans.iter().filter(|s| &s.span.trace_id == trace).collect();
    let served = in_trace
        .iter()
        .find(|s| s.service() == "govmedia-content" && s.span.parent_span_id == edge.span.span_id)
        .expect("content's CreateDraft span is the gateway span's child");
    assert_eq!(served.span.name, "govmedia.content.v1.DraftService/CreateDraft");
    let statements: Vec<&&ReceivedSpan> = in_trace.iter().filter(|s| s.scope == "govmedia.database").collect();
    assert!(
        statements.iter().any(|s| s.attribute("db.system.name") == "postgresql"
            && s.attribute("db.query.text").to_uppercase().contains("INSERT")),
        "the draft's INSERT is a database span in the request's trace: {:?}",
        statements.iter().map(|s| &s.span.name).collect::<Vec<_>>()
    );
    let content_in_trace: BTreeSet<&Vec<u8>> =
        in_trace.iter().filter(|s| s.service() == "govmedia-content").map(|s| &s.span.span_id).collect();
    let delivery = spans
        .iter()
        .find(|s| {
            s.service() == "govmedia-content"
                && s.span.name == "outbox deliver"
                && s.span.links.iter().any(|l| &l.trace_id == trace && content_in_trace.contains(&l.span_id))
        })
        .expect("the outbox delivery carrying the draft's record links to the request's span");
    let append = spans
        .iter()
        .find(|s| {
            s.span.parent_span_id == delivery.span.span_id
                && s.span.kind == SpanKind::Client as i32
                && s.span.name == "govmedia.audit.v1.AuditLogService/AppendEvents"
        })
        .expect("the delivery's AppendEvents client span");
    assert!(
        spans.iter().any(|s| s.service() == "govmedia-audit"
            && is_server(s)
            && s.span.parent_span_id == append.span.span_id
            && s.span.name == "govmedia.audit.v1.AuditLogService/AppendEvents"),
        "the audit service's AppendEvents span is the client span's child"
    );
}

/// Calls between services are client spans whose callee's server span is their child:
/// permission checks to identity, screening to audit.
fn calls_between_services(spans: &[ReceivedSpan]) {
    for (caller, callee, name) in [
        ("govmedia-content", "govmedia-identity", "govmedia.identity.v1.AccessService/CheckPermission"),
        ("govmedia-content", "govmedia-audit", "govmedia.audit.v1.ScreeningService/ScreenText"),
    ] {
        let client: Vec<&ReceivedSpan> = spans
            .iter()
            .filter(|s| s.service() == caller && s.span.kind == SpanKind::Client as i32 && s.span.name == name)
            .collect();
        assert!(!client.is_empty(), "{caller} made no {name} client span");
        assert!(
            client.iter().any(|c| spans.iter().any(|s| s.service() == callee
                && is_server(s)
                && s.span.parent_span_id == c.span.span_id
                && s.span.trace_id == c.span.trace_id)),
            "{callee}'s {name} server span is {caller}'s client span's child"
        );
    }
}

/// Log lines go out over OTLP; the ones written inside a call carry its trace and span.
fn log_lines(received: &Received) {
    let logs = received.logs();
    let in_calls = logs.iter().filter(|l| l.record.trace_id.len() == 16 && l.record.span_id.len() == 8).count();
    assert!(in_calls > 0, "no exported log line carries a trace id (of {} lines)", logs.len());
    // The identity service's first start names the administrator's one-time password
    // on stdout only: the exporters' own lines never loop back in.
    assert!(logs.iter().all(|l| !text(&l.record.body).contains("OTLP")), "the exporter's own complaints were exported");
}

/// Every metric a dashboard queries is one the suite exported (as the collector's
/// Prometheus exporter names it).
fn dashboards(metrics: &[crate::common::otlp::ReceivedMetric]) {
    let exported: BTreeSet<String> = metrics.iter().flat_map(|m| prometheus_names(&m.metric)).collect();
    // Label names in the queries (`by (rpc_method)`) are the exported attributes' keys.
    let labels: BTreeSet<String> = metrics
        .iter()
        .flat_map(|m| crate::common::otlp::point_attribute_keys(&m.metric))
        .map(|k| k.replace('.', "_"))
        .collect();
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/dashboards");
    let mut queried = BTreeSet::new();
    for entry in std::fs::read_dir(&folder).expect("dashboards") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let board: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        let mut expressions = Vec::new();
        collect_expressions(&board, &mut expressions);
        assert!(!expressions.is_empty(), "{} has no queries", path.display());
        for expr in expressions {
            for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':')) {
                if (token.starts_with("govmedia_") || token.starts_with("rpc_")) && !labels.contains(token) {
                    queried.insert((path.file_name().expect("name").to_string_lossy().into_owned(), token.to_owned()));
                }
            }
        }
    }
    assert!(queried.len() > 10, "the dashboards query the suite's metrics: {queried:?}");
    let missing: Vec<_> = queried.iter().filter(|(_, metric)| !exported.contains(metric)).collect();
    assert!(missing.is_empty(), "dashboards query metrics nothing exported: {missing:?}\nexported: {exported:?}");
}

fn collect_expressions(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_expressions(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_expressions(v, out)),
        _ => {}
    }
}
