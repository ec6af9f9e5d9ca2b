//! `ConversationService`: private messages in both directions, assignment with a cap,
//! replies screened like comment replies, important records, referrals to departments
//! with due dates, and the response-time report (R4.2.1, R4.2.2, R4.1.1).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{ConversationId, DepartmentId, PlatformAccountId, ReferralId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::{MAX_NAME_CHARS, MAX_REASON_CHARS, Validator};
use govmedia_kit::access::Authorized;
use govmedia_kit::auth::Principal;
use govmedia_kit::db::Tx;
use govmedia_kit::mutation::Call;
use govmedia_kit::screening::{decode_findings, encode_findings};
use govmedia_kit::wire::{caller, check_etag, etag, next_page_token, optional_time, time_range, ts};
use govmedia_kit::wire::{keyed_id, one_id, unpack};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_proto::interaction::v1::conversation_service_server::{ConversationService, ConversationServiceServer};
use tonic::Request;

use super::{
    authorize_on_account, authorize_to_speak, check_assignee, duration, method, record, require_on_account,
    screen_reply,
};
use crate::domain::conversation::{
    self as rules, Conversation, ConversationState, Direction, Message, Referral, ReferralState,
};
use crate::domain::response::{Item, summarise};
use crate::store::conversations::{self as store, ConversationFilter, ReferralFilter};
use crate::store::{Responded, settings as settings_store};
use crate::{AccountFacts, Core, ITEM_COMMENT, ITEM_PRIVATE_MESSAGE};

