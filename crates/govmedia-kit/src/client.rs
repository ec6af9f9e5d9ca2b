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
    let mut client = PlatformAccountServiceClient::new(identity.clone());
    let request = GetPlatformAccountRequest { platform_account_id: account.to_owned() };
    let answer =
        ask_identity(credentials, "govmedia.identity.v1.PlatformAccountService", "GetPlatformAccount", request, |r| {
            client.get_platform_account(r)
        })
        .await?;
    answer
        .map(|a| {
            a.platform_account.ok_or_else(|| govmedia_domain::Error::internal("identity answered without an account"))
        })
        .transpose()
}

/// A department from identity's directory, asked as [`platform_account`] asks: `None` when
/// identity knows no such department.
pub async fn department(
    identity: &Channel,
    credentials: &CallCredentials,
    department: &str,
) -> Result<Option<govmedia_proto::identity::v1::Department>, govmedia_domain::Error> {
    use govmedia_proto::identity::v1::GetDepartmentRequest;
    use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
    let mut client = DirectoryServiceClient::new(identity.clone());
    let request = GetDepartmentRequest { department_id: department.to_owned() };
    let answer = ask_identity(credentials, "govmedia.identity.v1.DirectoryService", "GetDepartment", request, |r| {
        client.get_department(r)
    })
    .await?;
    answer
        .map(|d| d.department.ok_or_else(|| govmedia_domain::Error::internal("identity answered without a department")))
        .transpose()
}

/// One lookup at identity: the call authorised with `credentials` inside a client span;
/// NOT_FOUND is `None`, any other failure UNAVAILABLE naming identity.
async fn ask_identity<Req, Resp, Fut>(
    credentials: &CallCredentials,
    service: &'static str,
    method: &'static str,
    message: Req,
    call: impl FnOnce(tonic::Request<Req>) -> Fut,
) -> Result<Option<Resp>, govmedia_domain::Error>
where
    Fut: std::future::Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
{
    let unavailable =
        |s: tonic::Status| govmedia_domain::Error::Unavailable { dependency: "identity service", source: Box::new(s) };
    let mut request = tonic::Request::new(message);
    credentials.authorize(&mut request).await.map_err(unavailable)?;
    match crate::telemetry::client_call(service, method, request, call).await {
        Ok(response) => Ok(Some(response.into_inner())),
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
