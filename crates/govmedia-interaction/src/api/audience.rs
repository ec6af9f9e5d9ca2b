//! `AudienceService`: follower snapshots and their trends (R4.3.1), engagement campaigns
//! with their participation and engagement counts (R4.3.2).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{CampaignId, DepartmentId, PlatformAccountId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_NAME_CHARS, MAX_REASON_CHARS, Validator};
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{caller, check_etag, etag, next_page_token, time_range, ts};
use govmedia_kit::wire::{one_id, unpack};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_proto::interaction::v1::audience_service_server::{AudienceService, AudienceServiceServer};
use tonic::Request;

use super::{method, record};
use crate::domain::campaign::Campaign;
use crate::store::audience::{self as store, CampaignFilter, Snapshot};
use crate::{Core, PRODUCER};

/// Most snapshots in one request.
const MAX_SNAPSHOTS: usize = 1000;
/// Most breakdown entries of one snapshot.
const MAX_BREAKDOWN: usize = 500;
/// Most accounts of one campaign.
const MAX_ACCOUNTS: usize = 50;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> AudienceServiceServer<Audience> {
    AudienceServiceServer::new(Audience { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Audience {
    core: Arc<Core>,
}

/// A calendar day from the wire: the UTC midnight that starts it.
fn day(v: &mut Validator, field: &str, t: Option<&prost_types::Timestamp>) -> Option<NaiveDate> {
    let Some(t) = t else {
        v.violation(field, "is required");
        return None;
    };
    if t.nanos != 0 || t.seconds.rem_euclid(86_400) != 0 {
        v.violation(field, "must be the UTC midnight that starts the day");
        return None;
    }
    DateTime::from_timestamp(t.seconds, 0).map(|d| d.date_naive()).or_else(|| {
        v.violation(field, "is not a valid date");
        None
    })
}

fn midnight(d: NaiveDate) -> prost_types::Timestamp {
    ts(d.and_hms_opt(0, 0, 0).map_or(DateTime::<Utc>::UNIX_EPOCH, |n| n.and_utc()))
}

fn count(v: &mut Validator, field: &str, n: u64) -> i64 {
    i64::try_from(n).unwrap_or_else(|_| {
        v.violation(field, "is too large");
        0
    })
}

fn snapshot_to(s: &Snapshot) -> pb::FollowerSnapshot {
    pb::FollowerSnapshot {
        platform_account_id: s.account.to_string(),
        snapshot_date: Some(midnight(s.date)),
        follower_count: u64::try_from(s.follower_count).unwrap_or(0),
        new_followers: u64::try_from(s.new_followers).unwrap_or(0),
        lost_followers: u64::try_from(s.lost_followers).unwrap_or(0),
        breakdown: s.breakdown.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    }
}

fn campaign_to(c: &Campaign) -> pb::Campaign {
    pb::Campaign {
        id: c.id.to_string(),
        name: c.name.clone(),
        description: c.description.clone(),
        department_id: c.department.to_string(),
        platform_account_ids: c.accounts.iter().map(ToString::to_string).collect(),
        period: Some(cpb::TimeRange { start_time: Some(ts(c.period_start)), end_time: Some(ts(c.period_end)) }),
        participant_count: u64::try_from(c.participant_count).unwrap_or(0),
        engagement_count: u64::try_from(c.engagement_count).unwrap_or(0),
        create_time: Some(ts(c.created_at)),
        update_time: Some(ts(c.updated_at)),
        etag: etag(c.version),
    }
}

fn accounts(v: &mut Validator, field: &str, ids: &[String]) -> Vec<PlatformAccountId> {
    if ids.is_empty() {
        v.violation(field, "must name at least one account");
    }
    if ids.len() > MAX_ACCOUNTS {
        v.violation(field, format!("must name at most {MAX_ACCOUNTS} accounts"));
    }
    let mut out = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if let Some(a) = v.id::<PlatformAccountId>(&format!("{field}[{i}]"), id)
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

fn period(v: &mut Validator, field: &str, range: Option<&cpb::TimeRange>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let (start, end) = time_range(v, field, range);
    if start.is_none() {
        v.violation(format!("{field}.start_time"), "is required");
    }
    if end.is_none() {
        v.violation(format!("{field}.end_time"), "is required");
    }
    start.zip(end)
}

impl Audience {
    /// The caller's authorisation to manage a campaign (on its department), asked before
    /// it is locked.
    async fn campaign_grant(&self, caller: &Principal, id: CampaignId) -> Result<Authorized, Error> {
        let mut tx = self.core.db().begin_read().await?;
        let c = store::get_campaign(&mut tx, id).await?.ok_or_else(|| Error::not_found("campaign", id))?;
        drop(tx);
        let resource = Resource::department(c.department);
        self.core.permissions().authorize(caller, Permission::CampaignManage, &resource).await
    }
    fn campaign_record(
        &self,
        action: AuditAction,
        caller: &Principal,
        c: &Campaign,
        request_id: String,
    ) -> AuditRecord {
        let mut resource = AuditResourceRef::new("campaign", c.id);
        resource.department = Some(c.department);
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule("R4.3.2")
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id))
            .attr("name", &c.name)
    }

    /// Every account exists with identity and is not closed.
    async fn check_accounts(&self, accounts: &[PlatformAccountId]) -> Result<(), Error> {
        for a in accounts {
            if self.core.account(*a).await?.closed {
                return Err(Error::rule(
                    "R2.1.1",
                    format!("platform_account/{a}"),
                    "a closed account runs no campaign",
                ));
            }
        }
        Ok(())
    }
}

#[govmedia_kit::handlers]
impl AudienceService for Audience {
    async fn record_follower_snapshots(
        &self,
        request: Request<pb::RecordFollowerSnapshotsRequest>,
    ) -> Result<pb::RecordFollowerSnapshotsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        if req.snapshots.is_empty() {
            v.violation("snapshots", "must hold at least one snapshot");
        }
        if req.snapshots.len() > MAX_SNAPSHOTS {
            v.violation("snapshots", format!("must hold at most {MAX_SNAPSHOTS} snapshots"));
        }
        let mut snapshots = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, s) in req.snapshots.iter().enumerate() {
            let f = |n: &str| format!("snapshots[{i}].{n}");
            let account: Option<PlatformAccountId> = v.id(&f("platform_account_id"), &s.platform_account_id);
            let date = day(&mut v, &f("snapshot_date"), s.snapshot_date.as_ref());
            if s.breakdown.len() > MAX_BREAKDOWN {
                v.violation(f("breakdown"), format!("must hold at most {MAX_BREAKDOWN} entries"));
            }
            if s.breakdown.keys().any(|k| k.is_empty() || k.chars().count() > MAX_NAME_CHARS) {
                v.violation(f("breakdown"), format!("keys must be 1 to {MAX_NAME_CHARS} characters"));
            }
            let counts = (
                count(&mut v, &f("follower_count"), s.follower_count),
                count(&mut v, &f("new_followers"), s.new_followers),
                count(&mut v, &f("lost_followers"), s.lost_followers),
            );
            if let (Some(account), Some(date)) = (account, date) {
                if !seen.insert((account, date)) {
                    v.violation(f("snapshot_date"), "repeats a day of the same account in this request");
                }
                snapshots.push(Snapshot {
                    account,
                    date,
                    follower_count: counts.0,
                    new_followers: counts.1,
                    lost_followers: counts.2,
                    breakdown: s.breakdown.iter().map(|(k, n)| (k.clone(), *n)).collect::<BTreeMap<_, _>>(),
                });
            }
        }
        let request_id = v.finish_with(|| request_id)?;
        let mut facts = BTreeMap::new();
        for s in &snapshots {
            if let std::collections::btree_map::Entry::Vacant(slot) = facts.entry(s.account) {
                let f = self.core.account(s.account).await?;
                self.core.permissions().require(&caller, Permission::FollowerWrite, &f.resource()).await?;
                slot.insert(f);
            }
        }
        let call = Call::new(&caller, method!("AudienceService/RecordFollowerSnapshots"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let now = m.now();
            let mut answer = pb::RecordFollowerSnapshotsResponse::default();
            let mut days: BTreeMap<PlatformAccountId, Vec<String>> = BTreeMap::new();
            for s in &snapshots {
                if store::upsert_snapshot(m.tx(), s, now).await? {
                    answer.replaced_count += 1;
                } else {
                    answer.recorded_count += 1;
                }
                days.entry(s.account).or_default().push(s.date.to_string());
            }
            for (account, dates) in days {
                let f = facts.get(&account).ok_or_else(|| Error::internal("checked account"))?;
                m.audit(
                    record(
                        AuditAction::FollowerSnapshotRecorded,
                        &caller,
                        ("platform_account", account),
                        f,
                        now,
                        "R4.3.1",
                        Some(request_id.to_string()),
                    )
                    .attr("dates", dates.join(",")),
                );
            }
            Ok(answer)
        });
        answer.await
    }

    async fn get_follower_trend(
        &self,
        request: Request<pb::GetFollowerTrendRequest>,
    ) -> Result<pb::GetFollowerTrendResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let range = period(&mut v, "period", req.period.as_ref());
        let (account, (start, end)) = v.finish_with(|| Some((account?, range?)))?;
        let facts = self.core.account(account).await?;
        self.core.permissions().require(&caller, Permission::FollowerRead, &facts.resource()).await?;
        // The days whose midnight falls in [start, end).
        let first = if start.time() == chrono::NaiveTime::MIN {
            start.date_naive()
        } else {
            start.date_naive() + chrono::Days::new(1)
        };
        let last = (end - chrono::Duration::microseconds(1)).date_naive();
        let mut tx = self.core.db().begin_read().await?;
        let snapshots = if first <= last { store::snapshots(&mut tx, account, first, last).await? } else { Vec::new() };
        let (net_change, growth_rate) = match (snapshots.first(), snapshots.last()) {
            (Some(a), Some(b)) => {
                let net = b.follower_count - a.follower_count;
                #[allow(clippy::cast_precision_loss)] // follower counts far below 2^52
                let rate = if a.follower_count == 0 { 0.0 } else { net as f64 / a.follower_count as f64 };
                (net, rate)
            }
            _ => (0, 0.0),
        };
        Ok(pb::GetFollowerTrendResponse {
            net_change,
            growth_rate,
            total_new_followers: snapshots.iter().map(|s| u64::try_from(s.new_followers).unwrap_or(0)).sum(),
            total_lost_followers: snapshots.iter().map(|s| u64::try_from(s.lost_followers).unwrap_or(0)).sum(),
            snapshots: snapshots.iter().map(snapshot_to).collect(),
        })
    }

    async fn create_campaign(
        &self,
        request: Request<pb::CreateCampaignRequest>,
    ) -> Result<pb::CreateCampaignResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.campaign.clone().unwrap_or_default();
        let name = v.required_text("campaign.name", &given.name, MAX_NAME_CHARS);
        let description = v.optional_text("campaign.description", &given.description, MAX_REASON_CHARS);
        let department: Option<DepartmentId> = v.id("campaign.department_id", &given.department_id);
        let accounts = accounts(&mut v, "campaign.platform_account_ids", &given.platform_account_ids);
        let range = period(&mut v, "campaign.period", given.period.as_ref());
        let (request_id, name, description, department, (start, end)) =
            v.finish_with(|| Some((request_id?, name?, description?, department?, range?)))?;
        self.core.permissions().require(&caller, Permission::CampaignManage, &Resource::department(department)).await?;
        self.core.check_department(department).await?;
        self.check_accounts(&accounts).await?;
        let call = Call::new(&caller, method!("AudienceService/CreateCampaign"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let now = m.now();
            let c = Campaign {
                id: CampaignId::new(),
                name,
                description,
                department,
                accounts,
                period_start: start,
                period_end: end,
                participant_count: 0,
                engagement_count: 0,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            store::insert_campaign(m.tx(), &c).await?;
            m.audit(self.campaign_record(AuditAction::CampaignCreated, &caller, &c, request_id.to_string()));
            Ok(pb::CreateCampaignResponse { campaign: Some(campaign_to(&c)) })
        });
        answer.await
    }

    async fn get_campaign(&self, request: Request<pb::GetCampaignRequest>) -> Result<pb::GetCampaignResponse, Error> {
        let caller = caller(&request)?;
        let id: CampaignId = one_id("campaign_id", &request.get_ref().campaign_id)?;
        let mut tx = self.core.db().begin_read().await?;
        let c = store::get_campaign(&mut tx, id).await?.ok_or_else(|| Error::not_found("campaign", id))?;
        drop(tx);
        self.core.permissions().require(&caller, Permission::CampaignRead, &Resource::department(c.department)).await?;
        Ok(pb::GetCampaignResponse { campaign: Some(campaign_to(&c)) })
    }

    async fn list_campaigns(
        &self,
        request: Request<pb::ListCampaignsRequest>,
    ) -> Result<pb::ListCampaignsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let (from, to) = time_range(&mut v, "period", req.period.as_ref());
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(DateTime<Utc>, String)> = page::decode_page_token(&req.page_token)?;
        let resource = match (department, account) {
            (Some(d), _) => Resource::department(d),
            (None, Some(a)) => self.core.account(a).await?.resource(),
            (None, None) => Resource::GLOBAL,
        };
        self.core.permissions().require(&caller, Permission::CampaignRead, &resource).await?;
        let mut tx = self.core.db().begin_read().await?;
        let list =
            store::list_campaigns(&mut tx, &CampaignFilter { department, account, from, to }, after, limit).await?;
        Ok(pb::ListCampaignsResponse {
            next_page_token: next_page_token(&list, limit, |c| (c.period_start, c.id.to_string())),
            campaigns: list.iter().map(campaign_to).collect(),
        })
    }

    async fn update_campaign(
        &self,
        request: Request<pb::UpdateCampaignRequest>,
    ) -> Result<pb::UpdateCampaignResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.campaign.clone().unwrap_or_default();
        let id: Option<CampaignId> = v.id("campaign.id", &given.id);
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.violation("update_mask", "names no field to change");
        }
        let (mut name, mut description, mut new_accounts, mut new_period) = (None, None, None, None);
        for path in &paths {
            match path.as_str() {
                "name" => name = v.required_text("campaign.name", &given.name, MAX_NAME_CHARS),
                "description" => {
                    description = v.optional_text("campaign.description", &given.description, MAX_REASON_CHARS)
                }
                "platform_account_ids" => {
                    new_accounts = Some(accounts(&mut v, "campaign.platform_account_ids", &given.platform_account_ids))
                }
                "period" => new_period = period(&mut v, "campaign.period", given.period.as_ref()),
                other => v.violation("update_mask", format!("{other:?} cannot be changed")),
            }
        }
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        if let Some(a) = &new_accounts {
            self.check_accounts(a).await?;
        }
        let grant = self.campaign_grant(&caller, id).await?;
        let call = Call::new(&caller, method!("AudienceService/UpdateCampaign"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut c = store::lock_campaign(m.tx(), id, &grant).await?;
            check_etag("campaign.etag", &given.etag, c.version, true)?;
            let previous = c.version;
            if let Some(x) = name {
                c.name = x;
            }
            if let Some(x) = description {
                c.description = x;
            }
            if let Some(x) = new_accounts {
                c.accounts = x;
            }
            if let Some((s, e)) = new_period {
                c.period_start = s;
                c.period_end = e;
            }
            c.updated_at = m.now();
            c.version += 1;
            store::save_campaign(m.tx(), &c, previous).await?;
            m.audit(
                self.campaign_record(AuditAction::CampaignUpdated, &caller, &c, request_id.to_string())
                    .attr("fields", paths.join(",")),
            );
            Ok(pb::UpdateCampaignResponse { campaign: Some(campaign_to(&c)) })
        });
        answer.await
    }

    async fn record_campaign_metrics(
        &self,
        request: Request<pb::RecordCampaignMetricsRequest>,
    ) -> Result<pb::RecordCampaignMetricsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<CampaignId> = v.id("campaign_id", &req.campaign_id);
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let date = day(&mut v, "metric_date", req.metric_date.as_ref());
        let participants = count(&mut v, "participant_count", req.participant_count);
        let engagements = count(&mut v, "engagement_count", req.engagement_count);
        let (request_id, id, account, date) = v.finish_with(|| Some((request_id?, id?, account?, date?)))?;
        let grant = self.campaign_grant(&caller, id).await?;
        let call = Call::new(&caller, method!("AudienceService/RecordCampaignMetrics"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let c = store::lock_campaign(m.tx(), id, &grant).await?;
            if !c.accounts.contains(&account) {
                return Err(Error::invalid("platform_account_id", "is not one of the campaign's accounts"));
            }
            if date < c.period_start.date_naive() || date > c.period_end.date_naive() {
                return Err(Error::invalid("metric_date", "is outside the campaign's period"));
            }
            let now = m.now();
            store::upsert_campaign_metrics(m.tx(), id, account, date, participants, engagements, now).await?;
            let updated = store::get_campaign(m.tx(), id).await?.ok_or_else(|| Error::not_found("campaign", id))?;
            m.audit(
                self.campaign_record(AuditAction::CampaignMetricsRecorded, &caller, &updated, request_id.to_string())
                    .attr("platform_account_id", account)
                    .attr("metric_date", date)
                    .attr("participant_count", participants)
                    .attr("engagement_count", engagements),
            );
            Ok(pb::RecordCampaignMetricsResponse { campaign: Some(campaign_to(&updated)) })
        });
        answer.await
    }
}
