//! Security checks (安全检查, R7.2.2): versioned checklists, schedules of checks per
//! department or account, checks with a result and evidence per item, and the hidden
//! dangers (安全隐患) failed items open, closed only when someone other than the owner
//! verifies the fix.

use chrono::{DateTime, Days, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::holidays::OfficialCalendar;
use govmedia_domain::ids::{
    DepartmentId, HiddenDangerId, PlatformAccountId, PrincipalId, SecurityCheckId, SecurityCheckScheduleId,
    SecurityChecklistId, UserId,
};
use govmedia_domain::scope::Resource;
use govmedia_domain::text_enum;

use crate::domain::compliance::start_of;
use crate::domain::rectification::due_date;

/// The rule security checks serve.
pub const RULE: &str = "R7.2.2";
/// Most items a checklist (or one call recording results) may have.
pub const MAX_ITEMS: usize = 200;
/// The longest interval between scheduled checks, in days.
pub const MAX_INTERVAL_DAYS: u32 = 366;
/// The most working days a hidden danger may be given.
pub const MAX_WORKING_DAYS: u32 = 60;

/// One item of a checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistItem {
    /// A short code unique in the checklist.
    pub code: String,
    /// What is checked.
    pub text: String,
    /// How to check it.
    pub guidance: String,
}

/// Whether `code` is a usable item code: 1 to 40 letters, digits, `-`, `_` or `.`.
pub fn is_item_code(code: &str) -> bool {
    (1..=40).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A checklist and its latest version number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checklist {
    /// The id.
    pub id: SecurityChecklistId,
    /// Its name, unique.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The latest version.
    pub current_version: u32,
    /// The row version.
    pub version: i64,
}

/// The items of a checklist at one version: never changed once made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecklistVersion {
    /// The checklist.
    pub checklist: SecurityChecklistId,
    /// The version.
    pub version: u32,
    /// The items.
    pub items: Vec<ChecklistItem>,
    /// What changed.
    pub change_note: String,
    /// Who made it.
    pub created_by: PrincipalId,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl Checklist {
    /// A revision: the next version with `items`.
    pub fn revise(
        &mut self,
        items: Vec<ChecklistItem>,
        change_note: String,
        by: PrincipalId,
        now: DateTime<Utc>,
    ) -> ChecklistVersion {
        self.current_version += 1;
        self.version += 1;
        ChecklistVersion {
            checklist: self.id,
            version: self.current_version,
            items,
            change_note,
            created_by: by,
            created_at: now,
        }
    }
}

/// What a check is of: a department, or one of its platform accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The department checked, or running the account.
    pub department: DepartmentId,
    /// The account checked.
    pub account: Option<PlatformAccountId>,
}

impl Target {
    /// The target as a permission resource.
    pub fn resource(&self) -> Resource {
        self.account
            .map_or(Resource::department(self.department), |a| Resource::platform_account(a, Some(self.department)))
    }
}

text_enum! {
    /// Where a schedule stands.
    ScheduleState {
        /// Checks are due every interval.
        Active => "active",
        /// Cancelled.
        Cancelled => "cancelled",
    }
}

/// A checklist's check of a target every N days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The id.
    pub id: SecurityCheckScheduleId,
    /// The checklist.
    pub checklist: SecurityChecklistId,
    /// What is checked.
    pub target: Target,
    /// Days between checks.
    pub interval_days: u32,
    /// The date the next check is due.
    pub next_due: NaiveDate,
    /// Active or cancelled.
    pub state: ScheduleState,
    /// The last check completed on it.
    pub last_check: Option<SecurityCheckId>,
    /// Who made it.
    pub created_by: PrincipalId,
    /// When.
    pub created_at: DateTime<Utc>,
    /// Why it was cancelled.
    pub cancel_reason: String,
    /// The row version.
    pub version: i64,
}

impl Schedule {
    /// The next check is due on `today` (a local date).
    pub fn is_due(&self, today: NaiveDate) -> bool {
        self.state == ScheduleState::Active && today >= self.next_due
    }

