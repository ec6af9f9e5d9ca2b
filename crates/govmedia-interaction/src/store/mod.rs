//! The interaction service's SQL, one module per table group. One SQL text serves both
//! backends (see `govmedia_kit::db::Dialect`).

pub mod audience;
pub mod comments;
pub mod conversations;
pub mod escalations;
pub mod rules;
pub mod settings;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::PlatformAccountId;
use govmedia_kit::db::{Tx, db_error};
use govmedia_kit::sql;

pub(crate) use govmedia_kit::db::column::{id, optional_id, parsed, text_of};

/// The placeholders `$first, $first+1, …` for `n` values bound in a row, for `IN (…)`.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// The open end of a time range as a bound both stores compare correctly: 9999-12-31.
pub(crate) fn far_future() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
}

/// Which items the response-time report reads (R4.1.1, R4.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Responded {
    /// Public comments, from their arrival.
    Comments,
    /// Private conversations, from their first inbound message.
    Conversations,
}

/// What the response-time report needs of one item.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ResponseRecord {
    /// The account.
    pub platform_account_id: String,
    /// Who responded first ('' when nobody yet).
    pub first_responder_user_id: String,
    /// When the clock started.
    pub arrived_at: DateTime<Utc>,
    /// When the first response came.
    pub first_response_at: Option<DateTime<Utc>>,
    /// When it was due.
    pub due_at: DateTime<Utc>,
}

/// The items of kind `of` that arrived in [from, to), optionally on one account.
pub async fn responses(
    tx: &mut Tx,
    of: Responded,
    (from, to): (DateTime<Utc>, DateTime<Utc>),
    account: Option<PlatformAccountId>,
) -> Result<Vec<ResponseRecord>, Error> {
    let sql = match of {
        Responded::Comments => {
            "SELECT platform_account_id, first_responder_user_id, arrived_at, first_response_at, \
             response_due_at AS due_at FROM comments \
             WHERE arrived_at >= $1 AND arrived_at < $2 AND ($3 = '' OR platform_account_id = $3)"
        }
        Responded::Conversations => {
            "SELECT platform_account_id, first_responder_user_id, first_inbound_at AS arrived_at, first_response_at, \
             first_response_due_at AS due_at FROM conversations \
             WHERE first_inbound_at >= $1 AND first_inbound_at < $2 AND ($3 = '' OR platform_account_id = $3)"
        }
    };
    let account = account.map(|a| a.to_string()).unwrap_or_default();
    sql!(tx, fetch_all, sql, from, to, &account).map_err(db_error)
}
