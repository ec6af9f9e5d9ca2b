//! Departments, users, password history and service principals.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, ServicePrincipalId, UserId};
use govmedia_kit::db::{Tx, db_error, get_by_id, is_unique_violation, saved};
use govmedia_kit::{on_tx, sql};

use super::{id, opt_id};
use crate::domain::model::{Department, ServicePrincipal, User, UserStatus};

#[derive(sqlx::FromRow)]
struct DepartmentRow {
    id: String,
    name: String,
    code: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<DepartmentRow> for Department {
    type Error = Error;

    fn try_from(r: DepartmentRow) -> Result<Self, Error> {
        Ok(Department {
            id: id("departments.id", &r.id)?,
            name: r.name,
            code: r.code,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

fn unique_or(e: sqlx::Error, resource_type: &'static str, key: &str) -> Error {
    if is_unique_violation(&e) { Error::AlreadyExists { resource_type, key: key.to_owned() } } else { db_error(e) }
}

/// Inserts a department; a taken name or code is ALREADY_EXISTS.
pub async fn insert_department(tx: &mut Tx, d: &Department) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO departments (id, name, code, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6)",
        d.id.to_string(),
        &d.name,
        &d.code,
        d.created_at,
        d.updated_at,
        d.version
    )
    .map_err(|e| unique_or(e, "department", &format!("{} / {}", d.name, d.code)))?;
    Ok(())
}

/// One department.
pub async fn get_department(tx: &mut Tx, department: DepartmentId) -> Result<Option<Department>, Error> {
    get_by_id::<DepartmentRow, _>(tx, "departments", department).await
}

/// Departments ordered by name, after `after_name`.
pub async fn list_departments(tx: &mut Tx, after_name: Option<&str>, limit: u32) -> Result<Vec<Department>, Error> {
    let rows: Vec<DepartmentRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM departments WHERE name > $1 ORDER BY name LIMIT $2",
        after_name.unwrap_or(""),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Department::try_from).collect()
}

/// Saves a changed department (its new version) if nobody saved another in between.
pub async fn save_department(tx: &mut Tx, d: &Department) -> Result<(), Error> {
    let result = sql!(
        tx,
        execute,
        "UPDATE departments SET name = $2, code = $3, updated_at = $4, version = $5 WHERE id = $1 AND version = $6",
        d.id.to_string(),
        &d.name,
        &d.code,
        d.updated_at,
        d.version,
        d.version - 1
    )
    .map_err(|e| unique_or(e, "department", &format!("{} / {}", d.name, d.code)))?;
    saved(result, "department")
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    username: String,
    display_name: String,
    department_id: Option<String>,
    email: String,
    phone: String,
    status: String,
    password_hash: String,
    password_changed_at: DateTime<Utc>,
    password_expires_at: DateTime<Utc>,
    must_change_password: bool,
    failed_attempts: i64,
    lockout_count: i64,
    locked_until: Option<DateTime<Utc>>,
    last_login_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<UserRow> for User {
    type Error = Error;

    fn try_from(r: UserRow) -> Result<Self, Error> {
        Ok(User {
            id: id("users.id", &r.id)?,
            username: r.username,
            display_name: r.display_name,
            department: opt_id("users.department_id", r.department_id.as_deref())?,
            email: r.email,
            phone: r.phone,
            status: UserStatus::parse(&r.status)
                .ok_or_else(|| Error::internal(format!("bad user status {}", r.status)))?,
            password_hash: r.password_hash,
            password_changed_at: r.password_changed_at,
            password_expires_at: r.password_expires_at,
            must_change_password: r.must_change_password,
            failed_attempts: r.failed_attempts,
            lockout_count: r.lockout_count,
            locked_until: r.locked_until,
            last_login_at: r.last_login_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// Inserts a user; a taken username is ALREADY_EXISTS.
pub async fn insert_user(tx: &mut Tx, u: &User) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO users (id, username, display_name, department_id, email, phone, status, password_hash, \
             password_changed_at, password_expires_at, must_change_password, failed_attempts, lockout_count, \
             locked_until, last_login_at, created_at, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        u.id.to_string(),
        &u.username,
        &u.display_name,
        u.department.map(|d| d.to_string()),
        &u.email,
        &u.phone,
        u.status.as_str(),
        &u.password_hash,
        u.password_changed_at,
        u.password_expires_at,
        u.must_change_password,
        u.failed_attempts,
        u.lockout_count,
        u.locked_until,
        u.last_login_at,
        u.created_at,
        u.updated_at,
        u.version
    )
    .map_err(|e| unique_or(e, "user", &u.username))?;
    Ok(())
}

/// Saves every mutable field of a user (its new version) if nobody saved another in
/// between.
pub async fn save_user(tx: &mut Tx, u: &User) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE users SET display_name = $2, department_id = $3, email = $4, phone = $5, status = $6, \
             password_hash = $7, password_changed_at = $8, password_expires_at = $9, must_change_password = $10, \
             failed_attempts = $11, lockout_count = $12, locked_until = $13, last_login_at = $14, updated_at = $15, \
             version = $16 WHERE id = $1 AND version = $17",
        u.id.to_string(),
        &u.display_name,
        u.department.map(|d| d.to_string()),
        &u.email,
        &u.phone,
        u.status.as_str(),
        &u.password_hash,
        u.password_changed_at,
        u.password_expires_at,
        u.must_change_password,
        u.failed_attempts,
        u.lockout_count,
        u.locked_until,
        u.last_login_at,
        u.updated_at,
        u.version,
        u.version - 1
    )
    .map_err(db_error)?;
    saved(affected, "user")
}

/// One user by id.
pub async fn get_user(tx: &mut Tx, user: UserId) -> Result<Option<User>, Error> {
    get_by_id::<UserRow, _>(tx, "users", user).await
}

/// One user, locked for update until the transaction ends (PostgreSQL `FOR UPDATE`;
/// SQLite write transactions already hold the database lock).
pub async fn lock_user(tx: &mut Tx, user: UserId) -> Result<Option<User>, Error> {
    let row: Option<UserRow> = on_tx!(tx, |conn, dialect| {
        let sql = match dialect {
            govmedia_kit::db::Dialect::Postgres => "SELECT * FROM users WHERE id = $1 FOR UPDATE",
            govmedia_kit::db::Dialect::Sqlite => "SELECT * FROM users WHERE id = ?1",
        };
        sqlx::query_as(sql).bind(user.to_string()).fetch_optional(conn).await
    })
    .map_err(db_error)?;
    row.map(User::try_from).transpose()
}

/// One user by username.
pub async fn get_user_by_username(tx: &mut Tx, username: &str) -> Result<Option<User>, Error> {
    let row: Option<UserRow> =
        sql!(tx, fetch_optional, "SELECT * FROM users WHERE username = $1", username).map_err(db_error)?;
    row.map(User::try_from).transpose()
}

/// Users ordered by username after `after`, filtered.
pub async fn list_users(
    tx: &mut Tx,
    department: Option<DepartmentId>,
    status: Option<UserStatus>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<User>, Error> {
    let rows: Vec<UserRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM users WHERE username > $1 AND ($2 = '' OR department_id = $2) AND ($3 = '' OR status = $3) \
             ORDER BY username LIMIT $4",
        after.unwrap_or(""),
        department.map(|d| d.to_string()).unwrap_or_default(),
        status.map(UserStatus::as_str).unwrap_or(""),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(User::try_from).collect()
}

/// How many users exist.
pub async fn count_users(tx: &mut Tx) -> Result<i64, Error> {
    on_tx!(tx, |conn, _dialect| sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(conn).await)
        .map_err(db_error)
}

/// Saves a user whose password was just replaced: the record, the new password in the
/// history (R2.3.1: not reused), and the end of every session opened with the old one.
/// Returns how many sessions ended.
/// `set_by` names who set it when that was not the user (an administrator's reset).
pub async fn save_new_password(
    tx: &mut Tx,
    user: &User,
    why: &str,
    set_by: Option<(&str, &str)>,
) -> Result<u64, Error> {
    save_user(tx, user).await?;
    push_password_history_by(tx, user.id, &user.password_hash, user.password_changed_at, set_by).await?;
    crate::store::sessions::revoke_sessions_of(tx, user.id.into(), why, user.password_changed_at).await
}

/// Records a password in the user's history.
pub async fn push_password_history(tx: &mut Tx, user: UserId, hash: &str, at: DateTime<Utc>) -> Result<(), Error> {
    push_password_history_by(tx, user, hash, at, None).await
}

/// Records a password in the user's history, with who set it (id, name) when it was not
/// the user.
pub async fn push_password_history_by(
    tx: &mut Tx,
    user: UserId,
    hash: &str,
    at: DateTime<Utc>,
    set_by: Option<(&str, &str)>,
) -> Result<(), Error> {
    let (by, by_name) = set_by.unwrap_or_default();
    on_tx!(tx, |conn, dialect| {
        sqlx::query(&dialect.sql(
            "INSERT INTO password_history (user_id, password_hash, created_at, set_by, set_by_name) \
             VALUES ($1, $2, $3, $4, $5)",
        ))
        .bind(user.to_string())
        .bind(hash)
        .bind(at)
        .bind(by)
        .bind(by_name)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(db_error)?;
    Ok(())
}

/// The user's last `n` password hashes, newest first.
pub async fn recent_password_hashes(tx: &mut Tx, user: UserId, n: usize) -> Result<Vec<String>, Error> {
    on_tx!(tx, |conn, dialect| {
        sqlx::query_scalar(
            &dialect
                .sql("SELECT password_hash FROM password_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2"),
        )
        .bind(user.to_string())
        .bind(i64::try_from(n).unwrap_or(5))
        .fetch_all(conn)
        .await
    })
    .map_err(db_error)
}

#[derive(sqlx::FromRow)]
struct ServicePrincipalRow {
    id: String,
    client_id: String,
    display_name: String,
    owner_user_id: Option<String>,
    secret_hash: String,
    disabled: bool,
    secret_rotated_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<ServicePrincipalRow> for ServicePrincipal {
    type Error = Error;

    fn try_from(r: ServicePrincipalRow) -> Result<Self, Error> {
        Ok(ServicePrincipal {
            id: id("service_principals.id", &r.id)?,
            client_id: r.client_id,
            display_name: r.display_name,
            owner: opt_id("service_principals.owner_user_id", r.owner_user_id.as_deref())?,
            secret_hash: r.secret_hash,
            disabled: r.disabled,
            secret_rotated_at: r.secret_rotated_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

/// Inserts a service principal; a taken client id is ALREADY_EXISTS.
pub async fn insert_service_principal(tx: &mut Tx, p: &ServicePrincipal) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO service_principals (id, client_id, display_name, owner_user_id, secret_hash, disabled, \
             secret_rotated_at, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        p.id.to_string(),
        &p.client_id,
        &p.display_name,
        p.owner.map(|o| o.to_string()),
        &p.secret_hash,
        p.disabled,
        p.secret_rotated_at,
        p.created_at,
        p.updated_at,
        p.version
    )
    .map_err(|e| unique_or(e, "service_principal", &p.client_id))?;
    Ok(())
}

/// Saves a service principal's secret, state and new version if nobody saved another in
/// between.
pub async fn save_service_principal(tx: &mut Tx, p: &ServicePrincipal) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE service_principals SET display_name = $2, owner_user_id = $3, secret_hash = $4, disabled = $5, \
             secret_rotated_at = $6, updated_at = $7, version = $8 WHERE id = $1 AND version = $9",
        p.id.to_string(),
        &p.display_name,
        p.owner.map(|o| o.to_string()),
        &p.secret_hash,
        p.disabled,
        p.secret_rotated_at,
        p.updated_at,
        p.version,
        p.version - 1
    )
    .map_err(db_error)?;
    saved(affected, "service principal")
}

/// One service principal by id.
pub async fn get_service_principal(tx: &mut Tx, p: ServicePrincipalId) -> Result<Option<ServicePrincipal>, Error> {
    get_by_id::<ServicePrincipalRow, _>(tx, "service_principals", p).await
}

/// One service principal by client id.
pub async fn get_service_principal_by_client_id(
    tx: &mut Tx,
    client_id: &str,
) -> Result<Option<ServicePrincipal>, Error> {
    let row: Option<ServicePrincipalRow> =
        sql!(tx, fetch_optional, "SELECT * FROM service_principals WHERE client_id = $1", client_id)
            .map_err(db_error)?;
    row.map(ServicePrincipal::try_from).transpose()
}

/// Service principals ordered by client id after `after`.
pub async fn list_service_principals(
    tx: &mut Tx,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<ServicePrincipal>, Error> {
    let rows: Vec<ServicePrincipalRow> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(
            &dialect.sql("SELECT * FROM service_principals WHERE client_id > $1 ORDER BY client_id LIMIT $2"),
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
    })
    .map_err(db_error)?;
    rows.into_iter().map(ServicePrincipal::try_from).collect()
}

/// When and by whom (id, name) the user's current password was set, when that was
/// someone else; none when the user chose it.
pub async fn password_set_by_other(
    tx: &mut Tx,
    user: UserId,
) -> Result<Option<(DateTime<Utc>, String, String)>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        created_at: DateTime<Utc>,
        set_by: String,
        set_by_name: String,
    }
    let row: Option<Row> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(&dialect.sql(
            "SELECT created_at, set_by, set_by_name FROM password_history WHERE user_id = $1 \
             ORDER BY created_at DESC LIMIT 1",
        ))
        .bind(user.to_string())
        .fetch_optional(conn)
        .await
    })
    .map_err(db_error)?;
    Ok(row
        .filter(|r| !r.set_by.is_empty() && r.set_by != user.to_string())
        .map(|r| (r.created_at, r.set_by, r.set_by_name)))
}
