//! Access tokens: Ed25519-signed JWTs (`alg: EdDSA`, key id in `kid`) issued by the
//! identity service and verified locally by every service with the public keys identity
//! publishes (`AuthenticationService.ListSigningKeys`), cached by key id (R2.2.2).
//!
//! [`AuthLayer`] verifies the bearer token of every call except the public methods and
//! puts the verified [`Principal`] into the request; handlers take it with
//! [`principal`]. A session whose password must change (R2.3.1) may call only the
//! methods that let it do so. Where the server requires certificates of services
//! (`GOVMEDIA_TLS_REQUIRE_SERVICE_CERTIFICATES`), a service principal's token counts only
//! over a mutual-TLS connection whose client certificate names its client id (claim
//! `cid`): a copied service token is useless without the service's private key.
//!
//! A token is worth no more than its session: where a [`SessionGate`] is installed (the
//! identity service, which keeps the sessions) a token whose session has ended is
//! refused on every call; elsewhere the permission answer says so (see
//! [`crate::access`]).
//!
//! The claims format and [`SigningKey`] live here, not in identity, because the test kit
//! and identity must issue exactly what every service verifies.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use futures::future::BoxFuture;
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, ActorKind};
use govmedia_domain::clock::{Clock, SystemClock};
use govmedia_domain::ids::{DepartmentId, PrincipalId, SessionId};
use govmedia_proto::identity::v1::ListSigningKeysRequest;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, RwLock};
use tonic::transport::Channel;

/// The `iss` claim of every access token.
pub const ISSUER: &str = "govmedia-identity";
/// The `aud` claim of every access token.
pub const AUDIENCE: &str = "govmedia";
/// Clock skew tolerated when checking `exp`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;
/// Unknown key ids trigger a key refresh at most this often.
const REFRESH_THROTTLE: Duration = Duration::from_secs(5);

/// The kind of principal a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    /// A member of staff.
    User,
    /// A service principal.
    Service,
}

/// The claims of a govmedia access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: [`ISSUER`].
    pub iss: String,
    /// Audience: [`AUDIENCE`].
    pub aud: String,
    /// The principal id.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issue time, seconds since the epoch.
    pub iat: i64,
    /// The token id.
    pub jti: String,
    /// User or service.
    pub kind: PrincipalKind,
    /// The principal's display name.
    pub name: String,
    /// The session family (users only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The user's department.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dept: Option<String>,
    /// True when the session may only change its password (R2.3.1).
    #[serde(default)]
    pub pcr: bool,
    /// The service principal's client id (services only): what its client certificate
    /// must name when servers require certificates of services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cid: Option<String>,
}

impl AccessClaims {
    /// Claims for `principal` valid for `lifetime` from `now`.
    pub fn new(
        principal: PrincipalId,
        kind: PrincipalKind,
        name: &str,
        now: DateTime<Utc>,
        lifetime: Duration,
    ) -> Self {
        let lifetime = i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2);
        Self {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: principal.to_string(),
            exp: now.timestamp() + lifetime,
            iat: now.timestamp(),
            jti: uuid::Uuid::now_v7().to_string(),
            kind,
            name: name.to_owned(),
            sid: None,
            dept: None,
            pcr: false,
            cid: None,
        }
    }
}

/// The verified caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The principal id.
    pub id: PrincipalId,
    /// User or service.
    pub kind: PrincipalKind,
    /// The display name.
    pub display_name: String,
    /// The session family (users).
    pub session_id: Option<SessionId>,
    /// The user's department.
    pub department: Option<DepartmentId>,
    /// True when only a password change is allowed.
    pub password_change_required: bool,
    /// The token's expiry.
    pub expires_at: DateTime<Utc>,
    /// The client id (service principals).
    pub client_id: Option<String>,
}

impl Principal {
    /// The principal as the actor of an audit record.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: match self.kind {
                PrincipalKind::User => ActorKind::User,
                PrincipalKind::Service => ActorKind::Service,
            },
            id: self.id.to_string(),
            display_name: self.display_name.clone(),
        }
    }
}