    /// A check on the schedule completed on `on`: the next is due an interval later.
    pub fn checked(&mut self, check: SecurityCheckId, on: NaiveDate) {
        self.last_check = Some(check);
        self.next_due = on + Days::new(u64::from(self.interval_days));
        self.version += 1;
    }

    /// Cancels it.
    pub fn cancel(&mut self, reason: String) -> Result<AuditAction, Error> {
        if self.state == ScheduleState::Cancelled {
            return Err(Error::rule(RULE, format!("security check schedule {}", self.id), "is cancelled already"));
        }
        self.state = ScheduleState::Cancelled;
        self.cancel_reason = reason;
        self.version += 1;
        Ok(AuditAction::SecurityCheckScheduleCancelled)
    }
}

text_enum! {
    /// The result of one item.
    ItemResult {
        /// Passed.
        Pass => "pass",
        /// Failed: opens a hidden danger.
        Fail => "fail",
        /// Does not apply.
        NotApplicable => "not_applicable",
    }
}

text_enum! {
    /// How serious a hidden danger is.
    Severity {
        /// 一般隐患.
        General => "general",
        /// 重大隐患.
        Major => "major",
    }
}

/// What a failed item's hidden danger will be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HazardSpec {
    /// What is wrong.
    pub description: String,
    /// Who owns the fix.
    pub owner: UserId,
    /// How serious.
    pub severity: Severity,
    /// Working days to fix it.
    pub working_days: u32,
}

/// One item's result as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The item's code.
    pub code: String,
    /// The result.
    pub result: ItemResult,
    /// What was looked at and found.
    pub evidence: String,
    /// For a failed item.
    pub hazard: Option<HazardSpec>,
}

/// One item of a check and its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckItem {
    /// The checklist item.
    pub item: ChecklistItem,
    /// Its result, once recorded.
    pub result: Option<ItemResult>,
    /// The evidence.
    pub evidence: String,
    /// For a failed item: the hidden danger to open.
    pub hazard: Option<HazardSpec>,
    /// The hidden danger opened on completion.
    pub hidden_danger: Option<HiddenDangerId>,
    /// Who recorded the result.
    pub recorded_by: Option<PrincipalId>,
    /// When.
    pub recorded_at: Option<DateTime<Utc>>,
}

text_enum! {
    /// Where a check stands.
    CheckState {
        /// Results are being recorded.
        InProgress => "in_progress",
        /// Completed.
        Completed => "completed",
    }
}

/// A check of a target against one checklist version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The id.
    pub id: SecurityCheckId,
    /// The checklist.
    pub checklist: SecurityChecklistId,
    /// Its name when the check started.
    pub checklist_name: String,
    /// The version checked against.
    pub checklist_version: u32,
    /// The schedule it runs on.
    pub schedule: Option<SecurityCheckScheduleId>,
    /// What is checked.
    pub target: Target,
    /// In progress or completed.
    pub state: CheckState,
    /// The items with their results.
    pub items: Vec<CheckItem>,
    /// The conclusion.
    pub conclusion: String,
    /// Who started it.
    pub started_by: PrincipalId,
    /// When.
    pub started_at: DateTime<Utc>,
    /// Who completed it.
    pub completed_by: Option<PrincipalId>,
    /// When.
    pub completed_at: Option<DateTime<Utc>>,
    /// The row version.
    pub version: i64,
}

impl Check {
    /// A new check of `target` against `list` at version `of`.
    pub fn start(
        list: &Checklist,
        of: &ChecklistVersion,
        schedule: Option<SecurityCheckScheduleId>,
        target: Target,
        by: PrincipalId,
        now: DateTime<Utc>,
    ) -> Self {
        Check {
            id: SecurityCheckId::new(),
            checklist: list.id,
            checklist_name: list.name.clone(),
            checklist_version: of.version,
            schedule,
            target,
            state: CheckState::InProgress,
            items: of
                .items
                .iter()
                .map(|item| CheckItem {
                    item: item.clone(),
                    result: None,
                    evidence: String::new(),
                    hazard: None,
                    hidden_danger: None,
                    recorded_by: None,
                    recorded_at: None,
                })
                .collect(),
            conclusion: String::new(),
            started_by: by,
            started_at: now,
            completed_by: None,
            completed_at: None,
            version: 1,
        }
    }

