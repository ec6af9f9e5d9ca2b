//! The gRPC edge of identity: one module per service of `govmedia.identity.v1`. A
//! handler takes the verified principal, parses the request (all field violations at
//! once), checks the permission, runs the rule, calls the store inside one
//! [`Mutation`](govmedia_kit::mutation::Mutation) and converts the answer. Rules live in
//! `domain`, SQL in `store`.

pub mod access;
pub mod authentication;
pub mod credential_vault;
pub mod directory;
pub mod platform_account;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::page;
use govmedia_kit::auth::Principal;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Default and maximum page sizes of identity's list methods.
pub(crate) const PAGE_DEFAULT: u32 = 50;
pub(crate) const PAGE_MAX: u32 = 500;

/// A wire timestamp.
pub(crate) fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// An optional wire timestamp.
pub(crate) fn opt_ts(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(ts)
}

/// A time from the wire.
pub(crate) fn from_ts(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Error> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| Error::invalid(field, "is not a valid timestamp"))
}

/// The etag of a version.
pub(crate) fn etag(version: i64) -> String {
    format!("v{version}")
}

/// Checks a request's etag against the stored version; empty skips when `required` is
/// false.
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

/// A page size from the request.
pub(crate) fn page_size(value: i32) -> Result<u32, Error> {
    page::page_size(value, PAGE_DEFAULT, PAGE_MAX)
}

/// Decodes a page token.
pub(crate) fn cursor<C: DeserializeOwned>(token: &str) -> Result<Option<C>, Error> {
    page::decode_page_token(token)
}

/// The next page token: set when the page is full.
pub(crate) fn next_token<T, C: Serialize>(items: &[T], limit: u32, key: impl Fn(&T) -> C) -> String {
    match items.last() {
        Some(last) if items.len() >= usize::try_from(limit).unwrap_or(usize::MAX) => {
            page::encode_page_token(&key(last))
        }
        _ => String::new(),
    }
}

/// The client's network address (no port), for security events and audit.
pub(crate) fn client_address<T>(request: &tonic::Request<T>) -> String {
    request.remote_addr().map(|a| a.ip().to_string()).unwrap_or_default()
}

/// The caller of a request that passed the auth layer.
pub(crate) fn caller<T>(request: &tonic::Request<T>) -> Result<Principal, tonic::Status> {
    govmedia_kit::auth::principal(request).map_err(tonic::Status::from)
}

/// The method path of a handler, for idempotency keys.
macro_rules! method {
    ($service:literal, $method:literal) => {
        concat!("/govmedia.identity.v1.", $service, "/", $method)
    };
}
pub(crate) use method;
