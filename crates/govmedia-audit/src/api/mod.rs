//! The gRPC edge of the audit service: one module per service of `govmedia.audit.v1`.

pub mod audit_log;
pub mod compliance;
pub mod inspection;
pub mod public_feedback;
pub mod rectification;
pub mod screening;
pub mod security_check;
pub mod security_control;
pub mod security_incident;
pub mod violation;
