//! The bureau's platform accounts (R2.1, R2.3): the registry record, its lifecycle, the
//! profile history, the credential vault's records, and anomaly incidents.
//!
//! Lifecycle: active <-> frozen (by hand, or at once on an anomaly report), active or
//! frozen -> closing -> closed. A frozen account is unfrozen only when no anomaly
//! incident is open, and an incident is resolved only after the account's credential was
//! rotated after the report (R2.3.3). Nothing is published to an account that is not
//! active.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::audit::AuditAction;
use govmedia_domain::ids::{DepartmentId, IncidentId, PlatformAccountId, UserId};

/// R2.3.3: act at once on an anomaly.
pub const ANOMALY_RULE: &str = "R2.3.3";

use govmedia_domain::text_enum;

text_enum! {
    /// The platform.
    Platform {
        /// WeChat official account.
        WechatOfficialAccount => "wechat_official_account",
        /// Weibo.
        Weibo => "weibo",
        /// Douyin.
        Douyin => "douyin",
        /// Toutiao.
        Toutiao => "toutiao",
        /// Bilibili.
        Bilibili => "bilibili",
        /// Xiaohongshu.
        Xiaohongshu => "xiaohongshu",
        /// Another platform.
        Other => "other",
    }
}

text_enum! {
    /// Where an account is in its life.
    AccountState {
        /// In use.
        Active => "active",
        /// Nothing may be published.
        Frozen => "frozen",
        /// Being deregistered.
        Closing => "closing",
        /// Closed.
        Closed => "closed",
    }
}

text_enum! {
    /// Filing (备案) status.
    FilingStatus {
        /// Not filed.
        NotFiled => "not_filed",
        /// Submitted.
        Pending => "pending",
        /// Filed.
        Filed => "filed",
    }
}

text_enum! {
    /// Credential kind.
    CredentialKind {
        /// Console password.
        Password => "password",
        /// API secret.
        AppSecret => "app_secret",
    }
}

text_enum! {
    /// Incident state.
    IncidentState {
        /// Open; the account is frozen.
        Open => "open",
        /// Resolved.
        Resolved => "resolved",
    }
}

text_enum! {
    /// What was done about an incident.
    IncidentActionKind {
        /// Password changed.
        PasswordChanged => "password_changed",
        /// Platform support contacted.
        PlatformSupportContacted => "platform_support_contacted",
        /// Content removed.
        ContentRemoved => "content_removed",
        /// Escalated.
        Escalated => "escalated",
        /// Other.
        Other => "other",
    }
}

/// The public profile (R2.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// Name shown on the platform.
    pub display_name: String,
    /// Avatar URL.
    pub avatar_url: String,
    /// Bio.
    pub bio: String,
}

/// A platform account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformAccount {
    /// Id.
    pub id: PlatformAccountId,
    /// Platform.
    pub platform: Platform,
    /// Handle, unique per platform.
    pub handle: String,
    /// Profile.
    pub profile: Profile,
    /// Department running it.
    pub department: DepartmentId,
    /// Designated responsible person (R2.1.1).
    pub responsible: UserId,
    /// Filing status.
    pub filing_status: FilingStatus,
    /// Filing number.
    pub filing_number: String,
    /// Filing date.
    pub filing_date: Option<DateTime<Utc>>,
    /// Lifecycle state.
    pub state: AccountState,
    /// Why frozen or closing.
    pub state_reason: String,
    /// Current profile revision number.
    pub revision: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version (etag).
    pub version: i64,
}

/// A past profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    /// Revision number.
    pub revision: i64,
    /// The profile then.
    pub profile: Profile,
    /// The responsible person then.
    pub responsible: UserId,
    /// Who changed it.
    pub changed_by: String,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An account's credential (the secret sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The account.
    pub account: PlatformAccountId,
    /// Kind.
    pub kind: CredentialKind,
    /// Login name or app id.
    pub login_name: String,
    /// Nonce and ciphertext.
    pub sealed_secret: Vec<u8>,
    /// Sealing key id.
    pub sealing_key_id: String,
    /// What the sealed secret is bound to.
    pub binding: crate::domain::sealing::CredentialBinding,
    /// When stored.
    pub rotated_at: DateTime<Utc>,
    /// When due.
    pub rotation_due_at: DateTime<Utc>,
    /// Who stored it.
    pub rotated_by: String,
    /// Rotations so far.
    pub rotation_count: i64,
}