/// Most messages in one ingest batch.
const MAX_BATCH: usize = 1000;
/// Longest message, in characters.
const MAX_TEXT_CHARS: usize = 10_000;
/// Longest reply, in characters.
const MAX_REPLY_CHARS: usize = 2_000;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> ConversationServiceServer<Conversations> {
    ConversationServiceServer::new(Conversations { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Conversations {
    core: Arc<Core>,
}

fn state_to(s: ConversationState) -> pb::ConversationState {
    match s {
        ConversationState::AwaitingResponse => pb::ConversationState::AwaitingResponse,
        ConversationState::Answered => pb::ConversationState::Answered,
        ConversationState::Closed => pb::ConversationState::Closed,
    }
}

fn referral_state_to(s: ReferralState) -> pb::ReferralState {
    match s {
        ReferralState::Sent => pb::ReferralState::Sent,
        ReferralState::Acknowledged => pb::ReferralState::Acknowledged,
        ReferralState::OutcomeRecorded => pb::ReferralState::OutcomeRecorded,
        ReferralState::Closed => pb::ReferralState::Closed,
    }
}

fn message_to(m: &Message) -> Result<pb::PrivateMessage, Error> {
    Ok(pb::PrivateMessage {
        id: m.id.to_string(),
        conversation_id: m.conversation.to_string(),
        direction: match m.direction {
            Direction::Inbound => pb::MessageDirection::Inbound,
            Direction::Outbound => pb::MessageDirection::Outbound,
        } as i32,
        platform_message_id: m.platform_message_id.clone(),
        text: m.text.clone(),
        author_user_id: m.author.map(|a| a.to_string()).unwrap_or_default(),
        screening_findings: decode_findings(&m.screening_findings)?,
        send_time: Some(ts(m.sent_at)),
    })
}

fn referral_to(r: &Referral, now: DateTime<Utc>) -> pb::Referral {
    let text = |u: Option<UserId>| u.map(|x| x.to_string()).unwrap_or_default();
    pb::Referral {
        id: r.id.to_string(),
        conversation_id: r.conversation.to_string(),
        platform_account_id: r.account.to_string(),
        department_id: r.department.to_string(),
        summary: r.summary.clone(),
        state: referral_state_to(r.state) as i32,
        due_time: Some(ts(r.due_at)),
        referred_by: r.referred_by.to_string(),
        create_time: Some(ts(r.created_at)),
        acknowledged_by: text(r.acknowledged_by),
        acknowledge_time: r.acknowledged_at.map(ts),
        outcome: r.outcome.clone(),
        outcome_recorded_by: text(r.outcome_recorded_by),
        outcome_time: r.outcome_at.map(ts),
        close_time: r.closed_at.map(ts),
        overdue: r.overdue(now),
        etag: etag(r.version),
    }
}

fn user_of(p: &Principal) -> UserId {
    UserId::from_uuid(p.id.as_uuid())
}

impl Conversations {
    async fn require(
        &self,
        caller: &Principal,
        permission: Permission,
        account: PlatformAccountId,
    ) -> Result<AccountFacts, Error> {
        require_on_account(&self.core, caller, permission, account).await
    }

    async fn view(&self, tx: &mut Tx, c: &Conversation) -> Result<pb::Conversation, Error> {
        let referrals = store::referral_ids(tx, c.id).await?;
        let now = self.core.now();
        let until = c.first_response_at.unwrap_or(now).max(c.first_inbound_at);
        Ok(pb::Conversation {
            id: c.id.to_string(),
            platform_account_id: c.account.to_string(),
            correspondent_platform_id: c.correspondent_platform_id.clone(),
            correspondent_name: c.correspondent_name.clone(),
            state: state_to(c.state) as i32,
            assignee_user_id: c.assignee.map(|a| a.to_string()).unwrap_or_default(),
            important: c.important,
            important_note: c.important_note.clone(),
            marked_important_by: c.marked_important_by.map(|a| a.to_string()).unwrap_or_default(),
            message_count: u32::try_from(c.message_count).unwrap_or(0),
            last_message_time: Some(ts(c.last_message_at)),
            response_due_time: c.response_due_at.map(ts),
            time_to_first_response: Some(duration(self.core.policy().calendar.between(c.first_inbound_at, until))),
            overdue: c.overdue(now),
            referral_ids: referrals.iter().map(ToString::to_string).collect(),
            create_time: Some(ts(c.created_at)),
            etag: etag(c.version),
        })
    }

    async fn read(&self, id: ConversationId) -> Result<Conversation, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("conversation", id))
    }

    async fn read_referral(&self, id: ReferralId) -> Result<Referral, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get_referral(&mut tx, id).await?.ok_or_else(|| Error::not_found("referral", id))
    }

    /// A referral may be read by those reading the account's messages and by the
    /// receiving department.
    async fn require_referral_read(&self, caller: &Principal, r: &Referral) -> Result<(), Error> {
        let facts = self.core.account(r.account).await?;
        let on_account = self.core.permissions().check(caller, Permission::ReferralRead, &facts.resource()).await?;
        if on_account.allowed {
            return Ok(());
        }
        self.core.permissions().require(caller, Permission::ReferralRead, &Resource::department(r.department)).await
    }

    /// The authorisation for a step of a referral: on its account, or, for handling it,
    /// on the receiving department; asked before anything is locked.
    async fn referral_grant(
        &self,
        caller: &Principal,
        permission: Permission,
        id: ReferralId,
    ) -> Result<(AccountFacts, Authorized), Error> {
        let r = self.read_referral(id).await?;
        let facts = self.core.account(r.account).await?;
        let resource = if permission == Permission::ReferralHandle {
            // The receiving department works on it.
            Resource::department(r.department)
        } else {
            facts.resource()
        };
        let grant = self.core.permissions().authorize(caller, permission, &resource).await?;
        Ok((facts, grant))
    }

    /// One step of a referral (acknowledge, outcome, close): the permission (before
    /// anything is locked), then lock, etag, rule, save, audit.
    async fn referral_step<Req: prost::Message>(
        &self,
        caller: &Principal,
        call: Call<'_, Req>,
        (id, given_etag): (ReferralId, &str),
        step: ReferralStep,
    ) -> Result<pb::Referral, Error> {
        let (facts, grant) = self.referral_grant(caller, step.permission(), id).await?;
        self.core
            .work()
            .run(call, async |m| {
                let mut r = store::lock_referral(m.tx(), id, &grant).await?;
                check_etag("etag", given_etag, r.version, false)?;
                let now = m.now();
                let action = step.apply(&mut r, user_of(caller), now)?;
                store::save_referral(m.tx(), &r, r.version - 1).await?;
                m.audit(
                    record(action, caller, ("referral", id), &facts, now, "R4.2.2", None)
                        .attr("department_id", r.department)
                        .attr("state", r.state.as_str()),
                );
                Ok(referral_to(&r, now))
            })
            .await
    }
}

