//! The gateway in front of the real identity and audit services over loopback: calls
//! reach the service their name belongs to, unary and server-streaming, with metadata
//! and trailers intact; public methods pass without a token; a bad token is refused at
//! the edge; an unreachable upstream answers UNAVAILABLE naming its package; reflection
//! lists every service behind the gateway.

use std::sync::Arc;

use govmedia_gateway::{Upstream, server};
use govmedia_kit::auth::TokenVerifier;
use govmedia_kit::config::ServerSettings;
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::audit_log_service_client::AuditLogServiceClient;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_proto::interaction::v1::comment_service_client::CommentServiceClient;
use govmedia_testkit::{TestDatabase, TestServer, with_token};
use govmedia_world::{World, rid};
use tokio_stream::StreamExt;
use tonic::Code;

/// A port nothing listens on.
fn dead_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    format!("http://127.0.0.1:{port}")
}

async fn gateway(world: &World) -> TestServer {
    let upstreams = vec![
        Upstream::new("govmedia.identity.v1", &[world.identity.endpoint()]).expect("identity"),
        Upstream::new("govmedia.audit.v1", &[world.audit.endpoint()]).expect("audit"),
        Upstream::new("govmedia.interaction.v1", &[dead_endpoint()]).expect("interaction"),
    ];
    let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
    TestServer::start(server(&upstreams, ServerSettings::loopback(), verifier, None)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_reach_their_service_unary_and_streaming() {
    let world = World::start(TestDatabase::sqlite()).await;
    let gw = gateway(&world).await;

    // A public method needs no token; a login through the gateway is a login.
    let status =
        govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient::new(gw.channel())
            .login(ipb::LoginRequest { username: "admin".into(), password: "wrong password".into() })
            .await
            .expect_err("wrong password");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(!status.message().contains("token"), "identity answered, not the edge: {status:?}");

    // Unary with a token, the answer as identity gives it.
    let mut directory = DirectoryServiceClient::new(gw.channel());
    let created = directory
        .create_department(with_token(
            ipb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(ipb::Department {
                    name: "Publicity".into(),
                    code: "PUB".into(),
                    ..Default::default()
                }),
            },
            &world.admin_token,
        ))
        .await
        .expect("created through the gateway")
        .into_inner();
    let listed = DirectoryServiceClient::new(world.identity.channel())
        .list_departments(with_token(ipb::ListDepartmentsRequest::default(), &world.admin_token))
        .await
        .expect("listed directly")
        .into_inner();
    assert!(listed.departments.iter().any(|d| Some(d) == created.department.as_ref()));

    // An error status and its details come back whole.
    let status = directory
        .create_department(with_token(ipb::CreateDepartmentRequest::default(), &world.admin_token))
        .await
        .expect_err("empty");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(!status.details().is_empty(), "rich error details pass through");

    // Server streaming: append through the gateway, export through the gateway.
    let mut audit = AuditLogServiceClient::new(gw.channel());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs();
    let an_hour_ago = i64::try_from(now).expect("a time") - 3600;
    let events: Vec<apb::AuditEvent> = (0..250)
        .map(|i| apb::AuditEvent {
            id: rid(),
            action: "gateway.test".into(),
            // The content service's own events: the token is the content service's.
            producer: "content".into(),
            occur_time: Some(prost_types::Timestamp { seconds: an_hour_ago + i, nanos: 0 }),
            actor: Some(govmedia_proto::common::v1::PrincipalRef {
                kind: govmedia_proto::common::v1::PrincipalKind::System as i32,
                id: "gateway-test".into(),
                ..Default::default()
            }),
            outcome: apb::AuditOutcome::Success as i32,
            attributes: [("n".to_owned(), i.to_string())].into_iter().collect(),
            ..Default::default()
        })
        .collect();
    audit
        .append_events(with_token(apb::AppendEventsRequest { events }, &world.content_token))
        .await
        .expect("appended through the gateway");
    let mut stream = audit
        .export_events(with_token(
            apb::ExportEventsRequest {
                filter: Some(apb::EventFilter { actions: vec!["gateway.test".into()], ..Default::default() }),
            },
            &world.auditor_token,
        ))
        .await
        .expect("export")
        .into_inner();
    let mut exported = 0;
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        exported += chunk.expect("chunk").events.len();
        chunks += 1;
    }
    assert_eq!(exported, 250);
    assert!(chunks >= 1);
    // The stream ended with its OK trailers (the loop would have yielded an error otherwise).
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_refuses_bad_tokens_and_reports_unreachable_upstreams() {
    let world = World::start(TestDatabase::sqlite()).await;
    let gw = gateway(&world).await;
    let mut comments = CommentServiceClient::new(gw.channel());
    let request = govmedia_proto::interaction::v1::ListCommentsRequest::default();

    // The interaction upstream is down: a bad token is refused before it matters.
    let status = comments.list_comments(with_token(request.clone(), "not.a.token")).await.expect_err("bad token");
    assert_eq!(status.code(), Code::Unauthenticated);
    let status = comments.list_comments(request.clone()).await.expect_err("no token");
    assert_eq!(status.code(), Code::Unauthenticated);

    // With a good token the call goes on and the dead upstream is named.
    let status = comments.list_comments(with_token(request, &world.admin_token)).await.expect_err("down");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(format!("{status:?}").contains("govmedia.interaction.v1"), "{status:?}");

    // Reflection at the gateway lists the services behind it.
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(gw.channel())
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        responses.next().await.expect("answer").expect("ok").message_response
    else {
        panic!("not a list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "govmedia.identity.v1.AuthenticationService",
        "govmedia.audit.v1.AuditLogService",
        "govmedia.interaction.v1.CommentService",
    ] {
        assert!(names.contains(&expected.to_owned()), "{expected} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("govmedia.content.")), "content has no upstream here: {names:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_principal_over_its_rate_is_refused_while_another_is_not() {
    use tonic_types::StatusExt;
    let world = World::start(TestDatabase::sqlite()).await;
    let upstreams = vec![Upstream::new("govmedia.identity.v1", &[world.identity.endpoint()]).expect("identity")];
    let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
    let limits = govmedia_gateway::limit::Limits::new(1, 2);
    let gw = TestServer::start(server(&upstreams, ServerSettings::loopback(), verifier, limits)).await;
    let mut directory = DirectoryServiceClient::new(gw.channel());
    let list = |token: &str| with_token(ipb::ListDepartmentsRequest::default(), token);
    // The first call fetches identity's keys; after it, calls take milliseconds, well
    // inside the one second the bucket needs to refill.
    directory.list_departments(list(&world.auditor_token)).await.expect("warm-up, the auditor's first");
    directory.list_departments(list(&world.admin_token)).await.expect("first");
    directory.list_departments(list(&world.admin_token)).await.expect("second, within the burst");
    let status = directory.list_departments(list(&world.admin_token)).await.expect_err("over the rate");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let retry = status.get_details_retry_info().expect("retry info").retry_delay.expect("delay");
    assert!(retry <= std::time::Duration::from_secs(1), "{retry:?}");
    directory.list_departments(list(&world.auditor_token)).await.expect("another principal is not held up");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_says_not_serving_for_a_package_whose_upstreams_are_all_down() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let world = World::start(TestDatabase::sqlite()).await;
    let upstreams = vec![
        Upstream::new("govmedia.identity.v1", &[world.identity.endpoint(), dead_endpoint()]).expect("identity"),
        Upstream::new("govmedia.interaction.v1", &[dead_endpoint(), dead_endpoint()]).expect("interaction"),
    ];
    let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
    let builder = server(&upstreams, ServerSettings::loopback(), verifier, None);
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(govmedia_gateway::health::watch(
        upstreams.clone(),
        builder.health_reporter(),
        std::time::Duration::from_millis(100),
        stop.clone(),
    ));
    let gw = TestServer::start(builder).await;
    let mut health = HealthClient::new(gw.channel());
    let status_of = |service: &str| HealthCheckRequest { service: service.into() };
    let mut seen = (0, 0);
    for _ in 0..100 {
        let identity =
            health.check(status_of("govmedia.identity.v1.DirectoryService")).await.expect("health").into_inner().status;
        let interaction = health
            .check(status_of("govmedia.interaction.v1.CommentService"))
            .await
            .expect("health")
            .into_inner()
            .status;
        seen = (identity, interaction);
        if seen == (ServingStatus::Serving as i32, ServingStatus::NotServing as i32) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen,
        (ServingStatus::Serving as i32, ServingStatus::NotServing as i32),
        "one live identity replica is enough"
    );
    // With one of two identity replicas dead, calls still go through.
    for _ in 0..10 {
        DirectoryServiceClient::new(gw.channel())
            .list_departments(with_token(ipb::ListDepartmentsRequest::default(), &world.admin_token))
            .await
            .expect("the live replica answers");
    }
    stop.cancel();
    watcher.await.expect("watcher stops");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_works_from_a_plain_http1_client() {
    use prost::Message;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let world = World::start(TestDatabase::sqlite()).await;
    let gw = gateway(&world).await;
    DirectoryServiceClient::new(world.identity.channel())
        .create_department(with_token(
            ipb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(ipb::Department {
                    name: "Web Office".into(),
                    code: "WEB".into(),
                    ..Default::default()
                }),
            },
            &world.admin_token,
        ))
        .await
        .expect("department");

    // One gRPC-Web frame: flag 0, big-endian length, the message.
    let message = ipb::ListDepartmentsRequest::default().encode_to_vec();
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    body.extend_from_slice(&message);
    let head = format!(
        "POST /govmedia.identity.v1.DirectoryService/ListDepartments HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/grpc-web+proto\r\nAccept: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        gw.addr(),
        world.admin_token,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(gw.addr()).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body).await.expect("body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.to_lowercase().contains("content-type: application/grpc-web"), "{text}");
    assert!(text.contains("Web Office"), "the department list came back: {text}");
    assert!(text.contains("grpc-status:0"), "the trailers came back in the body: {text}");

    // Without a token the edge refuses, in gRPC-Web too.
    let head = head.replace(&format!("Authorization: Bearer {}\r\n", world.admin_token), "");
    let mut stream = tokio::net::TcpStream::connect(gw.addr()).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(&body).await.expect("body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer");
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.contains("grpc-status: 16") || text.contains("grpc-status:16"), "{text}");
    gw.stop().await;
}

/// Two audit replicas behind the gateway, no health probes: one is stopped while callers
/// keep calling. Every call that had not started when it went goes to the survivor — none
/// fails — and the dead replica is out of service after the first call that found it gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_of_two_replicas_loses_no_call_that_had_not_started() {
    let world = World::start(TestDatabase::sqlite()).await;
    let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
    let second =
        TestServer::start(govmedia_audit::server(&world.core, ServerSettings::loopback(), verifier.clone())).await;
    let audit = Upstream::new("govmedia.audit.v1", &[world.audit.endpoint(), second.endpoint()]).expect("audit");
    let upstreams =
        vec![Upstream::new("govmedia.identity.v1", &[world.identity.endpoint()]).expect("identity"), audit.clone()];
    let gw = TestServer::start(server(&upstreams, ServerSettings::loopback(), verifier, None)).await;

    let call = |channel: tonic::transport::Channel, token: String| async move {
        AuditLogServiceClient::new(channel)
            .query_events(with_token(apb::QueryEventsRequest { page_size: 5, ..Default::default() }, &token))
            .await
            .map(|_| ())
    };
    // Both replicas take calls before the kill.
    for _ in 0..40 {
        call(gw.channel(), world.auditor_token.clone()).await.expect("both replicas answer");
    }
    assert!(audit.replicas().iter().all(|r| r.in_service()));

    // Four callers keep calling across the kill.
    let stop = tokio_util::sync::CancellationToken::new();
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (channel, token, stop) = (gw.channel(), world.auditor_token.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u32, Vec::new());
                while !stop.is_cancelled() {
                    match call(channel.clone(), token.clone()).await {
                        Ok(()) => ok += 1,
                        Err(status) => failed.push(status),
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    second.stop().await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    stop.cancel();
    let mut total = 0;
    for caller in callers {
        let (ok, failed) = caller.await.expect("caller");
        assert!(failed.is_empty(), "{} calls were lost with a replica, the first: {:?}", failed.len(), failed.first());
        total += ok;
    }
    assert!(total > 20, "the callers kept calling: {total}");
    assert!(audit.replicas()[0].in_service(), "the survivor stays in");
    assert!(!audit.replicas()[1].in_service(), "the dead replica is out");
    gw.stop().await;
}

/// A request over the message size limit is refused at the edge, before any upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_size_limit_is_refused_at_the_edge() {
    use tonic_types::StatusExt;
    let world = World::start(TestDatabase::sqlite()).await;
    let upstreams = vec![Upstream::new("govmedia.identity.v1", &[world.identity.endpoint()]).expect("identity")];
    let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
    let settings = ServerSettings { max_message_bytes: 1024, ..ServerSettings::loopback() };
    let gw = TestServer::start(server(&upstreams, settings, verifier, None)).await;
    let department = |name: String| {
        with_token(
            ipb::CreateDepartmentRequest {
                request_id: rid(),
                department: Some(ipb::Department { name, code: "BIG".into(), ..Default::default() }),
            },
            &world.admin_token,
        )
    };
    let status = DirectoryServiceClient::new(gw.channel())
        .create_department(department("大".repeat(1000)))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.get_details_error_info().expect("info").reason, "MESSAGE_TOO_LARGE");
    assert!(status.message().contains("1024"), "{status:?}");
    DirectoryServiceClient::new(gw.channel())
        .create_department(department("Small Office".into()))
        .await
        .expect("a request under the limit passes");
    gw.stop().await;
}

/// An upstream named by a host name (a Kubernetes headless Service) is every address the
/// name resolves to, looked up again as the health watcher probes: calls go where the
/// latest answer says, replicas that stay keep their connection, and a failed or empty
/// lookup keeps the last set rather than emptying the upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_upstream_follows_what_its_name_resolves_to() {
    use std::net::SocketAddr;
    use std::sync::Mutex;
    let world = World::start(TestDatabase::sqlite()).await;
    let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
    let replica =
        || TestServer::start(govmedia_audit::server(&world.core, ServerSettings::loopback(), verifier.clone()));
    let (b, c) = (replica().await, replica().await);
    let (b_addr, c_addr) = (b.addr(), c.addr());
    // What the name resolves to now; `None` is a failed lookup.
    let answer: Arc<Mutex<Option<Vec<SocketAddr>>>> = Arc::new(Mutex::new(None));
    let dns = answer.clone();
    let resolve: govmedia_gateway::upstream::Resolve = Arc::new(move |host, _port| {
        assert_eq!(host, "audit-replicas.govmedia.svc");
        let found = dns.lock().expect("answer").clone();
        Box::pin(async move { found.ok_or_else(|| std::io::Error::other("SERVFAIL")) })
    });
    let set = |addresses: &[SocketAddr]| *answer.lock().expect("answer") = Some(addresses.to_vec());
    let audit = Upstream::new("govmedia.audit.v1", &["http://audit-replicas.govmedia.svc:50051".to_owned()])
        .expect("audit")
        .with_resolver(resolve);
    let addresses = || audit.replicas().iter().map(|r| r.address.clone()).collect::<Vec<_>>();
    let url = |a: SocketAddr| format!("http://{a}");
    let upstreams =
        vec![Upstream::new("govmedia.identity.v1", &[world.identity.endpoint()]).expect("identity"), audit.clone()];
    let builder = server(&upstreams, ServerSettings::loopback(), verifier.clone(), None);
    let reporter = builder.health_reporter();
    let gw = TestServer::start(builder).await;
    let call = || async {
        AuditLogServiceClient::new(gw.channel())
            .query_events(with_token(
                apb::QueryEventsRequest { page_size: 1, ..Default::default() },
                &world.auditor_token,
            ))
            .await
            .map(|_| ())
    };

    // Before any answer the name itself is the replica.
    audit.refresh().await;
    assert_eq!(addresses(), ["http://audit-replicas.govmedia.svc:50051"]);

    set(&[b_addr]);
    audit.refresh().await;
    assert_eq!(addresses(), [url(b_addr)]);
    call().await.expect("the one replica answers");

    // A second pod: added beside the first, which keeps its connection.
    let first = audit.replicas()[0].clone();
    set(&[c_addr, b_addr]);
    audit.refresh().await;
    let mut both = vec![url(b_addr), url(c_addr)];
    both.sort();
    assert_eq!(addresses(), both);
    assert!(audit.replicas().iter().any(|r| Arc::ptr_eq(r, &first)), "the replica that stayed was kept as it was");

    // The name now answers only an address where nothing listens: calls go there, and
    // fail as unavailable — the answer, not the first lookup, decides.
    let dead: SocketAddr = dead_endpoint().trim_start_matches("http://").parse().expect("dead address");
    set(&[dead]);
    audit.refresh().await;
    assert_eq!(addresses(), [url(dead)]);
    assert_eq!(call().await.expect_err("only a dead address").code(), Code::Unavailable);

    // The health watcher looks the name up as it probes: a pod replaced by another.
    b.stop().await;
    set(&[c_addr]);
    let stop = tokio_util::sync::CancellationToken::new();
    let watcher = tokio::spawn(govmedia_gateway::health::watch(
        upstreams.clone(),
        reporter,
        std::time::Duration::from_millis(50),
        stop.clone(),
    ));
    govmedia_testkit::eventually("the watcher follows the name", std::time::Duration::from_secs(5), async || {
        (addresses() == [url(c_addr)]).then_some(())
    })
    .await;
    for _ in 0..20 {
        call().await.expect("every call goes to the pod the name names");
    }

    // A failed lookup and an empty answer keep the last set.
    *answer.lock().expect("answer") = None;
    audit.refresh().await;
    set(&[]);
    audit.refresh().await;
    assert_eq!(addresses(), [url(c_addr)]);
    call().await.expect("still answered");

    stop.cancel();
    watcher.await.expect("watcher stops");
    gw.stop().await;
    c.stop().await;
}

/// With the system's resolver: `localhost` is looked up to its loopback address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_system_resolver_turns_a_name_into_its_addresses() {
    let world = World::start(TestDatabase::sqlite()).await;
    let port = world.audit.addr().port();
    let audit = Upstream::new("govmedia.audit.v1", &[format!("http://localhost:{port}")]).expect("audit");
    audit.refresh().await;
    let addresses: Vec<String> = audit.replicas().iter().map(|r| r.address.clone()).collect();
    assert!(addresses.contains(&format!("http://127.0.0.1:{port}")), "{addresses:?}");
    assert!(!addresses.iter().any(|a| a.contains("localhost")), "{addresses:?}");
}
