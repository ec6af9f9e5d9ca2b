//! Follower snapshots and engagement campaigns (R4.3).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{CampaignId, DepartmentId, PlatformAccountId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Tx, db_error, lock_row, saved};
use govmedia_kit::{on_tx, sql};

use super::{id, parsed};
use crate::domain::campaign::Campaign;

/// Followers of one account on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The account.
    pub account: PlatformAccountId,
    /// The day.
    pub date: NaiveDate,
    /// Total followers.
    pub follower_count: i64,
    /// New that day.
    pub new_followers: i64,
    /// Lost that day.
    pub lost_followers: i64,
    /// The platform's breakdown.
    pub breakdown: BTreeMap<String, u64>,
}

#[derive(sqlx::FromRow)]
struct SnapshotRow {
    platform_account_id: String,
    snapshot_date: String,
    follower_count: i64,
    new_followers: i64,
    lost_followers: i64,
    breakdown: String,
}

fn date(column: &str, s: &str) -> Result<NaiveDate, Error> {
    parsed(column, s, |x| NaiveDate::parse_from_str(x, "%Y-%m-%d").ok())
}

/// Stores a snapshot, replacing the same day's; true when it replaced one.
pub async fn upsert_snapshot(tx: &mut Tx, s: &Snapshot, now: DateTime<Utc>) -> Result<bool, Error> {
    let breakdown = serde_json::to_string(&s.breakdown).map_err(Error::internal)?;
    let day = s.date.format("%Y-%m-%d").to_string();
    let existed: i64 = on_tx!(tx, |conn, dialect| {
        sqlx::query_scalar(
            &dialect
                .sql("SELECT COUNT(*) FROM follower_snapshots WHERE platform_account_id = $1 AND snapshot_date = $2"),
        )
        .bind(s.account.to_string())
        .bind(&day)
        .fetch_one(conn)
        .await
    })
    .map_err(db_error)?;
    sql!(
        tx,
        execute,
        "INSERT INTO follower_snapshots (platform_account_id, snapshot_date, follower_count, new_followers, \
             lost_followers, breakdown, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (platform_account_id, snapshot_date) DO UPDATE SET follower_count = $3, new_followers = $4, \
             lost_followers = $5, breakdown = $6, recorded_at = $7",
        s.account.to_string(),
        &day,
        s.follower_count,
        s.new_followers,
        s.lost_followers,
        &breakdown,
        now
    )
    .map_err(db_error)?;
    Ok(existed > 0)
}

