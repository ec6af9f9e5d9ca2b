//! Platform accounts, their profile revisions, credentials and incidents.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, IncidentId, PlatformAccountId, UserId};
use govmedia_kit::db::{Dialect, Tx, db_error, get_by_id, is_unique_violation, saved};
use govmedia_kit::{on_tx, sql};

use super::{far_future, id};
use crate::domain::account::{
    AccountState, Credential, CredentialKind, Evidence, FilingStatus, Incident, IncidentAction, IncidentActionKind,
    IncidentState, Platform, PlatformAccount, Profile, Revision,
};
use crate::domain::sealing::CredentialBinding;

fn parse<T>(column: &str, value: &str, f: impl Fn(&str) -> Option<T>) -> Result<T, Error> {
    f(value).ok_or_else(|| Error::internal(format!("stored {column} {value:?} is not valid")))
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    id: String,
    platform: String,
    handle: String,
    display_name: String,
    avatar_url: String,
    bio: String,
    department_id: String,
    responsible_user_id: String,
    filing_status: String,
    filing_number: String,
    filing_date: Option<DateTime<Utc>>,
    state: String,
    state_reason: String,
    revision: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<AccountRow> for PlatformAccount {
    type Error = Error;

    fn try_from(r: AccountRow) -> Result<Self, Error> {
        Ok(PlatformAccount {
            id: id("platform_accounts.id", &r.id)?,
            platform: parse("platform", &r.platform, Platform::parse)?,
            handle: r.handle,
            profile: Profile { display_name: r.display_name, avatar_url: r.avatar_url, bio: r.bio },
            department: id("platform_accounts.department_id", &r.department_id)?,
            responsible: id("platform_accounts.responsible_user_id", &r.responsible_user_id)?,
            filing_status: parse("filing_status", &r.filing_status, FilingStatus::parse)?,
            filing_number: r.filing_number,
            filing_date: r.filing_date,
            state: parse("state", &r.state, AccountState::parse)?,
            state_reason: r.state_reason,
            revision: r.revision,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// Inserts an account; a taken platform handle is ALREADY_EXISTS.
pub async fn insert_account(tx: &mut Tx, a: &PlatformAccount) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO platform_accounts (id, platform, handle, display_name, avatar_url, bio, department_id, \
         responsible_user_id, filing_status, filing_number, filing_date, state, state_reason, revision, created_at, \
         updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        a.id.to_string(),
        a.platform.as_str(),
        &a.handle,
        &a.profile.display_name,
        &a.profile.avatar_url,
        &a.profile.bio,
        a.department.to_string(),
        a.responsible.to_string(),
        a.filing_status.as_str(),
        &a.filing_number,
        a.filing_date,
        a.state.as_str(),
        &a.state_reason,
        a.revision,
        a.created_at,
        a.updated_at,
        a.version
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::AlreadyExists {
                resource_type: "platform_account",
                key: format!("{} {}", a.platform.as_str(), a.handle),
            }
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

/// Saves every mutable field if the version is unchanged.
pub async fn save_account(tx: &mut Tx, a: &PlatformAccount, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE platform_accounts SET display_name = $2, avatar_url = $3, bio = $4, department_id = $5, \
             responsible_user_id = $6, filing_status = $7, filing_number = $8, filing_date = $9, state = $10, \
             state_reason = $11, revision = $12, updated_at = $13, version = $14 WHERE id = $1 AND version = $15",
        a.id.to_string(),
        &a.profile.display_name,
        &a.profile.avatar_url,
        &a.profile.bio,
        a.department.to_string(),
        a.responsible.to_string(),
        a.filing_status.as_str(),
        &a.filing_number,
        a.filing_date,
        a.state.as_str(),
        &a.state_reason,
        a.revision,
        a.updated_at,
        a.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "platform account")
}

/// One account, locked for update on PostgreSQL.
pub async fn lock_account(tx: &mut Tx, account: PlatformAccountId) -> Result<Option<PlatformAccount>, Error> {
    let row: Option<AccountRow> = on_tx!(tx, |conn, dialect| {
        let sql = match dialect {
            Dialect::Postgres => "SELECT * FROM platform_accounts WHERE id = $1 FOR UPDATE",
            Dialect::Sqlite => "SELECT * FROM platform_accounts WHERE id = ?1",
        };
        sqlx::query_as(sql).bind(account.to_string()).fetch_optional(conn).await
    })
    .map_err(db_error)?;
    row.map(PlatformAccount::try_from).transpose()
}

/// One account.
pub async fn get_account(tx: &mut Tx, account: PlatformAccountId) -> Result<Option<PlatformAccount>, Error> {
    get_by_id::<AccountRow, _>(tx, "platform_accounts", account).await
}

/// Filters of [`list_accounts`].
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Only this platform.
    pub platform: Option<Platform>,
    /// Only this state.
    pub state: Option<AccountState>,
    /// Only this department.
    pub department: Option<DepartmentId>,
    /// Only this responsible person.
    pub responsible: Option<UserId>,
}

/// Accounts ordered by (platform, handle) after the cursor.
pub async fn list_accounts(
    tx: &mut Tx,
    f: &AccountFilter,
    after: Option<(String, String)>,
    limit: u32,
) -> Result<Vec<PlatformAccount>, Error> {
    let (after_platform, after_handle) = after.unwrap_or_default();
    let rows: Vec<AccountRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM platform_accounts WHERE ($1 = '' OR platform = $1) AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR department_id = $3) AND ($4 = '' OR responsible_user_id = $4) \
             AND (platform > $5 OR (platform = $5 AND handle > $6)) ORDER BY platform, handle LIMIT $7",
        f.platform.map(Platform::as_str).unwrap_or(""),
        f.state.map(AccountState::as_str).unwrap_or(""),
        f.department.map(|d| d.to_string()).unwrap_or_default(),
        f.responsible.map(|u| u.to_string()).unwrap_or_default(),
        after_platform,
        after_handle,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(PlatformAccount::try_from).collect()
}

/// Records a profile revision.
pub async fn insert_revision(tx: &mut Tx, account: PlatformAccountId, r: &Revision) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO platform_account_revisions (platform_account_id, revision, display_name, avatar_url, bio, \
             responsible_user_id, changed_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        account.to_string(),
        r.revision,
        &r.profile.display_name,
        &r.profile.avatar_url,
        &r.profile.bio,
        r.responsible.to_string(),
        &r.changed_by,
        r.created_at
    )
    .map_err(db_error)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct RevisionRow {
    revision: i64,
    display_name: String,
    avatar_url: String,
    bio: String,
    responsible_user_id: String,
    changed_by: String,
    created_at: DateTime<Utc>,
}

/// Revisions newest first, below `before`.
pub async fn list_revisions(
    tx: &mut Tx,
    account: PlatformAccountId,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<Revision>, Error> {
    let rows: Vec<RevisionRow> = sql!(
        tx,
        fetch_all,
        "SELECT revision, display_name, avatar_url, bio, responsible_user_id, changed_by, created_at FROM \
         platform_account_revisions WHERE platform_account_id = $1 AND revision < $2 ORDER BY revision DESC LIMIT \
         $3",
        account.to_string(),
        before.unwrap_or(i64::MAX),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            Ok(Revision {
                revision: r.revision,
                profile: Profile { display_name: r.display_name, avatar_url: r.avatar_url, bio: r.bio },
                responsible: id("platform_account_revisions.responsible_user_id", &r.responsible_user_id)?,
                changed_by: r.changed_by,
                created_at: r.created_at,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    platform_account_id: String,
    kind: String,
    login_name: String,
    sealed_secret: Vec<u8>,
    sealing_key_id: String,
    sealing_binding: i64,
    rotated_at: DateTime<Utc>,
    rotation_due_at: DateTime<Utc>,
    rotated_by: String,
    rotation_count: i64,
}

impl TryFrom<CredentialRow> for Credential {
    type Error = Error;

    fn try_from(r: CredentialRow) -> Result<Self, Error> {
        Ok(Credential {
            account: id("account_credentials.platform_account_id", &r.platform_account_id)?,
            kind: parse("credential kind", &r.kind, CredentialKind::parse)?,
            login_name: r.login_name,
            sealed_secret: r.sealed_secret,
            sealing_key_id: r.sealing_key_id,
            binding: CredentialBinding::from_i64(r.sealing_binding)
                .ok_or_else(|| Error::internal(format!("unknown credential binding {}", r.sealing_binding)))?,
            rotated_at: r.rotated_at,
            rotation_due_at: r.rotation_due_at,
            rotated_by: r.rotated_by,
            rotation_count: r.rotation_count,
        })
    }
}

/// Stores (or replaces) an account's credential.
pub async fn upsert_credential(tx: &mut Tx, c: &Credential) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO account_credentials (platform_account_id, kind, login_name, sealed_secret, sealing_key_id, \
             rotated_at, rotation_due_at, rotated_by, rotation_count, sealing_binding) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (platform_account_id) DO UPDATE SET kind = $2, login_name = $3, sealed_secret = $4, \
             sealing_key_id = $5, rotated_at = $6, rotation_due_at = $7, rotated_by = $8, rotation_count = $9, \
             sealing_binding = $10",
        c.account.to_string(),
        c.kind.as_str(),
        &c.login_name,
        &c.sealed_secret,
        &c.sealing_key_id,
        c.rotated_at,
        c.rotation_due_at,
        &c.rotated_by,
        c.rotation_count,
        c.binding.as_i64()
    )
    .map_err(db_error)?;
    Ok(())
}

/// Credentials sealed with `binding`, locked for re-sealing.
pub async fn credentials_sealed_as(tx: &mut Tx, binding: CredentialBinding) -> Result<Vec<Credential>, Error> {
    let rows: Vec<CredentialRow> = on_tx!(tx, |conn, dialect| {
        let sql = match dialect {
            Dialect::Postgres => {
                "SELECT * FROM account_credentials WHERE sealing_binding = $1 ORDER BY platform_account_id FOR UPDATE"
            }
            Dialect::Sqlite => {
                "SELECT * FROM account_credentials WHERE sealing_binding = ?1 ORDER BY platform_account_id"
            }
        };
        sqlx::query_as(sql).bind(binding.as_i64()).fetch_all(conn).await
    })
    .map_err(db_error)?;
    rows.into_iter().map(Credential::try_from).collect()
}

/// Replaces a credential's sealed secret (same secret, new seal) without touching its
/// rotation: re-sealing is not a rotation.
pub async fn reseal_credential(tx: &mut Tx, c: &Credential) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "UPDATE account_credentials SET sealed_secret = $2, sealing_key_id = $3, sealing_binding = $4 \
             WHERE platform_account_id = $1",
        c.account.to_string(),
        &c.sealed_secret,
        &c.sealing_key_id,
        c.binding.as_i64()
    )
    .map_err(db_error)?;
    Ok(())
}

/// An account's credential.
pub async fn get_credential(tx: &mut Tx, account: PlatformAccountId) -> Result<Option<Credential>, Error> {
    let row: Option<CredentialRow> = sql!(
        tx,
        fetch_optional,
        "SELECT * FROM account_credentials WHERE platform_account_id = $1",
        account.to_string()
    )
    .map_err(db_error)?;
    row.map(Credential::try_from).transpose()
}

/// Credentials due before `due_before`, most overdue first, after the cursor.
pub async fn list_due_credentials(
    tx: &mut Tx,
    due_before: DateTime<Utc>,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Credential>, Error> {
    let (after_due, after_id) = after.unwrap_or((super::epoch(), String::new()));
    let rows: Vec<CredentialRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM account_credentials WHERE rotation_due_at < $1 \
             AND (rotation_due_at > $2 OR (rotation_due_at = $2 AND platform_account_id > $3)) \
             ORDER BY rotation_due_at, platform_account_id LIMIT $4",
        due_before.min(far_future()),
        after_due,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Credential::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: String,
    platform_account_id: String,
    description: String,
    reported_by: String,
    reported_at: DateTime<Utc>,
    state: String,
    resolved_by: Option<String>,
    resolved_at: Option<DateTime<Utc>>,
    resolution: Option<String>,
    version: i64,
}

#[derive(sqlx::FromRow)]
struct ActionRow {
    seq: i64,
    kind: String,
    note: String,
    actor_id: String,
    evidence_uri: String,
    evidence_sha256: String,
    evidence_description: String,
    created_at: DateTime<Utc>,
}

/// Stores a new incident (its actions are added with [`insert_action`]).
pub async fn insert_incident(tx: &mut Tx, i: &Incident) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO account_incidents (id, platform_account_id, description, reported_by, reported_at, state, \
         version) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        i.id.to_string(),
        i.account.to_string(),
        &i.description,
        &i.reported_by,
        i.reported_at,
        i.state.as_str(),
        i.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves an incident's state if its version is unchanged.
pub async fn save_incident(tx: &mut Tx, i: &Incident, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE account_incidents SET state = $2, resolved_by = $3, resolved_at = $4, resolution = $5, version = $6 \
             WHERE id = $1 AND version = $7",
        i.id.to_string(),
        i.state.as_str(),
        &i.resolved_by,
        i.resolved_at,
        &i.resolution,
        i.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "incident")
}

/// Appends an action to an incident.
pub async fn insert_action(tx: &mut Tx, incident: IncidentId, a: &IncidentAction) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO incident_actions (incident_id, seq, kind, note, actor_id, evidence_uri, evidence_sha256, \
             evidence_description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        incident.to_string(),
        a.seq,
        a.kind.as_str(),
        &a.note,
        &a.actor,
        &a.evidence.uri,
        &a.evidence.sha256,
        &a.evidence.description,
        a.created_at
    )
    .map_err(db_error)?;
    Ok(())
}

async fn actions_of(tx: &mut Tx, incident: &str) -> Result<Vec<IncidentAction>, Error> {
    let rows: Vec<ActionRow> = sql!(
        tx,
        fetch_all,
        "SELECT seq, kind, note, actor_id, evidence_uri, evidence_sha256, evidence_description, created_at \
             FROM incident_actions WHERE incident_id = $1 ORDER BY seq",
        incident
    )
    .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            Ok(IncidentAction {
                seq: r.seq,
                kind: parse("incident action kind", &r.kind, IncidentActionKind::parse)?,
                note: r.note,
                actor: r.actor_id,
                evidence: Evidence {
                    uri: r.evidence_uri,
                    sha256: r.evidence_sha256,
                    description: r.evidence_description,
                },
                created_at: r.created_at,
            })
        })
        .collect()
}

