//! The identity & permissions service (`govmedia.identity.v1`; R2, R6): departments and
//! staff, login with argon2id passwords, lockout and login anomalies, sessions with
//! Ed25519-signed access tokens and rotating refresh tokens, service principals, scoped
//! role bindings and the one permission authority (`CheckPermission`), platform accounts
//! and the credential vault.
//!
//! Layout: `api/` (one file per gRPC service: request -> validation -> rule -> store),
//! `domain/` (the rules), `store/` (SQL), `migrations/`; this file wires them and
//! [`serve`]s. It depends on the kit and the domain vocabulary, never on another
//! service's code.

pub mod api;
pub mod domain;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, ActorKind, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::clock::{Clock, SystemClock};
use govmedia_domain::ids::{DepartmentId, PrincipalId, RoleBindingId, SessionId};
use govmedia_domain::permission::{Permission, Role};
use govmedia_domain::scope::{Resource, Scope};
use govmedia_kit::auth::{
    AccessClaims, AuthLayer, AuthPolicy, KeySource, Principal, PrincipalKind, SessionGate, SigningKey, TokenVerifier,
};
use govmedia_kit::config::{
    ConfigFileSettings, DatabaseSettings, PeerSettings, Secret, ServerSettings, TelemetrySettings, parse_duration,
};
use govmedia_kit::db::{Database, ServiceMigrations, Tx};
use govmedia_kit::mutation::UnitOfWork;
use govmedia_kit::server::ServerBuilder;
use sqlx::migrate::Migrator;
use tokio::sync::RwLock;

use crate::domain::access::{Binding, Decision, Denial};
use crate::domain::anomaly::WorkingHours;
use crate::domain::lockout::LockoutPolicy;
use crate::domain::model::{Profile, StoredSigningKey, User};
use crate::domain::password;
use crate::domain::sealing::Sealer;
use crate::store::access::PrincipalState;

static POSTGRES: Migrator = sqlx::migrate!("migrations/postgres");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");

/// The identity service's migrations.
pub const MIGRATIONS: ServiceMigrations =
    ServiceMigrations { service: "identity", postgres: &POSTGRES, sqlite: &SQLITE };

/// The name identity uses as producer of audit records.
pub const PRODUCER: &str = "identity";

