//! The role and permission catalogue (R2.2.1, R6.1.1).
//!
//! Permissions are fine-grained verbs on resource kinds (`draft.review.department`).
//! Roles are built in, with fixed permission sets: the bureau's regulation names the
//! duties (editor, reviewer, leader, operator, ...), so a deployment cannot invent a
//! role that mixes authoring with approving. A role is given to a principal through a
//! scoped binding (see [`crate::scope`]).

use std::fmt;
use std::str::FromStr;

use crate::scope::ScopeKind;

macro_rules! permissions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// One permission of the catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Permission {
            $($(#[$doc])* $variant,)*
        }

        impl Permission {
    /// True for permissions guarding what an attacker wants: credentials, the audit log,
    /// role grants and accounts, people, drafts before publication, publishing. A refusal
    /// of one of these is audited (rate-limited per caller); a refused comment read is not.
    pub const fn is_sensitive(self) -> bool {
        matches!(
            self,
            Permission::UserManage
                | Permission::ServicePrincipalManage
                | Permission::RoleBindingManage
                | Permission::SecurityEventRead
                | Permission::SecurityEventManage
                | Permission::AccountManage
                | Permission::AccountCredentialManage
                | Permission::AccountCredentialReveal
                | Permission::DraftRead
                | Permission::DraftWrite
                | Permission::DraftReviewDepartment
                | Permission::DraftReviewSupervising
                | Permission::DraftApprovePrincipal
                | Permission::PublicationSchedule
                | Permission::PublicationRetract
                | Permission::AuditAppend
                | Permission::AuditRead
                | Permission::AuditVerify
                | Permission::AuditExport
                | Permission::LexiconManage
                | Permission::ViolationRead
                | Permission::ViolationManage
        )
    }

            /// Every permission, in catalogue order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The stable dotted name used on the wire and in audit events.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }
        }
    };
}

