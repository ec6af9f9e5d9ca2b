//! Comments, their moderation actions and replies (R4.1).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{CommentId, PlatformAccountId, PublicationId, ReplyId, UserId};
use govmedia_kit::access::Authorized;
use govmedia_kit::db::{Tx, db_error, get_by_id, lock_by_id, saved};
use govmedia_kit::{on_tx, sql};

use super::{id, optional_id, parsed, placeholders, text_of};
use crate::domain::comment::{ActionRecord, Channel, Comment, CommentStatus, Reply, ReplyState};

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    platform_account_id: String,
    publication_id: String,
    platform_post_id: String,
    platform_comment_id: String,
    parent_platform_comment_id: String,
    author_platform_id: String,
    author_name: String,
    text: String,
    posted_at: Option<DateTime<Utc>>,
    ingested_at: DateTime<Utc>,
    arrived_at: DateTime<Utc>,
    status: String,
    screening_findings: String,
    screening_lexicon: i64,
    assignee_user_id: String,
    tags: String,
    response_target_minutes: i32,
    response_due_at: DateTime<Utc>,
    first_response_at: Option<DateTime<Utc>>,
    first_responder_user_id: String,
    version: i64,
}

impl TryFrom<Row> for Comment {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(Comment {
            id: id("comments.id", &r.id)?,
            account: id("comments.platform_account_id", &r.platform_account_id)?,
            publication: optional_id("comments.publication_id", &r.publication_id)?,
            platform_post_id: r.platform_post_id,
            platform_comment_id: r.platform_comment_id,
            parent_platform_comment_id: r.parent_platform_comment_id,
            author_platform_id: r.author_platform_id,
            author_name: r.author_name,
            text: r.text,
            posted_at: r.posted_at,
            ingested_at: r.ingested_at,
            arrived_at: r.arrived_at,
            status: parsed("comments.status", &r.status, CommentStatus::parse)?,
            screening_findings: r.screening_findings,
            screening_lexicon: r.screening_lexicon,
            assignee: optional_id("comments.assignee_user_id", &r.assignee_user_id)?,
            tags: serde_json::from_str(&r.tags).map_err(Error::internal)?,
            response_target_minutes: r.response_target_minutes,
            response_due_at: r.response_due_at,
            first_response_at: r.first_response_at,
            first_responder: optional_id("comments.first_responder_user_id", &r.first_responder_user_id)?,
            version: r.version,
        })
    }
}

/// Inserts comments, skipping any whose platform comment id is already stored on its
/// account; the platform ids of those inserted. Concurrent ingests of the same comment
/// insert it once. One statement per chunk: ingest batches are large and every
/// statement is a round trip.
pub async fn insert_new(tx: &mut Tx, comments: &[Comment]) -> Result<HashSet<String>, Error> {
    const COLUMNS: usize = 22;
    const ROWS_PER_STATEMENT: usize = 200;
    let mut inserted = HashSet::new();
    for chunk in comments.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> =
            (0..chunk.len()).map(|r| format!("({})", placeholders(r * COLUMNS + 1, COLUMNS))).collect();
        let sql = format!(
            "INSERT INTO comments (id, platform_account_id, publication_id, platform_post_id, platform_comment_id, \
             parent_platform_comment_id, author_platform_id, author_name, text, posted_at, ingested_at, arrived_at, \
             status, screening_findings, screening_lexicon, assignee_user_id, tags, response_target_minutes, \
             response_due_at, first_response_at, first_responder_user_id, version) VALUES {} \
             ON CONFLICT (platform_account_id, platform_comment_id) DO NOTHING RETURNING platform_comment_id",
            rows.join(", ")
        );
        let tags = chunk
            .iter()
            .map(|c| serde_json::to_string(&c.tags).map_err(Error::internal))
            .collect::<Result<Vec<_>, _>>()?;
        let returned: Vec<String> = on_tx!(tx, |conn, dialect| {
            let sql = dialect.sql(&sql);
            let mut q = sqlx::query_scalar(&sql);
            for (c, tags) in chunk.iter().zip(&tags) {
                q = q
                    .bind(c.id.to_string())
                    .bind(c.account.to_string())
                    .bind(text_of(c.publication))
                    .bind(&c.platform_post_id)
                    .bind(&c.platform_comment_id)
                    .bind(&c.parent_platform_comment_id)
                    .bind(&c.author_platform_id)
                    .bind(&c.author_name)
                    .bind(&c.text)
                    .bind(c.posted_at)
                    .bind(c.ingested_at)
                    .bind(c.arrived_at)
                    .bind(c.status.as_str())
                    .bind(&c.screening_findings)
                    .bind(c.screening_lexicon)
                    .bind(text_of(c.assignee))
                    .bind(tags)
                    .bind(c.response_target_minutes)
                    .bind(c.response_due_at)
                    .bind(c.first_response_at)
                    .bind(text_of(c.first_responder))
                    .bind(c.version);
            }
            q.fetch_all(conn).await
        })
        .map_err(db_error)?;
        inserted.extend(returned);
    }
    Ok(inserted)
}