impl Credential {
    /// The associated data the secret was sealed with.
    pub fn sealing_owner(&self) -> String {
        self.binding.owner(&self.account.to_string(), &self.login_name)
    }
}

/// Evidence of an action.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Evidence {
    /// Where it is.
    pub uri: String,
    /// SHA-256, hex.
    pub sha256: String,
    /// What it shows.
    pub description: String,
}

/// An action on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentAction {
    /// Order within the incident.
    pub seq: i64,
    /// What was done.
    pub kind: IncidentActionKind,
    /// Details.
    pub note: String,
    /// Who.
    pub actor: String,
    /// Evidence.
    pub evidence: Evidence,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// An anomaly incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Id.
    pub id: IncidentId,
    /// The account.
    pub account: PlatformAccountId,
    /// What was observed.
    pub description: String,
    /// Reporter.
    pub reported_by: String,
    /// Reported at.
    pub reported_at: DateTime<Utc>,
    /// Open or resolved.
    pub state: IncidentState,
    /// Resolver.
    pub resolved_by: Option<String>,
    /// Resolved at.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Resolution.
    pub resolution: Option<String>,
    /// Version (etag).
    pub version: i64,
    /// Actions in order.
    pub actions: Vec<IncidentAction>,
}

fn transition_error(account: &PlatformAccount, action: &str) -> Error {
    Error::rule(
        "R2.1.1",
        format!("platform_account/{}", account.id),
        format!("a {} account cannot be {action}", account.state.as_str()),
    )
}

/// A step of an account's life after registration (R2.1.1, R2.3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Stop all activity on it (a security incident, a leak).
    Freeze,
    /// Resume it; refused while incidents are open.
    Unfreeze,
    /// Begin deregistering it on the platform.
    StartClosing,
    /// Record the platform's confirmation that it is closed.
    Close,
}

impl Lifecycle {
    /// Takes the step on `account` (`reason` given by the caller, `open_incidents` on it
    /// now) and bumps its version at `now`: the audit action and the rule it follows.
    pub fn apply(
        self,
        account: &mut PlatformAccount,
        reason: &str,
        open_incidents: usize,
        now: DateTime<Utc>,
    ) -> Result<(AuditAction, &'static str), Error> {
        let done = match self {
            Self::Freeze => freeze(account, reason).map(|()| (AuditAction::PlatformAccountFrozen, "R2.3.3")),
            Self::Unfreeze => {
                unfreeze(account, open_incidents).map(|()| (AuditAction::PlatformAccountUnfrozen, "R2.3.3"))
            }
            Self::StartClosing => {
                start_closing(account, reason).map(|()| (AuditAction::PlatformAccountClosing, "R2.1.1"))
            }
            Self::Close => close(account).map(|()| (AuditAction::PlatformAccountClosed, "R2.1.1")),
        }?;
        account.updated_at = now;
        account.version += 1;
        Ok(done)
    }

    /// The permission the step needs. Freezing is containment, which whoever handles
    /// account incidents (the security officer, the administrator) may do at once;
    /// unfreezing and closing change the register and are the administrator's.
    pub const fn permission(self) -> govmedia_domain::permission::Permission {
        use govmedia_domain::permission::Permission;
        match self {
            Self::Freeze => Permission::AccountIncidentManage,
            Self::Unfreeze | Self::StartClosing | Self::Close => Permission::AccountManage,
        }
    }

    /// Whether the caller must say why.
    pub const fn needs_reason(self) -> bool {
        !matches!(self, Self::Close)
    }

    /// Whether the platform's confirmation must be attached.
    pub const fn needs_evidence(self) -> bool {
        matches!(self, Self::Close)
    }
}

/// Freezes an active account.
pub fn freeze(account: &mut PlatformAccount, reason: &str) -> Result<(), Error> {
    match account.state {
        AccountState::Active => {
            account.state = AccountState::Frozen;
            account.state_reason = reason.to_owned();
            Ok(())
        }
        _ => Err(transition_error(account, "frozen")),
    }
}