/// Settings of the identity service.
#[derive(Debug, Clone, clap::Args)]
pub struct IdentityOptions {
    /// Keys sealing token-signing keys and account credentials at rest, as
    /// id:base64[,id:base64...] of 32 random bytes each (openssl rand -base64 32); the first
    /// seals new values, the others still open old ones. Required with PostgreSQL.
    #[arg(long, env = "GOVMEDIA_IDENTITY_SEALING_KEYS", value_name = "KEYRING", hide_env_values = true)]
    pub sealing_keys: Option<Secret>,
    /// Lifetime of access tokens.
    #[arg(long, env = "GOVMEDIA_IDENTITY_ACCESS_TOKEN_LIFETIME", default_value = "15m", value_parser = parse_duration)]
    pub access_token_lifetime: Duration,
    /// Lifetime of refresh tokens (each refresh issues a new one).
    #[arg(long, env = "GOVMEDIA_IDENTITY_REFRESH_TOKEN_LIFETIME", default_value = "12h", value_parser = parse_duration)]
    pub refresh_token_lifetime: Duration,
    /// Longest a session lasts however often it is refreshed; then its person signs in
    /// again (R2.3.3).
    #[arg(long, env = "GOVMEDIA_IDENTITY_SESSION_MAX_LIFETIME", default_value = "7d", value_parser = parse_duration)]
    pub session_max_lifetime: Duration,
    /// Password age after which login only allows changing it (R2.3.1).
    #[arg(long, env = "GOVMEDIA_IDENTITY_PASSWORD_MAX_AGE", default_value = "90d", value_parser = parse_duration)]
    pub password_max_age: Duration,
    /// How long a one-time password (a new user's, a reset's) signs in before it expires
    /// unused and the administrator must reset it again (R2.3.2).
    #[arg(
        long,
        env = "GOVMEDIA_IDENTITY_ONE_TIME_PASSWORD_LIFETIME",
        default_value = "24h",
        value_parser = parse_duration
    )]
    pub one_time_password_lifetime: Duration,
    /// Consecutive failed logins that lock a login (R2.3.1).
    #[arg(long, env = "GOVMEDIA_IDENTITY_LOCKOUT_THRESHOLD", default_value_t = 5)]
    pub lockout_threshold: u32,
    /// Length of the first lock; each further lock doubles it.
    #[arg(long, env = "GOVMEDIA_IDENTITY_LOCKOUT_DURATION", default_value = "15m", value_parser = parse_duration)]
    pub lockout_duration: Duration,
    /// Longest lock.
    #[arg(long, env = "GOVMEDIA_IDENTITY_LOCKOUT_MAX", default_value = "24h", value_parser = parse_duration)]
    pub lockout_max: Duration,
    /// Failed logins for one username or from one address within the window that raise
    /// a failure-burst security event.
    #[arg(long, env = "GOVMEDIA_IDENTITY_FAILURE_BURST_THRESHOLD", default_value_t = 10)]
    pub failure_burst_threshold: u32,
    /// The failure-burst window.
    #[arg(long, env = "GOVMEDIA_IDENTITY_FAILURE_BURST_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub failure_burst_window: Duration,
    /// The bureau's name (for example 海港市公安局); no password may be built from it, in
    /// characters or pinyin (R2.3.1).
    #[arg(long, env = "GOVMEDIA_BUREAU_NAME", default_value = "")]
    pub bureau_name: String,
    /// The bureau's time zone (IANA name).
    #[arg(long, env = "GOVMEDIA_TIME_ZONE", default_value = "Asia/Shanghai")]
    pub time_zone: String,
    /// Working hours on working days, local time; logins outside raise a security event.
    #[arg(long, env = "GOVMEDIA_WORKING_HOURS", default_value = "08:00-18:00")]
    pub working_hours: String,
    /// Holidays beyond the shipped official schedule (YYYY-MM-DD, separated by commas).
    #[arg(long, env = "GOVMEDIA_HOLIDAYS", default_value = "")]
    pub holidays: String,
    /// Make-up working days (调休) beyond the shipped schedule (YYYY-MM-DD, separated by
    /// commas); a date listed here is working even if the schedule has it as a holiday.
    #[arg(long, env = "GOVMEDIA_MAKEUP_WORKING_DAYS", default_value = "")]
    pub makeup_working_days: String,
    /// How long a token-signing key signs before a new one replaces it.
    #[arg(long, env = "GOVMEDIA_IDENTITY_SIGNING_KEY_ROTATION", default_value = "30d", value_parser = parse_duration)]
    pub signing_key_rotation: Duration,
    /// How long a stored platform credential may be used before rotation is due (R2.3.1).
    #[arg(long, env = "GOVMEDIA_IDENTITY_CREDENTIAL_ROTATION", default_value = "90d", value_parser = parse_duration)]
    pub credential_rotation: Duration,
    /// Username of the administrator created on first start.
    #[arg(long, env = "GOVMEDIA_IDENTITY_BOOTSTRAP_ADMIN", default_value = "admin")]
    pub bootstrap_admin: String,
    /// The first administrator's one-time password; generated and printed once when unset.
    #[arg(long, env = "GOVMEDIA_IDENTITY_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub bootstrap_password: Option<Secret>,
    /// The installation's own services, provisioned at every start as
    /// CLIENT_ID=SECRET_FILE[,...]: each gets a service principal holding
    /// `govmedia_service` (which no role grant gives) with the secret in its file. How a
    /// deployment of separate `govmedia serve` processes lets its services sign in.
    #[arg(
        long = "identity-service",
        env = "GOVMEDIA_IDENTITY_SERVICES",
        value_name = "CLIENT_ID=SECRET_FILE",
        value_delimiter = ',',
        value_parser = parse_service_file
    )]
    pub services: Vec<(String, std::path::PathBuf)>,
}

/// Parses CLIENT_ID=SECRET_FILE.
fn parse_service_file(s: &str) -> Result<(String, std::path::PathBuf), String> {
    let (client, file) = s.split_once('=').ok_or_else(|| format!("{s:?} is not CLIENT_ID=SECRET_FILE"))?;
    let client = client.trim();
    if client.is_empty() || file.trim().is_empty() {
        return Err(format!("{s:?} is not CLIENT_ID=SECRET_FILE"));
    }
    Ok((client.to_owned(), std::path::PathBuf::from(file.trim())))
}

/// Everything the identity service is configured with.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "govmedia-identity", about = "The govmedia identity & permissions service")]
pub struct IdentitySettings {
    /// The configuration file.
    #[command(flatten)]
    pub config: ConfigFileSettings,
    /// The gRPC server.
    #[command(flatten)]
    pub server: ServerSettings,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseSettings,
    /// Logs, traces, metrics.
    #[command(flatten)]
    pub telemetry: TelemetrySettings,
    /// Other services.
    #[command(flatten)]
    pub peers: PeerSettings,
    /// Identity's own settings.
    #[command(flatten)]
    pub identity: IdentityOptions,
}

