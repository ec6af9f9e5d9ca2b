//! Plans.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, PlanId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::sql;

use super::{id, join_ids, split_ids};
use crate::domain::plan::{Plan, PlanReason, PlanState};

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: String,
    department_id: String,
    topic: String,
    reason: String,
    reason_detail: String,
    target_accounts: String,
    window_start: Option<DateTime<Utc>>,
    window_end: Option<DateTime<Utc>>,
    owner_user_id: String,
    state: String,
    cancel_reason: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<PlanRow> for Plan {
    type Error = Error;

    fn try_from(r: PlanRow) -> Result<Self, Error> {
        Ok(Plan {
            id: id("plans.id", &r.id)?,
            department: id("plans.department_id", &r.department_id)?,
            topic: r.topic,
            reason: PlanReason::parse(&r.reason)
                .ok_or_else(|| Error::internal(format!("bad plan reason {}", r.reason)))?,
            reason_detail: r.reason_detail,
            targets: split_ids("plans.target_accounts", &r.target_accounts)?,
            window_start: r.window_start,
            window_end: r.window_end,
            owner: id("plans.owner_user_id", &r.owner_user_id)?,
            state: PlanState::parse(&r.state).ok_or_else(|| Error::internal(format!("bad plan state {}", r.state)))?,
            cancel_reason: r.cancel_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// Inserts a plan.
pub async fn insert(tx: &mut Tx, p: &Plan) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO plans (id, department_id, topic, reason, reason_detail, target_accounts, window_start, \
         window_end, owner_user_id, state, cancel_reason, created_at, updated_at, version) VALUES ($1, $2, $3, $4, \
         $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        p.id.to_string(),
        p.department.to_string(),
        &p.topic,
        p.reason.as_str(),
        &p.reason_detail,
        join_ids(&p.targets),
        p.window_start,
        p.window_end,
        p.owner.to_string(),
        p.state.as_str(),
        &p.cancel_reason,
        p.created_at,
        p.updated_at,
        p.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a plan changed by one transition (its version bumped once) if nobody else
/// changed it meanwhile; ABORTED otherwise.
pub async fn save(tx: &mut Tx, p: &Plan) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE plans SET topic = $2, reason = $3, reason_detail = $4, target_accounts = $5, window_start = $6, \
             window_end = $7, owner_user_id = $8, state = $9, cancel_reason = $10, updated_at = $11, version = $12 \
             WHERE id = $1 AND version = $13",
        p.id.to_string(),
        &p.topic,
        p.reason.as_str(),
        &p.reason_detail,
        join_ids(&p.targets),
        p.window_start,
        p.window_end,
        p.owner.to_string(),
        p.state.as_str(),
        &p.cancel_reason,
        p.updated_at,
        p.version,
        p.version - 1
    )
    .map_err(db_error)?;
    saved(affected, "plan")
}

/// One plan, locked for a change `grant` allows (it must cover the plan's department).
pub async fn lock(tx: &mut Tx, plan: PlanId, grant: &Authorized) -> Result<Plan, Error> {
    let plan: Plan = lock_by_id::<PlanRow, _>(tx, "plans", "plan", plan, grant).await?;
    grant.ensure_covers(Some(plan.department), &[])?;
    Ok(plan)
}

/// One plan.
pub async fn get(tx: &mut Tx, plan: PlanId) -> Result<Option<Plan>, Error> {
    get_by_id::<PlanRow, _>(tx, "plans", plan).await
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    /// Only this department.
    pub department: Option<DepartmentId>,
    /// Only this state.
    pub state: Option<PlanState>,
    /// Only windows ending after this.
    pub from: Option<DateTime<Utc>>,
    /// Only windows starting before this.
    pub to: Option<DateTime<Utc>>,
}

/// Plans ordered by (window start, id) after the cursor.
pub async fn list(
    tx: &mut Tx,
    f: &PlanFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Plan>, Error> {
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    let (after_start, after_id) = after.unwrap_or((epoch, String::new()));
    let rows: Vec<PlanRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM plans WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) AND ($3 = FALSE OR \
         window_end IS NULL OR window_end > $4) AND ($5 = FALSE OR window_start IS NULL OR window_start < $6) AND \
         (COALESCE(window_start, $7) > $8 OR (COALESCE(window_start, $7) = $8 AND id > $9)) ORDER BY \
         COALESCE(window_start, $7), id LIMIT $10",
        f.department.map(|d| d.to_string()).unwrap_or_default(),
        f.state.map(PlanState::as_str).unwrap_or(""),
        f.from.is_some(),
        f.from.unwrap_or(epoch),
        f.to.is_some(),
        f.to.unwrap_or(epoch),
        epoch,
        after_start,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Plan::try_from).collect()
}
