//! `AuditLogService`: append (services only), read, query, export and verify the
//! hash-chained audit log (R1.3.5, R8.1.1, R9.2).

use std::collections::BTreeMap;
use std::sync::Arc;

use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, ActorKind, AuditAction, AuditRecord, AuditResourceRef, Outcome};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::auth::{Principal, PrincipalKind};
use govmedia_kit::wire::{from_ts, ts};
use govmedia_kit::wire::{next_page_token, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::audit_log_service_server::{AuditLogService, AuditLogServiceServer};
use govmedia_proto::common::v1 as cpb;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Status};

use crate::Core;
use crate::domain::chain::{self, Break, ChainedEvent, GENESIS};
use crate::store::{self, EventFilter};
use crate::verification::{self, Verification};

/// Most events in one AppendEvents.
pub const MAX_APPEND: usize = 1000;
/// Events per export chunk.
const EXPORT_CHUNK: u32 = 500;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> AuditLogServiceServer<AuditLog> {
    AuditLogServiceServer::new(AuditLog { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct AuditLog {
    core: Arc<Core>,
}

fn kind_text(kind: i32) -> Option<&'static str> {
    match cpb::PrincipalKind::try_from(kind).ok()? {
        cpb::PrincipalKind::User => Some("user"),
        cpb::PrincipalKind::Service => Some("service"),
        cpb::PrincipalKind::System => Some("system"),
        cpb::PrincipalKind::Unspecified => None,
    }
}

fn outcome_text(outcome: i32) -> Option<&'static str> {
    match pb::AuditOutcome::try_from(outcome).ok()? {
        pb::AuditOutcome::Success => Some("success"),
        pb::AuditOutcome::Failure => Some("failure"),
        pb::AuditOutcome::Denied => Some("denied"),
        pb::AuditOutcome::Unspecified => None,
    }
}

/// Who appends the audit service's own records (exports, verifications, lexicon
/// changes): the service itself, in process.
pub const SELF_APPENDER: &str = "govmedia-audit";

/// The chain's form of a record (the audit service's own records).
pub fn record_to_event(r: &AuditRecord) -> ChainedEvent {
    ChainedEvent {
        sequence: 0,
        id: r.id.to_string(),
        occur_time: govmedia_domain::clock::to_micros(r.occur_time),
        record_time: r.occur_time,
        action: r.action.clone(),
        actor_kind: match r.actor.kind {
            ActorKind::User => "user",
            ActorKind::Service => "service",
            ActorKind::System => "system",
        }
        .to_owned(),
        actor_id: r.actor.id.clone(),
        actor_name: r.actor.display_name.clone(),
        client_address: r.client_address.clone().unwrap_or_default(),
        producer: r.producer.clone(),
        resource_type: r.resource.kind.clone(),
        resource_id: r.resource.id.clone(),
        department_id: r.resource.department.map(|d| d.to_string()).unwrap_or_default(),
        platform_account_id: r.resource.platform_account.map(|a| a.to_string()).unwrap_or_default(),
        outcome: match r.outcome {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
        .to_owned(),
        rule_id: r.rule_id.clone().unwrap_or_default(),
        reason: r.reason.clone().unwrap_or_default(),
        attributes: r.attributes.clone(),
        trace_id: r.trace_id.clone().unwrap_or_default(),
        request_id: r.request_id.clone().unwrap_or_default(),
        appended_by: SELF_APPENDER.to_owned(),
        previous_hash: GENESIS,
        hash: GENESIS,
    }
}

fn parse_event(v: &mut Validator, field: &str, e: &pb::AuditEvent) -> Option<ChainedEvent> {
    let id: Option<govmedia_domain::ids::EventId> = v.id(&format!("{field}.id"), &e.id);
    let action = e.action.trim();
    if action.is_empty()
        || !action.contains('.')
        || action.len() > 100
        || !action.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_')
    {
        v.violation(format!("{field}.action"), "must be a dotted lower-case action name such as draft.approved");
    }
    let occur_time = match &e.occur_time {
        Some(t) => match from_ts(&format!("{field}.occur_time"), t) {
            Ok(t) => Some(t),
            Err(_) => {
                v.violation(format!("{field}.occur_time"), "is not a valid timestamp");
                None
            }
        },
        None => {
            v.violation(format!("{field}.occur_time"), "is required");
            None
        }
    };
    let actor = e.actor.clone().unwrap_or_default();
    let actor_kind = kind_text(actor.kind);
    if actor_kind.is_none() {
        v.violation(format!("{field}.actor.kind"), "is required: user, service or system");
    }
    let outcome = outcome_text(e.outcome);
    if outcome.is_none() {
        v.violation(format!("{field}.outcome"), "is required: success, failure or denied");
    }
    let producer = v.required_text(&format!("{field}.producer"), &e.producer, 64);
    let resource = e.resource.clone().unwrap_or_default();
    if e.attributes.len() > 100 {
        v.violation(format!("{field}.attributes"), "must hold at most 100 entries");
    }
    Some(ChainedEvent {
        sequence: 0,
        id: id?.to_string(),
        occur_time: occur_time?,
        record_time: occur_time?,
        action: action.to_owned(),
        actor_kind: actor_kind?.to_owned(),
        actor_id: actor.id,
        actor_name: actor.display_name,
        client_address: e.client_address.clone(),
        producer: producer?,
        resource_type: resource.r#type,
        resource_id: resource.id,
        department_id: resource.department_id,
        platform_account_id: resource.platform_account_id,
        outcome: outcome?.to_owned(),
        rule_id: e.rule_id.clone(),
        reason: e.reason.clone(),
        attributes: e.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<BTreeMap<_, _>>(),
        trace_id: e.trace_id.clone(),
        request_id: e.request_id.clone(),
        appended_by: String::new(),
        previous_hash: GENESIS,
        hash: GENESIS,
    })
}

/// An event on the wire. A stored kind or outcome this version does not know is an
/// error: read as something else it would misstate what the log holds.
fn event_to_proto(e: &ChainedEvent) -> Result<pb::AuditEvent, Error> {
    let unknown =
        |what: &str, value: &str| Error::internal(format!("event {} has an unknown {what} {value:?}", e.sequence));
    Ok(pb::AuditEvent {
        id: e.id.clone(),
        sequence: u64::try_from(e.sequence).unwrap_or(0),
        occur_time: Some(ts(e.occur_time)),
        record_time: Some(ts(e.record_time)),
        action: e.action.clone(),
        actor: Some(cpb::PrincipalRef {
            kind: match e.actor_kind.as_str() {
                "user" => cpb::PrincipalKind::User,
                "service" => cpb::PrincipalKind::Service,
                "system" => cpb::PrincipalKind::System,
                other => return Err(unknown("actor kind", other)),
            } as i32,
            id: e.actor_id.clone(),
            display_name: e.actor_name.clone(),
        }),
        client_address: e.client_address.clone(),
        producer: e.producer.clone(),
        resource: Some(pb::AuditResource {
            r#type: e.resource_type.clone(),
            id: e.resource_id.clone(),
            department_id: e.department_id.clone(),
            platform_account_id: e.platform_account_id.clone(),
        }),
        outcome: match e.outcome.as_str() {
            "success" => pb::AuditOutcome::Success,
            "failure" => pb::AuditOutcome::Failure,
            "denied" => pb::AuditOutcome::Denied,
            other => return Err(unknown("outcome", other)),
        } as i32,
        rule_id: e.rule_id.clone(),
        reason: e.reason.clone(),
        attributes: e.attributes.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        trace_id: e.trace_id.clone(),
        request_id: e.request_id.clone(),
        appended_by: e.appended_by.clone(),
        previous_hash: e.previous_hash.to_vec(),
        hash: e.hash.to_vec(),
    })
}

fn parse_filter(v: &mut Validator, f: Option<&pb::EventFilter>) -> EventFilter {
    let Some(f) = f else { return EventFilter::default() };
    let mut out = EventFilter {
        actor_id: (!f.actor_id.is_empty()).then(|| f.actor_id.clone()),
        resource_type: (!f.resource_type.is_empty()).then(|| f.resource_type.clone()),
        resource_id: (!f.resource_id.is_empty()).then(|| f.resource_id.clone()),
        start_sequence: i64::try_from(f.start_sequence).unwrap_or(i64::MAX),
        end_sequence: i64::try_from(f.end_sequence).unwrap_or(i64::MAX),
        ..Default::default()
    };
    for action in &f.actions {
        match action.strip_suffix(".*") {
            Some(prefix) if !prefix.is_empty() => out.action_prefixes.push(format!("{prefix}.")),
            _ if !action.is_empty() && !action.contains('*') => out.actions.push(action.clone()),
            _ => v.violation("filter.actions", format!("{action:?} is neither an action nor a prefix such as draft.*")),
        }
    }
    if let Some(range) = &f.time_range {
        out.from = range.start_time.as_ref().and_then(|t| {
            from_ts("filter.time_range.start_time", t)
                .map_err(|_| v.violation("filter.time_range.start_time", "is not a valid timestamp"))
                .ok()
        });
        out.to = range.end_time.as_ref().and_then(|t| {
            from_ts("filter.time_range.end_time", t)
                .map_err(|_| v.violation("filter.time_range.end_time", "is not a valid timestamp"))
                .ok()
        });
    }
    out
}

impl AuditLog {
    /// A checkpoint kept outside the database, if signed by this log's audit key: its
    /// (sequence, hash). Anything else is the caller's mistake, not a broken log.
    fn kept_checkpoint(&self, c: &pb::Checkpoint) -> Result<(i64, [u8; 32]), Error> {
        let mut v = Validator::new();
        let sequence = i64::try_from(c.sequence).ok().filter(|s| *s > 0);
        if sequence.is_none() {
            v.violation("kept_checkpoint.sequence", "must be a sequence number of the log");
        }
        let hash = <[u8; 32]>::try_from(c.hash.as_slice()).ok();
        if hash.is_none() {
            v.violation("kept_checkpoint.hash", "must be 32 bytes");
        }
        let created_at = match &c.create_time {
            Some(t) => from_ts("kept_checkpoint.create_time", t)
                .map_err(|_| v.violation("kept_checkpoint.create_time", "is not a valid timestamp"))
                .ok(),
            None => {
                v.violation("kept_checkpoint.create_time", "is required");
                None
            }
        };
        let (sequence, hash, created_at) = v.finish_with(|| Some((sequence?, hash?, created_at?)))?;
        if c.public_key != self.core.checkpoint_public_key()
            || !chain::checkpoint_signature_valid(&c.public_key, &c.signature, sequence, &hash, created_at)
        {
            return Err(Error::invalid(
                "kept_checkpoint.signature",
                "is not this audit log's signature over the checkpoint (R1.3.5)",
            ));
        }
        Ok((sequence, hash))
    }

    async fn require(&self, caller: &Principal, permission: Permission) -> Result<(), Error> {
        self.core.permissions().require(caller, permission, &Resource::GLOBAL).await
    }
}

fn caller<T>(request: &Request<T>) -> Result<Principal, Error> {
    govmedia_kit::auth::principal(request)
}

#[govmedia_kit::handlers]
impl AuditLogService for AuditLog {
    async fn append_events(
        &self,
        request: Request<pb::AppendEventsRequest>,
    ) -> Result<pb::AppendEventsResponse, Error> {
        let caller = caller(&request)?;
        if caller.kind != PrincipalKind::Service {
            return Err(Error::denied(Permission::AuditAppend, "only service principals append to the audit log"));
        }
        self.require(&caller, Permission::AuditAppend).await?;
        let req = request.into_inner();
        let mut v = Validator::new();
        if req.events.is_empty() || req.events.len() > MAX_APPEND {
            v.violation("events", format!("must hold 1 to {MAX_APPEND} events (has {})", req.events.len()));
        }
        let events: Vec<_> =
            req.events.iter().enumerate().map(|(i, e)| parse_event(&mut v, &format!("events[{i}]"), e)).collect();
        // Who appends is who authenticated, never what the events say (issue 18).
        let appender = caller.client_id.clone().unwrap_or_default();
        let policy = self.core.append_policy();
        let now = self.core.now();
        for (i, e) in events.iter().enumerate() {
            let Some(e) = e else { continue };
            if let Some(why) = policy.check_time(e.occur_time, now) {
                v.violation(format!("events[{i}].occur_time"), why);
            }
        }
        v.finish()?;
        let mut events: Vec<ChainedEvent> = events.into_iter().flatten().collect();
        if let Some(e) = events.iter().find(|e| !policy.may_write(&appender, &e.producer)) {
            return Err(Error::denied(
                Permission::AuditAppend,
                format!(
                    "client {appender:?} appends only events of producer {:?}, not {:?}",
                    policy.producers_of(&appender).join(", "),
                    e.producer
                ),
            ));
        }
        for e in &mut events {
            e.appended_by.clone_from(&appender);
        }
        let appended = self.core.appender().append(events).await?;
        Ok(pb::AppendEventsResponse {
            appended_count: appended.appended,
            duplicate_event_ids: appended.duplicates,
            last_sequence: u64::try_from(appended.last_sequence).unwrap_or(0),
        })
    }

    async fn get_event(&self, request: Request<pb::GetEventRequest>) -> Result<pb::GetEventResponse, Error> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let id: Option<govmedia_domain::ids::EventId> = v.id("event_id", &request.get_ref().event_id);
        let id = v.finish_with(|| id)?;
        self.require(&caller, Permission::AuditRead).await?;
        let event = store::get_event(self.core.db(), &id.to_string())
            .await?
            .ok_or_else(|| Error::not_found("audit_event", id))?;
        Ok(pb::GetEventResponse { event: Some(event_to_proto(&event)?) })
    }

    async fn query_events(&self, request: Request<pb::QueryEventsRequest>) -> Result<pb::QueryEventsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let filter = parse_filter(&mut v, req.filter.as_ref());
        v.finish()?;
        let limit = page::page_size(req.page_size, 100, 1000)?;
        let after: i64 = page::decode_page_token(&req.page_token)?.unwrap_or(0);
        self.require(&caller, Permission::AuditRead).await?;
        let events = store::query_events(self.core.db(), &filter, after, limit).await?;
        let next_page_token = next_page_token(&events, limit, |last| last.sequence);
        Ok(pb::QueryEventsResponse {
            events: events.iter().map(event_to_proto).collect::<Result<_, _>>()?,
            next_page_token,
        })
    }

    type ExportEventsStream = ReceiverStream<Result<pb::ExportEventsResponse, Status>>;

    async fn export_events(
        &self,
        request: Request<pb::ExportEventsRequest>,
    ) -> Result<Self::ExportEventsStream, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let filter = parse_filter(&mut v, req.filter.as_ref());
        v.finish()?;
        self.require(&caller, Permission::AuditExport).await?;
        let total = store::count_events(self.core.db(), &filter).await?;
        self.core
            .record_own(
                AuditAction::AuditExported,
                caller.actor(),
                AuditResourceRef::new("audit_log", "export"),
                &[("estimated_total", total.to_string())],
            )
            .await;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let core = Arc::clone(&self.core);
        tokio::spawn(async move {
            let mut after = 0;
            let mut sent = 0_u64;
            loop {
                match store::query_events(core.db(), &filter, after, EXPORT_CHUNK).await {
                    Ok(events) if events.is_empty() => break,
                    Ok(events) => {
                        after = events.last().map_or(after, |e| e.sequence);
                        sent += events.len() as u64;
                        let events = match events.iter().map(event_to_proto).collect::<Result<_, _>>() {
                            Ok(events) => events,
                            Err(e) => {
                                let _ = tx.send(Err(govmedia_kit::rpc::status(e))).await;
                                break;
                            }
                        };
                        let chunk =
                            pb::ExportEventsResponse { events, exported_count: sent, estimated_total: total.max(sent) };
                        if tx.send(Ok(chunk)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(govmedia_kit::rpc::status(e))).await;
                        break;
                    }
                }
            }
        });
        Ok(ReceiverStream::new(rx))
    }

    async fn verify_log(&self, request: Request<pb::VerifyLogRequest>) -> Result<pb::VerifyLogResponse, Error> {
        let (caller, req) = unpack(request)?;
        self.require(&caller, Permission::AuditVerify).await?;
        let kept = req.kept_checkpoint.as_ref().map(|c| self.kept_checkpoint(c)).transpose()?;
        let start = i64::try_from(req.start_sequence.max(1)).unwrap_or(i64::MAX);
        let end = i64::try_from(req.end_sequence).unwrap_or(i64::MAX);
        let Verification { start, end, last, latest_checkpoint, verified_events, verified_checkpoints, broken } =
            verification::verify(self.core.db(), start, end, &self.core.checkpoint_public_key(), kept).await?;
        let (intact, first_broken, kind, detail) = match broken {
            None => (
                true,
                0,
                pb::BreakKind::Unspecified,
                format!("{verified_events} events and {verified_checkpoints} checkpoints verified"),
            ),
            Some((at, kind, detail)) => (
                false,
                u64::try_from(at).unwrap_or(0),
                match kind {
                    Break::HashMismatch => pb::BreakKind::HashMismatch,
                    Break::ChainMismatch => pb::BreakKind::ChainMismatch,
                    Break::SequenceGap => pb::BreakKind::SequenceGap,
                    Break::CheckpointSignatureInvalid => pb::BreakKind::CheckpointSignatureInvalid,
                    Break::CheckpointHashMismatch => pb::BreakKind::CheckpointHashMismatch,
                    Break::TailMissing => pb::BreakKind::TailMissing,
                    Break::CheckpointMissing => pb::BreakKind::CheckpointMissing,
                },
                detail,
            ),
        };
        self.core
            .record_own(
                AuditAction::AuditVerified,
                caller.actor(),
                AuditResourceRef::new("audit_log", format!("{start}-{end}")),
                &[("intact", intact.to_string()), ("first_broken_sequence", first_broken.to_string())],
            )
            .await;
        Ok(pb::VerifyLogResponse {
            intact,
            verified_event_count: verified_events,
            verified_checkpoint_count: verified_checkpoints,
            first_broken_sequence: first_broken,
            break_kind: kind as i32,
            detail,
            start_sequence: u64::try_from(start).unwrap_or(0),
            end_sequence: u64::try_from(end).unwrap_or(0),
            latest_checkpoint_sequence: latest_checkpoint.and_then(|c| u64::try_from(c).ok()).unwrap_or(0),
            events_after_latest_checkpoint: u64::try_from(last - latest_checkpoint.unwrap_or(0).min(last)).unwrap_or(0),
        })
    }

    async fn get_latest_checkpoint(
        &self,
        request: Request<pb::GetLatestCheckpointRequest>,
    ) -> Result<pb::GetLatestCheckpointResponse, Error> {
        let caller = caller(&request)?;
        self.require(&caller, Permission::AuditRead).await?;
        let checkpoint = store::latest_checkpoint(self.core.db()).await?;
        Ok(pb::GetLatestCheckpointResponse {
            checkpoint: checkpoint.map(|c| pb::Checkpoint {
                sequence: u64::try_from(c.sequence).unwrap_or(0),
                hash: c.hash,
                create_time: Some(ts(c.created_at)),
                key_id: c.key_id,
                signature: c.signature,
                public_key: c.public_key,
            }),
        })
    }
}

/// The actor of the audit service's own records made on its own initiative.
pub fn system_actor() -> Actor {
    Actor::system("audit")
}
