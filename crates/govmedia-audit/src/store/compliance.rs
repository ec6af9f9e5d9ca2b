//! Inspection readiness in SQL (R8.1.1): the questions the compliance monitor asks of
//! the audit log, and the daily assessments it keeps.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, PlatformAccountId};
use govmedia_kit::db::column::{id, optional_id, parsed, text_of};
use govmedia_kit::db::{Tx, db_error};
use govmedia_kit::sql;

use crate::domain::compliance::{Assessment, InteractionStatus, Item, Level, LogFacts};

/// The last publication of every account as of `end` that was not retracted by then.
/// Both a scheduled publication and one recorded by hand count (R3.3.1). The retracted
/// ones are one uncorrelated subquery: correlated, SQLite without statistics walks the
/// (action, occur_time) index once per publication (36 s instead of 0.1 s for 200
/// accounts × 90 days; see docs/benchmarks.md).
pub async fn last_publications(tx: &mut Tx, end: DateTime<Utc>) -> Result<HashMap<String, DateTime<Utc>>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        platform_account_id: String,
        last_at: DateTime<Utc>,
    }
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT p.platform_account_id, MAX(p.occur_time) AS last_at FROM audit_events p \
         WHERE p.action IN ('publication.published', 'publication.recorded_manually') AND p.occur_time < $1 \
         AND p.resource_type = 'publication' AND p.platform_account_id <> '' \
         AND p.resource_id NOT IN (SELECT r.resource_id FROM audit_events r \
         WHERE r.action = 'publication.retracted' AND r.resource_type = 'publication' AND r.occur_time < $1) \
         GROUP BY p.platform_account_id",
        end
    )
    .map_err(db_error)?;
    Ok(rows.into_iter().map(|r| (r.platform_account_id, r.last_at)).collect())
}

/// The window's counts of every account that had any: what was received, answered,
/// missed, and reported, between `start` and `end`.
pub async fn window_counts(
    tx: &mut Tx,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> Result<HashMap<String, LogFacts>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        platform_account_id: String,
        action: String,
        n: i64,
    }
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT platform_account_id, action, COUNT(*) AS n FROM audit_events \
         WHERE action IN ('comment.ingested', 'message.ingested', 'reply.posted', 'conversation.replied', \
         'comment.escalated', 'conversation.escalated', 'referral.escalated', 'account_incident.reported', 'security_incident.reported', \
         'publication.wording_error_found') \
         AND occur_time >= $1 AND occur_time < $2 AND platform_account_id <> '' \
         GROUP BY platform_account_id, action",
        start,
        end
    )
    .map_err(db_error)?;
    let mut counts: HashMap<String, LogFacts> = HashMap::new();
    for r in rows {
        let n = u32::try_from(r.n).unwrap_or(u32::MAX);
        let facts = counts.entry(r.platform_account_id).or_default();
        let slot = match r.action.as_str() {
            "comment.ingested" | "message.ingested" => &mut facts.received,
            "reply.posted" | "conversation.replied" => &mut facts.answered,
            "comment.escalated" | "conversation.escalated" => &mut facts.missed_replies,
            "referral.escalated" => &mut facts.overdue_referrals,
            "publication.wording_error_found" => &mut facts.wording_errors,
            _ => &mut facts.incidents,
        };
        *slot = slot.saturating_add(n);
    }
    Ok(counts)
}

/// The level each account stood at when last assessed on or before `date`.
pub async fn levels_before(tx: &mut Tx, date: NaiveDate) -> Result<HashMap<PlatformAccountId, Level>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        platform_account_id: String,
        level: String,
    }
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT c.platform_account_id, c.level FROM compliance_assessments c \
         WHERE c.assessment_date = (SELECT MAX(d.assessment_date) FROM compliance_assessments d \
         WHERE d.platform_account_id = c.platform_account_id AND d.assessment_date <= $1)",
        date.to_string()
    )
    .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            Ok((
                id("compliance_assessments.platform_account_id", &r.platform_account_id)?,
                parsed("compliance_assessments.level", &r.level, Level::parse)?,
            ))
        })
        .collect()
}

