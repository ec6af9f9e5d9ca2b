//! Security checklists, schedules, checks and hidden dangers in SQL (R7.2.2). A
//! checklist version's items and a check's items are stored as JSON: they are read and
//! written whole (a check's under its row lock), and never queried item by item.

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{
    DepartmentId, HiddenDangerId, SecurityCheckId, SecurityCheckScheduleId, SecurityChecklistId, UserId,
};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::column::{id, optional_id, parsed, text_of};
use govmedia_kit::db::{Tx, db_error, get_by_id, is_unique_violation, lock_by_id, saved};
use govmedia_kit::sql;
use serde::{Deserialize, Serialize};

use crate::domain::security_check::{
    Check, CheckItem, CheckState, Checklist, ChecklistItem, ChecklistVersion, DangerState, HazardSpec, HiddenDanger,
    ItemResult, Schedule, ScheduleState, Severity, Target,
};

fn date(column: &str, s: &str) -> Result<NaiveDate, Error> {
    s.parse().map_err(|_| Error::internal(format!("{column} holds {s:?}, not a date")))
}

fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

fn target(column: &str, department: &str, account: &str) -> Result<Target, Error> {
    Ok(Target {
        department: id(&format!("{column}.department_id"), department)?,
        account: optional_id(column, account)?,
    })
}

// ---- checklists

/// A checklist item as stored.
#[derive(Serialize, Deserialize)]
struct StoredItem {
    code: String,
    text: String,
    #[serde(default)]
    guidance: String,
}

impl From<&ChecklistItem> for StoredItem {
    fn from(i: &ChecklistItem) -> Self {
        StoredItem { code: i.code.clone(), text: i.text.clone(), guidance: i.guidance.clone() }
    }
}

impl From<StoredItem> for ChecklistItem {
    fn from(i: StoredItem) -> Self {
        ChecklistItem { code: i.code, text: i.text, guidance: i.guidance }
    }
}

fn json<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal(format!("cannot encode the items: {e}")))
}

fn from_json<T: for<'de> Deserialize<'de>>(column: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::internal(format!("{column} does not decode: {e}")))
}

#[derive(sqlx::FromRow)]
struct ChecklistRow {
    id: String,
    name: String,
    description: String,
    current_version: i64,
    version: i64,
}

impl TryFrom<ChecklistRow> for Checklist {
    type Error = Error;

