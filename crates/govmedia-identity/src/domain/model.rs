//! The identity service's records, as the rules see them. Stores read and write these;
//! the API converts them to and from the wire types.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, PrincipalId, SecurityEventId, ServicePrincipalId, SessionId, UserId};

/// A department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    /// Id.
    pub id: DepartmentId,
    /// Unique name.
    pub name: String,
    /// Unique short code.
    pub code: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version (the etag).
    pub version: i64,
}

/// What an update of a department changes (`None`: left as it is).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DepartmentChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new code.
    pub code: Option<String>,
}

impl Department {
    /// A new department, at version 1.
    pub fn new(name: String, code: String, now: DateTime<Utc>) -> Self {
        Self { id: DepartmentId::new(), name, code, created_at: now, updated_at: now, version: 1 }
    }

    /// Applies `changes`: a new version.
    pub fn update(&mut self, changes: DepartmentChanges, now: DateTime<Utc>) -> AuditAction {
        if let Some(name) = changes.name {
            self.name = name;
        }
        if let Some(code) = changes.code {
            self.code = code;
        }
        self.updated_at = now;
        self.version += 1;
        AuditAction::DepartmentUpdated
    }
}

/// Whether a user may log in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    /// May log in.
    Active,
    /// May not.
    Disabled,
}

impl UserStatus {
    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserStatus::Active => "active",
            UserStatus::Disabled => "disabled",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(UserStatus::Active),
            "disabled" => Some(UserStatus::Disabled),
            _ => None,
        }
    }
}

/// A member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id.
    pub id: UserId,
    /// Login name.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Department.
    pub department: Option<DepartmentId>,
    /// E-mail.
    pub email: String,
    /// Telephone.
    pub phone: String,
    /// Active or disabled.
    pub status: UserStatus,
    /// argon2id PHC string.
    pub password_hash: String,
    /// When the password was set.
    pub password_changed_at: DateTime<Utc>,
    /// When it expires.
    pub password_expires_at: DateTime<Utc>,
    /// One-time password: must change at next login.
    pub must_change_password: bool,
    /// Consecutive failed logins.
    pub failed_attempts: i64,
    /// Lockouts so far.
    pub lockout_count: i64,
    /// Locked until.
    pub locked_until: Option<DateTime<Utc>>,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version (etag).
    pub version: i64,
}

/// Who a new member of staff is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Login name.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Department.
    pub department: Option<DepartmentId>,
    /// E-mail.
    pub email: String,
    /// Telephone.
    pub phone: String,
}

/// What an update of a user changes (`None`: left as it is; a department of
/// `Some(None)`: no department).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// A new full name.
    pub display_name: Option<String>,
    /// A new department.
    pub department: Option<Option<DepartmentId>>,
    /// A new e-mail.
    pub email: Option<String>,
    /// A new telephone.
    pub phone: Option<String>,
}

