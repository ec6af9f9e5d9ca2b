//! The violation detectors (R9.1, R9.2): questions asked of the audit log and the
//! rectification register that propose violations for a person to confirm or dismiss.
//! A detector never decides. Each finding is proposed once (its detection key is unique),
//! with the audit events that show it as evidence, checked against the hash chain.
//!
//! - `rectification_overdue`: an order open past its deadline (R8.1.2), naming its person
//!   responsible; evidence: the order's `rectification.issued` record.
//! - `credential_reveals`: one person revealing account credentials three or more times
//!   within one clock hour (R2.3.2); evidence: the `credential.revealed` records.
//! - `credential_outside_department`: a credential revealed by someone whose department
//!   does not run the account (R2.3.2).
//! - `unapproved_manual_publication`: a publication recorded by hand whose draft has no
//!   principal leader approval in the log before it (R3.2.1).
//! - `blocked_term_published`: content's screening of published content found a blocking
//!   term in a publication (a serious wording error, classified marking, illegal
//!   content), naming the person who scheduled it (R7.1.1, R3.2.3); evidence: the
//!   finding's record and the publication's `publication.scheduled` record.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, DurationRound, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::{Actor, AuditAction, AuditRecord, AuditResourceRef};
use govmedia_domain::ids::{DepartmentId, UserId};
use govmedia_kit::mutation::Mutation;

use crate::Core;
use crate::domain::chain::{ChainedEvent, GENESIS, link};
use crate::domain::violation::{Facts, RULE, Violation, violation_type};
use crate::store::violations as store;
use crate::store::{self as log, EventFilter};

/// The component named as the actor of proposals.
pub const COMPONENT: &str = "audit.violation_detectors";
/// How far back the log-reading detectors look each round.
pub const LOOKBACK: Duration = Duration::days(7);
/// Reveals by one person within one clock hour that make a proposal.
pub const REVEALS_PER_HOUR: usize = 3;

/// Checks that every evidence event exists and holds its place in the hash chain: its
/// stored hash is the hash of its content after the event before it. An event altered,
/// or one whose predecessor was, is refused.
pub async fn check_evidence(core: &Core, ids: &[String]) -> Result<Vec<ChainedEvent>, Error> {
    let mut events = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let field = format!("evidence_event_ids[{i}]");
        let Some(e) = log::get_event(core.db(), id).await? else {
            return Err(Error::invalid(field, "is not an event of the audit log"));
        };
        let previous = if e.sequence <= 1 { Some(GENESIS) } else { log::hash_at(core.db(), e.sequence - 1).await? };
        if previous != Some(e.previous_hash) || link(&e.previous_hash, &e) != e.hash {
            return Err(Error::rule(
                "R1.3.5",
                format!("audit event {} (sequence {})", e.id, e.sequence),
                "fails the hash chain check: the log was altered here; verify the log before recording",
            ));
        }
        events.push(e);
    }
    Ok(events)
}

/// One finding: what a detector would propose.
#[derive(Debug)]
pub struct Finding {
    detector: &'static str,
    key: String,
    facts: Facts,
}

/// Runs every detector once at `now`; the number of violations proposed.
pub async fn round(core: &Core, now: DateTime<Utc>) -> Result<usize, Error> {
    let found = findings(core, now).await?;
    if found.is_empty() {
        return Ok(0);
    }
    core.work().run_unkeyed(async |m| propose(m, found, &Actor::system(COMPONENT)).await).await
}

/// What every detector finds at `now` and was not proposed yet, with evidence that
/// passes the chain check: read before any write transaction begins.
pub async fn findings(core: &Core, now: DateTime<Utc>) -> Result<Vec<Finding>, Error> {
    let mut found = overdue_rectifications(core, now).await?;
    found.extend(credential_reveals(core, now).await?);
    found.extend(unapproved_manual_publications(core, now).await?);
    found.extend(blocked_terms_published(core, now).await?);
    let mut ready = Vec::new();
    for f in found {
        // A finding whose evidence fails the chain check is logged, not proposed on a
        // tampered record.
        match check_evidence(core, &f.facts.evidence).await {
            Ok(_) => ready.push(f),
            Err(e) => tracing::warn!(error = %e, key = %f.key, "violation finding with evidence that fails the chain"),
        }
    }
    Ok(ready)
}

/// Proposes the findings in the caller's unit of work; how many were new (another
/// replica may have proposed the same finding a moment ago).
pub async fn propose(m: &mut Mutation, found: Vec<Finding>, actor: &Actor) -> Result<usize, Error> {
    let mut proposed = 0;
    for f in found {
        let v = Violation::propose(f.detector, f.key, f.facts, m.now());
        if store::insert_new(m.tx(), &v).await? {
            record(m, AuditAction::ViolationProposed, &v, actor.clone());
            proposed += 1;
        }
    }
    Ok(proposed)
}

