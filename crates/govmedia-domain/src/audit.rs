//! The audit event catalogue and the record every service writes for each state change
//! (R1.3.5, R9.2). Services build an [`AuditRecord`] in the same transaction as their
//! change (the kit's outbox stores it) and the relay ships it to the audit service,
//! where it is hash-chained.
//!
//! Actions are dotted names, `resource.verb[.detail]`, in the past tense: they record
//! what happened. A record never carries a secret: passwords, tokens and credentials
//! are named, never included.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DepartmentId, EventId, PlatformAccountId};

macro_rules! actions {
    ($($(#[$doc:meta])* $variant:ident => $name:literal,)*) => {
        /// One action of the audit catalogue.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum AuditAction {
            $($(#[$doc])* #[serde(rename = $name)] $variant,)*
        }

        impl AuditAction {
            /// Every action, in catalogue order.
            pub const ALL: &'static [AuditAction] = &[$(AuditAction::$variant,)*];

            /// The dotted name stored in the log.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)*
                }
            }
        }
    };
}

actions! {
    // identity: staff and sessions
    /// The first administrator was created on an empty database.
    AdministratorBootstrapped => "administrator.bootstrapped",
    /// A login succeeded.
    UserLoginSucceeded => "user.login.succeeded",
    /// A login failed (wrong password or unknown user).
    UserLoginFailed => "user.login.failed",
    /// A login was locked after repeated failures.
    UserLoginLocked => "user.login.locked",
    /// A session was ended by its user.
    UserLoggedOut => "user.logged_out",
    /// A refresh token was exchanged.
    SessionRefreshed => "session.refreshed",
    /// A session family was revoked (reuse of a spent refresh token, or by an admin).
    SessionRevoked => "session.revoked",
    /// A user changed their password.
    UserPasswordChanged => "user.password.changed",
    /// An administrator reset a user's password.
    UserPasswordReset => "user.password.reset",
    /// A user was created.
    UserCreated => "user.created",
    /// A user's details changed.
    UserUpdated => "user.updated",
    /// A user was disabled.
    UserDisabled => "user.disabled",
    /// A user was enabled.
    UserEnabled => "user.enabled",
    /// A locked login was unlocked.
    UserUnlocked => "user.unlocked",
    /// A department was created.
    DepartmentCreated => "department.created",
    /// A department changed.
    DepartmentUpdated => "department.updated",
    /// A service principal was registered.
    ServicePrincipalCreated => "service_principal.created",
    /// A service principal's secret was rotated.
    ServicePrincipalSecretRotated => "service_principal.secret_rotated",
    /// A service principal was disabled.
    ServicePrincipalDisabled => "service_principal.disabled",
    /// A disabled service principal was enabled again (R2.2.2).
    ServicePrincipalEnabled => "service_principal.enabled",
    /// A token-signing key was rotated.
    SigningKeyRotated => "signing_key.rotated",
    /// A login anomaly raised a security event.
    SecurityEventRaised => "security_event.raised",
    /// A security event was acknowledged.
    SecurityEventAcknowledged => "security_event.acknowledged",
    // identity: access
    /// A role was granted.
    RoleBindingCreated => "role_binding.created",
    /// A role was revoked.
    RoleBindingDeleted => "role_binding.deleted",
    /// A permission was refused at an RPC.
    PermissionDenied => "permission.denied",
    // identity: platform accounts
    /// A platform account was registered.
    PlatformAccountCreated => "platform_account.created",
    /// A platform account's profile changed.
    PlatformAccountUpdated => "platform_account.updated",
    /// A platform account was frozen.
    PlatformAccountFrozen => "platform_account.frozen",
    /// A platform account was unfrozen.
    PlatformAccountUnfrozen => "platform_account.unfrozen",
    /// A platform account started closing.
    PlatformAccountClosing => "platform_account.closing",
    /// A platform account was closed.
    PlatformAccountClosed => "platform_account.closed",
    /// An anomaly was reported on an account.
    AccountIncidentReported => "account_incident.reported",
    /// An action was recorded on an incident.
    AccountIncidentActionRecorded => "account_incident.action_recorded",
    /// An incident was resolved.
    AccountIncidentResolved => "account_incident.resolved",
    /// A credential was stored (rotated).
    CredentialStored => "credential.stored",
    /// A credential was revealed in clear text.
    CredentialRevealed => "credential.revealed",
    /// A reveal was refused: the account has an open incident (R2.3.3).
    CredentialRevealRefused => "credential.reveal_refused",
    /// A credential sealed by an older binding was sealed again, bound to its login name.
    CredentialResealed => "credential.resealed",
    // content
    /// A plan was created.
    PlanCreated => "plan.created",
    /// A plan changed.
    PlanUpdated => "plan.updated",
    /// A plan was cancelled.
    PlanCancelled => "plan.cancelled",
    /// A draft was created.
    DraftCreated => "draft.created",
    /// A new draft version was saved.
    DraftVersionSaved => "draft.version_saved",
    /// A draft was submitted for review.
    DraftSubmitted => "draft.submitted",
    /// A submission was refused by the automatic checks.
    DraftSubmissionBlocked => "draft.submission_blocked",
    /// A draft was withdrawn from review.
    DraftWithdrawn => "draft.withdrawn",
    /// A review stage approved a draft.
    DraftApproved => "draft.approved",
    /// A reviewer rejected a draft.
    DraftRejected => "draft.rejected",
    /// A reviewer requested changes.
    DraftChangesRequested => "draft.changes_requested",
    /// A proofreading pass was signed off.
    DraftProofread => "draft.proofread",
    /// A draft expired unapproved at its scheduled time.
    DraftExpired => "draft.expired",
    /// A publication was scheduled.
    PublicationScheduled => "publication.scheduled",
    /// A publication was cancelled.
    PublicationCancelled => "publication.cancelled",
    /// A publication was rescheduled.
    PublicationRescheduled => "publication.rescheduled",
    /// A publishing attempt failed (will retry).
    PublicationAttemptFailed => "publication.attempt_failed",
    /// A publication went out.
    PublicationPublished => "publication.published",
    /// A publication failed for good.
    PublicationFailed => "publication.failed",
    /// A publication expired unapproved.
    PublicationExpired => "publication.expired",
    /// A manual publication was recorded.
    PublicationRecordedManually => "publication.recorded_manually",
    /// A publication was retracted.
    PublicationRetracted => "publication.retracted",
    /// Published content screened again holds a misspelt critical name or non-standard
    /// wording that blocks: a serious wording error (R3.2.3; a readiness veto item).
    PublicationWordingErrorFound => "publication.wording_error_found",
    /// Published content screened again holds another blocking term (R7.1.1).
    PublicationBlockedTermFound => "publication.blocked_term_found",
    /// A feedback item was recorded.
    FeedbackCreated => "feedback.created",
    /// A feedback item was assigned.
    FeedbackAssigned => "feedback.assigned",
    /// A feedback item was closed.
    FeedbackClosed => "feedback.closed",
    /// Publication metrics were recorded.
    MetricsRecorded => "metrics.recorded",
    // interaction
    /// Comments were ingested.
    CommentIngested => "comment.ingested",
    /// A comment was flagged for review.
    CommentFlagged => "comment.flagged",
    /// A comment was assigned.
    CommentAssigned => "comment.assigned",
    /// A comment was hidden.
    CommentHidden => "comment.hidden",
    /// A comment was deleted.
    CommentDeleted => "comment.deleted",
    /// A hidden comment was restored.
    CommentRestored => "comment.restored",
    /// A comment was dismissed without reply.
    CommentDismissed => "comment.dismissed",
    /// A reply was written.
    ReplyCreated => "reply.created",
    /// A reply was refused by screening.
    ReplyRefused => "reply.refused",
    /// A reply was approved.
    ReplyApproved => "reply.approved",
    /// A reply was rejected.
    ReplyRejected => "reply.rejected",
    /// A reply was posted on the platform.
    ReplyPosted => "reply.posted",
    /// A moderation rule was created.
    ModerationRuleCreated => "moderation_rule.created",
    /// A moderation rule changed.
    ModerationRuleUpdated => "moderation_rule.updated",
    /// A moderation rule was deleted.
    ModerationRuleDeleted => "moderation_rule.deleted",
    /// An account's interaction settings changed.
    InteractionSettingsUpdated => "interaction_settings.updated",
    /// Private messages were ingested.
    MessageIngested => "message.ingested",
    /// A conversation was assigned.
    ConversationAssigned => "conversation.assigned",
    /// A reply was sent in a conversation.
    ConversationReplied => "conversation.replied",
    /// A conversation was marked important.
    ConversationMarkedImportant => "conversation.marked_important",
    /// A conversation was closed.
    ConversationClosed => "conversation.closed",
    /// A conversation was referred to a department.
    ReferralCreated => "referral.created",
    /// A referral was acknowledged.
    ReferralAcknowledged => "referral.acknowledged",
    /// A referral's outcome was recorded.
    ReferralOutcomeRecorded => "referral.outcome_recorded",
    /// A referral was closed.
    ReferralClosed => "referral.closed",
    /// A comment passed its reply deadline unanswered and was escalated (R4.1.1).
    CommentEscalated => "comment.escalated",
    /// A private message passed its answer deadline and was escalated (R4.2.1).
    ConversationEscalated => "conversation.escalated",
    /// A referral passed its due date without an outcome and was escalated (R4.2.2).
    ReferralEscalated => "referral.escalated",
    /// A department head acknowledged an escalation.
    EscalationAcknowledged => "escalation.acknowledged",
    /// An escalated item was answered and its escalation resolved.
    EscalationResolved => "escalation.resolved",
    /// Follower snapshots were recorded.
    FollowerSnapshotRecorded => "follower_snapshot.recorded",
    /// A campaign was created.
    CampaignCreated => "campaign.created",
    /// A campaign changed.
    CampaignUpdated => "campaign.updated",
    /// Campaign counts were recorded.
    CampaignMetricsRecorded => "campaign.metrics_recorded",
    // audit
    /// The lexicon changed.
    LexiconUpdated => "lexicon.updated",
    /// The whitelist changed.
    WhitelistUpdated => "whitelist.updated",
    /// The audit log was exported.
    AuditExported => "audit.exported",
    /// The audit log was verified.
    AuditVerified => "audit.verified",
    /// Every account was assessed for inspection readiness (R8.1.1).
    ComplianceAssessed => "compliance.assessed",
    /// An account came near a veto item: an inspection warning (R8.1.1).
    ComplianceWarningRaised => "compliance.warning_raised",
    /// A veto item holds for an account: it would fail an inspection (R8.1.1).
    ComplianceVetoRaised => "compliance.veto_raised",
    /// An account at warning or veto is compliant again.
    ComplianceCleared => "compliance.cleared",
    /// A rectification order was issued (R8.1.2).
    RectificationIssued => "rectification.issued",
    /// The person responsible submitted evidence of the fix.
    RectificationEvidenceSubmitted => "rectification.evidence_submitted",
    /// The evidence was verified: the order is closed.
    RectificationVerified => "rectification.verified",
    /// The evidence was returned to the person responsible.
    RectificationReturned => "rectification.returned",
    /// The order was cancelled.
    RectificationCancelled => "rectification.cancelled",
    /// A detector proposed a violation for a person to decide (R9.2).
    ViolationProposed => "violation.proposed",
    /// A person recorded a violation (R9.2).
    ViolationRecorded => "violation.recorded",
    /// A proposed violation was confirmed, with its handling.
    ViolationConfirmed => "violation.confirmed",
    /// A proposed violation was dismissed, with the reason.
    ViolationDismissed => "violation.dismissed",
    /// Feedback from the public was recorded (R8.2.1).
    PublicFeedbackRecorded => "public_feedback.recorded",
    /// Public feedback was given to the responsible department.
    PublicFeedbackTriaged => "public_feedback.triaged",
    /// The person who gave feedback was answered.
    PublicFeedbackAnswered => "public_feedback.answered",
    /// Public feedback was closed with the adjustment it led to (R8.2.2).
    PublicFeedbackClosed => "public_feedback.closed",
    /// An inspection or spot check was opened and its sample drawn (R8.1.1).
    InspectionCreated => "inspection.created",
    /// A verdict on a sampled item was recorded.
    InspectionVerdictRecorded => "inspection.verdict_recorded",
    /// An inspection was completed.
    InspectionCompleted => "inspection.completed",
    /// A security control was registered (R7.2.1).
    SecurityControlCreated => "security_control.created",
    /// A security control was verified, with evidence.
    SecurityControlVerified => "security_control.verified",
    /// A security control was retired.
    SecurityControlRetired => "security_control.retired",
    /// A security checklist was created (R7.2.2).
    SecurityChecklistCreated => "security_checklist.created",
    /// A security checklist was revised: a new version.
    SecurityChecklistRevised => "security_checklist.revised",
    /// A check of a department or account was scheduled every N days (R7.2.2).
    SecurityCheckScheduled => "security_check.scheduled",
    /// A schedule of security checks was cancelled.
    SecurityCheckScheduleCancelled => "security_check.schedule_cancelled",
    /// A security check was started (R7.2.2).
    SecurityCheckStarted => "security_check.started",
    /// Results of items of a security check were recorded.
    SecurityCheckResultsRecorded => "security_check.results_recorded",
    /// A security check was completed.
    SecurityCheckCompleted => "security_check.completed",
    /// A hidden danger was opened by a failed check item (R7.2.2).
    HiddenDangerOpened => "hidden_danger.opened",
    /// The owner submitted the fix of a hidden danger.
    HiddenDangerFixSubmitted => "hidden_danger.fix_submitted",
    /// The fix of a hidden danger was verified: closed.
    HiddenDangerClosed => "hidden_danger.closed",
    /// The fix of a hidden danger was not accepted: reopened.
    HiddenDangerReopened => "hidden_danger.reopened",
    /// A security incident was reported (R7.1.1, R7.2).
    SecurityIncidentReported => "security_incident.reported",
    /// An account anomaly raised by identity was linked as a security incident (R2.3.3).
    SecurityIncidentLinked => "security_incident.linked",
    /// A security incident was contained (publication retracted, account frozen).
    SecurityIncidentContained => "security_incident.contained",
    /// Investigation findings of a security incident were recorded.
    SecurityIncidentInvestigated => "security_incident.investigated",
    /// A security incident was marked as reported upward.
    SecurityIncidentReportedUpward => "security_incident.reported_upward",
    /// A security incident was closed with its root cause and actions.
    SecurityIncidentClosed => "security_incident.closed",
    // every service's outbox
    /// Dead letters of a service's audit outbox were put back to be delivered again.
    OutboxRedriven => "outbox.redriven",
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of principal an audit record speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A member of staff.
    User,
    /// A service principal.
    Service,
    /// govmedia itself (scheduler, relay, checks).
    System,
}

/// Who acted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// User, service or system.
    pub kind: ActorKind,
    /// The principal id; empty for the system or an unknown username.
    pub id: String,
    /// The display name at the time.
    pub display_name: String,
}