/// An Ed25519 key that signs access tokens.
#[derive(Clone)]
pub struct SigningKey {
    key_id: String,
    key: ed25519_dalek::SigningKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("key_id", &self.key_id).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate(key_id: impl Into<String>) -> Self {
        let seed: [u8; 32] = rand::random();
        Self { key_id: key_id.into(), key: ed25519_dalek::SigningKey::from_bytes(&seed) }
    }

    /// A key from its PKCS#8 DER encoding (as stored by identity).
    pub fn from_pkcs8_der(key_id: impl Into<String>, der: &[u8]) -> Result<Self, Error> {
        let key = ed25519_dalek::SigningKey::from_pkcs8_der(der)
            .map_err(|e| Error::internal(format!("signing key is not PKCS#8 Ed25519: {e}")))?;
        Ok(Self { key_id: key_id.into(), key })
    }

    /// The PKCS#8 DER encoding, for storing the key (encrypted) at rest.
    pub fn to_pkcs8_der(&self) -> Result<Vec<u8>, Error> {
        self.key
            .to_pkcs8_der()
            .map(|doc| doc.as_bytes().to_vec())
            .map_err(|e| Error::internal(format!("cannot encode signing key: {e}")))
    }

    /// The key id put in the `kid` header.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs claims into a compact JWT.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, Error> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.key_id.clone());
        let der = self.to_pkcs8_der()?;
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(&der))
            .map_err(|e| Error::internal(format!("cannot sign access token: {e}")))
    }
}

/// Where a verifier gets public keys.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A fixed set of (key id, public key): tests, and identity verifying its own tokens.
    Static(Vec<(String, [u8; 32])>),
    /// The identity service's `ListSigningKeys`.
    Identity(AuthenticationServiceClient<Channel>),
}

/// Verifies access tokens with cached public keys.
#[derive(Debug)]
pub struct TokenVerifier {
    source: KeySource,
    keys: RwLock<KeyCache>,
    last_refresh: Mutex<Option<Instant>>,
    clock: Arc<dyn Clock>,
}

/// The public keys a verifier trusts, and until when (R2.2.2): a key identity stops
/// publishing (retired early, or removed after a compromise) is trusted no longer than
/// the `cache_seconds` identity sent with the list.
#[derive(Debug, Default)]
struct KeyCache {
    keys: HashMap<String, [u8; 32]>,
    /// `None` for a static source, whose keys change only by [`TokenVerifier::replace_keys`].
    valid_until: Option<DateTime<Utc>>,
}

/// Used when identity sends no cache lifetime (an older identity): five minutes.
const DEFAULT_KEY_CACHE_SECONDS: u32 = 300;

impl TokenVerifier {
    /// A verifier using `source`.
    pub fn new(source: KeySource) -> Self {
        let cache = match &source {
            KeySource::Static(list) => KeyCache { keys: list.iter().cloned().collect(), valid_until: None },
            // Nothing fetched yet: already stale.
            KeySource::Identity(_) => KeyCache { keys: HashMap::new(), valid_until: Some(DateTime::UNIX_EPOCH) },
        };
        Self { source, keys: RwLock::new(cache), last_refresh: Mutex::new(None), clock: Arc::new(SystemClock) }
    }

    /// Checks expiry (of tokens and of cached keys) against `clock` instead of the system
    /// clock (services whose rules run on a test clock verify their own tokens on the
    /// same clock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// A verifier fetching keys from the identity service on `channel`.
    pub fn from_identity(channel: Channel) -> Self {
        Self::new(KeySource::Identity(AuthenticationServiceClient::new(channel)))
    }

