//! Role bindings, and the facts a permission check needs about principals and accounts.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PrincipalId, RoleBindingId};
use govmedia_domain::permission::Role;
use govmedia_domain::scope::Scope;
use govmedia_kit::db::{Tx, db_error, get_by_id, is_unique_violation};
use govmedia_kit::{on_tx, sql};

use super::id;
use crate::domain::access::Binding;

#[derive(sqlx::FromRow)]
struct BindingRow {
    id: String,
    principal_id: String,
    role: String,
    scope_kind: String,
    scope_id: String,
    granted_by: String,
    reason: String,
    created_at: DateTime<Utc>,
}

fn scope_columns(scope: &Scope) -> (&'static str, String) {
    match scope {
        Scope::Global => ("global", String::new()),
        Scope::Department(d) => ("department", d.to_string()),
        Scope::PlatformAccount(a) => ("platform_account", a.to_string()),
    }
}

impl TryFrom<BindingRow> for Binding {
    type Error = Error;

    fn try_from(r: BindingRow) -> Result<Self, Error> {
        let scope = match r.scope_kind.as_str() {
            "global" => Scope::Global,
            "department" => Scope::Department(id("role_bindings.scope_id", &r.scope_id)?),
            "platform_account" => Scope::PlatformAccount(id("role_bindings.scope_id", &r.scope_id)?),
            other => return Err(Error::internal(format!("bad scope kind {other}"))),
        };
        Ok(Binding {
            id: id("role_bindings.id", &r.id)?,
            principal: id("role_bindings.principal_id", &r.principal_id)?,
            role: r.role.parse().map_err(|_| Error::internal(format!("bad role {}", r.role)))?,
            scope,
            granted_by: id("role_bindings.granted_by", &r.granted_by)?,
            reason: r.reason,
            created_at: r.created_at,
        })
    }
}

/// Stores a binding; the same role in the same scope twice is ALREADY_EXISTS.
pub async fn insert_binding(tx: &mut Tx, b: &Binding) -> Result<(), Error> {
    let (kind, scope_id) = scope_columns(&b.scope);
    sql!(
        tx,
        execute,
        "INSERT INTO role_bindings (id, principal_id, role, scope_kind, scope_id, granted_by, reason, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        b.id.to_string(),
        b.principal.to_string(),
        b.role.as_str(),
        kind,
        &scope_id,
        b.granted_by.to_string(),
        &b.reason,
        b.created_at
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            Error::AlreadyExists {
                resource_type: "role_binding",
                key: format!("{} {} in {}", b.principal, b.role, b.scope),
            }
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

/// One binding.
pub async fn get_binding(tx: &mut Tx, binding: RoleBindingId) -> Result<Option<Binding>, Error> {
    get_by_id::<BindingRow, _>(tx, "role_bindings", binding).await
}

/// Deletes a binding; false when it was already gone.
pub async fn delete_binding(tx: &mut Tx, binding: RoleBindingId) -> Result<bool, Error> {
    let affected =
        sql!(tx, execute, "DELETE FROM role_bindings WHERE id = $1", binding.to_string()).map_err(db_error)?;
    Ok(affected > 0)
}

/// Every binding of a principal.
pub async fn bindings_of(tx: &mut Tx, principal: PrincipalId) -> Result<Vec<Binding>, Error> {
    let rows: Vec<BindingRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM role_bindings WHERE principal_id = $1 ORDER BY created_at, id",
        principal.to_string()
    )
    .map_err(db_error)?;
    rows.into_iter().map(Binding::try_from).collect()
}

/// Bindings filtered, ordered by id (creation order), after `after`.
pub async fn list_bindings(
    tx: &mut Tx,
    principal: Option<PrincipalId>,
    role: Option<Role>,
    scope: Option<&Scope>,
    after: Option<RoleBindingId>,
    limit: u32,
) -> Result<Vec<Binding>, Error> {
    let (kind, scope_id) = scope.map(scope_columns).unwrap_or(("", String::new()));
    let rows: Vec<BindingRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM role_bindings WHERE ($1 = '' OR principal_id = $1) AND ($2 = '' OR role = $2) \
             AND ($3 = '' OR (scope_kind = $3 AND scope_id = $4)) AND id > $5 ORDER BY id LIMIT $6",
        principal.map(|p| p.to_string()).unwrap_or_default(),
        role.map(Role::as_str).unwrap_or(""),
        kind,
        scope_id,
        after.map(|a| a.to_string()).unwrap_or_default(),
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Binding::try_from).collect()
}

/// Whether a principal exists, and whether it is active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalState {
    /// No such user or service principal.
    Unknown,
    /// A user who must change their password first (R2.3.1).
    PasswordChangeRequired,
    /// Disabled.
    Disabled,
    /// Active.
    Active,
}

/// The state of a principal, user or service, at `now`.
pub async fn principal_state(tx: &mut Tx, principal: PrincipalId, now: DateTime<Utc>) -> Result<PrincipalState, Error> {
    let user: Option<(String, bool, DateTime<Utc>)> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(
            &dialect.sql("SELECT status, must_change_password, password_expires_at FROM users WHERE id = $1"),
        )
        .bind(principal.to_string())
        .fetch_optional(conn)
        .await
    })
    .map_err(db_error)?;
    if let Some((status, must_change, expires)) = user {
        return Ok(match status.as_str() {
            "active" if must_change || expires <= now => PrincipalState::PasswordChangeRequired,
            "active" => PrincipalState::Active,
            _ => PrincipalState::Disabled,
        });
    }
    let service: Option<bool> =
        sql!(tx, scalar_optional, "SELECT disabled FROM service_principals WHERE id = $1", principal.to_string())
            .map_err(db_error)?;
    Ok(match service {
        None => PrincipalState::Unknown,
        Some(true) => PrincipalState::Disabled,
        Some(false) => PrincipalState::Active,
    })
}

/// The department owning a platform account, if the account exists.
pub async fn account_department(tx: &mut Tx, account: PlatformAccountId) -> Result<Option<DepartmentId>, Error> {
    let department: Option<String> =
        sql!(tx, scalar_optional, "SELECT department_id FROM platform_accounts WHERE id = $1", account.to_string())
            .map_err(db_error)?;
    department.map(|d| id("platform_accounts.department_id", &d)).transpose()
}
