//! Screening text against the sensitive lexicon (R7.1.1, R3.2.3, R4.1.2).
//!
//! A text is normalised before matching, keeping a map from every normalised character
//! back to the original one, so findings point at exactly the characters the author
//! wrote:
//! - full-width forms become half-width (`ＡＢＣ１` -> `abc1`), letters are case-folded;
//! - traditional characters become simplified (`國務院` -> `国务院`, character for
//!   character, so the map stays one to one);
//! - noise characters between the characters of a term are skipped (`敏*感*词`,
//!   `机 密`, zero-width spaces): spaces and the symbols people use to break up words,
//!   but not sentence punctuation, so `手机，密码` does not read as `机密`;
//! - runs of one repeated character count once (`机机机密密`).
//!
//! Lexicon terms are normalised the same way, then one Aho-Corasick automaton
//! (leftmost-longest) is built per lexicon version. Personal data is found by pattern
//! with checksums: resident ID numbers (ISO 7064 MOD 11-2 check digit), mobile numbers,
//! bank card numbers (Luhn). A whitelist phrase suppresses findings inside it.

use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use govmedia_domain::Error;
use govmedia_domain::personal::{self, PersonalDataKind};

pub use govmedia_domain::screening::{Category, Severity};

/// Where a text will appear.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    /// A post.
    Post,
    /// A public comment.
    Comment,
    /// A staff reply.
    Reply,
    /// An account profile.
    Profile,
    /// A private message.
    PrivateMessage,
}

impl Context {
    /// Every context.
    pub const ALL: [Context; 5] =
        [Context::Post, Context::Comment, Context::Reply, Context::Profile, Context::PrivateMessage];

    /// Stored form.
    pub const fn as_str(self) -> &'static str {
        match self {
            Context::Post => "post",
            Context::Comment => "comment",
            Context::Reply => "reply",
            Context::Profile => "profile",
            Context::PrivateMessage => "private_message",
        }
    }

    /// From the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One term of the lexicon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Id.
    pub id: String,
    /// The term as written.
    pub term: String,
    /// Category.
    pub category: Category,
    /// Severity.
    pub severity: Severity,
    /// Suggested replacement.
    pub suggestion: String,
    /// Rule id.
    pub rule_id: String,
    /// Contexts it applies in (empty: all).
    pub contexts: BTreeSet<Context>,
    /// Where it comes from.
    pub source: String,
}

/// A span of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// Start, UTF-8 bytes.
    pub byte_start: usize,
    /// End, UTF-8 bytes (exclusive).
    pub byte_end: usize,
    /// Start, characters.
    pub char_start: usize,
    /// End, characters (exclusive).
    pub char_end: usize,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Category.
    pub category: Category,
    /// Severity.
    pub severity: Severity,
    /// The term or pattern that matched.
    pub matched_term: String,
    /// The original text of the match.
    pub excerpt: String,
    /// Where.
    pub span: Span,
    /// Rule id.
    pub rule_id: String,
    /// Suggested replacement.
    pub suggestion: String,
    /// Lexicon entry id, when a term matched.
    pub entry_id: String,
}

/// A text normalised for matching, with the way back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The normalised text.
    pub text: String,
    /// For each normalised character, the index of the original character it came from
    /// (the first of a collapsed run of repeats).
    pub origin: Vec<usize>,
    /// For each normalised character, the last original character of its run.
    pub origin_last: Vec<usize>,
}

fn is_noise(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '*' | '_'
                | '-'
                | '.'
                | '·'
                | '•'
                | '|'
                | '/'
                | '\\'
                | '~'
                | '#'
                | '@'
                | '&'
                | '^'
                | '+'
                | '='
                | '`'
                | '\''
                | '"'
        )
        || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

fn half_width(c: char) -> char {
    match c {
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
        '\u{3000}' => ' ',
        _ => c,
    }
}

/// Normalises `text` (see the module documentation).
pub fn normalize(text: &str) -> Normalized {
    let original: Vec<char> = text.chars().collect();
    let simplified: Vec<char> = fast2s::convert(text).chars().collect();
    // fast2s maps character for character; if it ever did not, keep the original.
    let simplified = if simplified.len() == original.len() { simplified } else { original.clone() };
    let mut out = String::with_capacity(text.len());
    let mut origin = Vec::with_capacity(original.len());
    let mut origin_last = Vec::with_capacity(original.len());
    let mut last: Option<char> = None;
    for (i, c) in simplified.into_iter().enumerate() {
        let c = half_width(c);
        if is_noise(c) {
            continue;
        }
        let c = c.to_lowercase().next().unwrap_or(c);
        if last == Some(c) {
            if let Some(end) = origin_last.last_mut() {
                *end = i;
            }
            continue;
        }
        out.push(c);
        origin.push(i);
        origin_last.push(i);
        last = Some(c);
    }
    Normalized { text: out, origin, origin_last }
}

