//! Per-account interaction settings (R4.1.1, R4.1.2).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::PlatformAccountId;
use govmedia_kit::db::{Tx, db_error};
use govmedia_kit::sql;

/// An account's settings as stored; `version` 0 means never set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The account.
    pub account: PlatformAccountId,
    /// Replies wait for a moderator lead.
    pub reply_approval_required: bool,
    /// First-response targets in business minutes by item type.
    pub response_targets: BTreeMap<String, u32>,
    /// Changed.
    pub updated_at: Option<DateTime<Utc>>,
    /// Version (etag); 0 when never stored.
    pub version: i64,
}

impl Settings {
    /// The settings of an account never configured.
    pub fn defaults(account: PlatformAccountId) -> Self {
        Self {
            account,
            reply_approval_required: false,
            response_targets: BTreeMap::new(),
            updated_at: None,
            version: 0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    reply_approval_required: bool,
    response_targets: String,
    updated_at: DateTime<Utc>,
    version: i64,
}

/// The account's settings, defaults when never set.
pub async fn get(tx: &mut Tx, account: PlatformAccountId) -> Result<Settings, Error> {
    let row: Option<Row> = sql!(
        tx,
        fetch_optional,
        "SELECT reply_approval_required, response_targets, updated_at, version FROM interaction_settings \
             WHERE platform_account_id = $1",
        account.to_string()
    )
    .map_err(db_error)?;
    let Some(r) = row else { return Ok(Settings::defaults(account)) };
    Ok(Settings {
        account,
        reply_approval_required: r.reply_approval_required,
        response_targets: serde_json::from_str(&r.response_targets).map_err(Error::internal)?,
        updated_at: Some(r.updated_at),
        version: r.version,
    })
}

/// Stores the settings if the stored version is still `expected_version` (0: none yet).
pub async fn save(tx: &mut Tx, s: &Settings, expected_version: i64) -> Result<(), Error> {
    let targets = serde_json::to_string(&s.response_targets).map_err(Error::internal)?;
    let affected = sql!(
        tx,
        execute,
        "INSERT INTO interaction_settings (platform_account_id, reply_approval_required, response_targets, \
             updated_at, version) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (platform_account_id) DO UPDATE SET reply_approval_required = $2, response_targets = $3, \
             updated_at = $4, version = $5 WHERE interaction_settings.version = $6",
        s.account.to_string(),
        s.reply_approval_required,
        &targets,
        s.updated_at,
        s.version,
        expected_version
    )
    .map_err(db_error)?;
    if affected == 0 {
        return Err(Error::Conflict("the interaction settings changed since they were read".into()));
    }
    Ok(())
}