/// The policies the rules run with, parsed from the settings.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Lockout.
    pub lockout: LockoutPolicy,
    /// Password maximum age.
    pub password_max_age: chrono::Duration,
    /// How long a one-time password signs in.
    pub one_time_password_lifetime: chrono::Duration,
    /// Access-token lifetime.
    pub access_token_lifetime: Duration,
    /// Refresh-token lifetime.
    pub refresh_token_lifetime: chrono::Duration,
    /// Longest a session lasts, refreshed or not.
    pub session_max_lifetime: chrono::Duration,
    /// Failure-burst threshold.
    pub failure_burst_threshold: i64,
    /// Failure-burst window.
    pub failure_burst_window: chrono::Duration,
    /// Working hours.
    pub working_hours: WorkingHours,
    /// Signing-key rotation period.
    pub signing_key_rotation: chrono::Duration,
    /// Default credential rotation period.
    pub credential_rotation: chrono::Duration,
    /// The bureau's name, which no password may be built from.
    pub bureau_name: String,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A setting is unusable.
    #[error("{0}")]
    Setting(#[source] govmedia_kit::config::InvalidSetting),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] govmedia_kit::db::DatabaseError),
    /// Bootstrapping failed.
    #[error("first-start bootstrap failed: {0}")]
    Bootstrap(Error),
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Policy {
    /// Parses the policy settings.
    pub fn from_options(o: &IdentityOptions) -> Result<Self, StartError> {
        let dates = |name: &'static str, value: &str| {
            govmedia_domain::holidays::parse_dates(value)
                .map_err(|e| StartError::Setting(govmedia_kit::config::InvalidSetting::new(name, e)))
        };
        let calendar = govmedia_domain::holidays::OfficialCalendar::with_additions(
            &dates("GOVMEDIA_HOLIDAYS", &o.holidays)?,
            &dates("GOVMEDIA_MAKEUP_WORKING_DAYS", &o.makeup_working_days)?,
        )
        .map_err(|both| {
            StartError::Setting(govmedia_kit::config::InvalidSetting::new(
                "GOVMEDIA_MAKEUP_WORKING_DAYS",
                format!("{both} is also listed as a holiday"),
            ))
        })?;
        let working_hours = WorkingHours::parse(&o.time_zone, &o.working_hours)
            .map_err(|e| {
                StartError::Setting(govmedia_kit::config::InvalidSetting::new(
                    "GOVMEDIA_WORKING_HOURS / GOVMEDIA_TIME_ZONE",
                    e.to_string(),
                ))
            })?
            .with_calendar(calendar);
        if o.session_max_lifetime.is_zero() {
            return Err(StartError::Setting(govmedia_kit::config::InvalidSetting::new(
                "GOVMEDIA_IDENTITY_SESSION_MAX_LIFETIME",
                "must be longer than zero",
            )));
        }
        if o.lockout_threshold == 0 {
            return Err(StartError::Setting(govmedia_kit::config::InvalidSetting::new(
                "GOVMEDIA_IDENTITY_LOCKOUT_THRESHOLD",
                "must be at least 1",
            )));
        }
        Ok(Self {
            lockout: LockoutPolicy {
                threshold: o.lockout_threshold,
                base: chrono_duration(o.lockout_duration),
                max: chrono_duration(o.lockout_max),
            },
            password_max_age: chrono_duration(o.password_max_age),
            one_time_password_lifetime: chrono_duration(o.one_time_password_lifetime),
            access_token_lifetime: o.access_token_lifetime,
            refresh_token_lifetime: chrono_duration(o.refresh_token_lifetime),
            session_max_lifetime: chrono_duration(o.session_max_lifetime),
            failure_burst_threshold: i64::from(o.failure_burst_threshold),
            failure_burst_window: chrono_duration(o.failure_burst_window),
            working_hours,
            signing_key_rotation: chrono_duration(o.signing_key_rotation),
            credential_rotation: chrono_duration(o.credential_rotation),
            bureau_name: o.bureau_name.trim().to_owned(),
        })
    }
}

/// The current signing key and the public keys still verifying.
#[derive(Debug)]
struct KeyState {
    current: SigningKey,
    live: Vec<StoredSigningKey>,
}

/// The service's shared state.
#[derive(Debug)]
pub struct Core {
    work: UnitOfWork,
    sealer: Sealer,
    policy: Policy,
    keys: RwLock<KeyState>,
    verifier: Arc<TokenVerifier>,
}