/// Saves what moderation changes (status, assignee, tags, first response) if the
/// version is unchanged.
pub async fn save(tx: &mut Tx, c: &Comment, expected_version: i64) -> Result<(), Error> {
    let tags = serde_json::to_string(&c.tags).map_err(Error::internal)?;
    let affected = sql!(
        tx,
        execute,
        "UPDATE comments SET status = $2, assignee_user_id = $3, tags = $4, first_response_at = $5, \
             first_responder_user_id = $6, version = $7 WHERE id = $1 AND version = $8",
        c.id.to_string(),
        c.status.as_str(),
        text_of(c.assignee),
        &tags,
        c.first_response_at,
        text_of(c.first_responder),
        c.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "comment")
}

/// One comment, as it is now.
pub async fn get(tx: &mut Tx, comment: CommentId) -> Result<Option<Comment>, Error> {
    get_by_id::<Row, _>(tx, "comments", comment).await
}

/// One comment, locked for a change `grant` allows on its account.
pub async fn lock(tx: &mut Tx, comment: CommentId, grant: &Authorized) -> Result<Comment, Error> {
    let comment: Comment = lock_by_id::<Row, _>(tx, "comments", "comment", comment, grant).await?;
    grant.ensure_covers_account(comment.account)?;
    Ok(comment)
}

/// The stored comments of `account` among `platform_ids`: (platform comment id, id,
/// status).
pub async fn known(
    tx: &mut Tx,
    account: PlatformAccountId,
    platform_ids: &[String],
) -> Result<Vec<(String, CommentId, CommentStatus)>, Error> {
    if platform_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT platform_comment_id, id, status FROM comments WHERE platform_account_id = $1 \
         AND platform_comment_id IN ({})",
        placeholders(2, platform_ids.len())
    );
    let rows: Vec<(String, String, String)> = on_tx!(tx, |conn, dialect| {
        let sql = dialect.sql(&sql);
        let mut q = sqlx::query_as(&sql).bind(account.to_string());
        for p in platform_ids {
            q = q.bind(p);
        }
        q.fetch_all(conn).await
    })
    .map_err(db_error)?;
    rows.into_iter()
        .map(|(p, i, s)| Ok((p, id("comments.id", &i)?, parsed("comments.status", &s, CommentStatus::parse)?)))
        .collect()
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default)]
pub struct CommentFilter {
    /// Only these statuses; empty for all.
    pub statuses: Vec<CommentStatus>,
    /// Only this account.
    pub account: Option<PlatformAccountId>,
    /// Only under this publication.
    pub publication: Option<PublicationId>,
    /// Only assigned to this moderator.
    pub assignee: Option<UserId>,
    /// Only past their due time without a response, as of this instant.
    pub overdue_at: Option<DateTime<Utc>>,
    /// Only carrying this tag.
    pub tag: Option<String>,
}

