//! Conversions every handler needs between the wire and the domain: timestamps, etags,
//! page tokens and the caller. One copy here so that every service reads times, checks
//! etags and pages the same way.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{InvalidId, RequestId};
use govmedia_domain::page;
use govmedia_domain::validate::Validator;
use serde::Serialize;

use crate::auth::Principal;

/// A wire timestamp.
pub fn ts(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

/// An optional wire timestamp.
pub fn opt_ts(t: Option<DateTime<Utc>>) -> Option<prost_types::Timestamp> {
    t.map(ts)
}

/// A time from the wire, cut to the microseconds both stores keep.
pub fn from_ts(field: &str, t: &prost_types::Timestamp) -> Result<DateTime<Utc>, Error> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|n| DateTime::from_timestamp(t.seconds, n))
        .map(govmedia_domain::clock::to_micros)
        .ok_or_else(|| Error::invalid(field, "is not a valid timestamp"))
}

/// An optional time from the wire; a malformed one becomes a field violation.
pub fn optional_time(v: &mut Validator, field: &str, t: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    match t.map(|t| from_ts(field, t)) {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            v.violation(field, "is not a valid timestamp");
            None
        }
    }
}

/// A time range from the wire: both ends optional, the end after the start.
pub fn time_range(
    v: &mut Validator,
    field: &str,
    range: Option<&govmedia_proto::common::v1::TimeRange>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let Some(range) = range else { return (None, None) };
    let start = optional_time(v, &format!("{field}.start_time"), range.start_time.as_ref());
    let end = optional_time(v, &format!("{field}.end_time"), range.end_time.as_ref());
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        v.violation(format!("{field}.end_time"), "must be after the start");
    }
    (start, end)
}

/// The etag of a version.
pub fn etag(version: i64) -> String {
    format!("v{version}")
}

/// Checks a request's etag against the stored version; an empty one passes unless
/// `required`.
pub fn check_etag(field: &str, given: &str, version: i64, required: bool) -> Result<(), Error> {
    if given.is_empty() {
        return if required { Err(Error::invalid(field, "is required: send the etag last read")) } else { Ok(()) };
    }
    if given == etag(version) {
        Ok(())
    } else {
        Err(Error::Conflict(format!("{field} {given:?} is stale: the resource changed since it was read")))
    }
}

/// The next page token: set when the page came back full.
pub fn next_page_token<T, C: Serialize>(items: &[T], limit: u32, key: impl Fn(&T) -> C) -> String {
    match items.last() {
        Some(last) if items.len() >= usize::try_from(limit).unwrap_or(usize::MAX) => {
            page::encode_page_token(&key(last))
        }
        _ => String::new(),
    }
}

/// The `request_id` and the one resource id of a change whose request names nothing
/// else to check (`field` names the id in a violation).
pub fn keyed_id<Id: FromStr<Err = InvalidId>>(
    request_id: &str,
    field: &str,
    id: &str,
) -> Result<(RequestId, Id), govmedia_domain::Error> {
    let mut v = Validator::new();
    let request_id = v.request_id(request_id);
    let id = v.id(field, id);
    v.finish_with(|| Some((request_id?, id?)))
}

/// The one resource id a read names (`field` names it in a violation).
pub fn one_id<Id: FromStr<Err = InvalidId>>(field: &str, id: &str) -> Result<Id, govmedia_domain::Error> {
    let mut v = Validator::new();
    let id = v.id(field, id);
    v.finish_with(|| id)
}

/// The caller and the message of a request that passed the auth layer.
pub fn unpack<T>(request: tonic::Request<T>) -> Result<(Principal, T), govmedia_domain::Error> {
    Ok((caller(&request)?, request.into_inner()))
}

/// The caller of a request that passed the auth layer.
pub fn caller<T>(request: &tonic::Request<T>) -> Result<Principal, govmedia_domain::Error> {
    crate::auth::principal(request)
}

/// Evidence of something done by hand on a platform (a manual publication, a comment
/// hidden in the platform's console), as stored beside the record it proves.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct EvidenceRecord {
    /// Where the evidence is kept.
    pub uri: String,
    /// Lower-case hex SHA-256 of the evidence file, when given.
    pub sha256: String,
    /// What it shows.
    pub description: String,
}

impl EvidenceRecord {
    /// Evidence from the wire: a URI is required, a hash must be 64 hex digits.
    pub fn from_wire(v: &mut Validator, field: &str, e: &govmedia_proto::common::v1::Evidence) -> Self {
        let uri = v.required_text(&format!("{field}.uri"), &e.uri, 2000).unwrap_or_default();
        if !e.sha256.is_empty() && (e.sha256.len() != 64 || !e.sha256.chars().all(|c| c.is_ascii_hexdigit())) {
            v.violation(format!("{field}.sha256"), "must be 64 hex digits when given");
        }
        let description = v.optional_text(&format!("{field}.description"), &e.description, 500).unwrap_or_default();
        Self { uri, sha256: e.sha256.to_lowercase(), description }
    }

    /// The stored form (JSON).
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// From the stored form; empty or malformed text is none.
    pub fn from_stored(stored: &str) -> Option<Self> {
        if stored.is_empty() { None } else { serde_json::from_str(stored).ok() }
    }

    /// On the wire.
    pub fn to_wire(&self) -> govmedia_proto::common::v1::Evidence {
        govmedia_proto::common::v1::Evidence {
            uri: self.uri.clone(),
            sha256: self.sha256.clone(),
            description: self.description.clone(),
        }
    }
}
