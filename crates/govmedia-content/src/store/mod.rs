//! The content service's SQL, one module per table group. One SQL text serves both
//! backends (see `govmedia_kit::db::Dialect`).

pub mod drafts;
pub mod feedback;
pub mod metrics;
pub mod plans;
pub mod publications;

use std::str::FromStr;

use govmedia_domain::Error;
use govmedia_domain::ids::InvalidId;

/// Parses an id read from the database.
pub(crate) fn id<T: FromStr<Err = InvalidId>>(column: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| Error::internal(format!("stored {column} {value:?} is not an id")))
}

/// The open end of a time range as a bound both stores compare correctly: 9999-12-31.
/// (chrono's MIN/MAX lie outside PostgreSQL's timestamp range and sort wrongly as
/// SQLite text.)
pub(crate) fn far_future() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
}

/// Joins ids into the stored list form.
pub(crate) fn join_ids<T: std::fmt::Display>(ids: &[T]) -> String {
    ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Splits the stored list form into ids.
pub(crate) fn split_ids<T: FromStr<Err = InvalidId>>(column: &str, value: &str) -> Result<Vec<T>, Error> {
    value.split(',').filter(|s| !s.is_empty()).map(|s| id(column, s)).collect()
}