    fn subject(&self) -> String {
        format!("security check {}", self.id)
    }

    /// Items failed.
    pub fn failed(&self) -> usize {
        self.items.iter().filter(|i| i.result == Some(ItemResult::Fail)).count()
    }

    /// Records results; a later result of an item replaces the earlier one. Every code
    /// must be an item of the check.
    pub fn record(
        &mut self,
        results: Vec<Recorded>,
        by: PrincipalId,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if self.state != CheckState::InProgress {
            return Err(Error::rule(RULE, self.subject(), "is completed: its results are final"));
        }
        let unknown: Vec<&str> = results
            .iter()
            .filter(|r| !self.items.iter().any(|i| i.item.code == r.code))
            .map(|r| r.code.as_str())
            .collect();
        if !unknown.is_empty() {
            return Err(Error::invalid(
                "results.item_code",
                format!("{} not an item of the checklist version checked", unknown.join(", ")),
            ));
        }
        for r in results {
            if let Some(item) = self.items.iter_mut().find(|i| i.item.code == r.code) {
                item.result = Some(r.result);
                item.evidence = r.evidence;
                item.hazard = r.hazard;
                item.recorded_by = Some(by);
                item.recorded_at = Some(now);
            }
        }
        self.version += 1;
        Ok(AuditAction::SecurityCheckResultsRecorded)
    }

    /// Completes the check once every item has a result: the hidden dangers of its
    /// failed items, due on the business calendar from `today`.
    pub fn complete(
        &mut self,
        conclusion: String,
        by: PrincipalId,
        now: DateTime<Utc>,
        zone: chrono_tz::Tz,
        calendar: &OfficialCalendar,
    ) -> Result<Vec<HiddenDanger>, Error> {
        if self.state != CheckState::InProgress {
            return Err(Error::rule(RULE, self.subject(), "is completed already"));
        }
        let missing: Vec<&str> =
            self.items.iter().filter(|i| i.result.is_none()).map(|i| i.item.code.as_str()).collect();
        if !missing.is_empty() {
            return Err(Error::rule(RULE, self.subject(), format!("items without a result: {}", missing.join(", "))));
        }
        let today = now.with_timezone(&zone).date_naive();
        let mut opened = Vec::new();
        for item in &mut self.items {
            let (Some(ItemResult::Fail), Some(spec)) = (item.result, item.hazard.as_ref()) else { continue };
            let due = due_date(today, spec.working_days, calendar);
            let danger = HiddenDanger {
                id: HiddenDangerId::new(),
                check: self.id,
                item_code: item.item.code.clone(),
                item_text: item.item.text.clone(),
                description: spec.description.clone(),
                target: self.target,
                owner: spec.owner,
                severity: spec.severity,
                working_days: spec.working_days,
                due_date: due,
                due_at: start_of(due + Days::new(1), zone),
                state: DangerState::Open,
                fix_evidence: String::new(),
                fix_submitted_by: None,
                fix_submitted_at: None,
                verified_by: None,
                verified_at: None,
                note: String::new(),
                created_at: now,
                version: 1,
            };
            item.hidden_danger = Some(danger.id);
            opened.push(danger);
        }
        self.state = CheckState::Completed;
        self.conclusion = conclusion;
        self.completed_by = Some(by);
        self.completed_at = Some(now);
        self.version += 1;
        Ok(opened)
    }
}

text_enum! {
    /// Where a hidden danger stands.
    DangerState {
        /// Open: the owner is fixing it.
        Open => "open",
        /// The fix is submitted.
        FixSubmitted => "fix_submitted",
        /// Verified: closed.
        Closed => "closed",
    }
}