impl Actor {
    /// govmedia itself, naming the component (for example `content.scheduler`).
    pub fn system(component: &str) -> Self {
        Self { kind: ActorKind::System, id: String::new(), display_name: component.to_owned() }
    }
}

/// What the action was done to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditResourceRef {
    /// The resource type, for example `draft`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The resource id.
    pub id: String,
    /// The owning department, when there is one.
    pub department: Option<DepartmentId>,
    /// The platform account concerned, when there is one.
    pub platform_account: Option<PlatformAccountId>,
}

impl AuditResourceRef {
    /// A resource of `kind` with `id`.
    pub fn new(kind: &str, id: impl fmt::Display) -> Self {
        Self { kind: kind.to_owned(), id: id.to_string(), department: None, platform_account: None }
    }
}

/// Whether the action took effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It took effect.
    Success,
    /// It was attempted and failed.
    Failure,
    /// It was refused.
    Denied,
}

/// One audit event as a service records it, before the log chains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The event id: the idempotency key of delivery.
    pub id: EventId,
    /// When it happened.
    pub occur_time: DateTime<Utc>,
    /// The action's dotted name (kept as text so older relays ship newer actions).
    pub action: String,
    /// Who acted.
    pub actor: Actor,
    /// The client address, when known.
    pub client_address: Option<String>,
    /// The producing service, for example `identity`.
    pub producer: String,
    /// What it was done to.
    pub resource: AuditResourceRef,
    /// Success, failure or denial.
    pub outcome: Outcome,
    /// The regulation rule served or violated.
    pub rule_id: Option<String>,
    /// The stated reason.
    pub reason: Option<String>,
    /// Further facts; never a secret.
    pub attributes: BTreeMap<String, String>,
    /// The W3C trace id of the request.
    pub trace_id: Option<String>,
    /// The span that made the record, in that trace: kept in the outbox only, so the
    /// relay's delivery links to it (records written before it existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    /// The request_id of the mutation.
    pub request_id: Option<String>,
}

