//! The gRPC server every service runs: `grpc.health.v1`, reflection (v1 and v1alpha, so
//! grpcurl and Python's grpcio tools both work), the trace layer, load shedding beyond a
//! concurrency limit, a request timeout, optional token authentication, and graceful
//! shutdown (health turns NOT_SERVING, the listener closes, in-flight calls finish
//! within the grace period).
//!
//! The layer stack, outermost first: gRPC-Web translation (when enabled) -> trace (every call gets a span, refused ones too) ->
//! load shed (over the limit: UNAVAILABLE at once, never an unbounded queue) ->
//! authentication -> the service. Message size limits are set on each generated server
//! with `max_decoding_message_size(settings.max_message_bytes)`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use std::time::Duration;
use tokio::net::TcpListener;

use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use tower::ServiceBuilder;
use tower::load_shed::error::Overloaded;

use crate::auth::AuthLayer;
use crate::config::ServerSettings;
use crate::telemetry::{GrpcTraceLayer, ServerRole};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address cannot be bound.
    #[error("cannot listen on {address}: {source}")]
    Bind {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// Reflection could not be built from the descriptor set.
    #[error("cannot build gRPC reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The transport failed.
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// A TLS file cannot be read or used.
    #[error("{0}")]
    Tls(#[source] crate::config::InvalidSetting),
}

/// A server being assembled: add services, then [`ServerBuilder::bind`].
#[derive(Debug)]
pub struct ServerBuilder {
    settings: ServerSettings,
    routes: RoutesBuilder,
    service_names: Vec<String>,
    auth: Option<AuthLayer>,
    grpc_web: bool,
    allowed_origins: Vec<http::HeaderValue>,
    role: ServerRole,
    health: (HealthReporter, tonic_health::pb::health_server::HealthServer<tonic_health::server::HealthService>),
}

impl ServerBuilder {
    /// A server listening as `settings` say.
    pub fn new(settings: ServerSettings) -> Self {
        Self {
            settings,
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            auth: None,
            grpc_web: false,
            allowed_origins: Vec::new(),
            role: ServerRole::Service,
            health: {
                let reporter = HealthReporter::new();
                let service = tonic_health::pb::health_server::HealthServer::new(
                    tonic_health::server::HealthService::from_health_reporter(reporter.clone()),
                );
                (reporter, service)
            },
        }
    }

    /// The health reporter of this server: every added service starts SERVING and turns
    /// NOT_SERVING at shutdown; a server that knows better (a gateway whose upstreams are
    /// down) reports through this in between.
    pub fn health_reporter(&self) -> HealthReporter {
        self.health.0.clone()
    }

    /// Adds a gRPC service; it is reported SERVING by health and listed by reflection.
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.service_names.push(S::NAME.to_owned());
        self.routes.add_service(service);
        self
    }

    /// Adds a service known only at run time by its full name (`package.Service`), for
    /// example a proxy to another server; health and reflection treat it as any other.
    /// Reflection can describe it only if its descriptor is in govmedia's descriptor set.
    pub fn add_named_route<S>(mut self, name: &str, service: S) -> Self
    where
        S: tower::Service<
                http::Request<axum::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = Infallible,
            > + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let mut routes = std::mem::take(&mut self.routes).routes();
        let router = std::mem::take(routes.axum_router_mut());
        *routes.axum_router_mut() = router.route_service(&format!("/{name}/{{*rest}}"), service);
        self.routes = routes.into();
        self.service_names.push(name.to_owned());
        self
    }

    /// Also answers gRPC-Web (HTTP/1.1 and HTTP/2, binary and base64 text), so a browser
    /// front end can call the same API; the translation happens before anything else.
    pub fn with_grpc_web(mut self) -> Self {
        self.grpc_web = true;
        self
    }

    /// Lets browser pages from these origins call (CORS: preflights answered over
    /// HTTP/1.1 and HTTP/2, the gRPC headers a gRPC-Web client sends allowed, the status
    /// headers exposed). None: browsers on other origins are refused by the browser.
    pub fn with_allowed_origins(mut self, origins: Vec<http::HeaderValue>) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Requires a valid access token on every call the auth policy does not make public.
    pub fn with_auth(mut self, auth: AuthLayer) -> Self {
        self.auth = Some(auth);
        self
    }

    /// Traces and measures calls as the gateway's, not a service's (see [`ServerRole`]).
    pub fn as_gateway(mut self) -> Self {
        self.role = ServerRole::Gateway;
        self
    }

    /// Binds the listen address (port 0 picks a free port; see
    /// [`BoundServer::local_addr`]), or serves the socket handed over in the settings.
    pub async fn bind(self) -> Result<BoundServer, ServeError> {
        let address = self.settings.listen_address;
        let listener = match self.settings.listener.take() {
            Some(socket) => socket
                .set_nonblocking(true)
                .and_then(|()| TcpListener::from_std(socket))
                .map_err(|source| ServeError::Bind { address, source })?,
            None => TcpListener::bind(address).await.map_err(|source| ServeError::Bind { address, source })?,
        };
        let local_addr = listener.local_addr().map_err(|source| ServeError::Bind { address, source })?;
        Ok(BoundServer { builder: self, listener, local_addr })
    }
}

