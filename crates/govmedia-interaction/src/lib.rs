//! The interaction moderation service (`govmedia.interaction.v1`; R4): comments and
//! replies, moderation rules and queues, reply deadlines on a business-hours clock,
//! private messages with referrals, followers and campaigns.
//!
//! Layout, as in every service crate: `api/` (one file per gRPC service), `domain/`
//! (the rules), `store/` (SQL), `migrations/`. Built so far, all in `domain/`: the
//! business calendar reply deadlines run on (`calendar`), the moderation rules
//! (`moderation`) and response-time figures (`response`). The services follow
//! (issue 6); none is served until all its RPCs are built.

pub mod domain;
