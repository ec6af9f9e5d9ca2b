//! Conversations and referrals (R4.2): the states, the moves between them, and the cap
//! on open conversations per person.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{ConversationId, DepartmentId, MessageId, PlatformAccountId, ReferralId, UserId};

use super::comment::named;

named! {
    /// Where a conversation is.
    ConversationState {
        /// The last inbound message waits for a response.
        AwaitingResponse => "awaiting_response",
        /// Answered.
        Answered => "answered",
        /// Closed.
        Closed => "closed",
    }
}

named! {
    /// Where a referral is (R4.2.2).
    ReferralState {
        /// Sent; not yet acknowledged.
        Sent => "sent",
        /// Acknowledged by the department.
        Acknowledged => "acknowledged",
        /// The department recorded its outcome.
        OutcomeRecorded => "outcome_recorded",
        /// Closed.
        Closed => "closed",
    }
}

named! {
    /// Which way a private message went.
    Direction {
        /// From the public.
        Inbound => "inbound",
        /// From the account.
        Outbound => "outbound",
    }
}

fn closed(conversation: &str, what: &str) -> Error {
    Error::rule("R4.2.1", format!("conversation/{conversation}"), format!("a closed conversation cannot be {what}"))
}

/// Work on a conversation (assign, reply, mark, refer) needs it open.
pub fn check_open(conversation: &str, state: ConversationState, what: &str) -> Result<(), Error> {
    if state == ConversationState::Closed { Err(closed(conversation, what)) } else { Ok(()) }
}

/// Assigning to a person who already holds `open` conversations, with `cap` allowed.
pub fn check_assignment_cap(assignee: &str, open: u32, cap: u32) -> Result<(), Error> {
    if open >= cap {
        return Err(Error::rule(
            "R4.2.1",
            format!("user/{assignee}"),
            format!("already handles {open} open conversations; the cap is {cap}"),
        ));
    }
    Ok(())
}

fn referral_refusal(referral: &str, from: ReferralState, what: &str) -> Error {
    Error::rule("R4.2.2", format!("referral/{referral}"), format!("a {} referral cannot be {what}", from.as_str()))
}

/// Acknowledging: only a sent referral.
pub fn acknowledge(referral: &str, from: ReferralState) -> Result<ReferralState, Error> {
    if from == ReferralState::Sent {
        Ok(ReferralState::Acknowledged)
    } else {
        Err(referral_refusal(referral, from, "acknowledged"))
    }
}

/// Recording the outcome: a sent or acknowledged referral (answering acknowledges).
pub fn record_outcome(referral: &str, from: ReferralState) -> Result<ReferralState, Error> {
    match from {
        ReferralState::Sent | ReferralState::Acknowledged => Ok(ReferralState::OutcomeRecorded),
        _ => Err(referral_refusal(referral, from, "given an outcome")),
    }
}

/// Closing: only once the outcome is recorded (R4.2.2: forwarded and followed through).
pub fn close(referral: &str, from: ReferralState) -> Result<ReferralState, Error> {
    if from == ReferralState::OutcomeRecorded {
        Ok(ReferralState::Closed)
    } else {
        Err(referral_refusal(referral, from, "closed before its outcome is recorded"))
    }
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Id.
    pub id: ConversationId,
    /// The account.
    pub account: PlatformAccountId,
    /// The correspondent's platform id.
    pub correspondent_platform_id: String,
    /// The correspondent's name.
    pub correspondent_name: String,
    /// State.
    pub state: ConversationState,
    /// Who handles it.
    pub assignee: Option<UserId>,
    /// Marked important (R4.2.2).
    pub important: bool,
    /// The important record.
    pub important_note: String,
    /// Who marked it.
    pub marked_important_by: Option<UserId>,
    /// Messages.
    pub message_count: i32,
    /// Latest message.
    pub last_message_at: DateTime<Utc>,
    /// The oldest unanswered inbound message.
    pub awaiting_since: Option<DateTime<Utc>>,
    /// When its answer is due.
    pub response_due_at: Option<DateTime<Utc>>,
    /// First-response target in business minutes.
    pub response_target_minutes: i32,
    /// The first inbound message.
    pub first_inbound_at: DateTime<Utc>,
    /// The first response.
    pub first_response_at: Option<DateTime<Utc>>,
    /// Who gave it.
    pub first_responder: Option<UserId>,
    /// When the first response was due.
    pub first_response_due_at: DateTime<Utc>,
    /// Began.
    pub created_at: DateTime<Utc>,
    /// Version (etag).
    pub version: i64,
}

impl Conversation {
    /// The current response deadline passed without a response.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == ConversationState::AwaitingResponse && self.response_due_at.is_some_and(|due| now > due)
    }
}

impl Conversation {
    /// A conversation opened by a correspondent's first message on `account` (R4.2.1):
    /// awaiting a response, its first answer due at `first_response_due_at`.
    pub fn open(
        account: PlatformAccountId,
        correspondent_platform_id: String,
        correspondent_name: String,
        first_message_at: DateTime<Utc>,
        (target_minutes, first_response_due_at): (u32, DateTime<Utc>),
        now: DateTime<Utc>,
    ) -> Self {
        Conversation {
            id: ConversationId::new(),
            account,
            correspondent_platform_id,
            correspondent_name,
            state: ConversationState::AwaitingResponse,
            assignee: None,
            important: false,
            important_note: String::new(),
            marked_important_by: None,
            message_count: 0,
            last_message_at: first_message_at,
            awaiting_since: None,
            response_due_at: None,
            response_target_minutes: i32::try_from(target_minutes).unwrap_or(i32::MAX),
            first_inbound_at: first_message_at,
            first_response_at: None,
            first_responder: None,
            first_response_due_at,
            created_at: now,
            version: 1,
        }
    }