impl User {
    /// A new active user whose one-time password (`password_hash`) must be changed at
    /// the first login (R2.3.1) and signs in only until `one_time_until` (R2.3.2).
    pub fn new(profile: Profile, password_hash: String, one_time_until: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self {
            id: UserId::new(),
            username: profile.username,
            display_name: profile.display_name,
            department: profile.department,
            email: profile.email,
            phone: profile.phone,
            status: UserStatus::Active,
            password_hash,
            password_changed_at: now,
            password_expires_at: one_time_until,
            must_change_password: true,
            failed_attempts: 0,
            lockout_count: 0,
            locked_until: None,
            last_login_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// A new version of the record.
    fn touch(&mut self, now: DateTime<Utc>) {
        self.updated_at = now;
        self.version += 1;
    }

    /// Applies `changes`.
    pub fn update(&mut self, changes: UserChanges, now: DateTime<Utc>) -> AuditAction {
        if let Some(department) = changes.department {
            self.department = department;
        }
        if let Some(x) = changes.display_name {
            self.display_name = x;
        }
        if let Some(x) = changes.email {
            self.email = x;
        }
        if let Some(x) = changes.phone {
            self.phone = x;
        }
        self.touch(now);
        AuditAction::UserUpdated
    }

    /// Disables the login of this user, at the request of `by` (R2.2.1: nobody disables
    /// their own), unless they are the responsible person of the accounts (their handles)
    /// in `responsible_for`: every account keeps someone answerable for it (R2.1.1).
    pub fn disable(
        &mut self,
        by: PrincipalId,
        responsible_for: &[String],
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if by == self.id.into() {
            return Err(Error::rule("R2.2.1", format!("user/{}", self.id), "nobody disables their own login"));
        }
        if !responsible_for.is_empty() {
            return Err(Error::rule(
                "R2.1.1",
                format!("user/{}", self.id),
                format!(
                    "{} is the responsible person of {}: name another responsible person first",
                    self.username,
                    responsible_for.join(", ")
                ),
            ));
        }
        self.status = UserStatus::Disabled;
        self.touch(now);
        Ok(AuditAction::UserDisabled)
    }

    /// Lets the user log in again.
    pub fn enable(&mut self, now: DateTime<Utc>) -> AuditAction {
        self.status = UserStatus::Active;
        self.touch(now);
        AuditAction::UserEnabled
    }

    /// Sign-ins from some address are throttled until `until` (R2.3.1): the latest end is
    /// kept on the user for the administrator's view.
    pub fn throttled(&mut self, until: DateTime<Utc>, now: DateTime<Utc>) {
        self.locked_until = Some(self.locked_until.map_or(until, |u| u.max(until)));
        self.touch(now);
    }

    /// Ends a lockout and forgets the failures that led to it (R2.3.1).
    pub fn unlock(&mut self, now: DateTime<Utc>) -> AuditAction {
        self.locked_until = None;
        self.failed_attempts = 0;
        self.touch(now);
        AuditAction::UserUnlocked
    }

    /// Sets a one-time password (`password_hash`), to be changed at the next login, which
    /// must come before `one_time_until`.
    pub fn reset_password(
        &mut self,
        password_hash: String,
        one_time_until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> AuditAction {
        self.password_hash = password_hash;
        self.password_changed_at = now;
        self.password_expires_at = one_time_until;
        self.must_change_password = true;
        self.touch(now);
        AuditAction::UserPasswordReset
    }

    /// Sets the password the user chose, valid for `max_age` (R2.3.1).
    pub fn change_password(&mut self, password_hash: String, max_age: chrono::Duration, now: DateTime<Utc>) {
        self.password_hash = password_hash;
        self.password_changed_at = now;
        self.password_expires_at = now + max_age;
        self.must_change_password = false;
        self.touch(now);
    }

    /// A successful login.
    pub fn logged_in(&mut self, now: DateTime<Utc>) {
        self.failed_attempts = 0;
        self.last_login_at = Some(now);
        self.touch(now);
    }

    /// True when the password is one-time and its time to be used has passed: it signs in
    /// no more (R2.3.2: a password handed over is not kept usable).
    pub fn one_time_password_expired(&self, now: DateTime<Utc>) -> bool {
        self.must_change_password && self.password_expires_at <= now
    }

    /// True when the next session may only change the password (R2.3.1).
    pub fn password_change_required(&self, now: DateTime<Utc>) -> bool {
        self.must_change_password || self.password_expires_at <= now
    }
}

/// A service principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePrincipal {
    /// Id.
    pub id: ServicePrincipalId,
    /// Client id.
    pub client_id: String,
    /// What system it is.
    pub display_name: String,
    /// Responsible person.
    pub owner: Option<UserId>,
    /// SHA-256 of the client secret (secrets are 256 random bits).
    pub secret_hash: String,
    /// Disabled principals get no tokens.
    pub disabled: bool,
    /// When the secret was set.
    pub secret_rotated_at: DateTime<Utc>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version (etag).
    pub version: i64,
}

impl ServicePrincipal {
    /// A new enabled principal holding the secret whose hash is `secret_hash`.
    pub fn new(
        client_id: String,
        display_name: String,
        owner: Option<UserId>,
        secret_hash: String,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: ServicePrincipalId::new(),
            client_id,
            display_name,
            owner,
            secret_hash,
            disabled: false,
            secret_rotated_at: now,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// Replaces the secret (and enables the principal, when `enable`).
    pub fn rotate_secret(&mut self, secret_hash: String, enable: bool, now: DateTime<Utc>) -> AuditAction {
        self.secret_hash = secret_hash;
        self.disabled &= !enable;
        self.secret_rotated_at = now;
        self.updated_at = now;
        self.version += 1;
        AuditAction::ServicePrincipalSecretRotated
    }

    /// Lets a disabled principal get tokens again.
    pub fn enable(&mut self, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if !self.disabled {
            return Err(Error::rule("R2.2.2", format!("service_principal/{}", self.id), "is not disabled"));
        }
        self.disabled = false;
        self.updated_at = now;
        self.version += 1;
        Ok(AuditAction::ServicePrincipalEnabled)
    }

    /// Stops the principal from getting tokens.
    pub fn disable(&mut self, now: DateTime<Utc>) -> AuditAction {
        self.disabled = true;
        self.updated_at = now;
        self.version += 1;
        AuditAction::ServicePrincipalDisabled
    }
}

/// A login session family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Id (the `sid` claim).
    pub id: SessionId,
    /// The user.
    pub principal: PrincipalId,
    /// Restricted to changing the password.
    pub password_change_only: bool,
    /// Where the login came from.
    pub client_address: String,
    /// Started.
    pub created_at: DateTime<Utc>,
    /// Ended.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A stored refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 of the token.
    pub token_hash: String,
    /// Its session family.
    pub session: SessionId,
    /// Issued.
    pub issued_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Spent (exchanged) at.
    pub spent_at: Option<DateTime<Utc>>,
}

/// The kind of a security event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityEventKind {
    /// Burst of failed logins.
    LoginFailureBurst,
    /// Login from an address never seen for the user.
    LoginFromNewAddress,
    /// Login outside working hours.
    LoginOutsideWorkingHours,
    /// A login locked.
    LoginLocked,
    /// A spent refresh token was replayed.
    RefreshTokenReused,
}

impl SecurityEventKind {
    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            SecurityEventKind::LoginFailureBurst => "login_failure_burst",
            SecurityEventKind::LoginFromNewAddress => "login_from_new_address",
            SecurityEventKind::LoginOutsideWorkingHours => "login_outside_working_hours",
            SecurityEventKind::LoginLocked => "login_locked",
            SecurityEventKind::RefreshTokenReused => "refresh_token_reused",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        [
            SecurityEventKind::LoginFailureBurst,
            SecurityEventKind::LoginFromNewAddress,
            SecurityEventKind::LoginOutsideWorkingHours,
            SecurityEventKind::LoginLocked,
            SecurityEventKind::RefreshTokenReused,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityEvent {
    /// Id.
    pub id: SecurityEventId,
    /// Kind.
    pub kind: SecurityEventKind,
    /// The user, when known.
    pub user: Option<UserId>,
    /// The username as presented.
    pub username: String,
    /// Client address.
    pub client_address: String,
    /// Details.
    pub detail: String,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Acknowledged by.
    pub acknowledged_by: Option<String>,
    /// Acknowledged at.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Acknowledgement note.
    pub acknowledge_note: Option<String>,
}

/// A token-signing key as stored (private half sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    /// Key id (`kid`).
    pub key_id: String,
    /// Sealed PKCS#8 private key.
    pub sealed_private_key: Vec<u8>,
    /// Which sealing key sealed it.
    pub sealing_key_id: String,
    /// Raw public key.
    pub public_key: Vec<u8>,
    /// Started signing.
    pub created_at: DateTime<Utc>,
    /// Stopped signing.
    pub retired_at: Option<DateTime<Utc>>,
}
