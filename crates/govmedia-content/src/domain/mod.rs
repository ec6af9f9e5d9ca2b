//! The content workflow's rules: the three-stage review and its separation of duties
//! (R3.2.2, R3.2.3), proofreading (R3.3.2), and per-platform format rules (R3.3.1), and when a due publication goes out (R3.3).

pub mod draft;
pub mod feedback;
pub mod format;
pub mod metrics;
pub mod plan;
pub mod publication;
pub mod review;
