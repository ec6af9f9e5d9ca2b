//! The gRPC edge of content: one module per service of `govmedia.content.v1`.

pub mod draft;
pub mod metrics;
pub mod plan;
pub mod publication;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;

/// A wire timestamp.
pub(crate) fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// A time from the wire.
pub(crate) fn from_ts(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Error> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|n| DateTime::from_timestamp(t.seconds, n))
        .map(govmedia_domain::clock::to_micros)
        .ok_or_else(|| Error::invalid(field, "is not a valid timestamp"))
}

/// An optional time from the wire; a malformed one becomes a field violation.
pub(crate) fn optional_time(
    v: &mut govmedia_domain::validate::Validator,
    field: &str,
    t: Option<&prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    match t.map(|t| from_ts(field, t)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            v.violation(field, "is not a valid timestamp");
            None
        }
    }
}

/// The etag of a version.
pub(crate) fn etag(version: i64) -> String {
    format!("v{version}")
}

/// Checks a request's etag against the stored version.
pub(crate) fn check_etag(field: &str, given: &str, version: i64, required: bool) -> Result<(), Error> {
    if given.is_empty() {
        return if required { Err(Error::invalid(field, "is required: send the etag last read")) } else { Ok(()) };
    }
    if given == etag(version) {
        Ok(())
    } else {
        Err(Error::Conflict(format!("{field} {given:?} is stale: the resource changed since it was read")))
    }
}

/// The caller of a request that passed the auth layer.
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Result<govmedia_kit::auth::Principal, tonic::Status> {
    govmedia_kit::auth::principal(request).map_err(tonic::Status::from)
}
