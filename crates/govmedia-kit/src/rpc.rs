//! The gRPC face of the handlers: the one mapping from the domain's [`Error`] to a rich
//! `tonic::Status`, and what `#[govmedia_kit::handlers]` calls to answer.
//!
//! Handlers return `Result<pb::XResponse, Error>` and use `?` on everything; the
//! `handlers` attribute (crate `govmedia-macros`) hands each result to [`answer`]. Code
//! outside handlers that must produce a status (a stream, an interceptor) calls
//! [`status`]. No other place builds a status from an error, so what an outsider learns
//! from a failure is decided here (AIP-193).

use std::time::Duration;

use govmedia_domain::error::{DETAIL_VIOLATIONS, ERROR_DOMAIN, Error};
use tonic::{Code, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// A handler's result as tonic wants it.
pub fn answer<T>(result: Result<T, Error>) -> Result<Response<T>, Status> {
    result.map(Response::new).map_err(status)
}

fn build(
    code: Code,
    message: impl Into<String>,
    reason: &str,
    metadata: Vec<(&str, String)>,
    mut details: ErrorDetails,
) -> Status {
    let metadata = metadata.into_iter().map(|(k, v)| (k.to_owned(), v)).collect::<std::collections::HashMap<_, _>>();
    details.set_error_info(reason, ERROR_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// The gRPC status of `error`: code, message, `ErrorInfo` and the details a client
/// needs (field violations, violated rules, retry delays). Internal and dependency errors
/// are logged here, once, with their cause; the caller gets a generic message and the
/// trace id to quote.
pub fn status(error: Error) -> Status {
    let reason = error.reason();
    match error {
        Error::InvalidArgument(violations) => {
            let message = format!("invalid argument: {}", Error::message_fields(&violations));
            let mut details = ErrorDetails::new();
            details.set_bad_request(
                violations
                    .into_iter()
                    .take(DETAIL_VIOLATIONS)
                    .map(|v| tonic_types::FieldViolation::new(v.field, v.description))
                    .collect::<Vec<_>>(),
            );
            build(Code::InvalidArgument, message, reason, vec![], details)
        }
        Error::Unauthenticated(why) => {
            build(Code::Unauthenticated, format!("unauthenticated: {why}"), reason, vec![], ErrorDetails::new())
        }
        Error::PermissionDenied { permission, explanation, .. } => build(
            Code::PermissionDenied,
            format!("permission {permission} denied: {explanation}"),
            reason,
            vec![("permission", permission)],
            ErrorDetails::new(),
        ),
        Error::NotFound { resource_type, id } => {
            let mut details = ErrorDetails::new();
            details.set_resource_info(resource_type, id.clone(), "", "not found");
            build(Code::NotFound, format!("{resource_type} {id} not found"), reason, vec![], details)
        }
        Error::AlreadyExists { resource_type, key } => {
            let mut details = ErrorDetails::new();
            details.set_resource_info(resource_type, key.clone(), "", "already exists");
            build(Code::AlreadyExists, format!("{resource_type} {key} already exists"), reason, vec![], details)
        }
        Error::RuleViolated(violations) => {
            let message = format!("rule violated: {}", Error::message_rules(&violations));
            let rule_ids = violations.iter().map(|v| v.rule_id.clone()).collect::<Vec<_>>().join(",");
            let mut details = ErrorDetails::new();
            details.set_precondition_failure(
                violations
                    .into_iter()
                    .take(DETAIL_VIOLATIONS)
                    .map(|v| tonic_types::PreconditionViolation::new(v.rule_id, v.subject, v.description))
                    .collect::<Vec<_>>(),
            );
            build(Code::FailedPrecondition, message, reason, vec![("rule_ids", rule_ids)], details)
        }
        Error::Conflict(why) => build(Code::Aborted, format!("conflict: {why}"), reason, vec![], ErrorDetails::new()),
        Error::PasswordChangeRequired => {
            let mut details = ErrorDetails::new();
            details.add_precondition_failure_violation(
                "R2.3.1",
                "password",
                "the password expired or is one-time; change it before anything else",
            );
            build(Code::FailedPrecondition, "password change required (R2.3.1)", reason, vec![], details)
        }
        Error::RateLimited { retry_after } => {
            let mut details = ErrorDetails::new();
            details.set_retry_info(Some(retry_after));
            build(Code::ResourceExhausted, "rate limit exceeded", reason, vec![], details)
        }
        Error::MessageTooLarge { limit } => build(
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
            build(Code::Unavailable, format!("{dependency} is unavailable; retry later"), reason, vec![], details)
        }
        Error::Internal(source) => {
            let trace_id = crate::telemetry::current_trace_id();
            tracing::error!(error = %source, error.debug = ?source, trace_id = trace_id.as_deref().unwrap_or(""), "internal error");
            // The trace id is all an operator needs to find the cause; nothing of the
            // cause itself reaches the caller.
            let message = match trace_id {
                Some(id) => format!("internal error; the server log has the details under trace id {id}"),
                None => "internal error; the server log has the details".to_owned(),
            };
            build(Code::Internal, message, reason, vec![], ErrorDetails::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::StatusExt;

    use govmedia_domain::error::FieldViolation;

    use super::*;

    #[test]
    fn invalid_argument_carries_field_violations() {
        let answer = status(Error::InvalidArgument(vec![
            FieldViolation::new("user.username", "must not be empty"),
            FieldViolation::new("request_id", "must be a UUID"),
        ]));
        assert_eq!(answer.code(), Code::InvalidArgument);
        let bad = answer.get_details_bad_request().expect("bad request details");
        assert_eq!(bad.field_violations.len(), 2);
        assert_eq!(bad.field_violations[0].field, "user.username");
        let info = answer.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "INVALID_ARGUMENT");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }

    #[test]
    fn rule_violation_names_the_rule_r3_2_2() {
        let answer = status(Error::rule("R3.2.2", "draft/1", "one person never signs two stages of the same version"));
        assert_eq!(answer.code(), Code::FailedPrecondition);
        let pf = answer.get_details_precondition_failure().expect("precondition failure");
        assert_eq!(pf.violations[0].r#type, "R3.2.2");
        assert_eq!(pf.violations[0].subject, "draft/1");
        assert!(answer.message().contains("R3.2.2"));
    }

    #[test]
    fn internal_errors_are_not_sent_to_the_caller() {
        let answer = status(Error::internal("password hash for alice is malformed: $argon2id$..."));
        assert_eq!(answer.code(), Code::Internal);
        assert!(!answer.message().contains("argon2"));
        assert!(!answer.message().contains("alice"));
    }

    #[test]
    fn conflict_is_aborted_and_rate_limit_carries_retry_info() {
        let answer = status(Error::Conflict("etag mismatch".into()));
        assert_eq!(answer.code(), Code::Aborted);
        let answer = status(Error::RateLimited { retry_after: Duration::from_secs(3) });
        assert_eq!(answer.code(), Code::ResourceExhausted);
        let retry = answer.get_details_retry_info().expect("retry info");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(3)));
    }
}
