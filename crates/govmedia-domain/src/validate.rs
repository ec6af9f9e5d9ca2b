//! Validation helpers for the API edge: parse, don't validate. A [`Validator`] collects
//! every malformed field of a request, so the caller learns all of them at once in one
//! INVALID_ARGUMENT with field violations, and returns typed values for the good ones.

use std::str::FromStr;

use crate::error::{Error, FieldViolation, Result};
use crate::ids::{InvalidId, RequestId};

/// The longest free-text reason or note accepted, in characters.
pub const MAX_REASON_CHARS: usize = 2000;
/// The longest short name (display name, title, topic) accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Collects field violations while parsing a request.
#[derive(Debug, Default)]
pub struct Validator {
    violations: Vec<FieldViolation>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a violation.
    pub fn violation(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(FieldViolation::new(field, description));
    }

    /// A required text: trimmed, non-empty, at most `max_chars` characters.
    pub fn required_text(&mut self, field: &str, value: &str, max_chars: usize) -> Option<String> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            self.violation(field, "is required");
            return None;
        }
        self.optional_text(field, trimmed, max_chars)
    }

    /// An optional text: trimmed, at most `max_chars` characters; empty gives `Some("")`.
    pub fn optional_text(&mut self, field: &str, value: &str, max_chars: usize) -> Option<String> {
        let trimmed = value.trim();
        let count = trimmed.chars().count();
        if count > max_chars {
            self.violation(field, format!("must be at most {max_chars} characters (got {count})"));
            return None;
        }
        if trimmed.chars().any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r') {
            self.violation(field, "must not contain control characters");
            return None;
        }
        Some(trimmed.to_owned())
    }

    /// A required reason (for rejections, revocations, reveals): 1 to 2000 characters.
    pub fn reason(&mut self, field: &str, value: &str) -> Option<String> {
        self.required_text(field, value, MAX_REASON_CHARS)
    }

    /// A required typed id.
    pub fn id<T: FromStr<Err = InvalidId>>(&mut self, field: &str, value: &str) -> Option<T> {
        if value.trim().is_empty() {
            self.violation(field, "is required");
            return None;
        }
        match value.parse::<T>() {
            Ok(id) => Some(id),
            Err(e) => {
                self.violation(field, e.to_string());
                None
            }
        }
    }

    /// An optional typed id: empty gives `None`; malformed records a violation.
    pub fn optional_id<T: FromStr<Err = InvalidId>>(&mut self, field: &str, value: &str) -> Option<T> {
        if value.trim().is_empty() {
            return None;
        }
        self.id(field, value)
    }

    /// The `request_id` of a mutation: a required UUID.
    pub fn request_id(&mut self, value: &str) -> Option<RequestId> {
        self.id("request_id", value)
    }

    /// Ends validation: `Ok` when every field was fine.
    pub fn finish(self) -> Result<()> {
        if self.violations.is_empty() { Ok(()) } else { Err(Error::InvalidArgument(self.violations)) }
    }

    /// Ends validation and returns `value`, which the caller builds from the parsed
    /// fields; `value` is only evaluated when there was no violation.
    pub fn finish_with<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T> {
        self.finish()?;
        value().ok_or_else(|| Error::internal("validator passed but a parsed field is missing"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::UserId;

    #[test]
    fn collects_every_violation_at_once() {
        let mut v = Validator::new();
        let name = v.required_text("user.display_name", "   ", 10);
        let id: Option<UserId> = v.id("user_id", "nope");
        let rid = v.request_id("");
        assert!(name.is_none() && id.is_none() && rid.is_none());
        match v.finish() {
            Err(Error::InvalidArgument(violations)) => {
                let fields: Vec<_> = violations.iter().map(|f| f.field.as_str()).collect();
                assert_eq!(fields, ["user.display_name", "user_id", "request_id"]);
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let mut v = Validator::new();
        assert_eq!(v.required_text("title", "政务新媒体", 5).as_deref(), Some("政务新媒体"));
        assert!(v.required_text("title", "政务新媒体平台", 5).is_none());
        assert!(v.finish().is_err());
    }
}
