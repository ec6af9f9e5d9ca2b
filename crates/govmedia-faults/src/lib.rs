//! The fault suite (issue 16): each scenario breaks something on purpose — the audit
//! log's rows, the services' processes (run as the compose file runs them, `deployment`)
//! — and
//! measures whether the promise it threatens held, as figures (`report`). Run in full
//! with `cargo run --release -p govmedia-faults -- <scenario>`; a short version of each
//! runs in the normal test run (`tests/`). docs/reliability.md holds the figures and the
//! commands that reproduce them.

pub mod audit_completeness;
pub mod database_restart;
pub mod deployment;
pub mod exactly_once;
pub mod fuzzing;
pub mod office;
pub mod overload;
pub mod report;
pub mod secrets;
pub mod tampering;

/// Why a scenario could not run (not a failed promise: that is a figure in its report).
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// Setting the scenario up or reading its outcome failed.
    #[error("{0}")]
    Setup(String),
}

impl ScenarioError {
    pub(crate) fn setup(what: &str, error: impl std::fmt::Display) -> Self {
        Self::Setup(format!("{what}: {error}"))
    }
}
