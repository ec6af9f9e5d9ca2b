//! Inspection readiness (R8.1.1): how one platform account stands on one Beijing date
//! against the indicators government new-media accounts are inspected on
//! (国办秘函〔2019〕19号).
//!
//! The veto items (单项否决) fail an account whatever its score: no update within two
//! weeks, no working interaction, a security incident. Deductions from 100 points stand
//! beside them. This module is the rule book only: the facts come from the audit log and
//! identity's register ([`crate::compliance_monitor`]), and nothing here is typed in.

use chrono::{DateTime, Days, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId};
use serde::{Deserialize, Serialize};

/// Days without an update from which an account is warned.
pub const WARNING_DAYS: i64 = 10;
/// Days without an update from which the veto holds: nothing published within two weeks.
pub const VETO_DAYS: i64 = 15;
/// The window the counts cover: the two weeks ending at the date assessed.
pub const WINDOW_DAYS: u64 = 14;
/// Points off per reply deadline missed, and at most.
pub const MISSED_REPLY_POINTS: (u32, u32) = (2, 20);
/// Points off per referral overdue, and at most.
pub const OVERDUE_REFERRAL_POINTS: (u32, u32) = (2, 10);
/// Points off per rectification order open and not overdue, and at most.
pub const OPEN_RECTIFICATION_POINTS: (u32, u32) = (1, 5);
/// Points off per rectification order overdue, and at most.
pub const OVERDUE_RECTIFICATION_POINTS: (u32, u32) = (5, 20);
/// Points off when the account has no active responsible person.
pub const NO_RESPONSIBLE_PERSON_POINTS: u32 = 10;
/// Points off when the account's credential is past its rotation date (R2.3.1).
pub const CREDENTIAL_ROTATION_POINTS: u32 = 5;

/// How an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// No veto item holds or is near.
    Compliant,
    /// A veto item is near.
    Warning,
    /// A veto item holds.
    Veto,
}

impl Level {
    /// Every level, best first.
    pub const ALL: [Level; 3] = [Level::Compliant, Level::Warning, Level::Veto];

    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Compliant => "compliant",
            Level::Warning => "warning",
            Level::Veto => "veto",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// Ordered worst-highest, for sorting in SQL.
    pub const fn severity(self) -> i64 {
        match self {
            Level::Compliant => 0,
            Level::Warning => 1,
            Level::Veto => 2,
        }
    }

    /// The audit record of moving from `previous` to `self`: raised when it got worse,
    /// cleared when it is compliant again; nothing for a veto easing to a warning (still
    /// an alert standing) or no change.
    pub fn alert_from(self, previous: Option<Level>) -> Option<AuditAction> {
        let previous = previous.unwrap_or(Level::Compliant);
        match (previous, self) {
            (p, n) if n > p && n == Level::Veto => Some(AuditAction::ComplianceVetoRaised),
            (p, n) if n > p => Some(AuditAction::ComplianceWarningRaised),
            (p, Level::Compliant) if p > Level::Compliant => Some(AuditAction::ComplianceCleared),
            _ => None,
        }
    }
}

/// What an item measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// Veto item: days since the last publication.
    UpdateFrequency,
    /// Veto item: the public is answered.
    Interaction,
    /// Veto item: a security incident on the account.
    SecurityIncident,
    /// Deduction: reply deadlines missed.
    ReplyTimeliness,
    /// Deduction: referrals overdue.
    OverdueReferrals,
    /// Deduction: no active responsible person.
    ResponsiblePerson,
    /// Deduction: rectification orders open and overdue.
    Rectification,
    /// Veto item: a serious wording error in published content.
    SeriousWordingError,
    /// Deduction: the account's credential is past its rotation date.
    CredentialRotation,
}

