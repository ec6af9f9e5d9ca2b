//! Conversations, private messages and referrals (R4.2).

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{ConversationId, DepartmentId, PlatformAccountId, ReferralId, UserId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Dialect, Tx, db_error, get_by_id, is_unique_violation, lock_by_id, saved};
use govmedia_kit::{on_tx, sql};

use super::{id, optional_id, parsed, text_of};
use crate::domain::conversation::{Conversation, ConversationState, Direction, Message, Referral, ReferralState};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    platform_account_id: String,
    correspondent_platform_id: String,
    correspondent_name: String,
    state: String,
    assignee_user_id: String,
    important: bool,
    important_note: String,
    marked_important_by: String,
    message_count: i32,
    last_message_at: DateTime<Utc>,
    awaiting_since: Option<DateTime<Utc>>,
    response_due_at: Option<DateTime<Utc>>,
    response_target_minutes: i32,
    first_inbound_at: DateTime<Utc>,
    first_response_at: Option<DateTime<Utc>>,
    first_responder_user_id: String,
    first_response_due_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<Row> for Conversation {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(Conversation {
            id: id("conversations.id", &r.id)?,
            account: id("conversations.platform_account_id", &r.platform_account_id)?,
            correspondent_platform_id: r.correspondent_platform_id,
            correspondent_name: r.correspondent_name,
            state: parsed("conversations.state", &r.state, ConversationState::parse)?,
            assignee: optional_id("conversations.assignee_user_id", &r.assignee_user_id)?,
            important: r.important,
            important_note: r.important_note,
            marked_important_by: optional_id("conversations.marked_important_by", &r.marked_important_by)?,
            message_count: r.message_count,
            last_message_at: r.last_message_at,
            awaiting_since: r.awaiting_since,
            response_due_at: r.response_due_at,
            response_target_minutes: r.response_target_minutes,
            first_inbound_at: r.first_inbound_at,
            first_response_at: r.first_response_at,
            first_responder: optional_id("conversations.first_responder_user_id", &r.first_responder_user_id)?,
            first_response_due_at: r.first_response_due_at,
            created_at: r.created_at,
            version: r.version,
        })
    }
}