    async fn key(&self, key_id: &str) -> Result<Option<[u8; 32]>, Error> {
        let now = self.clock.now();
        let fresh = |cache: &KeyCache| cache.valid_until.is_none_or(|until| now < until);
        {
            let cache = self.keys.read().await;
            if fresh(&cache)
                && let Some(key) = cache.keys.get(key_id)
            {
                return Ok(Some(*key));
            }
        }
        let KeySource::Identity(client) = &self.source else { return Ok(None) };
        let mut last = self.last_refresh.lock().await;
        {
            // Another caller may have refreshed while this one waited for the lock; an
            // unknown key id does not make every call ask identity again.
            let cache = self.keys.read().await;
            if fresh(&cache)
                && (cache.keys.contains_key(key_id) || last.is_some_and(|at| at.elapsed() < REFRESH_THROTTLE))
            {
                return Ok(cache.keys.get(key_id).copied());
            }
        }
        *last = Some(Instant::now());
        // A stale list is never used: without identity, no token verifies (fail closed).
        let response = client
            .clone()
            .list_signing_keys(ListSigningKeysRequest {})
            .await
            .map_err(|s| Error::Unavailable { dependency: "identity service", source: Box::new(s) })?
            .into_inner();
        let lifetime = if response.cache_seconds == 0 { DEFAULT_KEY_CACHE_SECONDS } else { response.cache_seconds };
        let mut cache = self.keys.write().await;
        cache.keys.clear();
        for key in response.keys {
            if let Ok(public) = <[u8; 32]>::try_from(key.public_key.as_slice()) {
                cache.keys.insert(key.key_id, public);
            }
        }
        cache.valid_until = Some(now + chrono::Duration::seconds(i64::from(lifetime)));
        Ok(cache.keys.get(key_id).copied())
    }

    /// Replaces the known keys (a static source whose keys rotated).
    pub async fn replace_keys(&self, keys: Vec<(String, [u8; 32])>) {
        let mut cache = self.keys.write().await;
        cache.keys.clear();
        cache.keys.extend(keys);
    }

    /// Verifies a compact JWT and returns its principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, Error> {
        let invalid = || Error::Unauthenticated("the access token is invalid or expired".to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid())?;
        if header.alg != Algorithm::EdDSA {
            return Err(invalid());
        }
        let key_id = header.kid.ok_or_else(invalid)?;
        let public = self.key(&key_id).await?.ok_or_else(invalid)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // Expiry is checked below against the verifier's clock.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &DecodingKey::from_ed_der(&public), &validation)
            .map_err(|_| invalid())?
            .claims;
        let leeway = i64::try_from(LEEWAY_SECONDS).unwrap_or(30);
        if claims.exp + leeway < self.clock.now().timestamp() {
            return Err(invalid());
        }
        Ok(Principal {
            id: claims.sub.parse().map_err(|_| invalid())?,
            kind: claims.kind,
            display_name: claims.name,
            session_id: claims.sid.as_deref().and_then(|s| s.parse().ok()),
            department: claims.dept.as_deref().and_then(|d| d.parse().ok()),
            password_change_required: claims.pcr,
            expires_at: DateTime::from_timestamp(claims.exp, 0).unwrap_or_default(),
            client_id: claims.cid,
        })
    }
}

/// The verified principal of a request, put there by [`AuthLayer`].
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, Error> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Error::Unauthenticated("this method needs an access token".to_owned()))
}

/// Which methods need no token, and which a password-change-only session may call.
#[derive(Debug, Clone, Default)]
pub struct AuthPolicy {
    /// Path prefixes callable without a token: whole services (`/grpc.health.v1.Health/`)
    /// or single methods (`/govmedia.identity.v1.AuthenticationService/Login`).
    pub public: Vec<String>,
    /// Full method paths a session with `pcr` may call (R2.3.1).
    pub allowed_while_password_change_required: Vec<String>,
    /// Whether a service principal's call must come over mutual TLS with a client
    /// certificate naming its client id (sender-constrained tokens: a service token is
    /// worth nothing without the service's private key).
    pub service_certificates_required: bool,
}

impl AuthPolicy {
    /// Health and reflection are always public.
    pub fn standard() -> Self {
        Self {
            public: vec![
                "/grpc.health.v1.Health/".to_owned(),
                "/grpc.reflection.v1.ServerReflection/".to_owned(),
                "/grpc.reflection.v1alpha.ServerReflection/".to_owned(),
            ],
            allowed_while_password_change_required: Vec::new(),
            service_certificates_required: false,
        }
    }