/// Offsets of the original text: the byte offset of each character, plus the end.
fn byte_offsets(text: &str) -> Vec<usize> {
    let mut offsets: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
    offsets.push(text.len());
    offsets
}

/// The original span of normalised characters [start, end). A match covers whole runs of
/// repeats (`机机机密密`), except a run it shares with a neighbouring match: in
/// `共合国国务院` the first term ends at the first `国` and the second starts at the second.
fn span_of(n: &Normalized, offsets: &[usize], start: usize, end: usize, shared_start: bool, shared_end: bool) -> Span {
    let char_start = if shared_start { n.origin_last[start] } else { n.origin[start] };
    let char_end = if shared_end { n.origin[end - 1] + 1 } else { n.origin_last[end - 1] + 1 };
    Span { byte_start: offsets[char_start], byte_end: offsets[char_end], char_start, char_end }
}

/// A normalised-text index (in chars) of each byte offset of the normalised string.
fn char_index_of_byte(s: &str) -> Vec<usize> {
    let mut map = vec![0; s.len() + 1];
    let mut chars = 0;
    for (b, c) in s.char_indices() {
        for slot in map.iter_mut().skip(b).take(c.len_utf8()) {
            *slot = chars;
        }
        chars += 1;
    }
    map[s.len()] = chars;
    map
}

/// A built lexicon: entries, whitelist and automata. Immutable; a new version is a new
/// value, swapped in whole.
#[derive(Debug)]
pub struct Lexicon {
    version: u64,
    entries: Vec<Entry>,
    automaton: Option<AhoCorasick>,
    whitelist: Option<AhoCorasick>,
    whitelist_len: usize,
}

impl Lexicon {
    /// Builds the automata for `entries` and `whitelist` phrases.
    pub fn build(version: u64, entries: Vec<Entry>, whitelist: &[String]) -> Result<Self, Error> {
        let patterns: Vec<String> = entries.iter().map(|e| normalize(&e.term).text).collect();
        let builder = || AhoCorasickBuilder::new();
        let automaton = if patterns.iter().any(|p| !p.is_empty()) {
            Some(
                builder()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| Error::internal(format!("lexicon automaton: {e}")))?,
            )
        } else {
            None
        };
        let white: Vec<String> = whitelist.iter().map(|w| normalize(w).text).filter(|w| !w.is_empty()).collect();
        // Overlapping search (every whitelist occurrence counts) needs the standard match kind.
        let whitelist_automaton = if white.is_empty() {
            None
        } else {
            Some(AhoCorasick::new(&white).map_err(|e| Error::internal(format!("whitelist automaton: {e}")))?)
        };
        Ok(Self { version, entries, automaton, whitelist: whitelist_automaton, whitelist_len: white.len() })
    }

    /// The version.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Number of entries.
    pub fn entry_count(&self) -> usize {
        self.entries.len()
    }

    /// Number of whitelist phrases.
    pub fn whitelist_count(&self) -> usize {
        self.whitelist_len
    }

    /// The lexicon terms found in `text` in `context`, before the whitelist.
    pub fn match_terms(&self, text: &str, n: &Normalized, context: Context) -> Vec<Finding> {
        let Some(automaton) = &self.automaton else { return Vec::new() };
        let offsets = byte_offsets(text);
        let char_at = char_index_of_byte(&n.text);
        // Every occurrence, overlapping ones too (a term may share its first character
        // with the end of another once repeats collapse); nested ones are dropped below.
        let mut matches: Vec<aho_corasick::Match> = automaton.find_overlapping_iter(&n.text).collect();
        matches.sort_by_key(|m| (m.start(), std::cmp::Reverse(m.end())));
        let mut kept: Vec<aho_corasick::Match> = Vec::with_capacity(matches.len());
        for m in matches {
            if !kept.iter().any(|k| k.start() <= m.start() && m.end() <= k.end()) {
                kept.push(m);
            }
        }
        let first_chars: Vec<usize> = kept.iter().map(|m| char_at[m.start()]).collect();
        let last_chars: Vec<usize> = kept.iter().map(|m| char_at[m.end()].saturating_sub(1)).collect();
        let mut out = Vec::new();
        for (index, m) in kept.iter().enumerate() {
            let entry = &self.entries[m.pattern().as_usize()];
            if !entry.contexts.is_empty() && !entry.contexts.contains(&context) {
                continue;
            }
            let (start, end) = (char_at[m.start()], char_at[m.end()]);
            if start >= end {
                continue;
            }
            let shared_start = last_chars.iter().enumerate().any(|(j, last)| j != index && *last == start);
            let shared_end = first_chars.iter().enumerate().any(|(j, first)| j != index && *first == end - 1);
            let span = span_of(n, &offsets, start, end, shared_start, shared_end);
            out.push(Finding {
                category: entry.category,
                severity: entry.severity,
                matched_term: entry.term.clone(),
                excerpt: text[span.byte_start..span.byte_end].to_owned(),
                span,
                rule_id: entry.rule_id.clone(),
                suggestion: entry.suggestion.clone(),
                entry_id: entry.id.clone(),
            });
        }
        out
    }

    /// Original character ranges covered by whitelist phrases.
    fn whitelisted(&self, n: &Normalized) -> Vec<(usize, usize)> {
        let Some(automaton) = &self.whitelist else { return Vec::new() };
        let char_at = char_index_of_byte(&n.text);
        automaton
            .find_overlapping_iter(&n.text)
            .filter_map(|m| {
                let (start, end) = (char_at[m.start()], char_at[m.end()]);
                (start < end).then(|| (n.origin[start], n.origin_last[end - 1] + 1))
            })
            .collect()
    }

    /// Screens one text: lexicon terms and personal-data patterns, minus whitelisted
    /// spans, ordered by position.
    pub fn screen(&self, text: &str, context: Context) -> Vec<Finding> {
        let n = normalize(text);
        let mut findings = self.match_terms(text, &n, context);
        findings.extend(personal_data(text));
        let white = self.whitelisted(&n);
        findings.retain(|f| !white.iter().any(|(s, e)| *s <= f.span.char_start && f.span.char_end <= *e));
        findings.sort_by_key(|f| (f.span.char_start, f.span.char_end));
        findings
    }
}

