//! The gateway (`govmedia-gateway`): the single entry point for outside callers. Each
//! call is routed by its gRPC service name to the upstream serving that package —
//! `govmedia.identity.v1.*` to identity, and so on — without decoding the messages:
//! the HTTP/2 request goes on as it came, and the response, streamed, with its trailers,
//! comes back as it was sent. An upstream may be several replicas, balanced by the power of
//! two choices; a call that never reached a replica (it died since the last probe) is
//! sent to another, so losing a replica loses no call that had not started.
//!
//! It also answers gRPC-Web (HTTP/1.1 included), so a browser front end calls the same
//! API without another proxy.
//!
//! At the edge the gateway verifies the access token (identity's public methods such as
//! login excepted), caps message size and deadline and sheds load beyond its concurrency
//! limit — the kit's server stack. The services verify the token again: the gateway is a
//! first line, not the only one.
//!
//! Layout: `proxy` (the forwarding service), `upstream` (each package's replicas, found
//! again by name every few seconds), `health` (probing them), `routes` (which services each
//! upstream serves, from the descriptor set), `limit` (callers' rates); this file holds
//! the settings and [`server`].

pub mod health;
pub mod limit;
pub mod proxy;
pub mod routes;
pub mod upstream;

use std::sync::Arc;

pub use upstream::{Replica, Replicas, Upstream};

use govmedia_kit::auth::{AuthLayer, AuthPolicy, TokenVerifier};
use govmedia_kit::config::ServerSettings;
use govmedia_kit::server::ServerBuilder;

/// Why the service could not start: the setting and what is wrong with it.
pub use govmedia_kit::config::InvalidSetting as SettingError;

/// The gateway's server: every service of every upstream's package, routed to it, with
/// tokens verified by `verifier` at the edge and calls counted against `limits`.
pub fn server(
    upstreams: &[Upstream],
    settings: ServerSettings,
    verifier: Arc<TokenVerifier>,
    limits: Option<limit::Limits>,
) -> ServerBuilder {
    let policy = AuthPolicy::standard()
        .with_public(govmedia_proto::identity::PUBLIC_METHODS.iter().copied())
        .with_password_change_allowed(govmedia_proto::identity::PASSWORD_CHANGE_METHODS.iter().copied());
    let settings_limit = settings.max_message_bytes;
    let mut builder =
        ServerBuilder::new(settings).with_auth(AuthLayer::new(verifier, policy)).with_grpc_web().as_gateway();
    for upstream in upstreams {
        for service in routes::services_of(upstream.package) {
            builder = builder.add_named_route(
                &service,
                proxy::Proxy::new(upstream.clone(), settings_limit).with_limits(limits.clone()),
            );
        }
    }
    builder
}

/// Where each package's replicas are.
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamOptions {
    /// Identity replicas (`http://host:port`, separated by commas). A host name stands for
    /// every address it resolves to, looked up again every few seconds (a Kubernetes
    /// headless Service names each ready pod).
    #[arg(long, env = "GOVMEDIA_GATEWAY_IDENTITY_UPSTREAMS", value_name = "URLS")]
    pub identity_upstreams: Option<String>,
    /// Content replicas.
    #[arg(long, env = "GOVMEDIA_GATEWAY_CONTENT_UPSTREAMS", value_name = "URLS")]
    pub content_upstreams: Option<String>,
    /// Interaction replicas.
    #[arg(long, env = "GOVMEDIA_GATEWAY_INTERACTION_UPSTREAMS", value_name = "URLS")]
    pub interaction_upstreams: Option<String>,
    /// Audit replicas.
    #[arg(long, env = "GOVMEDIA_GATEWAY_AUDIT_UPSTREAMS", value_name = "URLS")]
    pub audit_upstreams: Option<String>,
}

/// Everything the gateway is configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "govmedia-gateway", about = "The govmedia gateway: one entry point for every service")]
pub struct GatewaySettings {
    /// The configuration file.
    #[command(flatten)]
    pub config: govmedia_kit::config::ConfigFileSettings,
    /// The gRPC server callers reach.
    #[command(flatten)]
    pub server: ServerSettings,
    /// Logs, traces, metrics.
    #[command(flatten)]
    pub telemetry: govmedia_kit::config::TelemetrySettings,
    /// The upstreams.
    #[command(flatten)]
    pub upstreams: UpstreamOptions,
    /// Calls per second each caller may make (a principal, or an address for calls
    /// without a token); 0 for no limit.
    #[arg(long, env = "GOVMEDIA_GATEWAY_RATE_LIMIT", default_value_t = 50)]
    pub rate_limit: u32,
    /// How many calls a caller may make at once above the rate before being held to it.
    #[arg(long, env = "GOVMEDIA_GATEWAY_RATE_BURST", default_value_t = 100)]
    pub rate_burst: u32,
    /// Web origins whose pages may call over gRPC-Web (CORS), for example
    /// `https://console.bureau.gov.cn`, separated by commas. None by default: a page on
    /// another origin is refused by the browser. `*` is not accepted: name each console.
    #[arg(
        long = "allowed-origin",
        env = "GOVMEDIA_GATEWAY_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub allowed_origins: Vec<String>,
}