/// What the first start created, to be shown once.
#[derive(Clone)]
pub struct Bootstrap {
    /// The administrator's username.
    pub admin_username: String,
    /// The one-time password, when it was generated (not when given in configuration).
    pub one_time_password: Option<String>,
}

/// Never the one-time password: it is shown once, on purpose, not in a debug line.
impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("admin_username", &self.admin_username)
            .field("one_time_password", &self.one_time_password.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Identity keeps the sessions, so it refuses a token whose session has ended on every
/// call at once: signing out, a revocation, a password change or a reused refresh token
/// ends what the access token can do (R2.3.3).
impl SessionGate for Core {
    fn is_open(&self, principal: PrincipalId, session: SessionId) -> BoxFuture<'_, Result<bool, Error>> {
        Box::pin(async move {
            let mut tx = self.db().begin_read().await?;
            store::sessions::is_open(&mut tx, principal, session).await
        })
    }
}

impl Core {
    /// Opens the service on a migrated database: loads or creates the signing key, and on
    /// an empty database creates the first administrator.
    pub async fn open(
        db: Database,
        clock: Arc<dyn Clock>,
        sealer: Sealer,
        policy: Policy,
        options: &IdentityOptions,
    ) -> Result<(Arc<Self>, Option<Bootstrap>), StartError> {
        let work = UnitOfWork::new(db, Arc::clone(&clock));
        let state = load_or_rotate_keys(&work, &sealer, &policy).await.map_err(StartError::Bootstrap)?;
        reseal_credentials_bound_to_the_account_only(&work, &sealer).await.map_err(StartError::Bootstrap)?;
        let verifier =
            Arc::new(TokenVerifier::new(KeySource::Static(public_keys(&state.live))).with_clock(Arc::clone(&clock)));
        let core = Arc::new(Self { work, sealer, policy, keys: RwLock::new(state), verifier });
        let bootstrap = core.bootstrap_admin(options).await.map_err(StartError::Bootstrap)?;
        Ok((core, bootstrap))
    }

    /// The unit of work every change runs in.
    pub fn work(&self) -> &UnitOfWork {
        &self.work
    }

    /// The database.
    pub fn db(&self) -> &Database {
        self.work.db()
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        self.work.now()
    }

    /// The policies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The sealer for secrets at rest.
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The verifier for identity's own tokens.
    pub fn verifier(&self) -> Arc<TokenVerifier> {
        Arc::clone(&self.verifier)
    }

    /// Signs an access token; returns it with its expiry.
    pub async fn issue_access_token(
        &self,
        principal: PrincipalId,
        kind: PrincipalKind,
        name: &str,
        session: Option<SessionId>,
        department: Option<DepartmentId>,
        password_change_required: bool,
    ) -> Result<(String, DateTime<Utc>), Error> {
        let now = self.now();
        let mut claims = AccessClaims::new(principal, kind, name, now, self.policy.access_token_lifetime);
        claims.sid = session.map(|s| s.to_string());
        claims.dept = department.map(|d| d.to_string());
        claims.pcr = password_change_required;
        self.sign(claims, now).await
    }

    /// Issues a service principal's access token; it names the client id, which a server
    /// requiring client certificates matches against the caller's certificate.
    pub async fn issue_service_token(
        &self,
        principal: PrincipalId,
        name: &str,
        client_id: &str,
    ) -> Result<(String, DateTime<Utc>), Error> {
        let now = self.now();
        let mut claims =
            AccessClaims::new(principal, PrincipalKind::Service, name, now, self.policy.access_token_lifetime);
        claims.cid = Some(client_id.to_owned());
        self.sign(claims, now).await
    }

    async fn sign(&self, claims: AccessClaims, now: DateTime<Utc>) -> Result<(String, DateTime<Utc>), Error> {
        let expires = DateTime::from_timestamp(claims.exp, 0).unwrap_or(now);
        let token = self.keys.read().await.current.sign(&claims)?;
        Ok((token, expires))
    }

    /// The public keys whose tokens may still be valid, current first.
    pub async fn signing_keys(&self) -> Vec<StoredSigningKey> {
        self.keys.read().await.live.clone()
    }

    /// Replaces the signing key when it is older than the rotation period (the old one
    /// keeps verifying until its tokens expire) and drops retired keys whose tokens have
    /// all expired. Returns whether a new key started.
    pub async fn rotate_signing_key_if_due(&self) -> Result<bool, Error> {
        let now = self.now();
        let due =
            self.keys.read().await.live.first().is_none_or(|k| k.created_at + self.policy.signing_key_rotation <= now);
        let state = load_or_rotate_keys(&self.work, &self.sealer, &self.policy).await?;
        self.verifier_reload(&state.live).await;
        *self.keys.write().await = state;
        Ok(due)
    }

