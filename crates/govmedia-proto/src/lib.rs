//! Generated Rust code for the govmedia v1 gRPC API (`proto/govmedia/**`), and the
//! encoded file descriptor set that servers hand to gRPC reflection.
//!
//! Nothing but generated code lives here: conversions to domain types belong in
//! `govmedia-domain` or in each service's `api` module.

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
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("govmedia.identity.v1");
    }
}

/// `govmedia.audit.v1`: the tamper-evident audit log and screening.
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
    "govmedia.content.v1.PlanService",
    "govmedia.content.v1.DraftService",
    "govmedia.content.v1.PublicationService",
    "govmedia.content.v1.MetricsService",
    "govmedia.interaction.v1.CommentService",
    "govmedia.interaction.v1.ModerationService",
    "govmedia.interaction.v1.ConversationService",
    "govmedia.interaction.v1.AudienceService",
];
