//! Security incidents: reported, contained, investigated, closed with root cause and
//! actions; serious ones reported upward before closing. Content incidents name the
//! publication, account anomalies link identity's incident (R7.1.1, R7.2, R2.3.3).

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PrincipalId, SecurityIncidentId};
use govmedia_domain::scope::Resource;
use govmedia_domain::text_enum;

/// The rule of handling an incident to its end.
pub const RULE: &str = "R7.2.2";

text_enum! {
    /// What happened.
    Kind {
        /// Confidential information published.
        ConfidentialInformationPublished => "confidential_information_published",
        /// A serious wording error published.
        SeriousWordingError => "serious_wording_error",
        /// A false or wrong post.
        FalseOrWrongPost => "false_or_wrong_post",
        /// A data leak.
        DataLeak => "data_leak",
        /// An account anomaly raised by identity.
        AccountAnomaly => "account_anomaly",
    }
}

impl Kind {
    /// The rule the incident breaks.
    pub const fn rule(self) -> &'static str {
        match self {
            Kind::ConfidentialInformationPublished => "R7.1.1",
            Kind::SeriousWordingError | Kind::FalseOrWrongPost => "R3.2.3",
            Kind::DataLeak => "R7.2.1",
            Kind::AccountAnomaly => "R2.3.3",
        }
    }

    /// Whether it is about something published (and names the publication).
    pub const fn is_content(self) -> bool {
        matches!(self, Kind::ConfidentialInformationPublished | Kind::SeriousWordingError | Kind::FalseOrWrongPost)
    }
}

text_enum! {
    /// How serious.
    Severity {
        /// 一般.
        General => "general",
        /// 较大.
        Serious => "serious",
        /// 重大.
        Major => "major",
    }
}

text_enum! {
    /// Where an incident stands.
    State {
        /// Reported.
        Reported => "reported",
        /// Contained.
        Contained => "contained",
        /// Under investigation.
        Investigating => "investigating",
        /// Closed.
        Closed => "closed",
    }
}

text_enum! {
    /// What a step did.
    StepKind {
        /// The publication was retracted.
        PublicationRetracted => "publication_retracted",
        /// The account was frozen.
        AccountFrozen => "account_frozen",
        /// Another containment measure.
        ContainmentNote => "containment_note",
        /// Investigation findings.
        Investigation => "investigation",
        /// Reported upward.
        ReportedUpward => "reported_upward",
    }
}

/// A step taken on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What was done.
    pub kind: StepKind,
    /// What it did and found.
    pub detail: String,
    /// Who.
    pub by: PrincipalId,
    /// When.
    pub at: DateTime<Utc>,
}

/// An incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// The id.
    pub id: SecurityIncidentId,
    /// What happened.
    pub kind: Kind,
    /// How serious.
    pub severity: Severity,
    /// The title.
    pub title: String,
    /// What was observed.
    pub description: String,
    /// The department concerned.
    pub department: DepartmentId,
    /// The account concerned.
    pub account: Option<PlatformAccountId>,
    /// The publication concerned (content's id).
    pub publication: Option<String>,
    /// Identity's incident an anomaly links.
    pub account_incident: Option<String>,
    /// Where it stands.
    pub state: State,
    /// The steps.
    pub steps: Vec<Step>,
    /// To whom it was reported upward; empty when not.
    pub reported_to: String,
    /// The root cause.
    pub root_cause: String,
    /// The corrective actions.
    pub corrective_actions: Vec<String>,
    /// Who reported it.
    pub reported_by: PrincipalId,
    /// When.
    pub reported_at: DateTime<Utc>,
    /// Who closed it.
    pub closed_by: Option<PrincipalId>,
    /// When.
    pub closed_at: Option<DateTime<Utc>>,
    /// The row version.
    pub version: i64,
}

impl Incident {
    fn subject(&self) -> String {
        format!("security incident {}", self.id)
    }

    /// The incident as a permission resource.
    pub fn resource(&self) -> Resource {
        self.account
            .map_or(Resource::department(self.department), |a| Resource::platform_account(a, Some(self.department)))
    }

    /// Whether it was reported upward.
    pub fn reported_upward(&self) -> bool {
        !self.reported_to.is_empty()
    }

