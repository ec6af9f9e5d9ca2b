//! Rectification orders in SQL (R8.1.2).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, RectificationId, UserId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::column::{id, optional_id, parsed, text_of};
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::sql;

use crate::domain::rectification::{Evidence, NewRectification, Rectification, Source, State};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    source: String,
    source_id: String,
    department_id: String,
    responsible_user_id: String,
    platform_account_id: String,
    title: String,
    requirement: String,
    rule_id: String,
    working_days: i64,
    due_date: String,
    due_at: DateTime<Utc>,
    state: String,
    issued_by: String,
    issued_at: DateTime<Utc>,
    evidence: String,
    submitted_at: Option<DateTime<Utc>>,
    verified_by: String,
    verified_at: Option<DateTime<Utc>>,
    note: String,
    return_count: i64,
    closed_at: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<Row> for Rectification {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        let evidence = if r.evidence.is_empty() {
            None
        } else {
            Some(
                serde_json::from_str::<Evidence>(&r.evidence)
                    .map_err(|e| Error::internal(format!("stored rectifications.evidence: {e}")))?,
            )
        };
        Ok(Rectification {
            id: id("rectifications.id", &r.id)?,
            order: NewRectification {
                source: parsed("rectifications.source", &r.source, Source::parse)?,
                source_id: r.source_id,
                department: id("rectifications.department_id", &r.department_id)?,
                responsible: id("rectifications.responsible_user_id", &r.responsible_user_id)?,
                account: optional_id("rectifications.platform_account_id", &r.platform_account_id)?,
                title: r.title,
                requirement: r.requirement,
                rule_id: r.rule_id,
                working_days: u32::try_from(r.working_days).unwrap_or(0),
            },
            due_date: r
                .due_date
                .parse::<NaiveDate>()
                .map_err(|_| Error::internal(format!("stored rectifications.due_date {:?}", r.due_date)))?,
            due_at: r.due_at,
            state: parsed("rectifications.state", &r.state, State::parse)?,
            issued_by: id("rectifications.issued_by", &r.issued_by)?,
            issued_at: r.issued_at,
            evidence,
            submitted_at: r.submitted_at,
            verified_by: optional_id("rectifications.verified_by", &r.verified_by)?,
            verified_at: r.verified_at,
            note: r.note,
            return_count: u32::try_from(r.return_count).unwrap_or(0),
            closed_at: r.closed_at,
            version: r.version,
        })
    }
}

fn evidence_text(r: &Rectification) -> Result<String, Error> {
    r.evidence
        .as_ref()
        .map(|e| serde_json::to_string(e).map_err(|e| Error::internal(format!("evidence: {e}"))))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// Writes a new order.
pub async fn insert(tx: &mut Tx, r: &Rectification) -> Result<(), Error> {
    let o = &r.order;
    sql!(
        tx,
        execute,
        "INSERT INTO rectifications (id, source, source_id, department_id, responsible_user_id, platform_account_id, \
             title, requirement, rule_id, working_days, due_date, due_at, state, issued_by, issued_at, evidence, \
             submitted_at, verified_by, verified_at, note, return_count, closed_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
        r.id.to_string(),
        o.source.as_str(),
        &o.source_id,
        o.department.to_string(),
        o.responsible.to_string(),
        text_of(o.account),
        &o.title,
        &o.requirement,
        &o.rule_id,
        i64::from(o.working_days),
        r.due_date.to_string(),
        r.due_at,
        r.state.as_str(),
        r.issued_by.to_string(),
        r.issued_at,
        evidence_text(r)?,
        r.submitted_at,
        text_of(r.verified_by),
        r.verified_at,
        &r.note,
        i64::from(r.return_count),
        r.closed_at,
        r.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a changed order if nobody changed it since `expected_version`.
pub async fn save(tx: &mut Tx, r: &Rectification, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE rectifications SET state = $2, evidence = $3, submitted_at = $4, verified_by = $5, verified_at = $6, \
             note = $7, return_count = $8, closed_at = $9, version = $10 WHERE id = $1 AND version = $11",
        r.id.to_string(),
        r.state.as_str(),
        evidence_text(r)?,
        r.submitted_at,
        text_of(r.verified_by),
        r.verified_at,
        &r.note,
        i64::from(r.return_count),
        r.closed_at,
        r.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "rectification")
}

/// One order.
pub async fn get(tx: &mut Tx, rectification: RectificationId) -> Result<Option<Rectification>, Error> {
    get_by_id::<Row, _>(tx, "rectifications", rectification).await
}

/// One order, locked for a change the grant allows.
pub async fn lock(tx: &mut Tx, rectification: RectificationId, grant: &Authorized) -> Result<Rectification, Error> {
    let r: Rectification = lock_by_id::<Row, _>(tx, "rectifications", "rectification", rectification, grant).await?;
    grant.ensure_covers(Some(r.order.department), r.order.account.as_slice())?;
    Ok(r)
}

/// What a list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct RectificationFilter {
    /// Only this department's.
    pub department: Option<DepartmentId>,
    /// Only in this state.
    pub state: Option<State>,
    /// Only open and past the deadline at this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only this person's.
    pub responsible: Option<UserId>,
    /// Only about this account.
    pub account: Option<PlatformAccountId>,
}

/// Orders, the earliest deadline first, after the cursor (due_at, id).
pub async fn list(
    tx: &mut Tx,
    f: &RectificationFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Rectification>, Error> {
    let (after_due, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, String::new()));
    // An unset filter is the empty text, or for "overdue" the epoch (nothing is due
    // before it, so every order passes).
    let overdue = f.overdue_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM rectifications WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) \
         AND ($3 = '' OR responsible_user_id = $3) AND ($4 = '' OR platform_account_id = $4) \
         AND ($5 = 0 OR (state IN ('in_progress', 'submitted') AND due_at <= $6)) \
         AND (due_at > $7 OR (due_at = $7 AND id > $8)) ORDER BY due_at, id LIMIT $9",
        text_of(f.department),
        f.state.map(State::as_str).unwrap_or_default(),
        text_of(f.responsible),
        text_of(f.account),
        i64::from(f.overdue_at.is_some()),
        overdue,
        after_due,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Rectification::try_from).collect()
}

/// Per account, the orders open at `at` and how many of them were overdue then
/// (cancelled orders do not count: they were issued in error).
pub async fn open_per_account(tx: &mut Tx, at: DateTime<Utc>) -> Result<HashMap<String, (u32, u32)>, Error> {
    #[derive(sqlx::FromRow)]
    struct Count {
        platform_account_id: String,
        open: i64,
        overdue: i64,
    }
    let rows: Vec<Count> = sql!(
        tx,
        fetch_all,
        "SELECT platform_account_id, COUNT(*) AS open, SUM(CASE WHEN due_at <= $1 THEN 1 ELSE 0 END) AS overdue \
         FROM rectifications WHERE platform_account_id <> '' AND state <> 'cancelled' AND issued_at < $1 \
         AND (closed_at IS NULL OR closed_at >= $1) GROUP BY platform_account_id",
        at
    )
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (r.platform_account_id, (u32::try_from(r.open).unwrap_or(u32::MAX), u32::try_from(r.overdue).unwrap_or(0)))
        })
        .collect())
}