permissions! {
    // identity
    /// Read departments, users and service principals.
    DirectoryRead => "directory.read",
    /// Create and change departments.
    DepartmentManage => "department.manage",
    /// Create, change, disable, unlock users; reset passwords; revoke sessions.
    UserManage => "user.manage",
    /// Register service principals and rotate their secrets.
    ServicePrincipalManage => "service_principal.manage",
    /// Read role bindings of others.
    RoleBindingRead => "role_binding.read",
    /// Grant and revoke role bindings.
    RoleBindingManage => "role_binding.manage",
    /// Ask CheckPermission about other principals (services).
    PermissionCheck => "permission.check",
    /// Read login security events.
    SecurityEventRead => "security_event.read",
    /// Acknowledge login security events.
    SecurityEventManage => "security_event.manage",
    /// Read platform accounts, their history and credential metadata.
    AccountRead => "account.read",
    /// Register accounts, change profiles, freeze, close.
    AccountManage => "account.manage",
    /// Report an anomaly on an account (freezes it).
    AccountIncidentReport => "account.incident.report",
    /// Record actions on and resolve account incidents.
    AccountIncidentManage => "account.incident.manage",
    /// Store and rotate account credentials.
    AccountCredentialManage => "account.credential.manage",
    /// Reveal an account credential in clear text (always audited).
    AccountCredentialReveal => "account.credential.reveal",
    // content
    /// Read plans.
    PlanRead => "plan.read",
    /// Create, change and cancel plans.
    PlanWrite => "plan.write",
    /// Read drafts.
    DraftRead => "draft.read",
    /// Create and edit drafts, submit and withdraw them.
    DraftWrite => "draft.write",
    /// Decide the department first review (R3.2.2).
    DraftReviewDepartment => "draft.review.department",
    /// Decide the supervising leader review (R3.2.2).
    DraftReviewSupervising => "draft.review.supervising",
    /// Decide the principal leader approval (R3.2.2).
    DraftApprovePrincipal => "draft.approve.principal",
    /// Sign off a proofreading pass (R3.3.2).
    DraftProofread => "draft.proofread",
    /// Read publications.
    PublicationRead => "publication.read",
    /// Schedule, cancel, reschedule and record publications (R3.3.1).
    PublicationSchedule => "publication.schedule",
    /// Retract publications.
    PublicationRetract => "publication.retract",
    /// Record and handle post-publication feedback (R3.3.3).
    FeedbackManage => "feedback.manage",
    /// Read publication metrics and reports.
    MetricsRead => "metrics.read",
    /// Record publication metrics.
    MetricsWrite => "metrics.write",
    // interaction
    /// Ingest comments from platforms.
    CommentIngest => "comment.ingest",
    /// Read comments and the moderation queue.
    CommentRead => "comment.read",
    /// Hide, delete, restore, assign, dismiss comments (R4.1.3).
    CommentModerate => "comment.moderate",
    /// Reply to comments (R4.1.1).
    CommentReply => "comment.reply",
    /// Approve replies where an account requires it (R4.1.2).
    ReplyApprove => "reply.approve",
    /// Manage moderation rules and interaction settings.
    ModerationRuleManage => "moderation_rule.manage",
    /// Ingest private messages from platforms.
    MessageIngest => "message.ingest",
    /// Read private messages.
    MessageRead => "message.read",
    /// Assign, answer, mark and close conversations (R4.2.1).
    MessageHandle => "message.handle",
    /// Read referrals.
    ReferralRead => "referral.read",
    /// Refer conversations to departments and close referrals (R4.2.2).
    ReferralManage => "referral.manage",
    /// Acknowledge referrals and record outcomes, for the receiving department.
    ReferralHandle => "referral.handle",
    /// Read follower data.
    FollowerRead => "follower.read",
    /// Record follower snapshots.
    FollowerWrite => "follower.write",
    /// Read campaigns.
    CampaignRead => "campaign.read",
    /// Create and update campaigns and their counts.
    CampaignManage => "campaign.manage",
    /// Read response-time reports.
    InteractionReportRead => "interaction_report.read",
    /// Read the queue of missed reply deadlines (R4.1.1, R4.2.1, R4.2.2).
    EscalationRead => "escalation.read",
    /// Acknowledge escalations, as the head of the responsible department.
    EscalationHandle => "escalation.handle",
    // audit
    /// Append audit events (services only).
    AuditAppend => "audit.append",
    /// Read and query the audit log.
    AuditRead => "audit.read",
    /// Verify the audit log's hash chain.
    AuditVerify => "audit.verify",
    /// Export the audit log.
    AuditExport => "audit.export",
    /// Screen texts.
    ScreeningScreen => "screening.screen",
    /// Read the lexicon and whitelist.
    LexiconRead => "lexicon.read",
    /// Change the lexicon and whitelist.
    LexiconManage => "lexicon.manage",
    /// Read the inspection-readiness assessments of accounts (R8.1.1).
    ComplianceRead => "compliance.read",
    /// Run an inspection-readiness assessment now (R8.1.1).
    ComplianceManage => "compliance.manage",
    /// Read rectification orders (R8.1.2).
    RectificationRead => "rectification.read",
    /// Issue, verify and cancel rectification orders, as the bureau office (R8.1.2).
    RectificationIssue => "rectification.issue",
    /// Submit evidence of a fix, as the person responsible (R8.1.2).
    RectificationRespond => "rectification.respond",
    /// Read violation records (R9.2).
    ViolationRead => "violation.read",
    /// Record violations and decide proposed ones (R9.2).
    ViolationManage => "violation.manage",
    /// Read public feedback about the accounts, contacts masked (R8.2.1).
    PublicFeedbackRead => "public_feedback.read",
    /// Record public feedback and triage it to departments (R8.2.1).
    PublicFeedbackManage => "public_feedback.manage",
    /// Answer public feedback and close it with its adjustment, for the department (R8.2.2).
    PublicFeedbackHandle => "public_feedback.handle",
    /// Read inspections and their samples (R8.1.1).
    InspectionRead => "inspection.read",
    /// Open inspections and spot checks, judge their samples, complete them (R8.1.1).
    InspectionManage => "inspection.manage",
    /// Read the register of security controls (R7.2.1).
    SecurityControlRead => "security_control.read",
    /// Register, verify and retire security controls (R7.2.1).
    SecurityControlManage => "security_control.manage",
    /// Read security checklists, schedules, checks and hidden dangers (R7.2.2).
    SecurityCheckRead => "security_check.read",
    /// Keep checklists and schedules, run checks, verify fixes of hidden dangers (R7.2.2).
    SecurityCheckManage => "security_check.manage",
    /// Submit the fix of a hidden danger one owns (R7.2.2).
    SecurityCheckRespond => "security_check.respond",
    /// Read security incidents (R7.2).
    SecurityIncidentRead => "security_incident.read",
    /// Report a security incident: something confidential or wrong published, a leak.
    SecurityIncidentReport => "security_incident.report",
    /// Contain, investigate, report upward and close security incidents (R7.2.2).
    SecurityIncidentManage => "security_incident.manage",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a permission name is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown permission {0:?}")]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL.iter().copied().find(|p| p.as_str() == s).ok_or_else(|| UnknownPermission(s.to_owned()))
    }
}

