//! `AuthenticationService`: login with lockout and anomaly detection, rotating refresh
//! tokens with reuse detection, logout, password changes, service-principal tokens, the
//! public signing keys, and login security events (R2.2.2, R2.3.1, R2.3.3).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, ActorKind, AuditAction, AuditResourceRef, Outcome};
use govmedia_domain::ids::{SecurityEventId, SessionId, UserId};
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::auth::{Principal, PrincipalKind};
use govmedia_kit::db::Tx;
use govmedia_kit::mutation::{Call, Mutation};
use govmedia_kit::wire::unpack;
use govmedia_proto::identity::v1 as pb;
use govmedia_proto::identity::v1::authentication_service_server::{AuthenticationService, AuthenticationServiceServer};
use tonic::Request;

use super::{caller, client_address, cursor, from_ts, method, next_token, opt_ts, page_size, ts};
use crate::Core;
use crate::domain::model::{RefreshToken, SecurityEvent, SecurityEventKind, Session, User, UserStatus};
use crate::domain::{lockout, password, tokens};
use crate::store::{access as access_store, directory, security, sessions};

/// The one answer for a wrong username or a wrong password.
fn bad_credentials() -> Error {
    Error::Unauthenticated("wrong username or password".into())
}

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> AuthenticationServiceServer<Authentication> {
    AuthenticationServiceServer::new(Authentication { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Authentication {
    core: Arc<Core>,
}

fn event_to_proto(e: &SecurityEvent) -> pb::SecurityEvent {
    pb::SecurityEvent {
        id: e.id.to_string(),
        kind: match e.kind {
            SecurityEventKind::LoginFailureBurst => pb::SecurityEventKind::LoginFailureBurst,
            SecurityEventKind::LoginFromNewAddress => pb::SecurityEventKind::LoginFromNewAddress,
            SecurityEventKind::LoginOutsideWorkingHours => pb::SecurityEventKind::LoginOutsideWorkingHours,
            SecurityEventKind::LoginLocked => pb::SecurityEventKind::LoginLocked,
            SecurityEventKind::RefreshTokenReused => pb::SecurityEventKind::RefreshTokenReused,
        } as i32,
        user_id: e.user.map(|u| u.to_string()).unwrap_or_default(),
        username: e.username.clone(),
        client_address: e.client_address.clone(),
        create_time: Some(ts(e.created_at)),
        detail: e.detail.clone(),
        acknowledged_by: e.acknowledged_by.clone().unwrap_or_default(),
        acknowledge_time: opt_ts(e.acknowledged_at),
        acknowledge_note: e.acknowledge_note.clone().unwrap_or_default(),
    }
}

fn user_actor(user: &User) -> Actor {
    Actor { kind: ActorKind::User, id: user.id.to_string(), display_name: user.display_name.clone() }
}

impl Authentication {
    /// Raises a security event in the transaction: stored for the security officer, with
    /// its audit record.
    async fn raise(
        &self,
        m: &mut Mutation,
        kind: SecurityEventKind,
        user: Option<UserId>,
        username: &str,
        address: &str,
        detail: String,
    ) -> Result<(), Error> {
        let event = SecurityEvent {
            id: SecurityEventId::new(),
            kind,
            user,
            username: username.to_owned(),
            client_address: address.to_owned(),
            detail,
            created_at: m.now(),
            acknowledged_by: None,
            acknowledged_at: None,
            acknowledge_note: None,
        };
        security::insert_security_event(m.tx(), &event).await?;
        let record = self
            .core
            .record(
                AuditAction::SecurityEventRaised,
                Actor::system("identity.login"),
                AuditResourceRef::new("security_event", event.id),
            )
            .rule("R2.3.3")
            .client_address(Some(event.client_address.clone()))
            .attr("kind", event.kind.as_str())
            .attr("username", &event.username)
            .attr("detail", &event.detail);
        m.audit(record);
        Ok(())
    }

    /// A throttle of `throttle.username` from its address starts, until `until`: a security
    /// event for the administrator and an audit record; a known user's record shows the
    /// latest end, and the owner is told at their next sign-in (`LoginHistory`).
    async fn throttled(
        &self,
        m: &mut Mutation,
        user: Option<&mut User>,
        throttle: &lockout::Throttle,
        until: DateTime<Utc>,
    ) -> Result<(), Error> {
        let now = m.now();
        let Some(user) = user else {
            // Nobody to tell: an unknown name is throttled alike, and the failure-burst
            // event reports the address that keeps trying.
            return Ok(());
        };
        let detail = format!(
            "sign-ins from {} throttled until {} after {} failed logins",
            throttle.client_address,
            until.to_rfc3339(),
            self.core.policy().lockout.threshold
        );
        self.raise(
            m,
            SecurityEventKind::LoginLocked,
            Some(user.id),
            &throttle.username,
            &throttle.client_address,
            detail,
        )
        .await?;
        m.audit(
            self.core
                .record(
                    AuditAction::UserLoginLocked,
                    Actor::system("identity.login"),
                    AuditResourceRef::new("user", user.id),
                )
                .rule("R2.3.1")
                .client_address(Some(throttle.client_address.clone()))
                .attr("locked_until", until.to_rfc3339())
                .attr("lockout_count", throttle.lockout_count),
        );
        user.throttled(until, now);
        directory::save_user(m.tx(), user).await?;
        Ok(())
    }

    /// Records a failed login, and a failure-burst event when the threshold is reached.
    async fn record_failure(
        &self,
        m: &mut Mutation,
        user: Option<&User>,
        username: &str,
        address: &str,
        why: &str,
    ) -> Result<(), Error> {
        let now = m.now();
        // A name no user has may be a password typed in the wrong field: it is kept,
        // counted and logged only as a digest (the audit log is immutable).
        let unknown;
        let username = match user {
            Some(_) => username,
            None => {
                unknown = unknown_username(username);
                unknown.as_str()
            }
        };
        security::insert_login_failure(m.tx(), username, address, now).await?;
        let since = now - self.core.policy().failure_burst_window;
        let (by_username, by_address) = security::count_failures_since(m.tx(), username, address, since).await?;
        let threshold = self.core.policy().failure_burst_threshold;
        if by_username == threshold || by_address == threshold {
            let detail = format!(
                "{by_username} failed logins for {username:?} and {by_address} from {address} in the last {} minutes",
                self.core.policy().failure_burst_window.num_minutes()
            );
            self.raise(m, SecurityEventKind::LoginFailureBurst, user.map(|u| u.id), username, address, detail).await?;
        }
        let actor = match user {
            Some(u) => user_actor(u),
            None => Actor { kind: ActorKind::User, id: String::new(), display_name: username.to_owned() },
        };
        let resource = match user {
            Some(u) => AuditResourceRef::new("user", u.id),
            None => AuditResourceRef::new("user", ""),
        };
        let record = self
            .core
            .record(AuditAction::UserLoginFailed, actor, resource)
            .outcome(Outcome::Failure)
            .rule("R2.2.2")
            .client_address(Some(address.to_owned()))
            .attr("username", username)
            .attr("why", why);
        m.audit(record);
        Ok(())
    }

    /// Starts a session: session row, refresh token, access token.
    async fn start_session(
        &self,
        tx: &mut Tx,
        user: &User,
        password_change_only: bool,
        address: &str,
        now: DateTime<Utc>,
    ) -> Result<(pb::SessionTokens, SessionId), Error> {
        let session = Session {
            id: SessionId::new(),
            principal: user.id.into(),
            password_change_only,
            client_address: address.to_owned(),
            created_at: now,
            revoked_at: None,
        };
        sessions::insert_session(tx, &session).await?;
        let tokens = self.issue_tokens(tx, user, (session.id, now), password_change_only, now).await?;
        Ok((tokens, session.id))
    }

    async fn issue_tokens(
        &self,
        tx: &mut Tx,
        user: &User,
        (session, started): (SessionId, DateTime<Utc>),
        password_change_only: bool,
        now: DateTime<Utc>,
    ) -> Result<pb::SessionTokens, Error> {
        let refresh = tokens::new_refresh_token();
        // However often it is refreshed, a session ends at its cap (R2.3.3): a stolen
        // refresh token cannot keep itself alive for ever.
        let policy = self.core.policy();
        let refresh_expires = (now + policy.refresh_token_lifetime).min(started + policy.session_max_lifetime);
        sessions::insert_refresh_token(
            tx,
            &RefreshToken {
                token_hash: tokens::token_hash(&refresh),
                session,
                issued_at: now,
                expires_at: refresh_expires,
                spent_at: None,
            },
        )
        .await?;
        let (access, access_expires) = self
            .core
            .issue_access_token(
                user.id.into(),
                PrincipalKind::User,
                &user.display_name,
                Some(session),
                user.department,
                password_change_only,
            )
            .await?;
        Ok(pb::SessionTokens {
            access_token: access,
            access_token_expire_time: Some(ts(access_expires)),
            refresh_token: refresh,
            refresh_token_expire_time: Some(ts(refresh_expires)),
            session_id: session.to_string(),
        })
    }
}

/// The caller as the wire names a principal.
fn principal_ref(caller: &Principal) -> govmedia_proto::common::v1::PrincipalRef {
    govmedia_proto::common::v1::PrincipalRef {
        kind: match caller.kind {
            PrincipalKind::User => govmedia_proto::common::v1::PrincipalKind::User,
            PrincipalKind::Service => govmedia_proto::common::v1::PrincipalKind::Service,
        } as i32,
        id: caller.id.to_string(),
        display_name: caller.display_name.clone(),
    }
}

/// A validated `ListSecurityEvents`.
struct SecurityEventQuery {
    filter: security::SecurityEventFilter,
    limit: u32,
    before: Option<(DateTime<Utc>, String)>,
}

impl TryFrom<&pb::ListSecurityEventsRequest> for SecurityEventQuery {
    type Error = Error;

    fn try_from(req: &pb::ListSecurityEventsRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let user = v.optional_id("user_id", &req.user_id);
        let kind = match pb::SecurityEventKind::try_from(req.kind) {
            Ok(pb::SecurityEventKind::Unspecified) => None,
            Ok(pb::SecurityEventKind::LoginFailureBurst) => Some(SecurityEventKind::LoginFailureBurst),
            Ok(pb::SecurityEventKind::LoginFromNewAddress) => Some(SecurityEventKind::LoginFromNewAddress),
            Ok(pb::SecurityEventKind::LoginOutsideWorkingHours) => Some(SecurityEventKind::LoginOutsideWorkingHours),
            Ok(pb::SecurityEventKind::LoginLocked) => Some(SecurityEventKind::LoginLocked),
            Ok(pb::SecurityEventKind::RefreshTokenReused) => Some(SecurityEventKind::RefreshTokenReused),
            Err(_) => {
                v.violation("kind", "is not a security event kind");
                None
            }
        };
        let range = req.time_range.unwrap_or_default();
        let from = range.start_time.as_ref().map(|t| from_ts("time_range.start_time", t)).transpose()?;
        let to = range.end_time.as_ref().map(|t| from_ts("time_range.end_time", t)).transpose()?;
        v.finish()?;
        let filter =
            security::SecurityEventFilter { kind, user, from, to, unacknowledged_only: req.unacknowledged_only };
        Ok(SecurityEventQuery { filter, limit: page_size(req.page_size)?, before: cursor(&req.page_token)? })
    }
}

#[govmedia_kit::handlers]
impl AuthenticationService for Authentication {
    async fn login(&self, request: Request<pb::LoginRequest>) -> Result<pb::LoginResponse, Error> {
        let address = client_address(&request);
        let req = request.into_inner();
        let mut v = Validator::new();
        let username = v.required_text("username", &req.username, 64);
        if req.password.is_empty() {
            v.violation("password", "is required");
        }
        let username = v.finish_with(|| username)?;

        // Verify outside any transaction: argon2 takes tens of milliseconds.
        let mut read = self.core.db().begin_read().await?;
        let found = directory::get_user_by_username(&mut read, &username).await?;
        drop(read);
        let hash = found.as_ref().map_or_else(|| password::decoy_hash().to_owned(), |u| u.password_hash.clone());
        let given = req.password.clone();
        let verified =
            tokio::task::spawn_blocking(move || password::verify(&hash, &given)).await.map_err(Error::internal)?;

        let outcome = self.core.work().run_unkeyed(async |m| {
            let now = m.now();
            // Throttled, unknown, wrong and disabled are one answer: which it was is told
            // only to the audit log, the administrator and the owner (R2.3.1).
            // An unknown name is throttled under its digest, as it is logged.
            let key = if found.is_some() { username.clone() } else { unknown_username(&username) };
            let mut throttle = security::get_throttle(m.tx(), &key, &address)
                .await?
                .unwrap_or_else(|| lockout::Throttle::new(&key, &address));
            let mut user = match found {
                Some(found) => directory::lock_user(m.tx(), found.id).await?,
                None => None,
            };
            let refusal = if throttle.is_locked(now) {
                Some("throttled after repeated failures from this address")
            } else if user.is_none() {
                Some("unknown username")
            } else if !verified {
                Some("wrong password")
            } else if user.as_ref().is_some_and(|u| u.status == UserStatus::Disabled) {
                Some("user disabled")
            } else {
                None
            };
            if let Some(why) = refusal {
                // Attempts during a throttle do not extend it: its end, as told to the
                // owner and the administrator, stays its end.
                if !throttle.is_locked(now)
                    && let Some(until) = throttle.fail(&self.core.policy().lockout, now)
                {
                    self.throttled(m, user.as_mut(), &throttle, until).await?;
                }
                security::save_throttle(m.tx(), &throttle, now).await?;
                self.record_failure(m, user.as_ref(), &username, &address, why).await?;
                return Ok(Err(bad_credentials()));
            }
            let Some(mut user) = user else { return Ok(Err(bad_credentials())) };

            if user.one_time_password_expired(now) {
                // Told apart from a wrong password only in the audit trail.
                self.record_failure(m, Some(&user), &username, &address, "one-time password expired").await?;
                return Ok(Err(bad_credentials()));
            }

            // Success: tell the owner what was tried since their last sign-in.
            let since = user.last_login_at.unwrap_or(user.created_at);
            let tried = security::failures_since(m.tx(), &username, since).await?;
            // A password someone else set (a reset): the owner is told who and when.
            let set_by = directory::password_set_by_other(m.tx(), user.id).await?;
            let login_history = pb::LoginHistory {
                previous_login_time: opt_ts(user.last_login_at),
                failed_attempts: i32::try_from(tried.count).unwrap_or(i32::MAX),
                last_failed_attempt_time: opt_ts(tried.last.as_ref().map(|(at, _)| *at)),
                last_failed_attempt_client_address: tried.last.map(|(_, a)| a).unwrap_or_default(),
                throttled_until: opt_ts(tried.throttled_until),
                password_set_time: set_by.as_ref().map(|(at, _, _)| ts(*at)),
                password_set_by: set_by.map(|(_, id, name)| format!("{name} ({id})")).unwrap_or_default(),
            };
            security::clear_throttles(m.tx(), &username, Some(&address)).await?;
            user.logged_in(now);
            directory::save_user(m.tx(), &user).await?;
            let (new_address, had_addresses) = security::remember_address(m.tx(), user.id, &address, now).await?;
            if new_address && had_addresses {
                self.raise(
                    m,
                    SecurityEventKind::LoginFromNewAddress,
                    Some(user.id),
                    &username,
                    &address,
                    format!("first login of {username:?} from {address}"),
                )
                .await?;
            }
            if !self.core.policy().working_hours.contains(now) {
                let hours = &self.core.policy().working_hours;
                self.raise(
                    m,
                    SecurityEventKind::LoginOutsideWorkingHours,
                    Some(user.id),
                    &username,
                    &address,
                    format!(
                        "login at {} local time, outside {}-{} on working days",
                        now.with_timezone(&hours.zone).format("%a %Y-%m-%d %H:%M"),
                        hours.start,
                        hours.end
                    ),
                )
                .await?;
            }
            let restricted = user.password_change_required(now);
            let (tokens, session) = self.start_session(m.tx(), &user, restricted, &address, now).await?;
            m.audit(
                self.core
                    .record(AuditAction::UserLoginSucceeded, user_actor(&user), AuditResourceRef::new("user", user.id))
                    .rule("R2.2.2")
                    .client_address(Some(address))
                    .attr("session_id", session)
                    .attr("password_change_required", restricted),
            );
            let answer = pb::LoginResponse {
                tokens: Some(tokens),
                password_change_required: restricted,
                user_id: user.id.to_string(),
                login_history: Some(login_history),
            };
            Ok(Ok(answer))
        });
        outcome.await?
    }

    async fn refresh_session(
        &self,
        request: Request<pb::RefreshSessionRequest>,
    ) -> Result<pb::RefreshSessionResponse, Error> {
        let address = client_address(&request);
        let req = request.into_inner();
        if req.refresh_token.is_empty() {
            return Err(Error::invalid("refresh_token", "is required"));
        }
        let invalid = || Error::Unauthenticated("the refresh token is invalid or expired".into());
        let hash = tokens::token_hash(&req.refresh_token);
        let outcome = self.core.work().run_unkeyed(async |m| {
            let now = m.now();
            let token = sessions::get_refresh_token(m.tx(), &hash).await?.ok_or_else(invalid)?;
            let session = sessions::get_session(m.tx(), token.session).await?.ok_or_else(invalid)?;
            let capped = session.created_at + self.core.policy().session_max_lifetime <= now;
            if session.revoked_at.is_some() || token.expires_at <= now || capped {
                return Err(invalid());
            }
            if token.spent_at.is_some() || !sessions::spend_refresh_token(m.tx(), &hash, now).await? {
                // A spent token presented again: someone holds a copy. End the whole family.
                sessions::revoke_session(m.tx(), session.id, "refresh token reused", now).await?;
                let user = UserId::from_uuid(session.principal.as_uuid());
                let username = directory::get_user(m.tx(), user).await?.map(|u| u.username).unwrap_or_default();
                self.raise(
                    m,
                    SecurityEventKind::RefreshTokenReused,
                    Some(user),
                    &username,
                    &address,
                    format!(
                        "a spent refresh token of session {} was presented again; the session was revoked",
                        session.id
                    ),
                )
                .await?;
                m.audit(
                    self.core
                        .record(
                            AuditAction::SessionRevoked,
                            Actor::system("identity.sessions"),
                            AuditResourceRef::new("session", session.id),
                        )
                        .rule("R2.3.3")
                        .reason("refresh token reused")
                        .client_address(Some(address)),
                );
                return Ok(Err(invalid()));
            }
            let user_id = UserId::from_uuid(session.principal.as_uuid());
            let user = directory::get_user(m.tx(), user_id).await?.ok_or_else(invalid)?;
            if user.status != UserStatus::Active {
                return Err(invalid());
            }
            let restricted = session.password_change_only || user.password_change_required(now);
            let tokens = self.issue_tokens(m.tx(), &user, (session.id, session.created_at), restricted, now).await?;
            m.audit(
                self.core
                    .record(
                        AuditAction::SessionRefreshed,
                        user_actor(&user),
                        AuditResourceRef::new("session", session.id),
                    )
                    .client_address(Some(address)),
            );
            Ok(Ok(pb::RefreshSessionResponse { tokens: Some(tokens), password_change_required: restricted }))
        });
        outcome.await?
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Result<pb::LogoutResponse, Error> {
        let caller = caller(&request)?;
        let Some(session) = caller.session_id else {
            return Err(Error::invalid("authorization", "service principal tokens have no session to end"));
        };
        let outcome = self.core.work().run_unkeyed(async |m| {
            let now = m.now();
            if sessions::revoke_session(m.tx(), session, "logout", now).await? {
                m.audit(
                    self.core
                        .record(AuditAction::UserLoggedOut, caller.actor(), AuditResourceRef::new("session", session))
                        .rule("R2.2.2"),
                );
            }
            Ok(pb::LogoutResponse {})
        });
        outcome.await
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Result<pb::ChangePasswordResponse, Error> {
        let caller = caller(&request)?;
        let address = client_address(&request);
        let req = request.into_inner();
        if caller.kind != PrincipalKind::User {
            return Err(Error::invalid(
                "authorization",
                "service principals have no password; rotate the client secret",
            ));
        }
        let mut v = Validator::new();
        if req.current_password.is_empty() {
            v.violation("current_password", "is required");
        }
        if req.new_password.is_empty() {
            v.violation("new_password", "is required");
        }
        v.finish()?;
        let user_id = UserId::from_uuid(caller.id.as_uuid());
        let mut read = self.core.db().begin_read().await?;
        let user = directory::get_user(&mut read, user_id).await?.ok_or_else(|| Error::not_found("user", user_id))?;
        // Wrong current passwords count like failed logins: a stolen access token is
        // not a way to guess the password online.
        if let Some(throttle) = security::get_throttle(&mut read, &user.username, &address).await?
            && let Some(until) = throttle.locked_until.filter(|u| *u > self.core.now())
        {
            let retry_after = (until - self.core.now()).to_std().unwrap_or_default();
            return Err(Error::RateLimited { retry_after });
        }
        let history = directory::recent_password_hashes(&mut read, user_id, password::HISTORY).await?;
        let department = match user.department {
            Some(d) => directory::get_department(&mut read, d).await?.map(|d| d.name),
            None => None,
        };
        drop(read);
        let personal = password::PersonalWords::new(
            [&user.username, &user.display_name, &self.core.policy().bureau_name]
                .into_iter()
                .chain(department.as_ref())
                .map(String::as_str),
        );
        password::check_strength("new_password", &req.new_password, &personal)?;
        let (current_hash, current, new) =
            (user.password_hash.clone(), req.current_password.clone(), req.new_password.clone());
        let (current_ok, reused, new_hash) = tokio::task::spawn_blocking(move || {
            let ok = password::verify(&current_hash, &current);
            let reused = history.iter().any(|h| password::verify(h, &new));
            (ok, reused, password::hash(&new))
        })
        .await
        .map_err(Error::internal)?;
        if !current_ok {
            let username = user.username.clone();
            self.core
                .work()
                .run_unkeyed(async |m| {
                    let now = m.now();
                    let mut throttle = security::get_throttle(m.tx(), &username, &address)
                        .await?
                        .unwrap_or_else(|| lockout::Throttle::new(&username, &address));
                    let mut locked = directory::lock_user(m.tx(), user_id).await?;
                    if !throttle.is_locked(now)
                        && let Some(until) = throttle.fail(&self.core.policy().lockout, now)
                    {
                        self.throttled(m, locked.as_mut(), &throttle, until).await?;
                    }
                    security::save_throttle(m.tx(), &throttle, now).await?;
                    let why = "wrong current password at a password change";
                    self.record_failure(m, locked.as_ref(), &username, &address, why).await
                })
                .await?;
            return Err(Error::invalid("current_password", "is not the current password"));
        }
        if reused {
            return Err(password::reused());
        }
        let new_hash = new_hash?;
        let outcome = self.core.work().run_unkeyed(async |m| {
            let now = m.now();
            let mut user =
                directory::lock_user(m.tx(), user_id).await?.ok_or_else(|| Error::not_found("user", user_id))?;
            user.change_password(new_hash.clone(), self.core.policy().password_max_age, now);
            directory::save_new_password(m.tx(), &user, "password changed", None).await?;
            let (tokens, session) = self.start_session(m.tx(), &user, false, &address, now).await?;
            m.audit(
                self.core
                    .record(AuditAction::UserPasswordChanged, caller.actor(), AuditResourceRef::new("user", user_id))
                    .rule("R2.3.1")
                    .client_address(Some(address))
                    .attr("new_session_id", session),
            );
            let answer = pb::ChangePasswordResponse {
                tokens: Some(tokens),
                password_expire_time: Some(ts(user.password_expires_at)),
            };
            Ok(answer)
        });
        outcome.await
    }

    async fn exchange_client_credentials(
        &self,
        request: Request<pb::ExchangeClientCredentialsRequest>,
    ) -> Result<pb::ExchangeClientCredentialsResponse, Error> {
        let req = request.into_inner();
        let mut v = Validator::new();
        let client_id = v.required_text("client_id", &req.client_id, 64);
        if req.client_secret.is_empty() {
            v.violation("client_secret", "is required");
        }
        let client_id = v.finish_with(|| client_id)?;
        let invalid = || Error::Unauthenticated("wrong client id or secret".into());
        let mut tx = self.core.db().begin_read().await?;
        let principal =
            directory::get_service_principal_by_client_id(&mut tx, &client_id).await?.ok_or_else(invalid)?;
        if principal.disabled || principal.secret_hash != tokens::token_hash(&req.client_secret) {
            return Err(invalid());
        }
        let (token, expires) =
            self.core.issue_service_token(principal.id.into(), &principal.display_name, &principal.client_id).await?;
        Ok(pb::ExchangeClientCredentialsResponse {
            tokens: Some(pb::SessionTokens {
                access_token: token,
                access_token_expire_time: Some(ts(expires)),
                refresh_token: String::new(),
                refresh_token_expire_time: None,
                session_id: String::new(),
            }),
        })
    }

    async fn list_signing_keys(
        &self,
        _request: Request<pb::ListSigningKeysRequest>,
    ) -> Result<pb::ListSigningKeysResponse, Error> {
        let keys = self
            .core
            .signing_keys()
            .await
            .into_iter()
            .map(|k| pb::SigningKey {
                key_id: k.key_id,
                algorithm: "EdDSA".into(),
                public_key: k.public_key,
                create_time: Some(ts(k.created_at)),
                retire_time: opt_ts(k.retired_at),
            })
            .collect();
        Ok(pb::ListSigningKeysResponse { keys, cache_seconds: 300 })
    }

    async fn get_current_principal(
        &self,
        request: Request<pb::GetCurrentPrincipalRequest>,
    ) -> Result<pb::GetCurrentPrincipalResponse, Error> {
        let caller = caller(&request)?;
        let mut tx = self.core.db().begin_read().await?;
        let bindings = access_store::bindings_of(&mut tx, caller.id).await?;
        Ok(pb::GetCurrentPrincipalResponse {
            principal: Some(principal_ref(&caller)),
            department_id: caller.department.map(|d| d.to_string()).unwrap_or_default(),
            role_bindings: bindings.iter().map(super::access::binding_to_proto).collect(),
            password_change_required: caller.password_change_required,
            session_id: caller.session_id.map(|s| s.to_string()).unwrap_or_default(),
        })
    }

    async fn list_security_events(
        &self,
        request: Request<pb::ListSecurityEventsRequest>,
    ) -> Result<pb::ListSecurityEventsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let query = SecurityEventQuery::try_from(&req)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::SecurityEventRead, &Resource::GLOBAL).await?;
        let events = security::list_security_events(&mut tx, &query.filter, query.before, query.limit).await?;
        Ok(pb::ListSecurityEventsResponse {
            next_page_token: next_token(&events, query.limit, |e| (e.created_at, e.id.to_string())),
            events: events.iter().map(event_to_proto).collect(),
        })
    }

    async fn acknowledge_security_event(
        &self,
        request: Request<pb::AcknowledgeSecurityEventRequest>,
    ) -> Result<pb::AcknowledgeSecurityEventResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<SecurityEventId> = v.id("security_event_id", &req.security_event_id);
        let note = v.reason("note", &req.note);
        let (request_id, id, note) = v.finish_with(|| Some((request_id?, id?, note?)))?;
        let call = Call::new(&caller, method!("AuthenticationService", "AcknowledgeSecurityEvent"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::SecurityEventManage, &Resource::GLOBAL).await?;
            let now = m.now();
            if !security::acknowledge_security_event(m.tx(), id, &caller.id.to_string(), &note, now).await? {
                let exists = security::get_security_event(m.tx(), id).await?;
                return Err(match exists {
                    None => Error::not_found("security_event", id),
                    Some(_) => Error::Conflict("the security event was already acknowledged".into()),
                });
            }
            let event = security::get_security_event(m.tx(), id)
                .await?
                .ok_or_else(|| Error::not_found("security_event", id))?;
            m.audit(
                self.core
                    .record(
                        AuditAction::SecurityEventAcknowledged,
                        caller.actor(),
                        AuditResourceRef::new("security_event", id),
                    )
                    .rule("R2.3.3")
                    .reason(note),
            );
            Ok(pb::AcknowledgeSecurityEventResponse { event: Some(event_to_proto(&event)) })
        });
        answer.await
    }
}

/// How an unknown username is kept: `unknown:` and the first 16 hex digits of the
/// SHA-256 of its lowercase form, enough to see one name tried again and again without
/// keeping what was typed.
fn unknown_username(username: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(username.trim().to_lowercase().as_bytes());
    format!("unknown:{}", &hex::encode(digest)[..16])
}