/// The audit record of a change of `v`.
pub fn record(m: &mut Mutation, action: AuditAction, v: &Violation, actor: Actor) {
    let mut resource = AuditResourceRef::new("violation", v.id);
    resource.department = v.facts.department;
    resource.platform_account = v.facts.account;
    m.audit(
        AuditRecord::new(action, actor, resource, crate::PRODUCER, m.now())
            .rule(RULE)
            .reason(if v.handling.is_empty() { v.facts.description.clone() } else { v.handling.clone() })
            .attr("violation_type", v.facts.kind.code)
            .attr("violated_rule_id", v.facts.kind.rule_id)
            .attr("responsible_user_id", v.facts.responsible)
            .attr("severity", v.severity.as_str())
            .attr("state", v.state.as_str())
            .attr("evidence_event_ids", v.facts.evidence.join(","))
            .attr("detector", &v.detector)
            .attr("rectification_id", v.rectification.map(|r| r.to_string()).unwrap_or_default()),
    );
}

fn kind(code: &str) -> Result<&'static crate::domain::violation::ViolationType, Error> {
    violation_type(code).ok_or_else(|| Error::internal(format!("violation type {code} is not catalogued")))
}

async fn overdue_rectifications(core: &Core, now: DateTime<Utc>) -> Result<Vec<Finding>, Error> {
    let filter = crate::store::rectifications::RectificationFilter { overdue_at: Some(now), ..Default::default() };
    let mut tx = core.db().begin_read().await?;
    let overdue = crate::store::rectifications::list(&mut tx, &filter, None, 500).await?;
    let mut findings = Vec::new();
    for r in overdue {
        let key = format!("rectification_overdue:{}", r.id);
        if store::detected(&mut tx, &key).await? {
            continue;
        }
        // The order's issue record reaches the log through the outbox; until it has,
        // the finding waits for the next round.
        let Some(issued) =
            store::event_about(&mut tx, "rectification.issued", "rectification", &r.id.to_string()).await?
        else {
            continue;
        };
        findings.push(Finding {
            detector: "rectification_overdue",
            key,
            facts: Facts {
                kind: kind("rectification_ignored")?,
                responsible: r.order.responsible,
                department: Some(r.order.department),
                account: r.order.account,
                description: format!(
                    "rectification {} \"{}\" was due {} and is still {}",
                    r.id,
                    r.order.title,
                    r.due_date,
                    r.state.as_str()
                ),
                evidence: vec![issued],
            },
        });
    }
    Ok(findings)
}

