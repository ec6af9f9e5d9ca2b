//! The interaction service's SQL, one module per table group. One SQL text serves both
//! backends (see `govmedia_kit::db::Dialect`).

pub mod audience;
pub mod comments;
pub mod conversations;
pub mod rules;
pub mod settings;

use std::str::FromStr;

use govmedia_domain::Error;
use govmedia_domain::ids::InvalidId;

/// Parses an id read from the database.
pub(crate) fn id<T: FromStr<Err = InvalidId>>(column: &str, value: &str) -> Result<T, Error> {
    value.parse().map_err(|_| Error::internal(format!("stored {column} {value:?} is not an id")))
}

/// An optional id: the empty text is none.
pub(crate) fn optional_id<T: FromStr<Err = InvalidId>>(column: &str, value: &str) -> Result<Option<T>, Error> {
    if value.is_empty() { Ok(None) } else { id(column, value).map(Some) }
}

/// A stored state name.
pub(crate) fn parsed<T>(column: &str, value: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, Error> {
    parse(value).ok_or_else(|| Error::internal(format!("stored {column} {value:?} is not known")))
}

/// The placeholders `$first, $first+1, …` for `n` values bound in a row, for `IN (…)`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The open end of a time range as a bound both stores compare correctly: 9999-12-31.
pub(crate) fn far_future() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
}