/// A built-in role (R6.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Content editor (内容编辑): plans and drafts.
    Editor,
    /// Department reviewer (部门初审): the first review stage.
    DepartmentReviewer,
    /// Supervising leader (分管领导): the second review stage.
    SupervisingLeader,
    /// Principal leader (主要领导): the final approval.
    PrincipalLeader,
    /// Publisher / operator (运营人员): schedules and publishes on accounts.
    Publisher,
    /// Moderator: answers and moderates the public.
    Moderator,
    /// Moderation lead: a moderator who also approves replies and sets rules.
    ModerationLead,
    /// Auditor (局办公室): reads everything, verifies the audit log, supervises.
    Auditor,
    /// Security officer: security events, incidents, credentials, the lexicon.
    SecurityOfficer,
    /// Administrator: staff, roles, accounts. Approves no content.
    Administrator,
    /// A govmedia service talking to another (permission checks, audit, screening).
    GovmediaService,
    /// A system that feeds platform data in (comments, messages, metrics, followers).
    PlatformIntegration,
}

use Permission as P;

impl Role {
    /// Every role, in catalogue order.
    pub const ALL: &'static [Role] = &[
        Role::Editor,
        Role::DepartmentReviewer,
        Role::SupervisingLeader,
        Role::PrincipalLeader,
        Role::Publisher,
        Role::Moderator,
        Role::ModerationLead,
        Role::Auditor,
        Role::SecurityOfficer,
        Role::Administrator,
        Role::GovmediaService,
        Role::PlatformIntegration,
    ];

    /// The stable name used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Editor => "editor",
            Role::DepartmentReviewer => "department_reviewer",
            Role::SupervisingLeader => "supervising_leader",
            Role::PrincipalLeader => "principal_leader",
            Role::Publisher => "publisher",
            Role::Moderator => "moderator",
            Role::ModerationLead => "moderation_lead",
            Role::Auditor => "auditor",
            Role::SecurityOfficer => "security_officer",
            Role::Administrator => "administrator",
            Role::GovmediaService => "govmedia_service",
            Role::PlatformIntegration => "platform_integration",
        }
    }

    /// The title shown to people.
    pub const fn title(self) -> &'static str {
        match self {
            Role::Editor => "Content editor (内容编辑)",
            Role::DepartmentReviewer => "Department reviewer (部门初审)",
            Role::SupervisingLeader => "Supervising leader (分管领导)",
            Role::PrincipalLeader => "Principal leader (主要领导)",
            Role::Publisher => "Publisher / operator (运营人员)",
            Role::Moderator => "Moderator (互动管理)",
            Role::ModerationLead => "Moderation lead (互动管理负责人)",
            Role::Auditor => "Auditor, bureau office (局办公室)",
            Role::SecurityOfficer => "Security officer (安全管理员)",
            Role::Administrator => "Administrator (系统管理员)",
            Role::GovmediaService => "govmedia service",
            Role::PlatformIntegration => "Platform integration",
        }
    }

    /// What the role is for.
    pub const fn description(self) -> &'static str {
        match self {
            Role::Editor => "Plans content and writes drafts; proofreads; handles referrals to the department.",
            Role::DepartmentReviewer => "Decides the department first review (R3.2.2); proofreads; handles referrals.",
            Role::SupervisingLeader => "Decides the supervising leader review (R3.2.2).",
            Role::PrincipalLeader => "Gives the principal leader approval (R3.2.2).",
            Role::Publisher => "Schedules, publishes and retracts on accounts (R3.3.1); records metrics and feedback.",
            Role::Moderator => "Answers comments and private messages; hides and deletes improper comments (R4).",
            Role::ModerationLead => "A moderator who also approves replies and sets moderation rules (R4.1.2).",
            Role::Auditor => "The bureau office: reads everything, verifies and exports the audit log (R8.1.1).",
            Role::SecurityOfficer => {
                "Handles security events, account incidents, credentials and the lexicon (R2.3, R7)."
            }
            Role::Administrator => {
                "Manages staff, departments, roles and accounts; approves no content (R2.2); reads no audit log and \
                 is never also the security officer or the auditor (三员分立)."
            }
            Role::GovmediaService => "A govmedia service: checks permissions, appends audit events, screens text.",
            Role::PlatformIntegration => "Feeds platform data in: comments, messages, metrics, followers.",
        }
    }

    /// The permissions the role grants. Fixed: changing a set is a change of the
    /// product, reviewed like one (the permission-matrix test fails on any change).
    pub fn permissions(self) -> &'static [Permission] {
        match self {
            Role::Editor => &[
                P::DirectoryRead,
                P::AccountRead,
                P::PlanRead,
                P::PlanWrite,
                P::DraftRead,
                P::DraftWrite,
                P::DraftProofread,
                P::PublicationRead,
                P::MetricsRead,
                P::ReferralRead,
                P::ReferralHandle,
                P::FollowerRead,
                P::CampaignRead,
                P::RectificationRead,
                P::RectificationRespond,
                P::SecurityCheckRead,
                P::SecurityCheckRespond,
                P::SecurityIncidentRead,
                P::SecurityIncidentReport,
                P::PublicFeedbackRead,
                P::PublicFeedbackHandle,
            ],
            Role::DepartmentReviewer => &[
                P::DirectoryRead,
                P::AccountRead,
                P::PlanRead,
                P::DraftRead,
                P::DraftReviewDepartment,
                P::DraftProofread,
                P::PublicationRead,
                P::MetricsRead,
                P::ComplianceRead,
                P::RectificationRead,
                P::RectificationRespond,
                P::SecurityCheckRead,
                P::SecurityCheckRespond,
                P::SecurityIncidentRead,
                P::SecurityIncidentReport,
                P::PublicFeedbackRead,
                P::PublicFeedbackHandle,
                P::ReferralRead,
                P::ReferralHandle,
            ],
            Role::SupervisingLeader => &[
                P::DirectoryRead,
                P::AccountRead,
                P::PlanRead,
                P::DraftRead,
                P::DraftReviewSupervising,
                P::PublicationRead,
                P::MetricsRead,
                P::InteractionReportRead,
                P::EscalationRead,
                P::EscalationHandle,
                P::ComplianceRead,
                P::RectificationRead,
                P::RectificationRespond,
                P::SecurityCheckRead,
                P::SecurityCheckRespond,
                P::SecurityIncidentRead,
                P::SecurityIncidentReport,
                P::ViolationRead,
                P::PublicFeedbackRead,
                P::PublicFeedbackHandle,
            ],
            Role::PrincipalLeader => &[
                P::DirectoryRead,
                P::AccountRead,
                P::PlanRead,
                P::DraftRead,
                P::DraftApprovePrincipal,
                P::PublicationRead,
                P::MetricsRead,
                P::InteractionReportRead,
                P::EscalationRead,
                P::ComplianceRead,
                P::RectificationRead,
                P::ViolationRead,
                P::PublicFeedbackRead,
                P::InspectionRead,
                P::SecurityCheckRead,
                P::SecurityIncidentRead,
            ],
            Role::Publisher => &[
                P::DirectoryRead,
                P::AccountRead,
                P::AccountIncidentReport,
                P::AccountCredentialReveal,
                P::DraftRead,
                P::PublicationRead,
                P::PublicationSchedule,
                P::PublicationRetract,
                P::FeedbackManage,
                P::MetricsRead,
                P::MetricsWrite,
                P::FollowerRead,
                P::FollowerWrite,
                P::CampaignRead,
                P::CampaignManage,
                P::ComplianceRead,
                P::RectificationRead,
                P::RectificationRespond,
                P::SecurityCheckRead,
                P::SecurityCheckRespond,
                P::SecurityIncidentRead,
                P::SecurityIncidentReport,
                P::PublicFeedbackRead,
                P::PublicFeedbackHandle,
            ],
            Role::Moderator => &[
                P::DirectoryRead,
                P::AccountRead,
                P::CommentRead,
                P::CommentModerate,
                P::CommentReply,
                P::MessageRead,
                P::MessageHandle,
                P::ReferralRead,
                P::ReferralManage,
                P::FollowerRead,
                P::RectificationRead,
                P::RectificationRespond,
                P::SecurityCheckRead,
                P::SecurityCheckRespond,
                P::SecurityIncidentRead,
                P::SecurityIncidentReport,
                P::PublicFeedbackRead,
                P::PublicFeedbackHandle,
            ],
            Role::ModerationLead => &[
                P::DirectoryRead,
                P::AccountRead,
                P::CommentRead,
                P::CommentModerate,
                P::CommentReply,
                P::ReplyApprove,
                P::ModerationRuleManage,
                P::MessageRead,
                P::MessageHandle,
                P::ReferralRead,
                P::ReferralManage,
                P::FollowerRead,
                P::InteractionReportRead,
                P::EscalationRead,
                P::EscalationHandle,
                P::RectificationRead,
                P::RectificationRespond,
                P::SecurityCheckRead,
                P::SecurityCheckRespond,
                P::SecurityIncidentRead,
                P::SecurityIncidentReport,
                P::PublicFeedbackRead,
                P::PublicFeedbackManage,
                P::PublicFeedbackHandle,
            ],
            Role::Auditor => &[
                P::DirectoryRead,
                P::RoleBindingRead,
                P::SecurityEventRead,
                P::AccountRead,
                P::PlanRead,
                P::DraftRead,
                P::PublicationRead,
                P::MetricsRead,
                P::CommentRead,
                P::MessageRead,
                P::ReferralRead,
                P::FollowerRead,
                P::CampaignRead,
                P::InteractionReportRead,
                P::EscalationRead,
                P::AuditRead,
                P::AuditVerify,
                P::AuditExport,
                P::LexiconRead,
                P::ComplianceRead,
                P::ComplianceManage,
                P::RectificationRead,
                P::RectificationIssue,
                P::ViolationRead,
                P::ViolationManage,
                P::PublicFeedbackRead,
                P::PublicFeedbackManage,
                P::InspectionRead,
                P::InspectionManage,
                P::SecurityControlRead,
                P::SecurityCheckRead,
                P::SecurityIncidentRead,
                P::SecurityIncidentReport,
            ],
            Role::SecurityOfficer => &[
                P::DirectoryRead,
                P::RoleBindingRead,
                P::SecurityEventRead,
                P::SecurityEventManage,
                P::AccountRead,
                P::AccountIncidentReport,
                P::AccountIncidentManage,
                P::AccountCredentialManage,
                P::AuditRead,
                P::AuditVerify,
                P::LexiconRead,
                P::LexiconManage,
                P::ComplianceRead,
                P::ComplianceManage,
                P::RectificationRead,
                P::RectificationIssue,
                P::ViolationRead,
                P::ViolationManage,
                P::InspectionRead,
                P::SecurityControlRead,
                P::SecurityControlManage,
                P::SecurityCheckRead,
                P::SecurityCheckManage,
                P::SecurityIncidentRead,
                P::SecurityIncidentReport,
                P::SecurityIncidentManage,
                P::PublicationRetract,
            ],
            Role::Administrator => &[
                P::DirectoryRead,
                P::DepartmentManage,
                P::UserManage,
                P::ServicePrincipalManage,
                P::RoleBindingRead,
                P::RoleBindingManage,
                P::SecurityEventRead,
                P::SecurityEventManage,
                P::AccountRead,
                P::AccountManage,
                P::AccountIncidentReport,
                P::AccountIncidentManage,
                P::AccountCredentialManage,
                P::ModerationRuleManage,
                P::LexiconRead,
                P::LexiconManage,
            ],
            Role::GovmediaService => {
                &[P::DirectoryRead, P::AccountRead, P::PermissionCheck, P::AuditAppend, P::ScreeningScreen]
            }
            Role::PlatformIntegration => {
                &[P::AccountRead, P::CommentIngest, P::MessageIngest, P::MetricsWrite, P::FollowerWrite]
            }
        }
    }

    /// The scope kinds a binding of this role may have. Roles that oversee the whole
    /// bureau (auditor, security officer, administrator, services) are global only.
    pub fn allowed_scope_kinds(self) -> &'static [ScopeKind] {
        use ScopeKind::{Department, Global, PlatformAccount};
        match self {
            Role::Editor | Role::DepartmentReviewer | Role::Publisher | Role::Moderator | Role::ModerationLead => {
                &[Global, Department, PlatformAccount]
            }
            Role::SupervisingLeader => &[Global, Department],
            // The third approval is the bureau's top (主要领导), never a department's.
            Role::PrincipalLeader
            | Role::Auditor
            | Role::SecurityOfficer
            | Role::Administrator
            | Role::GovmediaService
            | Role::PlatformIntegration => &[Global],
        }
    }

    /// True when the role carries the permission.
    pub fn grants(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a role name is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.iter().copied().find(|r| r.as_str() == s).ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Renders the role x permission matrix as a Markdown table: the committed
/// `docs/permissions.md` is this text, checked by a test so the docs cannot drift.
pub fn permission_matrix_markdown() -> String {
    let mut out = String::from("| permission |");
    for role in Role::ALL {
        out.push_str(&format!(" {} |", role.as_str()));
    }
    out.push_str("\n|---|");
    for _ in Role::ALL {
        out.push_str(":-:|");
    }
    out.push('\n');
    for permission in Permission::ALL {
        out.push_str(&format!("| `{}` |", permission.as_str()));
        for role in Role::ALL {
            out.push_str(if role.grants(*permission) { " x |" } else { "   |" });
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let names: HashSet<_> = Permission::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.len(), Permission::ALL.len());
        for p in Permission::ALL {
            assert_eq!(p.as_str().parse::<Permission>(), Ok(*p));
        }
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(*r));
        }
        assert!("draft.delete_everything".parse::<Permission>().is_err());
    }

    /// R3.2.2 and R6.1.1: the three review stages belong to three different roles, and no
    /// role both writes drafts and decides a review stage.
    #[test]
    fn review_stages_are_separated_between_roles_r3_2_2() {
        let stages = [P::DraftReviewDepartment, P::DraftReviewSupervising, P::DraftApprovePrincipal];
        for role in Role::ALL {
            let held = stages.iter().filter(|s| role.grants(**s)).count();
            assert!(held <= 1, "{role} holds {held} review stages");
            if held == 1 {
                assert!(!role.grants(P::DraftWrite), "{role} both writes and reviews drafts");
            }
        }
    }

    /// R2.2.1: the administrator manages access but neither approves nor publishes
    /// content nor reads credentials.
    #[test]
    fn administrator_neither_approves_nor_publishes_r2_2_1() {
        for p in
            [P::DraftApprovePrincipal, P::DraftReviewDepartment, P::PublicationSchedule, P::AccountCredentialReveal]
        {
            assert!(!Role::Administrator.grants(p), "administrator must not hold {p}");
        }
    }

    #[test]
    fn every_permission_is_granted_by_some_role() {
        for p in Permission::ALL {
            assert!(Role::ALL.iter().any(|r| r.grants(*p)), "{p} is granted by no role");
        }
    }

    /// The committed docs/permissions.md shows exactly the catalogue. To refresh it after
    /// an intended change: `GOVMEDIA_BLESS=1 cargo test -p govmedia-domain`.
    #[test]
    fn permission_matrix_doc_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/permissions.md");
        let header = "# Roles and permissions\n\nGenerated from `crates/govmedia-domain/src/permission.rs` \
                      (R2.2.1, R6.1.1). Each role is bound to a principal in a scope: global, one \
                      department, or one platform account. Regenerate with \
                      `GOVMEDIA_BLESS=1 cargo test -p govmedia-domain`.\n\n";
        let mut expected = String::from(header);
        expected.push_str(&permission_matrix_markdown());
        expected.push_str("\n## Scopes each role may be bound in\n\n");
        for role in Role::ALL {
            let kinds: Vec<_> = role.allowed_scope_kinds().iter().map(|k| k.as_str()).collect();
            expected.push_str(&format!(
                "- `{}` — {}: {}. Scopes: {}.\n",
                role.as_str(),
                role.title(),
                role.description(),
                kinds.join(", ")
            ));
        }
        if std::env::var_os("GOVMEDIA_BLESS").is_some() {
            std::fs::write(path, &expected).expect("write docs/permissions.md");
        }
        let actual = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/permissions.md is out of date with the catalogue; run GOVMEDIA_BLESS=1 cargo test -p govmedia-domain"
        );
    }
}
