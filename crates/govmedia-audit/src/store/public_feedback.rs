//! Public feedback in SQL (R8.2.1, R8.2.2).

use chrono::{DateTime, NaiveDate, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{DepartmentId, PublicFeedbackId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::column::{id, optional_id, parsed, text_of};
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::sql;

use crate::domain::public_feedback::{Adjustment, Channel, PublicFeedback, Received, State};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    channel: String,
    received_at: DateTime<Utc>,
    platform_account_id: String,
    comment_id: String,
    subject: String,
    content: String,
    contact_name: String,
    contact: String,
    state: String,
    department_id: String,
    working_days: i64,
    due_date: String,
    due_at: Option<DateTime<Utc>>,
    answer: String,
    answer_channel: String,
    answered_by: String,
    answered_at: Option<DateTime<Utc>>,
    adjustments: String,
    no_adjustment_reason: String,
    closed_at: Option<DateTime<Utc>>,
    recorded_by: String,
    version: i64,
}

impl TryFrom<Row> for PublicFeedback {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        let adjustments: Vec<Adjustment> = serde_json::from_str(&r.adjustments)
            .map_err(|e| Error::internal(format!("stored public_feedback.adjustments: {e}")))?;
        let due_date = if r.due_date.is_empty() {
            None
        } else {
            Some(
                r.due_date
                    .parse::<NaiveDate>()
                    .map_err(|_| Error::internal(format!("stored public_feedback.due_date {:?}", r.due_date)))?,
            )
        };
        Ok(PublicFeedback {
            id: id("public_feedback.id", &r.id)?,
            received: Received {
                channel: parsed("public_feedback.channel", &r.channel, Channel::parse)?,
                received_at: r.received_at,
                account: optional_id("public_feedback.platform_account_id", &r.platform_account_id)?,
                comment_id: r.comment_id,
                subject: r.subject,
                content: r.content,
                contact_name: r.contact_name,
                contact: r.contact,
            },
            state: parsed("public_feedback.state", &r.state, State::parse)?,
            department: optional_id("public_feedback.department_id", &r.department_id)?,
            working_days: u32::try_from(r.working_days).unwrap_or(0),
            due_date,
            due_at: r.due_at,
            answer: r.answer,
            answer_channel: r.answer_channel,
            answered_by: optional_id("public_feedback.answered_by", &r.answered_by)?,
            answered_at: r.answered_at,
            adjustments,
            no_adjustment_reason: r.no_adjustment_reason,
            closed_at: r.closed_at,
            recorded_by: id("public_feedback.recorded_by", &r.recorded_by)?,
            version: r.version,
        })
    }
}

fn adjustments_text(f: &PublicFeedback) -> Result<String, Error> {
    serde_json::to_string(&f.adjustments).map_err(|e| Error::internal(format!("adjustments: {e}")))
}

/// Writes new feedback.
pub async fn insert(tx: &mut Tx, f: &PublicFeedback) -> Result<(), Error> {
    let r = &f.received;
    sql!(
        tx,
        execute,
        "INSERT INTO public_feedback (id, channel, received_at, platform_account_id, comment_id, subject, content, \
             contact_name, contact, state, department_id, working_days, due_date, due_at, answer, answer_channel, \
             answered_by, answered_at, adjustments, no_adjustment_reason, closed_at, recorded_by, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)",
        f.id.to_string(),
        r.channel.as_str(),
        r.received_at,
        text_of(r.account),
        &r.comment_id,
        &r.subject,
        &r.content,
        &r.contact_name,
        &r.contact,
        f.state.as_str(),
        text_of(f.department),
        i64::from(f.working_days),
        text_of(f.due_date),
        f.due_at,
        &f.answer,
        &f.answer_channel,
        text_of(f.answered_by),
        f.answered_at,
        adjustments_text(f)?,
        &f.no_adjustment_reason,
        f.closed_at,
        f.recorded_by.to_string(),
        f.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves changed feedback if nobody changed it since `expected_version`.
pub async fn save(tx: &mut Tx, f: &PublicFeedback, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE public_feedback SET state = $2, department_id = $3, working_days = $4, due_date = $5, due_at = $6, \
             answer = $7, answer_channel = $8, answered_by = $9, answered_at = $10, adjustments = $11, \
             no_adjustment_reason = $12, closed_at = $13, version = $14 WHERE id = $1 AND version = $15",
        f.id.to_string(),
        f.state.as_str(),
        text_of(f.department),
        i64::from(f.working_days),
        text_of(f.due_date),
        f.due_at,
        &f.answer,
        &f.answer_channel,
        text_of(f.answered_by),
        f.answered_at,
        adjustments_text(f)?,
        &f.no_adjustment_reason,
        f.closed_at,
        f.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "public feedback")
}

/// One item.
pub async fn get(tx: &mut Tx, feedback: PublicFeedbackId) -> Result<Option<PublicFeedback>, Error> {
    get_by_id::<Row, _>(tx, "public_feedback", feedback).await
}

/// One item, locked for a change the grant allows (triage's grant is the bureau's and
/// covers it wherever it is).
pub async fn lock(tx: &mut Tx, feedback: PublicFeedbackId, grant: &Authorized) -> Result<PublicFeedback, Error> {
    let f: PublicFeedback = lock_by_id::<Row, _>(tx, "public_feedback", "public feedback", feedback, grant).await?;
    grant.ensure_covers(f.department, f.received.account.as_slice())?;
    Ok(f)
}

/// What a list is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct FeedbackFilter {
    /// Only this department's.
    pub department: Option<DepartmentId>,
    /// Only in this state.
    pub state: Option<State>,
    /// Only triaged and past the deadline at this instant.
    pub overdue_at: Option<DateTime<Utc>>,
}

/// Feedback in the order received, after the cursor (received_at, id).
pub async fn list(
    tx: &mut Tx,
    f: &FeedbackFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<PublicFeedback>, Error> {
    let (after_at, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, String::new()));
    let overdue = f.overdue_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM public_feedback WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) \
         AND ($3 = 0 OR (state = 'triaged' AND due_at <= $4)) \
         AND (received_at > $5 OR (received_at = $5 AND id > $6)) ORDER BY received_at, id LIMIT $7",
        text_of(f.department),
        f.state.map(State::as_str).unwrap_or_default(),
        i64::from(f.overdue_at.is_some()),
        overdue,
        after_at,
        after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(PublicFeedback::try_from).collect()
}
