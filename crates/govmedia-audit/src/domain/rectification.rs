//! Rectification orders (R8.1.2): a problem found is rectified, and the rectification is
//! tracked to the end. An order names the department and the person responsible, what
//! must change and by when (working days on the business calendar); the person
//! responsible submits evidence of the fix, and someone of the issuing office other than
//! that person verifies it or returns it.

use chrono::{DateTime, Days, NaiveDate, Utc, Weekday};
use chrono_tz::Tz;
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::holidays::OfficialCalendar;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PrincipalId, RectificationId, UserId};
use serde::{Deserialize, Serialize};

use crate::domain::compliance::start_of;

/// The rule every order serves.
pub const RULE: &str = "R8.1.2";
/// Most working days an order may give.
pub const MAX_WORKING_DAYS: u32 = 90;
/// The working weekdays of a government office.
pub const WORKING_WEEKDAYS: [Weekday; 5] = [Weekday::Mon, Weekday::Tue, Weekday::Wed, Weekday::Thu, Weekday::Fri];

/// What found the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// A security check's hidden-danger finding.
    SecurityCheck,
    /// An inspection or spot check.
    Inspection,
    /// A security incident.
    Incident,
    /// Public feedback.
    PublicFeedback,
    /// The inspection-readiness monitor.
    Compliance,
    /// A recorded violation.
    Violation,
    /// Anything else.
    Other,
}

impl Source {
    const ALL: [Source; 7] = [
        Source::SecurityCheck,
        Source::Inspection,
        Source::Incident,
        Source::PublicFeedback,
        Source::Compliance,
        Source::Violation,
        Source::Other,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::SecurityCheck => "security_check",
            Source::Inspection => "inspection",
            Source::Incident => "incident",
            Source::PublicFeedback => "public_feedback",
            Source::Compliance => "compliance",
            Source::Violation => "violation",
            Source::Other => "other",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Being fixed (issued, or returned).
    InProgress,
    /// Evidence submitted, waiting for verification.
    Submitted,
    /// Verified: closed.
    Verified,
    /// Cancelled by the issuing office.
    Cancelled,
}

impl State {
    const ALL: [State; 4] = [State::InProgress, State::Submitted, State::Verified, State::Cancelled];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::InProgress => "in_progress",
            State::Submitted => "submitted",
            State::Verified => "verified",
            State::Cancelled => "cancelled",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Not closed yet: being fixed or waiting for verification.
    pub const fn is_open(self) -> bool {
        matches!(self, State::InProgress | State::Submitted)
    }
}

/// Evidence of a fix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Evidence {
    /// What was done.
    pub description: String,
    /// Where the evidence is kept.
    pub uri: String,
    /// SHA-256 of the evidence file, hex.
    pub sha256: String,
}

/// What an order is issued with, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRectification {
    /// What found the problem.
    pub source: Source,
    /// The finding's id in its register.
    pub source_id: String,
    /// The department that must rectify.
    pub department: DepartmentId,
    /// The person responsible.
    pub responsible: UserId,
    /// The account concerned.
    pub account: Option<PlatformAccountId>,
    /// A short title.
    pub title: String,
    /// What must change.
    pub requirement: String,
    /// The rule broken.
    pub rule_id: String,
    /// Working days given.
    pub working_days: u32,
}

/// A rectification order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rectification {
    /// The id.
    pub id: RectificationId,
    /// What it was issued with.
    pub order: NewRectification,
    /// The last day to rectify, in the bureau's zone.
    pub due_date: NaiveDate,
    /// The end of that day.
    pub due_at: DateTime<Utc>,
    /// Where it stands.
    pub state: State,
    /// Who issued it.
    pub issued_by: PrincipalId,
    /// When.
    pub issued_at: DateTime<Utc>,
    /// The last evidence submitted.
    pub evidence: Option<Evidence>,
    /// When it was last submitted.
    pub submitted_at: Option<DateTime<Utc>>,
    /// Who verified, returned or cancelled it last.
    pub verified_by: Option<PrincipalId>,
    /// When.
    pub verified_at: Option<DateTime<Utc>>,
    /// The verifier's note or the reason.
    pub note: String,
    /// How many times evidence was returned.
    pub return_count: u32,
    /// When it was closed (verified or cancelled).
    pub closed_at: Option<DateTime<Utc>>,
    /// The row version.
    pub version: i64,
}

/// The last day of `working_days` working days counted from the day after `issued`
/// (a Friday order of 5 working days is due the next Friday; holidays and make-up
/// working days of the official schedule count as the schedule says).
pub fn due_date(issued: NaiveDate, working_days: u32, calendar: &OfficialCalendar) -> NaiveDate {
    let mut date = issued;
    let mut left = working_days.max(1);
    // The official schedule never has more than ~10 days off in a row: 4 × the days
    // asked is far past any answer, and bounds the walk.
    for _ in 0..(working_days.max(1) * 4 + 30) {
        date = date + Days::new(1);
        if calendar.is_working_day(date, &WORKING_WEEKDAYS) {
            left -= 1;
            if left == 0 {
                return date;
            }
        }
    }
    date
}

impl Rectification {
    /// A new order issued by `by` at `now`, due after its working days in `zone`.
    pub fn issue(
        order: NewRectification,
        by: PrincipalId,
        now: DateTime<Utc>,
        zone: Tz,
        calendar: &OfficialCalendar,
    ) -> Self {
        let due_date = due_date(now.with_timezone(&zone).date_naive(), order.working_days, calendar);
        Self {
            id: RectificationId::new(),
            order,
            due_date,
            due_at: start_of(due_date + Days::new(1), zone),
            state: State::InProgress,
            issued_by: by,
            issued_at: now,
            evidence: None,
            submitted_at: None,
            verified_by: None,
            verified_at: None,
            note: String::new(),
            return_count: 0,
            closed_at: None,
            version: 1,
        }
    }

