//! Every RPC of `govmedia.identity.v1`, found in the descriptor set and called over
//! real gRPC: without a token each non-public method answers UNAUTHENTICATED; with an
//! empty request from a principal holding no role, each answers a clear refusal
//! (INVALID_ARGUMENT, PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION) or succeeds,
//! and none answers UNIMPLEMENTED, INTERNAL or UNKNOWN. Bytes that are not a protobuf
//! message are refused by tonic's decoder before any handler runs.

mod common;

use bytes::{Buf, BufMut};
use common::Identity;
use govmedia_domain::ids::PrincipalId;
use govmedia_testkit::{TestAuth, TestDatabase};
use prost::Message;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends and receives raw protobuf bytes, so any method can be called by path.
#[derive(Debug, Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

fn identity_methods() -> Vec<String> {
    let set = prost_types::FileDescriptorSet::decode(govmedia_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
    set.file
        .iter()
        .filter(|f| f.package() == "govmedia.identity.v1")
        .flat_map(|f| {
            f.service
                .iter()
                .flat_map(move |s| s.method.iter().map(move |m| format!("/{}.{}/{}", f.package(), s.name(), m.name())))
        })
        .collect()
}

async fn call(id: &Identity, path: &str, body: Vec<u8>, token: Option<&str>) -> Result<Vec<u8>, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(id.server.channel());
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(body);
    if let Some(token) = token {
        request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    }
    let path = http::uri::PathAndQuery::try_from(path.to_owned()).expect("path");
    grpc.unary(request, path, RawCodec).await.map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_identity_rpc_refuses_clearly_and_never_fails_internally() {
    let id = Identity::start(TestDatabase::sqlite()).await;
    let methods = identity_methods();
    assert!(methods.len() >= 40, "only {} identity methods found", methods.len());

    // A token the service accepts (its own key) for a principal that holds no role.
    let nobody: PrincipalId = uuid::Uuid::now_v7().to_string().parse().expect("id");
    let claims = govmedia_kit::auth::AccessClaims::new(
        nobody,
        govmedia_kit::auth::PrincipalKind::User,
        "Nobody",
        id.core.now(),
        std::time::Duration::from_secs(900),
    );
    let (token, _) = id
        .core
        .issue_access_token(nobody, govmedia_kit::auth::PrincipalKind::User, &claims.name, None, None, false)
        .await
        .expect("token");
    let foreign = TestAuth::new().user_token(nobody, "Nobody", None);

    let mut seen = Vec::new();
    for path in &methods {
        let public = govmedia_identity::PUBLIC_METHODS.contains(&path.as_str());
        let anonymous = call(&id, path, Vec::new(), None).await;
        if !public {
            let status = anonymous.expect_err("needs a token");
            assert_eq!(status.code(), Code::Unauthenticated, "{path} without a token: {status:?}");
            let status = call(&id, path, Vec::new(), Some(&foreign)).await.expect_err("foreign key");
            assert_eq!(status.code(), Code::Unauthenticated, "{path} with a token of another issuer");
        }
        let answer = call(&id, path, Vec::new(), Some(&token)).await;
        let code = answer.as_ref().err().map_or(Code::Ok, tonic::Status::code);
        assert!(
            matches!(
                code,
                Code::Ok
                    | Code::InvalidArgument
                    | Code::PermissionDenied
                    | Code::NotFound
                    | Code::FailedPrecondition
                    | Code::Unauthenticated
            ),
            "{path} with an empty request answered {answer:?}"
        );
        let garbage = call(&id, path, vec![0xff, 0xff, 0xff, 0x0f], Some(&token)).await;
        let code = garbage.as_ref().err().map_or(Code::Ok, tonic::Status::code);
        assert!(
            !matches!(code, Code::Unimplemented | Code::Unknown | Code::Ok),
            "{path} with garbage answered {garbage:?}"
        );
        seen.push((path.clone(), code));
    }
    assert_eq!(seen.len(), methods.len());
}
