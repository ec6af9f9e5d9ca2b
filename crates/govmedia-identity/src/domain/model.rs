//! The identity service's records, as the rules see them. Stores read and write these;
//! the API converts them to and from the wire types.

use chrono::{DateTime, Utc};
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

impl User {
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
