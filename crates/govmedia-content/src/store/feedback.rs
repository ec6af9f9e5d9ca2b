//! Feedback items on publications (R3.3.3).

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{FeedbackItemId, PlatformAccountId, PublicationId};
use govmedia_kit::db::{Dialect, Tx, db_error};
use govmedia_kit::on_tx;

use super::id;

/// A feedback item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackItem {
    /// Id.
    pub id: FeedbackItemId,
    /// The publication.
    pub publication: PublicationId,
    /// Its account.
    pub account: PlatformAccountId,
    /// `error_report`, `complaint`, `question`, `public_opinion` or `other`.
    pub kind: String,
    /// What was reported.
    pub description: String,
    /// Where it came from.
    pub source: String,
    /// `open`, `in_progress` or `closed`.
    pub state: String,
    /// Who handles it (empty when nobody).
    pub assignee: String,
    /// What was done.
    pub resolution: String,
    /// The correction draft it led to (empty when none).
    pub correction_draft: String,
    /// Who recorded it.
    pub created_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Row version.
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    publication_id: String,
    platform_account_id: String,
    kind: String,
    description: String,
    source: String,
    state: String,
    assignee_user_id: String,
    resolution: String,
    correction_draft_id: String,
    created_by: String,
    created_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<Row> for FeedbackItem {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(FeedbackItem {
            id: id("feedback_items.id", &r.id)?,
            publication: id("feedback_items.publication_id", &r.publication_id)?,
            account: id("feedback_items.platform_account_id", &r.platform_account_id)?,
            kind: r.kind,
            description: r.description,
            source: r.source,
            state: r.state,
            assignee: r.assignee_user_id,
            resolution: r.resolution,
            correction_draft: r.correction_draft_id,
            created_by: r.created_by,
            created_at: r.created_at,
            closed_at: r.closed_at,
            version: r.version,
        })
    }
}

/// Inserts an item.
pub async fn insert(tx: &mut Tx, f: &FeedbackItem) -> Result<(), Error> {
    on_tx!(tx, |conn, dialect| {
        sqlx::query(&dialect.sql(
            "INSERT INTO feedback_items (id, publication_id, platform_account_id, kind, description, source, state, \
             assignee_user_id, resolution, correction_draft_id, created_by, created_at, closed_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        ))
        .bind(f.id.to_string())
        .bind(f.publication.to_string())
        .bind(f.account.to_string())
        .bind(&f.kind)
        .bind(&f.description)
        .bind(&f.source)
        .bind(&f.state)
        .bind(&f.assignee)
        .bind(&f.resolution)
        .bind(&f.correction_draft)
        .bind(&f.created_by)
        .bind(f.created_at)
        .bind(f.closed_at)
        .bind(f.version)
        .execute(conn)
        .await
        .map(|_| ())
    })
    .map_err(db_error)
}

/// Saves an item if its row version is unchanged.
pub async fn save(tx: &mut Tx, f: &FeedbackItem, expected_version: i64) -> Result<(), Error> {
    let affected = on_tx!(tx, |conn, dialect| {
        sqlx::query(&dialect.sql(
            "UPDATE feedback_items SET state = $2, assignee_user_id = $3, resolution = $4, correction_draft_id = $5, \
             closed_at = $6, version = $7 WHERE id = $1 AND version = $8",
        ))
        .bind(f.id.to_string())
        .bind(&f.state)
        .bind(&f.assignee)
        .bind(&f.resolution)
        .bind(&f.correction_draft)
        .bind(f.closed_at)
        .bind(f.version)
        .bind(expected_version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(db_error)?;
    if affected == 0 {
        return Err(Error::Conflict("the feedback item changed since it was read".into()));
    }
    Ok(())
}

/// One item; locked for update on PostgreSQL when `lock`.
pub async fn get(tx: &mut Tx, item: FeedbackItemId, lock: bool) -> Result<Option<FeedbackItem>, Error> {
    let row: Option<Row> = on_tx!(tx, |conn, dialect| {
        let sql = match (dialect, lock) {
            (Dialect::Postgres, true) => "SELECT * FROM feedback_items WHERE id = $1 FOR UPDATE",
            (Dialect::Postgres, false) => "SELECT * FROM feedback_items WHERE id = $1",
            (Dialect::Sqlite, _) => "SELECT * FROM feedback_items WHERE id = ?1",
        };
        sqlx::query_as(sql).bind(item.to_string()).fetch_optional(conn).await
    })
    .map_err(db_error)?;
    row.map(FeedbackItem::try_from).transpose()
}

/// Filters of [`list`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedbackFilter<'a> {
    /// Publication.
    pub publication: Option<PublicationId>,
    /// Account.
    pub account: Option<PlatformAccountId>,
    /// State name.
    pub state: Option<&'a str>,
}

/// A page of items, oldest first (open ones are the oldest waiting); `after` is the last
/// id seen.
pub async fn list(
    tx: &mut Tx,
    f: &FeedbackFilter<'_>,
    after: Option<FeedbackItemId>,
    limit: u32,
) -> Result<Vec<FeedbackItem>, Error> {
    let rows: Vec<Row> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(&dialect.sql(
            "SELECT * FROM feedback_items WHERE ($1 = '' OR publication_id = $1) AND ($2 = '' OR platform_account_id = $2) \
             AND ($3 = '' OR state = $3) AND ($4 = '' OR id > $4) ORDER BY id LIMIT $5",
        ))
        .bind(f.publication.map(|p| p.to_string()).unwrap_or_default())
        .bind(f.account.map(|a| a.to_string()).unwrap_or_default())
        .bind(f.state.unwrap_or(""))
        .bind(after.map(|a| a.to_string()).unwrap_or_default())
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
    })
    .map_err(db_error)?;
    rows.into_iter().map(FeedbackItem::try_from).collect()
}
