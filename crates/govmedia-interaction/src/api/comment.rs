//! `CommentService`: ingest, the moderation queue, hide/delete/restore/dismiss, replies
//! with screening and approval (R4.1.1–R4.1.3).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{CommentId, PlatformAccountId, PublicationId, ReplyId, RequestId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::screening::{Category, Severity};
use govmedia_domain::validate::{MAX_NAME_CHARS, Validator};
use govmedia_kit::auth::Principal;
use govmedia_kit::db::Tx;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{one_id, unpack};

use govmedia_kit::screening::{decode_findings, encode_findings};
use govmedia_kit::wire::{caller, check_etag, etag, next_page_token, optional_time, ts};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_proto::interaction::v1::comment_service_server::{CommentService, CommentServiceServer};
use tonic::Request;

use super::{
    authorize_on_account, authorize_to_speak, check_assignee, duration, evidence, evidence_to, method, record,
    require_on_account, screen_reply,
};
use crate::domain::comment::{
    self as rules, ActionRecord, Arrived, Channel, Comment, CommentStatus, IncomingComment, ModeratorAction, Reply,
    ReplyState,
};
use crate::domain::moderation::{self, Arrival, Finding};
use crate::store::comments::{self as store, CommentFilter};
use crate::store::{rules as rule_store, settings as settings_store};
use crate::{AccountFacts, Core, ITEM_COMMENT};

