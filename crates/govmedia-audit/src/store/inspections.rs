//! Inspections in SQL (R8.1.1), and the candidates a sample is drawn from.

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::InspectionId;
use govmedia_kit::access::Authorized;
use govmedia_kit::db::column::{id, optional_id, parsed, text_of};
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::sql;

use crate::domain::inspection::{Candidate, Inspection, Item, ItemType, Kind, State};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    kind: String,
    title: String,
    department_id: String,
    start_date: String,
    end_date: String,
    seed: String,
    sample_size: i64,
    items: String,
    state: String,
    created_by: String,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    version: i64,
}

fn date(column: &str, v: &str) -> Result<NaiveDate, Error> {
    v.parse().map_err(|_| Error::internal(format!("stored {column} {v:?} is not a date")))
}

impl TryFrom<Row> for Inspection {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        let items: Vec<Item> =
            serde_json::from_str(&r.items).map_err(|e| Error::internal(format!("stored inspections.items: {e}")))?;
        Ok(Inspection {
            id: id("inspections.id", &r.id)?,
            kind: parsed("inspections.kind", &r.kind, Kind::parse)?,
            title: r.title,
            department: optional_id("inspections.department_id", &r.department_id)?,
            start_date: date("inspections.start_date", &r.start_date)?,
            end_date: date("inspections.end_date", &r.end_date)?,
            seed: r.seed.parse().map_err(|_| Error::internal(format!("stored inspections.seed {:?}", r.seed)))?,
            sample_size: u32::try_from(r.sample_size).unwrap_or(0),
            items,
            state: parsed("inspections.state", &r.state, State::parse)?,
            created_by: id("inspections.created_by", &r.created_by)?,
            created_at: r.created_at,
            completed_at: r.completed_at,
            version: r.version,
        })
    }
}

fn items_text(i: &Inspection) -> Result<String, Error> {
    serde_json::to_string(&i.items).map_err(|e| Error::internal(format!("inspection items: {e}")))
}

/// Writes a new inspection.
pub async fn insert(tx: &mut Tx, i: &Inspection) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO inspections (id, kind, title, department_id, start_date, end_date, seed, sample_size, items, \
             state, created_by, created_at, completed_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        i.id.to_string(),
        i.kind.as_str(),
        &i.title,
        text_of(i.department),
        i.start_date.to_string(),
        i.end_date.to_string(),
        i.seed.to_string(),
        i64::from(i.sample_size),
        items_text(i)?,
        i.state.as_str(),
        i.created_by.to_string(),
        i.created_at,
        i.completed_at,
        i.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a changed inspection if nobody changed it since `expected_version`.
pub async fn save(tx: &mut Tx, i: &Inspection, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE inspections SET items = $2, state = $3, completed_at = $4, version = $5 WHERE id = $1 AND version = $6",
        i.id.to_string(),
        items_text(i)?,
        i.state.as_str(),
        i.completed_at,
        i.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "inspection")
}

/// One inspection.
pub async fn get(tx: &mut Tx, inspection: InspectionId) -> Result<Option<Inspection>, Error> {
    get_by_id::<Row, _>(tx, "inspections", inspection).await
}

/// One inspection, locked for a change the grant allows.
pub async fn lock(tx: &mut Tx, inspection: InspectionId, grant: &Authorized) -> Result<Inspection, Error> {
    lock_by_id::<Row, _>(tx, "inspections", "inspection", inspection, grant).await
}

/// Inspections, the newest first, after the cursor (created_at, id).
pub async fn list(tx: &mut Tx, after: Option<(DateTime<Utc>, String)>, limit: u32) -> Result<Vec<Inspection>, Error> {
    let (before, before_id) = after.unwrap_or((
        DateTime::from_timestamp(253_402_214_400, 0).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        String::new(),
    ));
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM inspections WHERE created_at < $1 OR (created_at = $1 AND id < $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3",
        before,
        before_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Inspection::try_from).collect()
}

/// Everything the log says went out or was answered between `start` and `end`: one
/// candidate per publication, reply and conversation, with the first event about it.
pub async fn candidates(tx: &mut Tx, start: DateTime<Utc>, end: DateTime<Utc>) -> Result<Vec<Candidate>, Error> {
    #[derive(sqlx::FromRow)]
    struct C {
        resource_type: String,
        resource_id: String,
        platform_account_id: String,
        event_id: String,
    }
    let rows: Vec<C> = sql!(
        tx,
        fetch_all,
        "SELECT resource_type, resource_id, MIN(platform_account_id) AS platform_account_id, MIN(id) AS event_id \
         FROM audit_events WHERE action IN ('publication.published', 'publication.recorded_manually', \
         'reply.posted', 'conversation.replied') AND occur_time >= $1 AND occur_time < $2 \
         AND platform_account_id <> '' GROUP BY resource_type, resource_id",
        start,
        end
    )
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let item_type = match r.resource_type.as_str() {
                "publication" => ItemType::Publication,
                "reply" => ItemType::Reply,
                "conversation" => ItemType::Conversation,
                _ => return None,
            };
            Some(Candidate { item_type, item_id: r.resource_id, account: r.platform_account_id, event_id: r.event_id })
        })
        .collect())
}