/// The latest date assessed and whether it is final.
pub async fn latest_date(tx: &mut Tx) -> Result<Option<(NaiveDate, bool)>, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        assessment_date: String,
        pending: i64,
    }
    let row: Option<Row> = sql!(
        tx,
        fetch_optional,
        "SELECT assessment_date, SUM(CASE WHEN final THEN 0 ELSE 1 END) AS pending FROM compliance_assessments \
         GROUP BY assessment_date ORDER BY assessment_date DESC LIMIT 1"
    )
    .map_err(db_error)?;
    row.map(|r| Ok((date("compliance_assessments.assessment_date", &r.assessment_date)?, r.pending == 0))).transpose()
}

/// Writes an assessment, replacing the date's earlier one for the account.
pub async fn upsert(tx: &mut Tx, a: &Assessment) -> Result<(), Error> {
    let n = |v: u32| i64::from(v);
    let items = serde_json::to_string(&a.items).map_err(|e| Error::internal(format!("assessment items: {e}")))?;
    sql!(
        tx,
        execute,
        "INSERT INTO compliance_assessments (platform_account_id, assessment_date, department_id, platform, handle, \
             level, severity, score, days_since_last_publication, last_publication_at, interaction_status, \
             interactions_received, interactions_answered, missed_reply_deadlines, overdue_referrals, \
             security_incidents, responsible_person_active, items, window_start_date, computed_at, final, \
             open_rectifications, overdue_rectifications, serious_wording_errors) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
             $22, $23, $24) \
         ON CONFLICT (platform_account_id, assessment_date) DO UPDATE SET department_id = excluded.department_id, \
             platform = excluded.platform, handle = excluded.handle, level = excluded.level, \
             severity = excluded.severity, score = excluded.score, \
             days_since_last_publication = excluded.days_since_last_publication, \
             last_publication_at = excluded.last_publication_at, interaction_status = excluded.interaction_status, \
             interactions_received = excluded.interactions_received, \
             interactions_answered = excluded.interactions_answered, \
             missed_reply_deadlines = excluded.missed_reply_deadlines, overdue_referrals = excluded.overdue_referrals, \
             security_incidents = excluded.security_incidents, \
             responsible_person_active = excluded.responsible_person_active, items = excluded.items, \
             window_start_date = excluded.window_start_date, computed_at = excluded.computed_at, \
             final = excluded.final, open_rectifications = excluded.open_rectifications, \
             overdue_rectifications = excluded.overdue_rectifications, \
             serious_wording_errors = excluded.serious_wording_errors",
        a.account.to_string(),
        a.date.to_string(),
        text_of(a.department),
        &a.platform,
        &a.handle,
        a.level.as_str(),
        a.level.severity(),
        i64::from(a.score),
        a.days_since_last_publication,
        a.last_publication_at,
        a.interaction.as_str(),
        n(a.facts.received),
        n(a.facts.answered),
        n(a.facts.missed_replies),
        n(a.facts.overdue_referrals),
        n(a.facts.incidents),
        a.responsible_active,
        items,
        a.window_start_date.to_string(),
        a.computed_at,
        a.is_final,
        n(a.facts.open_rectifications),
        n(a.facts.overdue_rectifications),
        n(a.facts.wording_errors)
    )
    .map_err(db_error)?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct Row {
    platform_account_id: String,
    assessment_date: String,
    department_id: String,
    platform: String,
    handle: String,
    level: String,
    score: i64,
    days_since_last_publication: i64,
    last_publication_at: Option<DateTime<Utc>>,
    interaction_status: String,
    interactions_received: i64,
    interactions_answered: i64,
    missed_reply_deadlines: i64,
    overdue_referrals: i64,
    security_incidents: i64,
    responsible_person_active: bool,
    items: String,
    window_start_date: String,
    computed_at: DateTime<Utc>,
    #[sqlx(rename = "final")]
    is_final: bool,
    open_rectifications: i64,
    overdue_rectifications: i64,
    serious_wording_errors: i64,
}

const COLUMNS: &str = "platform_account_id, assessment_date, department_id, platform, handle, level, score, \
    days_since_last_publication, last_publication_at, interaction_status, interactions_received, \
    interactions_answered, missed_reply_deadlines, overdue_referrals, security_incidents, \
    responsible_person_active, items, window_start_date, computed_at, final, open_rectifications, \
    overdue_rectifications, serious_wording_errors";

fn date(column: &str, value: &str) -> Result<NaiveDate, Error> {
    value.parse().map_err(|_| Error::internal(format!("stored {column} {value:?} is not a date")))
}

