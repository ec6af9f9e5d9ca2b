//! Feedback items on publications (R3.3.3).

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{FeedbackItemId, PlatformAccountId, PublicationId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::{on_tx, sql};

use super::id;
use crate::domain::feedback::{FeedbackItem, FeedbackKind, FeedbackState};

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
            kind: FeedbackKind::parse(&r.kind)
                .ok_or_else(|| Error::internal(format!("bad feedback kind {}", r.kind)))?,
            description: r.description,
            source: r.source,
            state: FeedbackState::parse(&r.state)
                .ok_or_else(|| Error::internal(format!("bad feedback state {}", r.state)))?,
            assignee: (!r.assignee_user_id.is_empty())
                .then(|| id("feedback_items.assignee_user_id", &r.assignee_user_id))
                .transpose()?,
            resolution: r.resolution,
            correction_draft: (!r.correction_draft_id.is_empty())
                .then(|| id("feedback_items.correction_draft_id", &r.correction_draft_id))
                .transpose()?,
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
        .bind(f.kind.as_str())
        .bind(&f.description)
        .bind(&f.source)
        .bind(f.state.as_str())
        .bind(f.assignee.map(|a| a.to_string()).unwrap_or_default())
        .bind(&f.resolution)
        .bind(f.correction_draft.map(|d| d.to_string()).unwrap_or_default())
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

/// Saves an item changed by one transition if nobody else changed it meanwhile.
pub async fn save(tx: &mut Tx, f: &FeedbackItem) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE feedback_items SET state = $2, assignee_user_id = $3, resolution = $4, correction_draft_id = $5, \
             closed_at = $6, version = $7 WHERE id = $1 AND version = $8",
        f.id.to_string(),
        f.state.as_str(),
        f.assignee.map(|a| a.to_string()).unwrap_or_default(),
        &f.resolution,
        f.correction_draft.map(|d| d.to_string()).unwrap_or_default(),
        f.closed_at,
        f.version,
        f.version - 1
    )
    .map_err(db_error)?;
    saved(affected, "feedback item")
}

/// One item, as it is now.
pub async fn get(tx: &mut Tx, item: FeedbackItemId) -> Result<Option<FeedbackItem>, Error> {
    get_by_id::<Row, _>(tx, "feedback_items", item).await
}

/// One item, locked for a change `grant` allows on its account.
pub async fn lock(tx: &mut Tx, item: FeedbackItemId, grant: &Authorized) -> Result<FeedbackItem, Error> {
    let item: FeedbackItem = lock_by_id::<Row, _>(tx, "feedback_items", "feedback_item", item, grant).await?;
    grant.ensure_covers_account(item.account)?;
    Ok(item)
}

/// Filters of [`list`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FeedbackFilter {
    /// Publication.
    pub publication: Option<PublicationId>,
    /// Account.
    pub account: Option<PlatformAccountId>,
    /// State.
    pub state: Option<FeedbackState>,
}

/// A page of items, oldest first (open ones are the oldest waiting); `after` is the last
/// id seen.
pub async fn list(
    tx: &mut Tx,
    f: &FeedbackFilter,
    after: Option<FeedbackItemId>,
    limit: u32,
) -> Result<Vec<FeedbackItem>, Error> {
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM feedback_items WHERE ($1 = '' OR publication_id = $1) AND ($2 = '' OR platform_account_id = $2) \
             AND ($3 = '' OR state = $3) AND ($4 = '' OR id > $4) ORDER BY id LIMIT $5",
        f.publication.map(|p| p.to_string()).unwrap_or_default(),
        f.account.map(|a| a.to_string()).unwrap_or_default(),
        f.state.map_or("", FeedbackState::as_str),
        after.map(|a| a.to_string()).unwrap_or_default(),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(FeedbackItem::try_from).collect()
}
