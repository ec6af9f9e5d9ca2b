//! The kit's server bootstrap over real gRPC on loopback: health, reflection (v1 and
//! v1alpha), W3C trace context, authentication, load shedding, graceful shutdown.

mod common;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use govmedia_kit::auth::AuthPolicy;
use govmedia_kit::config::ServerSettings;
use govmedia_kit::server::ServerBuilder;
use govmedia_proto::audit::v1::audit_log_service_client::AuditLogServiceClient;
use govmedia_proto::audit::v1::{AppendEventsRequest, AuditEvent};
use govmedia_testkit::{TestAuth, TestServer, with_token};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tracing_subscriber::layer::SubscriberExt;

const AUDIT_SERVICE: &str = "govmedia.audit.v1.AuditLogService";

/// One OpenTelemetry pipeline for this test binary, exporting to memory.
fn spans() -> &'static (SdkTracerProvider, InMemorySpanExporter) {
    static PIPELINE: OnceLock<(SdkTracerProvider, InMemorySpanExporter)> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("kit-test")));
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber of this binary");
        (provider, exporter)
    })
}

fn fake_audit() -> (Arc<Mutex<common::Store>>, ServerBuilder) {
    let store = Arc::new(Mutex::new(common::Store::default()));
    let builder = ServerBuilder::new(ServerSettings::loopback()).add_service(common::server(store.clone()));
    (store, builder)
}

fn event(id: &str) -> AuditEvent {
    AuditEvent { id: id.to_owned(), action: "test.happened".to_owned(), ..Default::default() }
}