async fn incident_from(tx: &mut Tx, r: IncidentRow) -> Result<Incident, Error> {
    let actions = actions_of(tx, &r.id).await?;
    Ok(Incident {
        id: id("account_incidents.id", &r.id)?,
        account: id("account_incidents.platform_account_id", &r.platform_account_id)?,
        description: r.description,
        reported_by: r.reported_by,
        reported_at: r.reported_at,
        state: parse("incident state", &r.state, IncidentState::parse)?,
        resolved_by: r.resolved_by,
        resolved_at: r.resolved_at,
        resolution: r.resolution,
        version: r.version,
        actions,
    })
}

/// One incident with its actions.
pub async fn get_incident(tx: &mut Tx, incident: IncidentId) -> Result<Option<Incident>, Error> {
    let row: Option<IncidentRow> = sql!(
        tx,
        fetch_optional,
        "SELECT id, platform_account_id, description, reported_by, reported_at, state, resolved_by, resolved_at, \
             resolution, version FROM account_incidents WHERE id = $1",
        incident.to_string()
    )
    .map_err(db_error)?;
    match row {
        Some(r) => Ok(Some(incident_from(tx, r).await?)),
        None => Ok(None),
    }
}

/// Incidents newest first (by id, which is time-ordered), filtered, before the cursor.
pub async fn list_incidents(
    tx: &mut Tx,
    account: Option<PlatformAccountId>,
    state: Option<IncidentState>,
    before: Option<IncidentId>,
    limit: u32,
) -> Result<Vec<Incident>, Error> {
    let rows: Vec<IncidentRow> = sql!(
        tx,
        fetch_all,
        "SELECT id, platform_account_id, description, reported_by, reported_at, state, resolved_by, resolved_at, \
             resolution, version FROM account_incidents WHERE ($1 = '' OR platform_account_id = $1) \
             AND ($2 = '' OR state = $2) AND ($3 = '' OR id < $3) ORDER BY id DESC LIMIT $4",
        account.map(|a| a.to_string()).unwrap_or_default(),
        state.map(IncidentState::as_str).unwrap_or(""),
        before.map(|b| b.to_string()).unwrap_or_default(),
        i64::from(limit)
    )
    .map_err(db_error)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(incident_from(tx, row).await?);
    }
    Ok(out)
}

/// How many incidents of an account are open.
pub async fn open_incident_count(tx: &mut Tx, account: PlatformAccountId) -> Result<usize, Error> {
    let n: i64 = on_tx!(tx, |conn, dialect| {
        sqlx::query_scalar(
            &dialect.sql("SELECT COUNT(*) FROM account_incidents WHERE platform_account_id = $1 AND state = 'open'"),
        )
        .bind(account.to_string())
        .fetch_one(conn)
        .await
    })
    .map_err(db_error)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The handles of the accounts, not closed, whose responsible person is `user` (R2.1.1).
pub async fn responsible_for(tx: &mut Tx, user: UserId) -> Result<Vec<String>, Error> {
    sql!(
        tx,
        scalar_all,
        "SELECT handle FROM platform_accounts WHERE responsible_user_id = $1 AND state <> 'closed' ORDER BY handle",
        user.to_string()
    )
    .map_err(db_error)
}
