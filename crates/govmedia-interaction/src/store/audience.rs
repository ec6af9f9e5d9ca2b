//! Follower snapshots and engagement campaigns (R4.3).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{CampaignId, DepartmentId, PlatformAccountId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Tx, db_error, lock_row, saved};
use govmedia_kit::on_tx;

use super::{id, parsed};

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
    on_tx!(tx, |conn, dialect| {
        sqlx::query(&dialect.sql(
            "INSERT INTO follower_snapshots (platform_account_id, snapshot_date, follower_count, new_followers, \
             lost_followers, breakdown, recorded_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (platform_account_id, snapshot_date) DO UPDATE SET follower_count = $3, new_followers = $4, \
             lost_followers = $5, breakdown = $6, recorded_at = $7",
        ))
        .bind(s.account.to_string())
        .bind(&day)
        .bind(s.follower_count)
        .bind(s.new_followers)
        .bind(s.lost_followers)
        .bind(&breakdown)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
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
    let rows: Vec<SnapshotRow> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(&dialect.sql(
            "SELECT platform_account_id, snapshot_date, follower_count, new_followers, lost_followers, breakdown \
             FROM follower_snapshots WHERE platform_account_id = $1 AND snapshot_date >= $2 AND snapshot_date <= $3 \
             ORDER BY snapshot_date",
        ))
        .bind(account.to_string())
        .bind(from.format("%Y-%m-%d").to_string())
        .bind(to.format("%Y-%m-%d").to_string())
        .fetch_all(conn)
        .await
    })
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

/// A campaign as stored, with its totals.
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
    on_tx!(tx, |conn, dialect| {
        sqlx::query(&dialect.sql(
            "INSERT INTO campaigns (id, name, description, department_id, platform_account_ids, period_start, \
             period_end, created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        ))
        .bind(c.id.to_string())
        .bind(&c.name)
        .bind(&c.description)
        .bind(c.department.to_string())
        .bind(joined(&c.accounts))
        .bind(c.period_start)
        .bind(c.period_end)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.version)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(db_error)?;
    Ok(())
}

/// Saves a campaign if its version is unchanged.
pub async fn save_campaign(tx: &mut Tx, c: &Campaign, expected_version: i64) -> Result<(), Error> {
    let affected = on_tx!(tx, |conn, dialect| {
        sqlx::query(&dialect.sql(
            "UPDATE campaigns SET name = $2, description = $3, platform_account_ids = $4, period_start = $5, \
             period_end = $6, updated_at = $7, version = $8 WHERE id = $1 AND version = $9",
        ))
        .bind(c.id.to_string())
        .bind(&c.name)
        .bind(&c.description)
        .bind(joined(&c.accounts))
        .bind(c.period_start)
        .bind(c.period_end)
        .bind(c.updated_at)
        .bind(c.version)
        .bind(expected_version)
        .execute(conn)
        .await
        .map(|x| x.rows_affected())
    })
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
    let row: Option<CampaignRow> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(&dialect.sql(&sql)).bind(campaign.to_string()).fetch_optional(conn).await
    })
    .map_err(db_error)?;
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
    let rows: Vec<CampaignRow> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(&dialect.sql(&sql))
            .bind(f.department.map(|d| d.to_string()).unwrap_or_default())
            .bind(f.account.map(|a| a.to_string()).unwrap_or_default())
            .bind(f.from.unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
            .bind(f.to.unwrap_or(far))
            .bind(after_at)
            .bind(&after_id)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await
    })
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
    on_tx!(tx, |conn, dialect| {
        sqlx::query(&dialect.sql(
            "INSERT INTO campaign_metrics (campaign_id, platform_account_id, metric_date, participant_count, \
             engagement_count, recorded_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (campaign_id, platform_account_id, metric_date) DO UPDATE SET participant_count = $4, \
             engagement_count = $5, recorded_at = $6",
        ))
        .bind(campaign.to_string())
        .bind(account.to_string())
        .bind(day.format("%Y-%m-%d").to_string())
        .bind(participants)
        .bind(engagements)
        .bind(now)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(db_error)?;
    Ok(())
}
