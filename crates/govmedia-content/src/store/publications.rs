//! Publications and the scheduler's leases.
//!
//! A scheduler replica claims due publications in one short transaction: it selects
//! them `FOR UPDATE SKIP LOCKED` on PostgreSQL (so replicas never wait on, or take,
//! each other's rows; SQLite has one writer at a time anyway), marks them `publishing`
//! with a lease and a bumped row version, and commits. The row version is the fencing
//! token: a replica records the outcome only if the version is still the one it claimed,
//! so a replica whose lease ran out and was taken over cannot overwrite the new owner.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DraftId, PlatformAccountId, PublicationId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Dialect, Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::{on_tx, sql};

use super::{far_future, id, join_ids, split_ids};
use crate::domain::publication::{Channel, Publication, PublicationState, StateName};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    draft_id: String,
    draft_version: i64,
    platform_account_id: String,
    state: String,
    scheduled_at: DateTime<Utc>,
    published_at: Option<DateTime<Utc>>,
    scheduled_by: String,
    channel: String,
    connector: String,
    platform_post_id: String,
    url: String,
    attempt_count: i64,
    next_attempt_at: Option<DateTime<Utc>>,
    lease_until: Option<DateTime<Utc>>,
    last_error: String,
    approvers: String,
    proofreaders: String,
    evidence: String,
    withdrawal_reason: String,
    withdrawn_by: String,
    withdrawn_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<Row> for Publication {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(Publication {
            id: id("publications.id", &r.id)?,
            draft: id("publications.draft_id", &r.draft_id)?,
            draft_version: r.draft_version,
            account: id("publications.platform_account_id", &r.platform_account_id)?,
            state: PublicationState::from_name(&r.state)
                .ok_or_else(|| Error::internal(format!("bad publication state {}", r.state)))?,
            scheduled_at: r.scheduled_at,
            published_at: r.published_at,
            scheduled_by: id("publications.scheduled_by", &r.scheduled_by)?,
            channel: Channel::from_name(&r.channel)
                .ok_or_else(|| Error::internal(format!("bad publication channel {}", r.channel)))?,
            connector: r.connector,
            platform_post_id: r.platform_post_id,
            url: r.url,
            attempt_count: r.attempt_count,
            next_attempt_at: r.next_attempt_at,
            lease_until: r.lease_until,
            last_error: r.last_error,
            approvers: split_ids("publications.approvers", &r.approvers)?,
            proofreaders: split_ids("publications.proofreaders", &r.proofreaders)?,
            evidence: r.evidence,
            withdrawal_reason: r.withdrawal_reason,
            withdrawn_by: r.withdrawn_by,
            withdrawn_at: r.withdrawn_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// Inserts a publication.
pub async fn insert(tx: &mut Tx, p: &Publication) -> Result<(), Error> {
    on_tx!(tx, |conn, dialect| {
        sqlx::query(&dialect.sql(
            "INSERT INTO publications (id, draft_id, draft_version, platform_account_id, state, scheduled_at, \
             published_at, scheduled_by, channel, connector, platform_post_id, url, attempt_count, next_attempt_at, \
             lease_until, last_error, approvers, proofreaders, evidence, withdrawal_reason, withdrawn_by, withdrawn_at, \
             created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)",
        ))
        .bind(p.id.to_string())
        .bind(p.draft.to_string())
        .bind(p.draft_version)
        .bind(p.account.to_string())
        .bind(p.state.name())
        .bind(p.scheduled_at)
        .bind(p.published_at)
        .bind(p.scheduled_by.to_string())
        .bind(p.channel.name())
        .bind(&p.connector)
        .bind(&p.platform_post_id)
        .bind(&p.url)
        .bind(p.attempt_count)
        .bind(p.next_attempt_at)
        .bind(p.lease_until)
        .bind(&p.last_error)
        .bind(join_ids(&p.approvers))
        .bind(join_ids(&p.proofreaders))
        .bind(&p.evidence)
        .bind(&p.withdrawal_reason)
        .bind(&p.withdrawn_by)
        .bind(p.withdrawn_at)
        .bind(p.created_at)
        .bind(p.updated_at)
        .bind(p.version)
        .execute(conn)
        .await
        .map(|_| ())
    })
    .map_err(db_error)
}

/// Saves a publication if its row version is still `expected_version`; a conflict
/// Saves a publication changed by one transition (its version, the fencing token,
/// bumped once) if nobody else changed it meanwhile; ABORTED otherwise.
pub async fn save(tx: &mut Tx, p: &Publication) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE publications SET draft_version = $2, state = $3, scheduled_at = $4, published_at = $5, \
             connector = $6, platform_post_id = $7, url = $8, attempt_count = $9, next_attempt_at = $10, \
             lease_until = $11, last_error = $12, approvers = $13, proofreaders = $14, evidence = $15, \
             withdrawal_reason = $16, withdrawn_by = $17, withdrawn_at = $18, updated_at = $19, version = $20 \
             WHERE id = $1 AND version = $21",
        p.id.to_string(),
        p.draft_version,
        p.state.name(),
        p.scheduled_at,
        p.published_at,
        &p.connector,
        &p.platform_post_id,
        &p.url,
        p.attempt_count,
        p.next_attempt_at,
        p.lease_until,
        &p.last_error,
        join_ids(&p.approvers),
        join_ids(&p.proofreaders),
        &p.evidence,
        &p.withdrawal_reason,
        &p.withdrawn_by,
        p.withdrawn_at,
        p.updated_at,
        p.version,
        p.version - 1
    )
    .map_err(db_error)?;
    saved(affected, "publication")
}

/// One publication, as it is now.
pub async fn get(tx: &mut Tx, publication: PublicationId) -> Result<Option<Publication>, Error> {
    get_by_id::<Row, _>(tx, "publications", publication).await
}

/// One publication, locked for a change `grant` allows on its account.
pub async fn lock(tx: &mut Tx, publication: PublicationId, grant: &Authorized) -> Result<Publication, Error> {
    let publication: Publication = lock_by_id::<Row, _>(tx, "publications", "publication", publication, grant).await?;
    grant.ensure_covers_account(publication.account)?;
    Ok(publication)
}

/// The accounts of the publications that are due (the first `limit`, in claiming
/// order), read without locks: the scheduler asks identity about them before it claims.
pub async fn due_accounts(tx: &mut Tx, now: DateTime<Utc>, limit: u32) -> Result<Vec<PlatformAccountId>, Error> {
    let accounts: Vec<String> = sql!(
        tx,
        scalar_all,
        &format!("SELECT platform_account_id FROM publications WHERE {DUE} LIMIT $2"),
        now,
        i64::from(limit)
    )
    .map_err(db_error)?;
    let mut out: Vec<PlatformAccountId> = Vec::new();
    for a in accounts {
        let a = id("publications.platform_account_id", &a)?;
        if !out.contains(&a) {
            out.push(a);
        }
    }
    Ok(out)
}

/// What is due at `$1`, in claiming order.
const DUE: &str = "((state = 'scheduled' AND scheduled_at <= $1) OR \
     (state = 'publishing' AND (lease_until IS NULL OR lease_until <= $1) \
      AND (next_attempt_at IS NULL OR next_attempt_at <= $1))) ORDER BY scheduled_at, id";

/// Due work, locked for this transaction and skipped by other replicas: scheduled items
/// whose time has come, and items being published whose lease ran out (a replica died)
/// or whose retry is due.
pub async fn lock_due(tx: &mut Tx, now: DateTime<Utc>, limit: u32) -> Result<Vec<Publication>, Error> {
    let rows: Vec<Row> = on_tx!(tx, |conn, dialect| {
        let base = format!("SELECT * FROM publications WHERE {DUE} LIMIT $2");
        let sql = match dialect {
            Dialect::Postgres => format!("{base} FOR UPDATE SKIP LOCKED"),
            Dialect::Sqlite => dialect.sql(&base).into_owned(),
        };
        sqlx::query_as(&sql).bind(now).bind(i64::from(limit)).fetch_all(conn).await
    })
    .map_err(db_error)?;
    rows.into_iter().map(Publication::try_from).collect()
}

/// Publications of a draft that are still waiting or under way.
pub async fn open_for_draft(tx: &mut Tx, draft: DraftId) -> Result<Vec<Publication>, Error> {
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM publications WHERE draft_id = $1 AND state IN ('scheduled', 'publishing') ORDER BY id",
        draft.to_string()
    )
    .map_err(db_error)?;
    rows.into_iter().map(Publication::try_from).collect()
}