impl TryFrom<Row> for Assessment {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        let count = |v: i64| u32::try_from(v).unwrap_or(0);
        let items: Vec<Item> = serde_json::from_str(&r.items)
            .map_err(|e| Error::internal(format!("stored compliance_assessments.items: {e}")))?;
        Ok(Assessment {
            account: id("compliance_assessments.platform_account_id", &r.platform_account_id)?,
            date: date("compliance_assessments.assessment_date", &r.assessment_date)?,
            department: optional_id("compliance_assessments.department_id", &r.department_id)?,
            platform: r.platform,
            handle: r.handle,
            level: parsed("compliance_assessments.level", &r.level, Level::parse)?,
            score: count(r.score),
            days_since_last_publication: r.days_since_last_publication,
            last_publication_at: r.last_publication_at,
            interaction: parsed(
                "compliance_assessments.interaction_status",
                &r.interaction_status,
                InteractionStatus::parse,
            )?,
            facts: LogFacts {
                last_publication_at: r.last_publication_at,
                received: count(r.interactions_received),
                answered: count(r.interactions_answered),
                missed_replies: count(r.missed_reply_deadlines),
                overdue_referrals: count(r.overdue_referrals),
                incidents: count(r.security_incidents),
                wording_errors: count(r.serious_wording_errors),
                open_rectifications: count(r.open_rectifications),
                overdue_rectifications: count(r.overdue_rectifications),
            },
            responsible_active: r.responsible_person_active,
            items,
            window_start_date: date("compliance_assessments.window_start_date", &r.window_start_date)?,
            computed_at: r.computed_at,
            is_final: r.is_final,
        })
    }
}

/// One account's assessment on `date`, or its latest when `date` is none.
pub async fn get(
    tx: &mut Tx,
    account: PlatformAccountId,
    date: Option<NaiveDate>,
) -> Result<Option<Assessment>, Error> {
    let on = date.map(|d| d.to_string()).unwrap_or_else(|| "9999-12-31".to_owned());
    let sql = format!(
        "SELECT {COLUMNS} FROM compliance_assessments WHERE platform_account_id = $1 AND assessment_date <= $2 \
         ORDER BY assessment_date DESC LIMIT 1"
    );
    let row: Option<Row> = sql!(tx, fetch_optional, &sql, account.to_string(), on).map_err(db_error)?;
    row.map(Assessment::try_from).transpose().map(|a| a.filter(|a| date.is_none_or(|d| a.date == d)))
}

/// Where a page of a date's list starts: after this (severity, score, account).
pub type Cursor = (i64, i64, String);

/// A date's assessments, worst first: veto, then warning, then by score, then account.
pub async fn list(
    tx: &mut Tx,
    date: NaiveDate,
    department: Option<DepartmentId>,
    minimum: Level,
    after: Option<Cursor>,
    limit: u32,
) -> Result<Vec<Assessment>, Error> {
    // Worst first is descending severity, ascending score: the cursor compares on the
    // negated severity so all three keys ascend.
    let (after_severity, after_score, after_id) = after.unwrap_or((i64::MAX, -1, String::new()));
    let sql = format!(
        "SELECT {COLUMNS} FROM compliance_assessments WHERE assessment_date = $1 \
         AND ($2 = '' OR department_id = $2) AND severity >= $3 \
         AND (severity < $4 OR (severity = $4 AND (score > $5 OR (score = $5 AND platform_account_id > $6)))) \
         ORDER BY severity DESC, score, platform_account_id LIMIT $7"
    );
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        &sql,
        date.to_string(),
        text_of(department),
        minimum.severity(),
        after_severity,
        after_score,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Assessment::try_from).collect()
}

/// One account's assessments from `start` to `end`, oldest first, at most `limit`.
pub async fn history(
    tx: &mut Tx,
    account: PlatformAccountId,
    start: NaiveDate,
    end: NaiveDate,
    limit: u32,
) -> Result<Vec<Assessment>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM compliance_assessments WHERE platform_account_id = $1 \
         AND assessment_date >= $2 AND assessment_date <= $3 ORDER BY assessment_date LIMIT $4"
    );
    let rows: Vec<Row> =
        sql!(tx, fetch_all, &sql, account.to_string(), start.to_string(), end.to_string(), i64::from(limit))
            .map_err(db_error)?;
    rows.into_iter().map(Assessment::try_from).collect()
}
