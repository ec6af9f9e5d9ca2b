//! Every RPC of `govmedia.interaction.v1` over real gRPC with real identity and audit:
//! without a token each answers UNAUTHENTICATED; with an empty request — from a
//! principal holding no role, and from an administrator — each answers a clear refusal,
//! and none answers UNIMPLEMENTED, INTERNAL or UNKNOWN.

mod common;

use common::Interaction;
use govmedia_testkit::TestDatabase;
use govmedia_testkit::raw::{call, is_clear_answer, is_clear_refusal, methods_of};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interaction_rpc_refuses_clearly_and_never_fails_internally() {
    let i = Interaction::start(TestDatabase::sqlite()).await;
    let methods = methods_of("govmedia.interaction.v1");
    assert_eq!(methods.len(), 44, "comments 12, moderation 7, conversations 15, audience 7, escalations 3");
    for method in &methods {
        assert_eq!(
            call(i.server.channel(), method, Vec::new(), None).await,
            Code::Unauthenticated,
            "{} without a token",
            method.path
        );
        let code = call(i.server.channel(), method, Vec::new(), Some(&i.world.nobody_token)).await;
        assert!(is_clear_refusal(code), "{} answered {code:?} to a principal holding no role", method.path);
        let code = call(i.server.channel(), method, Vec::new(), Some(&i.world.admin_token)).await;
        assert!(is_clear_answer(code), "{} with an empty request answered {code:?}", method.path);
    }
}
