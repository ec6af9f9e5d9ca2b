//! Public supervision (R8.2.1, R8.2.2): feedback from the public about the accounts,
//! triaged to the responsible department with a deadline in working days, answered to
//! the person, and closed with the adjustment it led to (or why none was needed).

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::holidays::OfficialCalendar;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PrincipalId, PublicFeedbackId};
use govmedia_domain::personal::{PersonalDataKind, mask_all};
use serde::{Deserialize, Serialize};

use crate::domain::compliance::start_of;
use crate::domain::rectification::due_date;

/// The rule receiving and answering serves.
pub const RULE: &str = "R8.2.1";
/// The rule closing with an adjustment serves.
pub const ADJUSTMENT_RULE: &str = "R8.2.2";
/// Working days to answer when triage names none.
pub const DEFAULT_WORKING_DAYS: u32 = 10;
/// Most working days triage may give.
pub const MAX_WORKING_DAYS: u32 = 60;

/// How the feedback arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The hotline.
    Hotline,
    /// A letter.
    Letter,
    /// E-mail.
    Email,
    /// A platform's report.
    PlatformReport,
    /// A comment marked as a complaint.
    CommentComplaint,
    /// In person.
    InPerson,
}

impl Channel {
    const ALL: [Channel; 6] = [
        Channel::Hotline,
        Channel::Letter,
        Channel::Email,
        Channel::PlatformReport,
        Channel::CommentComplaint,
        Channel::InPerson,
    ];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Hotline => "hotline",
            Channel::Letter => "letter",
            Channel::Email => "email",
            Channel::PlatformReport => "platform_report",
            Channel::CommentComplaint => "comment_complaint",
            Channel::InPerson => "in_person",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// Where feedback stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Recorded.
    Received,
    /// With a department.
    Triaged,
    /// Answered.
    Answered,
    /// Closed with its adjustments.
    Closed,
}

impl State {
    const ALL: [State; 4] = [State::Received, State::Triaged, State::Answered, State::Closed];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Received => "received",
            State::Triaged => "triaged",
            State::Answered => "answered",
            State::Closed => "closed",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What an adjustment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustmentKind {
    /// A correction draft in content.
    CorrectionDraft,
    /// A rectification order.
    Rectification,
    /// A changed moderation rule in interaction.
    ModerationRule,
}

/// An adjustment the feedback led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adjustment {
    /// What it is.
    pub kind: AdjustmentKind,
    /// Its id in the service that owns it.
    pub id: String,
    /// What was changed.
    pub note: String,
}

/// What the public said, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// How it arrived.
    pub channel: Channel,
    /// When.
    pub received_at: DateTime<Utc>,
    /// The account it is about.
    pub account: Option<PlatformAccountId>,
    /// The comment marked as a complaint.
    pub comment_id: String,
    /// A short subject.
    pub subject: String,
    /// What the person said.
    pub content: String,
    /// Their name as given.
    pub contact_name: String,
    /// A phone number or e-mail address.
    pub contact: String,
}

/// A piece of public feedback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicFeedback {
    /// The id.
    pub id: PublicFeedbackId,
    /// What was received.
    pub received: Received,
    /// Where it stands.
    pub state: State,
    /// The responsible department.
    pub department: Option<DepartmentId>,
    /// Working days given.
    pub working_days: u32,
    /// The last day to answer.
    pub due_date: Option<NaiveDate>,
    /// The end of it.
    pub due_at: Option<DateTime<Utc>>,
    /// The answer given.
    pub answer: String,
    /// How it was given.
    pub answer_channel: String,
    /// Who answered.
    pub answered_by: Option<PrincipalId>,
    /// When.
    pub answered_at: Option<DateTime<Utc>>,
    /// The adjustments it led to.
    pub adjustments: Vec<Adjustment>,
    /// Why none was needed.
    pub no_adjustment_reason: String,
    /// When closed.
    pub closed_at: Option<DateTime<Utc>>,
    /// Who recorded it.
    pub recorded_by: PrincipalId,
    /// The row version.
    pub version: i64,
}

/// A contact shown to those who do not answer: a mobile number as carriers print it
/// masked, an e-mail address with its local part hidden, anything else but its first
/// character.
pub fn mask_contact(contact: &str) -> String {
    let trimmed = contact.trim();
    if trimmed.chars().all(|c| c.is_ascii_digit()) && trimmed.len() == 11 {
        return PersonalDataKind::MobileNumber.mask(trimmed);
    }
    if let Some((local, domain)) = trimmed.split_once('@') {
        let first: String = local.chars().take(1).collect();
        return format!("{first}***@{domain}");
    }
    mask_name(trimmed)
}

/// A name shown masked: its first character, the rest `*`.
pub fn mask_name(name: &str) -> String {
    name.chars().enumerate().map(|(i, c)| if i == 0 { c } else { '*' }).collect()
}

