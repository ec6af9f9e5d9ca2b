//! An OTLP/gRPC receiver inside the test (what the collector is in a deployment): it
//! keeps every trace, metric and log export it is sent, so a test can read what the
//! services exported, as a collector would have received it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;

/// What the receiver was sent.
#[derive(Debug, Clone, Default)]
pub struct Received {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
    logs: Arc<Mutex<Vec<ExportLogsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.traces.lock().expect("lock").push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.metrics.lock().expect("lock").push(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse { partial_success: None }))
    }
}

#[tonic::async_trait]
impl LogsService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.logs.lock().expect("lock").push(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse { partial_success: None }))
    }
}

/// Starts a receiver on a loopback port; returns its endpoint (`http://127.0.0.1:N`) and
/// what it receives. It runs until the test's runtime ends.
pub async fn start() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    let received = Received::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(received.clone()))
        .add_service(MetricsServiceServer::new(received.clone()))
        .add_service(LogsServiceServer::new(received.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(async move {
        if let Err(e) = server.await {
            eprintln!("the OTLP receiver stopped: {e}");
        }
    });
    (endpoint, received)
}

/// An attribute's value as text (strings as they are; numbers and booleans printed).
pub fn text(value: &Option<AnyValue>) -> String {
    match value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        _ => String::new(),
    }
}

/// The attributes as a map of texts.
pub fn attributes(attributes: &[KeyValue]) -> BTreeMap<String, String> {
    attributes.iter().map(|kv| (kv.key.clone(), text(&kv.value))).collect()
}

fn resource_attributes(resource: &Option<Resource>) -> BTreeMap<String, String> {
    resource.as_ref().map(|r| attributes(&r.attributes)).unwrap_or_default()
}

/// A span with its resource's attributes and its instrumentation scope's name.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub resource: BTreeMap<String, String>,
    pub scope: String,
    pub span: Span,
}

impl ReceivedSpan {
    pub fn service(&self) -> &str {
        self.resource.get("service.name").map_or("", String::as_str)
    }

    pub fn attribute(&self, key: &str) -> String {
        attributes(&self.span.attributes).get(key).cloned().unwrap_or_default()
    }
}

/// A metric with its resource's attributes.
#[derive(Debug, Clone)]
pub struct ReceivedMetric {
    pub resource: BTreeMap<String, String>,
    pub metric: Metric,
}

/// A log record with its resource's attributes.
#[derive(Debug, Clone)]
pub struct ReceivedLog {
    pub resource: BTreeMap<String, String>,
    pub record: LogRecord,
}

impl Received {
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        let mut out = Vec::new();
        for export in self.traces.lock().expect("lock").iter() {
            for resource_spans in &export.resource_spans {
                let resource = resource_attributes(&resource_spans.resource);
                for scope_spans in &resource_spans.scope_spans {
                    let scope = scope_spans.scope.as_ref().map(|s| s.name.clone()).unwrap_or_default();
                    for span in &scope_spans.spans {
                        out.push(ReceivedSpan { resource: resource.clone(), scope: scope.clone(), span: span.clone() });
                    }
                }
            }
        }
        out
    }

    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        let mut out = Vec::new();
        for export in self.metrics.lock().expect("lock").iter() {
            for resource_metrics in &export.resource_metrics {
                let resource = resource_attributes(&resource_metrics.resource);
                for scope_metrics in &resource_metrics.scope_metrics {
                    for metric in &scope_metrics.metrics {
                        out.push(ReceivedMetric { resource: resource.clone(), metric: metric.clone() });
                    }
                }
            }
        }
        out
    }

    /// Every export received, written out whole (`Debug`): names, attributes, bodies,
    /// events, resources — what a scan for secrets reads.
    pub fn dump(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, export) in self.traces.lock().expect("lock").iter().enumerate() {
            out.push((format!("trace export {i}"), format!("{export:?}")));
        }
        for (i, export) in self.metrics.lock().expect("lock").iter().enumerate() {
            out.push((format!("metric export {i}"), format!("{export:?}")));
        }
        for (i, export) in self.logs.lock().expect("lock").iter().enumerate() {
            out.push((format!("log export {i}"), format!("{export:?}")));
        }
        out
    }

    pub fn logs(&self) -> Vec<ReceivedLog> {
        let mut out = Vec::new();
        for export in self.logs.lock().expect("lock").iter() {
            for resource_logs in &export.resource_logs {
                let resource = resource_attributes(&resource_logs.resource);
                for scope_logs in &resource_logs.scope_logs {
                    for record in &scope_logs.log_records {
                        out.push(ReceivedLog { resource: resource.clone(), record: record.clone() });
                    }
                }
            }
        }
        out
    }
}

/// The names Prometheus gives an exported metric (the collector's `prometheus`
/// exporter: dots to underscores, the unit as a suffix unless it is an annotation in
/// braces, `_total` on counters, `_bucket`/`_sum`/`_count` on histograms).
pub fn prometheus_names(metric: &Metric) -> Vec<String> {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let mut base = metric.name.replace(['.', '-'], "_");
    let unit = match metric.unit.as_str() {
        "s" => "seconds",
        "ms" => "milliseconds",
        "By" => "bytes",
        "1" => "ratio",
        _ => "",
    };
    if !unit.is_empty() && !base.ends_with(unit) {
        base = format!("{base}_{unit}");
    }
    match &metric.data {
        Some(Data::Sum(sum)) if sum.is_monotonic => vec![format!("{base}_total")],
        Some(Data::Histogram(_)) => {
            vec![format!("{base}_bucket"), format!("{base}_sum"), format!("{base}_count")]
        }
        _ => vec![base],
    }
}

/// The attributes of each of a metric's data points.
fn point_attributes(metric: &Metric) -> Vec<&[KeyValue]> {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    match &metric.data {
        Some(Data::Sum(d)) => d.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
        Some(Data::Gauge(d)) => d.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
        Some(Data::Histogram(d)) => d.data_points.iter().map(|p| p.attributes.as_slice()).collect(),
        _ => Vec::new(),
    }
}

/// The attribute keys of a metric's data points.
pub fn point_attribute_keys(metric: &Metric) -> Vec<String> {
    point_attributes(metric).into_iter().flatten().map(|kv| kv.key.clone()).collect()
}

/// The values of attribute `key` on a metric's data points (as text).
pub fn point_attribute_values(metric: &Metric, key: &str) -> Vec<String> {
    point_attributes(metric).into_iter().flatten().filter(|kv| kv.key == key).map(|kv| text(&kv.value)).collect()
}