    fn try_from(r: ChecklistRow) -> Result<Self, Error> {
        Ok(Checklist {
            id: id("security_checklists.id", &r.id)?,
            name: r.name,
            description: r.description,
            current_version: count(r.current_version),
            version: r.version,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VersionRow {
    checklist_id: String,
    version: i64,
    items: String,
    change_note: String,
    created_by: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<VersionRow> for ChecklistVersion {
    type Error = Error;

    fn try_from(r: VersionRow) -> Result<Self, Error> {
        let items: Vec<StoredItem> = from_json("security_checklist_versions.items", &r.items)?;
        Ok(ChecklistVersion {
            checklist: id("security_checklist_versions.checklist_id", &r.checklist_id)?,
            version: count(r.version),
            items: items.into_iter().map(ChecklistItem::from).collect(),
            change_note: r.change_note,
            created_by: id("security_checklist_versions.created_by", &r.created_by)?,
            created_at: r.created_at,
        })
    }
}

/// Writes a new checklist; FAILED_PRECONDITION when the name is taken.
pub async fn insert_checklist(tx: &mut Tx, c: &Checklist) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO security_checklists (id, name, description, current_version, version) VALUES ($1, $2, $3, $4, $5)",
        c.id.to_string(),
        &c.name,
        &c.description,
        i64::from(c.current_version),
        c.version
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::rule(crate::domain::security_check::RULE, format!("checklist {:?}", c.name), "the name is taken")
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

/// Writes a version of a checklist.
pub async fn insert_version(tx: &mut Tx, v: &ChecklistVersion) -> Result<(), Error> {
    let items: Vec<StoredItem> = v.items.iter().map(StoredItem::from).collect();
    sql!(
        tx,
        execute,
        "INSERT INTO security_checklist_versions (checklist_id, version, items, change_note, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
        v.checklist.to_string(),
        i64::from(v.version),
        json(&items)?,
        &v.change_note,
        v.created_by.to_string(),
        v.created_at
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a revised checklist if nobody changed it since `expected_version`.
pub async fn save_checklist(tx: &mut Tx, c: &Checklist, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE security_checklists SET current_version = $2, version = $3 WHERE id = $1 AND version = $4",
        c.id.to_string(),
        i64::from(c.current_version),
        c.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "checklist")
}

/// One checklist.
pub async fn get_checklist(tx: &mut Tx, checklist: SecurityChecklistId) -> Result<Option<Checklist>, Error> {
    get_by_id::<ChecklistRow, _>(tx, "security_checklists", checklist).await
}

/// One checklist, locked for a revision.
pub async fn lock_checklist(
    tx: &mut Tx,
    checklist: SecurityChecklistId,
    grant: &Authorized,
) -> Result<Checklist, Error> {
    lock_by_id::<ChecklistRow, _>(tx, "security_checklists", "checklist", checklist, grant).await
}

/// One version of a checklist.
pub async fn get_version(
    tx: &mut Tx,
    checklist: SecurityChecklistId,
    version: u32,
) -> Result<Option<ChecklistVersion>, Error> {
    let row: Option<VersionRow> = sql!(
        tx,
        fetch_optional,
        "SELECT * FROM security_checklist_versions WHERE checklist_id = $1 AND version = $2",
        checklist.to_string(),
        i64::from(version)
    )
    .map_err(db_error)?;
    row.map(ChecklistVersion::try_from).transpose()
}

/// Checklists by name, after `after`.
pub async fn list_checklists(tx: &mut Tx, after: Option<String>, limit: u32) -> Result<Vec<Checklist>, Error> {
    let rows: Vec<ChecklistRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM security_checklists WHERE name > $1 ORDER BY name LIMIT $2",
        after.unwrap_or_default(),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Checklist::try_from).collect()
}

// ---- schedules

#[derive(sqlx::FromRow)]
struct ScheduleRow {
    id: String,
    checklist_id: String,
    department_id: String,
    platform_account_id: String,
    interval_days: i64,
    next_due_date: String,
    state: String,
    last_check_id: String,
    created_by: String,
    created_at: DateTime<Utc>,
    cancel_reason: String,
    version: i64,
}

impl TryFrom<ScheduleRow> for Schedule {
    type Error = Error;

    fn try_from(r: ScheduleRow) -> Result<Self, Error> {
        Ok(Schedule {
            id: id("security_check_schedules.id", &r.id)?,
            checklist: id("security_check_schedules.checklist_id", &r.checklist_id)?,
            target: target("security_check_schedules", &r.department_id, &r.platform_account_id)?,
            interval_days: count(r.interval_days),
            next_due: date("security_check_schedules.next_due_date", &r.next_due_date)?,
            state: parsed("security_check_schedules.state", &r.state, ScheduleState::parse)?,
            last_check: optional_id("security_check_schedules.last_check_id", &r.last_check_id)?,
            created_by: id("security_check_schedules.created_by", &r.created_by)?,
            created_at: r.created_at,
            cancel_reason: r.cancel_reason,
            version: r.version,
        })
    }
}

/// Writes a new schedule.
pub async fn insert_schedule(tx: &mut Tx, s: &Schedule) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO security_check_schedules (id, checklist_id, department_id, platform_account_id, interval_days, \
             next_due_date, state, last_check_id, created_by, created_at, cancel_reason, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        s.id.to_string(),
        s.checklist.to_string(),
        s.target.department.to_string(),
        text_of(s.target.account),
        i64::from(s.interval_days),
        s.next_due.to_string(),
        s.state.as_str(),
        text_of(s.last_check),
        s.created_by.to_string(),
        s.created_at,
        &s.cancel_reason,
        s.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a changed schedule if nobody changed it since `expected_version`.
pub async fn save_schedule(tx: &mut Tx, s: &Schedule, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE security_check_schedules SET next_due_date = $2, state = $3, last_check_id = $4, cancel_reason = $5, \
             version = $6 WHERE id = $1 AND version = $7",
        s.id.to_string(),
        s.next_due.to_string(),
        s.state.as_str(),
        text_of(s.last_check),
        &s.cancel_reason,
        s.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "security check schedule")
}

/// One schedule.
pub async fn get_schedule(tx: &mut Tx, schedule: SecurityCheckScheduleId) -> Result<Option<Schedule>, Error> {
    get_by_id::<ScheduleRow, _>(tx, "security_check_schedules", schedule).await
}

/// One schedule, locked for a change the grant allows.
pub async fn lock_schedule(
    tx: &mut Tx,
    schedule: SecurityCheckScheduleId,
    grant: &Authorized,
) -> Result<Schedule, Error> {
    let s: Schedule =
        lock_by_id::<ScheduleRow, _>(tx, "security_check_schedules", "security check schedule", schedule, grant)
            .await?;
    grant.ensure_covers(Some(s.target.department), s.target.account.as_slice())?;
    Ok(s)
}

/// Schedules by next due date; with `due_on`, only active ones due on or before it.
pub async fn list_schedules(
    tx: &mut Tx,
    due_on: Option<NaiveDate>,
    after: Option<(String, String)>,
    limit: u32,
) -> Result<Vec<Schedule>, Error> {
    let (after_date, after_id) = after.unwrap_or_default();
    let rows: Vec<ScheduleRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM security_check_schedules WHERE ($1 = '' OR (state = 'active' AND next_due_date <= $1)) \
         AND (next_due_date > $2 OR (next_due_date = $2 AND id > $3)) ORDER BY next_due_date, id LIMIT $4",
        due_on.map(|d| d.to_string()).unwrap_or_default(),
        after_date,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Schedule::try_from).collect()
}

// ---- checks

/// A check item as stored.
#[derive(Serialize, Deserialize)]
struct StoredCheckItem {
    code: String,
    text: String,
    #[serde(default)]
    guidance: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    result: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    evidence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hazard: Option<StoredHazard>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    hidden_danger_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    recorded_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recorded_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize)]
struct StoredHazard {
    description: String,
    owner: String,
    severity: String,
    working_days: u32,
}

impl From<&CheckItem> for StoredCheckItem {
    fn from(i: &CheckItem) -> Self {
        StoredCheckItem {
            code: i.item.code.clone(),
            text: i.item.text.clone(),
            guidance: i.item.guidance.clone(),
            result: i.result.map(|r| r.as_str().to_owned()).unwrap_or_default(),
            evidence: i.evidence.clone(),
            hazard: i.hazard.as_ref().map(|h| StoredHazard {
                description: h.description.clone(),
                owner: h.owner.to_string(),
                severity: h.severity.as_str().to_owned(),
                working_days: h.working_days,
            }),
            hidden_danger_id: text_of(i.hidden_danger),
            recorded_by: text_of(i.recorded_by),
            recorded_at: i.recorded_at,
        }
    }
}

impl TryFrom<StoredCheckItem> for CheckItem {
    type Error = Error;

    fn try_from(i: StoredCheckItem) -> Result<Self, Error> {
        const C: &str = "security_checks.items";
        Ok(CheckItem {
            item: ChecklistItem { code: i.code, text: i.text, guidance: i.guidance },
            result: if i.result.is_empty() { None } else { Some(parsed(C, &i.result, ItemResult::parse)?) },
            evidence: i.evidence,
            hazard: i
                .hazard
                .map(|h| {
                    Ok::<_, Error>(HazardSpec {
                        description: h.description,
                        owner: id(C, &h.owner)?,
                        severity: parsed(C, &h.severity, Severity::parse)?,
                        working_days: h.working_days,
                    })
                })
                .transpose()?,
            hidden_danger: optional_id(C, &i.hidden_danger_id)?,
            recorded_by: optional_id(C, &i.recorded_by)?,
            recorded_at: i.recorded_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CheckRow {
    id: String,
    checklist_id: String,
    checklist_name: String,
    checklist_version: i64,
    schedule_id: String,
    department_id: String,
    platform_account_id: String,
    state: String,
    items: String,
    conclusion: String,
    started_by: String,
    started_at: DateTime<Utc>,
    completed_by: String,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<CheckRow> for Check {
    type Error = Error;

    fn try_from(r: CheckRow) -> Result<Self, Error> {
        let items: Vec<StoredCheckItem> = from_json("security_checks.items", &r.items)?;
        Ok(Check {
            id: id("security_checks.id", &r.id)?,
            checklist: id("security_checks.checklist_id", &r.checklist_id)?,
            checklist_name: r.checklist_name,
            checklist_version: count(r.checklist_version),
            schedule: optional_id("security_checks.schedule_id", &r.schedule_id)?,
            target: target("security_checks", &r.department_id, &r.platform_account_id)?,
            state: parsed("security_checks.state", &r.state, CheckState::parse)?,
            items: items.into_iter().map(CheckItem::try_from).collect::<Result<_, _>>()?,
            conclusion: r.conclusion,
            started_by: id("security_checks.started_by", &r.started_by)?,
            started_at: r.started_at,
            completed_by: optional_id("security_checks.completed_by", &r.completed_by)?,
            completed_at: r.completed_at,
            version: r.version,
        })
    }
}

fn items_json(c: &Check) -> Result<String, Error> {
    let items: Vec<StoredCheckItem> = c.items.iter().map(StoredCheckItem::from).collect();
    json(&items)
}

/// Writes a new check.
pub async fn insert_check(tx: &mut Tx, c: &Check) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO security_checks (id, checklist_id, checklist_name, checklist_version, schedule_id, department_id, \
             platform_account_id, state, items, conclusion, started_by, started_at, completed_by, completed_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        c.id.to_string(),
        c.checklist.to_string(),
        &c.checklist_name,
        i64::from(c.checklist_version),
        text_of(c.schedule),
        c.target.department.to_string(),
        text_of(c.target.account),
        c.state.as_str(),
        items_json(c)?,
        &c.conclusion,
        c.started_by.to_string(),
        c.started_at,
        text_of(c.completed_by),
        c.completed_at,
        c.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a changed check if nobody changed it since `expected_version`.
pub async fn save_check(tx: &mut Tx, c: &Check, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE security_checks SET state = $2, items = $3, conclusion = $4, completed_by = $5, completed_at = $6, \
             version = $7 WHERE id = $1 AND version = $8",
        c.id.to_string(),
        c.state.as_str(),
        items_json(c)?,
        &c.conclusion,
        text_of(c.completed_by),
        c.completed_at,
        c.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "security check")
}

/// One check.
pub async fn get_check(tx: &mut Tx, check: SecurityCheckId) -> Result<Option<Check>, Error> {
    get_by_id::<CheckRow, _>(tx, "security_checks", check).await
}

/// One check, locked for a change the grant allows.
pub async fn lock_check(tx: &mut Tx, check: SecurityCheckId, grant: &Authorized) -> Result<Check, Error> {
    let c: Check = lock_by_id::<CheckRow, _>(tx, "security_checks", "security check", check, grant).await?;
    grant.ensure_covers(Some(c.target.department), c.target.account.as_slice())?;
    Ok(c)
}

/// What a list of checks is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct CheckFilter {
    /// Only this department's.
    pub department: Option<DepartmentId>,
    /// Only in this state.
    pub state: Option<CheckState>,
    /// Only on this schedule.
    pub schedule: Option<SecurityCheckScheduleId>,
}

/// Checks, the newest first, after `after` (start time, id).
pub async fn list_checks(
    tx: &mut Tx,
    f: &CheckFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Check>, Error> {
    // The first page starts at the end of year 9999 (in a form SQLite's text compares
    // the same way): every check started before it.
    let (after_at, after_id) = after.unwrap_or((
        DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        String::new(),
    ));
    let rows: Vec<CheckRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM security_checks WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) \
         AND ($3 = '' OR schedule_id = $3) AND (started_at < $4 OR (started_at = $4 AND id < $5)) \
         ORDER BY started_at DESC, id DESC LIMIT $6",
        text_of(f.department),
        f.state.map(CheckState::as_str).unwrap_or_default(),
        text_of(f.schedule),
        after_at,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Check::try_from).collect()
}

// ---- hidden dangers

#[derive(sqlx::FromRow)]
struct DangerRow {
    id: String,
    check_id: String,
    item_code: String,
    item_text: String,
    description: String,
    department_id: String,
    platform_account_id: String,
    owner_id: String,
    severity: String,
    working_days: i64,
    due_date: String,
    due_at: DateTime<Utc>,
    state: String,
    fix_evidence: String,
    fix_submitted_by: String,
    fix_submitted_at: Option<DateTime<Utc>>,
    verified_by: String,
    verified_at: Option<DateTime<Utc>>,
    note: String,
    created_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<DangerRow> for HiddenDanger {
    type Error = Error;

    fn try_from(r: DangerRow) -> Result<Self, Error> {
        Ok(HiddenDanger {
            id: id("hidden_dangers.id", &r.id)?,
            check: id("hidden_dangers.check_id", &r.check_id)?,
            item_code: r.item_code,
            item_text: r.item_text,
            description: r.description,
            target: target("hidden_dangers", &r.department_id, &r.platform_account_id)?,
            owner: id("hidden_dangers.owner_id", &r.owner_id)?,
            severity: parsed("hidden_dangers.severity", &r.severity, Severity::parse)?,
            working_days: count(r.working_days),
            due_date: date("hidden_dangers.due_date", &r.due_date)?,
            due_at: r.due_at,
            state: parsed("hidden_dangers.state", &r.state, DangerState::parse)?,
            fix_evidence: r.fix_evidence,
            fix_submitted_by: optional_id("hidden_dangers.fix_submitted_by", &r.fix_submitted_by)?,
            fix_submitted_at: r.fix_submitted_at,
            verified_by: optional_id("hidden_dangers.verified_by", &r.verified_by)?,
            verified_at: r.verified_at,
            note: r.note,
            created_at: r.created_at,
            version: r.version,
        })
    }
}

/// Writes a new hidden danger.
pub async fn insert_danger(tx: &mut Tx, d: &HiddenDanger) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO hidden_dangers (id, check_id, item_code, item_text, description, department_id, \
             platform_account_id, owner_id, severity, working_days, due_date, due_at, state, fix_evidence, \
             fix_submitted_by, fix_submitted_at, verified_by, verified_at, note, created_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)",
        d.id.to_string(),
        d.check.to_string(),
        &d.item_code,
        &d.item_text,
        &d.description,
        d.target.department.to_string(),
        text_of(d.target.account),
        d.owner.to_string(),
        d.severity.as_str(),
        i64::from(d.working_days),
        d.due_date.to_string(),
        d.due_at,
        d.state.as_str(),
        &d.fix_evidence,
        text_of(d.fix_submitted_by),
        d.fix_submitted_at,
        text_of(d.verified_by),
        d.verified_at,
        &d.note,
        d.created_at,
        d.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a changed hidden danger if nobody changed it since `expected_version`.
pub async fn save_danger(tx: &mut Tx, d: &HiddenDanger, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE hidden_dangers SET state = $2, fix_evidence = $3, fix_submitted_by = $4, fix_submitted_at = $5, \
             verified_by = $6, verified_at = $7, note = $8, version = $9 WHERE id = $1 AND version = $10",
        d.id.to_string(),
        d.state.as_str(),
        &d.fix_evidence,
        text_of(d.fix_submitted_by),
        d.fix_submitted_at,
        text_of(d.verified_by),
        d.verified_at,
        &d.note,
        d.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "hidden danger")
}

/// One hidden danger.
pub async fn get_danger(tx: &mut Tx, danger: HiddenDangerId) -> Result<Option<HiddenDanger>, Error> {
    get_by_id::<DangerRow, _>(tx, "hidden_dangers", danger).await
}

/// One hidden danger, locked for a change the grant allows.
pub async fn lock_danger(tx: &mut Tx, danger: HiddenDangerId, grant: &Authorized) -> Result<HiddenDanger, Error> {
    let d: HiddenDanger = lock_by_id::<DangerRow, _>(tx, "hidden_dangers", "hidden danger", danger, grant).await?;
    grant.ensure_covers(Some(d.target.department), d.target.account.as_slice())?;
    Ok(d)
}

/// What a list of hidden dangers is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct DangerFilter {
    /// Only this department's.
    pub department: Option<DepartmentId>,
    /// Only in this state.
    pub state: Option<DangerState>,
    /// Only overdue at this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only this owner's.
    pub owner: Option<UserId>,
    /// Only found by this check.
    pub check: Option<SecurityCheckId>,
}

/// Hidden dangers, the earliest deadline first, after `after` (deadline, id).
pub async fn list_dangers(
    tx: &mut Tx,
    f: &DangerFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<HiddenDanger>, Error> {
    let (after_due, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, String::new()));
    let overdue = f.overdue_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let rows: Vec<DangerRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM hidden_dangers WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) \
         AND ($3 = '' OR owner_id = $3) AND ($4 = '' OR check_id = $4) \
         AND ($5 = 0 OR (state <> 'closed' AND due_at <= $6)) \
         AND (due_at > $7 OR (due_at = $7 AND id > $8)) ORDER BY due_at, id LIMIT $9",
        text_of(f.department),
        f.state.map(DangerState::as_str).unwrap_or_default(),
        text_of(f.owner),
        text_of(f.check),
        i64::from(f.overdue_at.is_some()),
        overdue,
        after_due,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(HiddenDanger::try_from).collect()
}
