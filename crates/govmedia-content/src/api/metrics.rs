//! `MetricsService`: publication metrics over time and operating reports per account
//! and department (R5.1.1). Reports count what went out in the period and rank it by
//! the latest counts observed before the period's end.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PublicationId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::db::Tx;
use govmedia_kit::wire::{next_page_token, unpack};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::metrics_service_server::{MetricsService, MetricsServiceServer};
use tonic::Request;

use super::{from_ts, optional_time, ts};
use crate::domain::metrics::{self, METRICS_RULE, PublicationFigures, Report, Totals};
use crate::store::metrics::{self as store, Observation, Scope};
use crate::store::{drafts, far_future, publications};
use crate::{Core, PRODUCER};

/// Observations one request may carry.
const MAX_OBSERVATIONS: usize = 1000;
/// The longest report period.
const MAX_PERIOD_DAYS: i64 = 400;
/// Observations may be stamped this far ahead of our clock (platform clocks drift).
const CLOCK_SKEW_SECS: i64 = 300;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> MetricsServiceServer<Metrics> {
    MetricsServiceServer::new(Metrics { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Metrics {
    core: Arc<Core>,
}

/// A period from the wire: both ends required, end after start, at most
/// `MAX_PERIOD_DAYS` long.
fn period(v: &mut Validator, field: &str, range: Option<&cpb::TimeRange>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let Some(range) = range else {
        v.violation(field, "is required: start_time and end_time");
        return None;
    };
    let end_of = |v: &mut Validator, name: &str, t: Option<&prost_types::Timestamp>| {
        if t.is_none() {
            v.violation(format!("{field}.{name}"), "is required");
        }
        optional_time(v, &format!("{field}.{name}"), t)
    };
    let start = end_of(v, "start_time", range.start_time.as_ref());
    let end = end_of(v, "end_time", range.end_time.as_ref());
    let (start, end) = (start?, end?);
    if end <= start {
        v.violation(format!("{field}.end_time"), "must be after start_time");
        return None;
    }
    if (end - start).num_days() > MAX_PERIOD_DAYS {
        v.violation(field, format!("may span at most {MAX_PERIOD_DAYS} days"));
        return None;
    }
    Some((start, end))
}

fn totals_to(t: Totals) -> pb::MetricTotals {
    pb::MetricTotals {
        reads: t.reads,
        likes: t.likes,
        comments: t.comments,
        shares: t.shares,
        favourites: t.favourites,
    }
}

fn observation_to(o: &Observation) -> pb::MetricObservation {
    pb::MetricObservation {
        publication_id: o.publication.to_string(),
        observe_time: Some(ts(o.observed_at)),
        reads: o.totals.reads,
        likes: o.totals.likes,
        comments: o.totals.comments,
        shares: o.totals.shares,
        favourites: o.totals.favourites,
    }
}

fn report_to(r: &Report, start: DateTime<Utc>, end: DateTime<Utc>) -> pb::OperatingReport {
    pb::OperatingReport {
        period: Some(cpb::TimeRange { start_time: Some(ts(start)), end_time: Some(ts(end)) }),
        publication_count: u32::try_from(r.count).unwrap_or(u32::MAX),
        publications_per_week: r.per_week,
        totals: Some(totals_to(r.totals)),
        engagement_rate: r.engagement_rate,
        top_publications: r
            .top
            .iter()
            .map(|p| pb::PublicationSummary {
                publication_id: p.id.to_string(),
                title: p.title.clone(),
                platform_account_id: p.account.to_string(),
                publish_time: Some(ts(p.published_at)),
                totals: Some(totals_to(p.totals)),
                engagement_rate: p.totals.engagement_rate(),
            })
            .collect(),
        last_publish_time: r.last_published_at.map(ts),
        days_since_last_publication: r.days_since_last,
    }
}

impl Metrics {
    /// The figures of everything `scope` published in the period.
    async fn figures(
        &self,
        tx: &mut Tx,
        scope: Scope,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<(Vec<PublicationFigures>, Option<DateTime<Utc>>), Error> {
        let mut out = Vec::new();
        for p in store::published_in(tx, scope, start, end).await? {
            let title = drafts::content(tx, p.draft, p.draft_version).await?.title;
            let totals = store::latest_before(tx, p.id, end).await?;
            out.push(PublicationFigures { id: p.id, title, account: p.account, published_at: p.published_at, totals });
        }
        let last = store::last_before(tx, scope, end).await?.map(|p| p.published_at);
        Ok((out, last))
    }
}

#[govmedia_kit::handlers]
impl MetricsService for Metrics {
    async fn record_publication_metrics(
        &self,
        request: Request<pb::RecordPublicationMetricsRequest>,
    ) -> Result<pb::RecordPublicationMetricsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let now = self.core.now();
        let mut v = Validator::new();
        if req.observations.is_empty() || req.observations.len() > MAX_OBSERVATIONS {
            v.violation("observations", format!("must hold 1 to {MAX_OBSERVATIONS} observations"));
        }
        let mut observations = Vec::with_capacity(req.observations.len());
        for (i, o) in req.observations.iter().enumerate() {
            let field = format!("observations[{i}]");
            let publication: Option<PublicationId> = v.id(&format!("{field}.publication_id"), &o.publication_id);
            let observed_at = match o.observe_time.as_ref().map(|t| from_ts(&format!("{field}.observe_time"), t)) {
                None => {
                    v.violation(format!("{field}.observe_time"), "is required");
                    None
                }
                Some(Err(_)) => {
                    v.violation(format!("{field}.observe_time"), "is not a valid timestamp");
                    None
                }
                Some(Ok(t)) if t > now + chrono::Duration::seconds(CLOCK_SKEW_SECS) => {
                    v.violation(format!("{field}.observe_time"), "is in the future");
                    None
                }
                Some(Ok(t)) => Some(t),
            };
            for (name, value) in [
                ("reads", o.reads),
                ("likes", o.likes),
                ("comments", o.comments),
                ("shares", o.shares),
                ("favourites", o.favourites),
            ] {
                if i64::try_from(value).is_err() {
                    v.violation(format!("{field}.{name}"), "is out of range");
                }
            }
            if let (Some(publication), Some(observed_at)) = (publication, observed_at) {
                let totals = Totals {
                    reads: o.reads,
                    likes: o.likes,
                    comments: o.comments,
                    shares: o.shares,
                    favourites: o.favourites,
                };
                observations.push(Observation { publication, observed_at, totals });
            }
        }
        v.finish()?;

        // Per publication: its account, asked about before anything is written.
        let mut accounts: BTreeMap<PublicationId, PlatformAccountId> = BTreeMap::new();
        let mut read = self.core.db().begin_read().await?;
        for o in &observations {
            if let std::collections::btree_map::Entry::Vacant(slot) = accounts.entry(o.publication) {
                let p = publications::get(&mut read, o.publication)
                    .await?
                    .ok_or_else(|| Error::not_found("publication", o.publication))?;
                let resource = Resource::platform_account(p.account, None);
                self.core.permissions().require(&caller, Permission::MetricsWrite, &resource).await?;
                slot.insert(p.account);
            }
        }
        drop(read);
        let answer = self.core.work().run_unkeyed(async |m| {
            let mut recorded: BTreeMap<PublicationId, u32> = BTreeMap::new();
            let mut duplicates = 0u32;
            for o in &observations {
                if store::insert(m.tx(), o).await? {
                    *recorded.entry(o.publication).or_default() += 1;
                } else {
                    duplicates += 1;
                }
            }
            for (publication, count) in &recorded {
                let mut resource = AuditResourceRef::new("publication", publication);
                resource.platform_account = accounts.get(publication).copied();
                m.audit(
                    AuditRecord::new(AuditAction::MetricsRecorded, caller.actor(), resource, PRODUCER, now)
                        .rule(METRICS_RULE)
                        .request(govmedia_kit::telemetry::current_trace_id(), None)
                        .attr("observations", count),
                );
            }
            let recorded_count = recorded.values().sum();
            Ok(pb::RecordPublicationMetricsResponse { recorded_count, duplicate_count: duplicates })
        });
        answer.await
    }

    async fn list_publication_metrics(
        &self,
        request: Request<pb::ListPublicationMetricsRequest>,
    ) -> Result<pb::ListPublicationMetricsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let publication: Option<PublicationId> = v.id("publication_id", &req.publication_id);
        let range = req.time_range.unwrap_or_default();
        let start = optional_time(&mut v, "time_range.start_time", range.start_time.as_ref())
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let end = optional_time(&mut v, "time_range.end_time", range.end_time.as_ref()).unwrap_or(far_future());
        let publication = v.finish_with(|| publication)?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<DateTime<Utc>> = page::decode_page_token(&req.page_token)?;
        // Times are kept to the microsecond, so the next page starts one after the last.
        let start = after.map_or(start, |a| start.max(a + chrono::Duration::microseconds(1)));
        let mut tx = self.core.db().begin_read().await?;
        let p = publications::get(&mut tx, publication)
            .await?
            .ok_or_else(|| Error::not_found("publication", publication))?;
        self.core
            .permissions()
            .require(&caller, Permission::MetricsRead, &Resource::platform_account(p.account, None))
            .await?;
        let observations = store::list(&mut tx, publication, start, end, limit).await?;
        tx.commit().await?;
        let next_page_token = next_page_token(&observations, limit, |last| last.observed_at);
        Ok(pb::ListPublicationMetricsResponse {
            observations: observations.iter().map(observation_to).collect(),
            next_page_token,
        })
    }

    async fn get_account_report(
        &self,
        request: Request<pb::GetAccountReportRequest>,
    ) -> Result<pb::GetAccountReportResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        let period = period(&mut v, "period", req.period.as_ref());
        let (account, (start, end)) = v.finish_with(|| Some((account?, period?)))?;
        let facts = self.core.account(account).await?;
        self.core
            .permissions()
            .require(&caller, Permission::MetricsRead, &Resource::platform_account(account, facts.department))
            .await?;
        let mut tx = self.core.db().begin_read().await?;
        let (figures, last) = self.figures(&mut tx, Scope::Account(account), start, end).await?;
        tx.commit().await?;
        let report = metrics::report(start, end, self.core.now(), figures, last);
        Ok(pb::GetAccountReportResponse { report: Some(report_to(&report, start, end)) })
    }

    async fn get_department_report(
        &self,
        request: Request<pb::GetDepartmentReportRequest>,
    ) -> Result<pb::GetDepartmentReportResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.id("department_id", &req.department_id);
        let period = period(&mut v, "period", req.period.as_ref());
        let (department, (start, end)) = v.finish_with(|| Some((department?, period?)))?;
        self.core.permissions().require(&caller, Permission::MetricsRead, &Resource::department(department)).await?;
        // Every account of the department gets a report, also one that never
        // published: its silence is what an inspection looks for.
        let accounts = self.core.department_accounts(department).await?;
        let now = self.core.now();
        let mut tx = self.core.db().begin_read().await?;
        let (figures, last) = self.figures(&mut tx, Scope::Department(department), start, end).await?;
        let mut account_reports = std::collections::HashMap::new();
        for account in accounts {
            let (mine, my_last) = self.figures(&mut tx, Scope::Account(account), start, end).await?;
            let report = metrics::report(start, end, now, mine, my_last);
            account_reports.insert(account.to_string(), report_to(&report, start, end));
        }
        tx.commit().await?;
        let report = metrics::report(start, end, now, figures, last);
        Ok(pb::GetDepartmentReportResponse { report: Some(report_to(&report, start, end)), account_reports })
    }
}
