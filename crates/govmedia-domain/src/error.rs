//! The one error type of govmedia.
//!
//! Which error to use where: domain rules and stores return [`Error`] (or a module error
//! that converts into it). This crate knows nothing of gRPC: the mapping to a rich
//! `tonic::Status` is `govmedia_kit::rpc::status`, whose match has no catch-all arm, so
//! a new variant does not compile until someone decides its status code and details.
//!
//! Callers branch on `google.rpc.ErrorInfo.reason` (the `ErrorReason` enum of
//! `govmedia.common.v1`, [`Error::reason`] here), never on message text.

use std::time::Duration;

/// `google.rpc.ErrorInfo.domain` of every govmedia error.
pub const ERROR_DOMAIN: &str = "govmedia.gov";

/// A boxed error cause, for internal and dependency failures.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of domain code.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One malformed request field (`google.rpc.BadRequest.FieldViolation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field path, for example `draft.content.title`.
    pub field: String,
    /// What is wrong, for a person.
    pub description: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

/// One broken rule of the regulation (`google.rpc.PreconditionFailure.Violation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleViolation {
    /// The rule id from regulation.md, for example `R3.2.2`; the violation's `type`.
    pub rule_id: String,
    /// What the rule was applied to, for example `draft/0190...`; the violation's
    /// `subject`.
    pub subject: String,
    /// What is wrong, for a person.
    pub description: String,
}

impl RuleViolation {
    /// A violation of `rule_id` by `subject`.
    pub fn new(rule_id: impl Into<String>, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Self { rule_id: rule_id.into(), subject: subject.into(), description: description.into() }
    }
}

/// Everything that can go wrong in a govmedia request, one variant per cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Request fields are malformed.
    #[error("invalid argument: {}", describe_fields(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// No valid credentials were presented.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// The principal lacks a permission on the resource.
    #[error("permission denied: {permission} ({explanation})")]
    PermissionDenied {
        /// The permission that was needed.
        permission: String,
        /// Which role and scope would grant it, for a person.
        explanation: String,
        /// What it was asked on (`department/…`, `platform_account/…`, `bureau`), for the
        /// audit record of the refusal; never sent to the caller.
        resource: Option<String>,
    },
    /// The resource does not exist, or the caller may not know it does.
    #[error("{resource_type} {id} not found")]
    NotFound {
        /// The resource type, for example `draft`.
        resource_type: &'static str,
        /// The id looked for.
        id: String,
    },
    /// A resource with the same identity exists.
    #[error("{resource_type} {key} already exists")]
    AlreadyExists {
        /// The resource type.
        resource_type: &'static str,
        /// The clashing key (a name, a handle).
        key: String,
    },
    /// A rule of the regulation forbids the change.
    #[error("rule violated: {}", describe_rules(.0))]
    RuleViolated(Vec<RuleViolation>),
    /// An etag mismatch or a lost race: re-read and retry.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The session may only change the password (R2.3.1).
    #[error("password change required")]
    PasswordChangeRequired,
    /// The caller is over its rate.
    #[error("rate limited; retry after {retry_after:?}")]
    RateLimited {
        /// When to retry.
        retry_after: Duration,
    },
    /// The request is larger than the server accepts.
    #[error("message larger than {limit} bytes")]
    MessageTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// A dependency (another service, the database) is unavailable.
    #[error("{dependency} unavailable: {source}")]
    Unavailable {
        /// What is unavailable, for example `identity service`.
        dependency: &'static str,
        /// The cause; logged, never sent.
        source: BoxError,
    },
    /// A fault of ours; logged, never sent.
    #[error("internal error: {0}")]
    Internal(BoxError),
}

/// Violations named in a status message; the rest are counted.
const MESSAGE_VIOLATIONS: usize = 5;
/// Violations carried in a status's details. A status travels in HTTP/2 trailers, which
/// peers cap (16 KiB by default): a batch of a thousand bad items must still arrive as an
/// answer, not as a broken connection.
pub const DETAIL_VIOLATIONS: usize = 50;

fn listed(parts: Vec<String>) -> String {
    let more = parts.len().saturating_sub(MESSAGE_VIOLATIONS);
    let mut text = parts.into_iter().take(MESSAGE_VIOLATIONS).collect::<Vec<_>>().join("; ");
    if more > 0 {
        text.push_str(&format!("; and {more} more"));
    }
    text
}

fn describe_fields(v: &[FieldViolation]) -> String {
    listed(v.iter().map(|f| format!("{}: {}", f.field, f.description)).collect())
}

fn describe_rules(v: &[RuleViolation]) -> String {
    listed(v.iter().map(|r| format!("{} ({}): {}", r.rule_id, r.subject, r.description)).collect())
}

impl Error {
    /// One malformed field.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    /// One broken rule.
    pub fn rule(rule_id: impl Into<String>, subject: impl Into<String>, description: impl Into<String>) -> Self {
        Error::RuleViolated(vec![RuleViolation::new(rule_id, subject, description)])
    }

    /// A permission the caller lacks.
    pub fn denied(permission: impl std::fmt::Display, explanation: impl Into<String>) -> Self {
        Error::PermissionDenied { permission: permission.to_string(), explanation: explanation.into(), resource: None }
    }

    /// A refusal, noting the resource it was asked on (for the audit log, not the caller).
    #[must_use]
    pub fn on_resource(self, on: &crate::scope::Resource) -> Self {
        match self {
            Error::PermissionDenied { permission, explanation, .. } => {
                Error::PermissionDenied { permission, explanation, resource: Some(on.to_string()) }
            }
            other => other,
        }
    }

    /// A resource that is not there.
    pub fn not_found(resource_type: &'static str, id: impl std::fmt::Display) -> Self {
        Error::NotFound { resource_type, id: id.to_string() }
    }

    /// A fault of ours, with its cause.
    pub fn internal(source: impl Into<BoxError>) -> Self {
        Error::Internal(source.into())
    }

    /// The `ErrorReason` name put in `ErrorInfo.reason`.
    pub const fn reason(&self) -> &'static str {
        match self {
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::Unauthenticated(_) => "UNAUTHENTICATED",
            Error::PermissionDenied { .. } => "PERMISSION_DENIED",
            Error::NotFound { .. } => "NOT_FOUND",
            Error::AlreadyExists { .. } => "ALREADY_EXISTS",
            Error::RuleViolated(_) => "RULE_VIOLATED",
            Error::Conflict(_) => "CONFLICT",
            Error::PasswordChangeRequired => "PASSWORD_CHANGE_REQUIRED",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::Internal(_) => "INTERNAL",
        }
    }
}

impl Error {
    /// The violations a status message names (the first few, the rest counted): the
    /// message an RPC layer puts beside the structured details.
    pub fn message_fields(v: &[FieldViolation]) -> String {
        describe_fields(v)
    }

    /// The rule violations a status message names, as [`Error::message_fields`].
    pub fn message_rules(v: &[RuleViolation]) -> String {
        describe_rules(v)
    }
}
