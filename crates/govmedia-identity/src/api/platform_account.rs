//! `PlatformAccountService`: the registry of the bureau's accounts, their lifecycle and
//! profile history, and anomaly incidents that freeze an account (R2.1.1, R2.1.2,
//! R2.3.3).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, IncidentId, PlatformAccountId, RequestId, UserId};
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_REASON_CHARS, Validator};
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::{Call, Mutation};
use govmedia_kit::wire::{one_id, unpack};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as pb;
use govmedia_proto::identity::v1::platform_account_service_server::{
    PlatformAccountService, PlatformAccountServiceServer,
};
use tonic::Request;

use super::{caller, check_etag, cursor, etag, from_ts, method, next_token, opt_ts, page_size, ts};
use crate::Core;
use crate::domain::account::{
    self, AccountState, Evidence, FilingStatus, Incident, IncidentAction, IncidentActionKind, IncidentState, Lifecycle,
    Platform, PlatformAccount, Profile, Revision,
};
use crate::domain::model::UserStatus;
use crate::store::{accounts as store, directory};

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> PlatformAccountServiceServer<PlatformAccounts> {
    PlatformAccountServiceServer::new(PlatformAccounts { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct PlatformAccounts {
    core: Arc<Core>,
}

pub(crate) fn platform_from_proto(p: i32) -> Option<Platform> {
    match cpb::Platform::try_from(p).ok()? {
        cpb::Platform::Unspecified => None,
        cpb::Platform::WechatOfficialAccount => Some(Platform::WechatOfficialAccount),
        cpb::Platform::Weibo => Some(Platform::Weibo),
        cpb::Platform::Douyin => Some(Platform::Douyin),
        cpb::Platform::Toutiao => Some(Platform::Toutiao),
        cpb::Platform::Bilibili => Some(Platform::Bilibili),
        cpb::Platform::Xiaohongshu => Some(Platform::Xiaohongshu),
        cpb::Platform::Other => Some(Platform::Other),
    }
}

fn platform_to_proto(p: Platform) -> cpb::Platform {
    match p {
        Platform::WechatOfficialAccount => cpb::Platform::WechatOfficialAccount,
        Platform::Weibo => cpb::Platform::Weibo,
        Platform::Douyin => cpb::Platform::Douyin,
        Platform::Toutiao => cpb::Platform::Toutiao,
        Platform::Bilibili => cpb::Platform::Bilibili,
        Platform::Xiaohongshu => cpb::Platform::Xiaohongshu,
        Platform::Other => cpb::Platform::Other,
    }
}

fn state_to_proto(s: AccountState) -> pb::PlatformAccountState {
    match s {
        AccountState::Active => pb::PlatformAccountState::Active,
        AccountState::Frozen => pb::PlatformAccountState::Frozen,
        AccountState::Closing => pb::PlatformAccountState::Closing,
        AccountState::Closed => pb::PlatformAccountState::Closed,
    }
}

fn filing_to_proto(f: FilingStatus) -> pb::FilingStatus {
    match f {
        FilingStatus::NotFiled => pb::FilingStatus::NotFiled,
        FilingStatus::Pending => pb::FilingStatus::Pending,
        FilingStatus::Filed => pb::FilingStatus::Filed,
    }
}

fn filing_from_proto(v: &mut Validator, field: &str, f: i32) -> Option<FilingStatus> {
    match pb::FilingStatus::try_from(f) {
        Ok(pb::FilingStatus::Unspecified | pb::FilingStatus::NotFiled) => Some(FilingStatus::NotFiled),
        Ok(pb::FilingStatus::Pending) => Some(FilingStatus::Pending),
        Ok(pb::FilingStatus::Filed) => Some(FilingStatus::Filed),
        Err(_) => {
            v.violation(field, "is not a filing status");
            None
        }
    }
}

fn profile_to_proto(p: &Profile) -> pb::PlatformAccountProfile {
    pb::PlatformAccountProfile {
        display_name: p.display_name.clone(),
        avatar_url: p.avatar_url.clone(),
        bio: p.bio.clone(),
    }
}

pub(crate) fn account_to_proto(a: &PlatformAccount) -> pb::PlatformAccount {
    pb::PlatformAccount {
        id: a.id.to_string(),
        platform: platform_to_proto(a.platform) as i32,
        handle: a.handle.clone(),
        profile: Some(profile_to_proto(&a.profile)),
        department_id: a.department.to_string(),
        responsible_user_id: a.responsible.to_string(),
        filing_status: filing_to_proto(a.filing_status) as i32,
        filing_number: a.filing_number.clone(),
        filing_date: opt_ts(a.filing_date),
        state: state_to_proto(a.state) as i32,
        state_reason: a.state_reason.clone(),
        create_time: Some(ts(a.created_at)),
        update_time: Some(ts(a.updated_at)),
        etag: etag(a.version),
    }
}

fn action_kind_to_proto(k: IncidentActionKind) -> pb::IncidentActionKind {
    match k {
        IncidentActionKind::PasswordChanged => pb::IncidentActionKind::PasswordChanged,
        IncidentActionKind::PlatformSupportContacted => pb::IncidentActionKind::PlatformSupportContacted,
        IncidentActionKind::ContentRemoved => pb::IncidentActionKind::ContentRemoved,
        IncidentActionKind::Escalated => pb::IncidentActionKind::Escalated,
        IncidentActionKind::Other => pb::IncidentActionKind::Other,
    }
}

fn evidence_to_proto(e: &Evidence) -> Option<cpb::Evidence> {
    (!e.uri.is_empty()).then(|| cpb::Evidence {
        uri: e.uri.clone(),
        sha256: e.sha256.clone(),
        description: e.description.clone(),
    })
}

fn incident_to_proto(i: &Incident) -> pb::AccountIncident {
    pb::AccountIncident {
        id: i.id.to_string(),
        platform_account_id: i.account.to_string(),
        description: i.description.clone(),
        reported_by: i.reported_by.clone(),
        report_time: Some(ts(i.reported_at)),
        state: match i.state {
            IncidentState::Open => pb::IncidentState::Open,
            IncidentState::Resolved => pb::IncidentState::Resolved,
        } as i32,
        actions: i
            .actions
            .iter()
            .map(|a| pb::IncidentAction {
                kind: action_kind_to_proto(a.kind) as i32,
                note: a.note.clone(),
                actor_id: a.actor.clone(),
                create_time: Some(ts(a.created_at)),
                evidence: evidence_to_proto(&a.evidence),
            })
            .collect(),
        resolved_by: i.resolved_by.clone().unwrap_or_default(),
        resolve_time: opt_ts(i.resolved_at),
        resolution: i.resolution.clone().unwrap_or_default(),
        etag: etag(i.version),
    }
}

fn url(v: &mut Validator, field: &str, value: &str) -> Option<String> {
    let value = v.optional_text(field, value, 1000)?;
    if value.is_empty() || value.starts_with("https://") || value.starts_with("http://") {
        Some(value)
    } else {
        v.violation(field, "must be an http(s) URL");
        None
    }
}

pub(crate) fn evidence_from_proto(v: &mut Validator, field: &str, e: Option<&cpb::Evidence>) -> Evidence {
    let Some(e) = e else { return Evidence::default() };
    let uri = v.required_text(&format!("{field}.uri"), &e.uri, 1000).unwrap_or_default();
    let sha256 = e.sha256.trim().to_ascii_lowercase();
    if !sha256.is_empty() && (sha256.len() != 64 || !sha256.chars().all(|c| c.is_ascii_hexdigit())) {
        v.violation(format!("{field}.sha256"), "must be 64 hexadecimal digits");
    }
    let description =
        v.optional_text(&format!("{field}.description"), &e.description, MAX_REASON_CHARS).unwrap_or_default();
    Evidence { uri, sha256, description }
}

fn resource(a: &PlatformAccount) -> Resource {
    Resource::platform_account(a.id, Some(a.department))
}

fn audit_ref(a: &PlatformAccount) -> AuditResourceRef {
    let mut r = AuditResourceRef::new("platform_account", a.id);
    r.department = Some(a.department);
    r.platform_account = Some(a.id);
    r
}

async fn require_active_user(m: &mut Mutation, user: UserId) -> Result<(), Error> {
    let found = directory::get_user(m.tx(), user).await?.ok_or_else(|| Error::not_found("user", user))?;
    if found.status != UserStatus::Active {
        return Err(Error::rule("R2.1.1", format!("user/{user}"), "the responsible person must be an active user"));
    }
    Ok(())
}

fn check_filing(status: FilingStatus, number: &str, date: Option<DateTime<Utc>>) -> Result<(), Error> {
    if status == FilingStatus::Filed && (number.is_empty() || date.is_none()) {
        return Err(Error::invalid(
            "platform_account.filing_number",
            "a filed account needs its filing number and date",
        ));
    }
    Ok(())
}

/// A lifecycle request: freeze, unfreeze, start closing or close one account.
trait LifecycleRequest: prost::Message {
    /// The step it takes.
    const STEP: Lifecycle;
    /// The full gRPC path (the idempotency key's method).
    const METHOD: &'static str;
    /// The request id, the account, the etag, the reason and the evidence.
    fn parts(&self) -> (&str, &str, &str, &str, Option<&cpb::Evidence>);
}

macro_rules! lifecycle_request {
    ($request:ty, $step:ident, $method:literal) => {
        impl LifecycleRequest for $request {
            const STEP: Lifecycle = Lifecycle::$step;
            const METHOD: &'static str = method!("PlatformAccountService", $method);

            fn parts(&self) -> (&str, &str, &str, &str, Option<&cpb::Evidence>) {
                (&self.request_id, &self.platform_account_id, &self.etag, &self.reason, None)
            }
        }
    };
}

lifecycle_request!(pb::FreezePlatformAccountRequest, Freeze, "FreezePlatformAccount");
lifecycle_request!(pb::UnfreezePlatformAccountRequest, Unfreeze, "UnfreezePlatformAccount");
lifecycle_request!(pb::StartClosingPlatformAccountRequest, StartClosing, "StartClosingPlatformAccount");

impl LifecycleRequest for pb::ClosePlatformAccountRequest {
    const STEP: Lifecycle = Lifecycle::Close;
    const METHOD: &'static str = method!("PlatformAccountService", "ClosePlatformAccount");

    fn parts(&self) -> (&str, &str, &str, &str, Option<&cpb::Evidence>) {
        (&self.request_id, &self.platform_account_id, &self.etag, "", self.evidence.as_ref())
    }
}

/// A validated lifecycle request.
struct LifecycleStep {
    request_id: RequestId,
    account: PlatformAccountId,
    etag: String,
    reason: String,
    evidence: Evidence,
}

impl LifecycleStep {
    fn parse<Q: LifecycleRequest>(request: &Q) -> Result<Self, Error> {
        let (request_id, account, etag, reason, evidence) = request.parts();
        let mut v = Validator::new();
        let request_id = v.request_id(request_id);
        let account = v.id("platform_account_id", account);
        let reason = if Q::STEP.needs_reason() { v.reason("reason", reason) } else { Some(String::new()) };
        if Q::STEP.needs_evidence() && evidence.is_none() {
            v.violation("evidence", "is required: the platform's confirmation of the deregistration");
        }
        let evidence = evidence_from_proto(&mut v, "evidence", evidence);
        v.finish_with(|| {
            Some(LifecycleStep {
                request_id: request_id?,
                account: account?,
                etag: etag.to_owned(),
                reason: reason?,
                evidence,
            })
        })
    }
}

/// A validated `ListPlatformAccounts`.
struct AccountQuery {
    filter: store::AccountFilter,
    limit: u32,
    after: Option<(String, String)>,
}

impl TryFrom<&pb::ListPlatformAccountsRequest> for AccountQuery {
    type Error = Error;

    fn try_from(req: &pb::ListPlatformAccountsRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let platform = if req.platform == 0 { None } else { platform_from_proto(req.platform) };
        if req.platform != 0 && platform.is_none() {
            v.violation("platform", "is not a platform");
        }
        let state = match pb::PlatformAccountState::try_from(req.state) {
            Ok(pb::PlatformAccountState::Unspecified) => None,
            Ok(pb::PlatformAccountState::Active) => Some(AccountState::Active),
            Ok(pb::PlatformAccountState::Frozen) => Some(AccountState::Frozen),
            Ok(pb::PlatformAccountState::Closing) => Some(AccountState::Closing),
            Ok(pb::PlatformAccountState::Closed) => Some(AccountState::Closed),
            Err(_) => {
                v.violation("state", "is not an account state");
                None
            }
        };
        let department = v.optional_id("department_id", &req.department_id);
        let responsible = v.optional_id("responsible_user_id", &req.responsible_user_id);
        v.finish()?;
        let filter = store::AccountFilter { platform, state, department, responsible };
        Ok(AccountQuery { filter, limit: page_size(req.page_size)?, after: cursor(&req.page_token)? })
    }
}

/// A validated `ListAccountIncidents`.
struct IncidentQuery {
    account: Option<PlatformAccountId>,
    state: Option<IncidentState>,
    limit: u32,
    before: Option<IncidentId>,
}

impl TryFrom<&pb::ListAccountIncidentsRequest> for IncidentQuery {
    type Error = Error;

    fn try_from(req: &pb::ListAccountIncidentsRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let account = v.optional_id("platform_account_id", &req.platform_account_id);
        let state = match pb::IncidentState::try_from(req.state) {
            Ok(pb::IncidentState::Unspecified) => None,
            Ok(pb::IncidentState::Open) => Some(IncidentState::Open),
            Ok(pb::IncidentState::Resolved) => Some(IncidentState::Resolved),
            Err(_) => {
                v.violation("state", "is not an incident state");
                None
            }
        };
        v.finish()?;
        Ok(IncidentQuery { account, state, limit: page_size(req.page_size)?, before: cursor(&req.page_token)? })
    }
}

impl PlatformAccounts {
    /// Loads and locks an account and checks `permission` on it.
    async fn locked(
        &self,
        m: &mut Mutation,
        caller: &Principal,
        account: PlatformAccountId,
        permission: Permission,
    ) -> Result<PlatformAccount, Error> {
        let found =
            store::lock_account(m.tx(), account).await?.ok_or_else(|| Error::not_found("platform_account", account))?;
        self.core.require(m.tx(), caller, permission, &resource(&found)).await?;
        Ok(found)
    }

    fn audit(
        &self,
        caller: &Principal,
        action: AuditAction,
        account: &PlatformAccount,
        request_id: &str,
    ) -> govmedia_domain::audit::AuditRecord {
        self.core
            .record(action, caller.actor(), audit_ref(account))
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id.to_owned()))
    }

    /// A lifecycle step on one account (R2.1.1, R2.3.3).
    async fn lifecycle<Q: LifecycleRequest>(
        &self,
        caller: &Principal,
        request: &Q,
    ) -> Result<pb::PlatformAccount, Error> {
        let step = LifecycleStep::parse(request)?;
        let call = Call::new(caller, Q::METHOD, step.request_id, request);
        self.core
            .work()
            .run(call, async |m| {
                let mut a = self.locked(m, caller, step.account, Q::STEP.permission()).await?;
                check_etag("etag", &step.etag, a.version, false)?;
                let open = store::open_incident_count(m.tx(), step.account).await?;
                let (action, rule) = Q::STEP.apply(&mut a, &step.reason, open, m.now())?;
                store::save_account(m.tx(), &a, a.version - 1).await?;
                let mut record = self.audit(caller, action, &a, &step.request_id.to_string()).rule(rule);
                record = record.attr("state", a.state.as_str());
                if !step.reason.is_empty() {
                    record = record.reason(step.reason.clone());
                }
                if Q::STEP.needs_evidence() {
                    record =
                        record.attr("evidence_uri", &step.evidence.uri).attr("evidence_sha256", &step.evidence.sha256);
                }
                m.audit(record);
                Ok(account_to_proto(&a))
            })
            .await
    }
}

#[govmedia_kit::handlers]
impl PlatformAccountService for PlatformAccounts {
    async fn create_platform_account(
        &self,
        request: Request<pb::CreatePlatformAccountRequest>,
    ) -> Result<pb::CreatePlatformAccountResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.platform_account.clone().unwrap_or_default();
        let platform = platform_from_proto(given.platform);
        if platform.is_none() {
            v.violation(
                "platform_account.platform",
                "is required: one of the platforms of govmedia.common.v1.Platform",
            );
        }
        let handle = v.required_text("platform_account.handle", &given.handle, 100);
        let profile = given.profile.clone().unwrap_or_default();
        let display_name = v.required_text("platform_account.profile.display_name", &profile.display_name, 60);
        let avatar = url(&mut v, "platform_account.profile.avatar_url", &profile.avatar_url);
        let bio = v.optional_text("platform_account.profile.bio", &profile.bio, 500);
        let department: Option<DepartmentId> = v.id("platform_account.department_id", &given.department_id);
        let responsible: Option<UserId> = v.id("platform_account.responsible_user_id", &given.responsible_user_id);
        let filing = filing_from_proto(&mut v, "platform_account.filing_status", given.filing_status);
        let filing_number = v.optional_text("platform_account.filing_number", &given.filing_number, 100);
        let filing_date = given.filing_date.as_ref().map(|t| from_ts("platform_account.filing_date", t)).transpose()?;
        let (request_id, platform, handle, display_name, avatar, bio, department, responsible, filing, filing_number) =
            v.finish_with(|| {
                Some((
                    request_id?,
                    platform?,
                    handle?,
                    display_name?,
                    avatar?,
                    bio?,
                    department?,
                    responsible?,
                    filing?,
                    filing_number?,
                ))
            })?;
        check_filing(filing, &filing_number, filing_date)?;
        let call = Call::new(&caller, method!("PlatformAccountService", "CreatePlatformAccount"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            self.core.require(m.tx(), &caller, Permission::AccountManage, &Resource::GLOBAL).await?;
            directory::get_department(m.tx(), department)
                .await?
                .ok_or_else(|| Error::not_found("department", department))?;
            require_active_user(m, responsible).await?;
            let now = m.now();
            let a = PlatformAccount {
                id: PlatformAccountId::new(),
                platform,
                handle,
                profile: Profile { display_name, avatar_url: avatar, bio },
                department,
                responsible,
                filing_status: filing,
                filing_number,
                filing_date,
                state: AccountState::Active,
                state_reason: String::new(),
                revision: 1,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store::insert_account(m.tx(), &a).await?;
            store::insert_revision(
                m.tx(),
                a.id,
                &Revision {
                    revision: 1,
                    profile: a.profile.clone(),
                    responsible,
                    changed_by: caller.id.to_string(),
                    created_at: now,
                },
            )
            .await?;
            let record = self
                .audit(&caller, AuditAction::PlatformAccountCreated, &a, &request_id.to_string())
                .rule("R2.1.1")
                .attr("platform", a.platform.as_str())
                .attr("handle", &a.handle)
                .attr("responsible_user_id", a.responsible);
            m.audit(record);
            Ok(pb::CreatePlatformAccountResponse { platform_account: Some(account_to_proto(&a)) })
        });
        answer.await
    }

    async fn get_platform_account(
        &self,
        request: Request<pb::GetPlatformAccountRequest>,
    ) -> Result<pb::GetPlatformAccountResponse, Error> {
        let caller = caller(&request)?;
        let id: PlatformAccountId = one_id("platform_account_id", &request.get_ref().platform_account_id)?;
        let mut tx = self.core.db().begin_read().await?;
        let a = store::get_account(&mut tx, id).await?.ok_or_else(|| Error::not_found("platform_account", id))?;
        self.core.require(&mut tx, &caller, Permission::AccountRead, &resource(&a)).await?;
        Ok(pb::GetPlatformAccountResponse { platform_account: Some(account_to_proto(&a)) })
    }

    async fn list_platform_accounts(
        &self,
        request: Request<pb::ListPlatformAccountsRequest>,
    ) -> Result<pb::ListPlatformAccountsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let query = AccountQuery::try_from(&req)?;
        let mut tx = self.core.db().begin_read().await?;
        let scope = query.filter.department.map_or(Resource::GLOBAL, Resource::department);
        self.core.require(&mut tx, &caller, Permission::AccountRead, &scope).await?;
        let accounts = store::list_accounts(&mut tx, &query.filter, query.after, query.limit).await?;
        Ok(pb::ListPlatformAccountsResponse {
            next_page_token: next_token(&accounts, query.limit, |a| (a.platform.as_str().to_owned(), a.handle.clone())),
            platform_accounts: accounts.iter().map(account_to_proto).collect(),
        })
    }

    async fn update_platform_account(
        &self,
        request: Request<pb::UpdatePlatformAccountRequest>,
    ) -> Result<pb::UpdatePlatformAccountResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.platform_account.clone().unwrap_or_default();
        let id: Option<PlatformAccountId> = v.id("platform_account.id", &given.id);
        let profile = given.profile.clone().unwrap_or_default();
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.violation("update_mask", "names no field to change");
        }
        #[derive(Default)]
        struct Changes {
            display_name: Option<String>,
            avatar_url: Option<String>,
            bio: Option<String>,
            responsible: Option<UserId>,
            department: Option<DepartmentId>,
            filing_status: Option<FilingStatus>,
            filing_number: Option<String>,
            filing_date: Option<Option<DateTime<Utc>>>,
        }
        let mut c = Changes::default();
        for path in &paths {
            match path.as_str() {
                "profile.display_name" => {
                    c.display_name = v.required_text("platform_account.profile.display_name", &profile.display_name, 60)
                }
                "profile.avatar_url" => {
                    c.avatar_url = url(&mut v, "platform_account.profile.avatar_url", &profile.avatar_url)
                }
                "profile.bio" => c.bio = v.optional_text("platform_account.profile.bio", &profile.bio, 500),
                "responsible_user_id" => {
                    c.responsible = v.id("platform_account.responsible_user_id", &given.responsible_user_id)
                }
                "department_id" => c.department = v.id("platform_account.department_id", &given.department_id),
                "filing_status" => {
                    c.filing_status = filing_from_proto(&mut v, "platform_account.filing_status", given.filing_status)
                }
                "filing_number" => {
                    c.filing_number = v.optional_text("platform_account.filing_number", &given.filing_number, 100)
                }
                "filing_date" => {
                    c.filing_date = Some(
                        given.filing_date.as_ref().map(|t| from_ts("platform_account.filing_date", t)).transpose()?,
                    )
                }
                other => v.violation("update_mask", format!("{other:?} cannot be changed")),
            }
        }
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        let call = Call::new(&caller, method!("PlatformAccountService", "UpdatePlatformAccount"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut a = self.locked(m, &caller, id, Permission::AccountManage).await?;
            check_etag("platform_account.etag", &given.etag, a.version, true)?;
            if a.state == AccountState::Closed {
                return Err(Error::rule(
                    "R2.1.1",
                    format!("platform_account/{id}"),
                    "a closed account is kept for the record and not changed",
                ));
            }
            let previous = a.version;
            let before = (a.profile.clone(), a.responsible);
            if let Some(x) = c.display_name {
                a.profile.display_name = x;
            }
            if let Some(x) = c.avatar_url {
                a.profile.avatar_url = x;
            }
            if let Some(x) = c.bio {
                a.profile.bio = x;
            }
            if let Some(x) = c.responsible {
                require_active_user(m, x).await?;
                a.responsible = x;
            }
            if let Some(x) = c.department {
                directory::get_department(m.tx(), x).await?.ok_or_else(|| Error::not_found("department", x))?;
                self.core
                    .require(m.tx(), &caller, Permission::AccountManage, &Resource::platform_account(id, Some(x)))
                    .await?;
                a.department = x;
            }
            if let Some(x) = c.filing_status {
                a.filing_status = x;
            }
            if let Some(x) = c.filing_number {
                a.filing_number = x;
            }
            if let Some(x) = c.filing_date {
                a.filing_date = x;
            }
            check_filing(a.filing_status, &a.filing_number, a.filing_date)?;
            let now = m.now();
            if (a.profile.clone(), a.responsible) != before {
                a.revision += 1;
                store::insert_revision(
                    m.tx(),
                    id,
                    &Revision {
                        revision: a.revision,
                        profile: a.profile.clone(),
                        responsible: a.responsible,
                        changed_by: caller.id.to_string(),
                        created_at: now,
                    },
                )
                .await?;
            }
            a.updated_at = now;
            a.version += 1;
            store::save_account(m.tx(), &a, previous).await?;
            let record = self
                .audit(&caller, AuditAction::PlatformAccountUpdated, &a, &request_id.to_string())
                .rule("R2.1.2")
                .attr("fields", paths.join(","))
                .attr("revision", a.revision);
            m.audit(record);
            Ok(pb::UpdatePlatformAccountResponse { platform_account: Some(account_to_proto(&a)) })
        });
        answer.await
    }

    async fn list_platform_account_revisions(
        &self,
        request: Request<pb::ListPlatformAccountRevisionsRequest>,
    ) -> Result<pb::ListPlatformAccountRevisionsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: PlatformAccountId = one_id("platform_account_id", &req.platform_account_id)?;
        let limit = page_size(req.page_size)?;
        let before: Option<i64> = cursor(&req.page_token)?;
        let mut tx = self.core.db().begin_read().await?;
        let a = store::get_account(&mut tx, id).await?.ok_or_else(|| Error::not_found("platform_account", id))?;
        self.core.require(&mut tx, &caller, Permission::AccountRead, &resource(&a)).await?;
        let revisions = store::list_revisions(&mut tx, id, before, limit).await?;
        Ok(pb::ListPlatformAccountRevisionsResponse {
            next_page_token: next_token(&revisions, limit, |r| r.revision),
            revisions: revisions
                .iter()
                .map(|r| pb::PlatformAccountRevision {
                    revision: u32::try_from(r.revision).unwrap_or(u32::MAX),
                    profile: Some(profile_to_proto(&r.profile)),
                    responsible_user_id: r.responsible.to_string(),
                    changed_by: r.changed_by.clone(),
                    create_time: Some(ts(r.created_at)),
                })
                .collect(),
        })
    }

    async fn freeze_platform_account(
        &self,
        request: Request<pb::FreezePlatformAccountRequest>,
    ) -> Result<pb::FreezePlatformAccountResponse, Error> {
        let (caller, req) = unpack(request)?;
        Ok(pb::FreezePlatformAccountResponse { platform_account: Some(self.lifecycle(&caller, &req).await?) })
    }

    async fn unfreeze_platform_account(
        &self,
        request: Request<pb::UnfreezePlatformAccountRequest>,
    ) -> Result<pb::UnfreezePlatformAccountResponse, Error> {
        let (caller, req) = unpack(request)?;
        Ok(pb::UnfreezePlatformAccountResponse { platform_account: Some(self.lifecycle(&caller, &req).await?) })
    }

    async fn start_closing_platform_account(
        &self,
        request: Request<pb::StartClosingPlatformAccountRequest>,
    ) -> Result<pb::StartClosingPlatformAccountResponse, Error> {
        let (caller, req) = unpack(request)?;
        Ok(pb::StartClosingPlatformAccountResponse { platform_account: Some(self.lifecycle(&caller, &req).await?) })
    }

    async fn close_platform_account(
        &self,
        request: Request<pb::ClosePlatformAccountRequest>,
    ) -> Result<pb::ClosePlatformAccountResponse, Error> {
        let (caller, req) = unpack(request)?;
        Ok(pb::ClosePlatformAccountResponse { platform_account: Some(self.lifecycle(&caller, &req).await?) })
    }

    async fn report_account_anomaly(
        &self,
        request: Request<pb::ReportAccountAnomalyRequest>,
    ) -> Result<pb::ReportAccountAnomalyResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let description = v.reason("description", &req.description);
        let (request_id, id, description) = v.finish_with(|| Some((request_id?, id?, description?)))?;
        let call = Call::new(&caller, method!("PlatformAccountService", "ReportAccountAnomaly"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut a = self.locked(m, &caller, id, Permission::AccountIncidentReport).await?;
            if matches!(a.state, AccountState::Closed) {
                return Err(Error::rule("R2.3.3", format!("platform_account/{id}"), "the account is closed"));
            }
            let now = m.now();
            let incident = Incident {
                id: IncidentId::new(),
                account: id,
                description: description.clone(),
                reported_by: caller.id.to_string(),
                reported_at: now,
                state: IncidentState::Open,
                resolved_by: None,
                resolved_at: None,
                resolution: None,
                version: 1,
                actions: vec![],
            };
            store::insert_incident(m.tx(), &incident).await?;
            // Act at once (R2.3.3): the account is frozen in the same transaction.
            if a.state == AccountState::Active {
                let previous = a.version;
                account::freeze(&mut a, &format!("anomaly reported: incident {}", incident.id))?;
                a.updated_at = now;
                a.version += 1;
                store::save_account(m.tx(), &a, previous).await?;
                let record = self
                    .audit(&caller, AuditAction::PlatformAccountFrozen, &a, &request_id.to_string())
                    .rule("R2.3.3")
                    .reason(format!("anomaly reported: incident {}", incident.id));
                m.audit(record);
            }
            let mut record = self
                .audit(&caller, AuditAction::AccountIncidentReported, &a, &request_id.to_string())
                .rule("R2.3.3")
                .attr("incident_id", incident.id);
            record.reason = Some(description);
            m.audit(record);
            let answer = pb::ReportAccountAnomalyResponse {
                incident: Some(incident_to_proto(&incident)),
                platform_account: Some(account_to_proto(&a)),
            };
            Ok(answer)
        });
        answer.await
    }

    async fn get_account_incident(
        &self,
        request: Request<pb::GetAccountIncidentRequest>,
    ) -> Result<pb::GetAccountIncidentResponse, Error> {
        let caller = caller(&request)?;
        let id: IncidentId = one_id("incident_id", &request.get_ref().incident_id)?;
        let mut tx = self.core.db().begin_read().await?;
        let incident =
            store::get_incident(&mut tx, id).await?.ok_or_else(|| Error::not_found("account_incident", id))?;
        let a = store::get_account(&mut tx, incident.account)
            .await?
            .ok_or_else(|| Error::not_found("platform_account", incident.account))?;
        self.core.require(&mut tx, &caller, Permission::AccountRead, &resource(&a)).await?;
        Ok(pb::GetAccountIncidentResponse { incident: Some(incident_to_proto(&incident)) })
    }

    async fn list_account_incidents(
        &self,
        request: Request<pb::ListAccountIncidentsRequest>,
    ) -> Result<pb::ListAccountIncidentsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let query = IncidentQuery::try_from(&req)?;
        let mut tx = self.core.db().begin_read().await?;
        let scope = match query.account {
            Some(id) => resource(
                &store::get_account(&mut tx, id).await?.ok_or_else(|| Error::not_found("platform_account", id))?,
            ),
            None => Resource::GLOBAL,
        };
        self.core.require(&mut tx, &caller, Permission::AccountRead, &scope).await?;
        let incidents = store::list_incidents(&mut tx, query.account, query.state, query.before, query.limit).await?;
        Ok(pb::ListAccountIncidentsResponse {
            next_page_token: next_token(&incidents, query.limit, |i| i.id),
            incidents: incidents.iter().map(incident_to_proto).collect(),
        })
    }

    async fn record_incident_action(
        &self,
        request: Request<pb::RecordIncidentActionRequest>,
    ) -> Result<pb::RecordIncidentActionResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<IncidentId> = v.id("incident_id", &req.incident_id);
        let given = req.action.clone().unwrap_or_default();
        let kind = match pb::IncidentActionKind::try_from(given.kind) {
            Ok(pb::IncidentActionKind::PasswordChanged) => Some(IncidentActionKind::PasswordChanged),
            Ok(pb::IncidentActionKind::PlatformSupportContacted) => Some(IncidentActionKind::PlatformSupportContacted),
            Ok(pb::IncidentActionKind::ContentRemoved) => Some(IncidentActionKind::ContentRemoved),
            Ok(pb::IncidentActionKind::Escalated) => Some(IncidentActionKind::Escalated),
            Ok(pb::IncidentActionKind::Other) => Some(IncidentActionKind::Other),
            _ => {
                v.violation("action.kind", "is required: what was done");
                None
            }
        };
        let note = v.required_text("action.note", &given.note, MAX_REASON_CHARS);
        let evidence = evidence_from_proto(&mut v, "action.evidence", given.evidence.as_ref());
        let (request_id, id, kind, note) = v.finish_with(|| Some((request_id?, id?, kind?, note?)))?;
        let call = Call::new(&caller, method!("PlatformAccountService", "RecordIncidentAction"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut incident =
                store::get_incident(m.tx(), id).await?.ok_or_else(|| Error::not_found("account_incident", id))?;
            let a = self.locked(m, &caller, incident.account, Permission::AccountIncidentManage).await?;
            if incident.state != IncidentState::Open {
                return Err(Error::Conflict("the incident is resolved; open a new one for a new anomaly".into()));
            }
            let action = IncidentAction {
                seq: i64::try_from(incident.actions.len()).unwrap_or(0) + 1,
                kind,
                note,
                actor: caller.id.to_string(),
                evidence,
                created_at: m.now(),
            };
            store::insert_action(m.tx(), id, &action).await?;
            let previous = incident.version;
            incident.version += 1;
            store::save_incident(m.tx(), &incident, previous).await?;
            let record = self
                .audit(&caller, AuditAction::AccountIncidentActionRecorded, &a, &request_id.to_string())
                .rule("R2.3.3")
                .attr("incident_id", id)
                .attr("kind", action.kind.as_str());
            m.audit(record);
            incident.actions.push(action);
            Ok(pb::RecordIncidentActionResponse { incident: Some(incident_to_proto(&incident)) })
        });
        answer.await
    }

    async fn resolve_account_incident(
        &self,
        request: Request<pb::ResolveAccountIncidentRequest>,
    ) -> Result<pb::ResolveAccountIncidentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<IncidentId> = v.id("incident_id", &req.incident_id);
        let resolution = v.reason("resolution", &req.resolution);
        let (request_id, id, resolution) = v.finish_with(|| Some((request_id?, id?, resolution?)))?;
        let call = Call::new(&caller, method!("PlatformAccountService", "ResolveAccountIncident"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut incident =
                store::get_incident(m.tx(), id).await?.ok_or_else(|| Error::not_found("account_incident", id))?;
            let mut a = self.locked(m, &caller, incident.account, Permission::AccountIncidentManage).await?;
            check_etag("etag", &req.etag, incident.version, false)?;
            let credential = store::get_credential(m.tx(), incident.account).await?;
            account::check_resolvable(&incident, credential.map(|c| c.rotated_at))?;
            let now = m.now();
            let previous = incident.version;
            incident.state = IncidentState::Resolved;
            incident.resolved_by = Some(caller.id.to_string());
            incident.resolved_at = Some(now);
            incident.resolution = Some(resolution.clone());
            incident.version += 1;
            store::save_incident(m.tx(), &incident, previous).await?;
            let record = self
                .audit(&caller, AuditAction::AccountIncidentResolved, &a, &request_id.to_string())
                .rule("R2.3.3")
                .reason(resolution)
                .attr("incident_id", id);
            m.audit(record);
            // The last open incident resolved: the account publishes again.
            if a.state == AccountState::Frozen && store::open_incident_count(m.tx(), a.id).await? == 0 {
                let previous = a.version;
                account::unfreeze(&mut a, 0)?;
                a.updated_at = now;
                a.version += 1;
                store::save_account(m.tx(), &a, previous).await?;
                let record = self
                    .audit(&caller, AuditAction::PlatformAccountUnfrozen, &a, &request_id.to_string())
                    .rule("R2.3.3")
                    .reason(format!("incident {id} resolved"));
                m.audit(record);
            }
            let answer = pb::ResolveAccountIncidentResponse {
                incident: Some(incident_to_proto(&incident)),
                platform_account: Some(account_to_proto(&a)),
            };
            Ok(answer)
        });
        answer.await
    }
}

/// The account resource of a permission check, for the vault.
pub(crate) fn account_scope(a: &PlatformAccount) -> Resource {
    resource(a)
}

/// The audit reference of an account, for the vault.
pub(crate) fn account_audit_ref(a: &PlatformAccount) -> AuditResourceRef {
    audit_ref(a)
}
