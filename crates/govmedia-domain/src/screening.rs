//! The screening vocabulary shared by every service: what kind of problem a finding is
//! and what it means for the text (R7.1.1). The engine lives in the audit service;
//! content and interaction act on its findings.

/// What kind of problem a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    /// Classified markings (R7.1.1).
    ClassifiedMarking,
    /// Political red lines.
    Political,
    /// Illegal content.
    Illegal,
    /// Profanity and abuse.
    Profanity,
    /// Personal data.
    PersonalData,
    /// Non-standard wording.
    NonStandardWording,
    /// A misspelt critical name.
    CriticalName,
}

impl Category {
    /// Every category.
    pub const ALL: [Category; 7] = [
        Category::ClassifiedMarking,
        Category::Political,
        Category::Illegal,
        Category::Profanity,
        Category::PersonalData,
        Category::NonStandardWording,
        Category::CriticalName,
    ];

    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Category::ClassifiedMarking => "classified_marking",
            Category::Political => "political",
            Category::Illegal => "illegal",
            Category::Profanity => "profanity",
            Category::PersonalData => "personal_data",
            Category::NonStandardWording => "non_standard_wording",
            Category::CriticalName => "critical_name",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a finding means for the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The text must not go out.
    Block,
    /// A person must look at it.
    Review,
}

impl Severity {
    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Block => "block",
            Severity::Review => "review",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "block" => Some(Severity::Block),
            "review" => Some(Severity::Review),
            _ => None,
        }
    }
}
