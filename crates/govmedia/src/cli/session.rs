//! The signed-in session: kept on disk owner-only, and the client every command calls the
//! gateway through, renewing an expired access token with the refresh token once.

use std::path::PathBuf;

use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use super::BoxError;
use super::output::explain;

/// A signed-in session as kept on disk.
#[derive(Clone, Serialize, Deserialize)]
pub struct Session {
    /// The gateway signed in through.
    pub gateway: String,
    /// Who.
    pub username: String,
    /// The short-lived token.
    pub access_token: String,
    /// The token that renews it.
    pub refresh_token: String,
}

/// Never the tokens: a session printed in a log or an error must not sign anyone in.
impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("gateway", &self.gateway)
            .field("username", &self.username)
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

fn config_dir() -> Result<PathBuf, BoxError> {
    if let Some(dir) = std::env::var_os("GOVMEDIA_CLI_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    Ok(dirs::config_dir().ok_or("no config folder for this user (set GOVMEDIA_CLI_CONFIG_DIR)")?.join("govmedia"))
}

/// Where the session is kept.
pub fn session_path() -> Result<PathBuf, BoxError> {
    Ok(config_dir()?.join("session.json"))
}

/// Keeps the session, readable by its owner only, replaced whole: a command reading it
/// meanwhile, or a crash, never finds it half written or empty.
pub fn save(session: &Session) -> Result<(), BoxError> {
    use govmedia_kit::private_files::{private_dir, replace_file};
    let dir = config_dir()?;
    private_dir(&dir)?;
    replace_file(&session_path()?, serde_json::to_string_pretty(session)?.as_bytes())?;
    Ok(())
}

/// The kept session.
pub fn load() -> Result<Session, BoxError> {
    let path = session_path()?;
    let text = std::fs::read_to_string(&path).map_err(|_| "not signed in: run `govmedia login`")?;
    Ok(serde_json::from_str(&text)?)
}

/// A channel to the gateway. A connection refused or dropped while the gateway starts
/// or sheds load is tried again a few times (0.2 s, 0.4 s, 0.8 s) before giving up; the
/// error then says why, not only "transport error".
pub async fn connect(gateway: &str) -> Result<Channel, BoxError> {
    use backon::{ExponentialBuilder, Retryable};
    let endpoint =
        tonic::transport::Endpoint::from_shared(gateway.to_owned())?.connect_timeout(std::time::Duration::from_secs(5));
    let backoff = ExponentialBuilder::default().with_min_delay(std::time::Duration::from_millis(200)).with_max_times(3);
    (|| endpoint.connect()).retry(backoff).sleep(tokio::time::sleep).await.map_err(|e| {
        let mut why = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            why.push_str(": ");
            why.push_str(&cause.to_string());
            source = cause.source();
        }
        format!("cannot reach the gateway at {gateway}: {why}").into()
    })
}

/// `message` with the bearer token. A token that is not a valid header value is sent
/// without it: the gateway then refuses the call as unauthenticated.
pub fn authorized<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// The signed-in session and its connection to the gateway.
#[derive(Debug)]
pub struct Client {
    /// The session.
    pub session: Session,
    channel: Channel,
}

impl Client {
    /// Opens the kept session.
    pub async fn open() -> Result<Self, BoxError> {
        let session = load()?;
        let channel = connect(&session.gateway).await?;
        Ok(Self { session, channel })
    }

    /// Calls with the access token; when it has expired, renews it once with the refresh
    /// token (keeping the new pair) and calls again. A refusal becomes its explanation.
    pub async fn call<T, F, Fut>(&mut self, call: F) -> Result<T, BoxError>
    where
        F: Fn(Channel, String) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        match call(self.channel.clone(), self.session.access_token.clone()).await {
            Ok(answer) => Ok(answer.into_inner()),
            Err(status) if status.code() == tonic::Code::Unauthenticated => {
                self.refresh().await?;
                call(self.channel.clone(), self.session.access_token.clone())
                    .await
                    .map(tonic::Response::into_inner)
                    .map_err(|s| explain(&s).into())
            }
            Err(status) => Err(explain(&status).into()),
        }
    }

    /// Pages through a list RPC until `limit` items or the end. `call` gets one page
    /// (channel, token, page token, page size); `split` takes the items and the next page
    /// token out of the answer.
    pub async fn list<R, T, F, Fut>(
        &mut self,
        limit: usize,
        call: F,
        split: impl Fn(R) -> (Vec<T>, String),
    ) -> Result<Vec<T>, BoxError>
    where
        F: Fn(Channel, String, String, i32) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let mut items = Vec::new();
        let mut page_token = String::new();
        while items.len() < limit {
            let page_size = i32::try_from((limit - items.len()).min(500)).unwrap_or(500);
            let answer = self.call(|channel, token| call(channel, token, page_token.clone(), page_size)).await?;
            let (page, next) = split(answer);
            items.extend(page);
            if next.is_empty() {
                break;
            }
            page_token = next;
        }
        items.truncate(limit);
        Ok(items)
    }

    /// Renews the access token. Two commands run at once may both find it expired; a
    /// refresh token is good for one renewal (a second use is taken for theft and ends
    /// the session), so renewals take turns under a lock on the session file, and one
    /// that finds the kept pair already renewed by another command uses that pair.
    async fn refresh(&mut self) -> Result<(), BoxError> {
        let _turn = tokio::task::spawn_blocking(lock_session).await??;
        if let Ok(kept) = load()
            && kept.gateway == self.session.gateway
            && kept.username == self.session.username
            && kept.refresh_token != self.session.refresh_token
        {
            self.session = kept;
            return Ok(());
        }
        let tokens = AuthenticationServiceClient::new(self.channel.clone())
            .refresh_session(ipb::RefreshSessionRequest { refresh_token: self.session.refresh_token.clone() })
            .await
            .map_err(|s| format!("the session has ended; sign in again: {}", explain(&s)))?
            .into_inner()
            .tokens
            .ok_or("identity answered without tokens")?;
        self.session.access_token = tokens.access_token;
        self.session.refresh_token = tokens.refresh_token;
        save(&self.session)
    }
}

/// Waits for this user's turn to renew the session; the turn ends when the file closes.
fn lock_session() -> Result<std::fs::File, BoxError> {
    let dir = config_dir()?;
    govmedia_kit::private_files::private_dir(&dir)?;
    let path = dir.join("session.lock");
    govmedia_kit::private_files::private_file(&path)?;
    let file = std::fs::OpenOptions::new().write(true).open(&path)?;
    file.lock().map_err(|e| format!("cannot lock {}: {e}", path.display()))?;
    Ok(file)
}

/// A fresh request id: each command is one request, sent once.
pub fn request_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_never_shows_its_tokens_in_debug_output() {
        let session = Session {
            gateway: "http://127.0.0.1:50051".into(),
            username: "editor".into(),
            access_token: "eyJhbGciOiJFZERTQSJ9.access".into(),
            refresh_token: "refresh-secret-123".into(),
        };
        let shown = format!("{session:?}");
        assert!(shown.contains("editor"), "{shown}");
        assert!(!shown.contains("eyJhbGci") && !shown.contains("refresh-secret"), "{shown}");
    }
}
