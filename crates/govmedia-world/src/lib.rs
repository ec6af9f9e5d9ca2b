//! Test support for every service built on identity and audit: a real identity service
//! and a real audit service, in-process over loopback gRPC (the audit service verifies
//! identity's tokens and asks identity's CheckPermission), with an administrator, an
//! auditor, a security officer, a role-less user, and service principals; helpers make
//! more staff with scoped roles. A dev-dependency only.

use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use govmedia_audit::appender::CheckpointPolicy;
use govmedia_domain::clock::SystemClock;
use govmedia_identity::domain::sealing::Sealer;
use govmedia_kit::access::PermissionChecker;
use govmedia_kit::auth::TokenVerifier;
use govmedia_kit::client::{CallCredentials, ClientCredentials};
use govmedia_kit::config::{Secret, ServerSettings};
use govmedia_kit::db::Database;
use govmedia_proto::audit::v1::audit_log_service_client::AuditLogServiceClient;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::access_service_client::AccessServiceClient;
use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
use govmedia_proto::identity::v1::directory_service_client::DirectoryServiceClient;
use govmedia_testkit::{TestDatabase, TestServer, with_token};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The password the world's staff end up with.
pub const STAFF_PASSWORD: &str = "Quiet#Forest2026";
const STRONG: &str = "Harbour#Lights2026";
/// Checkpoints are signed every this many events in the world.
pub const CHECKPOINT_EVERY: i64 = 10;

/// Identity and audit, running.
pub struct World {
    /// The identity service.
    pub identity: TestServer,
    /// The audit service.
    pub audit: TestServer,
    /// The audit service's database.
    pub audit_db: Database,
    /// The identity service's database.
    pub identity_db: Database,
    /// The administrator's access token.
    pub admin_token: String,
    /// The client secret of the `govmedia-content` service principal.
    pub content_secret: String,
    /// The identity service's own client secret (principal `govmedia-identity`).
    pub identity_secret: String,
    /// The audit service's core.
    pub core: Arc<govmedia_audit::Core>,
    /// A service principal holding govmedia_service (may append).
    pub content_token: String,
    /// A user holding auditor (may read, verify, export).
    pub auditor_token: String,
    /// A user with no role.
    pub nobody_token: String,
    /// A user holding security_officer (manages the lexicon).
    pub officer_token: String,
    /// The interaction service's client secret.
    pub interaction_secret: String,
    stop: CancellationToken,
    _identity_db: TestDatabase,
    _audit_db: TestDatabase,
}

