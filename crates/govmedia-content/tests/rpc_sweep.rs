//! Every RPC of `govmedia.content.v1` over real gRPC with real identity and audit:
//! without a token each answers UNAUTHENTICATED; with an empty request — from a
//! principal holding no role, and from an administrator — each answers a clear refusal,
//! and none answers UNIMPLEMENTED, INTERNAL or UNKNOWN.

mod common;

use common::Content;
use govmedia_testkit::TestDatabase;
use govmedia_testkit::raw::{call, is_clear_refusal, methods_of};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_content_rpc_refuses_clearly_and_never_fails_internally() {
    let c = Content::start(TestDatabase::sqlite()).await;
    let methods = methods_of("govmedia.content.v1");
    assert_eq!(methods.len(), 32, "plans 5, drafts 12, publications 11, metrics 4");
    for method in &methods {
        assert_eq!(
            call(c.server.channel(), method, Vec::new(), None).await,
            Code::Unauthenticated,
            "{} without a token",
            method.path
        );
        for token in [&c.world.nobody_token, &c.world.admin_token] {
            let code = call(c.server.channel(), method, Vec::new(), Some(token)).await;
            assert!(is_clear_refusal(code), "{} with an empty request answered {code:?}", method.path);
        }
    }
}