/// A hidden danger found by a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiddenDanger {
    /// The id.
    pub id: HiddenDangerId,
    /// The check that found it.
    pub check: SecurityCheckId,
    /// The failed item's code.
    pub item_code: String,
    /// The failed item's text.
    pub item_text: String,
    /// What is wrong.
    pub description: String,
    /// Where.
    pub target: Target,
    /// Who owns the fix.
    pub owner: UserId,
    /// How serious.
    pub severity: Severity,
    /// Working days given.
    pub working_days: u32,
    /// The last local date of the deadline.
    pub due_date: NaiveDate,
    /// The instant after which it is overdue.
    pub due_at: DateTime<Utc>,
    /// Open, fix submitted, closed.
    pub state: DangerState,
    /// The fix as submitted.
    pub fix_evidence: String,
    /// Who submitted it.
    pub fix_submitted_by: Option<PrincipalId>,
    /// When.
    pub fix_submitted_at: Option<DateTime<Utc>>,
    /// Who verified or returned the fix.
    pub verified_by: Option<PrincipalId>,
    /// When.
    pub verified_at: Option<DateTime<Utc>>,
    /// The verifier's note.
    pub note: String,
    /// When opened.
    pub created_at: DateTime<Utc>,
    /// The row version.
    pub version: i64,
}

impl HiddenDanger {
    fn subject(&self) -> String {
        format!("hidden danger {}", self.id)
    }