impl Drop for World {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A fresh request id.
pub fn rid() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Provisions a service of this installation, as `govmedia up` does: the service
/// principal `client_id` holding `govmedia_service` (which no role grant gives); its
/// secret.
pub async fn provisioned_service(identity: &govmedia_identity::Core, client_id: &str) -> String {
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    identity.provision_service_principal(client_id, &secret).await.expect("provisioned");
    secret
}

/// Registers a service principal holding `role` globally; (id, secret).
pub async fn service_principal_with_role(
    directory: &mut DirectoryServiceClient<Channel>,
    access: &mut AccessServiceClient<Channel>,
    admin: &str,
    client_id: &str,
    role: &str,
) -> (String, String) {
    let created = directory
        .create_service_principal(with_token(
            ipb::CreateServicePrincipalRequest {
                request_id: rid(),
                service_principal: Some(ipb::ServicePrincipal {
                    client_id: client_id.into(),
                    display_name: client_id.into(),
                    ..Default::default()
                }),
            },
            admin,
        ))
        .await
        .unwrap_or_else(|e| panic!("service principal {client_id}: {e}"))
        .into_inner();
    let id = created.service_principal.expect("principal").id;
    grant(access, admin, &id, role).await;
    (id, created.client_secret)
}

/// Grants `role` globally.
pub async fn grant(access: &mut AccessServiceClient<Channel>, admin: &str, principal: &str, role: &str) {
    access
        .create_role_binding(with_token(
            ipb::CreateRoleBindingRequest {
                request_id: rid(),
                role_binding: Some(ipb::RoleBinding {
                    principal_id: principal.into(),
                    role: role.into(),
                    scope: Some(cpb::Scope { kind: cpb::ScopeKind::Global as i32, id: String::new() }),
                    reason: "test world".into(),
                    ..Default::default()
                }),
            },
            admin,
        ))
        .await
        .expect("granted");
}

/// Through `identity` (the service, or a gateway in front of it), `admin` grants `role` to
/// `principal` in a scope (`kind` global, department or account).
pub async fn grant_in_scope(
    identity: Channel,
    admin: &str,
    principal: &str,
    role: &str,
    kind: cpb::ScopeKind,
    scope_id: &str,
) {
    AccessServiceClient::new(identity)
        .create_role_binding(with_token(
            ipb::CreateRoleBindingRequest {
                request_id: rid(),
                role_binding: Some(ipb::RoleBinding {
                    principal_id: principal.into(),
                    role: role.into(),
                    scope: Some(cpb::Scope { kind: kind as i32, id: scope_id.into() }),
                    reason: "test world".into(),
                    ..Default::default()
                }),
            },
            admin,
        ))
        .await
        .unwrap_or_else(|e| panic!("granting {role}: {e}"));
}

/// Through `identity` (the service, or a gateway in front of it), `admin` creates a member
/// of staff of `department` with scoped roles, who signs in with the one-time password —
/// which must be changed (R2.3.1) — and sets `password`; (id, token).
pub async fn staff_member(
    identity: Channel,
    admin: &str,
    username: &str,
    department: &str,
    roles: &[(&str, cpb::ScopeKind, &str)],
    password: &str,
) -> (String, String) {
    let mut directory = DirectoryServiceClient::new(identity.clone());
    let mut auth = AuthenticationServiceClient::new(identity.clone());
    let created = directory
        .create_user(with_token(
            ipb::CreateUserRequest {
                request_id: rid(),
                user: Some(ipb::User {
                    username: username.into(),
                    display_name: username.into(),
                    department_id: department.into(),
                    ..Default::default()
                }),
            },
            admin,
        ))
        .await
        .unwrap_or_else(|e| panic!("creating {username}: {e}"))
        .into_inner();
    let id = created.user.expect("user").id;
    for (role, kind, scope) in roles {
        grant_in_scope(identity.clone(), admin, &id, role, *kind, scope).await;
    }
    let first = auth
        .login(ipb::LoginRequest { username: username.into(), password: created.one_time_password.clone() })
        .await
        .unwrap_or_else(|e| panic!("{username} signs in: {e}"))
        .into_inner();
    assert!(first.password_change_required, "a one-time password must be changed (R2.3.1)");
    let token = auth
        .change_password(with_token(
            ipb::ChangePasswordRequest { current_password: created.one_time_password, new_password: password.into() },
            &first.tokens.expect("tokens").access_token,
        ))
        .await
        .unwrap_or_else(|e| panic!("{username} changes the password: {e}"))
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    (id, token)
}

/// Creates a user and activates it; (id, token).
pub async fn user(
    directory: &mut DirectoryServiceClient<Channel>,
    auth: &mut AuthenticationServiceClient<Channel>,
    admin: &str,
    username: &str,
) -> (String, String) {
    let created = directory
        .create_user(with_token(
            ipb::CreateUserRequest {
                request_id: rid(),
                user: Some(ipb::User {
                    username: username.into(),
                    display_name: username.into(),
                    ..Default::default()
                }),
            },
            admin,
        ))
        .await
        .expect("user")
        .into_inner();
    let first = auth
        .login(ipb::LoginRequest { username: username.into(), password: created.one_time_password.clone() })
        .await
        .expect("login")
        .into_inner();
    let token = auth
        .change_password(with_token(
            ipb::ChangePasswordRequest {
                current_password: created.one_time_password,
                new_password: STAFF_PASSWORD.into(),
            },
            &first.tokens.expect("tokens").access_token,
        ))
        .await
        .expect("changed")
        .into_inner()
        .tokens
        .expect("tokens")
        .access_token;
    (created.user.expect("user").id, token)
}

impl World {
    /// Starts identity (SQLite) and audit (on `audit_database`).
    pub async fn start(audit_database: TestDatabase) -> Self {
        // Identity on real time: audit verifies its tokens with the system clock.
        let identity_database = TestDatabase::sqlite();
        let identity_db = identity_database.connect(&govmedia_identity::MIGRATIONS).await;
        let identity_db_handle = identity_db.clone();
        let options = {
            use clap::Parser;
            #[derive(clap::Parser)]
            struct Only {
                #[command(flatten)]
                identity: govmedia_identity::IdentityOptions,
            }
            let mut o = Only::parse_from(["test"]).identity;
            o.bootstrap_password = Some(Secret::new(STRONG));
            o.working_hours = "00:00-23:59".into();
            o
        };
        let policy = govmedia_identity::Policy::from_options(&options).expect("policy");
        let (identity_core, _) = govmedia_identity::Core::open(
            identity_db,
            Arc::new(SystemClock),
            Sealer::generate("k1").0,
            policy,
            &options,
        )
        .await
        .expect("identity");
        let identity = TestServer::start(govmedia_identity::server(&identity_core, ServerSettings::loopback())).await;

        let mut auth = AuthenticationServiceClient::new(identity.channel());
        let mut directory = DirectoryServiceClient::new(identity.channel());
        let mut access = AccessServiceClient::new(identity.channel());
        let first = auth
            .login(ipb::LoginRequest { username: "admin".into(), password: STRONG.into() })
            .await
            .expect("login")
            .into_inner();
        let admin = auth
            .change_password(with_token(
                ipb::ChangePasswordRequest {
                    current_password: STRONG.into(),
                    new_password: "Bureau#Harbour2026".into(),
                },
                &first.tokens.expect("tokens").access_token,
            ))
            .await
            .expect("changed")
            .into_inner()
            .tokens
            .expect("tokens")
            .access_token;

        let audit_secret = provisioned_service(&identity_core, "govmedia-audit").await;
        let content_secret = provisioned_service(&identity_core, "govmedia-content").await;
        let identity_secret = provisioned_service(&identity_core, "govmedia-identity").await;
        let interaction_secret = provisioned_service(&identity_core, "govmedia-interaction").await;
        let content_token = auth
            .exchange_client_credentials(ipb::ExchangeClientCredentialsRequest {
                client_id: "govmedia-content".into(),
                client_secret: content_secret.clone(),
            })
            .await
            .expect("token")
            .into_inner()
            .tokens
            .expect("tokens")
            .access_token;
        let (auditor_id, auditor_token) = user(&mut directory, &mut auth, &admin, "auditor").await;
        grant(&mut access, &admin, &auditor_id, "auditor").await;
        let (_, nobody_token) = user(&mut directory, &mut auth, &admin, "nobody").await;
        let (officer_id, officer_token) = user(&mut directory, &mut auth, &admin, "officer").await;
        grant(&mut access, &admin, &officer_id, "security_officer").await;

        let audit_db = audit_database.connect(&govmedia_audit::MIGRATIONS).await;
        let credentials = CallCredentials::ClientCredentials(Arc::new(ClientCredentials::new(
            identity.channel(),
            "govmedia-audit".into(),
            Secret::new(audit_secret),
        )));
        let stop = CancellationToken::new();
        let core = govmedia_audit::Core::open(
            audit_db.clone(),
            Arc::new(SystemClock),
            CheckpointPolicy {
                every_events: CHECKPOINT_EVERY,
                every: Duration::from_secs(3600),
                key_id: "audit-test".into(),
                key: SigningKey::from_bytes(&[42; 32]),
            },
            // Services under test run on manual clocks moved days or months ahead: the
            // time window is the audit service's own tests' concern, not the world's.
            govmedia_audit::AppendPolicy::new(&[], chrono::Duration::days(3650), chrono::Duration::days(3650)),
            PermissionChecker::new(identity.channel(), credentials.clone(), govmedia_kit::access::DEFAULT_TTL),
            govmedia_audit::Supervision {
                register: govmedia_audit::AccountRegister::new(identity.channel(), credentials),
                content: None,
                time_zone: chrono_tz::Asia::Shanghai,
                calendar: govmedia_domain::holidays::OfficialCalendar::shipped(),
            },
            stop.clone(),
        )
        .await
        .expect("audit opens");
        let verifier = Arc::new(TokenVerifier::from_identity(identity.channel()));
        let audit = TestServer::start(govmedia_audit::server(&core, ServerSettings::loopback(), verifier)).await;
        Self {
            identity,
            audit,
            admin_token: admin.clone(),
            content_secret,
            audit_db,
            identity_db: identity_db_handle,
            identity_secret,
            interaction_secret,
            core,
            content_token,
            auditor_token,
            nobody_token,
            officer_token,
            stop,
            _identity_db: identity_database,
            _audit_db: audit_database,
        }
    }