/// Unfreezes a frozen account with no open incident (R2.3.3).
pub fn unfreeze(account: &mut PlatformAccount, open_incidents: usize) -> Result<(), Error> {
    if account.state != AccountState::Frozen {
        return Err(transition_error(account, "unfrozen"));
    }
    if open_incidents > 0 {
        return Err(Error::rule(
            ANOMALY_RULE,
            format!("platform_account/{}", account.id),
            "the account has an open anomaly incident; resolve it (after rotating the credential) to unfreeze",
        ));
    }
    account.state = AccountState::Active;
    account.state_reason.clear();
    Ok(())
}

/// Starts closing an active or frozen account.
pub fn start_closing(account: &mut PlatformAccount, reason: &str) -> Result<(), Error> {
    match account.state {
        AccountState::Active | AccountState::Frozen => {
            account.state = AccountState::Closing;
            account.state_reason = reason.to_owned();
            Ok(())
        }
        _ => Err(transition_error(account, "closed down")),
    }
}

/// Closes a closing account.
pub fn close(account: &mut PlatformAccount) -> Result<(), Error> {
    match account.state {
        AccountState::Closing => {
            account.state = AccountState::Closed;
            Ok(())
        }
        _ => Err(transition_error(account, "marked closed (start closing it first)")),
    }
}

/// Checks that an incident may be resolved: it is open and the credential was rotated
/// after it was reported (R2.3.3).
pub fn check_resolvable(incident: &Incident, credential_rotated_at: Option<DateTime<Utc>>) -> Result<(), Error> {
    if incident.state != IncidentState::Open {
        return Err(Error::Conflict("the incident is already resolved".into()));
    }
    match credential_rotated_at {
        Some(rotated) if rotated > incident.reported_at => Ok(()),
        _ => Err(Error::rule(
            ANOMALY_RULE,
            format!("account_incident/{}", incident.id),
            "the account's credential must be rotated after the anomaly was reported before the incident is resolved",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(state: AccountState) -> PlatformAccount {
        let now = Utc::now();
        PlatformAccount {
            id: PlatformAccountId::new(),
            platform: Platform::Weibo,
            handle: "bureau".into(),
            profile: Profile::default(),
            department: DepartmentId::new(),
            responsible: UserId::new(),
            filing_status: FilingStatus::NotFiled,
            filing_number: String::new(),
            filing_date: None,
            state,
            state_reason: String::new(),
            revision: 1,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    #[test]
    fn an_open_incident_keeps_the_account_frozen_r2_3_3() {
        let mut a = account(AccountState::Active);
        freeze(&mut a, "unknown login").expect("freezes");
        assert!(matches!(unfreeze(&mut a, 1), Err(Error::RuleViolated(v)) if v[0].rule_id == ANOMALY_RULE));
        unfreeze(&mut a, 0).expect("unfreezes");
        assert_eq!(a.state, AccountState::Active);
    }

    #[test]
    fn lifecycle_only_moves_forward_to_closed() {
        let mut a = account(AccountState::Active);
        assert!(close(&mut a).is_err());
        start_closing(&mut a, "merged into the main account").expect("closing");
        close(&mut a).expect("closed");
        assert!(freeze(&mut a, "x").is_err());
        assert!(start_closing(&mut a, "x").is_err());
    }

    #[test]
    fn resolving_needs_a_rotation_after_the_report_r2_3_3() {
        let reported = Utc::now();
        let incident = Incident {
            id: IncidentId::new(),
            account: PlatformAccountId::new(),
            description: "profile changed by someone else".into(),
            reported_by: "u".into(),
            reported_at: reported,
            state: IncidentState::Open,
            resolved_by: None,
            resolved_at: None,
            resolution: None,
            version: 1,
            actions: vec![],
        };
        assert!(check_resolvable(&incident, None).is_err());
        assert!(check_resolvable(&incident, Some(reported - chrono::Duration::minutes(1))).is_err());
        check_resolvable(&incident, Some(reported + chrono::Duration::minutes(1))).expect("resolvable");
    }
}