/// The allowed origins as header values, each checked to be an origin: a scheme
/// (`http` or `https`), a host and an optional port, nothing else.
pub fn allowed_origins(origins: &[String]) -> Result<Vec<http::HeaderValue>, SettingError> {
    const SETTING: &str = "GOVMEDIA_GATEWAY_ALLOWED_ORIGINS";
    let mut out = Vec::new();
    for origin in origins.iter().map(|o| o.trim()).filter(|o| !o.is_empty()) {
        let invalid = |why: &str| SettingError::new(SETTING, format!("{origin:?} {why}"));
        if origin == "*" {
            return Err(invalid("would let any web page call the gateway; name each origin"));
        }
        let uri: http::Uri = origin.parse().map_err(|_| invalid("is not an origin (https://host[:port])"))?;
        let plain = matches!(uri.scheme_str(), Some("http" | "https"))
            && uri.host().is_some_and(|h| !h.is_empty())
            && uri.path_and_query().is_none_or(|p| p.as_str() == "/")
            && !origin.ends_with('/');
        if !plain {
            return Err(invalid(
                "is not an origin: a scheme, a host and an optional port, no path (https://host[:port])",
            ));
        }
        out.push(http::HeaderValue::from_str(origin).map_err(|_| invalid("is not a valid header value"))?);
    }
    Ok(out)
}

/// The upstreams the settings name; identity is required (it verifies tokens), the
/// others are optional (a gateway may front part of the system).
pub fn upstreams(options: &UpstreamOptions) -> Result<Vec<Upstream>, SettingError> {
    let list = |value: &Option<String>| -> Vec<String> {
        value
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let named = [
        ("govmedia.identity.v1", "GOVMEDIA_GATEWAY_IDENTITY_UPSTREAMS", list(&options.identity_upstreams)),
        ("govmedia.content.v1", "GOVMEDIA_GATEWAY_CONTENT_UPSTREAMS", list(&options.content_upstreams)),
        ("govmedia.interaction.v1", "GOVMEDIA_GATEWAY_INTERACTION_UPSTREAMS", list(&options.interaction_upstreams)),
        ("govmedia.audit.v1", "GOVMEDIA_GATEWAY_AUDIT_UPSTREAMS", list(&options.audit_upstreams)),
    ];
    let mut out = Vec::new();
    for (package, setting, replicas) in named {
        if replicas.is_empty() {
            if package == "govmedia.identity.v1" {
                return Err(SettingError::new(setting.to_owned(), "is required: identity verifies tokens"));
            }
            continue;
        }
        out.push(Upstream::new(package, &replicas).map_err(|e| SettingError::new(setting.to_owned(), e.message))?);
    }
    Ok(out)
}

/// Runs the gateway until `shutdown` completes.
pub async fn serve(
    settings: GatewaySettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let upstreams = upstreams(&settings.upstreams)?;
    for upstream in &upstreams {
        // Balanced over every replica from the first call; a name that does not resolve
        // yet is connected to by name until it does.
        upstream.refresh().await;
    }
    let origins = allowed_origins(&settings.allowed_origins)?;
    let identity = upstreams
        .iter()
        .find(|u| u.package == "govmedia.identity.v1")
        .map(Upstream::balanced)
        .ok_or_else(|| SettingError::new("GOVMEDIA_GATEWAY_IDENTITY_UPSTREAMS", "is required"))?;
    let verifier = Arc::new(TokenVerifier::from_identity(identity));
    let limits = limit::Limits::new(settings.rate_limit, settings.rate_burst);
    let janitor = limits.clone().map(|l| {
        // Idle callers' buckets are full again; keep the table small.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                l.forget_idle();
            }
        })
    });
    let builder = server(&upstreams, settings.server, verifier, limits).with_allowed_origins(origins);
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(health::watch(
        upstreams.clone(),
        builder.health_reporter(),
        std::time::Duration::from_secs(5),
        stop.clone(),
    ));
    let bound = builder.bind().await?;
    tracing::info!(address = %bound.local_addr(), upstreams = upstreams.len(), "gateway listening");
    let stop_watching = stop.clone();
    let served = bound
        .serve(async move {
            shutdown.await;
            stop_watching.cancel();
        })
        .await;
    stop.cancel();
    let _ = watcher.await;
    if let Some(j) = janitor {
        j.abort();
    }
    served?;
    Ok(())
}
