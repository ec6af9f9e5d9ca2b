//! Screening through the audit service's `ScreeningService`, as every producing service
//! needs it (R7.1.1): the client, the stored form of findings, and the refusal a block
//! finding turns into.
//!
//! Without an audit endpoint nothing is screened and the caller gets UNAVAILABLE:
//! screening is never silently skipped.

use govmedia_domain::Error;
use govmedia_domain::error::RuleViolation;
use govmedia_proto::audit::v1::screening_service_client::ScreeningServiceClient;
use govmedia_proto::audit::v1::{ScreenTextRequest, TextToScreen};
use govmedia_proto::common::v1::{ScreeningCategory, ScreeningContext, ScreeningFinding, ScreeningSeverity, TextSpan};
use tonic::transport::Channel;

use crate::client::CallCredentials;

/// What a screening call answered: every finding (each naming its text's key) and the
/// lexicon version used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Screened {
    /// The findings of all texts.
    pub findings: Vec<ScreeningFinding>,
    /// The lexicon version.
    pub lexicon_version: u64,
}

impl Screened {
    /// The block findings.
    pub fn blocking(&self) -> Vec<&ScreeningFinding> {
        self.findings.iter().filter(|f| is_block(f)).collect()
    }
}

/// The audit service's screening, called with service credentials.
#[derive(Debug, Clone)]
pub struct Screener {
    audit: Option<Channel>,
    credentials: CallCredentials,
}

impl Screener {
    /// Screening on `audit`; `None` refuses every call (UNAVAILABLE).
    pub fn new(audit: Option<Channel>, credentials: CallCredentials) -> Self {
        Self { audit, credentials }
    }

    /// Screens `(key, text)` pairs in `context`. Empty texts are not sent.
    pub async fn screen(&self, context: ScreeningContext, texts: Vec<(String, String)>) -> Result<Screened, Error> {
        let texts: Vec<TextToScreen> =
            texts.into_iter().filter(|(_, t)| !t.is_empty()).map(|(key, text)| TextToScreen { key, text }).collect();
        if texts.is_empty() {
            return Ok(Screened::default());
        }
        let Some(audit) = &self.audit else {
            return Err(Error::Unavailable {
                dependency: "screening (audit service)",
                source: "no audit endpoint is configured".into(),
            });
        };
        let mut request = tonic::Request::new(ScreenTextRequest { context: context as i32, texts });
        let unavailable =
            |s: tonic::Status| Error::Unavailable { dependency: "screening (audit service)", source: Box::new(s) };
        self.credentials.authorize(&mut request).await.map_err(unavailable)?;
        let mut client = ScreeningServiceClient::new(audit.clone());
        let answer = crate::telemetry::client_call("govmedia.audit.v1.ScreeningService", "ScreenText", request, |r| {
            client.screen_text(r)
        })
        .await
        .map_err(unavailable)?
        .into_inner();
        Ok(Screened {
            findings: answer.results.into_iter().flat_map(|r| r.findings).collect(),
            lexicon_version: answer.lexicon_version,
        })
    }
}

/// True for a block finding.
pub fn is_block(f: &ScreeningFinding) -> bool {
    f.severity == ScreeningSeverity::Block as i32
}

/// A category as people read it in refusals.
pub fn category_name(c: i32) -> &'static str {
    match ScreeningCategory::try_from(c).unwrap_or(ScreeningCategory::Unspecified) {
        ScreeningCategory::ClassifiedMarking => "classified-marking",
        ScreeningCategory::Political => "political",
        ScreeningCategory::Illegal => "illegal",
        ScreeningCategory::Profanity => "abusive",
        ScreeningCategory::PersonalData => "personal-data",
        ScreeningCategory::NonStandardWording => "non-standard wording",
        ScreeningCategory::CriticalName => "misspelt critical name",
        ScreeningCategory::Unspecified => "sensitive",
    }
}