    async fn verifier_reload(&self, live: &[StoredSigningKey]) {
        self.verifier.replace_keys(public_keys(live)).await;
    }

    /// The bindings and state of a principal, and the access decision for `permission`
    /// on `resource` (the authority of R2.2.1).
    pub async fn decide(
        &self,
        tx: &mut Tx,
        principal: PrincipalId,
        permission: &str,
        resource: &Resource,
    ) -> Result<Decision, Error> {
        let Ok(permission) = permission.parse::<Permission>() else {
            return Ok(Decision::Denied(
                Denial::UnknownPermission,
                format!("{permission:?} is not a govmedia permission"),
            ));
        };
        match store::access::principal_state(tx, principal, self.now()).await? {
            PrincipalState::Unknown => Ok(Decision::Denied(Denial::PrincipalUnknown, "no such principal".into())),
            PrincipalState::Disabled => {
                Ok(Decision::Denied(Denial::PrincipalDisabled, "the principal is disabled".into()))
            }
            PrincipalState::PasswordChangeRequired => Ok(Decision::Denied(
                Denial::PasswordChangeRequired,
                "the user must change their password first (R2.3.1)".into(),
            )),
            PrincipalState::Active => {
                let bindings = store::access::bindings_of(tx, principal).await?;
                Ok(domain::access::decide(&bindings, permission, resource))
            }
        }
    }

    /// Requires the caller to hold `permission` on `resource`.
    pub async fn require(
        &self,
        tx: &mut Tx,
        caller: &Principal,
        permission: Permission,
        resource: &Resource,
    ) -> Result<Binding, Error> {
        self.decide(tx, caller.id, permission.as_str(), resource)
            .await?
            .require(permission)
            .map_err(|e| e.on_resource(resource))
    }

    /// An audit record of `action` by `caller` on `resource`, stamped now.
    pub fn record(&self, action: AuditAction, actor: Actor, resource: AuditResourceRef) -> AuditRecord {
        AuditRecord::new(action, actor, resource, PRODUCER, self.now())
            .request(govmedia_kit::telemetry::current_trace_id(), None)
    }

    /// Makes sure another govmedia service can sign in as `client_id` with `secret`:
    /// creates the service principal with the `govmedia_service` role bureau-wide, or sets
    /// the secret of an existing one. What `govmedia up` does on every start, so services
    /// started together need no administrator. True when something changed; audited.
    pub async fn provision_service_principal(&self, client_id: &str, secret: &str) -> Result<bool, Error> {
        use crate::domain::model::ServicePrincipal;
        let hash = crate::domain::tokens::token_hash(secret);
        let actor = Actor::system("govmedia.up");
        self.work
            .run_unkeyed(async |m| {
                let now = m.now();
                let existing = store::directory::get_service_principal_by_client_id(m.tx(), client_id).await?;
                let (principal, action) = match existing {
                    // An administrator disabled it (a suspected leak): a restart does not
                    // undo that; `EnableServicePrincipal` does, by a person, audited.
                    Some(p) if p.disabled => {
                        tracing::warn!(
                            client_id,
                            "the service principal is disabled: the service cannot sign in until an administrator \
                             enables it again (EnableServicePrincipal)"
                        );
                        return Ok(false);
                    }
                    Some(p) if p.secret_hash == hash => return Ok(false),
                    Some(mut p) => {
                        // The installation's secret file changed: the operator rotated it.
                        let action = p.rotate_secret(hash, false, now);
                        store::directory::save_service_principal(m.tx(), &p).await?;
                        (p, action)
                    }
                    None => {
                        let p = ServicePrincipal::new(client_id.to_owned(), client_id.to_owned(), None, hash, now);
                        store::directory::insert_service_principal(m.tx(), &p).await?;
                        let binding = Binding {
                            id: RoleBindingId::new(),
                            principal: p.id.into(),
                            role: Role::GovmediaService,
                            scope: Scope::Global,
                            granted_by: p.id.into(),
                            reason: "govmedia up: a service of this installation".into(),
                            created_at: now,
                        };
                        store::access::insert_binding(m.tx(), &binding).await?;
                        (p, AuditAction::ServicePrincipalCreated)
                    }
                };
                let record = self
                    .record(action, actor, AuditResourceRef::new("service_principal", principal.id))
                    .rule("R2.2.2")
                    .attr("client_id", &principal.client_id);
                m.audit(record);
                Ok(true)
            })
            .await
    }

