//! Sessions, refresh tokens and token-signing keys.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{PrincipalId, SessionId};
use govmedia_kit::db::{Tx, db_error};
use govmedia_kit::{on_tx, sql};

use super::id;
use crate::domain::model::{RefreshToken, Session, StoredSigningKey};

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    principal_id: String,
    password_change_only: bool,
    client_address: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<SessionRow> for Session {
    type Error = Error;

    fn try_from(r: SessionRow) -> Result<Self, Error> {
        Ok(Session {
            id: id("sessions.id", &r.id)?,
            principal: id("sessions.principal_id", &r.principal_id)?,
            password_change_only: r.password_change_only,
            client_address: r.client_address,
            created_at: r.created_at,
            revoked_at: r.revoked_at,
        })
    }
}

/// Starts a session family.
pub async fn insert_session(tx: &mut Tx, s: &Session) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO sessions (id, principal_id, password_change_only, client_address, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        s.id.to_string(),
        s.principal.to_string(),
        s.password_change_only,
        &s.client_address,
        s.created_at
    )
    .map_err(db_error)?;
    Ok(())
}

/// Whether `session` is `principal`'s and has not ended.
pub async fn is_open(tx: &mut Tx, principal: PrincipalId, session: SessionId) -> Result<bool, Error> {
    let open: i64 = sql!(
        tx,
        scalar_one,
        "SELECT COUNT(*) FROM sessions WHERE id = $1 AND principal_id = $2 AND revoked_at IS NULL",
        session.to_string(),
        principal.to_string()
    )
    .map_err(db_error)?;
    Ok(open > 0)
}

/// One session.
pub async fn get_session(tx: &mut Tx, session: SessionId) -> Result<Option<Session>, Error> {
    let row: Option<SessionRow> = sql!(
        tx,
        fetch_optional,
        "SELECT id, principal_id, password_change_only, client_address, created_at, revoked_at FROM sessions WHERE \
         id = $1",
        session.to_string()
    )
    .map_err(db_error)?;
    row.map(Session::try_from).transpose()
}

/// Ends one session family; returns whether it was still open.
pub async fn revoke_session(tx: &mut Tx, session: SessionId, reason: &str, at: DateTime<Utc>) -> Result<bool, Error> {
    let affected = on_tx!(tx, |conn, dialect| {
        sqlx::query(
            &dialect
                .sql("UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE id = $1 AND revoked_at IS NULL"),
        )
        .bind(session.to_string())
        .bind(at)
        .bind(reason)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(db_error)?;
    Ok(affected > 0)
}

/// Ends every open session of a principal; returns how many.
pub async fn revoke_sessions_of(
    tx: &mut Tx,
    principal: PrincipalId,
    reason: &str,
    at: DateTime<Utc>,
) -> Result<u64, Error> {
    sql!(
        tx,
        execute,
        "UPDATE sessions SET revoked_at = $2, revoke_reason = $3 WHERE principal_id = $1 AND revoked_at IS NULL",
        principal.to_string(),
        at,
        reason
    )
    .map_err(db_error)
}

/// Stores a refresh token (its hash).
pub async fn insert_refresh_token(tx: &mut Tx, t: &RefreshToken) -> Result<(), Error> {
    on_tx!(tx, |conn, dialect| {
        sqlx::query(
            &dialect.sql(
                "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at) VALUES ($1, $2, $3, $4)",
            ),
        )
        .bind(&t.token_hash)
        .bind(t.session.to_string())
        .bind(t.issued_at)
        .bind(t.expires_at)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(db_error)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RefreshTokenRow {
    token_hash: String,
    session_id: String,
    issued_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    spent_at: Option<DateTime<Utc>>,
}

/// One refresh token by hash.
pub async fn get_refresh_token(tx: &mut Tx, token_hash: &str) -> Result<Option<RefreshToken>, Error> {
    let row: Option<RefreshTokenRow> =
        sql!(tx, fetch_optional, "SELECT * FROM refresh_tokens WHERE token_hash = $1", token_hash).map_err(db_error)?;
    row.map(|r| {
        Ok(RefreshToken {
            token_hash: r.token_hash,
            session: id("refresh_tokens.session_id", &r.session_id)?,
            issued_at: r.issued_at,
            expires_at: r.expires_at,
            spent_at: r.spent_at,
        })
    })
    .transpose()
}

/// Marks a refresh token spent; false when it already was (a concurrent exchange won).
pub async fn spend_refresh_token(tx: &mut Tx, token_hash: &str, at: DateTime<Utc>) -> Result<bool, Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE refresh_tokens SET spent_at = $2 WHERE token_hash = $1 AND spent_at IS NULL",
        token_hash,
        at
    )
    .map_err(db_error)?;
    Ok(affected > 0)
}

#[derive(sqlx::FromRow)]
struct SigningKeyRow {
    key_id: String,
    sealed_private_key: Vec<u8>,
    sealing_key_id: String,
    public_key: Vec<u8>,
    created_at: DateTime<Utc>,
    retired_at: Option<DateTime<Utc>>,
}

impl From<SigningKeyRow> for StoredSigningKey {
    fn from(r: SigningKeyRow) -> Self {
        StoredSigningKey {
            key_id: r.key_id,
            sealed_private_key: r.sealed_private_key,
            sealing_key_id: r.sealing_key_id,
            public_key: r.public_key,
            created_at: r.created_at,
            retired_at: r.retired_at,
        }
    }
}

/// Stores a new signing key.
pub async fn insert_signing_key(tx: &mut Tx, k: &StoredSigningKey) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO signing_keys (key_id, sealed_private_key, sealing_key_id, public_key, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        &k.key_id,
        &k.sealed_private_key,
        &k.sealing_key_id,
        &k.public_key,
        k.created_at
    )
    .map_err(db_error)?;
    Ok(())
}

/// Retires every signing key still current (before a new one starts).
pub async fn retire_current_keys(tx: &mut Tx, at: DateTime<Utc>) -> Result<(), Error> {
    sql!(tx, execute, "UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL", at).map_err(db_error)?;
    Ok(())
}

/// Keys current or retired after `retired_after`, newest first.
pub async fn live_signing_keys(tx: &mut Tx, retired_after: DateTime<Utc>) -> Result<Vec<StoredSigningKey>, Error> {
    let rows: Vec<SigningKeyRow> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(
            &dialect
                .sql("SELECT * FROM signing_keys WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC"),
        )
        .bind(retired_after)
        .fetch_all(conn)
        .await
    })
    .map_err(db_error)?;
    Ok(rows.into_iter().map(StoredSigningKey::from).collect())
}
