//! Idempotency keys: a mutation repeated with the same `request_id` by the same principal
//! returns the first answer instead of acting twice.
//!
//! Use inside the request's transaction: [`lookup`] first (a stored answer is returned
//! as is), then do the work, then [`remember`] the answer and commit. The answer is
//! stored in the same transaction as the change, so either both exist or neither does.
//! Reusing a `request_id` for a different request is refused; two identical requests
//! racing end with one answer stored and the other told to retry (ABORTED), after which
//! it finds the stored answer.
//!
//! An answer carrying a secret (a one-time password, a client secret) is never stored:
//! only the key, marked withheld, so a retry is refused (FAILED_PRECONDITION, R2.3.2)
//! instead of being handed the secret again from a table anyone with database access
//! reads.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{PrincipalId, RequestId};
use prost::Message;
use sha2::{Digest, Sha256};

use crate::db::{Database, Tx, db_error, is_unique_violation};

/// Identifies one mutation attempt.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    principal: PrincipalId,
    method: &'static str,
    request_id: RequestId,
    fingerprint: Vec<u8>,
}

impl IdempotencyKey {
    /// The key of `request` (its encoded bytes are fingerprinted) sent by `principal` to
    /// `method` (the full gRPC path) with `request_id`.
    pub fn new<M: Message>(principal: PrincipalId, method: &'static str, request_id: RequestId, request: &M) -> Self {
        let fingerprint = Sha256::digest(request.encode_to_vec()).to_vec();
        Self { principal, method, request_id, fingerprint }
    }
}

fn reused() -> Error {
    Error::invalid("request_id", "was already used for a different request; choose a new request_id")
}

/// The stored answer for `key`, if the request was already carried out;
/// FAILED_PRECONDITION when it was and its answer held a secret.
pub async fn lookup<R: Message + Default>(tx: &mut Tx, key: &IdempotencyKey) -> Result<Option<R>, Error> {
    let row: Option<(Vec<u8>, Vec<u8>, bool)> = match tx {
        Tx::Postgres(tx) => sqlx::query_as(
            "SELECT request_hash, response, withheld FROM govmedia_idempotency \
             WHERE principal_id = $1 AND method = $2 AND request_id = $3",
        )
        .bind(key.principal.as_uuid())
        .bind(key.method)
        .bind(key.request_id.as_uuid())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?,
        Tx::Sqlite(tx) => sqlx::query_as(
            "SELECT request_hash, response, withheld FROM govmedia_idempotency \
             WHERE principal_id = ?1 AND method = ?2 AND request_id = ?3",
        )
        .bind(key.principal.to_string())
        .bind(key.method)
        .bind(key.request_id.to_string())
        .fetch_optional(&mut **tx)
        .await
        .map_err(db_error)?,
    };
    match row {
        None => Ok(None),
        Some((hash, _, _)) if hash != key.fingerprint => Err(reused()),
        Some((_, _, true)) => Err(Error::rule(
            "R2.3.2",
            format!("request/{}", key.request_id),
            "this request was already carried out; its answer held a secret, which is shown once and not \
             kept: ask for a new one (reset the password or rotate the secret again)",
        )),
        Some((_, response, false)) => R::decode(response.as_slice()).map(Some).map_err(Error::internal),
    }
}

/// Stores the answer for `key` in the caller's transaction; `None` keeps only the key,
/// marked withheld (the answer held a secret).
pub async fn remember<R: Message>(
    tx: &mut Tx,
    key: &IdempotencyKey,
    response: Option<&R>,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let withheld = response.is_none();
    let bytes = response.map(Message::encode_to_vec).unwrap_or_default();
    let result = match tx {
        Tx::Postgres(tx) => sqlx::query(
            "INSERT INTO govmedia_idempotency (principal_id, method, request_id, request_hash, response, created_at, \
             withheld) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(key.principal.as_uuid())
        .bind(key.method)
        .bind(key.request_id.as_uuid())
        .bind(&key.fingerprint)
        .bind(bytes)
        .bind(now)
        .bind(withheld)
        .execute(&mut **tx)
        .await
        .map(|_| ()),
        Tx::Sqlite(tx) => sqlx::query(
            "INSERT INTO govmedia_idempotency (principal_id, method, request_id, request_hash, response, created_at, \
             withheld) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(key.principal.to_string())
        .bind(key.method)
        .bind(key.request_id.to_string())
        .bind(&key.fingerprint)
        .bind(bytes)
        .bind(now)
        .bind(withheld)
        .execute(&mut **tx)
        .await
        .map(|_| ()),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            Err(Error::Conflict("a request with this request_id was just carried out; retry to get its answer".into()))
        }
        Err(e) => Err(db_error(e)),
    }
}

/// Forgets answers stored before `before` (keys are kept for a day by default); returns
/// how many were removed.
pub async fn purge(db: &Database, before: DateTime<Utc>) -> Result<u64, Error> {
    let result = match db {
        Database::Postgres(pool) => sqlx::query("DELETE FROM govmedia_idempotency WHERE created_at < $1")
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
        Database::Sqlite(pool) => sqlx::query("DELETE FROM govmedia_idempotency WHERE created_at < ?1")
            .bind(before)
            .execute(pool)
            .await
            .map(|r| r.rows_affected()),
    };
    result.map_err(db_error)
}
