//! A staff console in a browser, on another origin, calling the gateway over gRPC-Web:
//! CORS preflights answered over HTTP/1.1 and HTTP/2 for the origins the setting names
//! and for no other; the status headers readable by the page; `application/grpc-web-text`
//! answered as text.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use govmedia_gateway::{Upstream, allowed_origins, server};
use govmedia_kit::auth::TokenVerifier;
use govmedia_kit::config::ServerSettings;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_testkit::{TestDatabase, TestServer, with_token};
use govmedia_world::{World, rid};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONSOLE: &str = "https://console.bureau.example";
const STRANGER: &str = "https://pages.elsewhere.example";

async fn gateway(world: &World) -> TestServer {
    let upstreams = vec![Upstream::new("govmedia.identity.v1", &[world.identity.endpoint()]).expect("identity")];
    let verifier = Arc::new(TokenVerifier::from_identity(world.identity.channel()));
    let origins = allowed_origins(&[CONSOLE.to_owned()]).expect("origin");
    TestServer::start(server(&upstreams, ServerSettings::loopback(), verifier, None).with_allowed_origins(origins))
        .await
}

/// One HTTP/1.1 exchange; the whole answer as bytes.
async fn http1(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> Vec<u8> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream.write_all(body).await.expect("body");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer");
    answer
}

fn preflight(addr: std::net::SocketAddr, origin: &str) -> String {
    format!(
        "OPTIONS /govmedia.identity.v1.DirectoryService/ListDepartments HTTP/1.1\r\nHost: {addr}\r\n\
         Origin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout\r\n\
         Connection: close\r\n\r\n"
    )
}

/// The header `name` of an HTTP/1.1 answer, lower-cased.
fn header(answer: &str, name: &str) -> Option<String> {
    answer.lines().find_map(|l| {
        let (key, value) = l.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_lowercase())
    })
}

/// One gRPC-Web frame carrying `message`.
fn frame(message: &[u8]) -> Vec<u8> {
    let mut body = vec![0u8];
    body.extend_from_slice(&u32::try_from(message.len()).expect("small").to_be_bytes());
    body.extend_from_slice(message);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_named_console_origin_may_call_and_no_other() {
    let world = World::start(TestDatabase::sqlite()).await;
    let gw = gateway(&world).await;

    // HTTP/1.1 preflight from the console: allowed, with the headers gRPC-Web sends.
    let answer = String::from_utf8_lossy(&http1(gw.addr(), &preflight(gw.addr(), CONSOLE), b"").await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(header(&answer, "access-control-allow-origin").as_deref(), Some(CONSOLE), "{answer}");
    let allowed = header(&answer, "access-control-allow-headers").unwrap_or_default();
    for name in ["authorization", "content-type", "x-grpc-web", "grpc-timeout"] {
        assert!(allowed.contains(name), "{name} allowed: {answer}");
    }
    assert!(header(&answer, "access-control-allow-methods").unwrap_or_default().contains("post"), "{answer}");

    // From a page elsewhere: no permission for the browser to read anything.
    let answer = String::from_utf8_lossy(&http1(gw.addr(), &preflight(gw.addr(), STRANGER), b"").await).into_owned();
    assert_eq!(header(&answer, "access-control-allow-origin"), None, "{answer}");

    // HTTP/2 preflight (a browser speaking h2 to a TLS-terminating proxy in front).
    let tcp = tokio::net::TcpStream::connect(gw.addr()).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2");
    tokio::spawn(connection);
    let mut client = client.ready().await.expect("ready");
    for (origin, allowed) in [(CONSOLE, true), (STRANGER, false)] {
        let request = http::Request::builder()
            .method("OPTIONS")
            .uri(format!("http://{}/govmedia.identity.v1.DirectoryService/ListDepartments", gw.addr()))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type,x-grpc-web")
            .body(())
            .expect("request");
        let (response, _) = client.send_request(request, true).expect("sent");
        let response = response.await.expect("answer");
        assert_eq!(response.status(), 200, "{origin}");
        let granted =
            response.headers().get("access-control-allow-origin").map(|v| v.to_str().expect("text").to_owned());
        assert_eq!(granted.as_deref(), allowed.then_some(origin), "{origin} over HTTP/2");
    }

    // The call itself: the page may read the answer and its status headers.
    let body = frame(&ipb::ListDepartmentsRequest::default().encode_to_vec());
    let head = format!(
        "POST /govmedia.identity.v1.DirectoryService/ListDepartments HTTP/1.1\r\nHost: {}\r\nOrigin: {CONSOLE}\r\n\
         Content-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nAuthorization: Bearer {}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        gw.addr(),
        world.admin_token,
        body.len()
    );
    let answer = String::from_utf8_lossy(&http1(gw.addr(), &head, &body).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(header(&answer, "access-control-allow-origin").as_deref(), Some(CONSOLE), "{answer}");
    let exposed = header(&answer, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("grpc-status") && exposed.contains("grpc-message"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_text_is_answered_as_text() {
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

    let body = BASE64.encode(frame(&ipb::ListDepartmentsRequest::default().encode_to_vec()));
    let head = format!(
        "POST /govmedia.identity.v1.DirectoryService/ListDepartments HTTP/1.1\r\nHost: {}\r\n\
         Content-Type: application/grpc-web-text\r\nAccept: application/grpc-web-text\r\nX-Grpc-Web: 1\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        gw.addr(),
        world.admin_token,
        body.len()
    );
    let answer = http1(gw.addr(), &head, body.as_bytes()).await;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("head and body") + 4;
    let (head, body) = (String::from_utf8_lossy(&answer[..split]).into_owned(), &answer[split..]);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        header(&head, "content-type").is_some_and(|t| t.starts_with("application/grpc-web-text")),
        "answered as text: {head}"
    );
    // The body is base64 text (chunked on HTTP/1.1: each chunk's data is base64).
    let text =
        if header(&head, "transfer-encoding").as_deref() == Some("chunked") { dechunk(body) } else { body.to_vec() };
    assert!(text.iter().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(b)), "not text: {text:?}");
    // Each message and the trailers are encoded separately, padding and all.
    let mut decoded = Vec::new();
    let text = String::from_utf8(text).expect("ascii");
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let end = rest.find('=').map_or(rest.len(), |i| i + rest[i..].chars().take_while(|c| *c == '=').count());
        decoded.extend(BASE64.decode(&rest[..end]).expect("base64"));
        rest = &rest[end..];
    }
    let decoded = String::from_utf8_lossy(&decoded);
    assert!(decoded.contains("Web Office"), "the list came back: {decoded}");
    assert!(decoded.contains("grpc-status:0"), "the trailers came back: {decoded}");
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n").expect("chunk size");
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).expect("hex").trim(), 16).expect("size");
        body = &body[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

#[test]
fn allowed_origins_are_origins_and_never_everyone() {
    assert!(allowed_origins(&["*".to_owned()]).is_err());
    assert!(allowed_origins(&["https://console.example/app".to_owned()]).is_err());
    assert!(allowed_origins(&["console.example".to_owned()]).is_err());
    assert!(allowed_origins(&["ftp://console.example".to_owned()]).is_err());
    let ok = allowed_origins(&["https://console.example:8443".to_owned(), " http://10.0.0.5 ".to_owned()]).expect("ok");
    assert_eq!(ok.len(), 2);
    assert!(allowed_origins(&[]).expect("none").is_empty());
}
