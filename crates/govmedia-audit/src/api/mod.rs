//! The gRPC edge of the audit service: one module per service of `govmedia.audit.v1`.

pub mod audit_log;
pub mod screening;
