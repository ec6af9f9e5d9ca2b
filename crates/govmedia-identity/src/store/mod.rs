//! The identity service's SQL, one module per table group. One SQL text serves both
//! backends (see `govmedia_kit::db::Dialect`); rows are read into private row structs
//! and parsed into the domain's records here, so a corrupt row is an internal error,
//! never a panic, and SQL types never leave this module.

pub mod access;
pub mod accounts;
pub mod directory;
pub mod security;
pub mod sessions;

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};

use govmedia_domain::Error;
use govmedia_domain::ids::InvalidId;

/// Parses an id read from the database.
pub(crate) fn id<T: FromStr<Err = InvalidId>>(column: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| Error::internal(format!("stored {column} {value:?} is not an id")))
}

/// Parses an optional id read from the database.
pub(crate) fn opt_id<T: FromStr<Err = InvalidId>>(column: &str, value: Option<&str>) -> Result<Option<T>, Error> {
    value.filter(|v| !v.is_empty()).map(|v| id(column, v)).transpose()
}

/// The lower bound of open time ranges (within what both backends store and compare).
pub(crate) fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// The upper bound of open time ranges.
pub(crate) fn far_future() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single().unwrap_or(DateTime::<Utc>::MAX_UTC)
}
