//! Generated Rust code for the govmedia v1 gRPC API (`proto/govmedia/**`), and the
//! encoded file descriptor set that servers hand to gRPC reflection.
//!
//! Nothing but generated code lives here, and the few facts of the contract that code
//! generation cannot carry (which methods need no access token): conversions to domain
//! types belong in each service's `api` module.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

/// The encoded `FileDescriptorSet` of every govmedia .proto file (with its imports),
/// for `tonic-reflection`.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/govmedia_descriptor.bin"));

/// `govmedia.common.v1`: types shared by every service.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("govmedia.common.v1");
    }
}

/// `govmedia.identity.v1`: staff, sessions, roles, permission checks, platform accounts.
pub mod identity {
    /// Methods callable without an access token.
    pub const PUBLIC_METHODS: &[&str] = &[
        "/govmedia.identity.v1.AuthenticationService/Login",
        "/govmedia.identity.v1.AuthenticationService/RefreshSession",
        "/govmedia.identity.v1.AuthenticationService/ExchangeClientCredentials",
        "/govmedia.identity.v1.AuthenticationService/ListSigningKeys",
    ];

    /// Methods a session restricted to changing its password may call (R2.3.1).
    pub const PASSWORD_CHANGE_METHODS: &[&str] = &[
        "/govmedia.identity.v1.AuthenticationService/ChangePassword",
        "/govmedia.identity.v1.AuthenticationService/Logout",
        "/govmedia.identity.v1.AuthenticationService/GetCurrentPrincipal",
    ];

    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("govmedia.identity.v1");
    }
}

/// `govmedia.audit.v1`: the tamper-evident audit log, screening and supervision.
pub mod audit {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("govmedia.audit.v1");
    }
}

/// `govmedia.content.v1`: plans, drafts, review, publishing, metrics.
pub mod content {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("govmedia.content.v1");
    }
}

/// `govmedia.interaction.v1`: comments, private messages, referrals, followers.
pub mod interaction {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("govmedia.interaction.v1");
    }
}

/// The fully qualified names of every gRPC service in the v1 contract, for reflection
/// filters and the gateway's routing table.
pub const SERVICE_NAMES: &[&str] = &[
    "govmedia.identity.v1.AuthenticationService",
    "govmedia.identity.v1.DirectoryService",
    "govmedia.identity.v1.AccessService",
    "govmedia.identity.v1.PlatformAccountService",
    "govmedia.identity.v1.CredentialVaultService",
    "govmedia.audit.v1.AuditLogService",
    "govmedia.audit.v1.ScreeningService",
    "govmedia.audit.v1.ComplianceService",
    "govmedia.audit.v1.RectificationService",
    "govmedia.audit.v1.ViolationService",
    "govmedia.audit.v1.PublicFeedbackService",
    "govmedia.audit.v1.InspectionService",
    "govmedia.audit.v1.SecurityControlService",
    "govmedia.audit.v1.SecurityCheckService",
    "govmedia.audit.v1.SecurityIncidentService",
    "govmedia.content.v1.PlanService",
    "govmedia.content.v1.DraftService",
    "govmedia.content.v1.PublicationService",
    "govmedia.content.v1.MetricsService",
    "govmedia.interaction.v1.CommentService",
    "govmedia.interaction.v1.ModerationService",
    "govmedia.interaction.v1.ConversationService",
    "govmedia.interaction.v1.AudienceService",
    "govmedia.interaction.v1.EscalationService",
];
