//! The three-stage review of R3.2.2 and the separation of duties around it, as pure
//! rules over a draft's review state.
//!
//! - A draft is submitted from drafting, changes-requested, rejected or expired; review
//!   starts at the department stage for the current version.
//! - Each stage is decided once per version by one reviewer holding that stage's
//!   permission in the draft's scope (the scope check is the permission authority's).
//! - An author never reviews their own draft, nor does anyone who wrote a version of it;
//!   one person never signs two stages of the same version (R3.2.2).
//! - Approval needs all five criteria of R3.2.3 met; a rejection needs a reason;
//!   changes requested need a comment.
//! - A new version restarts the chain (earlier decisions stay for the record).
//! - After the principal leader's approval, proofreading passes by distinct people are
//!   required before publishing (R3.3.2); the author may proofread.

use govmedia_domain::Error;
use govmedia_domain::ids::UserId;
use govmedia_domain::workflow::{DraftState, ReviewStage};

/// R3.2.2: the review chain.
pub const CHAIN_RULE: &str = "R3.2.2";
/// R3.2.3: the five criteria.
pub const CRITERIA_RULE: &str = "R3.2.3";
/// R3.3.2: proofreading.
pub const PROOFREADING_RULE: &str = "R3.3.2";

/// A reviewer's judgement on one criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Judgement {
    /// Not assessed.
    Unassessed,
    /// Met.
    Met,
    /// Not met.
    NotMet,
}

/// The five review criteria of R3.2.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Criteria {
    /// Legality.
    pub legality: Judgement,
    /// Truthfulness.
    pub truthfulness: Judgement,
    /// Objectivity.
    pub objectivity: Judgement,
    /// Accuracy.
    pub accuracy: Judgement,
    /// Standardisation.
    pub standardisation: Judgement,
}

impl Criteria {
    /// All five met.
    pub const ALL_MET: Criteria = Criteria {
        legality: Judgement::Met,
        truthfulness: Judgement::Met,
        objectivity: Judgement::Met,
        accuracy: Judgement::Met,
        standardisation: Judgement::Met,
    };

    fn named(&self) -> [(&'static str, Judgement); 5] {
        [
            ("legality", self.legality),
            ("truthfulness", self.truthfulness),
            ("objectivity", self.objectivity),
            ("accuracy", self.accuracy),
            ("standardisation", self.standardisation),
        ]
    }

    /// The criteria not met or not assessed.
    pub fn unmet(&self) -> Vec<&'static str> {
        self.named().into_iter().filter(|(_, j)| *j != Judgement::Met).map(|(n, _)| n).collect()
    }
}

/// What a reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The stage passed.
    Approved,
    /// Rejected.
    Rejected,
    /// Back to the author.
    ChangesRequested,
}

/// A decision already recorded on a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PastDecision {
    /// The version decided on.
    pub version: i64,
    /// The stage.
    pub stage: ReviewStage,
    /// The reviewer.
    pub reviewer: UserId,
    /// The outcome.
    pub outcome: Outcome,
}

/// The review state of a draft, as the rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewState {
    /// The draft, for messages.
    pub draft: String,
    /// The author.
    pub author: UserId,
    /// Everyone who wrote a version of it (the author too, usually).
    pub editors: Vec<UserId>,
    /// The state.
    pub state: DraftState,
    /// The current version.
    pub version: i64,
    /// Every decision on every version.
    pub decisions: Vec<PastDecision>,
}

/// A reviewer's decision, as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Who decides.
    pub reviewer: UserId,
    /// The version they read.
    pub version: i64,
    /// The stage they decide.
    pub stage: ReviewStage,
    /// What they decided.
    pub outcome: Outcome,
    /// The criteria as judged.
    pub criteria: Criteria,
    /// The comment or reason.
    pub comment: String,
}

fn subject(state: &ReviewState) -> String {
    format!("draft/{}", state.draft)
}

/// The state after submitting the current version for review.
pub fn submit(state: &ReviewState) -> Result<DraftState, Error> {
    if state.state.is_editable() {
        Ok(DraftState::InReview(ReviewStage::Department))
    } else {
        Err(Error::rule(
            CHAIN_RULE,
            subject(state),
            format!("a draft that is {} cannot be submitted", describe(state.state)),
        ))
    }
}

fn describe(state: DraftState) -> &'static str {
    match state {
        DraftState::Drafting => "being drafted",
        DraftState::InReview(_) => "in review",
        DraftState::ChangesRequested => "back with its author",
        DraftState::Rejected => "rejected",
        DraftState::Approved => "approved",
        DraftState::Expired => "expired",
        DraftState::Published => "published",
        DraftState::Abandoned => "abandoned",
    }
}