    async fn bootstrap_admin(&self, options: &IdentityOptions) -> Result<Option<Bootstrap>, Error> {
        if store::directory::count_users(&mut self.db().begin_read().await?).await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match &options.bootstrap_password {
            Some(p) => (p.expose().to_owned(), false),
            None => (password::generate_one_time(), true),
        };
        let personal =
            password::PersonalWords::new([options.bootstrap_admin.as_str(), self.policy().bureau_name.as_str()]);
        password::check_strength("bootstrap_password", &password, &personal)?;
        let hash = {
            let password = password.clone();
            tokio::task::spawn_blocking(move || password::hash(&password)).await.map_err(Error::internal)??
        };
        self.work
            .run_unkeyed(async |m| {
                if store::directory::count_users(m.tx()).await? > 0 {
                    // Another replica bootstrapped between the check and now.
                    return Ok(None);
                }
                let now = m.now();
                let profile = Profile {
                    username: options.bootstrap_admin.clone(),
                    display_name: "Administrator".into(),
                    department: None,
                    email: String::new(),
                    phone: String::new(),
                };
                // The first administrator's password does not expire unused: nobody
                // else could reset it.
                let admin = User::new(profile, hash.clone(), store::far_future(), now);
                store::directory::insert_user(m.tx(), &admin).await?;
                store::directory::push_password_history(m.tx(), admin.id, &hash, now).await?;
                let binding = Binding {
                    id: RoleBindingId::new(),
                    principal: admin.id.into(),
                    role: Role::Administrator,
                    scope: Scope::Global,
                    granted_by: admin.id.into(),
                    reason: "first start: the bootstrap administrator".into(),
                    created_at: now,
                };
                store::access::insert_binding(m.tx(), &binding).await?;
                let record = self
                    .record(
                        AuditAction::AdministratorBootstrapped,
                        Actor::system("identity.bootstrap"),
                        AuditResourceRef::new("user", admin.id),
                    )
                    .rule("R2.2.2")
                    .attr("username", &admin.username)
                    .attr("password_source", if generated { "generated" } else { "configuration" });
                m.audit(record);
                Ok(Some(Bootstrap { admin_username: admin.username, one_time_password: generated.then_some(password) }))
            })
            .await
    }
}

/// Credentials sealed before the login name was part of the associated data are opened
/// with the old binding and sealed again with the new one, in one transaction, each
/// audited; afterwards nothing opens with the old binding, because nothing asks for it.
/// Returns how many were re-sealed.
pub async fn reseal_credentials_bound_to_the_account_only(work: &UnitOfWork, sealer: &Sealer) -> Result<usize, Error> {
    use domain::sealing::CredentialBinding;
    work.run_unkeyed(async |m| {
        let legacy = store::accounts::credentials_sealed_as(m.tx(), CredentialBinding::AccountOnly).await?;
        for mut credential in legacy.iter().cloned() {
            let secret =
                sealer.open(&credential.sealing_key_id, &credential.sealed_secret, &credential.sealing_owner())?;
            credential.binding = CredentialBinding::AccountAndLoginName;
            let (key_id, sealed) = sealer.seal(&secret, &credential.sealing_owner())?;
            credential.sealing_key_id = key_id;
            credential.sealed_secret = sealed;
            store::accounts::reseal_credential(m.tx(), &credential).await?;
            m.audit(
                AuditRecord::new(
                    AuditAction::CredentialResealed,
                    Actor { kind: ActorKind::System, id: String::new(), display_name: "identity.vault".into() },
                    AuditResourceRef::new("platform_account", credential.account.to_string()),
                    PRODUCER,
                    m.now(),
                )
                .rule("R2.3.2")
                .attr("binding", "account_and_login_name"),
            );
        }
        Ok(legacy.len())
    })
    .await
}

fn public_keys(live: &[StoredSigningKey]) -> Vec<(String, [u8; 32])> {
    live.iter().filter_map(|k| Some((k.key_id.clone(), <[u8; 32]>::try_from(k.public_key.as_slice()).ok()?))).collect()
}

