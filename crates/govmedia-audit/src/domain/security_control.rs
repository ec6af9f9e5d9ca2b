//! The register of security controls (R7.2.1): per asset, the controls in place, their
//! status, and their verification at least every interval; a control past its interval
//! is overdue.

use chrono::{DateTime, Duration, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, PrincipalId, SecurityControlId};

/// The rule the register serves.
pub const RULE: &str = "R7.2.1";
/// The longest verification interval, in days.
pub const MAX_INTERVAL_DAYS: u32 = 366;

use govmedia_domain::text_enum;

text_enum! {
    /// What is protected.
    AssetType {
        /// A platform account.
        PlatformAccount => "platform_account",
        /// A server.
        Server => "server",
        /// A group of workstations.
        WorkstationGroup => "workstation_group",
        /// A network segment.
        Network => "network",
    }
}

text_enum! {
    /// The kind of control.
    ControlType {
        /// A firewall.
        Firewall => "firewall",
        /// Antivirus.
        Antivirus => "antivirus",
        /// Access control.
        AccessControl => "access_control",
        /// Backup.
        Backup => "backup",
        /// The platform's two-factor login.
        TwoFactorLogin => "two_factor_login",
        /// Patching.
        Patching => "patching",
        /// Logging and monitoring.
        Logging => "logging",
        /// Encryption.
        Encryption => "encryption",
        /// Anything else.
        Other => "other",
    }
}

text_enum! {
    /// How a control stands.
    Status {
        /// In place and working.
        InPlace => "in_place",
        /// Partly in place.
        Partial => "partial",
        /// Missing or not working.
        Missing => "missing",
        /// Retired.
        Retired => "retired",
    }
}

/// A control of an asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityControl {
    /// The id.
    pub id: SecurityControlId,
    /// What is protected.
    pub asset_type: AssetType,
    /// The asset's id or inventory name.
    pub asset_id: String,
    /// Its name.
    pub asset_name: String,
    /// The kind of control.
    pub control_type: ControlType,
    /// What it is.
    pub description: String,
    /// How it stands.
    pub status: Status,
    /// Days between verifications.
    pub interval_days: u32,
    /// When last verified.
    pub verified_at: Option<DateTime<Utc>>,
    /// By whom.
    pub verified_by: Option<PrincipalId>,
    /// With what evidence (or why retired).
    pub evidence: String,
    /// The department that keeps the asset.
    pub department: Option<DepartmentId>,
    /// When registered.
    pub created_at: DateTime<Utc>,
    /// The row version.
    pub version: i64,
}

impl SecurityControl {
    /// When the next verification is due: the interval after the last one, or at once
    /// for a control never verified.
    pub fn next_due(&self) -> DateTime<Utc> {
        self.verified_at.map_or(self.created_at, |t| t + Duration::days(i64::from(self.interval_days)))
    }

    /// Past its interval (or never verified) and not retired.
    pub fn is_overdue(&self, now: DateTime<Utc>) -> bool {
        self.status != Status::Retired && now >= self.next_due()
    }

    fn subject(&self) -> String {
        format!("security control {}", self.id)
    }

    /// Records a verification.
    pub fn verify(
        &mut self,
        status: Status,
        evidence: String,
        by: PrincipalId,
        now: DateTime<Utc>,
    ) -> Result<AuditAction, Error> {
        if self.status == Status::Retired {
            return Err(Error::rule(RULE, self.subject(), "is retired: register a new control instead"));
        }
        if status == Status::Retired {
            return Err(Error::invalid("status", "a verification finds in place, partial or missing"));
        }
        self.status = status;
        self.evidence = evidence;
        self.verified_at = Some(now);
        self.verified_by = Some(by);
        self.version += 1;
        Ok(AuditAction::SecurityControlVerified)
    }

    /// Retires it.
    pub fn retire(&mut self, reason: String, by: PrincipalId, now: DateTime<Utc>) -> Result<AuditAction, Error> {
        if self.status == Status::Retired {
            return Err(Error::rule(RULE, self.subject(), "is retired already"));
        }
        self.status = Status::Retired;
        self.evidence = reason;
        self.verified_at = Some(now);
        self.verified_by = Some(by);
        self.version += 1;
        Ok(AuditAction::SecurityControlRetired)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_is_overdue_past_its_interval_or_never_verified_r7_2_1() {
        let now: DateTime<Utc> = "2026-11-29T02:00:00Z".parse().expect("time");
        let by = PrincipalId::from_uuid(uuid::Uuid::now_v7());
        let mut c = SecurityControl {
            id: SecurityControlId::new(),
            asset_type: AssetType::Server,
            asset_id: "web-01".into(),
            asset_name: "Web server".into(),
            control_type: ControlType::Firewall,
            description: "d".into(),
            status: Status::InPlace,
            interval_days: 30,
            verified_at: None,
            verified_by: None,
            evidence: String::new(),
            department: None,
            created_at: now,
            version: 1,
        };
        assert!(c.is_overdue(now), "never verified");
        c.verify(Status::InPlace, "rules reviewed".into(), by, now).expect("verified");
        assert!(!c.is_overdue(now + Duration::days(29)));
        assert!(c.is_overdue(now + Duration::days(30)));
        c.retire("server decommissioned".into(), by, now).expect("retired");
        assert!(!c.is_overdue(now + Duration::days(400)), "a retired control is not checked");
        assert!(c.verify(Status::InPlace, "x".into(), by, now).is_err());
    }
}