    fn open(&self) -> Result<(), Error> {
        if self.state == State::Closed {
            return Err(Error::rule(RULE, self.subject(), "is closed"));
        }
        Ok(())
    }

    /// Records containment: the steps taken (retraction, freeze, a note).
    pub fn contain(&mut self, steps: Vec<Step>) -> Result<AuditAction, Error> {
        self.open()?;
        self.steps.extend(steps);
        if self.state == State::Reported {
            self.state = State::Contained;
        }
        self.version += 1;
        Ok(AuditAction::SecurityIncidentContained)
    }

    /// Records investigation findings; an incident is contained before it is investigated.
    pub fn investigate(&mut self, findings: String, by: PrincipalId, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        self.open()?;
        if self.state == State::Reported {
            return Err(Error::rule(RULE, self.subject(), "is not contained yet: contain it first"));
        }
        self.steps.push(Step { kind: StepKind::Investigation, detail: findings, by, at: now });
        self.state = State::Investigating;
        self.version += 1;
        Ok(AuditAction::SecurityIncidentInvestigated)
    }

    /// Marks it reported upward.
    pub fn report_upward(
        &mut self,
        to: String,
        note: String,
        by: PrincipalId,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if self.reported_upward() {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("was reported upward already, to {}", self.reported_to),
            ));
        }
        let detail = if note.is_empty() { to.clone() } else { format!("{to}: {note}") };
        self.steps.push(Step { kind: StepKind::ReportedUpward, detail, by, at: now });
        self.reported_to = to;
        self.version += 1;
        Ok(AuditAction::SecurityIncidentReportedUpward)
    }

    /// Closes an investigated incident; a serious or major one only once reported upward.
    pub fn close(
        &mut self,
        root_cause: String,
        actions: Vec<String>,
        by: PrincipalId,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        self.open()?;
        if self.state != State::Investigating {
            return Err(Error::rule(RULE, self.subject(), "is closed after its investigation is recorded"));
        }
        if self.severity != Severity::General && !self.reported_upward() {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: it is reported upward before it is closed", self.severity.as_str()),
            ));
        }
        self.state = State::Closed;
        self.root_cause = root_cause;
        self.corrective_actions = actions;
        self.closed_by = Some(by);
        self.closed_at = Some(now);
        self.version += 1;
        Ok(AuditAction::SecurityIncidentClosed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_incident_is_contained_investigated_and_a_serious_one_reported_upward_before_closing_r7_2_2() {
        let now: DateTime<Utc> = "2026-11-29T02:00:00Z".parse().expect("time");
        let by = PrincipalId::from_uuid(uuid::Uuid::now_v7());
        let mut i = Incident {
            id: SecurityIncidentId::new(),
            kind: Kind::SeriousWordingError,
            severity: Severity::Serious,
            title: "Misspelt name".into(),
            description: "d".into(),
            department: DepartmentId::new(),
            account: None,
            publication: Some("p".into()),
            account_incident: None,
            state: State::Reported,
            steps: Vec::new(),
            reported_to: String::new(),
            root_cause: String::new(),
            corrective_actions: Vec::new(),
            reported_by: by,
            reported_at: now,
            closed_by: None,
            closed_at: None,
            version: 1,
        };
        assert!(i.investigate("x".into(), by, now).is_err(), "contain first");
        i.contain(vec![Step { kind: StepKind::PublicationRetracted, detail: "retracted".into(), by, at: now }])
            .expect("contained");
        assert!(i.close("c".into(), vec!["a".into()], by, now).is_err(), "investigate first");
        i.investigate("the lexicon lacked the name".into(), by, now).expect("investigating");
        let refused = i.close("c".into(), vec!["a".into()], by, now).expect_err("not reported upward");
        assert!(refused.to_string().contains("reported upward"), "{refused}");
        i.report_upward("Bureau office".into(), "memo 12".into(), by, now).expect("reported");
        assert!(i.report_upward("again".into(), String::new(), by, now).is_err());
        i.close("the name was not in the lexicon".into(), vec!["added to the lexicon".into()], by, now)
            .expect("closed");
        assert!(i.contain(Vec::new()).is_err(), "closed");
        assert_eq!(i.steps.len(), 3);
    }
}