/// Comments in queue order (arrival, id) after the cursor.
pub async fn list(
    tx: &mut Tx,
    f: &CommentFilter,
    after: Option<(DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<Comment>, Error> {
    let (after_at, after_id) = after.unwrap_or((DateTime::<Utc>::UNIX_EPOCH, String::new()));
    let statuses: Vec<&str> = f.statuses.iter().map(|s| s.as_str()).collect();
    let waiting = [CommentStatus::Open.as_str(), CommentStatus::NeedsReview.as_str()];
    // Tags are a JSON array of strings: match the quoted tag.
    let tag = f.tag.as_ref().map(|t| serde_json::to_string(t).unwrap_or_default()).unwrap_or_default();
    let status_list = if statuses.is_empty() { String::new() } else { placeholders(12, statuses.len()) };
    let sql = format!(
        "SELECT * FROM comments WHERE ($1 = '' OR platform_account_id = $1) AND ($2 = '' OR publication_id = $2) \
         AND ($3 = '' OR assignee_user_id = $3) \
         AND ($4 = FALSE OR (first_response_at IS NULL AND status IN ($5, $6) AND response_due_at < $7)) \
         AND ($8 = '' OR tags LIKE '%' || $8 || '%') \
         AND (arrived_at > $9 OR (arrived_at = $9 AND id > $10)) {} \
         ORDER BY arrived_at, id LIMIT $11",
        if statuses.is_empty() { String::new() } else { format!("AND status IN ({status_list})") }
    );
    let rows: Vec<Row> = on_tx!(tx, |conn, dialect| {
        let sql = dialect.sql(&sql);
        let mut q = sqlx::query_as(&sql)
            .bind(text_of(f.account))
            .bind(text_of(f.publication))
            .bind(text_of(f.assignee))
            .bind(f.overdue_at.is_some())
            .bind(waiting[0])
            .bind(waiting[1])
            .bind(f.overdue_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
            .bind(&tag)
            .bind(after_at)
            .bind(&after_id)
            .bind(i64::from(limit));
        for s in &statuses {
            q = q.bind(*s);
        }
        q.fetch_all(conn).await
    })
    .map_err(db_error)?;
    rows.into_iter().map(Comment::try_from).collect()
}

/// Appends an action to a comment's history.
pub async fn add_action(tx: &mut Tx, a: &ActionRecord) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO comment_actions (comment_id, seq, action, reason, actor_user_id, moderation_rule_id, channel, \
             evidence, created_at) \
             VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM comment_actions WHERE comment_id = $1), \
             $2, $3, $4, $5, $6, $7, $8)",
        a.comment.to_string(),
        &a.action,
        &a.reason,
        text_of(a.actor),
        &a.rule_id,
        a.channel.as_str(),
        &a.evidence,
        a.created_at
    )
    .map_err(db_error)?;
    Ok(())
}

