//! The one error type of govmedia and its mapping to a rich gRPC status.
//!
//! Which error to use where: domain rules and stores return [`Error`] (or a module error
//! that converts into it); only the conversion at the bottom of this file builds a
//! `tonic::Status`. The match there has no catch-all arm, so a new variant does not
//! compile until someone decides its status code and details.
//!
//! Callers branch on `google.rpc.ErrorInfo.reason` (the `ErrorReason` enum of
//! `govmedia.common.v1`), never on message text. Internal and dependency errors are
//! logged here, once, with their cause; the caller gets a generic message and the trace
//! id to quote.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

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
    /// The login is locked after repeated failures (R2.3.1).
    #[error("login locked until {until}")]
    AccountLocked {
        /// When the lock ends.
        until: DateTime<Utc>,
    },
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
        Error::PermissionDenied { permission: permission.to_string(), explanation: explanation.into() }
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
            Error::AccountLocked { .. } => "ACCOUNT_LOCKED",
            Error::PasswordChangeRequired => "PASSWORD_CHANGE_REQUIRED",
            Error::RateLimited { .. } => "RATE_LIMITED",
            Error::MessageTooLarge { .. } => "MESSAGE_TOO_LARGE",
            Error::Unavailable { .. } => "UNAVAILABLE",
            Error::Internal(_) => "INTERNAL",
        }
    }
}

fn status(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: Vec<(&str, String)>,
    mut details: ErrorDetails,
) -> tonic::Status {
    let metadata = metadata.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<std::collections::HashMap<_, _>>();
    details.set_error_info(reason, ERROR_DOMAIN, metadata);
    tonic::Status::with_error_details(code, message, details)
}

impl From<Error> for tonic::Status {
    fn from(error: Error) -> Self {
        let reason = error.reason();
        match error {
            Error::InvalidArgument(violations) => {
                let message = format!("invalid argument: {}", describe_fields(&violations));
                let mut details = ErrorDetails::new();
                details.set_bad_request(
                    violations
                        .into_iter()
                        .take(DETAIL_VIOLATIONS)
                        .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                        .collect::<Vec<_>>(),
                );
                status(Code::InvalidArgument, message, reason, vec![], details)
            }
            Error::Unauthenticated(why) => {
                status(Code::Unauthenticated, format!("unauthenticated: {why}"), reason, vec![], ErrorDetails::new())
            }
            Error::PermissionDenied { permission, explanation } => status(
                Code::PermissionDenied,
                format!("permission {permission} denied: {explanation}"),
                reason,
                vec![("permission", permission)],
                ErrorDetails::new(),
            ),
            Error::NotFound { resource_type, id } => {
                let mut details = ErrorDetails::new();
                details.set_resource_info(resource_type, id.clone(), "", "not found");
                status(Code::NotFound, format!("{resource_type} {id} not found"), reason, vec![], details)
            }
            Error::AlreadyExists { resource_type, key } => {
                let mut details = ErrorDetails::new();
                details.set_resource_info(resource_type, key.clone(), "", "already exists");
                status(Code::AlreadyExists, format!("{resource_type} {key} already exists"), reason, vec![], details)
            }
            Error::RuleViolated(violations) => {
                let message = format!("rule violated: {}", describe_rules(&violations));
                let rule_ids = violations.iter().map(|v| v.rule_id.clone()).collect::<Vec<_>>().join(",");
                let mut details = ErrorDetails::new();
                details.set_precondition_failure(
                    violations
                        .into_iter()
                        .take(DETAIL_VIOLATIONS)
                        .map(|v| tonic_types::PreconditionViolation::new(v.rule_id, v.subject, v.description))
                        .collect::<Vec<_>>(),
                );
                status(Code::FailedPrecondition, message, reason, vec![("rule_ids", rule_ids)], details)
            }
            Error::Conflict(why) => {
                status(Code::Aborted, format!("conflict: {why}"), reason, vec![], ErrorDetails::new())
            }
            Error::AccountLocked { until } => {
                let mut details = ErrorDetails::new();
                let wait = (until - Utc::now()).to_std().unwrap_or_default();
                details.set_retry_info(Some(wait));
                status(
                    Code::Unauthenticated,
                    format!("login locked after repeated failures until {}", until.to_rfc3339()),
                    reason,
                    vec![("locked_until", until.to_rfc3339()), ("rule_id", "R2.3.1".to_owned())],
                    details,
                )
            }
            Error::PasswordChangeRequired => {
                let mut details = ErrorDetails::new();
                details.add_precondition_failure_violation(
                    "R2.3.1",
                    "password",
                    "the password expired or is one-time; change it before anything else",
                );
                status(Code::FailedPrecondition, "password change required (R2.3.1)", reason, vec![], details)
            }
            Error::RateLimited { retry_after } => {
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(retry_after));
                status(Code::ResourceExhausted, "rate limit exceeded", reason, vec![], details)
            }
            Error::MessageTooLarge { limit } => status(
                Code::ResourceExhausted,
                format!("the message is larger than the limit of {limit} bytes"),
                reason,
                vec![("limit_bytes", limit.to_string())],
                ErrorDetails::new(),
            ),
            Error::Unavailable { dependency, source } => {
                tracing::warn!(dependency, error = %source, "dependency unavailable");
                let mut details = ErrorDetails::new();
                details.set_retry_info(Some(Duration::from_secs(1)));
                status(Code::Unavailable, format!("{dependency} is unavailable; retry later"), reason, vec![], details)
            }
            Error::Internal(source) => {
                tracing::error!(error = %source, error.debug = ?source, "internal error");
                status(
                    Code::Internal,
                    "internal error; the server log has the details under this request's trace id",
                    reason,
                    vec![],
                    ErrorDetails::new(),
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let status: tonic::Status = Error::InvalidArgument(vec![
            FieldViolation::new("user.username", "must not be empty"),
            FieldViolation::new("request_id", "must be a UUID"),
        ])
        .into();
        assert_eq!(status.code(), Code::InvalidArgument);
        let bad = status.get_details_bad_request().expect("bad request details");
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[0].field, "user.username");
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }

    #[test]
    fn rule_violation_names_the_rule_r3_2_2() {
        let status: tonic::Status =
            Error::rule("R3.2.2", "draft/1", "one person never signs two stages of the same version").into();
        assert_eq!(status.code(), Code::FailedPrecondition);
        let pf = status.get_details_precondition_failure().expect("precondition failure");
        assert_eq!(pf.violations[0].r#type, "R3.2.2");
        assert_eq!(pf.violations[0].subject, "draft/1");
        assert!(status.message().contains("R3.2.2"));
    }

    #[test]
    fn internal_errors_are_not_sent_to_the_caller() {
        let status: tonic::Status = Error::internal("password hash for alice is malformed: $argon2id$...").into();
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("argon2"));
        assert!(!status.message().contains("alice"));
    }

    #[test]
    fn conflict_is_aborted_and_rate_limit_carries_retry_info() {
        let status: tonic::Status = Error::Conflict("etag mismatch".into()).into();
        assert_eq!(status.code(), Code::Aborted);
        let status: tonic::Status = Error::RateLimited { retry_after: Duration::from_secs(3) }.into();
        assert_eq!(status.code(), Code::ResourceExhausted);
        let retry = status.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(3)));
    }
}