    /// Adds public path prefixes.
    pub fn with_public(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.public.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Adds methods allowed while a password change is required.
    pub fn with_password_change_allowed(mut self, paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.allowed_while_password_change_required.extend(paths.into_iter().map(Into::into));
        self
    }
}

/// Whether the session an access token was issued in is still open: asked on every call
/// by the service that keeps the sessions, so a signed-out token is refused at once.
pub trait SessionGate: std::fmt::Debug + Send + Sync {
    /// `Ok(true)` while `session` of `principal` is open; `Ok(false)` once it has ended
    /// or when it is not that principal's.
    fn is_open(&self, principal: PrincipalId, session: SessionId) -> BoxFuture<'_, Result<bool, Error>>;
}

/// A tower layer that authenticates every call by its bearer token.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
    policy: Arc<AuthPolicy>,
    sessions: Option<Arc<dyn SessionGate>>,
    refusals: Option<Arc<crate::refusals::RefusalAudit>>,
    trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

/// The header a trusted proxy (the gateway) names the caller's address in.
pub const CLIENT_ADDRESS_HEADER: &str = "x-govmedia-client-address";

/// The caller's address as the auth layer resolved it: the connection's, or the one a
/// trusted proxy named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub std::net::IpAddr);

/// The caller's address: as resolved by the auth layer, else the connection's; empty
/// when neither is known.
pub fn client_address<T>(request: &tonic::Request<T>) -> String {
    request
        .extensions()
        .get::<ClientAddress>()
        .map(|a| a.0.to_string())
        .or_else(|| request.remote_addr().map(|a| a.ip().to_string()))
        .unwrap_or_default()
}

/// The connection's peer address, over plain TCP or TLS.
fn peer_of<B>(request: &http::Request<B>) -> Option<std::net::IpAddr> {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    let extensions = request.extensions();
    extensions
        .get::<TcpConnectInfo>()
        .and_then(TcpConnectInfo::remote_addr)
        .or_else(|| extensions.get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|i| i.get_ref().remote_addr()))
        .map(|a| a.ip())
}

/// The caller's address: a trusted proxy's header, else the peer's.
fn resolve_client<B>(request: &http::Request<B>, trusted: &[ipnet::IpNet]) -> Option<std::net::IpAddr> {
    let peer = peer_of(request)?;
    if trusted.iter().any(|range| range.contains(&peer))
        && let Some(named) = request.headers().get(CLIENT_ADDRESS_HEADER).and_then(|v| v.to_str().ok())
        && let Ok(named) = named.trim().parse()
    {
        return Some(named);
    }
    Some(peer)
}

impl AuthLayer {
    /// Authenticates with `verifier` under `policy`.
    pub fn new(verifier: Arc<TokenVerifier>, policy: AuthPolicy) -> Self {
        Self { verifier, policy: Arc::new(policy), sessions: None, refusals: None, trusted_proxies: Arc::default() }
    }

    /// The same, also requiring service principals' client certificates.
    pub fn requiring_service_certificates(self) -> Self {
        let mut policy = (*self.policy).clone();
        policy.service_certificates_required = true;
        Self { policy: Arc::new(policy), ..self }
    }

    /// The same, also refusing tokens whose session `gate` says has ended.
    pub fn with_session_gate(self, gate: Arc<dyn SessionGate>) -> Self {
        Self { sessions: Some(gate), ..self }
    }

    /// The same, believing the client address `proxies` name (the server's
    /// `GOVMEDIA_TRUSTED_PROXIES`; the server builder sets it).
    pub fn trusting_proxies(self, proxies: Vec<ipnet::IpNet>) -> Self {
        Self { trusted_proxies: Arc::new(proxies), ..self }
    }

    /// The same, also recording refused attempts on sensitive things to `audit`.
    pub fn with_refusal_audit(self, audit: Arc<crate::refusals::RefusalAudit>) -> Self {
        Self { refusals: Some(audit), ..self }
    }
}

/// The names a client certificate gives its holder: the subject's common names and the
/// DNS names of its subject alternative names.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    let Ok((_, certificate)) = x509_parser::parse_x509_certificate(der) else { return Vec::new() };
    let mut names: Vec<String> =
        certificate.subject().iter_common_name().filter_map(|cn| cn.as_str().ok().map(str::to_owned)).collect();
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    names
}

