//! The whole audit path, end to end: identity writes its audit records in the same
//! transactions as its changes, its outbox relay authenticates as identity's service
//! principal and ships them to the real audit service, which chains them; the log
//! verifies and holds identity's story in order (R1.3.5, R9.2).

mod common;

use std::sync::Arc;

use common::World;
use govmedia_kit::client::{CallCredentials, ClientCredentials};
use govmedia_kit::config::Secret;
use govmedia_kit::outbox::{GrpcAuditSink, Relay};
use govmedia_proto::audit::v1 as pb;
use govmedia_testkit::{TestDatabase, storage_tests, with_token};

async fn identity_records_reach_the_chain_exactly_once_r9_2(db: TestDatabase) {
    let w = World::start(db).await;
    let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
        w.identity.channel(),
        "govmedia-identity".into(),
        Secret::new(w.identity_secret.clone()),
    )));
    let relay =
        Relay::new(w.identity_db.clone(), GrpcAuditSink::new(w.audit.channel(), credentials)).with_batch_size(7);
    let waiting = relay.pending().await.expect("pending");
    assert!(waiting > 10, "identity has recorded its bootstrap, users and grants ({waiting})");
    let mut shipped = 0;
    loop {
        let n = relay.deliver_batch().await.expect("delivered");
        if n == 0 {
            break;
        }
        shipped += n;
    }
    assert_eq!(i64::try_from(shipped).expect("fits"), waiting);
    assert_eq!(relay.pending().await.expect("pending"), 0);

    let events = w
        .client()
        .query_events(with_token(
            pb::QueryEventsRequest {
                filter: Some(pb::EventFilter::default()),
                page_size: 1000,
                page_token: String::new(),
            },
            &w.auditor_token,
        ))
        .await
        .expect("query")
        .into_inner()
        .events;
    let from_identity: Vec<_> = events.iter().filter(|e| e.producer == "identity").map(|e| e.action.as_str()).collect();
    assert_eq!(i64::try_from(from_identity.len()).expect("fits"), waiting, "each record once");
    let position = |action: &str| {
        from_identity.iter().position(|a| *a == action).unwrap_or_else(|| panic!("{action} missing: {from_identity:?}"))
    };
    assert!(position("administrator.bootstrapped") < position("user.password.changed"));
    assert!(position("service_principal.created") < position("role_binding.created"));
    let report = w
        .client()
        .verify_log(with_token(pb::VerifyLogRequest::default(), &w.auditor_token))
        .await
        .expect("verify")
        .into_inner();
    assert!(report.intact, "{}", report.detail);
}

storage_tests!(identity_records_reach_the_chain_exactly_once_r9_2);