/// A step in a referral's life after it is made (R4.2.2).
enum ReferralStep {
    /// The receiving department takes it.
    Acknowledge,
    /// The receiving department answers it (acknowledging it, if nobody had).
    RecordOutcome(String),
    /// The referring side closes it.
    Close,
}

impl ReferralStep {
    /// The permission it needs: handling is the receiving department's, closing the
    /// account's.
    fn permission(&self) -> Permission {
        match self {
            Self::Acknowledge | Self::RecordOutcome(_) => Permission::ReferralHandle,
            Self::Close => Permission::ReferralManage,
        }
    }

    /// Takes the step on `r`, done by `who` at `now`: a new version and its audit action.
    fn apply(self, r: &mut Referral, who: UserId, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        let id = r.id.to_string();
        let action = match self {
            Self::Acknowledge => {
                r.state = rules::acknowledge(&id, r.state)?;
                (r.acknowledged_by, r.acknowledged_at) = (Some(who), Some(now));
                AuditAction::ReferralAcknowledged
            }
            Self::RecordOutcome(outcome) => {
                r.state = rules::record_outcome(&id, r.state)?;
                if r.acknowledged_at.is_none() {
                    // Answering is acknowledging.
                    (r.acknowledged_by, r.acknowledged_at) = (Some(who), Some(now));
                }
                (r.outcome, r.outcome_recorded_by, r.outcome_at) = (outcome, Some(who), Some(now));
                AuditAction::ReferralOutcomeRecorded
            }
            Self::Close => {
                r.state = rules::close(&id, r.state)?;
                r.closed_at = Some(now);
                AuditAction::ReferralClosed
            }
        };
        r.version += 1;
        Ok(action)
    }
}

#[govmedia_kit::handlers]
impl ConversationService for Conversations {
    async fn ingest_private_messages(
        &self,
        request: Request<pb::IngestPrivateMessagesRequest>,
    ) -> Result<pb::IngestPrivateMessagesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        if req.messages.is_empty() {
            v.violation("messages", "must hold at least one message");
        }
        if req.messages.len() > MAX_BATCH {
            v.violation("messages", format!("must hold at most {MAX_BATCH} messages"));
        }
        let mut batch = Vec::new();
        for (i, x) in req.messages.iter().enumerate() {
            let f = |n: &str| format!("messages[{i}].{n}");
            batch.push((
                v.required_text(&f("platform_message_id"), &x.platform_message_id, MAX_NAME_CHARS).unwrap_or_default(),
                v.required_text(&f("correspondent_platform_id"), &x.correspondent_platform_id, MAX_NAME_CHARS)
                    .unwrap_or_default(),
                v.optional_text(&f("correspondent_name"), &x.correspondent_name, MAX_NAME_CHARS).unwrap_or_default(),
                v.optional_text(&f("text"), &x.text, MAX_TEXT_CHARS).unwrap_or_default(),
                optional_time(&mut v, &f("send_time"), x.send_time.as_ref()),
            ));
        }
        let account = v.finish_with(|| account)?;
        let facts = self.require(&caller, Permission::MessageIngest, account).await?;
        let screened = self
            .core
            .screener()
            .screen(
                cpb::ScreeningContext::PrivateMessage,
                batch.iter().enumerate().map(|(i, b)| (i.to_string(), b.3.clone())).collect(),
            )
            .await?;
        let mut findings: HashMap<String, Vec<cpb::ScreeningFinding>> = HashMap::new();
        for f in screened.findings {
            findings.entry(f.text_key.clone()).or_default().push(f);
        }

