//! Engagement campaigns (R4.3): what a department runs on which accounts and when, with
//! the participation recorded against it.

use chrono::{DateTime, Utc};
use govmedia_domain::ids::{CampaignId, DepartmentId, PlatformAccountId};

/// A campaign, with its totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Campaign {
    /// Id.
    pub id: CampaignId,
    /// Name.
    pub name: String,
    /// What it is.
    pub description: String,
    /// The department running it.
    pub department: DepartmentId,
    /// The accounts it runs on.
    pub accounts: Vec<PlatformAccountId>,
    /// Start.
    pub period_start: DateTime<Utc>,
    /// End.
    pub period_end: DateTime<Utc>,
    /// Participants recorded (sum over days and accounts).
    pub participant_count: i64,
    /// Engagements recorded.
    pub engagement_count: i64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Version (etag).
    pub version: i64,
}
