//! The forwarding service: an incoming HTTP/2 gRPC request goes to one replica of its
//! upstream unchanged — path, metadata (the caller's token and `traceparent` included), the
//! body — and the replica's response comes back streamed, with its trailers.
//!
//! A call whose request is a single message (unary and server-streaming methods, read
//! from the descriptor set) is held in memory, up to the message size limit, so that when
//! its replica cannot be reached — connection refused, or the connection gone before the
//! request was written — it goes to another replica instead of failing: that call never
//! started anywhere, so sending it again cannot do anything twice. A call that had reached
//! a replica is never resent. Client-streaming calls are streamed through, not held, and
//! not retried. An upstream none of whose replicas can be reached answers UNAVAILABLE
//! naming the package, never a broken connection.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http_body_util::BodyExt;
use opentelemetry::KeyValue;
use tower::ServiceExt;

use crate::Upstream;

/// Forwards calls to one upstream.
#[derive(Debug, Clone)]
pub struct Proxy {
    upstream: Upstream,
    max_message_bytes: usize,
    client_streaming: Arc<std::collections::HashSet<String>>,
    limits: Option<crate::limit::Limits>,
}

impl Proxy {
    /// A proxy to `upstream`, holding requests of at most `max_message_bytes`.
    pub fn new(upstream: Upstream, max_message_bytes: usize) -> Self {
        // Every reason starts at zero, so a dashboard shows 0 rather than no data.
        for reason in REJECTION_REASONS {
            rejections().add(0, &[KeyValue::new("reason", reason), KeyValue::new("package", upstream.package)]);
        }
        Self {
            client_streaming: Arc::new(crate::routes::client_streaming_methods(upstream.package)),
            upstream,
            max_message_bytes,
            limits: None,
        }
    }

    /// Counts every call against its caller's rate limit first.
    pub fn with_limits(mut self, limits: Option<crate::limit::Limits>) -> Self {
        self.limits = limits;
        self
    }
}

type Response = http::Response<tonic::body::Body>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Answers a call the gateway refused itself, counted by `reason` in
/// `govmedia.gateway.rejections` (`rate_limited`, `message_too_large`,
/// `upstream_unavailable`, `caller_gone`): what a dashboard shows beside the upstreams'
/// own answers.
fn refuse(reason: &'static str, package: &'static str, error: govmedia_domain::Error) -> Result<Response, Infallible> {
    rejections().add(1, &[KeyValue::new("reason", reason), KeyValue::new("package", package)]);
    Ok(govmedia_kit::rpc::status(error).into_http())
}

const REJECTION_REASONS: [&str; 4] = ["rate_limited", "message_too_large", "upstream_unavailable", "caller_gone"];

fn rejections() -> &'static opentelemetry::metrics::Counter<u64> {
    static REJECTIONS: std::sync::OnceLock<opentelemetry::metrics::Counter<u64>> = std::sync::OnceLock::new();
    REJECTIONS.get_or_init(|| {
        govmedia_kit::telemetry::meter(Some("gateway"))
            .u64_counter("govmedia.gateway.rejections")
            .with_unit("{call}")
            .with_description("Calls the gateway answered itself, without an upstream's answer, by reason")
            .build()
    })
}