/// Loads the live signing keys, creating a new current key when there is none or the
/// current one is due for rotation.
async fn load_or_rotate_keys(work: &UnitOfWork, sealer: &Sealer, policy: &Policy) -> Result<KeyState, Error> {
    let now = work.now();
    // Keys retired within the access-token lifetime (plus leeway) still verify.
    let retired_after = now
        - chrono_duration(policy.access_token_lifetime)
        - chrono::Duration::seconds(i64::try_from(govmedia_kit::auth::LEEWAY_SECONDS).unwrap_or(30));
    let live = work
        .run_unkeyed(async |m| {
            let live = store::sessions::live_signing_keys(m.tx(), retired_after).await?;
            let current_fresh = live
                .iter()
                .find(|k| k.retired_at.is_none())
                .is_some_and(|k| k.created_at + policy.signing_key_rotation > now);
            if current_fresh {
                return Ok(live);
            }
            let key_id = format!("k{}", now.format("%Y%m%d%H%M%S%f"));
            let key = SigningKey::generate(key_id.clone());
            let (sealing_key_id, sealed) = sealer.seal(&key.to_pkcs8_der()?, &key_id)?;
            store::sessions::retire_current_keys(m.tx(), now).await?;
            let stored = StoredSigningKey {
                key_id: key_id.clone(),
                sealed_private_key: sealed,
                sealing_key_id,
                public_key: key.public_key().to_vec(),
                created_at: now,
                retired_at: None,
            };
            store::sessions::insert_signing_key(m.tx(), &stored).await?;
            m.audit(
                AuditRecord::new(
                    AuditAction::SigningKeyRotated,
                    Actor { kind: ActorKind::System, id: String::new(), display_name: "identity.keys".into() },
                    AuditResourceRef::new("signing_key", &key_id),
                    PRODUCER,
                    now,
                )
                .rule("R1.3.5"),
            );
            store::sessions::live_signing_keys(m.tx(), retired_after).await
        })
        .await?;
    let current =
        live.iter().find(|k| k.retired_at.is_none()).ok_or_else(|| Error::internal("no current signing key"))?;
    let der = sealer.open(&current.sealing_key_id, &current.sealed_private_key, &current.key_id)?;
    let signing = SigningKey::from_pkcs8_der(current.key_id.clone(), &der)?;
    Ok(KeyState { current: signing, live })
}

pub use govmedia_proto::identity::{PASSWORD_CHANGE_METHODS, PUBLIC_METHODS};

/// The server for `core`, with every identity service, authentication and limits.
pub fn server(core: &Arc<Core>, settings: ServerSettings) -> ServerBuilder {
    let limit = settings.max_message_bytes;
    let policy = AuthPolicy::standard()
        .with_public(PUBLIC_METHODS.iter().copied())
        .with_password_change_allowed(PASSWORD_CHANGE_METHODS.iter().copied());
    ServerBuilder::new(settings)
        .with_auth(
            AuthLayer::new(core.verifier(), policy)
                .with_session_gate(Arc::clone(core) as Arc<dyn SessionGate>)
                .with_refusal_audit(govmedia_kit::refusals::RefusalAudit::new(core.work().clone(), PRODUCER)),
        )
        .add_service(api::authentication::server(core).max_decoding_message_size(limit))
        .add_service(api::directory::server(core).max_decoding_message_size(limit))
        .add_service(api::access::server(core).max_decoding_message_size(limit))
        .add_service(api::platform_account::server(core).max_decoding_message_size(limit))
        .add_service(api::credential_vault::server(core).max_decoding_message_size(limit))
}

/// Opens the database named by the settings (migrating it) and the service core.
pub async fn open(
    settings: &IdentitySettings,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<Core>, Option<Bootstrap>), StartError> {
    let url = settings.database.database_url.as_ref().ok_or(StartError::Setting(
        govmedia_kit::config::InvalidSetting::new("GOVMEDIA_DATABASE_URL", "the identity service needs a database"),
    ))?;
    let sealer = match &settings.identity.sealing_keys {
        Some(ring) => Sealer::parse(ring.expose()).map_err(|e| {
            StartError::Setting(govmedia_kit::config::InvalidSetting::new(
                "GOVMEDIA_IDENTITY_SEALING_KEYS",
                e.to_string(),
            ))
        })?,
        None => {
            return Err(StartError::Setting(govmedia_kit::config::InvalidSetting::new(
                "GOVMEDIA_IDENTITY_SEALING_KEYS",
                "is required: id:base64 of 32 random bytes (openssl rand -base64 32)",
            )));
        }
    };
    let policy = Policy::from_options(&settings.identity)?;
    let db = Database::open_migrated(
        url,
        settings.database.database_owner_url.as_ref(),
        settings.database.database_max_connections,
        settings.database.database_connect_patience,
        &MIGRATIONS,
    )
    .await?;
    Core::open(db, clock, sealer, policy, &settings.identity).await
}

