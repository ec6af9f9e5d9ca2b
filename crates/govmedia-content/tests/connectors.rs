//! The connectors against real receivers: a webhook receiver on loopback that checks
//! the documented signature independently of the connector's own code, and an archive
//! in a temporary folder (R3.3).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use chrono::{TimeZone, Utc};
use govmedia_content::connector::archive::ArchiveConnector;
use govmedia_content::connector::webhook::{WebhookConnector, WebhookSettings};
use govmedia_content::connector::{Connector, ConnectorError, Outgoing, Receipt};
use govmedia_kit::config::Secret;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const SECRET: &str = "a-webhook-secret-of-the-bureau";

/// One delivery as the receiver saw it.
#[derive(Debug, Clone)]
struct Delivery {
    key: String,
    signature_ok: bool,
    payload: serde_json::Value,
}

/// A receiver that behaves like a publishing gateway: it checks the signature, answers
/// a repeated idempotency key with its first answer, and can be told to fail.
#[derive(Default)]
struct Receiver {
    deliveries: Mutex<Vec<Delivery>>,
    published: Mutex<HashMap<String, String>>,
    /// Answer 503 to this many deliveries first.
    unavailable: Mutex<usize>,
    /// Answer 422 to everything.
    refuse: bool,
}

fn verify(headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(header) = headers.get("govmedia-signature").and_then(|v| v.to_str().ok()) else { return false };
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    if (Utc::now().timestamp() - t).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
    let key = headers.get("idempotency-key").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let signature_ok = verify(&headers, &body);
    let payload: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    r.deliveries.lock().expect("lock").push(Delivery { key: key.clone(), signature_ok, payload });
    if !signature_ok {
        return (StatusCode::UNAUTHORIZED, "bad signature".into());
    }
    {
        let mut unavailable = r.unavailable.lock().expect("lock");
        if *unavailable > 0 {
            *unavailable -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "try later".into());
        }
    }
    if r.refuse {
        return (StatusCode::UNPROCESSABLE_ENTITY, "content refused by the platform".into());
    }
    let mut published = r.published.lock().expect("lock");
    let n = published.len() + 1;
    let answer = published
        .entry(key)
        .or_insert_with(|| format!(r#"{{"platform_post_id":"post-{n}","url":"https://example.gov.cn/p/{n}"}}"#))
        .clone();
    (StatusCode::OK, answer)
}

async fn receiver(r: Receiver) -> (Arc<Receiver>, String) {
    let r = Arc::new(r);
    let app = Router::new().route("/hook", post(hook)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (r, url)
}

fn webhook(url: &str) -> WebhookConnector {
    let mut settings = WebhookSettings::new(url, Secret::new(SECRET), false).expect("settings");
    settings.first_backoff = Duration::from_millis(5);
    settings.timeout = Duration::from_secs(5);
    WebhookConnector::new(settings)
}

fn item(id: &str) -> Outgoing {
    Outgoing {
        publication_id: id.to_owned(),
        platform_account_id: "acct-1".into(),
        platform: "weibo".into(),
        draft_id: "draft-1".into(),
        draft_version: 3,
        title: "防汛通告".into(),
        body: "今晚有暴雨，请市民减少外出。".into(),
        media: vec!["media://cover.png".into()],
        scheduled_at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, 0).single().expect("time"),
        approvers: vec!["张三".into(), "李四".into(), "王五".into()],
        proofreaders: vec!["赵六".into(), "钱七".into(), "孙八".into()],
    }
}

#[tokio::test]
async fn a_webhook_publish_is_signed_and_carries_the_documented_payload_r3_3() {
    let (r, url) = receiver(Receiver::default()).await;
    let receipt = webhook(&url).publish(&item("pub-1")).await.expect("published");
    assert_eq!(receipt, Receipt { platform_post_id: "post-1".into(), url: "https://example.gov.cn/p/1".into() });
    let deliveries = r.deliveries.lock().expect("lock").clone();
    assert_eq!(deliveries.len(), 1);
    let d = &deliveries[0];
    assert!(d.signature_ok, "the receiver verified the HMAC over t.body");
    assert_eq!(d.key, "pub-1:publish");
    assert_eq!(d.payload["event"], "publication.publish");
    let sent: Outgoing = serde_json::from_value(d.payload["publication"].clone()).expect("the documented shape");
    assert_eq!(sent, item("pub-1"), "approvers and proofreaders travel with it (R3.3.2)");
}

#[tokio::test]
async fn a_wrong_secret_is_refused_by_the_receiver_and_not_retried() {
    let (r, url) = receiver(Receiver::default()).await;
    let mut settings = WebhookSettings::new(&url, Secret::new("another-secret-entirely"), false).expect("settings");
    settings.first_backoff = Duration::from_millis(5);
    let err = WebhookConnector::new(settings).publish(&item("pub-1")).await.expect_err("refused");
    assert!(matches!(err, ConnectorError::Permanent(ref m) if m.contains("401")), "{err:?}");
    assert_eq!(r.deliveries.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn temporary_failures_are_retried_with_the_same_idempotency_key() {
    let (r, url) = receiver(Receiver { unavailable: Mutex::new(2), ..Receiver::default() }).await;
    let receipt = webhook(&url).publish(&item("pub-2")).await.expect("published on the third attempt");
    assert_eq!(receipt.platform_post_id, "post-1");
    let keys: Vec<String> = r.deliveries.lock().expect("lock").iter().map(|d| d.key.clone()).collect();
    assert_eq!(keys, vec!["pub-2:publish"; 3]);
}

#[tokio::test]
async fn failures_past_the_attempts_stay_transient_for_the_scheduler() {
    let (r, url) = receiver(Receiver { unavailable: Mutex::new(10), ..Receiver::default() }).await;
    let err = webhook(&url).publish(&item("pub-3")).await.expect_err("still down");
    assert!(err.is_transient(), "{err:?}");
    assert!(err.to_string().contains("503"), "{err}");
    assert_eq!(r.deliveries.lock().expect("lock").len(), 3, "three attempts, then the scheduler's turn");
}

#[tokio::test]
async fn a_refusal_is_permanent_and_says_why() {
    let (r, url) = receiver(Receiver { refuse: true, ..Receiver::default() }).await;
    let err = webhook(&url).publish(&item("pub-4")).await.expect_err("refused");
    assert_eq!(
        err,
        ConnectorError::Permanent("webhook answered 422 Unprocessable Entity: content refused by the platform".into())
    );
    assert_eq!(r.deliveries.lock().expect("lock").len(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_second_publish_of_the_same_publication_gets_the_first_receipt() {
    let (r, url) = receiver(Receiver::default()).await;
    let c = webhook(&url);
    let first = c.publish(&item("pub-5")).await.expect("first");
    let second = c.publish(&item("pub-5")).await.expect("second");
    assert_eq!(first, second);
    assert_eq!(r.published.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn an_unreachable_receiver_is_a_temporary_failure() {
    // Bind then drop: the port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let err = webhook(&format!("http://127.0.0.1:{port}/hook")).publish(&item("pub-6")).await.expect_err("down");
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn retraction_is_signed_and_carries_the_reason() {
    let (r, url) = receiver(Receiver::default()).await;
    webhook(&url).retract("pub-7", "acct-1", "数据有误").await.expect("retracted");
    let d = r.deliveries.lock().expect("lock")[0].clone();
    assert!(d.signature_ok);
    assert_eq!(d.key, "pub-7:retract");
    assert_eq!(d.payload["event"], "publication.retract");
    assert_eq!(d.payload["reason"], "数据有误");
}

#[test]
fn bad_webhook_settings_are_refused_at_configuration() {
    let new = |url: &str, secret: &str, plain: bool| WebhookSettings::new(url, Secret::new(secret), plain);
    new("https://gw.example.gov.cn/hook", SECRET, false).expect("https anywhere");
    // Plain http crosses no network: this host only, unless explicitly allowed.
    let clear = new("http://gw.example.gov.cn/hook", SECRET, false).expect_err("clear text over a network");
    assert!(clear.contains("plain http only to this host"), "{clear}");
    new("http://gw.example.gov.cn/hook", SECRET, true).expect("explicitly allowed");
    for local in ["http://127.0.0.1:1/hook", "http://localhost:1/hook", "http://[::1]:1/hook"] {
        new(local, SECRET, false).expect(local);
    }
    let short = new("http://127.0.0.1:1/hook", "short", false).expect_err("short");
    assert!(short.contains("at least 16"), "{short}");
    assert!(new("ftp://x/hook", SECRET, false).is_err());
    let debug = format!("{:?}", new("http://127.0.0.1:1/hook", SECRET, false).expect("ok"));
    assert!(!debug.contains(SECRET), "the secret is never printed: {debug}");
    let missing = new("https://gw.example.gov.cn/hook", SECRET, false)
        .expect("ok")
        .with_ca_file(std::path::Path::new("/nonexistent/ca.pem"))
        .expect_err("no such CA file");
    assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
}

/// A listener that speaks TLS with `config`, for a receiver on HTTPS.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, address)) = self.tcp.accept().await else { continue };
            // A client that refuses our certificate fails the handshake: wait for the next.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, address);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A receiver on HTTPS with a certificate for `localhost` from a fresh CA; the CA's PEM.
async fn tls_receiver() -> (Arc<Receiver>, String, String) {
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "海港市公安局 CA");
    let ca = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("leaf");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .expect("server config");
    let r = Arc::new(Receiver::default());
    let app = Router::new().route("/hook", post(hook)).with_state(r.clone());
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("https://localhost:{}/hook", tcp.local_addr().expect("addr").port());
    let listener = TlsListener { tcp, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) };
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (r, url, ca.pem())
}

#[tokio::test]
async fn the_webhook_speaks_https_and_verifies_the_certificate() {
    let (r, url, ca) = tls_receiver().await;
    let dir = tempfile::tempdir().expect("dir");
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).expect("ca file");
    let fast = |mut s: WebhookSettings| {
        s.first_backoff = Duration::from_millis(5);
        s.attempts = 1;
        s
    };

    // Without the bureau's CA the certificate is not trusted and nothing is sent.
    let untrusted =
        WebhookConnector::new(fast(WebhookSettings::new(&url, Secret::new(SECRET), false).expect("settings")));
    let err = untrusted.publish(&item("pub-tls")).await.expect_err("unknown issuer");
    assert!(matches!(err, ConnectorError::Transient(ref m) if m.contains("certificate")), "{err:?}");
    assert!(r.deliveries.lock().expect("lock").is_empty(), "nothing reached the receiver");

    // With it, the publication goes out over TLS, signed.
    let settings =
        WebhookSettings::new(&url, Secret::new(SECRET), false).expect("settings").with_ca_file(&ca_file).expect("ca");
    let receipt = WebhookConnector::new(fast(settings)).publish(&item("pub-tls")).await.expect("published over https");
    assert_eq!(receipt.platform_post_id, "post-1");
    let d = r.deliveries.lock().expect("lock")[0].clone();
    assert!(d.signature_ok);
    assert_eq!(d.key, "pub-tls:publish");
}

#[tokio::test]
async fn the_archive_keeps_each_publication_whole_and_once() {
    let dir = tempfile::tempdir().expect("dir");
    let archive = ArchiveConnector::new(dir.path());
    let first = archive.publish(&item("pub-8")).await.expect("archived");
    let path = archive.path_of("acct-1", "pub-8").expect("path");
    assert_eq!(first.url, format!("file://{}", path.display()));
    let stored: Outgoing = serde_json::from_slice(&std::fs::read(&path).expect("file")).expect("json");
    assert_eq!(stored, item("pub-8"));

    let mut changed = item("pub-8");
    changed.body = "不同的正文".into();
    let second = archive.publish(&changed).await.expect("idempotent");
    assert_eq!(second, first);
    let stored: Outgoing = serde_json::from_slice(&std::fs::read(&path).expect("file")).expect("json");
    assert_eq!(stored.body, item("pub-8").body, "what went out first is what the archive keeps");
    let names: Vec<_> =
        std::fs::read_dir(path.parent().expect("dir")).expect("list").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names.len(), 1, "no temporary files left behind: {names:?}");

    archive.retract("pub-8", "acct-1", "数据有误").await.expect("retracted");
    let retraction: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.with_extension("retracted.json")).expect("file")).expect("json");
    assert_eq!(retraction["reason"], "数据有误");
    assert!(path.exists(), "the published record stays");
}

#[tokio::test]
async fn the_archive_refuses_ids_that_would_leave_its_folder() {
    let dir = tempfile::tempdir().expect("dir");
    let archive = ArchiveConnector::new(dir.path().join("archive"));
    let mut escape = item("../../etc/passwd");
    let err = archive.publish(&escape).await.expect_err("refused");
    assert!(!err.is_transient());
    escape.publication_id = "pub-9".into();
    escape.platform_account_id = "..".into();
    assert!(archive.publish(&escape).await.is_err());
    let err = archive.retract("never-published", "acct-1", "x").await.expect_err("unknown");
    assert!(matches!(err, ConnectorError::Permanent(ref m) if m.contains("not in the archive")), "{err:?}");
}
