//! Violations (R9.1, R9.2): a catalogue of what counts as a violation, with a default
//! severity, and violation records naming the person responsible, the evidence (audit
//! event ids), the severity, the handling decided and by whom, and the rectification it
//! triggered. Detectors only propose; a person confirms or dismisses, never the person
//! the violation names.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId, PrincipalId, RectificationId, UserId, ViolationId};

/// The rule every record serves.
pub const RULE: &str = "R9.2";
/// Most evidence events one record names.
pub const MAX_EVIDENCE: usize = 50;

/// How serious a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// 一般: a warning and correction.
    Minor,
    /// 较重: a written criticism, duties reviewed.
    Serious,
    /// 严重: reported to the leadership; duties withdrawn.
    Grave,
}

impl Severity {
    const ALL: [Severity; 3] = [Severity::Minor, Severity::Serious, Severity::Grave];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Minor => "minor",
            Severity::Serious => "serious",
            Severity::Grave => "grave",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One kind of violation of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ViolationType {
    /// The stable code.
    pub code: &'static str,
    /// The name, in the regulation's words.
    pub title: &'static str,
    /// The rule it breaks.
    pub rule_id: &'static str,
    /// The severity unless the person deciding sets another.
    pub default_severity: Severity,
}

/// The catalogue: at least the violations R9.1 names, and what the detectors find.
pub const CATALOGUE: &[ViolationType] = &[
    ViolationType {
        code: "illegal_content",
        title: "Published illegal or non-compliant content (发布违法违规信息)",
        rule_id: "R9.1",
        default_severity: Severity::Grave,
    },
    ViolationType {
        code: "false_content",
        title: "Published false or inaccurate content (发布虚假不实信息)",
        rule_id: "R3.2.3",
        default_severity: Severity::Serious,
    },
    ViolationType {
        code: "confidential_content",
        title: "Published confidential or sensitive information (发布涉密敏感信息)",
        rule_id: "R7.1.1",
        default_severity: Severity::Grave,
    },
    ViolationType {
        code: "serious_wording_error",
        title: "Published a serious wording error (严重表述错误)",
        rule_id: "R3.2.3",
        default_severity: Severity::Serious,
    },
    ViolationType {
        code: "unreviewed_publication",
        title: "Published without the full three-stage review (未经三审发布)",
        rule_id: "R3.2.1",
        default_severity: Severity::Grave,
    },
    ViolationType {
        code: "credential_disclosure",
        title: "Disclosed or misused account credentials (泄露或滥用账号密码)",
        rule_id: "R2.3.2",
        default_severity: Severity::Serious,
    },
    ViolationType {
        code: "rectification_ignored",
        title: "Ignored a rectification deadline (逾期未整改)",
        rule_id: "R8.1.2",
        default_severity: Severity::Minor,
    },
];

/// The catalogue entry of `code`.
pub fn violation_type(code: &str) -> Option<&'static ViolationType> {
    CATALOGUE.iter().find(|t| t.code == code)
}

/// Where a record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Found by a detector; waits for a person.
    Proposed,
    /// Confirmed (or recorded by a person).
    Confirmed,
    /// Dismissed by a person, with the reason.
    Dismissed,
}

impl State {
    const ALL: [State; 3] = [State::Proposed, State::Confirmed, State::Dismissed];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            State::Proposed => "proposed",
            State::Confirmed => "confirmed",
            State::Dismissed => "dismissed",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// What a record says happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The kind of violation.
    pub kind: &'static ViolationType,
    /// The person responsible.
    pub responsible: UserId,
    /// Their department (or the account's), when known.
    pub department: Option<DepartmentId>,
    /// The account concerned.
    pub account: Option<PlatformAccountId>,
    /// What happened.
    pub description: String,
    /// The audit events that show it, checked against the chain.
    pub evidence: Vec<String>,
}

/// A violation record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The id.
    pub id: ViolationId,
    /// What happened.
    pub facts: Facts,
    /// How serious.
    pub severity: Severity,
    /// Where it stands.
    pub state: State,
    /// The detector that proposed it; empty when a person recorded it.
    pub detector: String,
    /// What the detector found it on, once per finding (`rectification_overdue:<id>`).
    pub detection_key: String,
    /// When it was proposed or recorded.
    pub created_at: DateTime<Utc>,
    /// The handling decided (or the reason for dismissing).
    pub handling: String,
    /// Who decided.
    pub decided_by: Option<PrincipalId>,
    /// When.
    pub decided_at: Option<DateTime<Utc>>,
    /// The rectification it triggered.
    pub rectification: Option<RectificationId>,
    /// The row version.
    pub version: i64,
}

