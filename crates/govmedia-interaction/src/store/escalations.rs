//! Escalations of missed deadlines, and the questions the deadline watch asks of the
//! comments, conversations and referrals (R4.1.1, R4.2.1, R4.2.2).

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, EscalationId, PlatformAccountId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::sql;

use super::{id, optional_id, parsed, text_of};
use crate::domain::escalation::{EscalatedItem, Escalation, EscalationState, Overdue};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    item_type: String,
    item_id: String,
    platform_account_id: String,
    department_id: String,
    due_at: DateTime<Utc>,
    escalated_at: DateTime<Utc>,
    state: String,
    acknowledged_by: String,
    acknowledged_at: Option<DateTime<Utc>>,
    note: String,
    resolved_at: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<Row> for Escalation {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(Escalation {
            id: id("escalations.id", &r.id)?,
            item: parsed("escalations.item_type", &r.item_type, EscalatedItem::parse)?,
            item_id: r.item_id,
            account: id("escalations.platform_account_id", &r.platform_account_id)?,
            department: optional_id("escalations.department_id", &r.department_id)?,
            due_at: r.due_at,
            escalated_at: r.escalated_at,
            state: parsed("escalations.state", &r.state, EscalationState::parse)?,
            acknowledged_by: optional_id("escalations.acknowledged_by", &r.acknowledged_by)?,
            acknowledged_at: r.acknowledged_at,
            note: r.note,
            resolved_at: r.resolved_at,
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
struct OverdueRow {
    item_id: String,
    platform_account_id: String,
    department_id: String,
    due_at: DateTime<Utc>,
}

/// Items of kind `item` past their deadline at `now` and not escalated for that
/// deadline yet, the longest overdue first. A conversation answered and written to again
/// has a new deadline, so it can be escalated again.
pub async fn overdue(tx: &mut Tx, item: EscalatedItem, now: DateTime<Utc>, limit: u32) -> Result<Vec<Overdue>, Error> {
    // Each arm is the "overdue" of the item's own list (`overdue_only`), plus "not yet
    // escalated for this deadline".
    let sql = match item {
        EscalatedItem::Comment => {
            "SELECT c.id AS item_id, c.platform_account_id, '' AS department_id, c.response_due_at AS due_at \
             FROM comments c WHERE c.first_response_at IS NULL AND c.status IN ('open', 'needs_review') \
             AND c.response_due_at < $1 AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.item_type = 'comment' \
             AND e.item_id = c.id AND e.due_at = c.response_due_at) ORDER BY c.response_due_at, c.id LIMIT $2"
        }
        EscalatedItem::Conversation => {
            "SELECT c.id AS item_id, c.platform_account_id, '' AS department_id, c.response_due_at AS due_at \
             FROM conversations c WHERE c.state = 'awaiting_response' AND c.response_due_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.item_type = 'conversation' \
             AND e.item_id = c.id AND e.due_at = c.response_due_at) ORDER BY c.response_due_at, c.id LIMIT $2"
        }
        EscalatedItem::Referral => {
            "SELECT r.id AS item_id, r.platform_account_id, r.department_id, r.due_at FROM referrals r \
             WHERE r.outcome_at IS NULL AND r.state <> 'closed' AND r.due_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.item_type = 'referral' \
             AND e.item_id = r.id AND e.due_at = r.due_at) ORDER BY r.due_at, r.id LIMIT $2"
        }
    };
    let rows: Vec<OverdueRow> = sql!(tx, fetch_all, sql, now, i64::from(limit)).map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            Ok(Overdue {
                item,
                account: id("platform_account_id", &r.platform_account_id)?,
                department: optional_id("department_id", &r.department_id)?,
                item_id: r.item_id,
                due_at: r.due_at,
            })
        })
        .collect()
}

/// Inserts an escalation unless its deadline was escalated already (by another replica
/// in the meantime); true when inserted.
pub async fn insert_new(tx: &mut Tx, e: &Escalation) -> Result<bool, Error> {
    let inserted = sql!(
        tx,
        execute,
        "INSERT INTO escalations (id, item_type, item_id, platform_account_id, department_id, due_at, escalated_at, \
             state, acknowledged_by, acknowledged_at, note, resolved_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (item_type, item_id, due_at) DO NOTHING",
        e.id.to_string(),
        e.item.as_str(),
        &e.item_id,
        e.account.to_string(),
        text_of(e.department),
        e.due_at,
        e.escalated_at,
        e.state.as_str(),
        text_of(e.acknowledged_by),
        e.acknowledged_at,
        &e.note,
        e.resolved_at,
        e.version
    )
    .map_err(db_error)?;
    Ok(inserted == 1)
}

/// Saves a changed escalation if nobody changed it since `expected_version`.
pub async fn save(tx: &mut Tx, e: &Escalation, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE escalations SET state = $2, acknowledged_by = $3, acknowledged_at = $4, note = $5, \
             resolved_at = $6, version = $7 WHERE id = $1 AND version = $8",
        e.id.to_string(),
        e.state.as_str(),
        text_of(e.acknowledged_by),
        e.acknowledged_at,
        &e.note,
        e.resolved_at,
        e.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "escalation")
}