    /// Grants `role` to `principal` in a scope (`kind` global, department or account).
    pub async fn grant_scoped(&self, principal: &str, role: &str, kind: cpb::ScopeKind, scope_id: &str) {
        grant_in_scope(self.identity.channel(), &self.admin_token, principal, role, kind, scope_id).await;
    }

    /// A member of staff with scoped roles; (id, token). Passwords are [`STAFF_PASSWORD`].
    pub async fn staff(
        &self,
        username: &str,
        department: &str,
        roles: &[(&str, cpb::ScopeKind, &str)],
    ) -> (String, String) {
        staff_member(self.identity.channel(), &self.admin_token, username, department, roles, STAFF_PASSWORD).await
    }

    /// A service principal of another system holding `role` globally (for example a
    /// platform integration that delivers comments); its access token.
    pub async fn service_token(&self, client_id: &str, role: &str) -> String {
        let mut directory = DirectoryServiceClient::new(self.identity.channel());
        let mut access = AccessServiceClient::new(self.identity.channel());
        let (_, secret) =
            service_principal_with_role(&mut directory, &mut access, &self.admin_token, client_id, role).await;
        AuthenticationServiceClient::new(self.identity.channel())
            .exchange_client_credentials(ipb::ExchangeClientCredentialsRequest {
                client_id: client_id.into(),
                client_secret: secret,
            })
            .await
            .expect("token")
            .into_inner()
            .tokens
            .expect("tokens")
            .access_token
    }

