//! Moderation rules (R4.1.3): what happens to a comment when it arrives, from its
//! screening findings and the bureau's rules.
//!
//! Rules are tried by priority (lower first, ties by creation time); the first enabled
//! rule whose every set condition holds decides, and its actions apply in order. Without
//! a deciding rule the defaults apply: a *block* finding hides the comment, a *review*
//! finding queues it for a moderator, anything else stays open. A rule says otherwise
//! with `Allow` (leave it open even with a block finding) or `Hide`/`FlagForReview`.
//!
//! The category and severity conditions are read together: they hold when one finding
//! has one of the categories *and* at least the severity — "a political finding that
//! blocks", not "a political remark somewhere and a block somewhere else".

use chrono::{DateTime, Utc};
pub use govmedia_domain::screening::{Category, Severity};

/// R4.1.3: improper comments are dealt with promptly.
pub const MODERATION_RULE: &str = "R4.1.3";

/// One screening finding, as moderation sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// What kind of problem.
    pub category: Category,
    /// What it means.
    pub severity: Severity,
}

/// A comment as moderation sees it.
#[derive(Debug, Clone, Copy)]
pub struct Arrival<'a> {
    /// The text.
    pub text: &'a str,
    /// The author's id on the platform.
    pub author_platform_id: &'a str,
    /// The account it is on.
    pub platform_account_id: &'a str,
    /// The publication it is under, if known.
    pub publication_id: Option<&'a str>,
    /// What screening found.
    pub findings: &'a [Finding],
}

/// When a rule matches; unset conditions always hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// A finding of one of these categories.
    pub categories: Vec<Category>,
    /// A finding at least this severe (`Block` is more severe than `Review`).
    pub minimum_severity: Option<Severity>,
    /// Keywords, any of which the text contains (case-insensitive).
    pub keywords: Vec<String>,
    /// Authors (platform ids), one of whom wrote it.
    pub author_platform_ids: Vec<String>,
    /// The account.
    pub platform_account_id: Option<String>,
    /// The publication.
    pub publication_id: Option<String>,
}

/// What a matching rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hide the comment.
    Hide,
    /// Queue it for a moderator.
    FlagForReview,
    /// Assign it to a moderator (user id).
    Assign(String),
    /// Add a tag.
    Tag(String),
    /// Leave it open, overriding the default hiding of block findings.
    Allow,
}

/// A rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Id.
    pub id: String,
    /// Lower first.
    pub priority: i32,
    /// Ties by creation time.
    pub created_at: DateTime<Utc>,
    /// When it matches.
    pub condition: Condition,
    /// What it does, in order.
    pub actions: Vec<Action>,
    /// Disabled rules are skipped.
    pub enabled: bool,
}

/// Where a comment lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Visible, waiting for a response.
    Open,
    /// A moderator must look at it.
    NeedsReview,
    /// Hidden.
    Hidden,
}

/// The decision on one comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Where it lands.
    pub status: Status,
    /// Who handles it, if a rule assigned it.
    pub assignee: Option<String>,
    /// Tags from the rule.
    pub tags: Vec<String>,
    /// The rule that decided, if any.
    pub rule_id: Option<String>,
}

impl Condition {
    /// Whether every set condition holds for `a`.
    pub fn holds(&self, a: &Arrival<'_>) -> bool {
        let finding_needed = !self.categories.is_empty() || self.minimum_severity.is_some();
        let finding_ok = !finding_needed
            || a.findings.iter().any(|f| {
                (self.categories.is_empty() || self.categories.contains(&f.category))
                    && self.minimum_severity.is_none_or(|min| f.severity <= min)
            });
        let text = a.text.to_lowercase();
        let keyword_ok = self.keywords.is_empty() || self.keywords.iter().any(|k| text.contains(&k.to_lowercase()));
        let author_ok =
            self.author_platform_ids.is_empty() || self.author_platform_ids.iter().any(|x| x == a.author_platform_id);
        let account_ok = self.platform_account_id.as_deref().is_none_or(|x| x == a.platform_account_id);
        let publication_ok = self.publication_id.as_deref().is_none_or(|x| Some(x) == a.publication_id);
        finding_ok && keyword_ok && author_ok && account_ok && publication_ok
    }
}