/// Text shown in lists and records: personal numbers in it masked.
pub fn masked_text(text: &str) -> String {
    mask_all(text)
}

impl PublicFeedback {
    /// Feedback recorded by `by` at `now`.
    pub fn record(received: Received, by: PrincipalId) -> Self {
        Self {
            id: PublicFeedbackId::new(),
            received,
            state: State::Received,
            department: None,
            working_days: 0,
            due_date: None,
            due_at: None,
            answer: String::new(),
            answer_channel: String::new(),
            answered_by: None,
            answered_at: None,
            adjustments: Vec::new(),
            no_adjustment_reason: String::new(),
            closed_at: None,
            recorded_by: by,
            version: 1,
        }
    }

    fn subject(&self) -> String {
        format!("public feedback {}", self.id)
    }

    /// Not answered by its deadline at `now`.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.state == State::Triaged && self.due_at.is_some_and(|d| now >= d)
    }

    /// Gives it to a department (again, while it is not answered).
    pub fn triage(
        &mut self,
        department: DepartmentId,
        working_days: u32,
        now: DateTime<Utc>,
        zone: Tz,
        calendar: &OfficialCalendar,
    ) -> Result<AuditAction, Error> {
        if !matches!(self.state, State::Received | State::Triaged) {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: it was answered already", self.state.as_str()),
            ));
        }
        let due = due_date(now.with_timezone(&zone).date_naive(), working_days, calendar);
        self.department = Some(department);
        self.working_days = working_days;
        self.due_date = Some(due);
        self.due_at = Some(start_of(due + Days::new(1), zone));
        self.state = State::Triaged;
        self.version += 1;
        Ok(AuditAction::PublicFeedbackTriaged)
    }

    /// Records the answer given to the person.
    pub fn answer(
        &mut self,
        by: PrincipalId,
        answer: String,
        channel: String,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if self.state != State::Triaged {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: feedback is answered once it is with a department", self.state.as_str()),
            ));
        }
        self.answer = answer;
        self.answer_channel = channel;
        self.answered_by = Some(by);
        self.answered_at = Some(now);
        self.state = State::Answered;
        self.version += 1;
        Ok(AuditAction::PublicFeedbackAnswered)
    }

    /// Closes it with the adjustments it led to, or why none was needed (R8.2.2).
    pub fn close(
        &mut self,
        adjustments: Vec<Adjustment>,
        no_adjustment_reason: String,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if self.state != State::Answered {
            return Err(Error::rule(
                ADJUSTMENT_RULE,
                self.subject(),
                format!("is {}: feedback is closed once the person was answered", self.state.as_str()),
            ));
        }
        if adjustments.is_empty() && no_adjustment_reason.trim().is_empty() {
            return Err(Error::rule(
                ADJUSTMENT_RULE,
                self.subject(),
                "closing needs the adjustment it led to, or the reason none was needed",
            ));
        }
        self.adjustments = adjustments;
        self.no_adjustment_reason = no_adjustment_reason;
        self.closed_at = Some(now);
        self.state = State::Closed;
        self.version += 1;
        Ok(AuditAction::PublicFeedbackClosed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_masked_for_those_who_do_not_answer() {
        assert_eq!(mask_contact("13812348000"), "138****8000");
        assert_eq!(mask_contact("zhang.san@example.cn"), "z***@example.cn");
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(masked_text("请回电13812348000"), "请回电138****8000");
    }

    #[test]
    fn feedback_is_triaged_answered_and_closed_with_an_adjustment_r8_2_2() {
        let now: DateTime<Utc> = "2026-11-27T02:00:00Z".parse().expect("time");
        let by = PrincipalId::from_uuid(uuid::Uuid::now_v7());
        let mut f = PublicFeedback::record(
            Received {
                channel: Channel::Hotline,
                received_at: now,
                account: None,
                comment_id: String::new(),
                subject: "s".into(),
                content: "c".into(),
                contact_name: "n".into(),
                contact: "13812348000".into(),
            },
            by,
        );
        assert!(f.answer(by, "a".into(), "phone".into(), now).is_err(), "not before triage");
        f.triage(DepartmentId::new(), 5, now, chrono_tz::Asia::Shanghai, &OfficialCalendar::shipped())
            .expect("triaged");
        assert_eq!(f.due_date.map(|d| d.to_string()).as_deref(), Some("2026-12-04"));
        assert!(f.is_overdue(f.due_at.expect("due")));
        f.answer(by, "a".into(), "phone".into(), now).expect("answered");
        assert!(f.close(Vec::new(), " ".into(), now).is_err(), "an adjustment or a reason");
        f.close(
            vec![Adjustment { kind: AdjustmentKind::CorrectionDraft, id: "d".into(), note: String::new() }],
            String::new(),
            now,
        )
        .expect("closed");
        assert!(!f.is_overdue(now + chrono::Duration::days(30)));
    }
}