    /// A department; its id.
    pub async fn department(&self, name: &str, code: &str) -> String {
        DirectoryServiceClient::new(self.identity.channel())
            .create_department(with_token(
                ipb::CreateDepartmentRequest {
                    request_id: rid(),
                    department: Some(ipb::Department { name: name.into(), code: code.into(), ..Default::default() }),
                },
                &self.admin_token,
            ))
            .await
            .unwrap_or_else(|e| panic!("creating department {name}: {e}"))
            .into_inner()
            .department
            .expect("department")
            .id
    }

    /// A platform account of `department` with `responsible` as its designated person; its id.
    pub async fn platform_account(
        &self,
        platform: cpb::Platform,
        handle: &str,
        department: &str,
        responsible: &str,
    ) -> String {
        govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient::new(
            self.identity.channel(),
        )
        .create_platform_account(with_token(
            ipb::CreatePlatformAccountRequest {
                request_id: rid(),
                platform_account: Some(ipb::PlatformAccount {
                    platform: platform as i32,
                    handle: handle.into(),
                    profile: Some(ipb::PlatformAccountProfile { display_name: handle.into(), ..Default::default() }),
                    department_id: department.into(),
                    responsible_user_id: responsible.into(),
                    ..Default::default()
                }),
            },
            &self.admin_token,
        ))
        .await
        .unwrap_or_else(|e| panic!("registering {handle}: {e}"))
        .into_inner()
        .platform_account
        .expect("account")
        .id
    }

    /// Freezes an account, as an administrator would on an anomaly (R2.3.3).
    pub async fn freeze_account(&self, account: &str, reason: &str) {
        govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient::new(
            self.identity.channel(),
        )
        .freeze_platform_account(with_token(
            ipb::FreezePlatformAccountRequest {
                request_id: rid(),
                platform_account_id: account.into(),
                reason: reason.into(),
                etag: String::new(),
            },
            &self.admin_token,
        ))
        .await
        .unwrap_or_else(|e| panic!("freezing {account}: {e}"));
    }

    /// A screening client.
    pub fn screening(&self) -> govmedia_proto::audit::v1::screening_service_client::ScreeningServiceClient<Channel> {
        govmedia_proto::audit::v1::screening_service_client::ScreeningServiceClient::new(self.audit.channel())
    }

    /// An audit-log client.
    pub fn client(&self) -> AuditLogServiceClient<Channel> {
        AuditLogServiceClient::new(self.audit.channel())
    }

    /// The access token of a provisioned service principal (`govmedia-interaction` with
    /// [`World::interaction_secret`], ...).
    pub async fn principal_token(&self, client_id: &str, secret: &str) -> String {
        AuthenticationServiceClient::new(self.identity.channel())
            .exchange_client_credentials(ipb::ExchangeClientCredentialsRequest {
                client_id: client_id.into(),
                client_secret: secret.into(),
            })
            .await
            .expect("token")
            .into_inner()
            .tokens
            .expect("tokens")
            .access_token
    }

    /// Waits (up to 5 s) until the log holds at least `at_least` events of `actions`, and
    /// returns them: records written through an outbox arrive a moment after the change.
    pub async fn records(&self, actions: &[&str], at_least: usize) -> Vec<govmedia_proto::audit::v1::AuditEvent> {
        use govmedia_proto::audit::v1 as apb;
        for _ in 0..100 {
            let events = self
                .client()
                .query_events(with_token(
                    apb::QueryEventsRequest {
                        filter: Some(apb::EventFilter {
                            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
                            ..Default::default()
                        }),
                        page_size: 1000,
                        page_token: String::new(),
                    },
                    &self.auditor_token,
                ))
                .await
                .expect("queried")
                .into_inner()
                .events;
            if events.len() >= at_least {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("fewer than {at_least} records of {actions:?}");
    }

    /// Runs raw SQL on the audit database, as an attacker with database rights would.
    pub async fn sql(&self, statement: &str) {
        match &self.audit_db {
            Database::Postgres(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
            Database::Sqlite(pool) => sqlx::query(statement).execute(pool).await.map(|_| ()),
        }
        .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }

    /// Turns the append-only guard off (what an attacker with admin rights could do).
    pub async fn disable_guard(&self) {
        match &self.audit_db {
            Database::Postgres(_) => {
                self.sql("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only").await;
                self.sql("ALTER TABLE audit_checkpoints DISABLE TRIGGER audit_checkpoints_append_only").await;
            }
            Database::Sqlite(_) => {
                for t in [
                    "audit_events_no_update",
                    "audit_events_no_delete",
                    "audit_checkpoints_no_update",
                    "audit_checkpoints_no_delete",
                ] {
                    self.sql(&format!("DROP TRIGGER {t}")).await;
                }
            }
        }
    }
}