#[tokio::test]
async fn health_says_serving_and_reflection_lists_the_services() {
    let (_store, builder) = fake_audit();
    let server = TestServer::start(builder).await;

    let mut health = HealthClient::new(server.channel());
    let status = health
        .check(HealthCheckRequest { service: AUDIT_SERVICE.to_owned() })
        .await
        .expect("health answers")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);

    // v1 reflection (buf curl, grpcui).
    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new(server.channel());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut responses =
            client.server_reflection_info(tokio_stream::iter(vec![request])).await.expect("reflection v1").into_inner();
        let response = responses.next().await.expect("one answer").expect("ok");
        let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
            panic!("not a service list")
        };
        let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
        assert!(names.contains(&AUDIT_SERVICE.to_owned()), "{names:?}");
        assert!(names.contains(&"grpc.health.v1.Health".to_owned()), "{names:?}");
        assert!(
            !names.contains(&"govmedia.content.v1.DraftService".to_owned()),
            "only hosted services are listed: {names:?}"
        );
    }
    // v1alpha reflection (grpcurl, Python grpcio tools).
    {
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        let mut client = ServerReflectionClient::new(server.channel());
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(AUDIT_SERVICE.to_owned())),
        };
        let mut responses = client
            .server_reflection_info(tokio_stream::iter(vec![request]))
            .await
            .expect("reflection v1alpha")
            .into_inner();
        let response = responses.next().await.expect("one answer").expect("ok");
        let Some(MessageResponse::FileDescriptorResponse(files)) = response.message_response else {
            panic!("no descriptor")
        };
        assert!(!files.file_descriptor_proto.is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn a_traceparent_from_the_client_is_the_parent_of_the_server_span() {
    let (provider, exporter) = spans();
    let (_store, builder) = fake_audit();
    let server = TestServer::start(builder).await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span_id = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(AppendEventsRequest { events: vec![event("e-trace")] });
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{parent_span_id}-01").parse().expect("header"));
    AuditLogServiceClient::new(server.channel()).append_events(request).await.expect("call succeeds");

    // The server span ends when the call's future is dropped, a moment after the answer.
    // Other tests of this binary export AppendEvents spans into the same exporter at the
    // same time, so the span is picked by its trace id, not by its name alone.
    let name = format!("{AUDIT_SERVICE}/AppendEvents");
    let ours =
        |s: &opentelemetry_sdk::trace::SpanData| s.name == name && s.span_context.trace_id().to_string() == trace_id;
    let mut finished = Vec::new();
    for _ in 0..40 {
        provider.force_flush().expect("flush");
        finished = exporter.get_finished_spans().expect("spans");
        if finished.iter().any(ours) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let span = finished.iter().find(|s| ours(s)).unwrap_or_else(|| {
        panic!(
            "no server span in trace {trace_id} among {:?}",
            finished.iter().map(|s| (s.name.clone(), s.span_context.trace_id().to_string())).collect::<Vec<_>>()
        )
    });
    assert_eq!(span.parent_span_id.to_string(), parent_span_id);
    assert_eq!(span.span_kind, opentelemetry::trace::SpanKind::Server);
    server.stop().await;
}

#[tokio::test]
async fn outgoing_calls_carry_the_current_span_as_parent() {
    use opentelemetry::trace::TraceContextExt;
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let (provider, exporter) = spans();
    let (_store, builder) = fake_audit();
    let server = TestServer::start(builder).await;
    let mut client =
        AuditLogServiceClient::with_interceptor(server.channel(), govmedia_kit::telemetry::TraceContextInterceptor);
    let caller = tracing::info_span!("caller");
    let caller_context = caller.context();
    let caller_span = caller_context.span().span_context().clone();
    async {
        client.append_events(AppendEventsRequest { events: vec![event("e-outgoing")] }).await.expect("call succeeds");
    }
    .instrument(caller)
    .await;

    let name = format!("{AUDIT_SERVICE}/AppendEvents");
    let mut found = None;
    for _ in 0..40 {
        provider.force_flush().expect("flush");
        found = exporter
            .get_finished_spans()
            .expect("spans")
            .into_iter()
            .find(|s| s.name == name && s.span_context.trace_id() == caller_span.trace_id());
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let server_span = found.expect("a server span in the caller's trace");
    assert_eq!(server_span.parent_span_id, caller_span.span_id());
    server.stop().await;
}

#[tokio::test]
async fn calls_without_a_valid_token_are_refused_but_health_is_public() {
    let auth = TestAuth::new();
    let (_store, builder) = fake_audit();
    let server = TestServer::start(builder.with_auth(auth.layer(AuthPolicy::standard()))).await;
    let mut client = AuditLogServiceClient::new(server.channel());

    let status = client.append_events(AppendEventsRequest::default()).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status =
        client.append_events(with_token(AppendEventsRequest::default(), "not.a.token")).await.expect_err("bad token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let forged = TestAuth::new().service_token(uuid::Uuid::now_v7().to_string().parse().expect("id"), "forger");
    let status =
        client.append_events(with_token(AppendEventsRequest::default(), &forged)).await.expect_err("foreign key");
    assert_eq!(status.code(), Code::Unauthenticated);

    let token = auth.service_token(uuid::Uuid::now_v7().to_string().parse().expect("id"), "content");
    client
        .append_events(with_token(AppendEventsRequest { events: vec![event("e1")] }, &token))
        .await
        .expect("valid token");

    let mut health = HealthClient::new(server.channel());
    health.check(HealthCheckRequest { service: String::new() }).await.expect("health needs no token");
    server.stop().await;
}

#[tokio::test]
async fn a_password_change_only_session_may_call_nothing_else_r2_3_1() {
    let auth = TestAuth::new();
    let (_store, builder) = fake_audit();
    let server = TestServer::start(builder.with_auth(auth.layer(AuthPolicy::standard()))).await;
    let user: govmedia_domain::ids::PrincipalId = uuid::Uuid::now_v7().to_string().parse().expect("id");
    let mut claims = govmedia_kit::auth::AccessClaims::new(
        user,
        govmedia_kit::auth::PrincipalKind::User,
        "Zhao Lei",
        chrono::Utc::now(),
        Duration::from_secs(900),
    );
    claims.pcr = true;
    let token = auth.sign(&claims);
    let status = AuditLogServiceClient::new(server.channel())
        .append_events(with_token(AppendEventsRequest::default(), &token))
        .await
        .expect_err("restricted session");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(status.message().contains("R2.3.1"), "{}", status.message());
    server.stop().await;
}

#[tokio::test]
async fn over_the_concurrency_limit_calls_are_shed_not_queued() {
    let store = Arc::new(Mutex::new(common::Store { delay: Some(Duration::from_millis(800)), ..Default::default() }));
    let settings = ServerSettings { max_concurrent_requests: 1, ..ServerSettings::loopback() };
    let server = TestServer::start(ServerBuilder::new(settings).add_service(common::server(store.clone()))).await;
    let client = AuditLogServiceClient::new(server.channel());

    let mut slow = client.clone();
    let first =
        tokio::spawn(async move { slow.append_events(AppendEventsRequest { events: vec![event("slow")] }).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let status = client.clone().append_events(AppendEventsRequest::default()).await.expect_err("shed");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(started.elapsed() < Duration::from_millis(500), "refused at once, not after queueing");
    first.await.expect("task").expect("the call in flight completes");
    server.stop().await;
}

#[tokio::test]
async fn the_gateway_admits_what_its_adaptive_limit_allows_and_refuses_the_rest_at_once() {
    let store = Arc::new(Mutex::new(common::Store { delay: Some(Duration::from_millis(300)), ..Default::default() }));
    let settings = ServerSettings { max_concurrent_requests: 10, ..ServerSettings::loopback() };
    let server =
        TestServer::start(ServerBuilder::new(settings).as_gateway().add_service(common::server(store.clone()))).await;
    let client = AuditLogServiceClient::new(server.channel());
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let mut client = client.clone();
            tokio::spawn(async move {
                let started = std::time::Instant::now();
                let answer = client.append_events(AppendEventsRequest { events: vec![event(&format!("e{i}"))] }).await;
                (answer.map(|_| ()).map_err(|s| s.code()), started.elapsed())
            })
        })
        .collect();
    let (mut admitted, mut refused) = (0, 0);
    for call in calls {
        match call.await.expect("task") {
            (Ok(()), _) => admitted += 1,
            (Err(Code::Unavailable), took) => {
                refused += 1;
                assert!(took < Duration::from_millis(250), "refused at once, not after queueing: {took:?}");
            }
            (Err(code), _) => panic!("answered {code:?}"),
        }
    }
    assert!((8..=10).contains(&admitted), "at least the floor, at most the ceiling: {admitted}");
    assert_eq!(admitted + refused, 30);
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_the_call_in_flight_finish() {
    let store = Arc::new(Mutex::new(common::Store { delay: Some(Duration::from_millis(600)), ..Default::default() }));
    let server =
        TestServer::start(ServerBuilder::new(ServerSettings::loopback()).add_service(common::server(store.clone())))
            .await;
    let mut client = AuditLogServiceClient::new(server.channel());
    let in_flight =
        tokio::spawn(async move { client.append_events(AppendEventsRequest { events: vec![event("last")] }).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.stop().await;
    let response = in_flight.await.expect("task").expect("the in-flight call finished").into_inner();
    assert_eq!(response.appended_count, 1);
    assert_eq!(store.lock().expect("store").log, vec!["last".to_owned()]);
}

#[tokio::test]
async fn with_a_certificate_the_server_speaks_tls_only() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let folder = tempfile::tempdir().expect("dir");
    let (cert, key) = (folder.path().join("cert.pem"), folder.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).expect("cert written");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("key written");
    let settings = ServerSettings { tls_cert: Some(cert), tls_key: Some(key), ..ServerSettings::loopback() };
    let server = TestServer::start(
        ServerBuilder::new(settings).add_service(common::server(Arc::new(Mutex::new(common::Store::default())))),
    )
    .await;
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(certified.cert.pem()))
        .domain_name("localhost");
    let channel = tonic::transport::Endpoint::from_shared(format!("https://{}", server.addr()))
        .expect("url")
        .tls_config(tls)
        .expect("tls")
        .connect()
        .await
        .expect("a TLS connection");
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest { service: AUDIT_SERVICE.to_owned() })
        .await
        .expect("health over TLS")
        .into_inner()
        .status;
    assert_eq!(status, ServingStatus::Serving as i32);
    // Plaintext is not answered.
    let plain =
        HealthClient::new(server.channel()).check(HealthCheckRequest { service: AUDIT_SERVICE.to_owned() }).await;
    assert!(plain.is_err(), "plaintext must not be served: {plain:?}");
    server.stop().await;
}

/// A test CA, and certificates it signs: (certificate PEM, key PEM).
struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
        params.distinguished_name.push(rcgen::DnType::CommonName, "govmedia test CA");
        let key = rcgen::KeyPair::generate().expect("key");
        let pem = params.self_signed(&key).expect("CA").pem();
        Self { params, key, pem }
    }

    fn issue(&self, common_name: &str, dns: &[&str], usage: rcgen::ExtendedKeyUsagePurpose) -> (String, String) {
        let mut params =
            rcgen::CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>()).expect("params");
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages = vec![usage];
        let key = rcgen::KeyPair::generate().expect("key");
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        (params.signed_by(&key, &issuer).expect("signed").pem(), key.serialize_pem())
    }
}

/// With GOVMEDIA_TLS_REQUIRE_SERVICE_CERTIFICATES a service token is accepted only over a
/// connection whose client certificate names the service's client id; users are not
/// affected.
#[tokio::test]
async fn service_principals_must_present_their_own_client_certificate() {
    let ca = TestCa::new();
    let folder = tempfile::tempdir().expect("dir");
    let write = |name: &str, text: &str| {
        let path = folder.path().join(name);
        std::fs::write(&path, text).expect("written");
        path
    };
    let (server_cert, server_key) = ca.issue("localhost", &["localhost"], rcgen::ExtendedKeyUsagePurpose::ServerAuth);
    let settings = ServerSettings {
        tls_cert: Some(write("server.pem", &server_cert)),
        tls_key: Some(write("server.key", &server_key)),
        tls_client_ca: Some(write("ca.pem", &ca.pem)),
        tls_require_service_certificates: true,
        ..ServerSettings::loopback()
    };
    let auth = TestAuth::new();
    let server = TestServer::start(
        ServerBuilder::new(settings)
            .add_service(common::server(Arc::new(Mutex::new(common::Store::default()))))
            .with_auth(auth.layer(AuthPolicy::standard())),
    )
    .await;
    let connect = |client: Option<(String, String)>| {
        let mut tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(&ca.pem))
            .domain_name("localhost");
        if let Some((cert, key)) = client {
            tls = tls.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        let url = format!("https://{}", server.addr());
        async move {
            tonic::transport::Endpoint::from_shared(url).expect("url").tls_config(tls).expect("tls").connect().await
        }
    };
    let id = || uuid::Uuid::now_v7().to_string().parse().expect("id");
    let relay = auth.service_token(id(), "govmedia-content");
    let call = |channel: tonic::transport::Channel, token: String| async move {
        AuditLogServiceClient::new(channel)
            .append_events(with_token(
                AppendEventsRequest { events: vec![event(&uuid::Uuid::now_v7().to_string())] },
                &token,
            ))
            .await
    };

    // The token alone, over TLS without a certificate: refused, saying why.
    let status = call(connect(None).await.expect("TLS"), relay.clone()).await.expect_err("no certificate");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("govmedia-content") && status.message().contains("mutual TLS"), "{status:?}");
    // Another service's certificate: refused.
    let other = ca.issue("govmedia-interaction", &[], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    let status = call(connect(Some(other)).await.expect("mTLS"), relay.clone()).await.expect_err("not its certificate");
    assert_eq!(status.code(), Code::Unauthenticated);
    // Its own certificate, by common name or by DNS name: accepted.
    let own = ca.issue("govmedia-content", &[], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    call(connect(Some(own)).await.expect("mTLS"), relay.clone()).await.expect("its own certificate");
    let by_dns = ca.issue("Content service", &["govmedia-content"], rcgen::ExtendedKeyUsagePurpose::ClientAuth);
    call(connect(Some(by_dns)).await.expect("mTLS"), relay).await.expect("named by DNS");
    // A user signs in with a password, not a certificate: unaffected.
    let user = auth.user_token(id(), "Wang Fang", None);
    let status = call(connect(None).await.expect("TLS"), user).await.map(|_| ()).map_err(|s| s.code());
    assert_ne!(status, Err(Code::Unauthenticated), "users need no certificate");
    server.stop().await;
}