impl Indicator {
    /// The rule of the regulation the indicator checks.
    pub const fn rule(self) -> &'static str {
        match self {
            Indicator::UpdateFrequency => "R3.1.1",
            Indicator::Interaction | Indicator::ReplyTimeliness => "R4.1.1",
            Indicator::SecurityIncident => "R7.2.2",
            Indicator::OverdueReferrals => "R4.2.2",
            Indicator::ResponsiblePerson => "R2.1.1",
            Indicator::Rectification => "R8.1.2",
            Indicator::SeriousWordingError => "R3.2.3",
            Indicator::CredentialRotation => "R2.3.1",
        }
    }

    /// The name used in audit records and reports.
    pub const fn as_str(self) -> &'static str {
        match self {
            Indicator::UpdateFrequency => "update_frequency",
            Indicator::Interaction => "interaction",
            Indicator::SecurityIncident => "security_incident",
            Indicator::ReplyTimeliness => "reply_timeliness",
            Indicator::OverdueReferrals => "overdue_referrals",
            Indicator::ResponsiblePerson => "responsible_person",
            Indicator::Rectification => "rectification",
            Indicator::SeriousWordingError => "serious_wording_error",
            Indicator::CredentialRotation => "credential_rotation",
        }
    }
}

/// Whether the account answers the public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InteractionStatus {
    /// Comments and messages are answered.
    Working,
    /// The public waited past the deadline and nothing was answered in the window.
    NotAnswered,
    /// Nothing reached govmedia in the window: no channel configured or fed.
    NoChannel,
}

impl InteractionStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            InteractionStatus::Working => "working",
            InteractionStatus::NotAnswered => "not_answered",
            InteractionStatus::NoChannel => "no_channel",
        }
    }

    /// The stored name back.
    pub fn parse(s: &str) -> Option<Self> {
        [InteractionStatus::Working, InteractionStatus::NotAnswered, InteractionStatus::NoChannel]
            .into_iter()
            .find(|i| i.as_str() == s)
    }
}

/// One item of an assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// What it measures.
    pub indicator: Indicator,
    /// Warning or veto for a veto item; compliant for a deduction.
    pub level: Level,
    /// Points off (0 for veto items).
    pub deduction: u32,
    /// What was found.
    pub detail: String,
}

/// What identity's register says of an account at the time of assessing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredAccount {
    /// The account.
    pub id: PlatformAccountId,
    /// Its owning department.
    pub department: Option<DepartmentId>,
    /// The platform's name (`weibo`, `wechat`, ...).
    pub platform: String,
    /// The handle.
    pub handle: String,
    /// When it was registered.
    pub registered_at: DateTime<Utc>,
    /// Whether its responsible person is an active user.
    pub responsible_active: bool,
    /// When its stored credential must be rotated by (identity's vault); none when no
    /// credential is stored.
    pub credential_rotation_due: Option<DateTime<Utc>>,
}

/// What the audit log (and the service's own rectification register) says of an account
/// as of an instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogFacts {
    /// The last publication that counts (not retracted by then).
    pub last_publication_at: Option<DateTime<Utc>>,
    /// Comments and private messages received in the window.
    pub received: u32,
    /// Replies posted and private messages answered in the window.
    pub answered: u32,
    /// Comments and conversations escalated for a missed deadline in the window.
    pub missed_replies: u32,
    /// Referrals escalated as overdue in the window.
    pub overdue_referrals: u32,
    /// Security incidents reported on the account in the window.
    pub incidents: u32,
    /// Serious wording errors found in its published content in the window.
    pub wording_errors: u32,
    /// Rectification orders open on the account at the end of the period.
    pub open_rectifications: u32,
    /// Of which past their deadline.
    pub overdue_rectifications: u32,
}

/// The period a date's assessment covers, in a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The date assessed.
    pub date: NaiveDate,
    /// The first date of the window.
    pub window_start_date: NaiveDate,
    /// The window's first instant.
    pub start: DateTime<Utc>,
    /// Its end (exclusive): the end of the date, or now while the date lasts.
    pub end: DateTime<Utc>,
    /// True once the date is over.
    pub complete: bool,
}