/// Filters of [`list`].
#[derive(Debug, Clone, Copy, Default)]
pub struct PublicationFilter {
    /// Account.
    pub account: Option<PlatformAccountId>,
    /// Draft.
    pub draft: Option<DraftId>,
    /// State.
    pub state: Option<PublicationState>,
    /// Scheduled or published at or after.
    pub from: Option<DateTime<Utc>>,
    /// Scheduled or published before.
    pub until: Option<DateTime<Utc>>,
}

/// A page of publications, latest scheduled first; `after` is the last (time, id) seen.
pub async fn list(
    tx: &mut Tx,
    f: &PublicationFilter,
    after: Option<(DateTime<Utc>, PublicationId)>,
    limit: u32,
) -> Result<Vec<Publication>, Error> {
    let far = far_future();
    let from = f.from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let until = f.until.unwrap_or(far);
    let (after_time, after_id) = after.map_or((far, String::new()), |(t, id)| (t, id.to_string()));
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM publications WHERE ($1 = '' OR platform_account_id = $1) AND ($2 = '' OR draft_id = $2) \
             AND ($3 = '' OR state = $3) \
             AND ((scheduled_at >= $4 AND scheduled_at < $5) OR (published_at >= $4 AND published_at < $5)) \
             AND ($7 = '' OR scheduled_at < $6 OR (scheduled_at = $6 AND id < $7)) \
             ORDER BY scheduled_at DESC, id DESC LIMIT $8",
        f.account.map(|a| a.to_string()).unwrap_or_default(),
        f.draft.map(|d| d.to_string()).unwrap_or_default(),
        f.state.map(StateName::name).unwrap_or(""),
        from,
        until,
        after_time,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Publication::try_from).collect()
}

