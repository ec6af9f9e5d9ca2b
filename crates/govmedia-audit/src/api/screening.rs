//! `ScreeningService`: screening texts against the sensitive lexicon, and managing the
//! versioned lexicon and whitelist (R7.1.1, R3.2.3, R4.1.2).

use std::collections::BTreeSet;
use std::sync::Arc;

use govmedia_domain::Error;
use govmedia_domain::audit::{AuditAction, AuditResourceRef};
use govmedia_domain::ids::RequestId;
use govmedia_domain::page;
use govmedia_domain::permission::Permission;
use govmedia_domain::scope::Resource;
use govmedia_domain::validate::Validator;
use govmedia_kit::auth::Principal;
use govmedia_kit::mutation::{Call, Mutation};
use govmedia_kit::wire::{next_page_token, unpack};
use govmedia_proto::audit::v1 as pb;
use govmedia_proto::audit::v1::screening_service_server::{ScreeningService, ScreeningServiceServer};
use govmedia_proto::common::v1 as cpb;
use tonic::Request;

use crate::Core;
use crate::domain::screening::{Category, Context, Entry, Finding, Severity};
use crate::store::lexicon::{self as store, Table};

/// Most texts in one ScreenText.
pub const MAX_TEXTS: usize = 100;
/// Longest text, in characters.
pub const MAX_TEXT_CHARS: usize = 200_000;
/// Most entries in one upsert.
pub const MAX_UPSERT: usize = 10_000;

/// The generated server around the handlers.
pub fn server(core: &Arc<Core>) -> ScreeningServiceServer<Screening> {
    ScreeningServiceServer::new(Screening { core: Arc::clone(core) })
}

/// The handlers.
#[derive(Debug, Clone)]
pub struct Screening {
    core: Arc<Core>,
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: t.timestamp(), nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0) }
}

fn context_from(c: i32) -> Option<Context> {
    match cpb::ScreeningContext::try_from(c).ok()? {
        cpb::ScreeningContext::Post => Some(Context::Post),
        cpb::ScreeningContext::Comment => Some(Context::Comment),
        cpb::ScreeningContext::Reply => Some(Context::Reply),
        cpb::ScreeningContext::Profile => Some(Context::Profile),
        cpb::ScreeningContext::PrivateMessage => Some(Context::PrivateMessage),
        cpb::ScreeningContext::Unspecified => None,
    }
}