/// The first actions of comments just inserted, numbered from 1 per comment in order;
/// one statement per chunk.
pub async fn add_first_actions(tx: &mut Tx, actions: &[ActionRecord]) -> Result<(), Error> {
    const COLUMNS: usize = 9;
    const ROWS_PER_STATEMENT: usize = 200;
    let mut seq: std::collections::HashMap<CommentId, i32> = std::collections::HashMap::new();
    let numbered: Vec<(i32, &ActionRecord)> = actions
        .iter()
        .map(|a| {
            let n = seq.entry(a.comment).or_insert(0);
            *n += 1;
            (*n, a)
        })
        .collect();
    for chunk in numbered.chunks(ROWS_PER_STATEMENT) {
        let rows: Vec<String> =
            (0..chunk.len()).map(|r| format!("({})", placeholders(r * COLUMNS + 1, COLUMNS))).collect();
        let sql = format!(
            "INSERT INTO comment_actions (comment_id, seq, action, reason, actor_user_id, moderation_rule_id, channel, \
             evidence, created_at) VALUES {}",
            rows.join(", ")
        );
        on_tx!(tx, |conn, dialect| {
            let sql = dialect.sql(&sql);
            let mut q = sqlx::query(&sql);
            for (n, a) in chunk {
                q = q
                    .bind(a.comment.to_string())
                    .bind(*n)
                    .bind(&a.action)
                    .bind(&a.reason)
                    .bind(text_of(a.actor))
                    .bind(&a.rule_id)
                    .bind(a.channel.as_str())
                    .bind(&a.evidence)
                    .bind(a.created_at);
            }
            q.execute(conn).await.map(|r| r.rows_affected())
        })
        .map_err(db_error)?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ActionRow {
    comment_id: String,
    action: String,
    reason: String,
    actor_user_id: String,
    moderation_rule_id: String,
    channel: String,
    evidence: String,
    created_at: DateTime<Utc>,
}

/// The actions of these comments, each comment's in order.
pub async fn actions(tx: &mut Tx, comments: &[CommentId]) -> Result<Vec<ActionRecord>, Error> {
    if comments.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT comment_id, action, reason, actor_user_id, moderation_rule_id, channel, evidence, created_at \
         FROM comment_actions WHERE comment_id IN ({}) ORDER BY comment_id, seq",
        placeholders(1, comments.len())
    );
    let rows: Vec<ActionRow> = on_tx!(tx, |conn, dialect| {
        let sql = dialect.sql(&sql);
        let mut q = sqlx::query_as(&sql);
        for c in comments {
            q = q.bind(c.to_string());
        }
        q.fetch_all(conn).await
    })
    .map_err(db_error)?;
    rows.into_iter()
        .map(|r| {
            Ok(ActionRecord {
                comment: id("comment_actions.comment_id", &r.comment_id)?,
                action: r.action,
                reason: r.reason,
                actor: optional_id("comment_actions.actor_user_id", &r.actor_user_id)?,
                rule_id: r.moderation_rule_id,
                channel: parsed("comment_actions.channel", &r.channel, Channel::parse)?,
                evidence: r.evidence,
                created_at: r.created_at,
            })
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct ReplyRow {
    id: String,
    comment_id: String,
    text: String,
    author_user_id: String,
    state: String,
    screening_findings: String,
    approver_user_id: String,
    reject_reason: String,
    platform_reply_id: String,
    channel: String,
    evidence: String,
    created_at: DateTime<Utc>,
    posted_at: Option<DateTime<Utc>>,
    version: i64,
}

impl TryFrom<ReplyRow> for Reply {
    type Error = Error;

    fn try_from(r: ReplyRow) -> Result<Self, Error> {
        Ok(Reply {
            id: id("replies.id", &r.id)?,
            comment: id("replies.comment_id", &r.comment_id)?,
            text: r.text,
            author: id("replies.author_user_id", &r.author_user_id)?,
            state: parsed("replies.state", &r.state, ReplyState::parse)?,
            screening_findings: r.screening_findings,
            approver: optional_id("replies.approver_user_id", &r.approver_user_id)?,
            reject_reason: r.reject_reason,
            platform_reply_id: r.platform_reply_id,
            channel: parsed("replies.channel", &r.channel, Channel::parse)?,
            evidence: r.evidence,
            created_at: r.created_at,
            posted_at: r.posted_at,
            version: r.version,
        })
    }
}

/// Inserts a reply.
pub async fn insert_reply(tx: &mut Tx, r: &Reply) -> Result<(), Error> {
    sql!(
        tx,
        execute,
        "INSERT INTO replies (id, comment_id, text, author_user_id, state, screening_findings, approver_user_id, \
             reject_reason, platform_reply_id, channel, evidence, created_at, posted_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        r.id.to_string(),
        r.comment.to_string(),
        &r.text,
        r.author.to_string(),
        r.state.as_str(),
        &r.screening_findings,
        text_of(r.approver),
        &r.reject_reason,
        &r.platform_reply_id,
        r.channel.as_str(),
        &r.evidence,
        r.created_at,
        r.posted_at,
        r.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a reply's decision or posting if its version is unchanged.
pub async fn save_reply(tx: &mut Tx, r: &Reply, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "UPDATE replies SET state = $2, approver_user_id = $3, reject_reason = $4, platform_reply_id = $5, \
             channel = $6, evidence = $7, posted_at = $8, version = $9 WHERE id = $1 AND version = $10",
        r.id.to_string(),
        r.state.as_str(),
        text_of(r.approver),
        &r.reject_reason,
        &r.platform_reply_id,
        r.channel.as_str(),
        &r.evidence,
        r.posted_at,
        r.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "reply")
}

/// One reply, as it is now.
pub async fn get_reply(tx: &mut Tx, reply: ReplyId) -> Result<Option<Reply>, Error> {
    get_by_id::<ReplyRow, _>(tx, "replies", reply).await
}

/// One reply, locked for a change `grant` allows on its comment's account, with the
/// comment (locked too).
pub async fn lock_reply(tx: &mut Tx, reply: ReplyId, grant: &Authorized) -> Result<(Reply, Comment), Error> {
    let reply: Reply = lock_by_id::<ReplyRow, _>(tx, "replies", "reply", reply, grant).await?;
    let comment = lock(tx, reply.comment, grant).await?;
    Ok((reply, comment))
}

/// The replies of these comments, each comment's in order.
pub async fn replies(tx: &mut Tx, comments: &[CommentId]) -> Result<Vec<Reply>, Error> {
    if comments.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT * FROM replies WHERE comment_id IN ({}) ORDER BY comment_id, created_at, id",
        placeholders(1, comments.len())
    );
    let rows: Vec<ReplyRow> = on_tx!(tx, |conn, dialect| {
        let sql = dialect.sql(&sql);
        let mut q = sqlx::query_as(&sql);
        for c in comments {
            q = q.bind(c.to_string());
        }
        q.fetch_all(conn).await
    })
    .map_err(db_error)?;
    rows.into_iter().map(Reply::try_from).collect()
}