/// The CORS policy of a gRPC-Web edge: POST from the allowed origins with the headers
/// gRPC-Web clients send (the token, deadlines, trace context); the status headers of a
/// trailers-only answer readable by the page; preflights cached for 10 minutes.
fn cors(origins: Vec<http::HeaderValue>) -> tower_http::cors::CorsLayer {
    use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName};
    let name = HeaderName::from_static;
    tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(origins))
        .allow_methods([http::Method::POST])
        .allow_headers([
            CONTENT_TYPE,
            AUTHORIZATION,
            name("x-grpc-web"),
            name("x-user-agent"),
            name("grpc-timeout"),
            name("grpc-accept-encoding"),
            name("grpc-encoding"),
            name("traceparent"),
            name("tracestate"),
        ])
        .expose_headers([
            name("grpc-status"),
            name("grpc-message"),
            name("grpc-status-details-bin"),
            name("grpc-encoding"),
        ])
        .max_age(Duration::from_secs(600))
}

/// A server bound to its address, ready to serve.
#[derive(Debug)]
pub struct BoundServer {
    builder: ServerBuilder,
    listener: TcpListener,
    local_addr: SocketAddr,
}

impl BoundServer {
    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` completes, then drains: health says NOT_SERVING, no new
    /// connections are accepted, in-flight calls finish (up to the grace period).
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
        let BoundServer { builder, listener, local_addr } = self;
        let ServerBuilder {
            settings,
            mut routes,
            service_names,
            auth,
            grpc_web,
            allowed_origins,
            role,
            health: (health, health_service),
        } = builder;

        for name in &service_names {
            health.set_service_status(name, ServingStatus::Serving).await;
        }
        let mut reflection_v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(govmedia_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        let mut reflection_v1alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(govmedia_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("grpc.health.v1.Health");
        for name in &service_names {
            reflection_v1 = reflection_v1.with_service_name(name.clone());
            reflection_v1alpha = reflection_v1alpha.with_service_name(name.clone());
        }
        routes
            .add_service(health_service)
            .add_service(reflection_v1.with_service_name("grpc.reflection.v1.ServerReflection").build_v1()?)
            .add_service(
                reflection_v1alpha.with_service_name("grpc.reflection.v1alpha.ServerReflection").build_v1alpha()?,
            );

        // The gateway admits as many calls as keep their latency near its unloaded
        // minimum (Vegas, adapting to what it measures) and refuses the rest at once;
        // a service keeps a fixed ceiling (its callers are the gateway and its peers,
        // already limited). Both never queue (decision 0039).
        let adaptive = matches!(role, ServerRole::Gateway);
        let ceiling = settings.max_concurrent_requests.max(1);
        let shed = ServiceBuilder::new()
            .map_result(shed_to_status)
            .load_shed()
            .option_layer(adaptive.then(|| {
                tower_acc::ConcurrencyLimitLayer::new(
                    tower_acc::Vegas::builder()
                        .initial_limit(ceiling.min(32))
                        .max_limit(ceiling)
                        // A short queue: admitted calls keep close to the unloaded latency.
                        .alpha(|limit| limit.max(10).ilog10() as usize)
                        .beta(|limit| 2 * limit.max(10).ilog10() as usize)
                        // Never below a floor: a few calls at once always get in.
                        .decrease(|limit| (limit - f64::from((limit as u32).max(10).ilog10())).max(ADAPTIVE_FLOOR))
                        .build(),
                )
            }))
            .option_layer((!adaptive).then(|| tower::limit::ConcurrencyLimitLayer::new(ceiling)));
        let layers = ServiceBuilder::new()
            .option_layer((!allowed_origins.is_empty()).then(|| cors(allowed_origins)))
            .option_layer(grpc_web.then(tonic_web::GrpcWebLayer::new))
            .layer(GrpcTraceLayer { role })
            .layer(shed)
            .option_layer(auth.map(|a| {
                let a = a.trusting_proxies(settings.trusted_proxies.clone());
                if settings.tls_require_service_certificates { a.requiring_service_certificates() } else { a }
            }))
            .into_inner();

        let drain = drain_on(shutdown, health, service_names.clone());
        tracing::info!(server.address = %local_addr, services = ?service_names, "gRPC server listening");
        let grace = settings.shutdown_grace;
        let mut server = tonic::transport::Server::builder();
        if let Some(tls) = tls_config(&settings)? {
            server = server
                .tls_config(tls)
                .map_err(|e| ServeError::Tls(crate::config::InvalidSetting::new("GOVMEDIA_TLS_CERT", e.to_string())))?;
        }
        let serve = server
            .accept_http1(grpc_web)
            .timeout(settings.request_timeout)
            .layer(layers)
            .add_routes(routes.routes())
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to
                // small request/response exchanges.
                TcpIncoming::from(listener).with_nodelay(Some(true)).with_keepalive(Some(Duration::from_secs(60))),
                drain.clone().wait(),
            );
        tokio::pin!(serve);
        tokio::select! {
            result = &mut serve => result?,
            () = async { drain.wait().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(grace_seconds = grace.as_secs(), "in-flight calls outlived the shutdown grace period; stopping anyway");
            }
        }
        tracing::info!(server.address = %local_addr, "gRPC server stopped");
        Ok(())
    }
}

/// The listener's TLS, when the settings name a certificate.
fn tls_config(settings: &ServerSettings) -> Result<Option<tonic::transport::ServerTlsConfig>, ServeError> {
    let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) else { return Ok(None) };
    let read = |setting: &'static str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            ServeError::Tls(crate::config::InvalidSetting::new(setting, format!("{}: {e}", path.display())))
        })
    };
    let identity =
        tonic::transport::Identity::from_pem(read("GOVMEDIA_TLS_CERT", cert)?, read("GOVMEDIA_TLS_KEY", key)?);
    let mut tls = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &settings.tls_client_ca {
        tls = tls
            .client_ca_root(tonic::transport::Certificate::from_pem(read("GOVMEDIA_TLS_CLIENT_CA", ca)?))
            .client_auth_optional(true);
    }
    Ok(Some(tls))
}

/// The fewest calls in flight the gateway's adaptive limit admits, however slow they get.
const ADAPTIVE_FLOOR: f64 = 8.0;

/// Turns load shedding's `Overloaded` into a gRPC UNAVAILABLE answer instead of a
/// transport error.
fn shed_to_status<R: Default>(
    result: Result<http::Response<R>, tower::BoxError>,
) -> Result<http::Response<R>, tower::BoxError> {
    match result {
        Err(e) if e.is::<Overloaded>() => {
            let status = crate::rpc::status(govmedia_domain::Error::Unavailable {
                dependency: "server capacity",
                source: "too many requests in flight".into(),
            });
            Ok(status.into_http())
        }
        other => other,
    }
}

/// Fires once shutdown starts; cheap to clone and wait on.
#[derive(Debug, Clone)]
struct Drain(tokio::sync::watch::Receiver<bool>);

impl Drain {
    async fn wait(mut self) {
        let _ = self.0.wait_for(|started| *started).await;
    }
}

fn drain_on(
    shutdown: impl Future<Output = ()> + Send + 'static,
    health: HealthReporter,
    service_names: Vec<String>,
) -> Drain {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: health NOT_SERVING, finishing in-flight calls");
        for name in service_names {
            health.set_service_status(name, ServingStatus::NotServing).await;
        }
        health.set_service_status("", ServingStatus::NotServing).await;
        let _ = tx.send(true);
    });
    Drain(rx)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
