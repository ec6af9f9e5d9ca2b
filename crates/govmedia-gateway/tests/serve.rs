//! `serve()`: settings are checked by name, and a configured gateway starts, routes to
//! a real identity service and stops cleanly.

use clap::Parser;
use govmedia_gateway::{GatewaySettings, serve, upstreams};
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_testkit::{TestDatabase, with_token};
use govmedia_world::World;

fn settings(args: &[&str]) -> GatewaySettings {
    GatewaySettings::try_parse_from(std::iter::once("govmedia-gateway").chain(args.iter().copied())).expect("parsed")
}

#[tokio::test]
async fn settings_are_checked_by_name() {
    let err = upstreams(&settings(&[]).upstreams).expect_err("no identity");
    assert_eq!(err.setting, "GOVMEDIA_GATEWAY_IDENTITY_UPSTREAMS");
    let err = upstreams(&settings(&["--identity-upstreams", "http://a:1", "--audit-upstreams", "not a url"]).upstreams)
        .expect_err("bad url");
    assert_eq!(err.setting, "GOVMEDIA_GATEWAY_AUDIT_UPSTREAMS");
    let ok = upstreams(&settings(&["--identity-upstreams", "http://a:1, http://b:1"]).upstreams).expect("ok");
    assert_eq!(ok.len(), 1);
}

#[tokio::test]
async fn a_configured_gateway_starts_routes_and_stops() {
    let world = World::start(TestDatabase::sqlite()).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let listen = format!("127.0.0.1:{port}");
    let identity = world.identity.endpoint();
    let s = settings(&["--listen-address", &listen, "--identity-upstreams", &identity]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(serve(s, async move {
        let _ = stopped.await;
    }));
    let endpoint = format!("http://{listen}");
    let mut client =
        govmedia_testkit::eventually("the gateway came up", std::time::Duration::from_secs(5), async || {
            DirectoryServiceClient::connect(endpoint.clone()).await.ok()
        })
        .await;
    client
        .list_departments(with_token(ipb::ListDepartmentsRequest::default(), &world.admin_token))
        .await
        .expect("listed through the gateway");
    stop.send(()).expect("stop");
    running.await.expect("joined").expect("stopped cleanly");
}
