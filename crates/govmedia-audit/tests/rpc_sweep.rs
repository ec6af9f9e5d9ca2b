//! Every RPC of `govmedia.audit.v1` over real gRPC with a real identity service: without
//! a token each answers UNAUTHENTICATED; with an empty request from a principal holding
//! no role, each answers a clear refusal, and none answers UNIMPLEMENTED, INTERNAL or
//! UNKNOWN.

mod common;

use common::World;
use govmedia_testkit::TestDatabase;
use govmedia_testkit::raw::{call, is_clear_answer, is_clear_refusal, methods_of};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_audit_rpc_refuses_clearly_and_never_fails_internally() {
    let w = World::start(TestDatabase::sqlite()).await;
    let methods = methods_of("govmedia.audit.v1");
    assert_eq!(
        methods.len(),
        71,
        "the audit log's 6, screening's 8, compliance's 4, rectification's 6, violation's 7, public feedback's 6, \
         inspection's 5, security control's 5, security check's 17, security incident's 7"
    );
    for method in &methods {
        assert_eq!(
            call(w.audit.channel(), method, Vec::new(), None).await,
            Code::Unauthenticated,
            "{} without a token",
            method.path
        );
        let code = call(w.audit.channel(), method, Vec::new(), Some(&w.nobody_token)).await;
        assert!(is_clear_refusal(code), "{} answered {code:?} to a principal holding no role", method.path);
        // With the right roles, an empty request is answered or refused clearly, never a fault.
        let code = call(w.audit.channel(), method, Vec::new(), Some(&w.auditor_token)).await;
        assert!(is_clear_answer(code), "{} as auditor answered {code:?}", method.path);
    }
}