        let answer = self.core.work().run_unkeyed(async |m| {
            let now = m.now();
            let settings = settings_store::get(m.tx(), account).await?;
            let target = self.core.policy().target(ITEM_PRIVATE_MESSAGE, &settings.response_targets);
            // Conversations touched, by correspondent: (state, version as stored).
            let mut open: BTreeMap<String, (Conversation, i64)> = BTreeMap::new();
            let mut order: Vec<ConversationId> = Vec::new();
            let mut answer = pb::IngestPrivateMessagesResponse::default();
            for (i, (platform_id, correspondent, name, text, sent)) in batch.into_iter().enumerate() {
                if store::message_known(m.tx(), account, &platform_id).await? {
                    answer.duplicate_count += 1;
                    continue;
                }
                let sent_at = sent.map_or(now, |s| s.min(now));
                if !open.contains_key(&correspondent) {
                    let entry = match store::open_with(m.tx(), account, &correspondent).await? {
                        Some(c) => {
                            let stored = c.version;
                            (c, stored)
                        }
                        None => {
                            let due = self.core.policy().due(sent_at, target)?;
                            let c = Conversation::open(
                                account,
                                correspondent.clone(),
                                name.clone(),
                                sent_at,
                                (target, due),
                                now,
                            );
                            store::insert(m.tx(), &c).await?;
                            (c, 1)
                        }
                    };
                    open.insert(correspondent.clone(), entry);
                }
                let (c, _) = open.get_mut(&correspondent).ok_or_else(|| Error::internal("conversation just opened"))?;
                let found = findings.remove(&i.to_string()).unwrap_or_default();
                let message = c.inbound(platform_id.clone(), text, encode_findings(&found), sent_at);
                if !store::insert_message(m.tx(), &message).await? {
                    answer.duplicate_count += 1;
                    continue;
                }
                answer.ingested_count += 1;
                c.received(&message, name, |from| self.core.policy().due(from, target))?;
                if !order.contains(&c.id) {
                    order.push(c.id);
                }
                m.audit(
                    record(AuditAction::MessageIngested, &caller, ("conversation", c.id), &facts, now, "R4.2.1", None)
                        .attr("platform_message_id", &platform_id)
                        .attr("findings", found.len()),
                );
            }
            for (c, stored) in open.values_mut() {
                let previous = *stored;
                c.version = previous + 1;
                store::save(m.tx(), c, previous).await?;
            }
            answer.conversation_ids = order.iter().map(ToString::to_string).collect();
            Ok(answer)
        });
        answer.await
    }

    async fn get_conversation(
        &self,
        request: Request<pb::GetConversationRequest>,
    ) -> Result<pb::GetConversationResponse, Error> {
        let caller = caller(&request)?;
        let id: ConversationId = one_id("conversation_id", &request.get_ref().conversation_id)?;
        let c = self.read(id).await?;
        self.require(&caller, Permission::MessageRead, c.account).await?;
        let mut tx = self.core.db().begin_read().await?;
        Ok(pb::GetConversationResponse { conversation: Some(self.view(&mut tx, &c).await?) })
    }

    async fn list_conversations(
        &self,
        request: Request<pb::ListConversationsRequest>,
    ) -> Result<pb::ListConversationsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let assignee: Option<UserId> = v.optional_id("assignee_user_id", &req.assignee_user_id);
        let state = match pb::ConversationState::try_from(req.state) {
            Ok(pb::ConversationState::Unspecified) => None,
            Ok(pb::ConversationState::AwaitingResponse) => Some(ConversationState::AwaitingResponse),
            Ok(pb::ConversationState::Answered) => Some(ConversationState::Answered),
            Ok(pb::ConversationState::Closed) => Some(ConversationState::Closed),
            Err(_) => {
                v.violation("state", "is not a conversation state");
                None
            }
        };
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(DateTime<Utc>, String)> = page::decode_page_token(&req.page_token)?;
        match account {
            Some(a) => {
                self.require(&caller, Permission::MessageRead, a).await?;
            }
            None => self.core.permissions().require(&caller, Permission::MessageRead, &Resource::GLOBAL).await?,
        }
        let filter = ConversationFilter {
            account,
            state,
            assignee,
            important_only: req.important_only,
            overdue_at: req.overdue_only.then(|| self.core.now()),
        };
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list(&mut tx, &filter, after, limit).await?;
        let far = crate::store::far_future();
        let next_page_token = next_page_token(&list, limit, |c| (c.response_due_at.unwrap_or(far), c.id.to_string()));
        let mut conversations = Vec::with_capacity(list.len());
        for c in &list {
            conversations.push(self.view(&mut tx, c).await?);
        }
        Ok(pb::ListConversationsResponse { conversations, next_page_token })
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<pb::ListMessagesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let id: ConversationId = one_id("conversation_id", &req.conversation_id)?;
        let limit = page::page_size(req.page_size, 100, 1000)?;
        let after: Option<i64> = page::decode_page_token(&req.page_token)?;
        let c = self.read(id).await?;
        self.require(&caller, Permission::MessageRead, c.account).await?;
        let mut tx = self.core.db().begin_read().await?;
        let messages = store::messages(&mut tx, id, after.unwrap_or(0), limit).await?;
        let next_page_token = next_page_token(&messages, limit, |m| m.seq);
        Ok(pb::ListMessagesResponse {
            messages: messages.iter().map(message_to).collect::<Result<_, _>>()?,
            next_page_token,
        })
    }

    async fn assign_conversation(
        &self,
        request: Request<pb::AssignConversationRequest>,
    ) -> Result<pb::AssignConversationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ConversationId> = v.id("conversation_id", &req.conversation_id);
        let assignee: Option<UserId> = v.id("assignee_user_id", &req.assignee_user_id);
        let (request_id, id, assignee) = v.finish_with(|| Some((request_id?, id?, assignee?)))?;
        let current = self.read(id).await?;
        let (facts, grant) =
            authorize_on_account(&self.core, &caller, Permission::MessageHandle, current.account).await?;
        check_assignee(&self.core, assignee, Permission::MessageHandle, &facts).await?;
        let call = Call::new(&caller, method!("ConversationService/AssignConversation"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut c = store::lock(m.tx(), id, &grant).await?;
            check_etag("etag", &req.etag, c.version, false)?;
            rules::check_open(&id.to_string(), c.state, "assigned")?;
            if c.assignee != Some(assignee) {
                let held = store::open_count(m.tx(), assignee).await?;
                rules::check_assignment_cap(&assignee.to_string(), held, self.core.policy().max_open_conversations)?;
            }
            let previous = c.version;
            c.assignee = Some(assignee);
            c.version += 1;
            store::save(m.tx(), &c, previous).await?;
            m.audit(
                record(
                    AuditAction::ConversationAssigned,
                    &caller,
                    ("conversation", id),
                    &facts,
                    m.now(),
                    "R4.2.1",
                    Some(request_id.to_string()),
                )
                .attr("assignee_user_id", assignee),
            );
            Ok(pb::AssignConversationResponse { conversation: Some(self.view(m.tx(), &c).await?) })
        });
        answer.await
    }

    async fn reply_to_conversation(
        &self,
        request: Request<pb::ReplyToConversationRequest>,
    ) -> Result<pb::ReplyToConversationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ConversationId> = v.id("conversation_id", &req.conversation_id);
        let text = v.required_text("text", &req.text, MAX_REPLY_CHARS);
        let (request_id, id, text) = v.finish_with(|| Some((request_id?, id?, text?)))?;
        let current = self.read(id).await?;
        let (facts, grant) =
            authorize_to_speak(&self.core, &caller, Permission::MessageHandle, current.account).await?;
        rules::check_open(&id.to_string(), current.state, "answered")?;
        let findings = screen_reply(
            &self.core,
            &caller,
            &facts,
            ("conversation", id.to_string()),
            cpb::ScreeningContext::PrivateMessage,
            &text,
            request_id.to_string(),
        )
        .await?;
        let call = Call::new(&caller, method!("ConversationService/ReplyToConversation"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut c = store::lock(m.tx(), id, &grant).await?;
            rules::check_open(&id.to_string(), c.state, "answered")?;
            let now = m.now();
            let previous = c.version;
            let message = c.answer(user_of(&caller), text, encode_findings(&findings), now);
            store::insert_message(m.tx(), &message).await?;
            store::save(m.tx(), &c, previous).await?;
            m.audit(
                record(
                    AuditAction::ConversationReplied,
                    &caller,
                    ("conversation", id),
                    &facts,
                    now,
                    "R4.2.1",
                    Some(request_id.to_string()),
                )
                .attr("message_id", message.id)
                .attr("review_findings", findings.len()),
            );
            let answer = pb::ReplyToConversationResponse {
                message: Some(message_to(&message)?),
                conversation: Some(self.view(m.tx(), &c).await?),
            };
            Ok(answer)
        });
        answer.await
    }

    async fn mark_conversation_important(
        &self,
        request: Request<pb::MarkConversationImportantRequest>,
    ) -> Result<pb::MarkConversationImportantResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ConversationId> = v.id("conversation_id", &req.conversation_id);
        let note = v.reason("note", &req.note);
        let (request_id, id, note) = v.finish_with(|| Some((request_id?, id?, note?)))?;
        let current = self.read(id).await?;
        let (facts, grant) =
            authorize_on_account(&self.core, &caller, Permission::MessageHandle, current.account).await?;
        let call = Call::new(&caller, method!("ConversationService/MarkConversationImportant"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut c = store::lock(m.tx(), id, &grant).await?;
            let previous = c.version;
            c.important = true;
            c.important_note = note.clone();
            c.marked_important_by = Some(user_of(&caller));
            c.version += 1;
            store::save(m.tx(), &c, previous).await?;
            m.audit(
                record(
                    AuditAction::ConversationMarkedImportant,
                    &caller,
                    ("conversation", id),
                    &facts,
                    m.now(),
                    "R4.2.2",
                    Some(request_id.to_string()),
                )
                .reason(note),
            );
            Ok(pb::MarkConversationImportantResponse { conversation: Some(self.view(m.tx(), &c).await?) })
        });
        answer.await
    }

    async fn close_conversation(
        &self,
        request: Request<pb::CloseConversationRequest>,
    ) -> Result<pb::CloseConversationResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ConversationId> = v.id("conversation_id", &req.conversation_id);
        let note = v.optional_text("note", &req.note, MAX_REASON_CHARS);
        let (request_id, id, note) = v.finish_with(|| Some((request_id?, id?, note?)))?;
        let current = self.read(id).await?;
        let (facts, grant) =
            authorize_on_account(&self.core, &caller, Permission::MessageHandle, current.account).await?;
        let call = Call::new(&caller, method!("ConversationService/CloseConversation"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut c = store::lock(m.tx(), id, &grant).await?;
            check_etag("etag", &req.etag, c.version, false)?;
            rules::check_open(&id.to_string(), c.state, "closed again")?;
            let previous = c.version;
            c.state = ConversationState::Closed;
            c.awaiting_since = None;
            c.response_due_at = None;
            c.version += 1;
            store::save(m.tx(), &c, previous).await?;
            m.audit(
                record(
                    AuditAction::ConversationClosed,
                    &caller,
                    ("conversation", id),
                    &facts,
                    m.now(),
                    "R4.2.1",
                    Some(request_id.to_string()),
                )
                .reason(note),
            );
            Ok(pb::CloseConversationResponse { conversation: Some(self.view(m.tx(), &c).await?) })
        });
        answer.await
    }

    async fn create_referral(
        &self,
        request: Request<pb::CreateReferralRequest>,
    ) -> Result<pb::CreateReferralResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ConversationId> = v.id("conversation_id", &req.conversation_id);
        let department: Option<DepartmentId> = v.id("department_id", &req.department_id);
        let summary = v.reason("summary", &req.summary);
        let due = optional_time(&mut v, "due_time", req.due_time.as_ref());
        if due.is_some_and(|d| d <= self.core.now()) {
            v.violation("due_time", "must be in the future");
        }
        let (request_id, id, department, summary) =
            v.finish_with(|| Some((request_id?, id?, department?, summary?)))?;
        let current = self.read(id).await?;
        let (facts, grant) =
            authorize_on_account(&self.core, &caller, Permission::ReferralManage, current.account).await?;
        self.core.check_department(department).await?;
        let call = Call::new(&caller, method!("ConversationService/CreateReferral"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let c = store::lock(m.tx(), id, &grant).await?;
            rules::check_open(&id.to_string(), c.state, "referred")?;
            let now = m.now();
            let due_at = match due {
                Some(d) => d,
                None => self
                    .core
                    .policy()
                    .calendar
                    .add_working_days(now, self.core.policy().referral_working_days)
                    .map_err(|e| Error::internal(format!("business calendar: {e}")))?,
            };
            let r = Referral {
                id: ReferralId::new(),
                conversation: id,
                account: c.account,
                department,
                summary,
                state: ReferralState::Sent,
                due_at,
                referred_by: user_of(&caller),
                created_at: now,
                acknowledged_by: None,
                acknowledged_at: None,
                outcome: String::new(),
                outcome_recorded_by: None,
                outcome_at: None,
                closed_at: None,
                version: 1,
            };
            store::insert_referral(m.tx(), &r).await?;
            m.audit(
                record(
                    AuditAction::ReferralCreated,
                    &caller,
                    ("referral", r.id),
                    &facts,
                    now,
                    "R4.2.2",
                    Some(request_id.to_string()),
                )
                .attr("conversation_id", id)
                .attr("department_id", department)
                .attr("due_time", due_at.to_rfc3339()),
            );
            Ok(pb::CreateReferralResponse { referral: Some(referral_to(&r, now)) })
        });
        answer.await
    }

    async fn get_referral(&self, request: Request<pb::GetReferralRequest>) -> Result<pb::GetReferralResponse, Error> {
        let caller = caller(&request)?;
        let id: ReferralId = one_id("referral_id", &request.get_ref().referral_id)?;
        let r = self.read_referral(id).await?;
        self.require_referral_read(&caller, &r).await?;
        Ok(pb::GetReferralResponse { referral: Some(referral_to(&r, self.core.now())) })
    }

    async fn list_referrals(
        &self,
        request: Request<pb::ListReferralsRequest>,
    ) -> Result<pb::ListReferralsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let department: Option<DepartmentId> = v.optional_id("department_id", &req.department_id);
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let state = match pb::ReferralState::try_from(req.state) {
            Ok(pb::ReferralState::Unspecified) => None,
            Ok(pb::ReferralState::Sent) => Some(ReferralState::Sent),
            Ok(pb::ReferralState::Acknowledged) => Some(ReferralState::Acknowledged),
            Ok(pb::ReferralState::OutcomeRecorded) => Some(ReferralState::OutcomeRecorded),
            Ok(pb::ReferralState::Closed) => Some(ReferralState::Closed),
            Err(_) => {
                v.violation("state", "is not a referral state");
                None
            }
        };
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(DateTime<Utc>, String)> = page::decode_page_token(&req.page_token)?;
        // The receiving department reads its own referrals; an account's handlers
        // read the account's.
        let resource = match (department, account) {
            (_, Some(a)) => self.core.account(a).await?.resource(),
            (Some(d), None) => Resource::department(d),
            (None, None) => Resource::GLOBAL,
        };
        self.core.permissions().require(&caller, Permission::ReferralRead, &resource).await?;
        let filter =
            ReferralFilter { department, state, overdue_at: req.overdue_only.then(|| self.core.now()), account };
        let mut tx = self.core.db().begin_read().await?;
        let list = store::list_referrals(&mut tx, &filter, after, limit).await?;
        let now = self.core.now();
        Ok(pb::ListReferralsResponse {
            next_page_token: next_page_token(&list, limit, |r| (r.due_at, r.id.to_string())),
            referrals: list.iter().map(|r| referral_to(r, now)).collect(),
        })
    }

    async fn acknowledge_referral(
        &self,
        request: Request<pb::AcknowledgeReferralRequest>,
    ) -> Result<pb::AcknowledgeReferralResponse, Error> {
        let (caller, req) = unpack(request)?;
        let (request_id, id) = keyed_id(&req.request_id, "referral_id", &req.referral_id)?;
        let call = Call::new(&caller, method!("ConversationService/AcknowledgeReferral"), request_id, &req);
        let referral = self.referral_step(&caller, call, (id, &req.etag), ReferralStep::Acknowledge).await?;
        Ok(pb::AcknowledgeReferralResponse { referral: Some(referral) })
    }

    async fn record_referral_outcome(
        &self,
        request: Request<pb::RecordReferralOutcomeRequest>,
    ) -> Result<pb::RecordReferralOutcomeResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id = v.id("referral_id", &req.referral_id);
        let outcome = v.reason("outcome", &req.outcome);
        let (request_id, id, outcome) = v.finish_with(|| Some((request_id?, id?, outcome?)))?;
        let call = Call::new(&caller, method!("ConversationService/RecordReferralOutcome"), request_id, &req);
        let step = ReferralStep::RecordOutcome(outcome);
        let referral = self.referral_step(&caller, call, (id, &req.etag), step).await?;
        Ok(pb::RecordReferralOutcomeResponse { referral: Some(referral) })
    }

    async fn close_referral(
        &self,
        request: Request<pb::CloseReferralRequest>,
    ) -> Result<pb::CloseReferralResponse, Error> {
        let (caller, req) = unpack(request)?;
        let (request_id, id) = keyed_id(&req.request_id, "referral_id", &req.referral_id)?;
        let call = Call::new(&caller, method!("ConversationService/CloseReferral"), request_id, &req);
        let referral = self.referral_step(&caller, call, (id, &req.etag), ReferralStep::Close).await?;
        Ok(pb::CloseReferralResponse { referral: Some(referral) })
    }

    async fn get_response_time_report(
        &self,
        request: Request<pb::GetResponseTimeReportRequest>,
    ) -> Result<pb::GetResponseTimeReportResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let (from, to) = time_range(&mut v, "period", req.period.as_ref());
        if from.is_none() {
            v.violation("period.start_time", "is required");
        }
        if to.is_none() {
            v.violation("period.end_time", "is required");
        }
        let (comments, messages) = match req.item_type.as_str() {
            "" => (true, true),
            ITEM_COMMENT => (true, false),
            ITEM_PRIVATE_MESSAGE => (false, true),
            _ => {
                v.violation("item_type", format!("must be empty, {ITEM_COMMENT:?} or {ITEM_PRIVATE_MESSAGE:?}"));
                (false, false)
            }
        };
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let (from, to) = v.finish_with(|| Some((from?, to?)))?;
        let resource = match account {
            Some(a) => self.core.account(a).await?.resource(),
            None => Resource::GLOBAL,
        };
        self.core.permissions().require(&caller, Permission::InteractionReportRead, &resource).await?;
        // (account, responder, item)
        let mut rows: Vec<(String, String, Item)> = Vec::new();
        let mut tx = self.core.db().begin_read().await?;
        let kinds = [(comments, Responded::Comments), (messages, Responded::Conversations)];
        for (_, of) in kinds.into_iter().filter(|(wanted, _)| *wanted) {
            for r in crate::store::responses(&mut tx, of, (from, to), account).await? {
                let item = Item { arrived: r.arrived_at, responded: r.first_response_at, due: r.due_at };
                rows.push((r.platform_account_id, r.first_responder_user_id, item));
            }
        }
        drop(tx);
        let now = self.core.now();
        let calendar = &self.core.policy().calendar;
        let figures = |items: &[Item]| {
            let s = summarise(items, calendar, now);
            pb::ResponseTimeFigures {
                item_count: u32::try_from(s.item_count).unwrap_or(u32::MAX),
                responded_count: u32::try_from(s.responded_count).unwrap_or(u32::MAX),
                average_time_to_first_response: Some(duration(s.average)),
                median_time_to_first_response: Some(duration(s.median)),
                within_deadline_share: s.within_deadline_share,
            }
        };
        let mut by_account: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        let mut by_user: BTreeMap<String, Vec<Item>> = BTreeMap::new();
        for (a, u, item) in &rows {
            by_account.entry(a.clone()).or_default().push(*item);
            if !u.is_empty() {
                by_user.entry(u.clone()).or_default().push(*item);
            }
        }
        let all: Vec<Item> = rows.iter().map(|r| r.2).collect();
        Ok(pb::GetResponseTimeReportResponse {
            by_user: by_user
                .iter()
                .map(|(u, items)| pb::ResponseTimeRow {
                    user_id: u.clone(),
                    platform_account_id: String::new(),
                    figures: Some(figures(items)),
                })
                .collect(),
            by_account: by_account
                .iter()
                .map(|(a, items)| pb::ResponseTimeRow {
                    user_id: String::new(),
                    platform_account_id: a.clone(),
                    figures: Some(figures(items)),
                })
                .collect(),
            overall: Some(figures(&all)),
        })
    }
}