/// Checks a decision against the rules and returns the draft's next state. A stale
/// version or stage is a conflict (ABORTED): someone else acted first.
pub fn decide(state: &ReviewState, d: &Decision) -> Result<DraftState, Error> {
    let DraftState::InReview(stage) = state.state else {
        return Err(Error::Conflict(format!("the draft is {}, not in review", describe(state.state))));
    };
    if d.version != state.version {
        return Err(Error::Conflict(format!(
            "version {} was read but the current version is {}",
            d.version, state.version
        )));
    }
    if d.stage != stage {
        return Err(Error::Conflict(format!("the draft is at the {} stage, not {}", stage.as_str(), d.stage.as_str())));
    }
    if d.reviewer == state.author {
        return Err(Error::rule(CHAIN_RULE, subject(state), "an author never reviews their own draft"));
    }
    if state.editors.contains(&d.reviewer) {
        // Otherwise a reviewer could rewrite a colleague's draft with UpdateDraft and
        // approve their own words (issue 18).
        return Err(Error::rule(CHAIN_RULE, subject(state), "nobody reviews a draft they wrote a version of"));
    }
    if state.decisions.iter().any(|p| p.version == state.version && p.reviewer == d.reviewer && p.stage != stage) {
        return Err(Error::rule(CHAIN_RULE, subject(state), "one person never signs two stages of the same version"));
    }
    match d.outcome {
        Outcome::Approved => {
            let unmet = d.criteria.unmet();
            if !unmet.is_empty() {
                return Err(Error::rule(
                    CRITERIA_RULE,
                    subject(state),
                    format!("approval needs all five criteria met; not met: {}", unmet.join(", ")),
                ));
            }
            Ok(stage.next().map_or(DraftState::Approved, DraftState::InReview))
        }
        Outcome::Rejected => {
            if d.comment.trim().is_empty() {
                return Err(Error::invalid("reason", "a rejection needs a reason"));
            }
            Ok(DraftState::Rejected)
        }
        Outcome::ChangesRequested => {
            if d.comment.trim().is_empty() {
                return Err(Error::invalid("comment", "say what must change"));
            }
            Ok(DraftState::ChangesRequested)
        }
    }
}

/// The approvers of the current version, in stage order, once it is approved.
pub fn approvers(state: &ReviewState) -> Vec<UserId> {
    ReviewStage::CHAIN
        .iter()
        .filter_map(|stage| {
            state
                .decisions
                .iter()
                .find(|d| d.version == state.version && d.stage == *stage && d.outcome == Outcome::Approved)
                .map(|d| d.reviewer)
        })
        .collect()
}

