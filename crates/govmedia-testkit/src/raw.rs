//! Calling any gRPC method by path with raw protobuf bytes, for sweeps over every RPC of
//! a service found in the descriptor set (authentication, refusals, no internal errors).

use bytes::{Buf, BufMut};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// Sends and receives raw protobuf bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

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

/// A method of the contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Method {
    /// `/package.Service/Method`.
    pub path: String,
    /// True when the server streams its answer.
    pub server_streaming: bool,
}

/// Every method of the services in `package` (for example `govmedia.audit.v1`).
pub fn methods_of(package: &str) -> Vec<Method> {
    let set = prost_types::FileDescriptorSet::decode(govmedia_proto::FILE_DESCRIPTOR_SET)
        .unwrap_or_else(|e| panic!("the descriptor set does not decode: {e}"));
    set.file
        .iter()
        .filter(|f| f.package() == package)
        .flat_map(|f| {
            f.service.iter().flat_map(move |s| {
                s.method.iter().map(move |m| Method {
                    path: format!("/{}.{}/{}", f.package(), s.name(), m.name()),
                    server_streaming: m.server_streaming(),
                })
            })
        })
        .collect()
}

/// Calls `method` with `body`, optionally with a bearer token; the answer's code.
pub async fn call(channel: Channel, method: &Method, body: Vec<u8>, token: Option<&str>) -> tonic::Code {
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Err(e) = grpc.ready().await {
        panic!("the channel is not ready: {e}");
    }
    let mut request = tonic::Request::new(body);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap_or_else(|e| panic!("token is not a header value: {e}"));
        request.metadata_mut().insert("authorization", value);
    }
    let path = http::uri::PathAndQuery::try_from(method.path.clone())
        .unwrap_or_else(|e| panic!("bad path {}: {e}", method.path));
    if method.server_streaming {
        match grpc.server_streaming(request, path, RawCodec).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                match stream.message().await {
                    Ok(_) => tonic::Code::Ok,
                    Err(status) => status.code(),
                }
            }
            Err(status) => status.code(),
        }
    } else {
        match grpc.unary(request, path, RawCodec).await {
            Ok(_) => tonic::Code::Ok,
            Err(status) => status.code(),
        }
    }
}

/// The codes a well-behaved RPC refuses an empty or unauthorised request with. OK is
/// not one: an RPC that answers a principal holding no role is not refusing.
pub fn is_clear_refusal(code: tonic::Code) -> bool {
    matches!(
        code,
        tonic::Code::InvalidArgument
            | tonic::Code::PermissionDenied
            | tonic::Code::NotFound
            | tonic::Code::FailedPrecondition
            | tonic::Code::Unauthenticated
    )
}

/// A clear answer to an empty request from a principal who may act: a success (an empty
/// list, say) or a clear refusal; never UNIMPLEMENTED, INTERNAL or UNKNOWN.
pub fn is_clear_answer(code: tonic::Code) -> bool {
    code == tonic::Code::Ok || is_clear_refusal(code)
}