/// Inserts a conversation.
pub async fn insert(tx: &mut Tx, c: &Conversation) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO conversations (id, platform_account_id, correspondent_platform_id, correspondent_name, state, \
             assignee_user_id, important, important_note, marked_important_by, message_count, last_message_at, \
             awaiting_since, response_due_at, response_target_minutes, first_inbound_at, first_response_at, \
             first_responder_user_id, first_response_due_at, created_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        c.id.to_string(),
        c.account.to_string(),
        &c.correspondent_platform_id,
        &c.correspondent_name,
        c.state.as_str(),
        text_of(c.assignee),
        c.important,
        &c.important_note,
        text_of(c.marked_important_by),
        c.message_count,
        c.last_message_at,
        c.awaiting_since,
        c.response_due_at,
        c.response_target_minutes,
        c.first_inbound_at,
        c.first_response_at,
        text_of(c.first_responder),
        c.first_response_due_at,
        c.created_at,
        c.version
    )
    .map_err(|e| {
        if is_unique_violation(&e) {
            // A concurrent batch opened the conversation with this correspondent first.
            Error::Conflict("another batch opened this conversation at the same time; retry".into())
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

/// Saves a conversation if its version is unchanged.
pub async fn save(tx: &mut Tx, c: &Conversation, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE conversations SET correspondent_name = $2, state = $3, assignee_user_id = $4, important = $5, \
             important_note = $6, marked_important_by = $7, message_count = $8, last_message_at = $9, \
             awaiting_since = $10, response_due_at = $11, first_response_at = $12, first_responder_user_id = $13, \
             version = $14 WHERE id = $1 AND version = $15",
        c.id.to_string(),
        &c.correspondent_name,
        c.state.as_str(),
        text_of(c.assignee),
        c.important,
        &c.important_note,
        text_of(c.marked_important_by),
        c.message_count,
        c.last_message_at,
        c.awaiting_since,
        c.response_due_at,
        c.first_response_at,
        text_of(c.first_responder),
        c.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "conversation")
}

/// One conversation, as it is now.
pub async fn get(tx: &mut Tx, conversation: ConversationId) -> Result<Option<Conversation>, Error> {
    get_by_id::<Row, _>(tx, "conversations", conversation).await
}

/// One conversation, locked for a change `grant` allows on its account.
pub async fn lock(tx: &mut Tx, conversation: ConversationId, grant: &Authorized) -> Result<Conversation, Error> {
    let conversation: Conversation =
        lock_by_id::<Row, _>(tx, "conversations", "conversation", conversation, grant).await?;
    grant.ensure_covers_account(conversation.account)?;
    Ok(conversation)
}

/// The open conversation of an account with a correspondent, locked on PostgreSQL.
pub async fn open_with(
    tx: &mut Tx,
    account: PlatformAccountId,
    correspondent: &str,
) -> Result<Option<Conversation>, Error> {
    let row: Option<Row> = on_tx!(tx, |conn, dialect| {
        let sql = match dialect {
            Dialect::Postgres => {
                "SELECT * FROM conversations WHERE platform_account_id = $1 AND correspondent_platform_id = $2 \
                 AND state <> 'closed' FOR UPDATE"
            }
            Dialect::Sqlite => {
                "SELECT * FROM conversations WHERE platform_account_id = ?1 AND correspondent_platform_id = ?2 \
                 AND state <> 'closed'"
            }
        };
        sqlx::query_as(sql).bind(account.to_string()).bind(correspondent).fetch_optional(conn).await
    })
    .map_err(db_error)?;
    row.map(Conversation::try_from).transpose()
}

/// How many open conversations a person holds.
pub async fn open_count(tx: &mut Tx, assignee: UserId) -> Result<u32, Error> {
    let n: i64 = on_tx!(tx, |conn, dialect| {
        sqlx::query_scalar(
            &dialect.sql("SELECT COUNT(*) FROM conversations WHERE assignee_user_id = $1 AND state <> 'closed'"),
        )
        .bind(assignee.to_string())
        .fetch_one(conn)
        .await
    })
    .map_err(db_error)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    /// Only this account.
    pub account: Option<PlatformAccountId>,
    /// Only this state.
    pub state: Option<ConversationState>,
    /// Only this assignee.
    pub assignee: Option<UserId>,
    /// Only important ones.
    pub important_only: bool,
    /// Only past their response deadline as of this instant.
    pub overdue_at: Option<DateTime<Utc>>,
}

/// Conversations, oldest waiting first: by (response due, id), those not waiting last.
pub async fn list(
    tx: &mut Tx,
    f: &ConversationFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Conversation>, Error> {
    let far = super::far_future();
    let (after_at, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, String::new()));
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM conversations WHERE ($1 = '' OR platform_account_id = $1) AND ($2 = '' OR state = $2) \
             AND ($3 = '' OR assignee_user_id = $3) AND ($4 = FALSE OR important = TRUE) \
             AND ($5 = FALSE OR (state = 'awaiting_response' AND response_due_at < $6)) \
             AND (COALESCE(response_due_at, $7) > $8 OR (COALESCE(response_due_at, $7) = $8 AND id > $9)) \
             ORDER BY COALESCE(response_due_at, $7), id LIMIT $10",
        text_of(f.account),
        f.state.map(ConversationState::as_str).unwrap_or(""),
        text_of(f.assignee),
        f.important_only,
        f.overdue_at.is_some(),
        f.overdue_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        far,
        after_at,
        &after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Conversation::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    conversation_id: String,
    platform_account_id: String,
    direction: String,
    platform_message_id: String,
    text: String,
    author_user_id: String,
    screening_findings: String,
    sent_at: DateTime<Utc>,
    seq: i64,
}

impl TryFrom<MessageRow> for Message {
    type Error = Error;

    fn try_from(r: MessageRow) -> Result<Self, Error> {
        Ok(Message {
            id: id("private_messages.id", &r.id)?,
            conversation: id("private_messages.conversation_id", &r.conversation_id)?,
            account: id("private_messages.platform_account_id", &r.platform_account_id)?,
            direction: parsed("private_messages.direction", &r.direction, Direction::parse)?,
            platform_message_id: r.platform_message_id,
            text: r.text,
            author: optional_id("private_messages.author_user_id", &r.author_user_id)?,
            screening_findings: r.screening_findings,
            sent_at: r.sent_at,
            seq: r.seq,
        })
    }
}

/// Inserts a message unless its platform message id is already stored on the account;
/// true when inserted.
pub async fn insert_message(tx: &mut Tx, m: &Message) -> Result<bool, Error> {
    let affected = sql!(
        tx,
        execute,
        "INSERT INTO private_messages (id, conversation_id, platform_account_id, direction, platform_message_id, \
             text, author_user_id, screening_findings, sent_at, seq) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (platform_account_id, platform_message_id) WHERE platform_message_id <> '' DO NOTHING",
        m.id.to_string(),
        m.conversation.to_string(),
        m.account.to_string(),
        m.direction.as_str(),
        &m.platform_message_id,
        &m.text,
        text_of(m.author),
        &m.screening_findings,
        m.sent_at,
        m.seq
    )
    .map_err(db_error)?;
    Ok(affected == 1)
}

/// Whether a platform message id is already stored on the account.
pub async fn message_known(tx: &mut Tx, account: PlatformAccountId, platform_message_id: &str) -> Result<bool, Error> {
    let n: i64 = sql!(
        tx,
        scalar_one,
        "SELECT COUNT(*) FROM private_messages WHERE platform_account_id = $1 AND platform_message_id = $2",
        account.to_string(),
        platform_message_id
    )
    .map_err(db_error)?;
    Ok(n > 0)
}

/// Messages of a conversation in order after `after_seq`.
pub async fn messages(
    tx: &mut Tx,
    conversation: ConversationId,
    after_seq: i64,
    limit: u32,
) -> Result<Vec<Message>, Error> {
    let rows: Vec<MessageRow> = on_tx!(tx, |conn, dialect| {
        sqlx::query_as(
            &dialect
                .sql("SELECT * FROM private_messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"),
        )
        .bind(conversation.to_string())
        .bind(after_seq)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await
    })
    .map_err(db_error)?;
    rows.into_iter().map(Message::try_from).collect()
}

#[derive(sqlx::FromRow)]
struct ReferralRow {
    id: String,
    conversation_id: String,
    platform_account_id: String,
    department_id: String,
    summary: String,
    state: String,
    due_at: DateTime<Utc>,
    referred_by: String,
    created_at: DateTime<Utc>,
    acknowledged_by: String,
    acknowledged_at: Option<DateTime<Utc>>,
    outcome: String,
    outcome_recorded_by: String,
    outcome_at: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<ReferralRow> for Referral {
    type Error = Error;

    fn try_from(r: ReferralRow) -> Result<Self, Error> {
        Ok(Referral {
            id: id("referrals.id", &r.id)?,
            conversation: id("referrals.conversation_id", &r.conversation_id)?,
            account: id("referrals.platform_account_id", &r.platform_account_id)?,
            department: id("referrals.department_id", &r.department_id)?,
            summary: r.summary,
            state: parsed("referrals.state", &r.state, ReferralState::parse)?,
            due_at: r.due_at,
            referred_by: id("referrals.referred_by", &r.referred_by)?,
            created_at: r.created_at,
            acknowledged_by: optional_id("referrals.acknowledged_by", &r.acknowledged_by)?,
            acknowledged_at: r.acknowledged_at,
            outcome: r.outcome,
            outcome_recorded_by: optional_id("referrals.outcome_recorded_by", &r.outcome_recorded_by)?,
            outcome_at: r.outcome_at,
            closed_at: r.closed_at,
            version: r.version,
        })
    }
}

/// Inserts a referral.
pub async fn insert_referral(tx: &mut Tx, r: &Referral) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO referrals (id, conversation_id, platform_account_id, department_id, summary, state, due_at, \
             referred_by, created_at, acknowledged_by, acknowledged_at, outcome, outcome_recorded_by, outcome_at, \
             closed_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        r.id.to_string(),
        r.conversation.to_string(),
        r.account.to_string(),
        r.department.to_string(),
        &r.summary,
        r.state.as_str(),
        r.due_at,
        r.referred_by.to_string(),
        r.created_at,
        text_of(r.acknowledged_by),
        r.acknowledged_at,
        &r.outcome,
        text_of(r.outcome_recorded_by),
        r.outcome_at,
        r.closed_at,
        r.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a referral if its version is unchanged.
pub async fn save_referral(tx: &mut Tx, r: &Referral, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE referrals SET state = $2, acknowledged_by = $3, acknowledged_at = $4, outcome = $5, \
             outcome_recorded_by = $6, outcome_at = $7, closed_at = $8, version = $9 WHERE id = $1 AND version = $10",
        r.id.to_string(),
        r.state.as_str(),
        text_of(r.acknowledged_by),
        r.acknowledged_at,
        &r.outcome,
        text_of(r.outcome_recorded_by),
        r.outcome_at,
        r.closed_at,
        r.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "referral")
}

/// One referral, as it is now.
pub async fn get_referral(tx: &mut Tx, referral: ReferralId) -> Result<Option<Referral>, Error> {
    get_by_id::<ReferralRow, _>(tx, "referrals", referral).await
}

/// One referral, locked for a change `grant` allows: on its account (the referring
/// side) or on the receiving department.
pub async fn lock_referral(tx: &mut Tx, referral: ReferralId, grant: &Authorized) -> Result<Referral, Error> {
    let referral: Referral = lock_by_id::<ReferralRow, _>(tx, "referrals", "referral", referral, grant).await?;
    grant.ensure_covers_account(referral.account).or_else(|_| grant.ensure_covers(Some(referral.department), &[]))?;
    Ok(referral)
}

/// The ids of the referrals made from a conversation, oldest first.
pub async fn referral_ids(tx: &mut Tx, conversation: ConversationId) -> Result<Vec<ReferralId>, Error> {
    let rows: Vec<String> = sql!(
        tx,
        scalar_all,
        "SELECT id FROM referrals WHERE conversation_id = $1 ORDER BY created_at, id",
        conversation.to_string()
    )
    .map_err(db_error)?;
    rows.iter().map(|r| id("referrals.id", r)).collect()
}

/// Filters of [`list_referrals`].
#[derive(Debug, Clone, Default)]
pub struct ReferralFilter {
    /// Only to this department.
    pub department: Option<DepartmentId>,
    /// Only in this state.
    pub state: Option<ReferralState>,
    /// Only open past their due time as of this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only from this account.
    pub account: Option<PlatformAccountId>,
}

/// Referrals, earliest due first, after the cursor.
pub async fn list_referrals(
    tx: &mut Tx,
    f: &ReferralFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Referral>, Error> {
    let (after_at, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, String::new()));
    let rows: Vec<ReferralRow> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM referrals WHERE ($1 = '' OR department_id = $1) AND ($2 = '' OR state = $2) \
             AND ($3 = FALSE OR (outcome_at IS NULL AND due_at < $4)) AND ($5 = '' OR platform_account_id = $5) \
             AND (due_at > $6 OR (due_at = $6 AND id > $7)) ORDER BY due_at, id LIMIT $8",
        text_of(f.department),
        f.state.map(ReferralState::as_str).unwrap_or(""),
        f.overdue_at.is_some(),
        f.overdue_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        text_of(f.account),
        after_at,
        &after_id,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(Referral::try_from).collect()
}
