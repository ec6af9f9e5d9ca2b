//! The default lexicon shipped with the product (`lexicon/default.toml`, each list with
//! its source) and building a screening engine from the stored lexicon.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_kit::db::Database;
use serde::Deserialize;

use crate::domain::screening::{Category, Context, Entry, Lexicon, Severity};
use crate::store::lexicon as store;

const DEFAULT: &str = include_str!("../lexicon/default.toml");

#[derive(Deserialize)]
struct DefaultFile {
    entry: Vec<DefaultEntry>,
    whitelist: Vec<DefaultPhrase>,
}

#[derive(Deserialize)]
struct DefaultEntry {
    term: String,
    category: String,
    severity: String,
    #[serde(default)]
    suggestion: String,
    rule_id: String,
    #[serde(default)]
    contexts: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
struct DefaultPhrase {
    phrase: String,
    note: String,
}

/// A whitelist phrase and why it is safe.
pub type Phrase = (String, String);

/// The default lexicon's entries and whitelist.
pub fn default_lexicon() -> Result<(Vec<Entry>, Vec<Phrase>), Error> {
    let file: DefaultFile =
        toml::from_str(DEFAULT).map_err(|e| Error::internal(format!("the default lexicon does not parse: {e}")))?;
    let mut entries = Vec::with_capacity(file.entry.len());
    for e in file.entry {
        let bad = |what: &str| Error::internal(format!("default lexicon term {:?} has a bad {what}", e.term));
        entries.push(Entry {
            id: uuid::Uuid::now_v7().to_string(),
            category: Category::parse(&e.category).ok_or_else(|| bad("category"))?,
            severity: Severity::parse(&e.severity).ok_or_else(|| bad("severity"))?,
            contexts: e
                .contexts
                .iter()
                .map(|c| Context::parse(c).ok_or_else(|| bad("context")))
                .collect::<Result<_, _>>()?,
            term: e.term,
            suggestion: e.suggestion,
            rule_id: e.rule_id,
            source: e.source,
        });
    }
    Ok((entries, file.whitelist.into_iter().map(|w| (w.phrase, w.note)).collect()))
}

/// On an empty lexicon, stores the default one as version 1.
pub async fn seed_default(db: &Database, now: DateTime<Utc>) -> Result<(), Error> {
    let mut tx = db.begin().await?;
    if store::current_version(&mut tx).await? > 0 {
        return Ok(());
    }
    let (entries, whitelist) = default_lexicon()?;
    for e in &entries {
        store::upsert_entry(&mut tx, e, 1, now).await?;
    }
    for (phrase, note) in &whitelist {
        store::upsert_phrase(&mut tx, &uuid::Uuid::now_v7().to_string(), phrase, note, 1, now).await?;
    }
    store::insert_version(&mut tx, 1, now, "system", "the default lexicon shipped with govmedia").await?;
    tx.commit().await
}

/// Builds the engine from the stored lexicon.
pub async fn build(db: &Database) -> Result<Lexicon, Error> {
    let (version, entries, whitelist) = store::snapshot(db).await?;
    Lexicon::build(u64::try_from(version).unwrap_or(0), entries, &whitelist)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lexicon_parses_and_every_entry_names_its_source() {
        let (entries, whitelist) = default_lexicon().expect("parses");
        assert!(entries.len() >= 30);
        assert!(entries.iter().all(|e| !e.source.is_empty() && e.rule_id.starts_with('R')));
        for category in Category::ALL.into_iter().filter(|c| *c != Category::PersonalData) {
            assert!(entries.iter().any(|e| e.category == category), "no default term of {category:?}");
        }
        assert!(!whitelist.is_empty());
    }
}