fn personal_finding(
    text: &str,
    offsets: &[usize],
    start: usize,
    end: usize,
    kind: PersonalDataKind,
    severity: Severity,
) -> Finding {
    let span = Span { byte_start: offsets[start], byte_end: offsets[end], char_start: start, char_end: end };
    Finding {
        category: Category::PersonalData,
        severity,
        matched_term: kind.as_str().to_owned(),
        // Masked at the source, so no finding, refusal, stored copy or audit record
        // downstream ever holds the number; the span still points at it in the text.
        excerpt: kind.mask(&text[span.byte_start..span.byte_end]),
        span,
        rule_id: "R7.1.1".to_owned(),
        suggestion: String::new(),
        entry_id: String::new(),
    }
}

/// Resident ID numbers, mobile numbers and bank card numbers in `text`, each checked
/// ([`govmedia_domain::personal::find`]); ID and card numbers block, mobiles are reviewed.
pub fn personal_data(text: &str) -> Vec<Finding> {
    let offsets = byte_offsets(text);
    personal::find(text)
        .into_iter()
        .map(|f| {
            let severity = match f.kind {
                PersonalDataKind::MobileNumber => Severity::Review,
                PersonalDataKind::ResidentIdNumber | PersonalDataKind::BankCardNumber => Severity::Block,
            };
            personal_finding(text, &offsets, f.char_start, f.char_end, f.kind, severity)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(term: &str, category: Category, severity: Severity, suggestion: &str) -> Entry {
        Entry {
            id: format!("e-{term}"),
            term: term.into(),
            category,
            severity,
            suggestion: suggestion.into(),
            rule_id: "R7.1.1".into(),
            contexts: BTreeSet::new(),
            source: "test".into(),
        }
    }

    fn lexicon() -> Lexicon {
        Lexicon::build(
            1,
            vec![
                entry("机密", Category::ClassifiedMarking, Severity::Block, ""),
                entry("内部资料", Category::ClassifiedMarking, Severity::Block, ""),
                entry("垃圾", Category::Profanity, Severity::Review, ""),
                entry("中华人民共合国", Category::CriticalName, Severity::Block, "中华人民共和国"),
                entry("台湾政府", Category::NonStandardWording, Severity::Review, "台湾当局"),
                entry("国务院", Category::Political, Severity::Review, ""),
            ],
            &["垃圾分类".to_owned()],
        )
        .expect("builds")
    }

    fn excerpts(findings: &[Finding]) -> Vec<&str> {
        findings.iter().map(|f| f.excerpt.as_str()).collect()
    }

    #[test]
    fn normalisation_maps_back_to_the_original() {
        let n = normalize("ＡＢ敏*感 词!!");
        assert_eq!(n.text, "ab敏感词!");
        assert_eq!(n.origin, [0, 1, 2, 4, 6, 7]);
        assert_eq!(n.origin_last, [0, 1, 2, 4, 6, 8]);
        assert_eq!(normalize("國務院").text, "国务院");
        assert_eq!(normalize("机机机密密").text, "机密");
    }

    #[test]
    fn spans_land_on_the_original_characters_with_emoji_and_mixed_scripts() {
        let text = "😀Hi，这份文件是机\u{200B}密的";
        let found = lexicon().screen(text, Context::Post);
        assert_eq!(excerpts(&found), ["机\u{200B}密"]);
        let f = &found[0];
        assert_eq!(&text[f.span.byte_start..f.span.byte_end], "机\u{200B}密");
        let chars: Vec<char> = text.chars().collect();
        assert_eq!(chars[f.span.char_start..f.span.char_end].iter().collect::<String>(), "机\u{200B}密");
    }

    #[test]
    fn obfuscations_are_seen_through() {
        let l = lexicon();
        assert_eq!(excerpts(&l.screen("内*部*资*料，请勿外传", Context::Post)), ["内*部*资*料"]);
        assert_eq!(excerpts(&l.screen("這是機密", Context::Post)), ["機密"]);
        assert_eq!(excerpts(&l.screen("机机机密密", Context::Comment)), ["机机机密密"]);
        assert_eq!(excerpts(&l.screen("ＩＤ：机　密", Context::Comment)), ["机　密"]);
    }

    #[test]
    fn full_width_and_case_are_folded() {
        let l = Lexicon::build(1, vec![entry("vpn翻墙", Category::Illegal, Severity::Block, "")], &[]).expect("builds");
        assert_eq!(excerpts(&l.screen("教你ＶＰＮ翻墙", Context::Comment)), ["ＶＰＮ翻墙"]);
        assert_eq!(excerpts(&l.screen("教你Vpn 翻墙", Context::Comment)), ["Vpn 翻墙"]);
        let found = personal_data("电话：１３８００１３８０００");
        assert_eq!(excerpts(&found), ["１３８****８０００"], "full-width digits, masked");
    }

    #[test]
    fn sentence_punctuation_separates_words() {
        assert!(lexicon().screen("新手机，密码请妥善保管", Context::Post).is_empty());
    }

    #[test]
    fn the_whitelist_suppresses_known_false_positives() {
        let l = lexicon();
        assert!(l.screen("推进垃圾分类工作", Context::Post).is_empty());
        assert_eq!(excerpts(&l.screen("你就是个垃圾", Context::Comment)), ["垃圾"]);
    }

    #[test]
    fn critical_names_and_wording_come_with_suggestions() {
        let found = lexicon().screen("中华人民共合国国务院发布通知，台湾政府回应", Context::Post);
        let pairs: Vec<_> = found.iter().map(|f| (f.excerpt.as_str(), f.suggestion.as_str())).collect();
        assert_eq!(pairs, [("中华人民共合国", "中华人民共和国"), ("国务院", ""), ("台湾政府", "台湾当局")]);
    }

    #[test]
    fn personal_data_is_found_by_checksum() {
        // 11010519491231002X is the standard's worked example of a valid check digit.
        let found = personal_data("身份证11010519491231002X，电话13800138000，卡号6222021234567890128");
        let names: Vec<_> = found.iter().map(|f| (f.matched_term.as_str(), f.excerpt.as_str())).collect();
        assert_eq!(
            names,
            [
                ("resident_id_number", "1101**********002X"),
                ("mobile_number", "138****8000"),
                ("bank_card_number", "6222***********0128")
            ]
        );
        assert!(personal_data("身份证110105194912310021").is_empty(), "a wrong check digit is not an ID number");
        assert!(personal_data("卡号6222021234567890127").is_empty(), "a failed Luhn check is not a card");
        assert!(personal_data("编号12345678901").is_empty(), "not a mobile prefix");
    }
}