fn context_to(c: Context) -> cpb::ScreeningContext {
    match c {
        Context::Post => cpb::ScreeningContext::Post,
        Context::Comment => cpb::ScreeningContext::Comment,
        Context::Reply => cpb::ScreeningContext::Reply,
        Context::Profile => cpb::ScreeningContext::Profile,
        Context::PrivateMessage => cpb::ScreeningContext::PrivateMessage,
    }
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

fn severity_to(s: Severity) -> cpb::ScreeningSeverity {
    match s {
        Severity::Block => cpb::ScreeningSeverity::Block,
        Severity::Review => cpb::ScreeningSeverity::Review,
    }
}

fn finding_to(f: &Finding, key: &str) -> cpb::ScreeningFinding {
    let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    cpb::ScreeningFinding {
        category: category_to(f.category) as i32,
        severity: severity_to(f.severity) as i32,
        matched_term: f.matched_term.clone(),
        excerpt: f.excerpt.clone(),
        span: Some(cpb::TextSpan {
            byte_start: n(f.span.byte_start),
            byte_end: n(f.span.byte_end),
            char_start: n(f.span.char_start),
            char_end: n(f.span.char_end),
        }),
        rule_id: f.rule_id.clone(),
        suggestion: f.suggestion.clone(),
        lexicon_entry_id: f.entry_id.clone(),
        text_key: key.to_owned(),
    }
}

fn whitelist_to(p: &store::StoredPhrase) -> pb::WhitelistEntry {
    pb::WhitelistEntry {
        id: p.id.clone(),
        phrase: p.phrase.clone(),
        note: p.note.clone(),
        version: u64::try_from(p.version).unwrap_or(0),
        update_time: Some(ts(p.updated_at)),
    }
}

fn entry_to(e: &store::StoredEntry) -> pb::LexiconEntry {
    pb::LexiconEntry {
        id: e.entry.id.clone(),
        term: e.entry.term.clone(),
        category: category_to(e.entry.category) as i32,
        severity: severity_to(e.entry.severity) as i32,
        suggestion: e.entry.suggestion.clone(),
        rule_id: e.entry.rule_id.clone(),
        contexts: e.entry.contexts.iter().map(|c| context_to(*c) as i32).collect(),
        source: e.entry.source.clone(),
        version: u64::try_from(e.version).unwrap_or(0),
        update_time: Some(ts(e.updated_at)),
    }
}

fn parse_entry(v: &mut Validator, field: &str, e: &pb::LexiconEntry) -> Option<Entry> {
    let term = v.required_text(&format!("{field}.term"), &e.term, 100);
    if term.as_deref().is_some_and(|t| crate::domain::screening::normalize(t).text.is_empty()) {
        v.violation(format!("{field}.term"), "has no letters or characters left after normalisation");
    }
    let category = category_from(e.category);
    match category {
        None => v.violation(format!("{field}.category"), "is required"),
        Some(Category::PersonalData) => {
            v.violation(format!("{field}.category"), "personal data is found by built-in patterns, not terms")
        }
        Some(_) => {}
    }
    let severity = match cpb::ScreeningSeverity::try_from(e.severity) {
        Ok(cpb::ScreeningSeverity::Block) => Some(Severity::Block),
        Ok(cpb::ScreeningSeverity::Review) => Some(Severity::Review),
        _ => {
            v.violation(format!("{field}.severity"), "is required: block or review");
            None
        }
    };
    let rule_id = e.rule_id.trim();
    if !(rule_id.starts_with('R') && rule_id.len() > 1 && rule_id[1..].chars().all(|c| c.is_ascii_digit() || c == '.'))
    {
        v.violation(format!("{field}.rule_id"), "must be a rule id of the regulation, such as R7.1.1");
    }
    let mut contexts = BTreeSet::new();
    for c in &e.contexts {
        match context_from(*c) {
            Some(c) => {
                contexts.insert(c);
            }
            None => v.violation(format!("{field}.contexts"), "holds an unknown context"),
        }
    }
    let suggestion = v.optional_text(&format!("{field}.suggestion"), &e.suggestion, 200);
    let source = v.optional_text(&format!("{field}.source"), &e.source, 500);
    Some(Entry {
        id: uuid::Uuid::now_v7().to_string(),
        term: term?,
        category: category?,
        severity: severity?,
        suggestion: suggestion?,
        rule_id: rule_id.to_owned(),
        contexts,
        source: source?,
    })
}

fn caller<T>(request: &Request<T>) -> Result<Principal, Error> {
    govmedia_kit::auth::principal(request)
}

impl Screening {
    async fn require(&self, caller: &Principal, permission: Permission) -> Result<(), Error> {
        self.core.permissions().require(caller, permission, &Resource::GLOBAL).await
    }

    /// Runs a lexicon change as one new version: in one transaction with its audit record,
    /// then rebuilds the engine.
    async fn change<Req: prost::Message, R: prost::Message + Default + Clone>(
        &self,
        caller: &Principal,
        method: &'static str,
        request_id: RequestId,
        request: &Req,
        action: AuditAction,
        work: impl AsyncFnOnce(&mut Mutation, i64) -> Result<(R, String), Error>,
    ) -> Result<R, Error> {
        let call = Call::new(caller, method, request_id, request);
        let answer = self
            .core
            .work()
            .run(call, async |m| {
                let version = store::current_version(m.tx()).await? + 1;
                let (answer, summary) = work(m, version).await?;
                let now = m.now();
                store::insert_version(m.tx(), version, now, &caller.id.to_string(), &summary).await?;
                m.audit(
                    govmedia_domain::audit::AuditRecord::new(
                        action,
                        caller.actor(),
                        AuditResourceRef::new("lexicon", version),
                        "audit",
                        now,
                    )
                    .rule("R7.1.1")
                    .attr("version", version)
                    .attr("summary", &summary),
                );
                Ok(answer)
            })
            .await?;
        self.core.reload_lexicon().await?;
        Ok(answer)
    }
}

#[govmedia_kit::handlers]
impl ScreeningService for Screening {
    async fn screen_text(&self, request: Request<pb::ScreenTextRequest>) -> Result<pb::ScreenTextResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let context = context_from(req.context);
        if context.is_none() {
            v.violation("context", "is required: post, comment, reply, profile or private message");
        }
        if req.texts.is_empty() || req.texts.len() > MAX_TEXTS {
            v.violation("texts", format!("must hold 1 to {MAX_TEXTS} texts (has {})", req.texts.len()));
        }
        for (i, t) in req.texts.iter().enumerate() {
            if t.text.chars().count() > MAX_TEXT_CHARS {
                v.violation(format!("texts[{i}].text"), format!("must be at most {MAX_TEXT_CHARS} characters"));
            }
        }
        let context = v.finish_with(|| context)?;
        self.require(&caller, Permission::ScreeningScreen).await?;
        // One lexicon version for the whole batch.
        let lexicon = self.core.lexicon();
        let results = req
            .texts
            .iter()
            .map(|t| {
                let findings = lexicon.screen(&t.text, context);
                pb::ScreenedText {
                    key: t.key.clone(),
                    blocked: findings.iter().any(|f| f.severity == Severity::Block),
                    findings: findings.iter().map(|f| finding_to(f, &t.key)).collect(),
                }
            })
            .collect();
        Ok(pb::ScreenTextResponse { results, lexicon_version: lexicon.version() })
    }

    async fn get_lexicon(&self, request: Request<pb::GetLexiconRequest>) -> Result<pb::GetLexiconResponse, Error> {
        let caller = caller(&request)?;
        self.require(&caller, Permission::LexiconRead).await?;
        let lexicon = self.core.lexicon();
        let version = lexicon.version();
        let update_time = store::version_time(self.core.db(), i64::try_from(version).unwrap_or(0)).await?;
        Ok(pb::GetLexiconResponse {
            version,
            entry_count: u32::try_from(lexicon.entry_count()).unwrap_or(u32::MAX),
            whitelist_entry_count: u32::try_from(lexicon.whitelist_count()).unwrap_or(u32::MAX),
            update_time: update_time.map(ts),
        })
    }

    async fn list_lexicon_entries(
        &self,
        request: Request<pb::ListLexiconEntriesRequest>,
    ) -> Result<pb::ListLexiconEntriesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let category = if req.category == 0 { None } else { category_from(req.category) };
        if req.category != 0 && category.is_none() {
            return Err(Error::invalid("category", "is not a category"));
        }
        let limit = page::page_size(req.page_size, 100, 1000)?;
        let after: String = page::decode_page_token(&req.page_token)?.unwrap_or_default();
        self.require(&caller, Permission::LexiconRead).await?;
        let entries = store::list_entries(self.core.db(), category, &after, limit).await?;
        let next_page_token = next_page_token(&entries, limit, |last| last.entry.term.clone());
        Ok(pb::ListLexiconEntriesResponse { entries: entries.iter().map(entry_to).collect(), next_page_token })
    }

    async fn upsert_lexicon_entries(
        &self,
        request: Request<pb::UpsertLexiconEntriesRequest>,
    ) -> Result<pb::UpsertLexiconEntriesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        if req.entries.is_empty() || req.entries.len() > MAX_UPSERT {
            v.violation("entries", format!("must hold 1 to {MAX_UPSERT} entries (has {})", req.entries.len()));
        }
        let entries: Vec<_> =
            req.entries.iter().enumerate().map(|(i, e)| parse_entry(&mut v, &format!("entries[{i}]"), e)).collect();
        let request_id = v.finish_with(|| request_id)?;
        let entries: Vec<Entry> = entries.into_iter().flatten().collect();
        self.require(&caller, Permission::LexiconManage).await?;
        let answer = self
            .change(
                &caller,
                "/govmedia.audit.v1.ScreeningService/UpsertLexiconEntries",
                request_id,
                &req,
                AuditAction::LexiconUpdated,
                async |m, version| {
                    let (mut inserted, mut updated) = (0_u32, 0_u32);
                    let now = m.now();
                    for e in &entries {
                        if store::upsert_entry(m.tx(), e, version, now).await? { inserted += 1 } else { updated += 1 }
                    }
                    let summary = format!("{inserted} terms added, {updated} replaced");
                    Ok((
                        pb::UpsertLexiconEntriesResponse {
                            version: u64::try_from(version).unwrap_or(0),
                            inserted_count: inserted,
                            updated_count: updated,
                        },
                        summary,
                    ))
                },
            )
            .await?;
        Ok(answer)
    }

    async fn delete_lexicon_entries(
        &self,
        request: Request<pb::DeleteLexiconEntriesRequest>,
    ) -> Result<pb::DeleteLexiconEntriesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        if req.entry_ids.is_empty() {
            v.violation("entry_ids", "names no entry");
        }
        let request_id = v.finish_with(|| request_id)?;
        self.require(&caller, Permission::LexiconManage).await?;
        let ids = req.entry_ids.clone();
        let answer = self
            .change(
                &caller,
                "/govmedia.audit.v1.ScreeningService/DeleteLexiconEntries",
                request_id,
                &req,
                AuditAction::LexiconUpdated,
                async |m, version| {
                    let deleted = store::delete_by_ids(m.tx(), Table::Entries, &ids).await?;
                    Ok((
                        pb::DeleteLexiconEntriesResponse {
                            version: u64::try_from(version).unwrap_or(0),
                            deleted_count: u32::try_from(deleted).unwrap_or(u32::MAX),
                        },
                        format!("{deleted} terms deleted"),
                    ))
                },
            )
            .await?;
        Ok(answer)
    }

    async fn list_whitelist_entries(
        &self,
        request: Request<pb::ListWhitelistEntriesRequest>,
    ) -> Result<pb::ListWhitelistEntriesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let limit = page::page_size(req.page_size, 100, 1000)?;
        let after: String = page::decode_page_token(&req.page_token)?.unwrap_or_default();
        self.require(&caller, Permission::LexiconRead).await?;
        let phrases = store::list_phrases(self.core.db(), &after, limit).await?;
        let next_page_token = next_page_token(&phrases, limit, |last| last.phrase.clone());
        Ok(pb::ListWhitelistEntriesResponse { entries: phrases.iter().map(whitelist_to).collect(), next_page_token })
    }

    async fn upsert_whitelist_entries(
        &self,
        request: Request<pb::UpsertWhitelistEntriesRequest>,
    ) -> Result<pb::UpsertWhitelistEntriesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        if req.entries.is_empty() || req.entries.len() > MAX_UPSERT {
            v.violation("entries", format!("must hold 1 to {MAX_UPSERT} phrases (has {})", req.entries.len()));
        }
        let phrases: Vec<_> = req
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let phrase = v.required_text(&format!("entries[{i}].phrase"), &e.phrase, 100);
                let note = v.optional_text(&format!("entries[{i}].note"), &e.note, 500);
                phrase.zip(note)
            })
            .collect();
        let request_id = v.finish_with(|| request_id)?;
        let phrases: Vec<(String, String)> = phrases.into_iter().flatten().collect();
        self.require(&caller, Permission::LexiconManage).await?;
        let answer = self
            .change(
                &caller,
                "/govmedia.audit.v1.ScreeningService/UpsertWhitelistEntries",
                request_id,
                &req,
                AuditAction::WhitelistUpdated,
                async |m, version| {
                    let (mut inserted, mut updated) = (0_u32, 0_u32);
                    let now = m.now();
                    for (phrase, note) in &phrases {
                        if store::upsert_phrase(m.tx(), &uuid::Uuid::now_v7().to_string(), phrase, note, version, now)
                            .await?
                        {
                            inserted += 1
                        } else {
                            updated += 1
                        }
                    }
                    let summary = format!("{inserted} whitelist phrases added, {updated} replaced");
                    Ok((
                        pb::UpsertWhitelistEntriesResponse {
                            version: u64::try_from(version).unwrap_or(0),
                            inserted_count: inserted,
                            updated_count: updated,
                        },
                        summary,
                    ))
                },
            )
            .await?;
        Ok(answer)
    }

    async fn delete_whitelist_entries(
        &self,
        request: Request<pb::DeleteWhitelistEntriesRequest>,
    ) -> Result<pb::DeleteWhitelistEntriesResponse, Error> {
        let (caller, req) = unpack(request)?;
        let mut v = Validator::new();
        let request_id = v.request_id(&req.request_id);
        if req.entry_ids.is_empty() {
            v.violation("entry_ids", "names no entry");
        }
        let request_id = v.finish_with(|| request_id)?;
        self.require(&caller, Permission::LexiconManage).await?;
        let ids = req.entry_ids.clone();
        let answer = self
            .change(
                &caller,
                "/govmedia.audit.v1.ScreeningService/DeleteWhitelistEntries",
                request_id,
                &req,
                AuditAction::WhitelistUpdated,
                async |m, version| {
                    let deleted = store::delete_by_ids(m.tx(), Table::Whitelist, &ids).await?;
                    Ok((
                        pb::DeleteWhitelistEntriesResponse {
                            version: u64::try_from(version).unwrap_or(0),
                            deleted_count: u32::try_from(deleted).unwrap_or(u32::MAX),
                        },
                        format!("{deleted} whitelist phrases deleted"),
                    ))
                },
            )
            .await?;
        Ok(answer)
    }
}
