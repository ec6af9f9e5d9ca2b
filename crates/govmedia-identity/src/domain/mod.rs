//! The identity service's rules, as pure functions where possible: the password policy
//! and hashing (R2.3.1), lockout, refresh tokens, login anomalies, the access decision
//! and the rules for granting roles (R2.2.1), and sealing secrets at rest (R2.3.2).

pub mod access;
pub mod account;
pub mod anomaly;
pub mod lockout;
pub mod model;
pub mod password;
pub mod sealing;
pub mod tokens;
