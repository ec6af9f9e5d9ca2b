//! The webhook connector: each publication is an HTTP POST of a JSON payload to an
//! address the deployment configures (a bureau's own publishing gateway, a relay to a
//! platform's API). The payload, headers and signature are documented in
//! docs/connectors.md; a receiver checks the signature before it trusts anything.
//!
//! - Signature: `Govmedia-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` over
//!   `"<t>.<body>"` with the shared secret. The timestamp inside the signed text lets a
//!   receiver refuse replays older than its tolerance.
//! - `Idempotency-Key: <publication id>:publish` (or `:retract`): the same key on a
//!   second delivery means the same publication; the receiver answers as it did the
//!   first time.
//! - Answers: 2xx is done (a JSON body `{"platform_post_id", "url"}` is read if given);
//!   408, 425, 429 and 5xx or no answer at all are temporary and retried here with
//!   exponential backoff, then left to the scheduler's own retries; other 4xx are a
//!   refusal that retrying cannot fix.
//!
//! HTTPS with certificate verification (rustls): the system's trust store, plus a CA a
//! deployment names (`GOVMEDIA_CONTENT_WEBHOOK_CA`, a PEM file: a bureau's own CA).
//! Plain `http://` only to this host (127.0.0.1, ::1, localhost), or anywhere with an
//! explicit `GOVMEDIA_CONTENT_WEBHOOK_ALLOW_PLAIN_HTTP`: publications and their
//! signatures do not cross a network in clear text by accident.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use govmedia_kit::config::Secret;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;

use super::{Connector, ConnectorError, Outgoing, Receipt};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "govmedia-signature";
/// The idempotency key header.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
/// The largest answer read from a receiver; anything longer is cut off, not buffered.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// How the webhook connector is set up.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// Where to POST (`http://host:port/path`).
    pub url: http::Uri,
    /// The shared signing secret.
    pub secret: Secret,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts within one publish call (the scheduler retries again later).
    pub attempts: usize,
    /// The first backoff between attempts; doubled each time.
    pub first_backoff: Duration,
    /// Certificates trusted beside the system's (a bureau's own CA).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl WebhookSettings {
    /// Settings with the defaults: 10 s per attempt, 3 attempts, backoff from 200 ms.
    /// `https://` anywhere; `http://` only to this host unless `allow_plain_http`.
    pub fn new(url: &str, secret: Secret, allow_plain_http: bool) -> Result<Self, String> {
        let url: http::Uri = url.parse().map_err(|e| format!("webhook url {url:?}: {e}"))?;
        match url.scheme_str() {
            Some("https") => {}
            Some("http") if allow_plain_http || is_loopback(url.host().unwrap_or_default()) => {}
            Some("http") => {
                return Err(format!(
                    "webhook url {url}: plain http only to this host; use https, or set \
                     GOVMEDIA_CONTENT_WEBHOOK_ALLOW_PLAIN_HTTP if the network between is trusted"
                ));
            }
            _ => return Err(format!("webhook url {url}: must start with https:// (or http:// to this host)")),
        }
        if secret.expose().len() < 16 {
            return Err("webhook secret: must be at least 16 characters".into());
        }
        Ok(Self {
            url,
            secret,
            timeout: Duration::from_secs(10),
            attempts: 3,
            first_backoff: Duration::from_millis(200),
            extra_roots: Vec::new(),
        })
    }

    /// The same, also trusting the certificates in the PEM file `ca`.
    pub fn with_ca_file(mut self, ca: &Path) -> Result<Self, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let certificates = CertificateDer::pem_file_iter(ca)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|e| format!("webhook CA {}: {e}", ca.display()))?;
        if certificates.is_empty() {
            return Err(format!("webhook CA {}: holds no certificate", ca.display()));
        }
        self.extra_roots.extend(certificates);
        Ok(self)
    }
}

