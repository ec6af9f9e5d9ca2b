//! The audit service's rules: who may append what, the canonical encoding and hash chain
//! of the audit log, checkpoint signing, and verification (R1.3.5, R9.2); screening
//! (R7.1.1); inspection readiness (R8.1.1). Pure functions, no I/O.

pub mod appending;
pub mod chain;
pub mod compliance;
pub mod inspection;
pub mod public_feedback;
pub mod rectification;
pub mod screening;
pub mod security_check;
pub mod security_control;
pub mod security_incident;
pub mod violation;
