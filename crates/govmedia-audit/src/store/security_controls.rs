//! The register of security controls in SQL (R7.2.1).

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::SecurityControlId;
use govmedia_kit::access::Authorized;
use govmedia_kit::db::column::{id, optional_id, parsed, text_of};
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::sql;

use crate::domain::security_control::{AssetType, ControlType, SecurityControl, Status};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    asset_type: String,
    asset_id: String,
    asset_name: String,
    control_type: String,
    description: String,
    status: String,
    interval_days: i64,
    verified_at: Option<DateTime<Utc>>,
    verified_by: String,
    evidence: String,
    department_id: String,
    created_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<Row> for SecurityControl {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(SecurityControl {
            id: id("security_controls.id", &r.id)?,
            asset_type: parsed("security_controls.asset_type", &r.asset_type, AssetType::parse)?,
            asset_id: r.asset_id,
            asset_name: r.asset_name,
            control_type: parsed("security_controls.control_type", &r.control_type, ControlType::parse)?,
            description: r.description,
            status: parsed("security_controls.status", &r.status, Status::parse)?,
            interval_days: u32::try_from(r.interval_days).unwrap_or(0),
            verified_at: r.verified_at,
            verified_by: optional_id("security_controls.verified_by", &r.verified_by)?,
            evidence: r.evidence,
            department: optional_id("security_controls.department_id", &r.department_id)?,
            created_at: r.created_at,
            version: r.version,
        })
    }
}

/// Writes a new control.
pub async fn insert(tx: &mut Tx, c: &SecurityControl) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO security_controls (id, asset_type, asset_id, asset_name, control_type, description, status, \
             interval_days, verified_at, verified_by, evidence, department_id, created_at, next_due_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        c.id.to_string(),
        c.asset_type.as_str(),
        &c.asset_id,
        &c.asset_name,
        c.control_type.as_str(),
        &c.description,
        c.status.as_str(),
        i64::from(c.interval_days),
        c.verified_at,
        text_of(c.verified_by),
        &c.evidence,
        text_of(c.department),
        c.created_at,
        c.next_due(),
        c.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a changed control if nobody changed it since `expected_version`.
pub async fn save(tx: &mut Tx, c: &SecurityControl, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE security_controls SET status = $2, verified_at = $3, verified_by = $4, evidence = $5, \
             next_due_at = $6, version = $7 WHERE id = $1 AND version = $8",
        c.id.to_string(),
        c.status.as_str(),
        c.verified_at,
        text_of(c.verified_by),
        &c.evidence,
        c.next_due(),
        c.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "security control")
}

/// One control.
pub async fn get(tx: &mut Tx, control: SecurityControlId) -> Result<Option<SecurityControl>, Error> {
    get_by_id::<Row, _>(tx, "security_controls", control).await
}

/// One control, locked for a change the grant allows.
pub async fn lock(tx: &mut Tx, control: SecurityControlId, grant: &Authorized) -> Result<SecurityControl, Error> {
    lock_by_id::<Row, _>(tx, "security_controls", "security control", control, grant).await
}

/// What a list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct ControlFilter {
    /// Only this asset type.
    pub asset_type: Option<AssetType>,
    /// Only this asset.
    pub asset_id: Option<String>,
    /// Only overdue at this instant.
    pub overdue_at: Option<DateTime<Utc>>,
}

/// Where a page starts: after this (asset type, asset id, control type, id).
pub type Cursor = (String, String, String, String);

/// Controls by asset type, asset, control type and id.
pub async fn list(
    tx: &mut Tx,
    f: &ControlFilter,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Vec<SecurityControl>, Error> {
    let (a, b, c, d) = after.unwrap_or_default();
    let overdue = f.overdue_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM security_controls WHERE ($1 = '' OR asset_type = $1) AND ($2 = '' OR asset_id = $2) \
         AND ($3 = 0 OR (status <> 'retired' AND next_due_at <= $4)) \
         AND (asset_type, asset_id, control_type, id) > ($5, $6, $7, $8) \
         ORDER BY asset_type, asset_id, control_type, id LIMIT $9",
        f.asset_type.map(AssetType::as_str).unwrap_or_default(),
        f.asset_id.clone().unwrap_or_default(),
        i64::from(f.overdue_at.is_some()),
        overdue,
        a,
        b,
        c,
        d,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(SecurityControl::try_from).collect()
}
