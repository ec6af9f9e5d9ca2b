//! Every RPC of `govmedia.content.v1` over real gRPC with real identity and audit:
//! without a token each answers UNAUTHENTICATED; with an empty request — from a
//! principal holding no role, and from an administrator — each answers a clear refusal,
//! and none answers UNIMPLEMENTED, INTERNAL or UNKNOWN.

mod common;

use common::Content;
use govmedia_testkit::TestDatabase;
use govmedia_testkit::raw::{call, is_clear_answer, is_clear_refusal, methods_of};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_content_rpc_refuses_clearly_and_never_fails_internally() {
    let c = Content::start(TestDatabase::sqlite()).await;
    let methods = methods_of("govmedia.content.v1");
    assert_eq!(methods.len(), 33, "plans 5, drafts 12, publications 12, metrics 4");
    for method in &methods {
        assert_eq!(
            call(c.server.channel(), method, Vec::new(), None).await,
            Code::Unauthenticated,
            "{} without a token",
            method.path
        );
        let code = call(c.server.channel(), method, Vec::new(), Some(&c.world.nobody_token)).await;
        if method.path == "/govmedia.content.v1.DraftService/ListReviewQueue" {
            // "What waits for me": each caller sees only what they may review; nothing here.
            assert_eq!(code, Code::Ok, "{}", method.path);
        } else {
            assert!(is_clear_refusal(code), "{} answered {code:?} to a principal holding no role", method.path);
        }
        let code = call(c.server.channel(), method, Vec::new(), Some(&c.world.admin_token)).await;
        assert!(is_clear_answer(code), "{} with an empty request answered {code:?}", method.path);
    }
}
