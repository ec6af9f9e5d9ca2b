//! Platform connectors: how an approved publication leaves govmedia (R3.3).
//!
//! The scheduler hands a connector one [`Outgoing`] item and gets back a [`Receipt`] or
//! a [`ConnectorError`] that says whether trying again can help. The workflow knows only
//! this trait, so a WeChat or Weibo connector is one more implementation chosen per
//! account; nothing in review, scheduling or audit changes. Every publish carries the
//! publication id as its idempotency key: the scheduler may call twice after a crash
//! between "sent" and "recorded", and a connector (or the receiver behind it) must make
//! the second call a no-op that answers with the first receipt.
//!
//! Built here: [`archive::ArchiveConnector`] (writes each publication to a folder, the
//! default for a local install) and [`webhook::WebhookConnector`] (HMAC-signed HTTP
//! POST of a documented JSON payload; docs/connectors.md). A publication made by hand
//! on a platform with no API is recorded through `RecordManualPublication` instead.

pub mod archive;
pub mod webhook;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One publication on its way out: what was approved, for which account, and who
/// approved and proofread it (R3.3.2: the names travel with the publication).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    /// The publication id; also the idempotency key of the publish.
    pub publication_id: String,
    /// The platform account it is published on.
    pub platform_account_id: String,
    /// The platform, as the contract names it (`weibo`, `wechat_official_account`, …).
    pub platform: String,
    /// The draft and the approved version published.
    pub draft_id: String,
    /// The approved version.
    pub draft_version: i64,
    /// Title.
    pub title: String,
    /// Body text.
    pub body: String,
    /// Media references (cover first where the platform needs one).
    pub media: Vec<String>,
    /// When it was scheduled for.
    pub scheduled_at: DateTime<Utc>,
    /// The reviewers who approved each stage, in order.
    pub approvers: Vec<String>,
    /// The proofreaders who signed off.
    pub proofreaders: Vec<String>,
}

/// What the platform answered: where the publication now lives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The platform's own id for the post, if it gave one.
    #[serde(default)]
    pub platform_post_id: String,
    /// The public address of the post, if known.
    #[serde(default)]
    pub url: String,
}

/// Why a connector could not publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Worth trying again later: the platform was down, slow or rate-limited.
    #[error("temporary failure: {0}")]
    Transient(String),
    /// Trying again will not help: the platform refused the content or the setup is wrong.
    /// The publication goes to the failed state with this message for a person to act on.
    #[error("refused: {0}")]
    Permanent(String),
}

impl ConnectorError {
    /// Whether the scheduler should try again later.
    pub fn is_transient(&self) -> bool {
        matches!(self, ConnectorError::Transient(_))
    }
}

/// A way to put publications on a platform. Implementations must be idempotent per
/// `publication_id` (see the module doc).
#[async_trait::async_trait]
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The connector's name as stored with each publication (`archive`, `webhook`, …).
    fn name(&self) -> &'static str;

    /// Publishes one item.
    async fn publish(&self, item: &Outgoing) -> Result<Receipt, ConnectorError>;

    /// Takes a publication down (R3.3: retraction), with the reason given.
    async fn retract(
        &self,
        publication_id: &str,
        platform_account_id: &str,
        reason: &str,
    ) -> Result<(), ConnectorError>;
}
