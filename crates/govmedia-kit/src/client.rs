//! Calling other services: channels to their endpoints, and the credentials a service
//! presents (its own access token, obtained from the identity service with its client
//! id and secret, cached until shortly before it expires).

use std::sync::Arc;
use std::time::Duration;

use govmedia_proto::identity::v1::ExchangeClientCredentialsRequest;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use tokio::sync::Mutex;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use crate::config::Secret;

/// How long before expiry a cached token is replaced.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Why a channel could not be made.
#[derive(Debug, thiserror::Error)]
#[error("invalid endpoint {endpoint:?}: {source}")]
pub struct EndpointError {
    /// The endpoint as configured.
    pub endpoint: String,
    /// The cause.
    pub source: tonic::transport::Error,
}

/// A lazily connecting channel to `endpoint` (for example `http://127.0.0.1:50051`):
/// the first call connects, later calls reconnect after failures.
pub fn lazy_channel(endpoint: &str) -> Result<Channel, EndpointError> {
    let endpoint_error = |source| EndpointError { endpoint: endpoint.to_owned(), source };
    Ok(Endpoint::from_shared(endpoint.to_owned())
        .map_err(endpoint_error)?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .connect_lazy())
}

/// The credentials a service presents on its calls.
#[derive(Debug, Clone)]
pub enum CallCredentials {
    /// No credentials (the callee's public methods, and tests of unauthenticated calls).
    None,
    /// A fixed access token (tests, and tools given a token).
    Token(Secret),
    /// Client credentials exchanged for an access token at the identity service.
    ClientCredentials(Arc<ClientCredentials>),
}

/// A service principal's client id and secret, with its cached access token.
#[derive(Debug)]
pub struct ClientCredentials {
    identity: AuthenticationServiceClient<Channel>,
    client_id: String,
    client_secret: Secret,
    cached: Mutex<Option<(Secret, std::time::Instant)>>,
}

impl ClientCredentials {
    /// Credentials exchanged at the identity service reached by `identity`.
    pub fn new(identity: Channel, client_id: String, client_secret: Secret) -> Self {
        Self {
            identity: AuthenticationServiceClient::new(identity),
            client_id,
            client_secret,
            cached: Mutex::new(None),
        }
    }

    async fn token(&self) -> Result<Secret, tonic::Status> {
        let mut cached = self.cached.lock().await;
        if let Some((token, refresh_at)) = cached.as_ref()
            && std::time::Instant::now() < *refresh_at
        {
            return Ok(token.clone());
        }
        let response = self
            .identity
            .clone()
            .exchange_client_credentials(ExchangeClientCredentialsRequest {
                client_id: self.client_id.clone(),
                client_secret: self.client_secret.expose().to_owned(),
            })
            .await?
            .into_inner();
        let tokens = response.tokens.ok_or_else(|| tonic::Status::internal("identity returned no tokens"))?;
        let lifetime = tokens
            .access_token_expire_time
            .map(|t| t.seconds - chrono::Utc::now().timestamp())
            .and_then(|s| u64::try_from(s).ok())
            .map_or(Duration::ZERO, Duration::from_secs);
        let refresh_at = std::time::Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        let token = Secret::new(tokens.access_token);
        *cached = Some((token.clone(), refresh_at));
        Ok(token)
    }
}

/// A platform account from identity's register, asked with `credentials` (a client span
/// around the call): `None` when identity knows no such account; UNAVAILABLE when
/// identity cannot answer. What content, interaction and supervision ask before they act
/// on an account.
pub async fn platform_account(
    identity: &Channel,
    credentials: &CallCredentials,
    account: &str,
) -> Result<Option<govmedia_proto::identity::v1::PlatformAccount>, govmedia_domain::Error> {
    use govmedia_proto::identity::v1::GetPlatformAccountRequest;
    use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;
    let unavailable =
        |s: tonic::Status| govmedia_domain::Error::Unavailable { dependency: "identity service", source: Box::new(s) };
    let mut request = tonic::Request::new(GetPlatformAccountRequest { platform_account_id: account.to_owned() });
    credentials.authorize(&mut request).await.map_err(unavailable)?;
    let mut client = PlatformAccountServiceClient::new(identity.clone());
    let answer = crate::telemetry::client_call(
        "govmedia.identity.v1.PlatformAccountService",
        "GetPlatformAccount",
        request,
        |r| client.get_platform_account(r),
    )
    .await;
    match answer {
        Ok(response) => response
            .into_inner()
            .platform_account
            .map(Some)
            .ok_or_else(|| govmedia_domain::Error::internal("identity answered without an account")),
        Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
        Err(status) => Err(unavailable(status)),
    }
}

impl CallCredentials {
    /// Puts `authorization: Bearer <token>` on the request.
    pub async fn authorize<T>(&self, request: &mut tonic::Request<T>) -> Result<(), tonic::Status> {
        let token = match self {
            CallCredentials::None => return Ok(()),
            CallCredentials::Token(token) => token.clone(),
            CallCredentials::ClientCredentials(credentials) => credentials.token().await?,
        };
        let value: MetadataValue<_> = format!("Bearer {}", token.expose())
            .parse()
            .map_err(|_| tonic::Status::internal("access token is not a valid header value"))?;
        request.metadata_mut().insert("authorization", value);
        Ok(())
    }
}
