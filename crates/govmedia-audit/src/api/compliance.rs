//! `ComplianceService`: inspection readiness of the platform accounts (R8.1.1), read
//! from the daily assessments the compliance monitor keeps
//! ([`crate::compliance_monitor`]), and an assessment run on demand.

use std::sync::Arc;

use chrono::NaiveDate;
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{next_page_token, ts, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::compliance_service_server::{ComplianceService, ComplianceServiceServer};
use govmedia_proto::common::v1 as cpb;
use tonic::Request;

use crate::Core;
use crate::compliance_monitor::{self as monitor, record_metrics};
use crate::domain::compliance::{Assessment, Indicator, InteractionStatus, Item, Level, local_date};
use crate::store::compliance::{self as store, Cursor};

/// The longest history one call returns, in days.
pub const MAX_HISTORY_DAYS: i64 = 366;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> ComplianceServiceServer<Compliance> {
    ComplianceServiceServer::new(Compliance { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Compliance {
    core: Arc<Core>,
}

fn level_to(l: Level) -> pb::ComplianceLevel {
    match l {
        Level::Compliant => pb::ComplianceLevel::Compliant,
        Level::Warning => pb::ComplianceLevel::Warning,
        Level::Veto => pb::ComplianceLevel::Veto,
    }
}

fn indicator_to(i: Indicator) -> pb::ComplianceIndicator {
    match i {
        Indicator::UpdateFrequency => pb::ComplianceIndicator::UpdateFrequency,
        Indicator::Interaction => pb::ComplianceIndicator::Interaction,
        Indicator::SecurityIncident => pb::ComplianceIndicator::SecurityIncident,
        Indicator::ReplyTimeliness => pb::ComplianceIndicator::ReplyTimeliness,
        Indicator::OverdueReferrals => pb::ComplianceIndicator::OverdueReferrals,
        Indicator::ResponsiblePerson => pb::ComplianceIndicator::ResponsiblePerson,
        Indicator::Rectification => pb::ComplianceIndicator::Rectification,
        Indicator::SeriousWordingError => pb::ComplianceIndicator::SeriousWordingError,
        Indicator::CredentialRotation => pb::ComplianceIndicator::CredentialRotation,
    }
}

fn interaction_to(i: InteractionStatus) -> pb::InteractionStatus {
    match i {
        InteractionStatus::Working => pb::InteractionStatus::Working,
        InteractionStatus::NotAnswered => pb::InteractionStatus::NotAnswered,
        InteractionStatus::NoChannel => pb::InteractionStatus::NoChannel,
    }
}

fn item_to(i: &Item) -> pb::ComplianceItem {
    pb::ComplianceItem {
        indicator: indicator_to(i.indicator) as i32,
        level: level_to(i.level) as i32,
        deduction: i.deduction,
        detail: i.detail.clone(),
        rule_id: i.indicator.rule().to_owned(),
    }
}

/// An assessment on the wire.
pub fn assessment_to(a: &Assessment) -> pb::AccountCompliance {
    let platform = cpb::Platform::from_str_name(&format!("PLATFORM_{}", a.platform.to_ascii_uppercase()))
        .unwrap_or(cpb::Platform::Unspecified);
    pb::AccountCompliance {
        platform_account_id: a.account.to_string(),
        assessment_date: a.date.to_string(),
        department_id: a.department.map(|d| d.to_string()).unwrap_or_default(),
        platform: platform as i32,
        handle: a.handle.clone(),
        level: level_to(a.level) as i32,
        score: a.score,
        days_since_last_publication: i32::try_from(a.days_since_last_publication).unwrap_or(i32::MAX),
        last_publication_time: a.last_publication_at.map(ts),
        interaction_status: interaction_to(a.interaction) as i32,
        interactions_received: a.facts.received,
        interactions_answered: a.facts.answered,
        missed_reply_deadlines: a.facts.missed_replies,
        overdue_referrals: a.facts.overdue_referrals,
        security_incidents: a.facts.incidents,
        serious_wording_errors: a.facts.wording_errors,
        responsible_person_active: a.responsible_active,
        items: a.items.iter().map(item_to).collect(),
        window_start_date: a.window_start_date.to_string(),
        compute_time: Some(ts(a.computed_at)),
        r#final: a.is_final,
        open_rectifications: a.facts.open_rectifications,
        overdue_rectifications: a.facts.overdue_rectifications,
    }
}

/// A YYYY-MM-DD date field; empty is none.
fn optional_date(v: &mut Validator, field: &str, value: &str) -> Option<Option<NaiveDate>> {
    if value.is_empty() {
        return Some(None);
    }
    match NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        Ok(d) => Some(Some(d)),
        Err(_) => {
            v.violation(field, "must be a date as YYYY-MM-DD");
            None
        }
    }
}

fn required_date(v: &mut Validator, field: &str, value: &str) -> Option<NaiveDate> {
    if value.is_empty() {
        v.violation(field, "is required: a date as YYYY-MM-DD");
        return None;
    }
    optional_date(v, field, value).flatten()
}

/// The resource an assessment is read as: its account, in its department.
fn resource(a: &Assessment) -> Resource {
    Resource::platform_account(a.account, a.department)
}

/// A validated ListAccountCompliance.
struct ListQuery {
    date: Option<NaiveDate>,
    department: Option<DepartmentId>,
    minimum: Level,
    limit: u32,
    after: Option<Cursor>,
}

impl TryFrom<&pb::ListAccountComplianceRequest> for ListQuery {
    type Error = Error;

    fn try_from(req: &pb::ListAccountComplianceRequest) -> Result<Self, Error> {
        let mut v = Validator::new();
        let date = optional_date(&mut v, "assessment_date", &req.assessment_date);
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let minimum = match pb::ComplianceLevel::try_from(req.minimum_level) {
            Ok(pb::ComplianceLevel::Unspecified | pb::ComplianceLevel::Compliant) => Level::Compliant,
            Ok(pb::ComplianceLevel::Warning) => Level::Warning,
            Ok(pb::ComplianceLevel::Veto) => Level::Veto,
            Err(_) => {
                v.violation("minimum_level", "is not a compliance level");
                Level::Compliant
            }
        };
        let limit = page::page_size(req.page_size, 50, 500);
        let after = page::decode_page_token(&req.page_token);
        v.finish()?;
        Ok(Self { date: date.flatten(), department, minimum, limit: limit?, after: after? })
    }
}

impl Compliance {
    /// NOT_FOUND, to a caller who may read the whole bureau's assessments; others learn
    /// nothing about which accounts exist.
    async fn not_found(&self, caller: &govmedia_kit::auth::Principal, account: PlatformAccountId) -> Error {
        match self.core.permissions().require(caller, Permission::ComplianceRead, &Resource::GLOBAL).await {
            Ok(()) => Error::not_found("compliance assessment", account),
            Err(e) => e,
        }
    }
}

#[govmedia_kit::handlers]
impl ComplianceService for Compliance {
    async fn get_account_compliance(
        &self,
        request: Request<pb::GetAccountComplianceRequest>,
    ) -> Result<pb::GetAccountComplianceResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let date = optional_date(&mut v, "assessment_date", &req.assessment_date);
        let (account, date) = v.finish_with(|| Some((account?, date?)))?;
        let found = {
            let mut tx = self.core.db().begin_read().await?;
            store::get(&mut tx, account, date).await?
        };
        let Some(a) = found else {
            return Err(self.not_found(&caller, account).await);
        };
        self.core.permissions().require(&caller, Permission::ComplianceRead, &resource(&a)).await?;
        Ok(pb::GetAccountComplianceResponse { compliance: Some(assessment_to(&a)) })
    }

    async fn list_account_compliance(
        &self,
        request: Request<pb::ListAccountComplianceRequest>,
    ) -> Result<pb::ListAccountComplianceResponse, Error> {
        let (caller, req) = unpack(request)?;
        let q = ListQuery::try_from(&req)?;
        let scope = q.department.map_or(Resource::GLOBAL, Resource::department);
        self.core.permissions().require(&caller, Permission::ComplianceRead, &scope).await?;
        let mut tx = self.core.db().begin_read().await?;
        let date = match q.date {
            Some(d) => Some(d),
            None => store::latest_date(&mut tx).await?.map(|(d, _)| d),
        };
        let Some(date) = date else {
            return Ok(pb::ListAccountComplianceResponse::default());
        };
        let list = store::list(&mut tx, date, q.department, q.minimum, q.after, q.limit).await?;
        Ok(pb::ListAccountComplianceResponse {
            next_page_token: next_page_token(&list, q.limit, |a| {
                (a.level.severity(), i64::from(a.score), a.account.to_string())
            }),
            compliance: list.iter().map(assessment_to).collect(),
            assessment_date: date.to_string(),
        })
    }

    async fn list_account_compliance_history(
        &self,
        request: Request<pb::ListAccountComplianceHistoryRequest>,
    ) -> Result<pb::ListAccountComplianceHistoryResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let start = required_date(&mut v, "start_date", &req.start_date);
        let end = required_date(&mut v, "end_date", &req.end_date);
        if let (Some(s), Some(e)) = (start, end) {
            if e < s {
                v.violation("end_date", "must not be before start_date");
            } else if (e - s).num_days() > MAX_HISTORY_DAYS {
                v.violation("end_date", format!("must be at most {MAX_HISTORY_DAYS} days after start_date"));
            }
        }
        let limit = page::page_size(req.page_size, 100, 366);
        let after: Result<Option<NaiveDate>, Error> = page::decode_page_token(&req.page_token);
        let (account, start, end) = v.finish_with(|| Some((account?, start?, end?)))?;
        let (limit, after) = (limit?, after?);
        // A page starts the day after the last one given.
        let from = after.and_then(|d| d.succ_opt()).map_or(start, |d| d.max(start));
        let (latest, list) = {
            let mut tx = self.core.db().begin_read().await?;
            (store::get(&mut tx, account, None).await?, store::history(&mut tx, account, from, end, limit).await?)
        };
        // Read as the account stands now: a department that has since handed the account
        // over no longer reads its history, the new owner does.
        let Some(latest) = latest else {
            return Err(self.not_found(&caller, account).await);
        };
        self.core.permissions().require(&caller, Permission::ComplianceRead, &resource(&latest)).await?;
        Ok(pb::ListAccountComplianceHistoryResponse {
            next_page_token: next_page_token(&list, limit, |a| a.date),
            compliance: list.iter().map(assessment_to).collect(),
        })
    }

    async fn run_compliance_assessment(
        &self,
        request: Request<pb::RunComplianceAssessmentRequest>,
    ) -> Result<pb::RunComplianceAssessmentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let request_id = v.finish_with(|| request_id)?;
        self.core.permissions().require(&caller, Permission::ComplianceManage, &Resource::GLOBAL).await?;
        // identity and the log are read before the unit of work begins: no write lock is
        // held across a network call.
        let accounts = self.core.register().accounts().await?;
        let now = self.core.now();
        let dates = monitor::pending_dates(&self.core, now).await?;
        let mut assessed = Vec::new();
        for date in dates {
            assessed.push((date, monitor::facts(&self.core, &accounts, date, now).await?));
        }
        let call = Call::new(&caller, "/govmedia.audit.v1.ComplianceService/RunComplianceAssessment", request_id, &req);
        let actor = caller.actor();
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let mut last = None;
                for (date, assessments) in assessed {
                    last = Some(monitor::write(m, date, assessments, &actor).await?);
                }
                let s = last.ok_or_else(|| Error::internal("no date to assess"))?;
                Ok(pb::RunComplianceAssessmentResponse {
                    assessment_date: s.date.to_string(),
                    accounts: s.accounts,
                    warnings: s.warnings,
                    vetoes: s.vetoes,
                    alerts: s.alerts,
                })
            })
            .await?;
        if let Ok(date) = answer.assessment_date.parse::<NaiveDate>()
            && date == local_date(now, self.core.time_zone())
        {
            record_metrics(&monitor::Summary {
                date,
                accounts: answer.accounts,
                warnings: answer.warnings,
                vetoes: answer.vetoes,
                alerts: answer.alerts,
            });
        }
        Ok(answer)
    }
}
