//! The lexicon, its whitelist and their versions.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_kit::db::{Database, Tx, db_error};
use govmedia_kit::sql;
use govmedia_kit::{on_db, on_tx};

use crate::domain::screening::{Category, Context, Entry, Severity};

/// A lexicon entry with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEntry {
    /// The entry.
    pub entry: Entry,
    /// The version that last changed it.
    pub version: i64,
    /// When.
    pub updated_at: DateTime<Utc>,
}

/// A whitelist phrase with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPhrase {
    /// Id.
    pub id: String,
    /// The phrase.
    pub phrase: String,
    /// Why it is safe.
    pub note: String,
    /// The version that last changed it.
    pub version: i64,
    /// When.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: String,
    term: String,
    category: String,
    severity: String,
    suggestion: String,
    rule_id: String,
    contexts: String,
    source: String,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl TryFrom<EntryRow> for StoredEntry {
    type Error = Error;

    fn try_from(r: EntryRow) -> Result<Self, Error> {
        let bad = |what: &str| Error::internal(format!("lexicon entry {} has a bad {what}", r.id));
        let contexts = r
            .contexts
            .split(',')
            .filter(|c| !c.is_empty())
            .map(|c| Context::parse(c).ok_or_else(|| bad("context")))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(StoredEntry {
            entry: Entry {
                category: Category::parse(&r.category).ok_or_else(|| bad("category"))?,
                severity: Severity::parse(&r.severity).ok_or_else(|| bad("severity"))?,
                id: r.id,
                term: r.term,
                suggestion: r.suggestion,
                rule_id: r.rule_id,
                contexts,
                source: r.source,
            },
            version: r.version,
            updated_at: r.updated_at,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PhraseRow {
    id: String,
    phrase: String,
    note: String,
    version: i64,
    updated_at: DateTime<Utc>,
}

impl From<PhraseRow> for StoredPhrase {
    fn from(r: PhraseRow) -> Self {
        StoredPhrase { id: r.id, phrase: r.phrase, note: r.note, version: r.version, updated_at: r.updated_at }
    }
}

/// The newest version (0 when none).
pub async fn current_version(tx: &mut Tx) -> Result<i64, Error> {
    on_tx!(tx, |conn, _dialect| sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM lexicon_versions")
        .fetch_one(conn)
        .await)
    .map_err(db_error)
}

/// Records a new version.
pub async fn insert_version(
    tx: &mut Tx,
    version: i64,
    at: DateTime<Utc>,
    actor: &str,
    summary: &str,
) -> Result<(), Error> {
    on_tx!(tx, |conn, dialect| {
        sqlx::query(
            &dialect
                .sql("INSERT INTO lexicon_versions (version, created_at, actor_id, summary) VALUES ($1, $2, $3, $4)"),
        )
        .bind(version)
        .bind(at)
        .bind(actor)
        .bind(summary)
        .execute(conn)
        .await
        .map(|r| r.rows_affected())
    })
    .map_err(db_error)?;
    Ok(())
}

/// Inserts or replaces an entry by term; true when it was new.
pub async fn upsert_entry(tx: &mut Tx, e: &Entry, version: i64, at: DateTime<Utc>) -> Result<bool, Error> {
    let existed: Option<String> =
        sql!(tx, scalar_optional, "SELECT id FROM lexicon_entries WHERE term = $1", &e.term).map_err(db_error)?;
    let contexts = e.contexts.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",");
    sql!(
        tx,
        execute,
        "INSERT INTO lexicon_entries (id, term, category, severity, suggestion, rule_id, contexts, source, version, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (term) DO UPDATE SET category = \
         $3, severity = $4, suggestion = $5, rule_id = $6, contexts = $7, source = $8, version = $9, updated_at = \
         $10",
        &e.id,
        &e.term,
        e.category.as_str(),
        e.severity.as_str(),
        &e.suggestion,
        &e.rule_id,
        &contexts,
        &e.source,
        version,
        at
    )
    .map_err(db_error)?;
    Ok(existed.is_none())
}

/// Inserts or replaces a whitelist phrase; true when it was new.
pub async fn upsert_phrase(
    tx: &mut Tx,
    id: &str,
    phrase: &str,
    note: &str,
    version: i64,
    at: DateTime<Utc>,
) -> Result<bool, Error> {
    let existed: Option<String> =
        sql!(tx, scalar_optional, "SELECT id FROM whitelist_entries WHERE phrase = $1", phrase).map_err(db_error)?;
    sql!(
        tx,
        execute,
        "INSERT INTO whitelist_entries (id, phrase, note, version, updated_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (phrase) DO UPDATE SET note = $3, version = $4, updated_at = $5",
        id,
        phrase,
        note,
        version,
        at
    )
    .map_err(db_error)?;
    Ok(existed.is_none())
}

/// Deletes entries (or phrases) by id from `table`; returns how many.
pub async fn delete_by_ids(tx: &mut Tx, table: Table, ids: &[String]) -> Result<u64, Error> {
    let mut deleted = 0;
    for id in ids {
        let sql = format!("DELETE FROM {} WHERE id = $1", table.name());
        deleted += sql!(tx, execute, &sql, id).map_err(db_error)?;
    }
    Ok(deleted)
}

/// The two tables of the lexicon.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    /// Terms.
    Entries,
    /// Whitelist phrases.
    Whitelist,
}

impl Table {
    const fn name(self) -> &'static str {
        match self {
            Table::Entries => "lexicon_entries",
            Table::Whitelist => "whitelist_entries",
        }
    }
}

/// Every entry, and every whitelist phrase, and the version: what an engine is built
/// from, read in one snapshot.
pub async fn snapshot(db: &Database) -> Result<(i64, Vec<Entry>, Vec<String>), Error> {
    let mut tx = db.begin_read().await?;
    let version = current_version(&mut tx).await?;
    let rows: Vec<EntryRow> =
        on_tx!(&mut tx, |conn, _dialect| sqlx::query_as("SELECT * FROM lexicon_entries ORDER BY term")
            .fetch_all(conn)
            .await)
        .map_err(db_error)?;
    let phrases: Vec<String> =
        on_tx!(&mut tx, |conn, _dialect| sqlx::query_scalar("SELECT phrase FROM whitelist_entries ORDER BY phrase")
            .fetch_all(conn)
            .await)
        .map_err(db_error)?;
    let entries = rows.into_iter().map(|r| StoredEntry::try_from(r).map(|s| s.entry)).collect::<Result<Vec<_>, _>>()?;
    Ok((version, entries, phrases))
}

/// Entries ordered by term after `after`, optionally of one category.
pub async fn list_entries(
    db: &Database,
    category: Option<Category>,
    after: &str,
    limit: u32,
) -> Result<Vec<StoredEntry>, Error> {
    let rows: Vec<EntryRow> =
        on_db!(db, |pool, dialect| {
            sqlx::query_as(&dialect.sql(
                "SELECT * FROM lexicon_entries WHERE term > $1 AND ($2 = '' OR category = $2) ORDER BY term LIMIT $3",
            ))
            .bind(after)
            .bind(category.map(Category::as_str).unwrap_or(""))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(db_error)?;
    rows.into_iter().map(StoredEntry::try_from).collect()
}

/// Whitelist phrases ordered by phrase after `after`.
pub async fn list_phrases(db: &Database, after: &str, limit: u32) -> Result<Vec<StoredPhrase>, Error> {
    let rows: Vec<PhraseRow> = on_db!(db, |pool, dialect| {
        sqlx::query_as(&dialect.sql("SELECT * FROM whitelist_entries WHERE phrase > $1 ORDER BY phrase LIMIT $2"))
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
    })
    .map_err(db_error)?;
    Ok(rows.into_iter().map(StoredPhrase::from).collect())
}

/// When the current version was made.
pub async fn version_time(db: &Database, version: i64) -> Result<Option<DateTime<Utc>>, Error> {
    on_db!(db, |pool, dialect| {
        sqlx::query_scalar(&dialect.sql("SELECT created_at FROM lexicon_versions WHERE version = $1"))
            .bind(version)
            .fetch_optional(pool)
            .await
    })
    .map_err(db_error)
}