/// Whether the connection's client certificate (verified by the TLS handshake against
/// the configured client CA) names `client_id`.
fn certificate_names_client<B>(request: &http::Request<B>, client_id: &str) -> bool {
    use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
    request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
        .and_then(|chain| chain.first().map(|leaf| certificate_names(leaf)))
        .is_some_and(|names| names.iter().any(|n| n == client_id))
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            verifier: Arc::clone(&self.verifier),
            policy: Arc::clone(&self.policy),
            sessions: self.sessions.clone(),
            refusals: self.refusals.clone(),
            trusted_proxies: Arc::clone(&self.trusted_proxies),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
    policy: Arc<AuthPolicy>,
    sessions: Option<Arc<dyn SessionGate>>,
    refusals: Option<Arc<crate::refusals::RefusalAudit>>,
    trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

/// The principal, if its token's session (when it has one) is still open.
async fn session_open(gate: &dyn SessionGate, principal: Principal) -> Result<Principal, Error> {
    match principal.session_id {
        Some(session) if !gate.is_open(principal.id, session).await? => {
            Err(Error::Unauthenticated("the session has ended; sign in again".to_owned()))
        }
        _ => Ok(principal),
    }
}

fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

impl<S, B, R> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path().to_owned();
        // Resolved for every call, public ones (Login) above all: an outsider's header is
        // believed only from a trusted proxy, and a forwarded call names the real caller.
        if let Some(client) = resolve_client(&request, &self.trusted_proxies) {
            request.extensions_mut().insert(ClientAddress(client));
        }
        if self.policy.public.iter().any(|p| path.starts_with(p.as_str())) {
            return Box::pin(inner.call(request));
        }
        let verifier = Arc::clone(&self.verifier);
        let policy = Arc::clone(&self.policy);
        let sessions = self.sessions.clone();
        let refusals = self.refusals.clone();
        let token = bearer(request.headers()).map(str::to_owned);
        Box::pin(async move {
            let verified = match token {
                None => Err(Error::Unauthenticated("this method needs an access token".to_owned())),
                Some(token) => verifier.verify(&token).await,
            };
            let verified = match (verified, &sessions) {
                (Ok(principal), Some(gate)) => session_open(gate.as_ref(), principal).await,
                (verified, _) => verified,
            };
            match verified {
                Ok(principal)
                    if principal.password_change_required
                        && !policy.allowed_while_password_change_required.contains(&path) =>
                {
                    Ok(crate::rpc::status(Error::PasswordChangeRequired).into_http())
                }
                Ok(principal)
                    if policy.service_certificates_required
                        && principal.kind == PrincipalKind::Service
                        && !principal.client_id.as_deref().is_some_and(|id| certificate_names_client(&request, id)) =>
                {
                    let error = Error::Unauthenticated(format!(
                        "service principal {} must call over mutual TLS with its client certificate \
                         (subject common name or DNS name = its client id)",
                        principal.client_id.as_deref().unwrap_or(&principal.display_name)
                    ));
                    Ok(crate::rpc::status(error).into_http())
                }
                Ok(principal) => {
                    tracing::Span::current().record("enduser.id", tracing::field::display(principal.id));
                    request.extensions_mut().insert(principal);
                    if let Some(audit) = refusals {
                        request.extensions_mut().insert(crate::refusals::Watch::new(audit, path));
                    }
                    inner.call(request).await
                }
                Err(e) => Ok(crate::rpc::status(e).into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_address_header_is_believed_only_from_a_trusted_proxy() {
        use std::net::{IpAddr, SocketAddr};
        let request = |peer: [u8; 4], header: Option<&str>| {
            let mut r = http::Request::new(());
            r.extensions_mut().insert(tonic::transport::server::TcpConnectInfo {
                local_addr: None,
                remote_addr: Some(SocketAddr::from((peer, 5000))),
            });
            if let Some(h) = header {
                r.headers_mut().insert(CLIENT_ADDRESS_HEADER, h.parse().expect("header"));
            }
            r
        };
        let gateway = [ipnet::IpNet::from(IpAddr::from([127, 0, 0, 1]))];
        let outsider = IpAddr::from([10, 0, 0, 9]);
        assert_eq!(resolve_client(&request([10, 0, 0, 9], Some("127.0.0.1")), &gateway), Some(outsider), "not a proxy");
        assert_eq!(
            resolve_client(&request([127, 0, 0, 1], Some("203.0.113.7")), &gateway),
            Some(IpAddr::from([203, 0, 113, 7])),
            "the gateway names the caller"
        );
        assert_eq!(
            resolve_client(&request([127, 0, 0, 1], Some("not an address")), &gateway),
            Some(IpAddr::from([127, 0, 0, 1])),
            "a malformed name is ignored"
        );
        assert_eq!(
            resolve_client(&request([127, 0, 0, 1], Some("203.0.113.7")), &[]),
            Some(IpAddr::from([127, 0, 0, 1])),
            "no proxies"
        );
        // Kubernetes: the gateway's pods get any address of the pod network.
        let pods = [crate::config::parse_proxy_range("10.244.0.0/16").expect("range")];
        assert_eq!(
            resolve_client(&request([10, 244, 3, 17], Some("203.0.113.7")), &pods),
            Some(IpAddr::from([203, 0, 113, 7])),
            "a gateway pod names the caller"
        );
        assert_eq!(
            resolve_client(&request([10, 245, 0, 2], Some("203.0.113.7")), &pods),
            Some(IpAddr::from([10, 245, 0, 2]))
        );
    }

    #[test]
    fn a_trusted_proxy_is_an_address_or_a_range_never_everyone() {
        use crate::config::parse_proxy_range;
        assert_eq!(parse_proxy_range("172.28.0.10").expect("one").to_string(), "172.28.0.10/32");
        assert_eq!(parse_proxy_range(" 10.244.1.9/16 ").expect("range").to_string(), "10.244.0.0/16");
        assert_eq!(parse_proxy_range("fd00::/8").expect("v6").to_string(), "fd00::/8");
        assert!(parse_proxy_range("0.0.0.0/0").is_err());
        assert!(parse_proxy_range("gateway").is_err());
    }

    fn claims(key_lifetime: Duration) -> AccessClaims {
        let id: PrincipalId = uuid::Uuid::now_v7().to_string().parse().expect("uuid");
        AccessClaims::new(id, PrincipalKind::User, "Wang Fang", Utc::now(), key_lifetime)
    }

    #[tokio::test]
    async fn a_signed_token_verifies_and_carries_its_principal() {
        let key = SigningKey::generate("k1");
        let verifier = TokenVerifier::new(KeySource::Static(vec![("k1".into(), key.public_key())]));
        let mut c = claims(Duration::from_secs(900));
        c.pcr = true;
        let token = key.sign(&c).expect("signs");
        let principal = verifier.verify(&token).await.expect("verifies");
        assert_eq!(principal.id.to_string(), c.sub);
        assert_eq!(principal.display_name, "Wang Fang");
        assert!(principal.password_change_required);
    }

    #[tokio::test]
    async fn expired_foreign_and_tampered_tokens_are_refused() {
        let key = SigningKey::generate("k1");
        let verifier = TokenVerifier::new(KeySource::Static(vec![("k1".into(), key.public_key())]));
        let mut expired = claims(Duration::from_secs(900));
        expired.exp = Utc::now().timestamp() - 3600;
        assert!(verifier.verify(&key.sign(&expired).expect("signs")).await.is_err());

        let other = SigningKey::generate("k1");
        assert!(verifier.verify(&other.sign(&claims(Duration::from_secs(900))).expect("signs")).await.is_err());

        let token = key.sign(&claims(Duration::from_secs(900))).expect("signs");
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = parts[1].chars().rev().collect();
        assert!(verifier.verify(&parts.join(".")).await.is_err());

        let unknown_kid = SigningKey::generate("k2").sign(&claims(Duration::from_secs(900))).expect("signs");
        assert!(verifier.verify(&unknown_kid).await.is_err());
    }

    #[test]
    fn signing_keys_round_trip_through_pkcs8() {
        let key = SigningKey::generate("k1");
        let der = key.to_pkcs8_der().expect("encodes");
        let back = SigningKey::from_pkcs8_der("k1", &der).expect("decodes");
        assert_eq!(back.public_key(), key.public_key());
        assert!(!format!("{key:?}").contains(&hex::encode(&der)));
    }
}
