//! Metric observations and the queries behind operating reports.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, DraftId, PlatformAccountId, PublicationId};
use govmedia_kit::db::{Tx, db_error};
use govmedia_kit::sql;

use super::id;
use crate::domain::metrics::Totals;

/// One observation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The publication.
    pub publication: PublicationId,
    /// When the platform reported the counts.
    pub observed_at: DateTime<Utc>,
    /// The counts.
    pub totals: Totals,
}

#[derive(sqlx::FromRow)]
struct Row {
    publication_id: String,
    observed_at: DateTime<Utc>,
    reads: i64,
    likes: i64,
    comments: i64,
    shares: i64,
    favourites: i64,
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl TryFrom<Row> for Observation {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(Observation {
            publication: id("metric_observations.publication_id", &r.publication_id)?,
            observed_at: r.observed_at,
            totals: Totals {
                reads: count(r.reads),
                likes: count(r.likes),
                comments: count(r.comments),
                shares: count(r.shares),
                favourites: count(r.favourites),
            },
        })
    }
}

fn stored(v: u64) -> i64 {
    // Validated at the edge to fit; saturate rather than wrap if that ever slips.
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stores an observation; false when one for the same publication and time exists
/// (the first stands).
pub async fn insert(tx: &mut Tx, o: &Observation) -> Result<bool, Error> {
    let affected = sql!(
        tx,
        execute,
        "INSERT INTO metric_observations (publication_id, observed_at, reads, likes, comments, shares, favourites) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (publication_id, observed_at) DO NOTHING",
        o.publication.to_string(),
        o.observed_at,
        stored(o.totals.reads),
        stored(o.totals.likes),
        stored(o.totals.comments),
        stored(o.totals.shares),
        stored(o.totals.favourites)
    )
    .map_err(db_error)?;
    Ok(affected == 1)
}

/// Observations of a publication in `[start, end)` after `after`, oldest first.
pub async fn list(
    tx: &mut Tx,
    publication: PublicationId,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<Observation>, Error> {
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM metric_observations WHERE publication_id = $1 AND observed_at >= $2 AND observed_at < $3 \
             ORDER BY observed_at LIMIT $4",
        publication.to_string(),
        start,
        end,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Observation::try_from).collect()
}

/// The latest counts of a publication before `end`.
pub async fn latest_before(tx: &mut Tx, publication: PublicationId, end: DateTime<Utc>) -> Result<Totals, Error> {
    let row: Option<Row> = sql!(
        tx,
        fetch_optional,
        "SELECT * FROM metric_observations WHERE publication_id = $1 AND observed_at < $2 \
             ORDER BY observed_at DESC LIMIT 1",
        publication.to_string(),
        end
    )
    .map_err(db_error)?;
    Ok(row.map(Observation::try_from).transpose()?.map(|o| o.totals).unwrap_or_default())
}

/// Whose publications a report covers.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// One account.
    Account(PlatformAccountId),
    /// Every account a department published on (through its drafts).
    Department(DepartmentId),
}

/// A publication that went out, as reports need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The publication.
    pub id: PublicationId,
    /// Its account.
    pub account: PlatformAccountId,
    /// The draft and version.
    pub draft: DraftId,
    /// The version.
    pub draft_version: i64,
    /// When.
    pub published_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PublishedRow {
    id: String,
    platform_account_id: String,
    draft_id: String,
    draft_version: i64,
    published_at: DateTime<Utc>,
}

const PUBLISHED: &str = "SELECT p.id, p.platform_account_id, p.draft_id, p.draft_version, p.published_at \
     FROM publications p JOIN drafts d ON d.id = p.draft_id \
     WHERE p.state IN ('published', 'retracted') AND p.published_at IS NOT NULL";

fn scope_clause(scope: Scope) -> (&'static str, String) {
    match scope {
        Scope::Account(a) => ("p.platform_account_id = $1", a.to_string()),
        Scope::Department(d) => ("d.department_id = $1", d.to_string()),
    }
}

/// Publications that went out in `[start, end)`, retracted ones included: they were
/// published.
pub async fn published_in(
    tx: &mut Tx,
    scope: Scope,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<Vec<Published>, Error> {
    let (clause, value) = scope_clause(scope);
    let sql =
        format!("{PUBLISHED} AND {clause} AND p.published_at >= $2 AND p.published_at < $3 ORDER BY p.published_at");
    let rows: Vec<PublishedRow> = sql!(tx, fetch_all, &sql, &value, start, end).map_err(db_error)?;
    rows.into_iter().map(published).collect()
}

/// The last publication before `end`, however long before.
pub async fn last_before(tx: &mut Tx, scope: Scope, end: DateTime<Utc>) -> Result<Option<Published>, Error> {
    let (clause, value) = scope_clause(scope);
    let sql = format!("{PUBLISHED} AND {clause} AND p.published_at < $2 ORDER BY p.published_at DESC LIMIT 1");
    let row: Option<PublishedRow> = sql!(tx, fetch_optional, &sql, &value, end).map_err(db_error)?;
    row.map(published).transpose()
}

fn published(r: PublishedRow) -> Result<Published, Error> {
    Ok(Published {
        id: id("publications.id", &r.id)?,
        account: id("publications.platform_account_id", &r.platform_account_id)?,
        draft: id("publications.draft_id", &r.draft_id)?,
        draft_version: r.draft_version,
        published_at: r.published_at,
    })
}