/// An account's snapshots from `from` to `to` inclusive, oldest first.
pub async fn snapshots(
    tx: &mut Tx,
    account: PlatformAccountId,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Snapshot>, Error> {
    let rows: Vec<SnapshotRow> = sql!(
        tx,
        fetch_all,
        "SELECT platform_account_id, snapshot_date, follower_count, new_followers, lost_followers, breakdown \
             FROM follower_snapshots WHERE platform_account_id = $1 AND snapshot_date >= $2 AND snapshot_date <= $3 \
             ORDER BY snapshot_date",
        account.to_string(),
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string()
    )
    .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            Ok(Snapshot {
                account: id("follower_snapshots.platform_account_id", &r.platform_account_id)?,
                date: date("follower_snapshots.snapshot_date", &r.snapshot_date)?,
                follower_count: r.follower_count,
                new_followers: r.new_followers,
                lost_followers: r.lost_followers,
                breakdown: serde_json::from_str(&r.breakdown).map_err(Error::internal)?,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct CampaignRow {
    id: String,
    name: String,
    description: String,
    department_id: String,
    platform_account_ids: String,
    period_start: DateTime<Utc>,
    period_end: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
    participant_total: i64,
    engagement_total: i64,
}

impl TryFrom<CampaignRow> for Campaign {
    type Error = Error;

    fn try_from(r: CampaignRow) -> Result<Self, Error> {
        Ok(Campaign {
            id: id("campaigns.id", &r.id)?,
            name: r.name,
            description: r.description,
            department: id("campaigns.department_id", &r.department_id)?,
            accounts: r
                .platform_account_ids
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| id("campaigns.platform_account_ids", s))
                .collect::<Result<_, _>>()?,
            period_start: r.period_start,
            period_end: r.period_end,
            participant_count: r.participant_total,
            engagement_count: r.engagement_total,
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

const SELECT_CAMPAIGN: &str = "SELECT c.id, c.name, c.description, c.department_id, c.platform_account_ids, \
     c.period_start, c.period_end, c.created_at, c.updated_at, c.version, \
     CAST(COALESCE((SELECT SUM(m.participant_count) FROM campaign_metrics m WHERE m.campaign_id = c.id), 0) AS BIGINT) AS participant_total, \
     CAST(COALESCE((SELECT SUM(m.engagement_count) FROM campaign_metrics m WHERE m.campaign_id = c.id), 0) AS BIGINT) AS engagement_total \
     FROM campaigns c";

fn joined(accounts: &[PlatformAccountId]) -> String {
    accounts.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Inserts a campaign.
pub async fn insert_campaign(tx: &mut Tx, c: &Campaign) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO campaigns (id, name, description, department_id, platform_account_ids, period_start, \
             period_end, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        c.id.to_string(),
        &c.name,
        &c.description,
        c.department.to_string(),
        joined(&c.accounts),
        c.period_start,
        c.period_end,
        c.created_at,
        c.updated_at,
        c.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a campaign if its version is unchanged.
pub async fn save_campaign(tx: &mut Tx, c: &Campaign, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE campaigns SET name = $2, description = $3, platform_account_ids = $4, period_start = $5, \
             period_end = $6, updated_at = $7, version = $8 WHERE id = $1 AND version = $9",
        c.id.to_string(),
        &c.name,
        &c.description,
        joined(&c.accounts),
        c.period_start,
        c.period_end,
        c.updated_at,
        c.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "campaign")
}

#[derive(sqlx::FromRow)]
struct Locked {
    #[allow(dead_code)] // the row is fetched for its lock
    id: String,
}

/// One campaign with its totals, locked for a change `grant` allows on its department.
pub async fn lock_campaign(tx: &mut Tx, campaign: CampaignId, grant: &Authorized) -> Result<Campaign, Error> {
    let _: Locked = lock_row(tx, "campaigns", &campaign.to_string(), grant)
        .await?
        .ok_or_else(|| Error::not_found("campaign", campaign))?;
    let campaign = get_campaign(tx, campaign).await?.ok_or_else(|| Error::not_found("campaign", campaign))?;
    grant.ensure_covers(Some(campaign.department), &[])?;
    Ok(campaign)
}

/// One campaign with its totals, as it is now.
pub async fn get_campaign(tx: &mut Tx, campaign: CampaignId) -> Result<Option<Campaign>, Error> {
    let sql = format!("{SELECT_CAMPAIGN} WHERE c.id = $1");
    let row: Option<CampaignRow> = sql!(tx, fetch_optional, &sql, campaign.to_string()).map_err(db_error)?;
    row.map(Campaign::try_from).transpose()
}

/// Filters of [`list_campaigns`].
#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    /// Only this department.
    pub department: Option<DepartmentId>,
    /// Only on this account.
    pub account: Option<PlatformAccountId>,
    /// Only ending after this.
    pub from: Option<DateTime<Utc>>,
    /// Only starting before this.
    pub to: Option<DateTime<Utc>>,
}

/// Campaigns, latest start first, after the cursor.
pub async fn list_campaigns(
    tx: &mut Tx,
    f: &CampaignFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Campaign>, Error> {
    let far = super::far_future();
    let (after_at, after_id) = after.unwrap_or((far, String::new()));
    let sql = format!(
        "{SELECT_CAMPAIGN} WHERE ($1 = '' OR c.department_id = $1) \
         AND ($2 = '' OR ',' || c.platform_account_ids || ',' LIKE '%,' || $2 || ',%') \
         AND c.period_end > $3 AND c.period_start < $4 \
         AND (c.period_start < $5 OR (c.period_start = $5 AND ($6 = '' OR c.id < $6))) \
         ORDER BY c.period_start DESC, c.id DESC LIMIT $7"
    );
    let rows: Vec<CampaignRow> = sql!(
        tx,
        fetch_all,
        &sql,
        f.department.map(|d| d.to_string()).unwrap_or_default(),
        f.account.map(|a| a.to_string()).unwrap_or_default(),
        f.from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        f.to.unwrap_or(far),
        after_at,
        &after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Campaign::try_from).collect()
}

/// Stores a campaign's counts on an account for a day, replacing the same day's.
pub async fn upsert_campaign_metrics(
    tx: &mut Tx,
    campaign: CampaignId,
    account: PlatformAccountId,
    day: NaiveDate,
    participants: i64,
    engagements: i64,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO campaign_metrics (campaign_id, platform_account_id, metric_date, participant_count, \
             engagement_count, recorded_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (campaign_id, platform_account_id, metric_date) DO UPDATE SET participant_count = $4, \
             engagement_count = $5, recorded_at = $6",
        campaign.to_string(),
        account.to_string(),
        day.format("%Y-%m-%d").to_string(),
        participants,
        engagements,
        now
    )
    .map_err(db_error)?;
    Ok(())
}
