//! The forwarding service: an incoming HTTP/2 gRPC request goes to the upstream channel
//! unchanged — path, metadata (the caller's token and `traceparent` included), the body
//! streamed — and the upstream's response comes back with its trailers. An upstream that
//! cannot be reached answers UNAVAILABLE naming the package, never a broken connection.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::transport::Channel;
use tower::{Service, ServiceExt};

/// Forwards calls to one upstream.
#[derive(Debug, Clone)]
pub struct Proxy {
    channel: Channel,
    package: &'static str,
    limits: Option<crate::limit::Limits>,
}

impl Proxy {
    /// A proxy to `channel`, serving `package` (named in UNAVAILABLE answers).
    pub fn new(channel: Channel, package: &'static str) -> Self {
        Self { channel, package, limits: None }
    }

    /// Counts every call against its caller's rate limit first.
    pub fn with_limits(mut self, limits: Option<crate::limit::Limits>) -> Self {
        self.limits = limits;
        self
    }
}

impl Service<http::Request<axum::body::Body>> for Proxy {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is awaited per call on a clone: the balancer's readiness must not
        // hold up the server's other routes.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        if let Some(limits) = &self.limits
            && let Err(retry_after) = limits.check(&crate::limit::Caller::of(&request))
        {
            let status: tonic::Status = govmedia_domain::Error::RateLimited { retry_after }.into();
            return Box::pin(std::future::ready(Ok(status.into_http())));
        }
        let channel = self.channel.clone();
        let package = self.package;
        Box::pin(async move {
            let request = request.map(tonic::body::Body::new);
            match channel.oneshot(request).await {
                Ok(response) => Ok(response),
                Err(error) => {
                    let status: tonic::Status =
                        govmedia_domain::Error::Unavailable { dependency: package, source: Box::new(error) }.into();
                    Ok(status.into_http())
                }
            }
        })
    }
}