/// Most comments in one ingest batch.
const MAX_BATCH: usize = 1000;
/// Longest comment or reply text, in characters.
const MAX_TEXT_CHARS: usize = 10_000;
/// Longest reply a moderator writes, in characters.
const MAX_REPLY_CHARS: usize = 2_000;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> CommentServiceServer<Comments> {
    CommentServiceServer::new(Comments { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Comments {
    core: Arc<Core>,
}

fn status_to(s: CommentStatus) -> pb::CommentStatus {
    match s {
        CommentStatus::Open => pb::CommentStatus::Open,
        CommentStatus::NeedsReview => pb::CommentStatus::NeedsReview,
        CommentStatus::Hidden => pb::CommentStatus::Hidden,
        CommentStatus::Deleted => pb::CommentStatus::Deleted,
        CommentStatus::Answered => pb::CommentStatus::Answered,
        CommentStatus::Dismissed => pb::CommentStatus::Dismissed,
    }
}

fn status_from(s: i32) -> Option<CommentStatus> {
    match pb::CommentStatus::try_from(s).ok()? {
        pb::CommentStatus::Open => Some(CommentStatus::Open),
        pb::CommentStatus::NeedsReview => Some(CommentStatus::NeedsReview),
        pb::CommentStatus::Hidden => Some(CommentStatus::Hidden),
        pb::CommentStatus::Deleted => Some(CommentStatus::Deleted),
        pb::CommentStatus::Answered => Some(CommentStatus::Answered),
        pb::CommentStatus::Dismissed => Some(CommentStatus::Dismissed),
        pb::CommentStatus::Unspecified => None,
    }
}

fn channel_to(c: Channel) -> pb::ActionChannel {
    match c {
        Channel::Recorded => pb::ActionChannel::Recorded,
        Channel::PlatformApi => pb::ActionChannel::PlatformApi,
        Channel::Manual => pb::ActionChannel::Manual,
    }
}

fn reply_state_to(s: ReplyState) -> pb::ReplyState {
    match s {
        ReplyState::PendingApproval => pb::ReplyState::PendingApproval,
        ReplyState::Approved => pb::ReplyState::Approved,
        ReplyState::Posted => pb::ReplyState::Posted,
        ReplyState::Rejected => pb::ReplyState::Rejected,
    }
}

fn reply_to_proto(r: &Reply) -> Result<pb::Reply, Error> {
    Ok(pb::Reply {
        id: r.id.to_string(),
        comment_id: r.comment.to_string(),
        text: r.text.clone(),
        author_user_id: r.author.to_string(),
        state: reply_state_to(r.state) as i32,
        screening_findings: decode_findings(&r.screening_findings)?,
        approver_user_id: r.approver.map(|a| a.to_string()).unwrap_or_default(),
        reject_reason: r.reject_reason.clone(),
        platform_reply_id: r.platform_reply_id.clone(),
        channel: channel_to(r.channel) as i32,
        create_time: Some(ts(r.created_at)),
        post_time: r.posted_at.map(ts),
    })
}

/// The wire finding in the domain's words; `None` for an unknown category or severity.
pub(crate) fn finding_from(f: &cpb::ScreeningFinding) -> Option<Finding> {
    let category = match cpb::ScreeningCategory::try_from(f.category).ok()? {
        cpb::ScreeningCategory::ClassifiedMarking => Category::ClassifiedMarking,
        cpb::ScreeningCategory::Political => Category::Political,
        cpb::ScreeningCategory::Illegal => Category::Illegal,
        cpb::ScreeningCategory::Profanity => Category::Profanity,
        cpb::ScreeningCategory::PersonalData => Category::PersonalData,
        cpb::ScreeningCategory::NonStandardWording => Category::NonStandardWording,
        cpb::ScreeningCategory::CriticalName => Category::CriticalName,
        cpb::ScreeningCategory::Unspecified => return None,
    };
    let severity = match cpb::ScreeningSeverity::try_from(f.severity).ok()? {
        cpb::ScreeningSeverity::Block => Severity::Block,
        cpb::ScreeningSeverity::Review => Severity::Review,
        cpb::ScreeningSeverity::Unspecified => return None,
    };
    Some(Finding { category, severity })
}

impl Comments {
    async fn require(
        &self,
        caller: &Principal,
        permission: Permission,
        account: PlatformAccountId,
    ) -> Result<AccountFacts, Error> {
        require_on_account(&self.core, caller, permission, account).await
    }

    /// Comments on the wire, with their actions and replies.
    async fn view(&self, tx: &mut Tx, comments: &[Comment]) -> Result<Vec<pb::Comment>, Error> {
        let ids: Vec<CommentId> = comments.iter().map(|c| c.id).collect();
        let mut actions: HashMap<CommentId, Vec<ActionRecord>> = HashMap::new();
        for a in store::actions(tx, &ids).await? {
            actions.entry(a.comment).or_default().push(a);
        }
        let mut replies: HashMap<CommentId, Vec<Reply>> = HashMap::new();
        for r in store::replies(tx, &ids).await? {
            replies.entry(r.comment).or_default().push(r);
        }
        let now = self.core.now();
        let calendar = &self.core.policy().calendar;
        comments
            .iter()
            .map(|c| {
                let responded = c.first_response_at.unwrap_or(now).max(c.arrived_at);
                Ok(pb::Comment {
                    id: c.id.to_string(),
                    platform_account_id: c.account.to_string(),
                    publication_id: c.publication.map(|p| p.to_string()).unwrap_or_default(),
                    platform_post_id: c.platform_post_id.clone(),
                    platform_comment_id: c.platform_comment_id.clone(),
                    parent_platform_comment_id: c.parent_platform_comment_id.clone(),
                    author_platform_id: c.author_platform_id.clone(),
                    author_name: c.author_name.clone(),
                    text: c.text.clone(),
                    post_time: c.posted_at.map(ts),
                    ingest_time: Some(ts(c.ingested_at)),
                    status: status_to(c.status) as i32,
                    screening_findings: decode_findings(&c.screening_findings)?,
                    screening_lexicon_version: u64::try_from(c.screening_lexicon).unwrap_or(0),
                    assignee_user_id: c.assignee.map(|a| a.to_string()).unwrap_or_default(),
                    tags: c.tags.clone(),
                    actions: actions
                        .get(&c.id)
                        .map(|list| {
                            list.iter()
                                .map(|a| pb::ModerationAction {
                                    action: a.action.clone(),
                                    reason: a.reason.clone(),
                                    actor_user_id: a.actor.map(|u| u.to_string()).unwrap_or_default(),
                                    moderation_rule_id: a.rule_id.clone(),
                                    channel: channel_to(a.channel) as i32,
                                    evidence: evidence_to(&a.evidence),
                                    create_time: Some(ts(a.created_at)),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    replies: replies
                        .get(&c.id)
                        .map(|l| l.iter().map(reply_to_proto).collect::<Result<_, _>>())
                        .transpose()?
                        .unwrap_or_default(),
                    response_due_time: Some(ts(c.response_due_at)),
                    first_response_time: c.first_response_at.map(ts),
                    time_to_first_response: Some(duration(calendar.between(c.arrived_at, responded))),
                    overdue: c.overdue(now),
                    etag: etag(c.version),
                })
            })
            .collect()
    }

    async fn one(&self, tx: &mut Tx, comment: &Comment) -> Result<pb::Comment, Error> {
        self.view(tx, std::slice::from_ref(comment)).await?.pop().ok_or_else(|| Error::internal("one comment"))
    }

    /// The comment, for reading outside a mutation.
    async fn read(&self, id: CommentId) -> Result<Comment, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("comment", id))
    }

    /// A moderator's action on one comment: the permission (asked before the comment is
    /// locked), the rule that decides the new status, the action's record and its audit.
    async fn moderate<Q: ModerationRequest>(&self, caller: &Principal, request: &Q) -> Result<pb::Comment, Error> {
        let act = Moderation::parse(request)?;
        let current = self.read(act.id).await?;
        let (facts, grant) =
            authorize_on_account(&self.core, caller, Permission::CommentModerate, current.account).await?;
        let call = Call::new(caller, Q::METHOD, act.request_id, request);
        self.core
            .work()
            .run(call, async |m| {
                let mut c = store::lock(m.tx(), act.id, &grant).await?;
                check_etag("etag", &act.etag, c.version, false)?;
                let (from, now) = (c.status, m.now());
                c.status = Q::ACTION.next(&act.id.to_string(), from, c.first_response_at.is_some())?;
                if Q::ACTION.responds() && c.first_response_at.is_none() {
                    // Closing without a reply is the response (the contract's first response).
                    c.first_response_at = Some(now);
                    c.first_responder = Some(UserId::from_uuid(caller.id.as_uuid()));
                }
                c.version += 1;
                store::save(m.tx(), &c, c.version - 1).await?;
                let record_of = ActionRecord {
                    comment: act.id,
                    action: Q::ACTION.as_str().to_owned(),
                    reason: act.reason.clone(),
                    actor: Some(UserId::from_uuid(caller.id.as_uuid())),
                    rule_id: String::new(),
                    channel: act.channel,
                    evidence: act.evidence.clone(),
                    created_at: now,
                };
                store::add_action(m.tx(), &record_of).await?;
                let audit = Q::ACTION.audit_action();
                m.audit(
                    record(audit, caller, ("comment", act.id), &facts, now, Q::ACTION.rule(), None)
                        .reason(act.reason.clone())
                        .attr("from", from.as_str())
                        .attr("to", c.status.as_str())
                        .attr("channel", act.channel.as_str()),
                );
                self.one(m.tx(), &c).await
            })
            .await
    }
}

/// A moderation request: hide, delete, restore or dismiss one comment.
trait ModerationRequest: prost::Message {
    /// What it does.
    const ACTION: ModeratorAction;
    /// The full gRPC path (the idempotency key's method).
    const METHOD: &'static str;
    /// The request id, the comment, the etag, the reason (or note) and the evidence of
    /// an action done by hand on the platform.
    fn parts(&self) -> (&str, &str, &str, &str, Option<&cpb::Evidence>);
}

macro_rules! moderation_request {
    ($request:ty, $action:ident, $method:literal, $reason:ident $(, $evidence:ident)?) => {
        impl ModerationRequest for $request {
            const ACTION: ModeratorAction = ModeratorAction::$action;
            const METHOD: &'static str = method!($method);

            fn parts(&self) -> (&str, &str, &str, &str, Option<&cpb::Evidence>) {
                let evidence = None $(.or(self.$evidence.as_ref()))?;
                (&self.request_id, &self.comment_id, &self.etag, &self.$reason, evidence)
            }
        }
    };
}

moderation_request!(pb::HideCommentRequest, Hide, "CommentService/HideComment", reason, manual_evidence);
moderation_request!(pb::DeleteCommentRequest, Delete, "CommentService/DeleteComment", reason, manual_evidence);
moderation_request!(pb::RestoreCommentRequest, Restore, "CommentService/RestoreComment", reason);
moderation_request!(pb::DismissCommentRequest, Dismiss, "CommentService/DismissComment", note);

/// A validated moderation request.
struct Moderation {
    request_id: RequestId,
    id: CommentId,
    etag: String,
    reason: String,
    channel: Channel,
    evidence: String,
}

impl Moderation {
    fn parse<Q: ModerationRequest>(request: &Q) -> Result<Self, Error> {
        let (request_id, comment, etag, reason, evidence_given) = request.parts();
        let mut v = Validator::new();
        let request_id = v.request_id(request_id);
        let id = v.id("comment_id", comment);
        let (channel, evidence) = evidence(&mut v, "manual_evidence", evidence_given);
        let reason = if Q::ACTION == ModeratorAction::Dismiss {
            v.optional_text("note", reason, govmedia_domain::validate::MAX_REASON_CHARS)
        } else {
            v.reason("reason", reason)
        };
        v.finish_with(|| {
            Some(Moderation {
                request_id: request_id?,
                id: id?,
                etag: etag.to_owned(),
                reason: reason?,
                channel,
                evidence,
            })
        })
    }
}

/// Why the rules did what they did to an arriving comment: the rule, else the worst
/// screening finding.
fn arrival_reason(rule_id: &str, found: &[cpb::ScreeningFinding]) -> String {
    if !rule_id.is_empty() {
        return format!("moderation rule {rule_id}");
    }
    let worst = found.iter().find(|f| govmedia_kit::screening::is_block(f)).or(found.first());
    worst.map_or_else(String::new, |f| {
        format!("screening: {} \"{}\"", govmedia_kit::screening::category_name(f.category), f.excerpt)
    })
}

fn incoming(v: &mut Validator, i: usize, c: &pb::IncomingComment) -> IncomingComment {
    let f = |name: &str| format!("comments[{i}].{name}");
    let short = |v: &mut Validator, name: &str, value: &str| {
        v.optional_text(&f(name), value, MAX_NAME_CHARS).unwrap_or_default()
    };
    IncomingComment {
        platform_comment_id: v
            .required_text(&f("platform_comment_id"), &c.platform_comment_id, MAX_NAME_CHARS)
            .unwrap_or_default(),
        platform_post_id: short(v, "platform_post_id", &c.platform_post_id),
        publication: v.optional_id(&f("publication_id"), &c.publication_id),
        parent: short(v, "parent_platform_comment_id", &c.parent_platform_comment_id),
        author_platform_id: short(v, "author_platform_id", &c.author_platform_id),
        author_name: short(v, "author_name", &c.author_name),
        text: v.optional_text(&f("text"), &c.text, MAX_TEXT_CHARS).unwrap_or_default(),
        posted_at: optional_time(v, &f("post_time"), c.post_time.as_ref()),
    }
}

#[govmedia_kit::handlers]
impl CommentService for Comments {
    async fn ingest_comments(
        &self,
        request: Request<pb::IngestCommentsRequest>,
    ) -> Result<pb::IngestCommentsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &req.platform_account_id);
        if req.comments.is_empty() {
            v.violation("comments", "must hold at least one comment");
        }
        if req.comments.len() > MAX_BATCH {
            v.violation("comments", format!("must hold at most {MAX_BATCH} comments"));
        }
        let batch: Vec<IncomingComment> =
            req.comments.iter().enumerate().map(|(i, c)| incoming(&mut v, i, c)).collect();
        let account = v.finish_with(|| account)?;
        let facts = self.require(&caller, Permission::CommentIngest, account).await?;

        // The first of equal platform ids in a batch counts; the rest are duplicates.
        let ids: Vec<String> = batch.iter().map(|c| c.platform_comment_id.clone()).collect();
        let mut tx = self.core.db().begin_read().await?;
        let mut known: HashMap<String, (CommentId, CommentStatus)> =
            store::known(&mut tx, account, &ids).await?.into_iter().map(|(p, id, s)| (p, (id, s))).collect();
        let rules = rule_store::applicable(&mut tx, account).await?;
        let settings = settings_store::get(&mut tx, account).await?;
        drop(tx);
        let mut fresh: Vec<usize> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, c) in batch.iter().enumerate() {
            if !known.contains_key(&c.platform_comment_id) && seen.insert(c.platform_comment_id.clone()) {
                fresh.push(i);
            }
        }
        let screened = self
            .core
            .screener()
            .screen(
                cpb::ScreeningContext::Comment,
                fresh.iter().map(|i| (i.to_string(), batch[*i].text.clone())).collect(),
            )
            .await?;
        let mut findings: HashMap<String, Vec<cpb::ScreeningFinding>> = HashMap::new();
        for f in screened.findings {
            findings.entry(f.text_key.clone()).or_default().push(f);
        }
        let target = self.core.policy().target(ITEM_COMMENT, &settings.response_targets);

        let created = self.core.work().run_unkeyed(async |m| {
            let now = m.now();
            let mut prepared = Vec::with_capacity(fresh.len());
            for i in fresh {
                let c = &batch[i];
                let found = findings.remove(&i.to_string()).unwrap_or_default();
                let domain_findings: Vec<Finding> = found.iter().filter_map(finding_from).collect();
                let account_text = account.to_string();
                let publication_text = c.publication.map(|p| p.to_string());
                let verdict = moderation::moderate(
                    &rules,
                    &Arrival {
                        text: &c.text,
                        author_platform_id: &c.author_platform_id,
                        platform_account_id: &account_text,
                        publication_id: publication_text.as_deref(),
                        findings: &domain_findings,
                    },
                );
                let rule_id = verdict.rule_id.clone().unwrap_or_default();
                let arrived = Arrived {
                    verdict,
                    screening_findings: encode_findings(&found),
                    screening_lexicon: i64::try_from(screened.lexicon_version).unwrap_or(0),
                    response_target_minutes: i32::try_from(target).unwrap_or(i32::MAX),
                    response_due_at: self.core.policy().due(c.arrived_at(now), target)?,
                };
                prepared.push((Comment::arrive(account, c, arrived, now), found, rule_id));
            }
            let inserted = store::insert_new(m.tx(), &prepared.iter().map(|p| p.0.clone()).collect::<Vec<_>>()).await?;
            let mut created: HashMap<String, (CommentId, CommentStatus)> = HashMap::new();
            let mut actions = Vec::new();
            for (comment, found, rule_id) in prepared {
                if !inserted.contains(&comment.platform_comment_id) {
                    // Ingested by a concurrent batch between our lookup and this insert.
                    continue;
                }
                let why = arrival_reason(&rule_id, &found);
                actions.extend(comment.arrival_actions(&rule_id, &why));
                let on = ("comment", comment.id);
                let mut audit = record(AuditAction::CommentIngested, &caller, on, &facts, now, "R4.1.3", None)
                    .attr("platform_comment_id", &comment.platform_comment_id)
                    .attr("status", comment.status.as_str())
                    .attr("findings", found.len());
                if !rule_id.is_empty() {
                    audit = audit.attr("moderation_rule_id", &rule_id);
                }
                m.audit(audit);
                if let Some(action) = comment.status.arrival_action() {
                    m.audit(record(action, &caller, on, &facts, now, "R4.1.3", None).reason(why));
                }
                created.insert(comment.platform_comment_id.clone(), (comment.id, comment.status));
            }
            store::add_first_actions(m.tx(), &actions).await?;
            Ok(created)
        });
        let mut created = created.await?;
        let mut answer = pb::IngestCommentsResponse::default();
        if created.len() < seen.len() {
            // Some lost the race to a concurrent batch: read what that batch stored.
            let mut tx = self.core.db().begin_read().await?;
            for (p, id, s) in store::known(&mut tx, account, &ids).await? {
                known.entry(p).or_insert((id, s));
            }
        }
        for c in &batch {
            let p = &c.platform_comment_id;
            let (fresh, (id, status)) = match created.remove(p) {
                Some(x) => (true, x),
                None => (false, known.get(p).copied().ok_or_else(|| Error::internal("ingested comment vanished"))?),
            };
            if fresh {
                answer.ingested_count += 1;
                // A later duplicate in the same batch reports the comment just stored.
                known.insert(p.clone(), (id, status));
            } else {
                answer.duplicate_count += 1;
            }
            answer.results.push(pb::IngestResult {
                platform_comment_id: p.clone(),
                comment_id: id.to_string(),
                duplicate: !fresh,
                status: status_to(status) as i32,
            });
        }
        Ok(answer)
    }

    async fn get_comment(&self, request: Request<pb::GetCommentRequest>) -> Result<pb::GetCommentResponse, Error> {
        let caller = caller(&request)?;
        let id: CommentId = one_id("comment_id", &request.get_ref().comment_id)?;
        let c = self.read(id).await?;
        self.require(&caller, Permission::CommentRead, c.account).await?;
        let mut tx = self.core.db().begin_read().await?;
        Ok(pb::GetCommentResponse { comment: Some(self.one(&mut tx, &c).await?) })
    }

    async fn list_comments(
        &self,
        request: Request<pb::ListCommentsRequest>,
    ) -> Result<pb::ListCommentsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        let publication: Option<PublicationId> = v.optional_id("publication_id", &req.publication_id);
        let assignee: Option<UserId> = v.optional_id("assignee_user_id", &req.assignee_user_id);
        let mut statuses = Vec::new();
        for (i, s) in req.statuses.iter().enumerate() {
            match status_from(*s) {
                Some(s) => statuses.push(s),
                None => v.violation(format!("statuses[{i}]"), "is not a comment status"),
            }
        }
        let tag = v.optional_text("tag", &req.tag, MAX_NAME_CHARS).unwrap_or_default();
        v.finish()?;
        let limit = page::page_size(req.page_size, 50, 500)?;
        let after: Option<(DateTime<Utc>, String)> = page::decode_page_token(&req.page_token)?;
        match account {
            Some(a) => {
                self.require(&caller, Permission::CommentRead, a).await?;
            }
            None => {
                self.core
                    .permissions()
                    .require(&caller, Permission::CommentRead, &govmedia_domain::scope::Resource::GLOBAL)
                    .await?
            }
        }
        let filter = CommentFilter {
            statuses,
            account,
            publication,
            assignee,
            overdue_at: req.overdue_only.then(|| self.core.now()),
            tag: (!tag.is_empty()).then_some(tag),
        };
        let mut tx = self.core.db().begin_read().await?;
        let comments = store::list(&mut tx, &filter, after, limit).await?;
        let next_page_token = next_page_token(&comments, limit, |c| (c.arrived_at, c.id.to_string()));
        Ok(pb::ListCommentsResponse { comments: self.view(&mut tx, &comments).await?, next_page_token })
    }

    async fn assign_comment(
        &self,
        request: Request<pb::AssignCommentRequest>,
    ) -> Result<pb::AssignCommentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<CommentId> = v.id("comment_id", &req.comment_id);
        let assignee: Option<UserId> = v.id("assignee_user_id", &req.assignee_user_id);
        let (request_id, id, assignee) = v.finish_with(|| Some((request_id?, id?, assignee?)))?;
        let current = self.read(id).await?;
        let (facts, grant) =
            authorize_on_account(&self.core, &caller, Permission::CommentModerate, current.account).await?;
        check_assignee(&self.core, assignee, Permission::CommentModerate, &facts).await?;
        let call = Call::new(&caller, method!("CommentService/AssignComment"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut c = store::lock(m.tx(), id, &grant).await?;
            check_etag("etag", &req.etag, c.version, false)?;
            if c.status == CommentStatus::Deleted {
                return Err(Error::rule("R4.1.3", format!("comment/{id}"), "a deleted comment cannot be assigned"));
            }
            let now = m.now();
            let previous = c.version;
            c.assignee = Some(assignee);
            c.version += 1;
            store::save(m.tx(), &c, previous).await?;
            store::add_action(
                m.tx(),
                &ActionRecord {
                    comment: id,
                    action: "assign".into(),
                    reason: assignee.to_string(),
                    actor: Some(UserId::from_uuid(caller.id.as_uuid())),
                    rule_id: String::new(),
                    channel: Channel::Recorded,
                    evidence: String::new(),
                    created_at: now,
                },
            )
            .await?;
            m.audit(
                record(
                    AuditAction::CommentAssigned,
                    &caller,
                    ("comment", id),
                    &facts,
                    now,
                    "R4.1.1",
                    Some(request_id.to_string()),
                )
                .attr("assignee_user_id", assignee),
            );
            Ok(pb::AssignCommentResponse { comment: Some(self.one(m.tx(), &c).await?) })
        });
        answer.await
    }

    async fn hide_comment(&self, request: Request<pb::HideCommentRequest>) -> Result<pb::HideCommentResponse, Error> {
        let (caller, req) = unpack(request)?;
        Ok(pb::HideCommentResponse { comment: Some(self.moderate(&caller, &req).await?) })
    }

    async fn delete_comment(
        &self,
        request: Request<pb::DeleteCommentRequest>,
    ) -> Result<pb::DeleteCommentResponse, Error> {
        let (caller, req) = unpack(request)?;
        Ok(pb::DeleteCommentResponse { comment: Some(self.moderate(&caller, &req).await?) })
    }

    async fn restore_comment(
        &self,
        request: Request<pb::RestoreCommentRequest>,
    ) -> Result<pb::RestoreCommentResponse, Error> {
        let (caller, req) = unpack(request)?;
        Ok(pb::RestoreCommentResponse { comment: Some(self.moderate(&caller, &req).await?) })
    }

    async fn dismiss_comment(
        &self,
        request: Request<pb::DismissCommentRequest>,
    ) -> Result<pb::DismissCommentResponse, Error> {
        let (caller, req) = unpack(request)?;
        Ok(pb::DismissCommentResponse { comment: Some(self.moderate(&caller, &req).await?) })
    }

    async fn reply_to_comment(
        &self,
        request: Request<pb::ReplyToCommentRequest>,
    ) -> Result<pb::ReplyToCommentResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<CommentId> = v.id("comment_id", &req.comment_id);
        let text = v.required_text("text", &req.text, MAX_REPLY_CHARS);
        let (request_id, id, text) = v.finish_with(|| Some((request_id?, id?, text?)))?;
        let current = self.read(id).await?;
        let (facts, grant) = authorize_to_speak(&self.core, &caller, Permission::CommentReply, current.account).await?;
        rules::check_replyable(&id.to_string(), current.status)?;
        let findings = screen_reply(
            &self.core,
            &caller,
            &facts,
            ("comment", id.to_string()),
            cpb::ScreeningContext::Reply,
            &text,
            request_id.to_string(),
        )
        .await?;
        let call = Call::new(&caller, method!("CommentService/ReplyToComment"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let c = store::lock(m.tx(), id, &grant).await?;
            rules::check_replyable(&id.to_string(), c.status)?;
            let settings = settings_store::get(m.tx(), c.account).await?;
            let now = m.now();
            let reply = Reply {
                id: ReplyId::new(),
                comment: id,
                text,
                author: UserId::from_uuid(caller.id.as_uuid()),
                state: rules::new_reply_state(settings.reply_approval_required, findings.len()),
                screening_findings: encode_findings(&findings),
                approver: None,
                reject_reason: String::new(),
                platform_reply_id: String::new(),
                channel: Channel::Recorded,
                evidence: String::new(),
                created_at: now,
                posted_at: None,
                version: 1,
            };
            store::insert_reply(m.tx(), &reply).await?;
            m.audit(
                record(
                    AuditAction::ReplyCreated,
                    &caller,
                    ("reply", reply.id),
                    &facts,
                    now,
                    "R4.1.2",
                    Some(request_id.to_string()),
                )
                .attr("comment_id", id)
                .attr("state", reply.state.as_str())
                .attr("review_findings", findings.len())
                .attr("held_for_review", !settings.reply_approval_required && !findings.is_empty()),
            );
            Ok(pb::ReplyToCommentResponse { reply: Some(reply_to_proto(&reply)?) })
        });
        answer.await
    }

    async fn approve_reply(
        &self,
        request: Request<pb::ApproveReplyRequest>,
    ) -> Result<pb::ApproveReplyResponse, Error> {
        let (caller, req) = unpack(request)?;
        let reply = self
            .decide(
                &caller,
                &req.request_id,
                &req.reply_id,
                None,
                "/govmedia.interaction.v1.CommentService/ApproveReply",
                &req,
            )
            .await?;
        Ok(reply)
    }

    async fn reject_reply(&self, request: Request<pb::RejectReplyRequest>) -> Result<pb::RejectReplyResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let reason = v.reason("reason", &req.reason);
        let reason = v.finish_with(|| reason)?;
        let reply = self
            .decide(
                &caller,
                &req.request_id,
                &req.reply_id,
                Some(reason),
                "/govmedia.interaction.v1.CommentService/RejectReply",
                &req,
            )
            .await?;
        Ok(reply)
    }

    async fn mark_reply_posted(
        &self,
        request: Request<pb::MarkReplyPostedRequest>,
    ) -> Result<pb::MarkReplyPostedResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let id: Option<ReplyId> = v.id("reply_id", &req.reply_id);
        let platform_reply_id = v.optional_text("platform_reply_id", &req.platform_reply_id, MAX_NAME_CHARS);
        let posted_at = optional_time(&mut v, "post_time", req.post_time.as_ref());
        let (channel, evidence) = match evidence(&mut v, "manual_evidence", req.manual_evidence.as_ref()) {
            (Channel::Recorded, e) => (Channel::PlatformApi, e),
            other => other,
        };
        if channel == Channel::PlatformApi && req.platform_reply_id.is_empty() {
            v.violation("platform_reply_id", "is required unless manual_evidence shows the reply posted by hand");
        }
        let now = self.core.now();
        if posted_at.is_some_and(|t| t > now) {
            v.violation("post_time", "is in the future");
        }
        let (request_id, id, platform_reply_id) = v.finish_with(|| Some((request_id?, id?, platform_reply_id?)))?;
        let account = self.reply_account(id).await?;
        let (facts, grant) = authorize_on_account(&self.core, &caller, Permission::CommentReply, account).await?;
        let call = Call::new(&caller, method!("CommentService/MarkReplyPosted"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let (mut r, mut c) = store::lock_reply(m.tx(), id, &grant).await?;
            let previous = r.version;
            r.state = rules::post_reply(&id.to_string(), r.state)?;
            let posted = posted_at.unwrap_or(m.now()).max(r.created_at);
            r.posted_at = Some(posted);
            r.platform_reply_id = platform_reply_id;
            r.channel = channel;
            r.evidence = evidence;
            r.version += 1;
            store::save_reply(m.tx(), &r, previous).await?;
            // The first reply to reach the public is the comment's first response (R4.1.1).
            if c.first_response_at.is_none() || c.status.awaits_response() {
                let previous = c.version;
                if c.first_response_at.is_none() {
                    c.first_response_at = Some(posted);
                    c.first_responder = Some(r.author);
                }
                if c.status.awaits_response() {
                    c.status = CommentStatus::Answered;
                }
                c.version += 1;
                store::save(m.tx(), &c, previous).await?;
            }
            m.audit(
                record(
                    AuditAction::ReplyPosted,
                    &caller,
                    ("reply", id),
                    &facts,
                    m.now(),
                    "R4.1.1",
                    Some(request_id.to_string()),
                )
                .attr("comment_id", c.id)
                .attr("channel", channel.as_str()),
            );
            Ok(pb::MarkReplyPostedResponse { reply: Some(reply_to_proto(&r)?) })
        });
        answer.await
    }
}