    /// Past the deadline and not closed.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.state != DangerState::Closed && now >= self.due_at
    }

    /// The owner submits the fix.
    pub fn submit_fix(&mut self, evidence: String, by: PrincipalId, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if by != PrincipalId::from(self.owner) {
            return Err(Error::rule(RULE, self.subject(), "only its owner submits the fix"));
        }
        if self.state != DangerState::Open {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: only an open one takes a fix", self.state.as_str()),
            ));
        }
        self.state = DangerState::FixSubmitted;
        self.fix_evidence = evidence;
        self.fix_submitted_by = Some(by);
        self.fix_submitted_at = Some(now);
        self.version += 1;
        Ok(AuditAction::HiddenDangerFixSubmitted)
    }

    /// Someone other than the owner (and other than whoever submitted the fix) verifies
    /// it: accepted closes, not accepted reopens.
    pub fn verify(
        &mut self,
        accepted: bool,
        note: String,
        by: PrincipalId,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if by == PrincipalId::from(self.owner) || Some(by) == self.fix_submitted_by {
            return Err(Error::rule(RULE, self.subject(), "a fix is verified by someone other than its owner"));
        }
        if self.state != DangerState::FixSubmitted {
            return Err(Error::rule(
                RULE,
                self.subject(),
                format!("is {}: only a submitted fix is verified", self.state.as_str()),
            ));
        }
        self.state = if accepted { DangerState::Closed } else { DangerState::Open };
        self.verified_by = Some(by);
        self.verified_at = Some(now);
        self.note = note;
        self.version += 1;
        Ok(if accepted { AuditAction::HiddenDangerClosed } else { AuditAction::HiddenDangerReopened })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("time")
    }

    fn person() -> PrincipalId {
        PrincipalId::from_uuid(uuid::Uuid::now_v7())
    }

    fn checklist() -> (Checklist, ChecklistVersion) {
        let by = person();
        let mut list = Checklist {
            id: SecurityChecklistId::new(),
            name: "Account security".into(),
            description: String::new(),
            current_version: 0,
            version: 0,
        };
        let items = ["ACC-2FA", "ACC-PWD", "ACC-DEVICES"]
            .map(|code| ChecklistItem { code: code.into(), text: format!("{code} text"), guidance: String::new() })
            .to_vec();
        let v1 = list.revise(items, String::new(), by, at("2026-11-01T00:00:00Z"));
        (list, v1)
    }

    #[test]
    fn a_failed_item_opens_a_hidden_danger_due_in_working_days_r7_2_2() {
        let (list, v1) = checklist();
        assert_eq!(v1.version, 1);
        let officer = person();
        let owner = UserId::from_uuid(uuid::Uuid::now_v7());
        let target = Target { department: DepartmentId::new(), account: None };
        // Friday 27 November 2026, 10:00 in Beijing.
        let now = at("2026-11-27T02:00:00Z");
        let mut check = Check::start(&list, &v1, None, target, officer, now);
        let pass = |code: &str| Recorded {
            code: code.into(),
            result: ItemResult::Pass,
            evidence: "seen".into(),
            hazard: None,
        };
        check.record(vec![pass("ACC-2FA"), pass("ACC-PWD")], officer, now).expect("recorded");
        let zone = chrono_tz::Asia::Shanghai;
        let calendar = OfficialCalendar::shipped();
        let err = check.complete("done".into(), officer, now, zone, &calendar).expect_err("an item has no result");
        assert!(err.to_string().contains("ACC-DEVICES"), "{err}");
        assert!(check.record(vec![pass("NOPE")], officer, now).is_err(), "unknown codes are refused");
        let spec = HazardSpec {
            description: "an unknown phone is logged in".into(),
            owner,
            severity: Severity::Major,
            working_days: 5,
        };
        check
            .record(
                vec![Recorded {
                    code: "ACC-DEVICES".into(),
                    result: ItemResult::Fail,
                    evidence: "device list".into(),
                    hazard: Some(spec),
                }],
                officer,
                now,
            )
            .expect("recorded");
        let opened =
            check.complete("one major hidden danger".into(), officer, now, zone, &calendar).expect("completed");
        assert_eq!(opened.len(), 1);
        assert_eq!(opened[0].due_date.to_string(), "2026-12-04", "5 working days from a Friday");
        assert_eq!(check.items[2].hidden_danger, Some(opened[0].id));
        assert!(check.record(vec![pass("ACC-2FA")], officer, now).is_err(), "a completed check is final");
    }

    #[test]
    fn only_the_owner_submits_and_only_someone_else_verifies_r7_2_2() {
        let owner = UserId::from_uuid(uuid::Uuid::now_v7());
        let now = at("2026-11-27T02:00:00Z");
        let mut danger = HiddenDanger {
            id: HiddenDangerId::new(),
            check: SecurityCheckId::new(),
            item_code: "ACC-2FA".into(),
            item_text: "two-factor login".into(),
            description: "off".into(),
            target: Target { department: DepartmentId::new(), account: None },
            owner,
            severity: Severity::General,
            working_days: 5,
            due_date: "2026-12-04".parse().expect("date"),
            due_at: at("2026-12-04T16:00:00Z"),
            state: DangerState::Open,
            fix_evidence: String::new(),
            fix_submitted_by: None,
            fix_submitted_at: None,
            verified_by: None,
            verified_at: None,
            note: String::new(),
            created_at: now,
            version: 1,
        };
        assert!(danger.submit_fix("done".into(), person(), now).is_err(), "not the owner");
        danger.submit_fix("turned on".into(), PrincipalId::from(owner), now).expect("submitted");
        let refused = danger.verify(true, "ok".into(), PrincipalId::from(owner), now).expect_err("own fix");
        assert!(refused.to_string().contains("R7.2.2"), "{refused}");
        danger.verify(false, "still off on the tablet".into(), person(), now).expect("returned");
        assert_eq!(danger.state, DangerState::Open);
        danger.submit_fix("tablet too".into(), PrincipalId::from(owner), now).expect("again");
        assert!(!danger.is_overdue(at("2026-12-04T15:59:59Z")));
        assert!(danger.is_overdue(at("2026-12-04T16:00:00Z")));
        danger.verify(true, "checked".into(), person(), now).expect("closed");
        assert!(!danger.is_overdue(at("2027-01-01T00:00:00Z")), "a closed one is never overdue");
    }
}
