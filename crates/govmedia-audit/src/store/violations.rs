//! Violation records in SQL (R9.2), and the questions the detectors ask.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, UserId, ViolationId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::column::{id, optional_id, parsed, text_of};
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::sql;

use crate::domain::violation::{Facts, Severity, State, Violation, violation_type};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    violation_type: String,
    responsible_user_id: String,
    department_id: String,
    platform_account_id: String,
    description: String,
    evidence: String,
    severity: String,
    state: String,
    detector: String,
    detection_key: String,
    created_at: DateTime<Utc>,
    handling: String,
    decided_by: String,
    decided_at: Option<DateTime<Utc>>,
    rectification_id: String,
    version: i64,
}

impl TryFrom<Row> for Violation {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(Violation {
            id: id("violations.id", &r.id)?,
            facts: Facts {
                kind: parsed("violations.violation_type", &r.violation_type, violation_type)?,
                responsible: id("violations.responsible_user_id", &r.responsible_user_id)?,
                department: optional_id("violations.department_id", &r.department_id)?,
                account: optional_id("violations.platform_account_id", &r.platform_account_id)?,
                description: r.description,
                evidence: serde_json::from_str(&r.evidence)
                    .map_err(|e| Error::internal(format!("stored violations.evidence: {e}")))?,
            },
            severity: parsed("violations.severity", &r.severity, Severity::parse)?,
            state: parsed("violations.state", &r.state, State::parse)?,
            detector: r.detector,
            detection_key: r.detection_key,
            created_at: r.created_at,
            handling: r.handling,
            decided_by: optional_id("violations.decided_by", &r.decided_by)?,
            decided_at: r.decided_at,
            rectification: optional_id("violations.rectification_id", &r.rectification_id)?,
            version: r.version,
        })
    }
}

/// Writes a new record unless one was found on the same thing already (another replica's
/// detector, or an earlier round); true when written.
pub async fn insert_new(tx: &mut Tx, v: &Violation) -> Result<bool, Error> {
    let evidence = serde_json::to_string(&v.facts.evidence).map_err(|e| Error::internal(format!("evidence: {e}")))?;
    let inserted = sql!(
        tx,
        execute,
        "INSERT INTO violations (id, violation_type, responsible_user_id, department_id, platform_account_id, \
             description, evidence, severity, state, detector, detection_key, created_at, handling, decided_by, \
             decided_at, rectification_id, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) \
         ON CONFLICT (detection_key) DO NOTHING",
        v.id.to_string(),
        v.facts.kind.code,
        v.facts.responsible.to_string(),
        text_of(v.facts.department),
        text_of(v.facts.account),
        &v.facts.description,
        evidence,
        v.severity.as_str(),
        v.state.as_str(),
        &v.detector,
        &v.detection_key,
        v.created_at,
        &v.handling,
        text_of(v.decided_by),
        v.decided_at,
        text_of(v.rectification),
        v.version
    )
    .map_err(db_error)?;
    Ok(inserted == 1)
}

/// Saves a decided record if nobody changed it since `expected_version`.
pub async fn save(tx: &mut Tx, v: &Violation, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE violations SET severity = $2, state = $3, handling = $4, decided_by = $5, decided_at = $6, \
             rectification_id = $7, version = $8 WHERE id = $1 AND version = $9",
        v.id.to_string(),
        v.severity.as_str(),
        v.state.as_str(),
        &v.handling,
        text_of(v.decided_by),
        v.decided_at,
        text_of(v.rectification),
        v.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "violation")
}

/// One record.
pub async fn get(tx: &mut Tx, violation: ViolationId) -> Result<Option<Violation>, Error> {
    get_by_id::<Row, _>(tx, "violations", violation).await
}

/// One record, locked for a decision the grant allows.
pub async fn lock(tx: &mut Tx, violation: ViolationId, grant: &Authorized) -> Result<Violation, Error> {
    let v: Violation = lock_by_id::<Row, _>(tx, "violations", "violation", violation, grant).await?;
    grant.ensure_covers(v.facts.department, v.facts.account.as_slice())?;
    Ok(v)
}

/// What a list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct ViolationFilter {
    /// Only this department's.
    pub department: Option<DepartmentId>,
    /// Only in this state.
    pub state: Option<State>,
    /// Only naming this person.
    pub responsible: Option<UserId>,
}

/// Records, the newest first, after the cursor (created_at, id).
pub async fn list(
    tx: &mut Tx,
    f: &ViolationFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Violation>, Error> {
    // 9999-12-31: every record is before it.
    let (before, before_id) = after.unwrap_or((
        DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        String::new(),
    ));
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM violations WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) \
         AND ($3 = '' OR responsible_user_id = $3) \
         AND (created_at < $4 OR (created_at = $4 AND id < $5)) \
         ORDER BY created_at DESC, id DESC LIMIT $6",
        text_of(f.department),
        f.state.map(State::as_str).unwrap_or_default(),
        text_of(f.responsible),
        before,
        before_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Violation::try_from).collect()
}

/// Whether a finding was proposed already.
pub async fn detected(tx: &mut Tx, key: &str) -> Result<bool, Error> {
    let n: i64 =
        sql!(tx, scalar_one, "SELECT COUNT(*) FROM violations WHERE detection_key = $1", key).map_err(db_error)?;
    Ok(n > 0)
}

/// The id of the first event of `action` about (`resource_type`, `resource_id`).
pub async fn event_about(
    tx: &mut Tx,
    action: &str,
    resource_type: &str,
    resource_id: &str,
) -> Result<Option<String>, Error> {
    sql!(
        tx,
        scalar_optional,
        "SELECT id FROM audit_events WHERE action = $1 AND resource_type = $2 AND resource_id = $3 \
         ORDER BY sequence LIMIT 1",
        action,
        resource_type,
        resource_id
    )
    .map_err(db_error)
}