async fn recent(core: &Core, action: &str, now: DateTime<Utc>) -> Result<Vec<ChainedEvent>, Error> {
    let filter = EventFilter {
        actions: vec![action.to_owned()],
        from: Some(now - LOOKBACK),
        to: Some(now),
        ..Default::default()
    };
    let mut events = Vec::new();
    let mut after = 0;
    loop {
        let page = log::query_events(core.db(), &filter, after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.sequence;
        let full = page.len() == 1000;
        events.extend(page);
        if !full {
            break;
        }
    }
    Ok(events)
}

async fn credential_reveals(core: &Core, now: DateTime<Utc>) -> Result<Vec<Finding>, Error> {
    let events = recent(core, "credential.revealed", now).await?;
    let mut tx = core.db().begin_read().await?;
    let mut findings = Vec::new();
    let mut per_hour: BTreeMap<(String, DateTime<Utc>), Vec<&ChainedEvent>> = BTreeMap::new();
    let mut departments: HashMap<UserId, Option<DepartmentId>> = HashMap::new();
    for e in &events {
        let Ok(user) = e.actor_id.parse::<UserId>() else { continue };
        let hour = e.occur_time.duration_trunc(Duration::hours(1)).unwrap_or(e.occur_time);
        per_hour.entry((e.actor_id.clone(), hour)).or_default().push(e);
        // Revealed by someone of another department than the one running the account.
        let Ok(account_department) = e.department_id.parse::<DepartmentId>() else { continue };
        let key = format!("credential_outside_department:{}", e.id);
        if store::detected(&mut tx, &key).await? {
            continue;
        }
        let department = match departments.get(&user) {
            Some(d) => *d,
            None => {
                let d = core.register().user(user).await?.and_then(|u| u.department);
                departments.insert(user, d);
                d
            }
        };
        if department != Some(account_department) {
            findings.push(Finding {
                detector: "credential_outside_department",
                key,
                facts: Facts {
                    kind: kind("credential_disclosure")?,
                    responsible: user,
                    department: Some(account_department),
                    account: e.platform_account_id.parse().ok(),
                    description: format!(
                        "{} revealed a credential of an account run by another department",
                        e.actor_name
                    ),
                    evidence: vec![e.id.clone()],
                },
            });
        }
    }
    for ((actor, hour), burst) in per_hour {
        if burst.len() < REVEALS_PER_HOUR {
            continue;
        }
        let key = format!("credential_reveals:{actor}:{}", hour.to_rfc3339());
        if store::detected(&mut tx, &key).await? {
            continue;
        }
        let Ok(user) = actor.parse::<UserId>() else { continue };
        let first = burst[0];
        findings.push(Finding {
            detector: "credential_reveals",
            key,
            facts: Facts {
                kind: kind("credential_disclosure")?,
                responsible: user,
                department: first.department_id.parse().ok(),
                account: first.platform_account_id.parse().ok(),
                description: format!(
                    "{} revealed account credentials {} times within the hour from {}",
                    first.actor_name,
                    burst.len(),
                    hour.to_rfc3339()
                ),
                evidence: burst.iter().map(|e| e.id.clone()).collect(),
            },
        });
    }
    Ok(findings)
}

async fn unapproved_manual_publications(core: &Core, now: DateTime<Utc>) -> Result<Vec<Finding>, Error> {
    let events = recent(core, "publication.recorded_manually", now).await?;
    let mut tx = core.db().begin_read().await?;
    let mut findings = Vec::new();
    for e in &events {
        let key = format!("unapproved_manual_publication:{}", e.id);
        if store::detected(&mut tx, &key).await? {
            continue;
        }
        let Ok(user) = e.actor_id.parse::<UserId>() else { continue };
        let draft = e.attributes.get("draft_id").cloned().unwrap_or_default();
        let approvals = if draft.is_empty() {
            Vec::new()
        } else {
            let filter = EventFilter {
                actions: vec!["draft.approved".to_owned()],
                resource_type: Some("draft".to_owned()),
                resource_id: Some(draft.clone()),
                to: Some(e.occur_time + Duration::microseconds(1)),
                ..Default::default()
            };
            log::query_events(core.db(), &filter, 0, 1000).await?
        };
        if approvals.iter().any(|a| a.attributes.get("stage").is_some_and(|s| s == "principal_leader")) {
            continue;
        }
        findings.push(Finding {
            detector: "unapproved_manual_publication",
            key,
            facts: Facts {
                kind: kind("unreviewed_publication")?,
                responsible: user,
                department: e.department_id.parse().ok(),
                account: e.platform_account_id.parse().ok(),
                description: format!(
                    "publication {} was recorded by hand by {} but draft {:?} has no principal leader approval in the log",
                    e.resource_id, e.actor_name, draft
                ),
                evidence: vec![e.id.clone()],
            },
        });
    }
    Ok(findings)
}

async fn blocked_terms_published(core: &Core, now: DateTime<Utc>) -> Result<Vec<Finding>, Error> {
    let mut events = recent(core, "publication.wording_error_found", now).await?;
    events.extend(recent(core, "publication.blocked_term_found", now).await?);
    let mut tx = core.db().begin_read().await?;
    let mut findings = Vec::new();
    for e in &events {
        let key = format!("blocked_term_published:{}", e.id);
        if store::detected(&mut tx, &key).await? {
            continue;
        }
        // The person answerable is whoever scheduled it to go out.
        let filter = EventFilter {
            actions: vec!["publication.scheduled".to_owned()],
            resource_type: Some("publication".to_owned()),
            resource_id: Some(e.resource_id.clone()),
            ..Default::default()
        };
        let scheduled = log::query_events(core.db(), &filter, 0, 1).await?;
        let Some(s) = scheduled.first() else { continue };
        let Ok(user) = s.actor_id.parse::<UserId>() else { continue };
        let attr = |k: &str| e.attributes.get(k).cloned().unwrap_or_default();
        let code = match (e.action.as_str(), attr("category").as_str()) {
            ("publication.wording_error_found", _) => "serious_wording_error",
            (_, c) if c.contains("classified") || c.contains("personal") => "confidential_content",
            _ => "illegal_content",
        };
        findings.push(Finding {
            detector: "blocked_term_published",
            key,
            facts: Facts {
                kind: kind(code)?,
                responsible: user,
                department: s.department_id.parse().ok(),
                account: e.platform_account_id.parse().ok(),
                description: format!(
                    "publication {} holds {:?} ({}; suggested {:?}), found when screened again with lexicon version {}; \
                     scheduled by {}",
                    e.resource_id,
                    attr("excerpt"),
                    attr("category"),
                    attr("suggestion"),
                    attr("lexicon_version"),
                    s.actor_name
                ),
                evidence: vec![e.id.clone(), s.id.clone()],
            },
        });
    }
    Ok(findings)
}