impl AuditRecord {
    /// A successful `action` by `actor` on `resource`, happening now.
    pub fn new(
        action: AuditAction,
        actor: Actor,
        resource: AuditResourceRef,
        producer: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            id: EventId::new(),
            occur_time: now,
            action: action.as_str().to_owned(),
            actor,
            client_address: None,
            producer: producer.to_owned(),
            resource,
            outcome: Outcome::Success,
            rule_id: None,
            reason: None,
            attributes: BTreeMap::new(),
            trace_id: None,
            span_id: None,
            request_id: None,
        }
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Names the rule served or violated.
    pub fn rule(mut self, rule_id: &str) -> Self {
        self.rule_id = Some(rule_id.to_owned());
        self
    }

    /// Records the stated reason, its personal data masked (R7.1.1): the log is
    /// append-only, so what enters it whole stays whole for ever.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(crate::personal::mask_all(&reason.into()));
        self
    }

    /// Adds a fact, its personal data masked (R7.1.1). Never pass a secret.
    pub fn attr(mut self, key: &str, value: impl fmt::Display) -> Self {
        self.attributes.insert(key.to_owned(), crate::personal::mask_all(&value.to_string()));
        self
    }

    /// Records the request's trace id and request id.
    pub fn request(mut self, trace_id: Option<String>, request_id: Option<String>) -> Self {
        self.trace_id = trace_id;
        self.request_id = request_id;
        self
    }

    /// Records the client address.
    pub fn client_address(mut self, address: Option<String>) -> Self {
        self.client_address = address;
        self
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn personal_data_never_enters_a_record_whole_r7_1_1() {
        let record = AuditRecord::new(
            AuditAction::DraftSubmissionBlocked,
            Actor::system("test"),
            AuditResourceRef::new("draft", "d1"),
            "content",
            Utc::now(),
        )
        .reason("市民来电13800138000反映")
        .attr("findings", "body \"110105199003071239\"");
        assert_eq!(record.reason.as_deref(), Some("市民来电138****8000反映"));
        assert_eq!(record.attributes["findings"], "body \"1101**********1239\"");
    }

    #[test]
    fn action_names_are_unique_dotted_and_lower_case() {
        let names: HashSet<_> = AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        for name in names {
            assert!(name.contains('.'), "{name} is not dotted");
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_'), "{name}");
        }
    }

    #[test]
    fn records_serialise_with_the_dotted_action_name() {
        let record = AuditRecord::new(
            AuditAction::CredentialRevealed,
            Actor { kind: ActorKind::User, id: "u1".into(), display_name: "Li Wei".into() },
            AuditResourceRef::new("platform_account", "a1"),
            "identity",
            Utc::now(),
        )
        .rule("R2.3.2")
        .reason("platform support asked for a login");
        let json = serde_json::to_string(&record).expect("serialises");
        assert!(json.contains("\"credential.revealed\""));
        let back: AuditRecord = serde_json::from_str(&json).expect("deserialises");
        assert_eq!(back, record);
    }
}
