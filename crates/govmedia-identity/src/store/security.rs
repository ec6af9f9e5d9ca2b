//! Login failures and throttles, known login addresses and security events.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{SecurityEventId, UserId};
use govmedia_kit::db::{Tx, db_error, get_by_id};
use govmedia_kit::{on_tx, sql};

use super::{id, opt_id};
use crate::domain::lockout::Throttle;
use crate::domain::model::{SecurityEvent, SecurityEventKind};

/// Records a failed login.
pub async fn insert_login_failure(tx: &mut Tx, username: &str, address: &str, at: DateTime<Utc>) -> Result<(), Error> {
    on_tx!(tx, |conn, dialect| {
        sqlx::query(
            &dialect.sql("INSERT INTO login_failures (username, client_address, failed_at) VALUES ($1, $2, $3)"),
        )
        .bind(username)
        .bind(address)
        .bind(at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(db_error)?;
    Ok(())
}

/// Failed logins since `since` for a username and from an address.
pub async fn count_failures_since(
    tx: &mut Tx,
    username: &str,
    address: &str,
    since: DateTime<Utc>,
) -> Result<(i64, i64), Error> {
    sql!(
        tx,
        fetch_one,
        "SELECT (SELECT COUNT(*) FROM login_failures WHERE username = $1 AND failed_at >= $3), \
                    (SELECT COUNT(*) FROM login_failures WHERE client_address = $2 AND failed_at >= $3)",
        username,
        address,
        since
    )
    .map_err(db_error)
}

/// Records that `user` logged in from `address`; returns (address was new, user had
/// logged in from any address before).
pub async fn remember_address(
    tx: &mut Tx,
    user: UserId,
    address: &str,
    at: DateTime<Utc>,
) -> Result<(bool, bool), Error> {
    let known: i64 = sql!(tx, scalar_one, "SELECT COUNT(*) FROM login_addresses WHERE user_id = $1", user.to_string())
        .map_err(db_error)?;
    let inserted = sql!(
        tx,
        execute,
        "INSERT INTO login_addresses (user_id, client_address, first_seen_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, client_address) DO NOTHING",
        user.to_string(),
        address,
        at
    )
    .map_err(db_error)?;
    Ok((inserted > 0, known > 0))
}

/// Stores a security event.
pub async fn insert_security_event(tx: &mut Tx, e: &SecurityEvent) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO security_events (id, kind, user_id, username, client_address, detail, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        e.id.to_string(),
        e.kind.as_str(),
        e.user.map(|u| u.to_string()),
        &e.username,
        &e.client_address,
        &e.detail,
        e.created_at
    )
    .map_err(db_error)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SecurityEventRow {
    id: String,
    kind: String,
    user_id: Option<String>,
    username: String,
    client_address: String,
    detail: String,
    created_at: DateTime<Utc>,
    acknowledged_by: Option<String>,
    acknowledged_at: Option<DateTime<Utc>>,
    acknowledge_note: Option<String>,
}

impl TryFrom<SecurityEventRow> for SecurityEvent {
    type Error = Error;

    fn try_from(r: SecurityEventRow) -> Result<Self, Error> {
        Ok(SecurityEvent {
            id: id("security_events.id", &r.id)?,
            kind: SecurityEventKind::parse(&r.kind)
                .ok_or_else(|| Error::internal(format!("bad event kind {}", r.kind)))?,
            user: opt_id("security_events.user_id", r.user_id.as_deref())?,
            username: r.username,
            client_address: r.client_address,
            detail: r.detail,
            created_at: r.created_at,
            acknowledged_by: r.acknowledged_by,
            acknowledged_at: r.acknowledged_at,
            acknowledge_note: r.acknowledge_note,
        })
    }
}

/// Filters of [`list_security_events`].
#[derive(Debug, Clone, Default)]
pub struct SecurityEventFilter {
    /// Only this kind.
    pub kind: Option<SecurityEventKind>,
    /// Only this user.
    pub user: Option<UserId>,
    /// Only at or after.
    pub from: Option<DateTime<Utc>>,
    /// Only before.
    pub to: Option<DateTime<Utc>>,
    /// Only unacknowledged.
    pub unacknowledged_only: bool,
}

/// Security events newest first, before the (time, id) cursor.
pub async fn list_security_events(
    tx: &mut Tx,
    filter: &SecurityEventFilter,
    before: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<SecurityEvent>, Error> {
    let (before_time, before_id) = before.unwrap_or((super::far_future(), String::new()));
    let rows: Vec<SecurityEventRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM security_events WHERE ($1 = '' OR kind = $1) AND ($2 = '' OR user_id = $2) \
             AND created_at >= $3 AND created_at < $4 AND ($5 = FALSE OR acknowledged_at IS NULL) \
             AND (created_at < $6 OR (created_at = $6 AND ($7 = '' OR id < $7))) \
             ORDER BY created_at DESC, id DESC LIMIT $8",
        filter.kind.map(SecurityEventKind::as_str).unwrap_or(""),
        filter.user.map(|u| u.to_string()).unwrap_or_default(),
        filter.from.unwrap_or_else(super::epoch),
        filter.to.unwrap_or_else(super::far_future),
        filter.unacknowledged_only,
        before_time,
        before_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(SecurityEvent::try_from).collect()
}

/// One security event.
pub async fn get_security_event(tx: &mut Tx, event: SecurityEventId) -> Result<Option<SecurityEvent>, Error> {
    get_by_id::<SecurityEventRow, _>(tx, "security_events", event).await
}

/// Acknowledges a security event; false when it already was.
pub async fn acknowledge_security_event(
    tx: &mut Tx,
    event: SecurityEventId,
    by: &str,
    note: &str,
    at: DateTime<Utc>,
) -> Result<bool, Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE security_events SET acknowledged_by = $2, acknowledged_at = $3, acknowledge_note = $4 \
             WHERE id = $1 AND acknowledged_at IS NULL",
        event.to_string(),
        by,
        at,
        note
    )
    .map_err(db_error)?;
    Ok(affected > 0)
}

/// The throttle of `username` from `address`, if it failed before.
pub async fn get_throttle(tx: &mut Tx, username: &str, address: &str) -> Result<Option<Throttle>, Error> {
    let row: Option<(i64, i64, Option<DateTime<Utc>>)> = sql!(
        tx,
        fetch_optional,
        "SELECT failed_attempts, lockout_count, locked_until FROM login_throttles \
         WHERE username = $1 AND client_address = $2",
        username,
        address
    )
    .map_err(db_error)?;
    Ok(row.map(|(failed_attempts, lockout_count, locked_until)| Throttle {
        username: username.to_owned(),
        client_address: address.to_owned(),
        failed_attempts,
        lockout_count,
        locked_until,
    }))
}

/// Stores a throttle.
pub async fn save_throttle(tx: &mut Tx, t: &Throttle, at: DateTime<Utc>) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO login_throttles (username, client_address, failed_attempts, lockout_count, locked_until, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (username, client_address) DO UPDATE SET failed_attempts = $3, lockout_count = $4, \
         locked_until = $5, updated_at = $6",
        &t.username,
        &t.client_address,
        t.failed_attempts,
        t.lockout_count,
        t.locked_until,
        at
    )
    .map_err(db_error)?;
    Ok(())
}

/// Forgets the failures of `username` from `address` (a successful login from there), or
/// from every address (`None`: an administrator's unlock).
pub async fn clear_throttles(tx: &mut Tx, username: &str, address: Option<&str>) -> Result<(), Error> {
    match address {
        Some(address) => sql!(
            tx,
            execute,
            "DELETE FROM login_throttles WHERE username = $1 AND client_address = $2",
            username,
            address
        ),
        None => sql!(tx, execute, "DELETE FROM login_throttles WHERE username = $1", username),
    }
    .map_err(db_error)?;
    Ok(())
}

/// What befell a username's sign-in since `since`: the failed attempts, the latest one,
/// and the latest end of a throttle started in that time.
pub async fn failures_since(tx: &mut Tx, username: &str, since: DateTime<Utc>) -> Result<FailuresSince, Error> {
    let count: i64 = sql!(
        tx,
        scalar_one,
        "SELECT COUNT(*) FROM login_failures WHERE username = $1 AND failed_at >= $2",
        username,
        since
    )
    .map_err(db_error)?;
    let last: Option<(DateTime<Utc>, String)> = sql!(
        tx,
        fetch_optional,
        "SELECT failed_at, client_address FROM login_failures WHERE username = $1 AND failed_at >= $2 \
         ORDER BY failed_at DESC LIMIT 1",
        username,
        since
    )
    .map_err(db_error)?;
    let throttled_until: Option<DateTime<Utc>> = sql!(
        tx,
        scalar_optional,
        "SELECT locked_until FROM login_throttles WHERE username = $1 AND updated_at >= $2 \
         AND locked_until IS NOT NULL ORDER BY locked_until DESC LIMIT 1",
        username,
        since
    )
    .map_err(db_error)?
    .flatten();
    Ok(FailuresSince { count, last, throttled_until })
}

/// See [`failures_since`].
#[derive(Debug, Clone, Default)]
pub struct FailuresSince {
    /// Failed attempts.
    pub count: i64,
    /// The latest failed attempt's time and address.
    pub last: Option<(DateTime<Utc>, String)>,
    /// The latest end of a throttle.
    pub throttled_until: Option<DateTime<Utc>>,
}
