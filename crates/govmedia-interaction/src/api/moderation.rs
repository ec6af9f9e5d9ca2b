//! `ModerationService`: moderation rules (R4.1.3) and per-account interaction settings
//! (R4.1.1, R4.1.2).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::RequestId;
use govmedia_domain::ids::{ModerationRuleId, PlatformAccountId, PublicationId, UserId};
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::screening::{Category, Severity};
use govmedia_domain::validate::{MAX_NAME_CHARS, Validator};
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::Call;
use govmedia_kit::wire::{caller, check_etag, etag, next_page_token, ts};
use govmedia_kit::wire::{keyed_id, one_id, unpack};
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::interaction::v1 as pb;
use govmedia_proto::interaction::v1::moderation_service_server::{ModerationService, ModerationServiceServer};
use tonic::Request;

use super::{method, record};
use crate::domain::moderation::{Action, Condition, Rule};
use crate::store::rules::{self as store, StoredRule};
use crate::store::settings::{self as settings_store, Settings};
use crate::{Core, ITEM_COMMENT, ITEM_PRIVATE_MESSAGE, PRODUCER};

/// Most keywords or authors in one condition.
const MAX_LIST: usize = 200;
/// Most actions of one rule.
const MAX_ACTIONS: usize = 10;
/// Longest response target: 30 working days of 8 hours.
const MAX_TARGET_MINUTES: u32 = 30 * 8 * 60;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> ModerationServiceServer<Moderation> {
    ModerationServiceServer::new(Moderation { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Moderation {
    core: Arc<Core>,
}

fn category_from(c: i32) -> Option<Category> {
    match cpb::ScreeningCategory::try_from(c).ok()? {
        cpb::ScreeningCategory::ClassifiedMarking => Some(Category::ClassifiedMarking),
        cpb::ScreeningCategory::Political => Some(Category::Political),
        cpb::ScreeningCategory::Illegal => Some(Category::Illegal),
        cpb::ScreeningCategory::Profanity => Some(Category::Profanity),
        cpb::ScreeningCategory::PersonalData => Some(Category::PersonalData),
        cpb::ScreeningCategory::NonStandardWording => Some(Category::NonStandardWording),
        cpb::ScreeningCategory::CriticalName => Some(Category::CriticalName),
        cpb::ScreeningCategory::Unspecified => None,
    }
}

fn category_to(c: Category) -> cpb::ScreeningCategory {
    match c {
        Category::ClassifiedMarking => cpb::ScreeningCategory::ClassifiedMarking,
        Category::Political => cpb::ScreeningCategory::Political,
        Category::Illegal => cpb::ScreeningCategory::Illegal,
        Category::Profanity => cpb::ScreeningCategory::Profanity,
        Category::PersonalData => cpb::ScreeningCategory::PersonalData,
        Category::NonStandardWording => cpb::ScreeningCategory::NonStandardWording,
        Category::CriticalName => cpb::ScreeningCategory::CriticalName,
    }
}

fn condition(v: &mut Validator, c: &pb::RuleCondition) -> Condition {
    let mut categories = Vec::new();
    for (i, x) in c.categories.iter().enumerate() {
        match category_from(*x) {
            Some(c) if !categories.contains(&c) => categories.push(c),
            Some(_) => {}
            None => v.violation(format!("moderation_rule.condition.categories[{i}]"), "is not a screening category"),
        }
    }
    let minimum_severity = match cpb::ScreeningSeverity::try_from(c.minimum_severity) {
        Ok(cpb::ScreeningSeverity::Unspecified) => None,
        Ok(cpb::ScreeningSeverity::Block) => Some(Severity::Block),
        Ok(cpb::ScreeningSeverity::Review) => Some(Severity::Review),
        Err(_) => {
            v.violation("moderation_rule.condition.minimum_severity", "is not a screening severity");
            None
        }
    };
    let mut list = |field: &str, values: &[String]| -> Vec<String> {
        if values.len() > MAX_LIST {
            v.violation(format!("moderation_rule.condition.{field}"), format!("must hold at most {MAX_LIST} values"));
        }
        values
            .iter()
            .enumerate()
            .filter_map(|(i, k)| v.required_text(&format!("moderation_rule.condition.{field}[{i}]"), k, MAX_NAME_CHARS))
            .collect()
    };
    let keywords = list("keywords", &c.keywords);
    let author_platform_ids = list("author_platform_ids", &c.author_platform_ids);
    let account: Option<PlatformAccountId> =
        v.optional_id("moderation_rule.condition.platform_account_id", &c.platform_account_id);
    let publication: Option<PublicationId> =
        v.optional_id("moderation_rule.condition.publication_id", &c.publication_id);
    Condition {
        categories,
        minimum_severity,
        keywords,
        author_platform_ids,
        platform_account_id: account.map(|a| a.to_string()),
        publication_id: publication.map(|p| p.to_string()),
    }
}

fn actions(v: &mut Validator, given: &[pb::RuleAction]) -> Vec<Action> {
    if given.is_empty() {
        v.violation("moderation_rule.actions", "must name at least one action");
    }
    if given.len() > MAX_ACTIONS {
        v.violation("moderation_rule.actions", format!("must name at most {MAX_ACTIONS} actions"));
    }
    let mut out = Vec::new();
    for (i, a) in given.iter().enumerate() {
        let field = format!("moderation_rule.actions[{i}]");
        match pb::RuleActionKind::try_from(a.kind) {
            Ok(pb::RuleActionKind::Hide) => out.push(Action::Hide),
            Ok(pb::RuleActionKind::FlagForReview) => out.push(Action::FlagForReview),
            Ok(pb::RuleActionKind::Allow) => out.push(Action::Allow),
            Ok(pb::RuleActionKind::Assign) => {
                if let Some(u) = v.id::<UserId>(&format!("{field}.assignee_user_id"), &a.assignee_user_id) {
                    out.push(Action::Assign(u.to_string()));
                }
            }
            Ok(pb::RuleActionKind::Tag) => {
                if let Some(t) = v.required_text(&format!("{field}.tag"), &a.tag, MAX_NAME_CHARS) {
                    out.push(Action::Tag(t));
                }
            }
            Ok(pb::RuleActionKind::Unspecified) | Err(_) => {
                v.violation(format!("{field}.kind"), "is not a rule action")
            }
        }
    }
    let statuses = out.iter().filter(|a| matches!(a, Action::Hide | Action::FlagForReview | Action::Allow)).count();
    if statuses > 1 {
        v.violation("moderation_rule.actions", "may set the status once: hide, flag for review or allow");
    }
    out
}

fn to_proto(r: &StoredRule) -> pb::ModerationRule {
    let c = &r.rule.condition;
    pb::ModerationRule {
        id: r.id.to_string(),
        name: r.name.clone(),
        priority: r.rule.priority,
        condition: Some(pb::RuleCondition {
            categories: c.categories.iter().map(|x| category_to(*x) as i32).collect(),
            minimum_severity: match c.minimum_severity {
                None => cpb::ScreeningSeverity::Unspecified,
                Some(Severity::Block) => cpb::ScreeningSeverity::Block,
                Some(Severity::Review) => cpb::ScreeningSeverity::Review,
            } as i32,
            keywords: c.keywords.clone(),
            author_platform_ids: c.author_platform_ids.clone(),
            platform_account_id: c.platform_account_id.clone().unwrap_or_default(),
            publication_id: c.publication_id.clone().unwrap_or_default(),
        }),
        actions: r
            .rule
            .actions
            .iter()
            .map(|a| match a {
                Action::Hide => pb::RuleAction { kind: pb::RuleActionKind::Hide as i32, ..Default::default() },
                Action::FlagForReview => {
                    pb::RuleAction { kind: pb::RuleActionKind::FlagForReview as i32, ..Default::default() }
                }
                Action::Allow => pb::RuleAction { kind: pb::RuleActionKind::Allow as i32, ..Default::default() },
                Action::Assign(u) => pb::RuleAction {
                    kind: pb::RuleActionKind::Assign as i32,
                    assignee_user_id: u.clone(),
                    ..Default::default()
                },
                Action::Tag(t) => {
                    pb::RuleAction { kind: pb::RuleActionKind::Tag as i32, tag: t.clone(), ..Default::default() }
                }
            })
            .collect(),
        enabled: r.rule.enabled,
        create_time: Some(ts(r.rule.created_at)),
        update_time: Some(ts(r.updated_at)),
        etag: etag(r.version),
    }
}

fn settings_to(s: &Settings) -> pb::InteractionSettings {
    pb::InteractionSettings {
        platform_account_id: s.account.to_string(),
        reply_approval_required: s.reply_approval_required,
        response_targets: s
            .response_targets
            .iter()
            .map(|(k, m)| pb::ResponseTarget { item_type: k.clone(), business_minutes: *m })
            .collect(),
        update_time: s.updated_at.map(ts),
        etag: if s.version == 0 { String::new() } else { etag(s.version) },
    }
}

impl Moderation {
    /// The resource a rule lives on: its account, or global for every account.
    async fn resource(&self, account: Option<PlatformAccountId>) -> Result<Resource, Error> {
        match account {
            Some(a) => Ok(self.core.account(a).await?.resource()),
            None => Ok(Resource::GLOBAL),
        }
    }

    async fn require(
        &self,
        caller: &Principal,
        permission: Permission,
        account: Option<PlatformAccountId>,
    ) -> Result<Resource, Error> {
        let resource = self.resource(account).await?;
        self.core.permissions().require(caller, permission, &resource).await?;
        Ok(resource)
    }

    /// A rule as it is now, read without a lock.
    async fn read_rule(&self, id: ModerationRuleId) -> Result<StoredRule, Error> {
        let mut tx = self.core.db().begin_read().await?;
        store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("moderation_rule", id))
    }

    fn rule_record(&self, action: AuditAction, caller: &Principal, r: &StoredRule, request_id: String) -> AuditRecord {
        let mut resource = AuditResourceRef::new("moderation_rule", r.id);
        resource.platform_account = r.account();
        AuditRecord::new(action, caller.actor(), resource, PRODUCER, self.core.now())
            .rule("R4.1.3")
            .request(govmedia_kit::telemetry::current_trace_id(), Some(request_id))
            .attr("name", &r.name)
    }
}

#[govmedia_kit::handlers]
impl ModerationService for Moderation {
    async fn create_moderation_rule(
        &self,
        request: Request<pb::CreateModerationRuleRequest>,
    ) -> Result<pb::CreateModerationRuleResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.moderation_rule.clone().unwrap_or_default();
        let name = v.required_text("moderation_rule.name", &given.name, MAX_NAME_CHARS);
        let condition = condition(&mut v, &given.condition.clone().unwrap_or_default());
        let actions = actions(&mut v, &given.actions);
        let (request_id, name) = v.finish_with(|| Some((request_id?, name?)))?;
        let account = condition.platform_account_id.as_deref().and_then(|a| a.parse().ok());
        self.require(&caller, Permission::ModerationRuleManage, account).await?;
        let call = Call::new(&caller, method!("ModerationService/CreateModerationRule"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let now = m.now();
            let id = ModerationRuleId::new();
            let rule = StoredRule {
                id,
                name,
                rule: Rule {
                    id: id.to_string(),
                    priority: given.priority,
                    created_at: now,
                    condition,
                    actions,
                    enabled: given.enabled,
                },
                updated_at: now,
                version: 1,
            };
            store::insert(m.tx(), &rule).await?;
            m.audit(
                self.rule_record(AuditAction::ModerationRuleCreated, &caller, &rule, request_id.to_string())
                    .attr("priority", rule.rule.priority)
                    .attr("enabled", rule.rule.enabled),
            );
            Ok(pb::CreateModerationRuleResponse { moderation_rule: Some(to_proto(&rule)) })
        });
        answer.await
    }

    async fn get_moderation_rule(
        &self,
        request: Request<pb::GetModerationRuleRequest>,
    ) -> Result<pb::GetModerationRuleResponse, Error> {
        let caller = caller(&request)?;
        let id: ModerationRuleId = one_id("moderation_rule_id", &request.get_ref().moderation_rule_id)?;
        let mut tx = self.core.db().begin_read().await?;
        let rule = store::get(&mut tx, id).await?.ok_or_else(|| Error::not_found("moderation_rule", id))?;
        drop(tx);
        self.require(&caller, Permission::CommentRead, rule.account()).await?;
        Ok(pb::GetModerationRuleResponse { moderation_rule: Some(to_proto(&rule)) })
    }

    async fn list_moderation_rules(
        &self,
        request: Request<pb::ListModerationRulesRequest>,
    ) -> Result<pb::ListModerationRulesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.optional_id("platform_account_id", &req.platform_account_id);
        v.finish()?;
        let limit = page::page_size(req.page_size, 100, 1000)?;
        let after: Option<(i32, DateTime<Utc>, String)> = page::decode_page_token(&req.page_token)?;
        self.require(&caller, Permission::CommentRead, account).await?;
        let mut tx = self.core.db().begin_read().await?;
        let rules = store::list(&mut tx, account, after, limit).await?;
        let next_page_token =
            next_page_token(&rules, limit, |r| (r.rule.priority, r.rule.created_at, r.id.to_string()));
        Ok(pb::ListModerationRulesResponse { moderation_rules: rules.iter().map(to_proto).collect(), next_page_token })
    }

    async fn update_moderation_rule(
        &self,
        request: Request<pb::UpdateModerationRuleRequest>,
    ) -> Result<pb::UpdateModerationRuleResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.moderation_rule.clone().unwrap_or_default();
        let id: Option<ModerationRuleId> = v.id("moderation_rule.id", &given.id);
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.violation("update_mask", "names no field to change");
        }
        let (mut name, mut priority, mut new_condition, mut new_actions, mut enabled) = (None, None, None, None, None);
        for path in &paths {
            match path.as_str() {
                "name" => name = v.required_text("moderation_rule.name", &given.name, MAX_NAME_CHARS),
                "priority" => priority = Some(given.priority),
                "condition" => new_condition = Some(condition(&mut v, &given.condition.clone().unwrap_or_default())),
                "actions" => new_actions = Some(actions(&mut v, &given.actions)),
                "enabled" => enabled = Some(given.enabled),
                other => v.violation("update_mask", format!("{other:?} cannot be changed")),
            }
        }
        let (request_id, id) = v.finish_with(|| Some((request_id?, id?)))?;
        let current = self.read_rule(id).await?;
        self.require(&caller, Permission::ModerationRuleManage, current.account()).await?;
        if let Some(moved) =
            new_condition.as_ref().map(|c| c.platform_account_id.as_deref().and_then(|a| a.parse().ok()))
        {
            // Moving a rule to another account needs the right there too.
            self.require(&caller, Permission::ModerationRuleManage, moved).await?;
        }
        let call = Call::new(&caller, method!("ModerationService/UpdateModerationRule"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut rule = store::get(m.tx(), id).await?.ok_or_else(|| Error::not_found("moderation_rule", id))?;
            unmoved(&current, &rule)?;
            check_etag("moderation_rule.etag", &given.etag, rule.version, true)?;
            let previous = rule.version;
            if let Some(x) = name {
                rule.name = x;
            }
            if let Some(x) = priority {
                rule.rule.priority = x;
            }
            if let Some(x) = new_condition {
                rule.rule.condition = x;
            }
            if let Some(x) = new_actions {
                rule.rule.actions = x;
            }
            if let Some(x) = enabled {
                rule.rule.enabled = x;
            }
            rule.updated_at = m.now();
            rule.version += 1;
            store::save(m.tx(), &rule, previous).await?;
            m.audit(
                self.rule_record(AuditAction::ModerationRuleUpdated, &caller, &rule, request_id.to_string())
                    .attr("fields", paths.join(",")),
            );
            Ok(pb::UpdateModerationRuleResponse { moderation_rule: Some(to_proto(&rule)) })
        });
        answer.await
    }

    async fn delete_moderation_rule(
        &self,
        request: Request<pb::DeleteModerationRuleRequest>,
    ) -> Result<pb::DeleteModerationRuleResponse, Error> {
        let (caller, req) = unpack(request)?;
        let (request_id, id): (RequestId, ModerationRuleId) =
            keyed_id(&req.request_id, "moderation_rule_id", &req.moderation_rule_id)?;
        let current = self.read_rule(id).await?;
        self.require(&caller, Permission::ModerationRuleManage, current.account()).await?;
        let call = Call::new(&caller, method!("ModerationService/DeleteModerationRule"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let rule = store::get(m.tx(), id).await?.ok_or_else(|| Error::not_found("moderation_rule", id))?;
            unmoved(&current, &rule)?;
            check_etag("etag", &req.etag, rule.version, false)?;
            store::delete(m.tx(), id, rule.version).await?;
            m.audit(self.rule_record(AuditAction::ModerationRuleDeleted, &caller, &rule, request_id.to_string()));
            Ok(pb::DeleteModerationRuleResponse {})
        });
        answer.await
    }

    async fn get_interaction_settings(
        &self,
        request: Request<pb::GetInteractionSettingsRequest>,
    ) -> Result<pb::GetInteractionSettingsResponse, Error> {
        let caller = caller(&request)?;
        let mut v = Validator::new();
        let account: Option<PlatformAccountId> = v.id("platform_account_id", &request.get_ref().platform_account_id);
        let account = v.finish_with(|| account)?;
        self.require(&caller, Permission::CommentRead, Some(account)).await?;
        let mut tx = self.core.db().begin_read().await?;
        let settings = settings_store::get(&mut tx, account).await?;
        Ok(pb::GetInteractionSettingsResponse { settings: Some(settings_to(&settings)) })
    }

    async fn update_interaction_settings(
        &self,
        request: Request<pb::UpdateInteractionSettingsRequest>,
    ) -> Result<pb::UpdateInteractionSettingsResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        let given = req.settings.clone().unwrap_or_default();
        let account: Option<PlatformAccountId> = v.id("settings.platform_account_id", &given.platform_account_id);
        let paths = req.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        if paths.is_empty() {
            v.violation("update_mask", "names no field to change");
        }
        let (mut approval, mut targets) = (None, None);
        for path in &paths {
            match path.as_str() {
                "reply_approval_required" => approval = Some(given.reply_approval_required),
                "response_targets" => {
                    let mut t = BTreeMap::new();
                    for (i, x) in given.response_targets.iter().enumerate() {
                        let field = format!("settings.response_targets[{i}]");
                        if x.item_type != ITEM_COMMENT && x.item_type != ITEM_PRIVATE_MESSAGE {
                            v.violation(
                                format!("{field}.item_type"),
                                format!("must be {ITEM_COMMENT:?} or {ITEM_PRIVATE_MESSAGE:?}"),
                            );
                        } else if x.business_minutes == 0 || x.business_minutes > MAX_TARGET_MINUTES {
                            v.violation(
                                format!("{field}.business_minutes"),
                                format!("must be between 1 and {MAX_TARGET_MINUTES}"),
                            );
                        } else if t.insert(x.item_type.clone(), x.business_minutes).is_some() {
                            v.violation(format!("{field}.item_type"), "is given twice");
                        }
                    }
                    targets = Some(t);
                }
                other => v.violation("update_mask", format!("{other:?} cannot be changed")),
            }
        }
        let (request_id, account) = v.finish_with(|| Some((request_id?, account?)))?;
        let facts = self.core.account(account).await?;
        self.core.permissions().require(&caller, Permission::ModerationRuleManage, &facts.resource()).await?;
        let call = Call::new(&caller, method!("ModerationService/UpdateInteractionSettings"), request_id, &req);
        let answer = self.core.work().run(call, async |m| {
            let mut settings = settings_store::get(m.tx(), account).await?;
            if settings.version == 0 {
                if !given.etag.is_empty() {
                    return Err(Error::Conflict(format!(
                        "settings.etag {:?} is stale: the settings were never set",
                        given.etag
                    )));
                }
            } else {
                check_etag("settings.etag", &given.etag, settings.version, true)?;
            }
            let previous = settings.version;
            if let Some(x) = approval {
                settings.reply_approval_required = x;
            }
            if let Some(x) = targets {
                settings.response_targets = x;
            }
            settings.updated_at = Some(m.now());
            settings.version += 1;
            settings_store::save(m.tx(), &settings, previous).await?;
            m.audit(
                record(
                    AuditAction::InteractionSettingsUpdated,
                    &caller,
                    ("interaction_settings", account),
                    &facts,
                    m.now(),
                    "R4.1.2",
                    Some(request_id.to_string()),
                )
                .attr("fields", paths.join(","))
                .attr("reply_approval_required", settings.reply_approval_required),
            );
            Ok(pb::UpdateInteractionSettingsResponse { settings: Some(settings_to(&settings)) })
        });
        answer.await
    }
}

/// The rule, in the change's transaction, is still on the account its permission was
/// checked on; ABORTED otherwise (it moved in between: read it again and retry).
fn unmoved(checked: &StoredRule, now: &StoredRule) -> Result<(), Error> {
    if checked.account() == now.account() {
        Ok(())
    } else {
        Err(Error::Conflict(
            "the moderation rule moved since the permission was checked; read it again and retry".into(),
        ))
    }
}
