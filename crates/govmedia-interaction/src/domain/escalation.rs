//! Escalations: a reply deadline missed is raised to the head of the responsible
//! department (R4.1.1, R4.2.1, R4.2.2). Listing what is overdue is not enough: nobody
//! looks at a list nobody is told about. The deadline watch raises one escalation per
//! missed deadline; the department head acknowledges it; it resolves itself when the
//! item is answered.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, EscalationId, PlatformAccountId, UserId};

/// What missed its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EscalatedItem {
    /// A public comment without a first response.
    Comment,
    /// A conversation with an inbound message waiting for an answer.
    Conversation,
    /// A referral without the receiving department's outcome.
    Referral,
}

impl EscalatedItem {
    /// Every kind, in the order the watch looks at them.
    pub const ALL: [EscalatedItem; 3] = [Self::Comment, Self::Conversation, Self::Referral];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Comment => "comment",
            Self::Conversation => "conversation",
            Self::Referral => "referral",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The rule whose deadline it is.
    pub const fn rule(self) -> &'static str {
        match self {
            Self::Comment => "R4.1.1",
            Self::Conversation => "R4.2.1",
            Self::Referral => "R4.2.2",
        }
    }

    /// The audit action of raising it.
    pub const fn escalated(self) -> AuditAction {
        match self {
            Self::Comment => AuditAction::CommentEscalated,
            Self::Conversation => AuditAction::ConversationEscalated,
            Self::Referral => AuditAction::ReferralEscalated,
        }
    }
}

/// Where an escalation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationState {
    /// Raised; nobody has taken it in hand.
    Open,
    /// The department head has seen it.
    Acknowledged,
    /// The item was answered or closed.
    Resolved,
}

impl EscalationState {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Acknowledged, Self::Resolved].into_iter().find(|k| k.as_str() == s)
    }
}

/// An item found past its deadline, not yet escalated for that deadline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    /// What it is.
    pub item: EscalatedItem,
    /// The comment, conversation or referral id.
    pub item_id: String,
    /// Its account.
    pub account: PlatformAccountId,
    /// The referral's receiving department; none for comments and conversations (their
    /// account's department is asked of identity).
    pub department: Option<DepartmentId>,
    /// The deadline missed.
    pub due_at: DateTime<Utc>,
}

/// One missed deadline raised to a department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    /// Id.
    pub id: EscalationId,
    /// What missed its deadline.
    pub item: EscalatedItem,
    /// The comment, conversation or referral id.
    pub item_id: String,
    /// The account.
    pub account: PlatformAccountId,
    /// The department responsible; none when the account belongs to none.
    pub department: Option<DepartmentId>,
    /// The deadline missed.
    pub due_at: DateTime<Utc>,
    /// When raised.
    pub escalated_at: DateTime<Utc>,
    /// Where it is.
    pub state: EscalationState,
    /// Who acknowledged it.
    pub acknowledged_by: Option<UserId>,
    /// When.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The department head's note.
    pub note: String,
    /// When resolved.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Version (etag).
    pub version: i64,
}

/// The longest note on acknowledging.
pub const MAX_NOTE_CHARS: usize = 2_000;

impl Escalation {
    /// Raises `overdue` for `department` at `now`.
    pub fn raise(overdue: Overdue, department: Option<DepartmentId>, now: DateTime<Utc>) -> Self {
        Self {
            id: EscalationId::new(),
            item: overdue.item,
            item_id: overdue.item_id,
            account: overdue.account,
            department,
            due_at: overdue.due_at,
            escalated_at: now,
            state: EscalationState::Open,
            acknowledged_by: None,
            acknowledged_at: None,
            note: String::new(),
            resolved_at: None,
            version: 1,
        }
    }

    /// `who` takes it in hand at `now`; only an open escalation can be acknowledged.
    pub fn acknowledge(&mut self, who: UserId, note: String, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if self.state != EscalationState::Open {
            return Err(Error::rule(
                self.item.rule(),
                format!("escalation/{}", self.id),
                format!("an {} escalation cannot be acknowledged", self.state.as_str()),
            ));
        }
        self.state = EscalationState::Acknowledged;
        (self.acknowledged_by, self.acknowledged_at, self.note) = (Some(who), Some(now), note);
        self.version += 1;
        Ok(AuditAction::EscalationAcknowledged)
    }

    /// The item was answered or closed: nothing is left to chase.
    pub fn resolve(&mut self, now: DateTime<Utc>) -> AuditAction {
        self.state = EscalationState::Resolved;
        self.resolved_at = Some(now);
        self.version += 1;
        AuditAction::EscalationResolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raised() -> Escalation {
        let overdue = Overdue {
            item: EscalatedItem::Comment,
            item_id: "c".into(),
            account: PlatformAccountId::new(),
            department: None,
            due_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        Escalation::raise(overdue, Some(DepartmentId::new()), DateTime::<Utc>::UNIX_EPOCH)
    }

    #[test]
    fn an_escalation_is_acknowledged_once_and_never_after_it_resolved_r4_1_1() {
        let now = DateTime::<Utc>::UNIX_EPOCH;
        let mut e = raised();
        let action = e.acknowledge(UserId::new(), "on it".into(), now).expect("an open escalation");
        assert_eq!(action, AuditAction::EscalationAcknowledged);
        assert_eq!(e.state, EscalationState::Acknowledged);
        assert!(matches!(e.acknowledge(UserId::new(), String::new(), now), Err(Error::RuleViolated(_))));

        let mut resolved = raised();
        resolved.resolve(now);
        let refused = resolved.acknowledge(UserId::new(), String::new(), now).expect_err("resolved");
        assert!(refused.to_string().contains("R4.1.1"), "{refused}");
        assert_eq!(resolved.version, 2, "a refused acknowledgement changes nothing");
    }

    #[test]
    fn each_item_names_the_rule_of_its_deadline() {
        let rules: Vec<_> = EscalatedItem::ALL.iter().map(|i| i.rule()).collect();
        assert_eq!(rules, ["R4.1.1", "R4.2.1", "R4.2.2"]);
        for item in EscalatedItem::ALL {
            assert_eq!(EscalatedItem::parse(item.as_str()), Some(item));
        }
    }
}