    /// The next message in it, either way.
    fn next_message(&self, direction: Direction, text: String, findings: String, sent_at: DateTime<Utc>) -> Message {
        Message {
            id: MessageId::new(),
            conversation: self.id,
            account: self.account,
            direction,
            platform_message_id: String::new(),
            text,
            author: None,
            screening_findings: findings,
            sent_at,
            seq: i64::from(self.message_count) + 1,
        }
    }

    /// The correspondent's next message, as it is to be stored.
    pub fn inbound(
        &self,
        platform_message_id: String,
        text: String,
        findings: String,
        sent_at: DateTime<Utc>,
    ) -> Message {
        Message { platform_message_id, ..self.next_message(Direction::Inbound, text, findings, sent_at) }
    }

    /// `message` from the correspondent was stored: the conversation awaits a response
    /// again, its answer due from the oldest unanswered message (`due` says when, from
    /// that time) (R4.2.1). A name the platform now gives replaces the one known.
    pub fn received(
        &mut self,
        message: &Message,
        name: String,
        due: impl FnOnce(DateTime<Utc>) -> Result<DateTime<Utc>, Error>,
    ) -> Result<(), Error> {
        self.message_count += 1;
        self.last_message_at = self.last_message_at.max(message.sent_at);
        if !name.is_empty() {
            self.correspondent_name = name;
        }
        self.state = ConversationState::AwaitingResponse;
        if self.awaiting_since.is_none() {
            self.awaiting_since = Some(message.sent_at);
            self.response_due_at = Some(due(message.sent_at)?);
        }
        Ok(())
    }

    /// `author` answers with `text` at `now`: the outbound message to store; the
    /// conversation is answered, the first response recorded once (R4.2.1), and its
    /// version moves on.
    pub fn answer(&mut self, author: UserId, text: String, findings: String, now: DateTime<Utc>) -> Message {
        let message = Message { author: Some(author), ..self.next_message(Direction::Outbound, text, findings, now) };
        self.message_count += 1;
        self.last_message_at = now;
        self.state = ConversationState::Answered;
        self.awaiting_since = None;
        self.response_due_at = None;
        if self.first_response_at.is_none() {
            self.first_response_at = Some(now);
            self.first_responder = Some(author);
        }
        self.version += 1;
        message
    }
}

/// A private message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// The conversation.
    pub conversation: ConversationId,
    /// The account.
    pub account: PlatformAccountId,
    /// Which way.
    pub direction: Direction,
    /// The platform's message id ('' for outbound not yet posted).
    pub platform_message_id: String,
    /// The text.
    pub text: String,
    /// The staff author of an outbound message.
    pub author: Option<UserId>,
    /// Findings (stored form).
    pub screening_findings: String,
    /// When sent.
    pub sent_at: DateTime<Utc>,
    /// Order within the conversation.
    pub seq: i64,
}

/// A referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// Id.
    pub id: ReferralId,
    /// The conversation.
    pub conversation: ConversationId,
    /// The account.
    pub account: PlatformAccountId,
    /// The receiving department.
    pub department: DepartmentId,
    /// What is asked.
    pub summary: String,
    /// State.
    pub state: ReferralState,
    /// When the outcome is due.
    pub due_at: DateTime<Utc>,
    /// Who referred it.
    pub referred_by: UserId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Who acknowledged.
    pub acknowledged_by: Option<UserId>,
    /// When.
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// The outcome.
    pub outcome: String,
    /// Who recorded it.
    pub outcome_recorded_by: Option<UserId>,
    /// When.
    pub outcome_at: Option<DateTime<Utc>>,
    /// When closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Version (etag).
    pub version: i64,
}

impl Referral {
    /// Not closed with an outcome by the due time.
    pub fn overdue(&self, now: DateTime<Utc>) -> bool {
        self.outcome_at.unwrap_or(now) > self.due_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ReferralState as R;

    #[test]
    fn a_referral_runs_sent_acknowledged_outcome_closed_r4_2_2() {
        assert_eq!(acknowledge("r", R::Sent).ok(), Some(R::Acknowledged));
        assert!(acknowledge("r", R::Acknowledged).is_err());
        assert_eq!(record_outcome("r", R::Sent).ok(), Some(R::OutcomeRecorded));
        assert_eq!(record_outcome("r", R::Acknowledged).ok(), Some(R::OutcomeRecorded));
        assert!(record_outcome("r", R::Closed).is_err());
        assert!(close("r", R::Acknowledged).is_err());
        assert_eq!(close("r", R::OutcomeRecorded).ok(), Some(R::Closed));
    }

    #[test]
    fn the_cap_counts_open_conversations() {
        assert!(check_assignment_cap("u", 19, 20).is_ok());
        let Err(Error::RuleViolated(v)) = check_assignment_cap("u", 20, 20) else { panic!("at the cap") };
        assert_eq!(v[0].rule_id, "R4.2.1");
        assert!(check_open("c", ConversationState::Answered, "assigned").is_ok());
        assert!(check_open("c", ConversationState::Closed, "assigned").is_err());
    }
}