/// An error and its causes, so "client error (Connect)" says which certificate failed.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// True for an address that cannot leave this host.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The TLS client: rustls on ring, the system's roots and `extra`.
fn tls_config(extra: &[rustls::pki_types::CertificateDer<'static>]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "a certificate of the system's trust store could not be read");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "system trust store loaded for the webhook");
    roots.add_parsable_certificates(extra.iter().cloned());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // ring supports the safe defaults; the fallback is never taken.
        .unwrap_or_else(|_| rustls::ClientConfig::builder_with_protocol_versions(&[&rustls::version::TLS13]))
        .with_root_certificates(roots)
        .with_no_client_auth()
}

/// Signs `body` sent at `timestamp` (unix seconds): the value of the signature header.
pub fn sign(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts publications to one receiver.
#[derive(Debug, Clone)]
pub struct WebhookConnector {
    settings: WebhookSettings,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl WebhookConnector {
    /// A connector for `settings`.
    pub fn new(settings: WebhookSettings) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(settings.timeout));
        // Plain http was allowed or refused by the settings; an https address is always
        // verified against the roots.
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&settings.extra_roots))
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Self { settings, client: Client::builder(TokioExecutor::new()).build(https) }
    }

    /// Sends one signed event, retrying temporary failures.
    async fn deliver(&self, key: &str, payload: &serde_json::Value) -> Result<Bytes, ConnectorError> {
        let body = Bytes::from(serde_json::to_vec(payload).map_err(|e| ConnectorError::Permanent(e.to_string()))?);
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.settings.first_backoff)
            .with_max_delay(self.settings.first_backoff * 16)
            .with_max_times(self.settings.attempts.saturating_sub(1))
            .with_jitter();
        (|| self.attempt(key, body.clone()))
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(ConnectorError::is_transient)
            .notify(|e, after| tracing::warn!(idempotency_key = key, error = %e, retry_in = ?after, "webhook delivery failed"))
            .await
    }

    async fn attempt(&self, key: &str, body: Bytes) -> Result<Bytes, ConnectorError> {
        // Signed at send time, so a retry carries a fresh timestamp and is not taken
        // for a replay.
        let signature = sign(&self.settings.secret, chrono::Utc::now().timestamp(), &body);
        let request = http::Request::post(self.settings.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, concat!("govmedia/", env!("CARGO_PKG_VERSION")))
            .header(IDEMPOTENCY_HEADER, key)
            .header(SIGNATURE_HEADER, signature)
            .body(Full::new(body))
            .map_err(|e| ConnectorError::Permanent(format!("webhook request: {e}")))?;
        let answer = tokio::time::timeout(self.settings.timeout, async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| ConnectorError::Transient(format!("webhook not reachable: {}", causes(&e))))?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            Ok::<_, ConnectorError>((status, body))
        })
        .await
        .map_err(|_| {
            ConnectorError::Transient(format!("webhook gave no answer within {:?}", self.settings.timeout))
        })??;
        let (status, body) = answer;
        if status.is_success() {
            return Ok(body);
        }
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        let message = format!("webhook answered {status}: {text}");
        if status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429) {
            Err(ConnectorError::Transient(message))
        } else {
            Err(ConnectorError::Permanent(message))
        }
    }
}

#[async_trait::async_trait]
impl Connector for WebhookConnector {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn publish(&self, item: &Outgoing) -> Result<Receipt, ConnectorError> {
        let payload = serde_json::json!({ "event": "publication.publish", "publication": item });
        let answer = self.deliver(&format!("{}:publish", item.publication_id), &payload).await?;
        // A receiver that answers 2xx with no body or another body still published.
        Ok(serde_json::from_slice(&answer).unwrap_or_default())
    }

    async fn retract(
        &self,
        publication_id: &str,
        platform_account_id: &str,
        reason: &str,
    ) -> Result<(), ConnectorError> {
        let payload = serde_json::json!({
            "event": "publication.retract",
            "publication_id": publication_id,
            "platform_account_id": platform_account_id,
            "reason": reason,
        });
        self.deliver(&format!("{publication_id}:retract"), &payload).await.map(|_| ())
    }
}