/// The answers of the two reply decisions, built from the decided reply.
trait DecisionAnswer: prost::Message + Default {
    fn with(reply: pb::Reply) -> Self;
}

impl DecisionAnswer for pb::ApproveReplyResponse {
    fn with(reply: pb::Reply) -> Self {
        Self { reply: Some(reply) }
    }
}

impl DecisionAnswer for pb::RejectReplyResponse {
    fn with(reply: pb::Reply) -> Self {
        Self { reply: Some(reply) }
    }
}

impl Comments {
    /// Approves (`reject_reason` none) or rejects a pending reply (R4.1.2).
    async fn decide<A: DecisionAnswer, Q: prost::Message>(
        &self,
        caller: &Principal,
        request_id: &str,
        reply_id: &str,
        reject_reason: Option<String>,
        // The full gRPC method: the idempotency key's scope.
        method: &'static str,
        req: &Q,
    ) -> Result<A, Error> {
        let mut v = Validator::new();
        let request_id = v.request_id(request_id);
        let id = v.id("reply_id", reply_id);
        let (request_id, id): (RequestId, ReplyId) = v.finish_with(|| Some((request_id?, id?)))?;
        let account = self.reply_account(id).await?;
        let (facts, grant) = if reject_reason.is_none() {
            authorize_to_speak(&self.core, caller, Permission::ReplyApprove, account).await?
        } else {
            authorize_on_account(&self.core, caller, Permission::ReplyApprove, account).await?
        };
        self.core
            .work()
            .run(Call::new(caller, method, request_id, req), async |m| {
                let (mut r, c) = store::lock_reply(m.tx(), id, &grant).await?;
                let approving = reject_reason.is_none();
                r.state = rules::decide_reply(
                    &id.to_string(),
                    r.state,
                    &r.author.to_string(),
                    &caller.id.to_string(),
                    approving,
                )?;
                r.approver = Some(UserId::from_uuid(caller.id.as_uuid()));
                r.reject_reason = reject_reason.clone().unwrap_or_default();
                r.version += 1;
                store::save_reply(m.tx(), &r, r.version - 1).await?;
                let action = if approving { AuditAction::ReplyApproved } else { AuditAction::ReplyRejected };
                let mut audit =
                    record(action, caller, ("reply", id), &facts, m.now(), "R4.1.2", Some(request_id.to_string()))
                        .attr("comment_id", c.id);
                if let Some(reason) = &reject_reason {
                    audit = audit.reason(reason.clone());
                }
                m.audit(audit);
                Ok(A::with(reply_to_proto(&r)?))
            })
            .await
    }

    /// The account a reply's comment is on.
    async fn reply_account(&self, id: ReplyId) -> Result<PlatformAccountId, Error> {
        let mut tx = self.core.db().begin_read().await?;
        let r = store::get_reply(&mut tx, id).await?.ok_or_else(|| Error::not_found("reply", id))?;
        Ok(store::get(&mut tx, r.comment).await?.ok_or_else(|| Error::not_found("comment", r.comment))?.account)
    }
}
