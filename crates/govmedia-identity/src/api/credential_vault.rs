//! `CredentialVaultService`: the platform passwords and app secrets of the bureau's
//! accounts, sealed at rest, revealed only with a reason to holders of the reveal
//! permission, every reveal audited (R2.3.1, R2.3.2).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::PlatformAccountId;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{one_id, unpack};
use govmedia_proto::identity::v1 as pb;
use govmedia_proto::identity::v1::credential_vault_service_server::{
    CredentialVaultService, CredentialVaultServiceServer,
};
use tonic::Request;

use super::platform_account::{account_audit_ref, account_scope};
use super::{caller, cursor, from_ts, method, next_token, page_size, ts};
use crate::Core;
use crate::domain::account::{AccountState, Credential, CredentialKind};
use crate::domain::password;
use crate::domain::sealing::CredentialBinding;
use crate::store::accounts as store;

/// Longest secret accepted, in bytes.
const MAX_SECRET_BYTES: usize = 4096;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> CredentialVaultServiceServer<CredentialVault> {
    CredentialVaultServiceServer::new(CredentialVault { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct CredentialVault {
    core: Arc<Core>,
}

fn credential_to_proto(c: &Credential) -> pb::AccountCredential {
    pb::AccountCredential {
        platform_account_id: c.account.to_string(),
        kind: match c.kind {
            CredentialKind::Password => pb::CredentialKind::Password,
            CredentialKind::AppSecret => pb::CredentialKind::AppSecret,
        } as i32,
        login_name: c.login_name.clone(),
        rotate_time: Some(ts(c.rotated_at)),
        rotation_due_time: Some(ts(c.rotation_due_at)),
        rotated_by: c.rotated_by.clone(),
        encryption_key_id: c.sealing_key_id.clone(),
        rotation_count: u32::try_from(c.rotation_count).unwrap_or(u32::MAX),
    }
}

#[govmedia_kit::handlers]
impl CredentialVaultService for CredentialVault {
    async fn set_account_credential(
        &self,
        request: Request<pb::SetAccountCredentialRequest>,
    ) -> Result<pb::SetAccountCredentialResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let kind = match pb::CredentialKind::try_from(req.kind) {
            Ok(pb::CredentialKind::Password) => Some(CredentialKind::Password),
            Ok(pb::CredentialKind::AppSecret) => Some(CredentialKind::AppSecret),
            _ => {
                v.violation("kind", "is required: password or app secret");
                None
            }
        };
        let login_name = v.required_text("login_name", &req.login_name, 200);
        if req.secret.is_empty() || req.secret.len() > MAX_SECRET_BYTES {
            v.violation("secret", format!("must be 1 to {MAX_SECRET_BYTES} bytes"));
        }
        if req.rotation_period_days > 366 {
            v.violation("rotation_period_days", "must be at most 366 days");
        }
        let (request_id, id, kind, login_name) = v.finish_with(|| Some((request_id?, id?, kind?, login_name?)))?;
        if kind == CredentialKind::Password {
            let personal = password::PersonalWords::new([login_name.as_str(), &self.core.policy().bureau_name]);
            password::check_strength("secret", &req.secret, &personal)?;
        }
        let call = Call::new(&caller, method!("CredentialVaultService", "SetAccountCredential"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let account =
                store::lock_account(m.tx(), id).await?.ok_or_else(|| Error::not_found("platform_account", id))?;
            self.core.require(m.tx(), &caller, Permission::AccountCredentialManage, &account_scope(&account)).await?;
            if account.state == AccountState::Closed {
                return Err(Error::rule(
                    "R2.1.1",
                    format!("platform_account/{id}"),
                    "a closed account holds no credential",
                ));
            }
            let now = m.now();
            let previous = store::get_credential(m.tx(), id).await?;
            // Bound to the account and the login name: a sealed secret copied to another
            // row, or a login name changed beside it, does not open.
            let binding = CredentialBinding::AccountAndLoginName;
            let (sealing_key_id, sealed_secret) =
                self.core.sealer().seal(req.secret.as_bytes(), &binding.owner(&id.to_string(), &login_name))?;
            let period = if req.rotation_period_days == 0 {
                self.core.policy().credential_rotation
            } else {
                chrono::Duration::days(i64::from(req.rotation_period_days))
            };
            let credential = Credential {
                account: id,
                kind,
                login_name,
                sealed_secret,
                sealing_key_id,
                binding,
                rotated_at: now,
                rotation_due_at: now + period,
                rotated_by: caller.id.to_string(),
                rotation_count: previous.map_or(0, |p| p.rotation_count + 1),
            };
            store::upsert_credential(m.tx(), &credential).await?;
            m.audit(
                self.core
                    .record(AuditAction::CredentialStored, caller.actor(), account_audit_ref(&account))
                    .rule("R2.3.1")
                    .attr("kind", kind.as_str())
                    .attr("rotation_count", credential.rotation_count)
                    .attr("rotation_due", credential.rotation_due_at.to_rfc3339()),
            );
            Ok(pb::SetAccountCredentialResponse { credential: Some(credential_to_proto(&credential)) })
        });
        answer.await
    }

    async fn get_account_credential(
        &self,
        request: Request<pb::GetAccountCredentialRequest>,
    ) -> Result<pb::GetAccountCredentialResponse, Error> {
        let caller = caller(&request)?;
        let id: PlatformAccountId = one_id("platform_account_id", &request.get_ref().platform_account_id)?;
        let mut tx = self.core.db().begin_read().await?;
        let account = store::get_account(&mut tx, id).await?.ok_or_else(|| Error::not_found("platform_account", id))?;
        self.core.require(&mut tx, &caller, Permission::AccountRead, &account_scope(&account)).await?;
        let credential =
            store::get_credential(&mut tx, id).await?.ok_or_else(|| Error::not_found("account_credential", id))?;
        Ok(pb::GetAccountCredentialResponse { credential: Some(credential_to_proto(&credential)) })
    }

    async fn reveal_account_credential(
        &self,
        request: Request<pb::RevealAccountCredentialRequest>,
    ) -> Result<pb::RevealAccountCredentialResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let reason = v.reason("reason", &req.reason);
        let (request_id, id, reason) = v.finish_with(|| Some((request_id?, id?, reason?)))?;
        // Not idempotent by design: every reveal is its own audited event, and the
        // secret is never stored as a replayable answer.
        let answer = self.core.work().run_unkeyed(async |m| {
            let account =
                store::get_account(m.tx(), id).await?.ok_or_else(|| Error::not_found("platform_account", id))?;
            self.core.require(m.tx(), &caller, Permission::AccountCredentialReveal, &account_scope(&account)).await?;
            // While an incident is open the credential may be in other hands: it is
            // rotated, not read. The refusal is recorded (committed) and then answered.
            if store::open_incident_count(m.tx(), id).await? > 0 {
                m.audit(
                    self.core
                        .record(AuditAction::CredentialRevealRefused, caller.actor(), account_audit_ref(&account))
                        .rule("R2.3.3")
                        .reason(reason.clone())
                        .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string())),
                );
                return Ok(Err(Error::rule(
                    "R2.3.3",
                    format!("platform account {id}"),
                    "has an open incident: its credential is rotated, not revealed, until the incident is resolved",
                )));
            }
            let credential =
                store::get_credential(m.tx(), id).await?.ok_or_else(|| Error::not_found("account_credential", id))?;
            let secret = self.core.sealer().open(
                &credential.sealing_key_id,
                &credential.sealed_secret,
                &credential.sealing_owner(),
            )?;
            let secret = String::from_utf8(secret).map_err(|_| Error::internal("a stored credential is not UTF-8"))?;
            m.audit(
                self.core
                    .record(AuditAction::CredentialRevealed, caller.actor(), account_audit_ref(&account))
                    .rule("R2.3.2")
                    .reason(reason.clone())
                    .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_string()))
                    .attr("kind", credential.kind.as_str()),
            );
            Ok(Ok(pb::RevealAccountCredentialResponse { credential: Some(credential_to_proto(&credential)), secret }))
        });
        answer.await?
    }

    async fn list_credential_rotations_due(
        &self,
        request: Request<pb::ListCredentialRotationsDueRequest>,
    ) -> Result<pb::ListCredentialRotationsDueResponse, Error> {
        let (caller, req) = unpack(request)?;
        let due_before = match &req.due_before {
            Some(t) => from_ts("due_before", t)?,
            None => self.core.now(),
        };
        let limit = page_size(req.page_size)?;
        let after: Option<(DateTime<Utc>, String)> = cursor(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        self.core.require(&mut tx, &caller, Permission::AccountRead, &Resource::GLOBAL).await?;
        let due = store::list_due_credentials(&mut tx, due_before, after, limit).await?;
        Ok(pb::ListCredentialRotationsDueResponse {
            next_page_token: next_token(&due, limit, |c| (c.rotation_due_at, c.account.to_string())),
            credentials: due.iter().map(credential_to_proto).collect(),
        })
    }
}