impl tower::Service<http::Request<axum::body::Body>> for Proxy {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Each replica's readiness is awaited per call: one replica's state must not
        // hold up the server's other routes.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<axum::body::Body>) -> Self::Future {
        // The edge's span (the kit's trace layer, entered around this call) becomes the
        // parent of the service's: a trace started here, or continued from the caller,
        // runs on through the upstream.
        {
            use tracing_opentelemetry::OpenTelemetrySpanExt;
            let context = tracing::Span::current().context();
            govmedia_kit::telemetry::inject_context_headers(&context, request.headers_mut());
        }
        // The services behind see the caller, not the gateway (they trust this header
        // from the gateway's address only); whatever the caller sent in it is replaced.
        let client = request.extensions().get::<govmedia_kit::auth::ClientAddress>().map(|a| a.0.to_string());
        match client.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
            Some(value) => {
                request.headers_mut().insert(govmedia_kit::auth::CLIENT_ADDRESS_HEADER, value);
            }
            None => {
                request.headers_mut().remove(govmedia_kit::auth::CLIENT_ADDRESS_HEADER);
            }
        }
        if let Some(limits) = &self.limits
            && let Err(retry_after) = limits.check(&crate::limit::Caller::of(&request))
        {
            let package = self.upstream.package;
            return Box::pin(std::future::ready(refuse(
                "rate_limited",
                package,
                govmedia_domain::Error::RateLimited { retry_after },
            )));
        }
        let this = self.clone();
        Box::pin(async move {
            if this.client_streaming.contains(request.uri().path()) {
                return this.forward_streaming(request).await;
            }
            let (parts, body) = request.into_parts();
            let body =
                match http_body_util::Limited::new(body, this.max_message_bytes + GRPC_FRAME_HEADER).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                        return refuse(
                            "message_too_large",
                            this.upstream.package,
                            govmedia_domain::Error::MessageTooLarge { limit: this.max_message_bytes },
                        );
                    }
                    // The caller went away or sent a broken stream: nobody waits for an answer.
                    Err(e) => {
                        return refuse(
                            "caller_gone",
                            this.upstream.package,
                            govmedia_domain::Error::Unavailable { dependency: "caller", source: e },
                        );
                    }
                };
            this.forward_held(parts, body).await
        })
    }
}

/// The gRPC length-prefixed frame's header: a flag byte and a 4-byte length.
const GRPC_FRAME_HEADER: usize = 5;

impl Proxy {
    /// Sends a held request to one replica after another until one takes it.
    async fn forward_held(&self, parts: http::request::Parts, body: bytes::Bytes) -> Result<Response, Infallible> {
        let replicas = self.upstream.replicas();
        let mut tried = Vec::with_capacity(replicas.len());
        let mut last_error: Option<BoxError> = None;
        while let Some(i) = replicas.pick(&tried) {
            tried.push(i);
            let replica = &replicas[i];
            let mut request = http::Request::from_parts(
                parts.clone(),
                tonic::body::Body::new(http_body_util::Full::new(body.clone()).map_err(|never| match never {})),
            );
            // Extensions (the verified principal, the peer address) are the gateway's own.
            request.extensions_mut().clear();
            let _in_flight = replica.start_call();
            match replica.channel.clone().oneshot(request).await {
                Ok(response) => return Ok(response),
                Err(error) if never_sent(&error) => {
                    if replica.set_in_service(false) {
                        tracing::warn!(package = self.upstream.package, replica = %replica.address, %error,
                            "replica unreachable; taken out of service, the call goes to another");
                    }
                    last_error = Some(error.into());
                }
                Err(error) => return self.unavailable(error.into()),
            }
        }
        self.unavailable(last_error.unwrap_or_else(|| "no replica".into()))
    }

    /// Streams a client-streaming call to one replica.
    async fn forward_streaming(&self, request: http::Request<axum::body::Body>) -> Result<Response, Infallible> {
        let replicas = self.upstream.replicas();
        let Some(i) = replicas.pick(&[]) else { return self.unavailable("no replica".into()) };
        let replica = &replicas[i];
        let _in_flight = replica.start_call();
        match replica.channel.clone().oneshot(request.map(tonic::body::Body::new)).await {
            Ok(response) => Ok(response),
            Err(error) => {
                if never_sent(&error) {
                    replica.set_in_service(false);
                }
                self.unavailable(error.into())
            }
        }
    }

    fn unavailable(&self, error: BoxError) -> Result<Response, Infallible> {
        refuse(
            "upstream_unavailable",
            self.upstream.package,
            govmedia_domain::Error::Unavailable { dependency: self.upstream.package, source: error },
        )
    }
}

/// Whether `error` says the request never left the gateway: the connection could not be
/// made, or it closed before the request was written (hyper's "canceled"), or the server
/// said it did not process the stream: HTTP/2 REFUSED_STREAM, or a graceful GOAWAY whose
/// last stream id is below this one (h2 reports exactly those streams as a remote GOAWAY
/// with NO_ERROR; a connection that breaks later is reported differently).
fn never_sent(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>()
            && h.is_canceled()
        {
            return true;
        }
        if let Some(h) = e.downcast_ref::<h2::Error>()
            && (h.reason() == Some(h2::Reason::REFUSED_STREAM)
                || (h.is_go_away() && h.is_remote() && h.reason() == Some(h2::Reason::NO_ERROR)))
        {
            return true;
        }
        cause = e.source();
    }
    false
}