/// The date `t` falls on in `tz`.
pub fn local_date(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// The first instant of `date` in `tz`.
pub fn start_of(date: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    // Zones with a gap at midnight start the day at the gap's end; Asia/Shanghai has none.
    tz.from_local_datetime(&midnight).earliest().map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

impl Period {
    /// The period of `date` as seen at `now`.
    pub fn of(date: NaiveDate, tz: Tz, now: DateTime<Utc>) -> Self {
        let window_start_date = date - Days::new(WINDOW_DAYS - 1);
        let day_end = start_of(date + Days::new(1), tz);
        Self {
            date,
            window_start_date,
            start: start_of(window_start_date, tz),
            end: day_end.min(now),
            complete: now >= day_end,
        }
    }
}

/// One account on one date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The account.
    pub account: PlatformAccountId,
    /// The date.
    pub date: NaiveDate,
    /// The department when assessed.
    pub department: Option<DepartmentId>,
    /// The platform's name.
    pub platform: String,
    /// The handle.
    pub handle: String,
    /// How it stands.
    pub level: Level,
    /// 100 minus the deductions.
    pub score: u32,
    /// Whole days from the last publication (or the registration) to the date.
    pub days_since_last_publication: i64,
    /// The last publication that counts.
    pub last_publication_at: Option<DateTime<Utc>>,
    /// Whether the public is answered.
    pub interaction: InteractionStatus,
    /// The log's counts over the window.
    pub facts: LogFacts,
    /// Whether the responsible person is active.
    pub responsible_active: bool,
    /// The items found.
    pub items: Vec<Item>,
    /// The window's first date.
    pub window_start_date: NaiveDate,
    /// When computed.
    pub computed_at: DateTime<Utc>,
    /// True once the date is over.
    pub is_final: bool,
}

impl Assessment {
    /// Assesses `account` over `period` from the log's `facts`.
    pub fn assess(
        account: &RegisteredAccount,
        facts: LogFacts,
        period: &Period,
        tz: Tz,
        computed_at: DateTime<Utc>,
    ) -> Self {
        let mut items = Vec::new();
        let since = facts.last_publication_at.unwrap_or(account.registered_at);
        let days = (period.date - local_date(since, tz)).num_days().max(0);
        let what =
            if facts.last_publication_at.is_some() { "the last publication" } else { "registration, never published" };
        if days >= VETO_DAYS {
            items.push(Item::veto(
                Indicator::UpdateFrequency,
                format!("{days} days since {what} (veto from {VETO_DAYS})"),
            ));
        } else if days >= WARNING_DAYS {
            items.push(Item {
                indicator: Indicator::UpdateFrequency,
                level: Level::Warning,
                deduction: 0,
                detail: format!("{days} days since {what} (veto from {VETO_DAYS})"),
            });
        }
        let interaction = if facts.received == 0 && facts.answered == 0 && facts.missed_replies == 0 {
            InteractionStatus::NoChannel
        } else if facts.missed_replies > 0 && facts.answered == 0 {
            InteractionStatus::NotAnswered
        } else {
            InteractionStatus::Working
        };
        if interaction == InteractionStatus::NotAnswered {
            items.push(Item::veto(
                Indicator::Interaction,
                format!(
                    "{} comments or messages missed their reply deadline and nothing was answered in {WINDOW_DAYS} days",
                    facts.missed_replies
                ),
            ));
        }
        if facts.incidents > 0 {
            items.push(Item::veto(
                Indicator::SecurityIncident,
                format!("{} security incidents reported in {WINDOW_DAYS} days", facts.incidents),
            ));
        }
        if facts.wording_errors > 0 {
            items.push(Item::veto(
                Indicator::SeriousWordingError,
                format!(
                    "{} serious wording errors found in published content in {WINDOW_DAYS} days",
                    facts.wording_errors
                ),
            ));
        }
        if facts.missed_replies > 0 {
            items.push(Item::deduction(
                Indicator::ReplyTimeliness,
                MISSED_REPLY_POINTS,
                facts.missed_replies,
                format!("{} reply deadlines missed", facts.missed_replies),
            ));
        }
        if facts.overdue_referrals > 0 {
            items.push(Item::deduction(
                Indicator::OverdueReferrals,
                OVERDUE_REFERRAL_POINTS,
                facts.overdue_referrals,
                format!("{} referrals overdue", facts.overdue_referrals),
            ));
        }
        if facts.open_rectifications > 0 {
            let on_time = facts.open_rectifications - facts.overdue_rectifications.min(facts.open_rectifications);
            let open = on_time.saturating_mul(OPEN_RECTIFICATION_POINTS.0).min(OPEN_RECTIFICATION_POINTS.1);
            let overdue = facts
                .overdue_rectifications
                .saturating_mul(OVERDUE_RECTIFICATION_POINTS.0)
                .min(OVERDUE_RECTIFICATION_POINTS.1);
            items.push(Item {
                indicator: Indicator::Rectification,
                level: Level::Compliant,
                deduction: open + overdue,
                detail: format!(
                    "{} rectification orders open, {} of them overdue",
                    facts.open_rectifications, facts.overdue_rectifications
                ),
            });
        }
        if !account.responsible_active {
            items.push(Item::deduction(
                Indicator::ResponsiblePerson,
                (NO_RESPONSIBLE_PERSON_POINTS, NO_RESPONSIBLE_PERSON_POINTS),
                1,
                "the responsible person is not an active user".to_owned(),
            ));
        }
        if let Some(due) = account.credential_rotation_due
            && due < period.end
        {
            items.push(Item::deduction(
                Indicator::CredentialRotation,
                (CREDENTIAL_ROTATION_POINTS, CREDENTIAL_ROTATION_POINTS),
                1,
                format!("the account's credential was due for rotation on {}", local_date(due, tz)),
            ));
        }
        let deducted: u32 = items.iter().map(|i| i.deduction).sum();
        Self {
            account: account.id,
            date: period.date,
            department: account.department,
            platform: account.platform.clone(),
            handle: account.handle.clone(),
            level: items.iter().map(|i| i.level).max().unwrap_or(Level::Compliant),
            score: 100u32.saturating_sub(deducted),
            days_since_last_publication: days,
            last_publication_at: facts.last_publication_at,
            interaction,
            facts,
            responsible_active: account.responsible_active,
            items,
            window_start_date: period.window_start_date,
            computed_at,
            is_final: period.complete,
        }
    }

    /// The veto items that hold or are near, for an alert's record.
    pub fn alert_detail(&self) -> String {
        let found: Vec<&str> =
            self.items.iter().filter(|i| i.level > Level::Compliant).map(|i| i.detail.as_str()).collect();
        found.join("; ")
    }
}

impl Item {
    fn veto(indicator: Indicator, detail: String) -> Self {
        Self { indicator, level: Level::Veto, deduction: 0, detail }
    }

    fn deduction(indicator: Indicator, (each, most): (u32, u32), count: u32, detail: String) -> Self {
        Self { indicator, level: Level::Compliant, deduction: each.saturating_mul(count).min(most), detail }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account() -> RegisteredAccount {
        RegisteredAccount {
            id: PlatformAccountId::new(),
            department: None,
            platform: "weibo".into(),
            handle: "bureau".into(),
            registered_at: "2026-01-01T00:00:00Z".parse().expect("time"),
            responsible_active: true,
            credential_rotation_due: None,
        }
    }

    fn on(date: &str, last: &str, facts: LogFacts) -> Assessment {
        let tz = chrono_tz::Asia::Shanghai;
        let date: NaiveDate = date.parse().expect("date");
        let now = start_of(date + Days::new(1), tz);
        let facts = LogFacts { last_publication_at: Some(last.parse().expect("time")), ..facts };
        Assessment::assess(&account(), facts, &Period::of(date, tz, now), tz, now)
    }

    #[test]
    fn silence_warns_from_day_10_and_vetoes_from_day_15_in_beijing_dates_r8_1_1() {
        // 20:00 UTC on the 1st is 04:00 on the 2nd in Beijing: day 0 is the 2nd.
        let last = "2026-03-01T20:00:00Z";
        assert_eq!(on("2026-03-11", last, LogFacts::default()).level, Level::Compliant);
        let warned = on("2026-03-12", last, LogFacts::default());
        assert_eq!((warned.level, warned.days_since_last_publication), (Level::Warning, 10));
        assert_eq!(on("2026-03-16", last, LogFacts::default()).level, Level::Warning);
        let vetoed = on("2026-03-17", last, LogFacts::default());
        assert_eq!((vetoed.level, vetoed.days_since_last_publication), (Level::Veto, 15));
        assert_eq!(vetoed.score, 100, "a veto item deducts nothing: it fails the account alone");
    }

    #[test]
    fn unanswered_public_and_incidents_are_veto_items_and_deductions_are_capped() {
        let last = "2026-03-10T02:00:00Z";
        let ignored = on("2026-03-12", last, LogFacts { received: 30, missed_replies: 25, ..LogFacts::default() });
        assert_eq!(ignored.interaction, InteractionStatus::NotAnswered);
        assert_eq!(ignored.level, Level::Veto);
        assert_eq!(ignored.score, 80, "2 points per missed deadline, at most 20");
        let slow =
            on("2026-03-12", last, LogFacts { received: 30, answered: 20, missed_replies: 3, ..LogFacts::default() });
        assert_eq!((slow.interaction, slow.level, slow.score), (InteractionStatus::Working, Level::Compliant, 94));
        let quiet = on("2026-03-12", last, LogFacts::default());
        assert_eq!(quiet.interaction, InteractionStatus::NoChannel);
        let behind = on(
            "2026-03-12",
            last,
            LogFacts { open_rectifications: 9, overdue_rectifications: 3, ..LogFacts::default() },
        );
        assert_eq!(behind.score, 100 - 5 - 15, "6 on time: 5 at most; 3 overdue: 15");
        let incident = on("2026-03-12", last, LogFacts { incidents: 1, ..LogFacts::default() });
        assert_eq!(incident.level, Level::Veto);
        assert!(incident.items.iter().any(|i| i.indicator == Indicator::SecurityIncident));
    }

    #[test]
    fn a_wording_error_is_a_veto_item_and_an_overdue_credential_rotation_a_deduction() {
        let last = "2026-03-10T02:00:00Z";
        let wrong = on("2026-03-12", last, LogFacts { wording_errors: 1, ..LogFacts::default() });
        assert_eq!((wrong.level, wrong.score), (Level::Veto, 100));
        assert!(
            wrong.items.iter().any(|i| i.indicator == Indicator::SeriousWordingError && i.indicator.rule() == "R3.2.3")
        );
        let tz = chrono_tz::Asia::Shanghai;
        let date: NaiveDate = "2026-03-12".parse().expect("date");
        let now = start_of(date + Days::new(1), tz);
        let facts = LogFacts { last_publication_at: Some(last.parse().expect("time")), ..LogFacts::default() };
        let assess = |due: &str| {
            let account = RegisteredAccount { credential_rotation_due: Some(due.parse().expect("time")), ..account() };
            Assessment::assess(&account, facts, &Period::of(date, tz, now), tz, now)
        };
        let overdue = assess("2026-03-12T03:00:00Z");
        assert_eq!((overdue.level, overdue.score), (Level::Compliant, 100 - CREDENTIAL_ROTATION_POINTS));
        assert!(overdue.items.iter().any(|i| i.indicator == Indicator::CredentialRotation));
        assert_eq!(assess("2026-03-20T00:00:00Z").score, 100, "not due yet");
    }

    #[test]
    fn alerts_are_raised_on_the_way_down_and_cleared_on_the_way_back() {
        assert_eq!(Level::Warning.alert_from(None), Some(AuditAction::ComplianceWarningRaised));
        assert_eq!(Level::Veto.alert_from(Some(Level::Warning)), Some(AuditAction::ComplianceVetoRaised));
        assert_eq!(Level::Warning.alert_from(Some(Level::Veto)), None);
        assert_eq!(Level::Warning.alert_from(Some(Level::Warning)), None);
        assert_eq!(Level::Compliant.alert_from(Some(Level::Veto)), Some(AuditAction::ComplianceCleared));
        assert_eq!(Level::Compliant.alert_from(None), None);
    }

    #[test]
    fn a_date_in_progress_ends_now_and_is_not_final() {
        let tz = chrono_tz::Asia::Shanghai;
        let now: DateTime<Utc> = "2026-03-12T04:00:00Z".parse().expect("time");
        let p = Period::of(local_date(now, tz), tz, now);
        assert_eq!(p.date.to_string(), "2026-03-12");
        assert_eq!(p.end, now);
        assert!(!p.complete);
        assert_eq!(p.window_start_date.to_string(), "2026-02-27");
        assert_eq!(p.start.to_rfc3339(), "2026-02-26T16:00:00+00:00");
    }
}
