//! Security incidents in SQL. The steps and corrective actions are JSON lists.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, SecurityIncidentId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::column::{id, optional_id, parsed, text_of};
use govmedia_kit::db::{Tx, db_error, get_by_id, is_unique_violation, lock_by_id, saved};
use govmedia_kit::sql;
use serde::{Deserialize, Serialize};

use crate::domain::security_incident::{Incident, Kind, Severity, State, Step, StepKind};

#[derive(Serialize, Deserialize)]
struct StoredStep {
    kind: String,
    detail: String,
    by: String,
    at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    kind: String,
    severity: String,
    title: String,
    description: String,
    department_id: String,
    platform_account_id: String,
    publication_id: String,
    account_incident_id: String,
    state: String,
    steps: String,
    reported_to: String,
    root_cause: String,
    corrective_actions: String,
    reported_by: String,
    reported_at: DateTime<Utc>,
    closed_by: String,
    closed_at: Option<DateTime<Utc>>,
    version: i64,
}

fn decode<T: for<'de> Deserialize<'de>>(column: &str, text: &str) -> Result<T, Error> {
    serde_json::from_str(text).map_err(|e| Error::internal(format!("{column} does not decode: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::internal(format!("cannot encode an incident: {e}")))
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

impl TryFrom<Row> for Incident {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        const STEPS: &str = "security_incidents.steps";
        let steps: Vec<StoredStep> = decode(STEPS, &r.steps)?;
        Ok(Incident {
            id: id("security_incidents.id", &r.id)?,
            kind: parsed("security_incidents.kind", &r.kind, Kind::parse)?,
            severity: parsed("security_incidents.severity", &r.severity, Severity::parse)?,
            title: r.title,
            description: r.description,
            department: id("security_incidents.department_id", &r.department_id)?,
            account: optional_id("security_incidents.platform_account_id", &r.platform_account_id)?,
            publication: non_empty(r.publication_id),
            account_incident: non_empty(r.account_incident_id),
            state: parsed("security_incidents.state", &r.state, State::parse)?,
            steps: steps
                .into_iter()
                .map(|s| {
                    Ok::<_, Error>(Step {
                        kind: parsed(STEPS, &s.kind, StepKind::parse)?,
                        detail: s.detail,
                        by: id(STEPS, &s.by)?,
                        at: s.at,
                    })
                })
                .collect::<Result<_, _>>()?,
            reported_to: r.reported_to,
            root_cause: r.root_cause,
            corrective_actions: decode("security_incidents.corrective_actions", &r.corrective_actions)?,
            reported_by: id("security_incidents.reported_by", &r.reported_by)?,
            reported_at: r.reported_at,
            closed_by: optional_id("security_incidents.closed_by", &r.closed_by)?,
            closed_at: r.closed_at,
            version: r.version,
        })
    }
}

fn steps_json(i: &Incident) -> Result<String, Error> {
    let steps: Vec<StoredStep> = i
        .steps
        .iter()
        .map(|s| StoredStep {
            kind: s.kind.as_str().to_owned(),
            detail: s.detail.clone(),
            by: s.by.to_string(),
            at: s.at,
        })
        .collect();
    encode(&steps)
}

/// Writes a new incident; FAILED_PRECONDITION when identity's incident is linked already.
pub async fn insert(tx: &mut Tx, i: &Incident) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO security_incidents (id, kind, severity, title, description, department_id, platform_account_id, \
             publication_id, account_incident_id, state, steps, reported_to, root_cause, corrective_actions, \
             reported_by, reported_at, closed_by, closed_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        i.id.to_string(),
        i.kind.as_str(),
        i.severity.as_str(),
        &i.title,
        &i.description,
        i.department.to_string(),
        text_of(i.account),
        i.publication.clone().unwrap_or_default(),
        i.account_incident.clone().unwrap_or_default(),
        i.state.as_str(),
        steps_json(i)?,
        &i.reported_to,
        &i.root_cause,
        encode(&i.corrective_actions)?,
        i.reported_by.to_string(),
        i.reported_at,
        text_of(i.closed_by),
        i.closed_at,
        i.version
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::rule(
                "R2.3.3",
                format!("account incident {}", i.account_incident.clone().unwrap_or_default()),
                "is linked to a security incident already",
            )
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

/// Saves a changed incident if nobody changed it since `expected_version`.
pub async fn save(tx: &mut Tx, i: &Incident, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE security_incidents SET state = $2, steps = $3, reported_to = $4, root_cause = $5, \
             corrective_actions = $6, closed_by = $7, closed_at = $8, version = $9 WHERE id = $1 AND version = $10",
        i.id.to_string(),
        i.state.as_str(),
        steps_json(i)?,
        &i.reported_to,
        &i.root_cause,
        encode(&i.corrective_actions)?,
        text_of(i.closed_by),
        i.closed_at,
        i.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "security incident")
}

/// One incident.
pub async fn get(tx: &mut Tx, incident: SecurityIncidentId) -> Result<Option<Incident>, Error> {
    get_by_id::<Row, _>(tx, "security_incidents", incident).await
}

/// One incident, locked for a change the grant allows.
pub async fn lock(tx: &mut Tx, incident: SecurityIncidentId, grant: &Authorized) -> Result<Incident, Error> {
    let i: Incident = lock_by_id::<Row, _>(tx, "security_incidents", "security incident", incident, grant).await?;
    grant.ensure_covers(Some(i.department), i.account.as_slice())?;
    Ok(i)
}

/// What a list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// Only this department's.
    pub department: Option<DepartmentId>,
    /// Only in this state.
    pub state: Option<State>,
    /// Only of this kind.
    pub kind: Option<Kind>,
    /// Only concerning this account.
    pub account: Option<PlatformAccountId>,
}

/// Incidents, the newest first, after `after` (reported at, id).
pub async fn list(
    tx: &mut Tx,
    f: &IncidentFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Incident>, Error> {
    let (before, before_id) = after.unwrap_or((
        DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        String::new(),
    ));
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM security_incidents WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) \
         AND ($3 = '' OR kind = $3) AND ($4 = '' OR platform_account_id = $4) \
         AND (reported_at < $5 OR (reported_at = $5 AND id < $6)) ORDER BY reported_at DESC, id DESC LIMIT $7",
        text_of(f.department),
        f.state.map(State::as_str).unwrap_or_default(),
        f.kind.map(Kind::as_str).unwrap_or_default(),
        text_of(f.account),
        before,
        before_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Incident::try_from).collect()
}
