//! Inspections and random spot checks (R8.1.1): a sample drawn reproducibly from a seed,
//! a verdict on every sampled item against the criteria that apply, problems as findings.

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, InspectionId, PrincipalId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The rule inspections serve.
pub const RULE: &str = "R8.1.1";
/// Most items drawn per item type.
pub const MAX_SAMPLE: u32 = 200;

/// Periodic or spot check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A periodic inspection.
    Periodic,
    /// A random spot check.
    SpotCheck,
}

impl Kind {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Periodic => "periodic",
            Kind::SpotCheck => "spot_check",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        [Kind::Periodic, Kind::SpotCheck].into_iter().find(|k| k.as_str() == s)
    }
}

/// What a sampled item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// A publication that went out.
    Publication,
    /// A reply posted to a comment.
    Reply,
    /// A conversation answered.
    Conversation,
}

impl ItemType {
    /// Every type, in the order a sample lists them.
    pub const ALL: [ItemType; 3] = [ItemType::Publication, ItemType::Reply, ItemType::Conversation];

    /// The name hashed into the draw.
    pub const fn as_str(self) -> &'static str {
        match self {
            ItemType::Publication => "publication",
            ItemType::Reply => "reply",
            ItemType::Conversation => "conversation",
        }
    }

    /// The criteria a verdict on this type judges: R3.2.3 (legality, truthfulness,
    /// objectivity, accuracy, standard wording) for content; timeliness (R4.1.1) and tone
    /// (R4.1.2) for answers to the public.
    pub const fn criteria(self) -> &'static [&'static str] {
        match self {
            ItemType::Publication => &["R3.2.3"],
            ItemType::Reply | ItemType::Conversation => &["R4.1.1", "R4.1.2"],
        }
    }
}

/// The verdict on an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Not judged yet.
    Pending,
    /// Meets the criteria.
    Pass,
    /// Fails one: a finding.
    Problem,
}

/// Where an inspection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Verdicts being recorded.
    Open,
    /// Every item judged.
    Completed,
}

impl State {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Open => "open",
            State::Completed => "completed",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        [State::Open, State::Completed].into_iter().find(|x| x.as_str() == s)
    }
}

/// Something the log says happened in the period: a candidate for the sample.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// What it is.
    pub item_type: ItemType,
    /// Its id.
    pub item_id: String,
    /// Its account.
    pub account: String,
    /// The event it is drawn from.
    pub event_id: String,
}

/// One sampled item and its verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What it is.
    pub item_type: ItemType,
    /// Its id.
    pub item_id: String,
    /// Its account.
    pub account: String,
    /// The event it was drawn from.
    pub event_id: String,
    /// The verdict.
    pub verdict: Verdict,
    /// The criterion failed.
    pub failed_rule_id: String,
    /// The note.
    pub note: String,
    /// Who judged it.
    pub judged_by: String,
    /// When.
    pub judged_at: Option<DateTime<Utc>>,
}

/// The rank of a candidate in the draw of `seed`: the same for the same seed, type and
/// id on any machine and in any order.
fn rank(seed: u64, item_type: ItemType, id: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_be_bytes());
    h.update(item_type.as_str().as_bytes());
    h.update([0]);
    h.update(id.as_bytes());
    h.finalize().into()
}

/// Draws up to `per_type` items of each type: the candidates of lowest rank.
pub fn draw(seed: u64, candidates: Vec<Candidate>, per_type: u32) -> Vec<Item> {
    let mut ranked: Vec<([u8; 32], Candidate)> =
        candidates.into_iter().map(|c| (rank(seed, c.item_type, &c.item_id), c)).collect();
    ranked.sort_by_key(|(rank, c)| (c.item_type, *rank));
    let mut items = Vec::new();
    for t in ItemType::ALL {
        items.extend(ranked.iter().filter(|(_, c)| c.item_type == t).take(per_type as usize).map(|(_, c)| Item {
            item_type: c.item_type,
            item_id: c.item_id.clone(),
            account: c.account.clone(),
            event_id: c.event_id.clone(),
            verdict: Verdict::Pending,
            failed_rule_id: String::new(),
            note: String::new(),
            judged_by: String::new(),
            judged_at: None,
        }));
    }
    items
}

