//! The shared vocabulary of govmedia: typed ids, the role and permission catalogue,
//! scopes, workflow states, validation helpers, the audit action catalogue, the clock,
//! and the one error type every service returns (mapped to a rich gRPC status in
//! [`error`]).
//!
//! No I/O lives here: no database, no network, no files. Every rule in this crate is a
//! pure function a unit test can call. Services depend on it; it depends on nothing of
//! theirs.

pub mod audit;
pub mod clock;
pub mod error;
pub mod holidays;
pub mod ids;
pub mod page;
pub mod permission;
pub mod personal;
pub mod scope;
pub mod screening;
pub mod validate;
pub mod workflow;

pub use error::{Error, Result};
