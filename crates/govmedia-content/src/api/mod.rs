//! The gRPC edge of content: one module per service of `govmedia.content.v1`.

pub mod draft;
pub mod metrics;
pub mod plan;
pub mod publication;

pub(crate) use govmedia_kit::wire::{caller, check_etag, etag, from_ts, optional_time, ts};