    /// Not closed and past its deadline at `now`.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.state.is_open() && now >= self.due_at
    }

    fn subject(&self) -> String {
        format!("rectification {}", self.id)
    }

    /// The person responsible submits evidence of the fix.
    pub fn submit(&mut self, by: PrincipalId, evidence: Evidence, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if self.state != State::InProgress {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: evidence is submitted while it is being fixed", self.state.as_str()),
            ));
        }
        if by.as_uuid() != self.order.responsible.as_uuid() {
            return Err(Error::rule(
                RULE,
                self.subject(),
                "only the person responsible named on the order submits its evidence",
            ));
        }
        self.state = State::Submitted;
        self.evidence = Some(evidence);
        self.submitted_at = Some(now);
        self.version += 1;
        Ok(AuditAction::RectificationEvidenceSubmitted)
    }

    /// The issuing office verifies the evidence: accepted closes the order, otherwise it
    /// goes back to the person responsible.
    pub fn verify(
        &mut self,
        by: PrincipalId,
        accepted: bool,
        note: String,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if self.state != State::Submitted {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: only submitted evidence is verified", self.state.as_str()),
            ));
        }
        if by.as_uuid() == self.order.responsible.as_uuid() {
            return Err(Error::rule(RULE, self.subject(), "the person responsible does not verify their own fix"));
        }
        self.verified_by = Some(by);
        self.verified_at = Some(now);
        self.note = note;
        self.version += 1;
        if accepted {
            self.state = State::Verified;
            self.closed_at = Some(now);
            Ok(AuditAction::RectificationVerified)
        } else {
            self.state = State::InProgress;
            self.return_count += 1;
            Ok(AuditAction::RectificationReturned)
        }
    }

    /// The issuing office cancels an order issued in error.
    pub fn cancel(&mut self, by: PrincipalId, reason: String, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if !self.state.is_open() {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: a closed order stays as it is", self.state.as_str()),
            ));
        }
        self.state = State::Cancelled;
        self.verified_by = Some(by);
        self.verified_at = Some(now);
        self.closed_at = Some(now);
        self.note = reason;
        self.version += 1;
        Ok(AuditAction::RectificationCancelled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn deadlines_count_working_days_of_the_official_schedule_r8_1_2() {
        let calendar = OfficialCalendar::shipped();
        // Friday 2026-11-27 + 5 working days: Friday 2026-12-04.
        assert_eq!(due_date(d("2026-11-27"), 5, &calendar), d("2026-12-04"));
        // Across the 2026 National Day holiday (1-7 October): issued Tuesday 2026-09-29,
        // 3 working days are 30 September, 8 and 9 October.
        assert_eq!(due_date(d("2026-09-29"), 3, &calendar), d("2026-10-09"));
        // The make-up Saturday 2026-10-10 (调休) works.
        assert_eq!(due_date(d("2026-10-08"), 2, &calendar), d("2026-10-10"));
    }

    fn order(responsible: UserId) -> Rectification {
        Rectification::issue(
            NewRectification {
                source: Source::Inspection,
                source_id: String::new(),
                department: DepartmentId::new(),
                responsible,
                account: None,
                title: "t".into(),
                requirement: "r".into(),
                rule_id: "R3.2.3".into(),
                working_days: 5,
            },
            PrincipalId::from_uuid(uuid::Uuid::now_v7()),
            "2026-11-27T02:00:00Z".parse().expect("time"),
            chrono_tz::Asia::Shanghai,
            &OfficialCalendar::shipped(),
        )
    }

    #[test]
    fn only_the_responsible_person_submits_and_never_verifies_their_own_fix_r8_1_2() {
        let person = UserId::new();
        let me = PrincipalId::from_uuid(person.as_uuid());
        let office = PrincipalId::from_uuid(uuid::Uuid::now_v7());
        let now: DateTime<Utc> = "2026-11-30T02:00:00Z".parse().expect("time");
        let mut r = order(person);
        assert_eq!(r.due_at.to_rfc3339(), "2026-12-04T16:00:00+00:00", "the end of the due date in Beijing");
        assert!(r.submit(office, Evidence::default(), now).is_err());
        assert_eq!(
            r.submit(me, Evidence::default(), now).expect("submitted"),
            AuditAction::RectificationEvidenceSubmitted
        );
        assert!(r.verify(me, true, String::new(), now).is_err());
        assert_eq!(
            r.verify(office, false, "no proof".into(), now).expect("returned"),
            AuditAction::RectificationReturned
        );
        assert_eq!((r.state, r.return_count), (State::InProgress, 1));
        r.submit(me, Evidence::default(), now).expect("again");
        r.verify(office, true, String::new(), now).expect("verified");
        assert_eq!(r.state, State::Verified);
        assert!(!r.is_overdue(r.due_at + chrono::Duration::days(1)), "a closed order is never overdue");
        assert!(r.cancel(office, "x".into(), now).is_err());
    }

    #[test]
    fn an_open_order_is_overdue_from_the_end_of_its_due_date() {
        let r = order(UserId::new());
        assert!(!r.is_overdue(r.due_at - chrono::Duration::seconds(1)));
        assert!(r.is_overdue(r.due_at));
    }
}