/// One escalation, as it is now.
pub async fn get(tx: &mut Tx, escalation: EscalationId) -> Result<Option<Escalation>, Error> {
    get_by_id::<Row, _>(tx, "escalations", escalation).await
}

/// One escalation, locked for a change `grant` allows (on its department).
pub async fn lock(tx: &mut Tx, escalation: EscalationId, grant: &Authorized) -> Result<Escalation, Error> {
    let e: Escalation = lock_by_id::<Row, _>(tx, "escalations", "escalation", escalation, grant).await?;
    grant.ensure_covers(e.department, &[])?;
    Ok(e)
}

/// The ids of unresolved escalations whose item no longer waits for that deadline:
/// the comment was answered (or hidden, deleted, dismissed), the conversation answered
/// or closed, the referral's outcome recorded or the referral closed.
pub async fn resolvable(tx: &mut Tx, limit: u32) -> Result<Vec<EscalationId>, Error> {
    let rows: Vec<String> = sql!(
        tx,
        scalar_all,
        "SELECT e.id FROM escalations e WHERE e.state <> 'resolved' AND ( \
             (e.item_type = 'comment' AND NOT EXISTS (SELECT 1 FROM comments c WHERE c.id = e.item_id \
                 AND c.first_response_at IS NULL AND c.status IN ('open', 'needs_review'))) \
             OR (e.item_type = 'conversation' AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = e.item_id \
                 AND c.state = 'awaiting_response' AND c.response_due_at = e.due_at)) \
             OR (e.item_type = 'referral' AND NOT EXISTS (SELECT 1 FROM referrals r WHERE r.id = e.item_id \
                 AND r.outcome_at IS NULL AND r.state <> 'closed'))) \
             ORDER BY e.due_at, e.id LIMIT $1",
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.iter().map(|r| id("escalations.id", r)).collect()
}

/// Escalations not yet resolved, by department ('' for those of no department).
pub async fn unresolved_count(tx: &mut Tx) -> Result<i64, Error> {
    sql!(tx, scalar_one, "SELECT COUNT(*) FROM escalations WHERE state <> 'resolved'").map_err(db_error)
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct EscalationFilter {
    /// Only this department's queue.
    pub department: Option<DepartmentId>,
    /// Only in this state.
    pub state: Option<EscalationState>,
    /// Only of this kind.
    pub item: Option<EscalatedItem>,
    /// Only on this account.
    pub account: Option<PlatformAccountId>,
}

/// Escalations, the oldest missed deadline first, after the cursor.
pub async fn list(
    tx: &mut Tx,
    f: &EscalationFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Escalation>, Error> {
    let (after_at, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, String::new()));
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM escalations WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR item_type = $3) AND ($4 = '' OR platform_account_id = $4) \
             AND (due_at > $5 OR (due_at = $5 AND id > $6)) ORDER BY due_at, id LIMIT $7",
        text_of(f.department),
        f.state.map(EscalationState::as_str).unwrap_or(""),
        f.item.map(EscalatedItem::as_str).unwrap_or(""),
        text_of(f.account),
        after_at,
        &after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Escalation::try_from).collect()
}
