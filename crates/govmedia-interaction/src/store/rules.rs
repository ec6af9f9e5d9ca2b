//! Moderation rules (R4.1.3). The condition and actions are stored as JSON in the
//! stored vocabulary (category and severity names), so a rule reads the same whatever
//! the wire enum numbers.

use chrono::{DateTime, Utc};
use govmedia_domain::Error;
use govmedia_domain::ids::{ModerationRuleId, PlatformAccountId};
use govmedia_domain::screening::{Category, Severity};
use govmedia_kit::db::{Tx, db_error, get_by_id, saved};
use govmedia_kit::sql;
use serde::{Deserialize, Serialize};

use super::id;
use crate::domain::moderation::{Action, Condition, Rule};

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// Id.
    pub id: ModerationRuleId,
    /// Name.
    pub name: String,
    /// The rule itself (priority, condition, actions, enabled).
    pub rule: Rule,
    /// Changed.
    pub updated_at: DateTime<Utc>,
    /// Version (etag).
    pub version: i64,
}

impl StoredRule {
    /// The account the rule is limited to, if any.
    pub fn account(&self) -> Option<PlatformAccountId> {
        self.rule.condition.platform_account_id.as_deref().and_then(|a| a.parse().ok())
    }
}

#[derive(Serialize, Deserialize, Default)]
struct ConditionJson {
    categories: Vec<String>,
    minimum_severity: Option<String>,
    keywords: Vec<String>,
    author_platform_ids: Vec<String>,
    platform_account_id: Option<String>,
    publication_id: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum ActionJson {
    Hide,
    FlagForReview,
    Assign { assignee_user_id: String },
    Tag { tag: String },
    Allow,
}

fn condition_json(c: &Condition) -> ConditionJson {
    ConditionJson {
        categories: c.categories.iter().map(|x| x.as_str().to_owned()).collect(),
        minimum_severity: c.minimum_severity.map(|s| s.as_str().to_owned()),
        keywords: c.keywords.clone(),
        author_platform_ids: c.author_platform_ids.clone(),
        platform_account_id: c.platform_account_id.clone(),
        publication_id: c.publication_id.clone(),
    }
}

fn condition_from(j: ConditionJson) -> Result<Condition, Error> {
    let bad = |what: &str| Error::internal(format!("stored rule condition has an unknown {what}"));
    Ok(Condition {
        categories: j
            .categories
            .iter()
            .map(|c| Category::parse(c).ok_or_else(|| bad("category")))
            .collect::<Result<_, _>>()?,
        minimum_severity: j.minimum_severity.map(|s| Severity::parse(&s).ok_or_else(|| bad("severity"))).transpose()?,
        keywords: j.keywords,
        author_platform_ids: j.author_platform_ids,
        platform_account_id: j.platform_account_id,
        publication_id: j.publication_id,
    })
}

fn actions_json(actions: &[Action]) -> Vec<ActionJson> {
    actions
        .iter()
        .map(|a| match a {
            Action::Hide => ActionJson::Hide,
            Action::FlagForReview => ActionJson::FlagForReview,
            Action::Assign(u) => ActionJson::Assign { assignee_user_id: u.clone() },
            Action::Tag(t) => ActionJson::Tag { tag: t.clone() },
            Action::Allow => ActionJson::Allow,
        })
        .collect()
}

fn actions_from(actions: Vec<ActionJson>) -> Vec<Action> {
    actions
        .into_iter()
        .map(|a| match a {
            ActionJson::Hide => Action::Hide,
            ActionJson::FlagForReview => Action::FlagForReview,
            ActionJson::Assign { assignee_user_id } => Action::Assign(assignee_user_id),
            ActionJson::Tag { tag } => Action::Tag(tag),
            ActionJson::Allow => Action::Allow,
        })
        .collect()
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    name: String,
    priority: i32,
    condition: String,
    actions: String,
    enabled: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TryFrom<Row> for StoredRule {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        let condition = condition_from(serde_json::from_str(&r.condition).map_err(Error::internal)?)?;
        let actions = actions_from(serde_json::from_str(&r.actions).map_err(Error::internal)?);
        Ok(StoredRule {
            id: id("moderation_rules.id", &r.id)?,
            name: r.name,
            rule: Rule {
                id: r.id,
                priority: r.priority,
                created_at: r.created_at,
                condition,
                actions,
                enabled: r.enabled,
            },
            updated_at: r.updated_at,
            version: r.version,
        })
    }
}

fn encoded(r: &StoredRule) -> Result<(String, String, String), Error> {
    Ok((
        serde_json::to_string(&condition_json(&r.rule.condition)).map_err(Error::internal)?,
        serde_json::to_string(&actions_json(&r.rule.actions)).map_err(Error::internal)?,
        r.rule.condition.platform_account_id.clone().unwrap_or_default(),
    ))
}

/// Inserts a rule.
pub async fn insert(tx: &mut Tx, r: &StoredRule) -> Result<(), Error> {
    let (condition, actions, account) = encoded(r)?;
    sql!(
        tx,
        execute,
        "INSERT INTO moderation_rules (id, name, priority, platform_account_id, condition, actions, enabled, \
             created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        r.id.to_string(),
        &r.name,
        r.rule.priority,
        &account,
        &condition,
        &actions,
        r.rule.enabled,
        r.rule.created_at,
        r.updated_at,
        r.version
    )
    .map_err(db_error)?;
    Ok(())
}

/// Saves a rule if its version is unchanged.
pub async fn save(tx: &mut Tx, r: &StoredRule, expected_version: i64) -> Result<(), Error> {
    let (condition, actions, account) = encoded(r)?;
    let affected = sql!(
        tx,
        execute,
        "UPDATE moderation_rules SET name = $2, priority = $3, platform_account_id = $4, condition = $5, \
             actions = $6, enabled = $7, updated_at = $8, version = $9 WHERE id = $1 AND version = $10",
        r.id.to_string(),
        &r.name,
        r.rule.priority,
        &account,
        &condition,
        &actions,
        r.rule.enabled,
        r.updated_at,
        r.version,
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "moderation rule")
}

/// Deletes a rule if its version is unchanged.
pub async fn delete(tx: &mut Tx, rule: ModerationRuleId, expected_version: i64) -> Result<(), Error> {
    let affected = sql!(
        tx,
        execute,
        "DELETE FROM moderation_rules WHERE id = $1 AND version = $2",
        rule.to_string(),
        expected_version
    )
    .map_err(db_error)?;
    saved(affected, "moderation rule")
}

/// One rule.
pub async fn get(tx: &mut Tx, rule: ModerationRuleId) -> Result<Option<StoredRule>, Error> {
    get_by_id::<Row, _>(tx, "moderation_rules", rule).await
}

/// Rules in evaluation order (priority, creation, id) after the cursor; with an account,
/// only those that can apply to it (its own and those for every account).
pub async fn list(
    tx: &mut Tx,
    account: Option<PlatformAccountId>,
    after: Option<(i32, DateTime<Utc>, String)>,
    limit: u32,
) -> Result<Vec<StoredRule>, Error> {
    let (p, c, i) = after.unwrap_or((i32::MIN, DateTime::<Utc>::UNIX_EPOCH, String::new()));
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM moderation_rules WHERE ($1 = '' OR platform_account_id = '' OR platform_account_id = $1) \
             AND (priority > $2 OR (priority = $2 AND (created_at > $3 OR (created_at = $3 AND id > $4)))) \
             ORDER BY priority, created_at, id LIMIT $5",
        account.map(|a| a.to_string()).unwrap_or_default(),
        p,
        c,
        i,
        i64::from(limit)
    )
    .map_err(db_error)?;
    rows.into_iter().map(StoredRule::try_from).collect()
}

/// Every enabled rule that can apply to `account`, in evaluation order.
pub async fn applicable(tx: &mut Tx, account: PlatformAccountId) -> Result<Vec<Rule>, Error> {
    let rows: Vec<Row> = sql!(
        tx,
        fetch_all,
        "SELECT * FROM moderation_rules WHERE enabled = TRUE AND (platform_account_id = '' OR platform_account_id = \
         $1) ORDER BY priority, created_at, id",
        account.to_string()
    )
    .map_err(db_error)?;
    rows.into_iter().map(|r| StoredRule::try_from(r).map(|s| s.rule)).collect()
}
