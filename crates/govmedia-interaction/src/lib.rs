//! The interaction moderation service (`govmedia.interaction.v1`; R4): comments and
//! replies, moderation rules and queues, reply deadlines on a business-hours clock,
//! private messages with referrals, followers and campaigns.
//!
//! Layout, as in every service crate: `api/` (one file per gRPC service), `domain/`
//! (the rules), `store/` (SQL), `migrations/`. Built so far: the business calendar that
//! reply deadlines run on (`domain::calendar`) and the moderation rules
//! (`domain::moderation`). The services follow (issue 6); none is
//! served until all its RPCs are built.

pub mod domain;