/// An inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The id.
    pub id: InspectionId,
    /// Periodic or spot check.
    pub kind: Kind,
    /// A title.
    pub title: String,
    /// The department inspected; none for the bureau.
    pub department: Option<DepartmentId>,
    /// The period's first date.
    pub start_date: NaiveDate,
    /// Its last date.
    pub end_date: NaiveDate,
    /// The seed of the draw.
    pub seed: u64,
    /// Items asked for per type.
    pub sample_size: u32,
    /// The sample.
    pub items: Vec<Item>,
    /// Where it stands.
    pub state: State,
    /// Who opened it.
    pub created_by: PrincipalId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// When completed.
    pub completed_at: Option<DateTime<Utc>>,
    /// The row version.
    pub version: i64,
}

impl Inspection {
    /// Items judged a problem.
    pub fn problems(&self) -> usize {
        self.items.iter().filter(|i| i.verdict == Verdict::Problem).count()
    }

    fn subject(&self) -> String {
        format!("inspection {}", self.id)
    }

    /// Records the verdict on one item.
    #[allow(clippy::too_many_arguments)]
    pub fn judge(
        &mut self,
        item_type: ItemType,
        item_id: &str,
        verdict: Verdict,
        failed_rule_id: String,
        note: String,
        by: PrincipalId,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if self.state != State::Open {
            return Err(Error::rule(RULE, self.subject(), "is completed: its verdicts stand"));
        }
        let Some(item) = self.items.iter_mut().find(|i| i.item_type == item_type && i.item_id == item_id) else {
            return Err(Error::invalid("item_id", "is not in this inspection's sample"));
        };
        if verdict == Verdict::Problem && !item_type.criteria().contains(&failed_rule_id.as_str()) {
            return Err(Error::invalid(
                "failed_rule_id",
                format!("must be one of the item's criteria: {}", item_type.criteria().join(", ")),
            ));
        }
        item.verdict = verdict;
        item.failed_rule_id = if verdict == Verdict::Problem { failed_rule_id } else { String::new() };
        item.note = note;
        item.judged_by = by.to_string();
        item.judged_at = Some(now);
        self.version += 1;
        Ok(AuditAction::InspectionVerdictRecorded)
    }

    /// Completes it once every item is judged.
    pub fn complete(&mut self, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if self.state != State::Open {
            return Err(Error::rule(RULE, self.subject(), "is completed already"));
        }
        let pending = self.items.iter().filter(|i| i.verdict == Verdict::Pending).count();
        if pending > 0 {
            return Err(Error::rule(RULE, self.subject(), format!("{pending} sampled items have no verdict yet")));
        }
        self.state = State::Completed;
        self.completed_at = Some(now);
        self.version += 1;
        Ok(AuditAction::InspectionCompleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidates(n: usize) -> Vec<Candidate> {
        (0..n)
            .flat_map(|i| {
                ItemType::ALL.into_iter().map(move |t| Candidate {
                    item_type: t,
                    item_id: format!("{}-{i}", t.as_str()),
                    account: "a".into(),
                    event_id: format!("e{i}"),
                })
            })
            .collect()
    }

    #[test]
    fn the_same_seed_draws_the_same_sample_in_any_order_r8_1_1() {
        let a = draw(42, candidates(50), 5);
        let mut reversed = candidates(50);
        reversed.reverse();
        assert_eq!(a, draw(42, reversed, 5));
        assert_eq!(a.len(), 15);
        assert_ne!(a, draw(43, candidates(50), 5), "another seed, another sample");
        assert_eq!(draw(42, candidates(2), 5).len(), 6, "fewer candidates than asked: all of them");
    }
}
