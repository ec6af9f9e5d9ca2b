//! Conversations and referrals (R4.2): the states, the moves between them, and the cap
//! on open conversations per person.

use govmedia_domain::Error;

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
