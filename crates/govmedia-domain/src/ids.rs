//! Typed ids. Every resource id is a UUIDv7 (time-ordered, so keyset pagination by id
//! follows creation order) wrapped in its own type, so a `UserId` can never be passed
//! where a `DraftId` is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// Why a text is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id (expected a UUID such as 01890a5d-ac96-774b-bcce-b302099a8057)")]
pub struct InvalidId;

macro_rules! typed_id {
    ($($(#[$doc:meta])* $name:ident;)*) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps an existing UUID (read back from a store).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s.trim()).map(Self).map_err(|_| InvalidId)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    )*};
}

typed_id! {
    /// A member of staff.
    UserId;
    /// A service principal (another government system, or a govmedia service).
    ServicePrincipalId;
    /// A department of the bureau.
    DepartmentId;
    /// One of the bureau's platform accounts.
    PlatformAccountId;
    /// A role binding.
    RoleBindingId;
    /// A login session family (all tokens rotated from one login).
    SessionId;
    /// A security event raised by identity.
    SecurityEventId;
    /// An anomaly incident on a platform account.
    IncidentId;
    /// A content plan.
    PlanId;
    /// A draft.
    DraftId;
    /// A review decision.
    ReviewDecisionId;
    /// A publication.
    PublicationId;
    /// A post-publication feedback item.
    FeedbackItemId;
    /// A comment of the public.
    CommentId;
    /// A staff reply to a comment.
    ReplyId;
    /// A moderation rule.
    ModerationRuleId;
    /// A private-message conversation.
    ConversationId;
    /// A private message.
    MessageId;
    /// A referral to a department.
    ReferralId;
    /// An escalation of a missed reply deadline.
    EscalationId;
    /// A rectification order (R8.1.2).
    RectificationId;
    /// A violation record (R9.2).
    ViolationId;
    /// A piece of public feedback about the accounts (R8.2.1).
    PublicFeedbackId;
    /// An inspection or spot check by the bureau office (R8.1.1).
    InspectionId;
    /// A security control of an asset (R7.2.1).
    SecurityControlId;
    /// A security checklist (R7.2.2).
    SecurityChecklistId;
    /// A schedule of security checks (R7.2.2).
    SecurityCheckScheduleId;
    /// A security check run (R7.2.2).
    SecurityCheckId;
    /// A hidden danger found by a security check (R7.2.2).
    HiddenDangerId;
    /// A security incident (R7.2).
    SecurityIncidentId;
    /// An engagement campaign.
    CampaignId;
    /// An audit event; the idempotency key of audit appends.
    EventId;
    /// A lexicon entry.
    LexiconEntryId;
    /// A whitelist entry.
    WhitelistEntryId;
    /// The idempotency key of a mutating request, chosen by the caller.
    RequestId;
}

/// The id of any principal: users and service principals share one id space (both are
/// UUIDv7), so a principal id alone identifies either.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PrincipalId(Uuid);

impl PrincipalId {
    /// Wraps an existing UUID.
    pub const fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The UUID inside.
    pub const fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl From<UserId> for PrincipalId {
    fn from(id: UserId) -> Self {
        Self(id.as_uuid())
    }
}

impl From<ServicePrincipalId> for PrincipalId {
    fn from(id: ServicePrincipalId) -> Self {
        Self(id.as_uuid())
    }
}

impl FromStr for PrincipalId {
    type Err = InvalidId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(Self).map_err(|_| InvalidId)
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrincipalId({})", self.0.hyphenated())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_uuid_v7() {
        let a = DraftId::new();
        let b = DraftId::new();
        assert_eq!(a.as_uuid().get_version_num(), 7);
        assert!(a < b, "a later id sorts after an earlier one");
    }

    #[test]
    fn ids_round_trip_through_text() {
        let id = UserId::new();
        let parsed: UserId = id.to_string().parse().expect("parses");
        assert_eq!(id, parsed);
        assert_eq!("not-an-id".parse::<UserId>(), Err(InvalidId));
    }
}