/// The open (scheduled or publishing) publication of a draft on an account, if any.
pub async fn open_on(tx: &mut Tx, draft: DraftId, account: PlatformAccountId) -> Result<Option<Publication>, Error> {
    Ok(open_for_draft(tx, draft).await?.into_iter().find(|p| p.account == account))
}

/// Drafts correcting a publication.
pub async fn corrections(tx: &mut Tx, publication: PublicationId) -> Result<Vec<DraftId>, Error> {
    let ids: Vec<String> = sql!(
        tx,
        scalar_all,
        "SELECT id FROM drafts WHERE corrects_publication_id = $1 ORDER BY id",
        publication.to_string()
    )
    .map_err(db_error)?;
    ids.iter().map(|d| id("drafts.id", d)).collect()
}

/// Published publications not screened with lexicon version `version` yet (never
/// screened again, or with an older version), by id.
pub async fn screening_due(tx: &mut Tx, version: u64, limit: u32) -> Result<Vec<Publication>, Error> {
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT p.* FROM publications p LEFT JOIN publication_screenings s ON s.publication_id = p.id \
         WHERE p.state = 'published' AND (s.lexicon_version IS NULL OR s.lexicon_version < $1) \
         ORDER BY p.id LIMIT $2",
        i64::try_from(version).unwrap_or(i64::MAX),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Publication::try_from).collect()
}

/// One published publication, the latest screened, to learn the lexicon's version by.
pub async fn any_published(tx: &mut Tx) -> Result<Option<Publication>, Error> {
    let row: Option<Row> = sql!(
        tx,
        fetch_optional,
        "SELECT * FROM publications WHERE state = 'published' ORDER BY published_at DESC, id DESC LIMIT 1"
    )
    .map_err(db_error)?;
    row.map(Publication::try_from).transpose()
}

/// The block terms found when `publication` was last screened again.
pub async fn found_terms(tx: &mut Tx, publication: PublicationId) -> Result<Vec<String>, Error> {
    let found: Option<String> = sql!(
        tx,
        scalar_optional,
        "SELECT found_terms FROM publication_screenings WHERE publication_id = $1",
        publication.to_string()
    )
    .map_err(db_error)?;
    match found {
        Some(f) => serde_json::from_str(&f)
            .map_err(|e| Error::internal(format!("publication_screenings.found_terms does not decode: {e}"))),
        None => Ok(Vec::new()),
    }
}

/// Records that `publication` was screened with `version`, finding `terms`.
pub async fn screened(
    tx: &mut Tx,
    publication: PublicationId,
    version: u64,
    terms: &[String],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO publication_screenings (publication_id, lexicon_version, found_terms, screened_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (publication_id) DO UPDATE SET \
         lexicon_version = excluded.lexicon_version, found_terms = excluded.found_terms, \
         screened_at = excluded.screened_at",
        publication.to_string(),
        i64::try_from(version).unwrap_or(i64::MAX),
        serde_json::to_string(terms).map_err(|e| Error::internal(format!("cannot encode terms: {e}")))?,
        now
    )
    .map_err(db_error)?;
    Ok(())
}