/// Decides where an arriving comment lands.
pub fn moderate(rules: &[Rule], a: &Arrival<'_>) -> Verdict {
    let default_status = if a.findings.iter().any(|f| f.severity == Severity::Block) {
        Status::Hidden
    } else if a.findings.is_empty() {
        Status::Open
    } else {
        Status::NeedsReview
    };
    let mut ordered: Vec<&Rule> = rules.iter().filter(|r| r.enabled).collect();
    ordered.sort_by(|x, y| x.priority.cmp(&y.priority).then(x.created_at.cmp(&y.created_at)));
    let Some(rule) = ordered.into_iter().find(|r| r.condition.holds(a)) else {
        return Verdict { status: default_status, assignee: None, tags: Vec::new(), rule_id: None };
    };
    let mut verdict =
        Verdict { status: default_status, assignee: None, tags: Vec::new(), rule_id: Some(rule.id.clone()) };
    for action in &rule.actions {
        match action {
            Action::Hide => verdict.status = Status::Hidden,
            Action::FlagForReview => verdict.status = Status::NeedsReview,
            Action::Allow => verdict.status = Status::Open,
            Action::Assign(user) => verdict.assignee = Some(user.clone()),
            Action::Tag(tag) => {
                if !verdict.tags.contains(tag) {
                    verdict.tags.push(tag.clone());
                }
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, priority: i32, condition: Condition, actions: Vec<Action>) -> Rule {
        Rule { id: id.into(), priority, created_at: DateTime::<Utc>::UNIX_EPOCH, condition, actions, enabled: true }
    }

    fn arrival<'a>(text: &'a str, findings: &'a [Finding]) -> Arrival<'a> {
        Arrival { text, author_platform_id: "u1", platform_account_id: "acct", publication_id: Some("pub"), findings }
    }

    const BLOCK_POLITICAL: Finding = Finding { category: Category::Political, severity: Severity::Block };
    const REVIEW_PROFANITY: Finding = Finding { category: Category::Profanity, severity: Severity::Review };

    #[test]
    fn without_rules_block_hides_review_queues_and_the_rest_stays_open_r4_1_3() {
        assert_eq!(moderate(&[], &arrival("x", &[BLOCK_POLITICAL, REVIEW_PROFANITY])).status, Status::Hidden);
        assert_eq!(moderate(&[], &arrival("x", &[REVIEW_PROFANITY])).status, Status::NeedsReview);
        assert_eq!(moderate(&[], &arrival("谢谢！", &[])).status, Status::Open);
    }

    #[test]
    fn the_first_matching_rule_by_priority_decides_and_its_actions_apply_in_order() {
        let rules = vec![
            rule("late", 10, Condition::default(), vec![Action::Tag("all".into())]),
            rule(
                "abuse",
                1,
                Condition { categories: vec![Category::Profanity], ..Condition::default() },
                vec![Action::Hide, Action::Assign("mod-1".into()), Action::Tag("abuse".into())],
            ),
            Rule { enabled: false, ..rule("off", 0, Condition::default(), vec![Action::Allow]) },
        ];
        let v = moderate(&rules, &arrival("x", &[REVIEW_PROFANITY]));
        assert_eq!(
            v,
            Verdict {
                status: Status::Hidden,
                assignee: Some("mod-1".into()),
                tags: vec!["abuse".into()],
                rule_id: Some("abuse".into())
            }
        );
        let v = moderate(&rules, &arrival("你好", &[]));
        assert_eq!((v.rule_id.as_deref(), v.status), (Some("late"), Status::Open), "a disabled rule is skipped");
    }

    #[test]
    fn allow_overrides_the_default_hiding_and_conditions_combine() {
        let press = rule(
            "press-office",
            1,
            Condition { author_platform_ids: vec!["u1".into()], ..Condition::default() },
            vec![Action::Allow],
        );
        assert_eq!(moderate(&[press], &arrival("x", &[BLOCK_POLITICAL])).status, Status::Open);

        // Category and severity hold on the same finding.
        let blocking_profanity = Condition {
            categories: vec![Category::Profanity],
            minimum_severity: Some(Severity::Block),
            ..Condition::default()
        };
        assert!(!blocking_profanity.holds(&arrival("x", &[BLOCK_POLITICAL, REVIEW_PROFANITY])));
        let review_or_worse = Condition { minimum_severity: Some(Severity::Review), ..Condition::default() };
        assert!(review_or_worse.holds(&arrival("x", &[BLOCK_POLITICAL])), "block is worse than review");

        let keyword = Condition { keywords: vec!["REFUND".into()], ..Condition::default() };
        assert!(keyword.holds(&arrival("how do I get a refund?", &[])), "case-insensitive");
        let elsewhere = Condition { platform_account_id: Some("other".into()), ..Condition::default() };
        assert!(!elsewhere.holds(&arrival("x", &[])));
        let under = Condition { publication_id: Some("pub".into()), ..Condition::default() };
        assert!(under.holds(&arrival("x", &[])));
        let no_publication = Arrival { publication_id: None, ..arrival("x", &[]) };
        assert!(!under.holds(&no_publication));
    }
}