/// Checks a proofreading pass: on an approved draft's current version, by someone who
/// has not already signed it.
pub fn check_proofreading(
    state: &ReviewState,
    version: i64,
    proofreader: UserId,
    signed: &[UserId],
) -> Result<(), Error> {
    if state.state != DraftState::Approved {
        return Err(Error::rule(
            PROOFREADING_RULE,
            subject(state),
            "proofreading follows the principal leader's approval",
        ));
    }
    if version != state.version {
        return Err(Error::Conflict(format!(
            "version {version} was read but the current version is {}",
            state.version
        )));
    }
    if signed.contains(&proofreader) {
        return Err(Error::rule(PROOFREADING_RULE, subject(state), "each proofreading pass is by a different person"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> (UserId, UserId, UserId, UserId) {
        (UserId::new(), UserId::new(), UserId::new(), UserId::new())
    }

    fn state(author: UserId, at: DraftState) -> ReviewState {
        ReviewState { draft: "d1".into(), author, editors: vec![author], state: at, version: 1, decisions: vec![] }
    }

    fn approve(reviewer: UserId, stage: ReviewStage) -> Decision {
        Decision {
            reviewer,
            version: 1,
            stage,
            outcome: Outcome::Approved,
            criteria: Criteria::ALL_MET,
            comment: "ok".into(),
        }
    }

    fn record(s: &mut ReviewState, d: &Decision) {
        s.state = decide(s, d).expect("allowed");
        s.decisions.push(PastDecision { version: d.version, stage: d.stage, reviewer: d.reviewer, outcome: d.outcome });
    }

    #[test]
    fn the_chain_runs_department_supervising_principal_r3_2_2() {
        let (author, a, b, c) = users();
        let mut s = state(author, DraftState::Drafting);
        s.state = submit(&s).expect("submits");
        record(&mut s, &approve(a, ReviewStage::Department));
        assert_eq!(s.state, DraftState::InReview(ReviewStage::SupervisingLeader));
        record(&mut s, &approve(b, ReviewStage::SupervisingLeader));
        record(&mut s, &approve(c, ReviewStage::PrincipalLeader));
        assert_eq!(s.state, DraftState::Approved);
        assert_eq!(approvers(&s), [a, b, c]);
    }

    #[test]
    fn nobody_reviews_a_draft_they_wrote_a_version_of_r3_2_2() {
        let (author, a, b, _) = users();
        let mut s = state(author, DraftState::InReview(ReviewStage::Department));
        s.editors.push(a);
        let err = decide(&s, &approve(a, ReviewStage::Department)).expect_err("wrote version 2");
        assert!(format!("{err}").contains("wrote a version"), "{err}");
        assert!(decide(&s, &approve(b, ReviewStage::Department)).is_ok());
    }

    #[test]
    fn an_author_never_reviews_their_own_draft_r3_2_2() {
        let (author, ..) = users();
        let s = state(author, DraftState::InReview(ReviewStage::Department));
        let err = decide(&s, &approve(author, ReviewStage::Department)).expect_err("own draft");
        assert!(matches!(err, Error::RuleViolated(ref v) if v[0].rule_id == CHAIN_RULE), "{err:?}");
    }

    #[test]
    fn one_person_never_signs_two_stages_of_a_version_r3_2_2() {
        let (author, a, ..) = users();
        let mut s = state(author, DraftState::InReview(ReviewStage::Department));
        record(&mut s, &approve(a, ReviewStage::Department));
        let err = decide(&s, &approve(a, ReviewStage::SupervisingLeader)).expect_err("second stage");
        assert!(matches!(err, Error::RuleViolated(ref v) if v[0].description.contains("two stages")), "{err:?}");
    }

    #[test]
    fn approval_needs_all_five_criteria_r3_2_3() {
        let (author, a, ..) = users();
        let s = state(author, DraftState::InReview(ReviewStage::Department));
        let mut d = approve(a, ReviewStage::Department);
        d.criteria.accuracy = Judgement::NotMet;
        d.criteria.objectivity = Judgement::Unassessed;
        let err = decide(&s, &d).expect_err("criteria");
        match err {
            Error::RuleViolated(v) => {
                assert_eq!(v[0].rule_id, CRITERIA_RULE);
                assert!(v[0].description.contains("objectivity, accuracy"), "{}", v[0].description);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stale_versions_and_stages_are_conflicts() {
        let (author, a, ..) = users();
        let mut s = state(author, DraftState::InReview(ReviewStage::SupervisingLeader));
        s.version = 2;
        assert!(
            matches!(decide(&s, &approve(a, ReviewStage::SupervisingLeader)), Err(Error::Conflict(_))),
            "version 1 read"
        );
        let mut d = approve(a, ReviewStage::Department);
        d.version = 2;
        assert!(matches!(decide(&s, &d), Err(Error::Conflict(_))), "stage already passed");
    }

    #[test]
    fn a_new_version_restarts_the_chain_and_old_signatures_do_not_count() {
        let (author, a, b, _) = users();
        let mut s = state(author, DraftState::InReview(ReviewStage::Department));
        record(&mut s, &approve(a, ReviewStage::Department));
        let mut changes = approve(b, ReviewStage::SupervisingLeader);
        changes.outcome = Outcome::ChangesRequested;
        changes.comment = "add the date of the event".into();
        record(&mut s, &changes);
        assert_eq!(s.state, DraftState::ChangesRequested);
        s.version = 2;
        s.state = submit(&s).expect("resubmits");
        assert_eq!(s.state, DraftState::InReview(ReviewStage::Department));
        // b signed version 1's second stage; on version 2 b may sign the first.
        let mut d = approve(b, ReviewStage::Department);
        d.version = 2;
        decide(&s, &d).expect("a new version is a new chain");
    }

    #[test]
    fn rejection_needs_a_reason_and_proofreading_needs_distinct_people_r3_3_2() {
        let (author, a, b, _) = users();
        let s = state(author, DraftState::InReview(ReviewStage::Department));
        let mut d = approve(a, ReviewStage::Department);
        d.outcome = Outcome::Rejected;
        d.comment = " ".into();
        assert!(matches!(decide(&s, &d), Err(Error::InvalidArgument(_))));

        let approved = state(author, DraftState::Approved);
        check_proofreading(&approved, 1, author, &[]).expect("the author may proofread");
        let err = check_proofreading(&approved, 1, a, &[a]).expect_err("twice");
        assert!(matches!(err, Error::RuleViolated(ref v) if v[0].rule_id == PROOFREADING_RULE));
        let in_review = state(author, DraftState::InReview(ReviewStage::Department));
        assert!(check_proofreading(&in_review, 1, b, &[]).is_err(), "not before approval");
    }
}