impl Violation {
    /// A detector's proposal.
    pub fn propose(detector: &str, key: String, facts: Facts, now: DateTime<Utc>) -> Self {
        Self {
            id: ViolationId::new(),
            severity: facts.kind.default_severity,
            facts,
            state: State::Proposed,
            detector: detector.to_owned(),
            detection_key: key,
            created_at: now,
            handling: String::new(),
            decided_by: None,
            decided_at: None,
            rectification: None,
            version: 1,
        }
    }

    /// A person records a violation and decides it at once.
    pub fn record(
        by: PrincipalId,
        facts: Facts,
        severity: Option<Severity>,
        handling: String,
        rectification: Option<RectificationId>,
        now: DateTime<Utc>,
    ) -> Result<Self, Error> {
        let id = ViolationId::new();
        let mut v = Self::propose("", format!("recorded:{id}"), facts, now);
        v.id = id;
        v.confirm(by, handling, severity, rectification, now)?;
        v.version = 1;
        Ok(v)
    }

    fn subject(&self) -> String {
        format!("violation {}", self.id)
    }

    fn decidable_by(&self, by: PrincipalId) -> Result<(), Error> {
        if self.state != State::Proposed {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: it was decided already", self.state.as_str()),
            ));
        }
        if by.as_uuid() == self.facts.responsible.as_uuid() {
            return Err(Error::rule(RULE, self.subject(), "nobody decides on a violation that names them"));
        }
        Ok(())
    }

    /// A person confirms a proposal, with the handling decided.
    pub fn confirm(
        &mut self,
        by: PrincipalId,
        handling: String,
        severity: Option<Severity>,
        rectification: Option<RectificationId>,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        self.decidable_by(by)?;
        self.state = State::Confirmed;
        if let Some(s) = severity {
            self.severity = s;
        }
        self.handling = handling;
        self.rectification = rectification.or(self.rectification);
        self.decided_by = Some(by);
        self.decided_at = Some(now);
        self.version += 1;
        Ok(AuditAction::ViolationConfirmed)
    }

    /// A person dismisses a proposal, with the reason.
    pub fn dismiss(&mut self, by: PrincipalId, reason: String, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        self.decidable_by(by)?;
        self.state = State::Dismissed;
        self.handling = reason;
        self.decided_by = Some(by);
        self.decided_at = Some(now);
        self.version += 1;
        Ok(AuditAction::ViolationDismissed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(responsible: UserId) -> Facts {
        Facts {
            kind: violation_type("rectification_ignored").expect("catalogued"),
            responsible,
            department: None,
            account: None,
            description: "d".into(),
            evidence: vec!["e1".into()],
        }
    }

    #[test]
    fn the_catalogue_holds_every_violation_r9_1_names() {
        for code in ["illegal_content", "false_content", "confidential_content", "unreviewed_publication"] {
            assert!(violation_type(code).is_some(), "{code}");
        }
        assert_eq!(violation_type("credential_disclosure").map(|t| t.rule_id), Some("R2.3.2"));
        assert_eq!(violation_type("rectification_ignored").map(|t| t.rule_id), Some("R8.1.2"));
    }

    #[test]
    fn a_proposal_is_decided_once_and_never_by_the_person_it_names_r9_2() {
        let person = UserId::new();
        let now = Utc::now();
        let mut v = Violation::propose("rectification_overdue", "k".into(), facts(person), now);
        assert_eq!(v.severity, Severity::Minor);
        let them = PrincipalId::from_uuid(person.as_uuid());
        assert!(v.confirm(them, "h".into(), None, None, now).is_err());
        let office = PrincipalId::from_uuid(uuid::Uuid::now_v7());
        v.confirm(office, "criticism".into(), Some(Severity::Serious), None, now).expect("confirmed");
        assert_eq!((v.state, v.severity), (State::Confirmed, Severity::Serious));
        assert!(v.dismiss(office, "r".into(), now).is_err());
    }
}