/// Runs the identity service until `shutdown` completes.
pub async fn serve(
    settings: IdentitySettings,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (core, bootstrap) = open(&settings, Arc::new(SystemClock)).await?;
    if let Some(b) = &bootstrap {
        match &b.one_time_password {
            Some(p) => {
                tracing::warn!(
                    username = %b.admin_username,
                    "first start: administrator created; its one-time password is printed once on stderr and must be changed at first login"
                );
                // The one place a secret is shown: once, to the operator starting the
                // service, on stderr and never in the log stream.
                eprintln!("govmedia identity: bootstrap administrator one-time password: {p}");
            }
            None => {
                tracing::info!(username = %b.admin_username, "first start: administrator created with the configured password")
            }
        }
    }
    for (client_id, file) in &settings.identity.services {
        let secret = std::fs::read_to_string(file)
            .map_err(|e| format!("invalid setting GOVMEDIA_IDENTITY_SERVICES: {}: {e}", file.display()))?;
        if secret.trim().chars().count() < 32 {
            return Err(format!(
                "invalid setting GOVMEDIA_IDENTITY_SERVICES: the secret in {} is shorter than 32 characters",
                file.display()
            )
            .into());
        }
        if core.provision_service_principal(client_id, secret.trim()).await? {
            tracing::info!(client_id, "service principal provisioned");
        }
    }
    let stop = tokio_util::sync::CancellationToken::new();
    let maintenance = tokio::spawn(maintain(Arc::clone(&core), stop.clone()));
    let relay = spawn_relay(&core, &settings, stop.clone())?;
    let bound = server(&core, settings.server.clone()).bind().await?;
    bound.serve(shutdown).await?;
    stop.cancel();
    let _ = maintenance.await;
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    core.db().close().await;
    Ok(())
}

/// Ships identity's audit records to the audit service, authenticating as identity's
/// own service principal (client credentials exchanged with identity itself). Without
/// an audit endpoint and credentials the records wait in the outbox.
fn spawn_relay(
    core: &Arc<Core>,
    settings: &IdentitySettings,
    stop: tokio_util::sync::CancellationToken,
) -> Result<Option<tokio::task::JoinHandle<()>>, Box<dyn std::error::Error + Send + Sync>> {
    use govmedia_kit::client::{CallCredentials, ClientCredentials, lazy_channel};
    use govmedia_kit::outbox::{GrpcAuditSink, Relay};

    let peers = &settings.peers;
    let (Some(audit), Some(client_id), Some(secret)) = (&peers.audit_endpoint, &peers.client_id, &peers.client_secret)
    else {
        tracing::warn!(
            "audit records are kept in the outbox until GOVMEDIA_AUDIT_ENDPOINT, GOVMEDIA_CLIENT_ID and GOVMEDIA_CLIENT_SECRET are set"
        );
        return Ok(None);
    };
    let own = peers.identity_endpoint.clone().unwrap_or_else(|| {
        let mut address = settings.server.listen_address;
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{address}")
    });
    let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
        lazy_channel(&own)?,
        client_id.clone(),
        secret.clone(),
    )));
    let relay = Relay::new(core.db().clone(), GrpcAuditSink::new(lazy_channel(audit)?, credentials))
        .named("identity")
        .with_waker(core.work().relay_waker());
    Ok(Some(tokio::spawn(relay.run(stop))))
}

/// Background upkeep while the service runs: rotate the token-signing key when due, and
/// forget idempotent answers older than a day.
async fn maintain(core: Arc<Core>, stop: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match core.rotate_signing_key_if_due().await {
            Ok(true) => tracing::info!("token-signing key rotated"),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "signing-key rotation failed; will retry"),
        }
        let before = core.now() - chrono::Duration::days(1);
        if let Err(e) = govmedia_kit::idempotency::purge(core.db(), before).await {
            tracing::warn!(error = %e, "purging old idempotency keys failed; will retry");
        }
    }
}

/// The permission-check resource for a platform account (with its department, when the
/// account is registered).
pub async fn account_resource(
    tx: &mut Tx,
    account: govmedia_domain::ids::PlatformAccountId,
) -> Result<Resource, Error> {
    let department = store::access::account_department(tx, account).await?;
    Ok(Resource::platform_account(account, department))
}

#[cfg(test)]
mod bootstrap_tests {
    use super::Bootstrap;

    #[test]
    fn the_bootstrap_never_shows_its_one_time_password_in_debug_output() {
        let b = Bootstrap { admin_username: "admin".into(), one_time_password: Some("Kx7#pQ2m-once".into()) };
        let shown = format!("{b:?}");
        assert!(shown.contains("admin") && shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("Kx7#pQ2m"), "{shown}");
    }
}
