//! What every govmedia service runs on: configuration, telemetry, databases and
//! migrations, the gRPC server bootstrap, access-token verification, the audit outbox
//! and its relay, and idempotency keys.
//!
//! The kit knows no service's business: it must not depend on identity, content,
//! interaction or audit code. Services use it; it uses `govmedia-domain` for the shared
//! vocabulary and `govmedia-proto` for the wire types it must speak (signing keys, audit
//! events).

pub mod access;
pub mod auth;
pub mod client;
pub mod config;
pub mod db;
pub mod idempotency;
pub mod mutation;
pub mod outbox;
pub mod private_files;
pub mod refusals;
pub mod rpc;
pub mod schema;
pub mod screening;
pub mod server;
pub mod telemetry;
pub mod wire;

pub use govmedia_macros::handlers;