/// The refusal for block findings: one violation per finding, naming the lexicon rule,
/// the text and span, the term and the suggested wording.
pub fn refusal(blocking: &[&ScreeningFinding]) -> Error {
    Error::RuleViolated(
        blocking
            .iter()
            .map(|f| {
                let span = f.span.unwrap_or_default();
                RuleViolation::new(
                    f.rule_id.clone(),
                    format!("{}[{}..{}]", f.text_key, span.char_start, span.char_end),
                    format!(
                        "\"{}\" is a blocked {} term{}",
                        f.excerpt,
                        category_name(f.category),
                        if f.suggestion.is_empty() { String::new() } else { format!("; write \"{}\"", f.suggestion) }
                    ),
                )
            })
            .collect(),
    )
}

/// Findings as stored beside what they were found in (JSON of the wire fields).
pub fn encode_findings(findings: &[ScreeningFinding]) -> String {
    serde_json::to_string(&findings.iter().map(StoredFinding::from_proto).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".to_owned())
}

/// Findings from their stored form. A stored text that does not decode is an error (an
/// internal one, logged): read as "no findings" it would hide what screening found.
pub fn decode_findings(stored: &str) -> Result<Vec<ScreeningFinding>, Error> {
    let stored = serde_json::from_str::<Vec<StoredFinding>>(stored)
        .map_err(|e| Error::internal(format!("stored screening findings do not decode: {e}")))?;
    Ok(stored.into_iter().map(StoredFinding::into_proto).collect())
}

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct StoredFinding {
    category: i32,
    severity: i32,
    matched_term: String,
    excerpt: String,
    byte_start: u32,
    byte_end: u32,
    char_start: u32,
    char_end: u32,
    rule_id: String,
    suggestion: String,
    lexicon_entry_id: String,
    text_key: String,
}

impl StoredFinding {
    fn from_proto(f: &ScreeningFinding) -> Self {
        let span = f.span.unwrap_or_default();
        Self {
            category: f.category,
            severity: f.severity,
            matched_term: f.matched_term.clone(),
            excerpt: f.excerpt.clone(),
            byte_start: span.byte_start,
            byte_end: span.byte_end,
            char_start: span.char_start,
            char_end: span.char_end,
            rule_id: f.rule_id.clone(),
            suggestion: f.suggestion.clone(),
            lexicon_entry_id: f.lexicon_entry_id.clone(),
            text_key: f.text_key.clone(),
        }
    }

    fn into_proto(self) -> ScreeningFinding {
        ScreeningFinding {
            category: self.category,
            severity: self.severity,
            matched_term: self.matched_term,
            excerpt: self.excerpt,
            span: Some(TextSpan {
                byte_start: self.byte_start,
                byte_end: self.byte_end,
                char_start: self.char_start,
                char_end: self.char_end,
            }),
            rule_id: self.rule_id,
            suggestion: self.suggestion,
            lexicon_entry_id: self.lexicon_entry_id,
            text_key: self.text_key,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_survive_their_stored_form() {
        let f = ScreeningFinding {
            category: ScreeningCategory::Profanity as i32,
            severity: ScreeningSeverity::Block as i32,
            matched_term: "傻逼".into(),
            excerpt: "傻*逼".into(),
            span: Some(TextSpan { byte_start: 3, byte_end: 10, char_start: 1, char_end: 4 }),
            rule_id: "R4.1.2".into(),
            suggestion: String::new(),
            lexicon_entry_id: "e1".into(),
            text_key: "text".into(),
        };
        assert_eq!(decode_findings(&encode_findings(std::slice::from_ref(&f))).expect("decodes"), vec![f]);
        assert!(
            decode_findings("not json").is_err(),
            "a stored text that does not decode is an error, not no findings"
        );
    }

    #[test]
    fn a_refusal_names_rule_span_and_suggestion() {
        let f = ScreeningFinding {
            category: ScreeningCategory::NonStandardWording as i32,
            severity: ScreeningSeverity::Block as i32,
            excerpt: "x".into(),
            span: Some(TextSpan { char_start: 2, char_end: 3, ..Default::default() }),
            rule_id: "L-7".into(),
            suggestion: "y".into(),
            text_key: "body".into(),
            ..Default::default()
        };
        let Error::RuleViolated(v) = refusal(&[&f]) else { panic!("not a rule violation") };
        assert_eq!(v[0].rule_id, "L-7");
        assert_eq!(v[0].subject, "body[2..3]");
        assert!(v[0].description.contains("write \"y\""), "{}", v[0].description);
    }
}
