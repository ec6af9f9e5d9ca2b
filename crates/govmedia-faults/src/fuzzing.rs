//! The fuzz targets' bodies: each takes any bytes, runs one of govmedia's parsers or
//! encoders on them and panics when a property it promises is broken (a panic inside
//! govmedia's own code is a broken promise too: bad input gets an error, never a crash).
//!
//! libFuzzer drives them through `cargo fuzz` (crates/govmedia-faults/fuzz, see
//! docs/reliability.md); the normal test run replays every input kept in
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through the same functions
//! (`tests/fuzz_corpus.rs`), so what the fuzzer once found stays found.
//!
//! - `screening`: normalisation keeps its way back to the original, and every finding's
//!   span lies on character boundaries of the text and quotes it (masked where it is
//!   personal data) (R7.1.1).
//! - `token`: an access token is accepted only as it was signed, byte for byte.
//! - `canonical`: the audit chain's canonical encoding is unambiguous — two events that
//!   differ never encode alike, so a hash cannot stand for two events (R1.3.5).
//! - `draft_file`: the command line's draft file format.
//! - `config`: a service's configuration file.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use govmedia_audit::domain::chain::{ChainedEvent, canonical};
use govmedia_audit::domain::screening::{Context, Lexicon, Span, normalize, personal_data};
use govmedia_domain::clock::ManualClock;
use govmedia_kit::auth::{AccessClaims, KeySource, PrincipalKind, SigningKey, TokenVerifier};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The targets, by name (the names of `fuzz/fuzz_targets/*.rs` and the corpus folders).
pub const TARGETS: [(&str, Target); 5] = [
    ("screening", screening),
    ("token", token),
    ("canonical", canonical_encoding),
    ("draft_file", draft_file),
    ("config", config),
];

fn lexicon() -> &'static Lexicon {
    static LEXICON: OnceLock<Lexicon> = OnceLock::new();
    LEXICON.get_or_init(|| {
        let (entries, phrases) = govmedia_audit::lexicon::default_lexicon().expect("the shipped lexicon parses");
        let whitelist: Vec<String> = phrases.into_iter().map(|(phrase, _)| phrase).collect();
        Lexicon::build(1, entries, &whitelist).expect("the shipped lexicon builds")
    })
}

fn check_span(text: &str, span: Span, excerpt: &str, what: &str) {
    assert!(span.byte_start <= span.byte_end && span.byte_end <= text.len(), "{what}: span {span:?} outside the text");
    assert!(
        text.is_char_boundary(span.byte_start) && text.is_char_boundary(span.byte_end),
        "{what}: span {span:?} splits a character"
    );
    // Personal data is quoted masked: the same characters, some as `*`.
    let quoted = &text[span.byte_start..span.byte_end];
    assert!(
        quoted.chars().count() == excerpt.chars().count()
            && quoted.chars().zip(excerpt.chars()).all(|(q, e)| q == e || e == '*'),
        "{what}: the excerpt {excerpt:?} is not the text at its span, {quoted:?}"
    );
    assert_eq!(text[..span.byte_start].chars().count(), span.char_start, "{what}: char_start");
    assert_eq!(text[..span.byte_end].chars().count(), span.char_end, "{what}: char_end");
}

/// Normalisation and screening of any text.
pub fn screening(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let original = text.chars().count();
    let n = normalize(&text);
    let kept = n.text.chars().count();
    assert_eq!((n.origin.len(), n.origin_last.len()), (kept, kept), "one way back per normalised character");
    for i in 0..kept {
        assert!(n.origin[i] <= n.origin_last[i] && n.origin_last[i] < original, "origin within the text");
        if i + 1 < kept {
            assert!(n.origin_last[i] < n.origin[i + 1], "origins in order, runs apart");
        }
    }
    let contexts = Context::ALL;
    let context = contexts[usize::from(selector) % contexts.len()];
    for finding in lexicon().screen(&text, context) {
        check_span(&text, finding.span, &finding.excerpt, &format!("term {:?}", finding.matched_term));
    }
    for finding in personal_data(&text) {
        check_span(&text, finding.span, &finding.excerpt, "personal data");
    }
}

/// The key and token the `token` target knows: deterministic, so the corpus can hold the
/// valid token.
struct Tokens {
    verifier: TokenVerifier,
    valid: String,
    runtime: tokio::runtime::Runtime,
}

/// When the valid token's claims were made (its expiry is an hour later).
fn token_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).single().unwrap_or_default()
}

fn tokens() -> &'static Tokens {
    static TOKENS: OnceLock<Tokens> = OnceLock::new();
    TOKENS.get_or_init(|| {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let der = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).to_pkcs8_der().expect("encodes");
        let key = SigningKey::from_pkcs8_der("fuzz-key", der.as_bytes()).expect("a key");
        let principal = "01930000-0000-7000-8000-000000000001".parse().expect("an id");
        let mut claims = AccessClaims::new(
            principal,
            PrincipalKind::User,
            "模糊测试",
            token_time(),
            std::time::Duration::from_secs(3600),
        );
        claims.jti = "01930000-0000-7000-8000-000000000002".into();
        claims.sid = Some("01930000-0000-7000-8000-000000000003".into());
        let valid = key.sign(&claims).expect("signed");
        let clock = Arc::new(ManualClock::new(token_time()));
        let verifier =
            TokenVerifier::new(KeySource::Static(vec![("fuzz-key".into(), key.public_key())])).with_clock(clock);
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        Tokens { verifier, valid, runtime }
    })
}

/// The valid token of the `token` target (a seed of its corpus).
pub fn valid_token() -> String {
    tokens().valid.clone()
}

/// Access token verification of any text.
pub fn token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let t = tokens();
    let verified = t.runtime.block_on(t.verifier.verify(text));
    if verified.is_ok() {
        assert_eq!(text, t.valid, "a token was accepted that is not the one signed");
    }
}

/// Reads what the fuzzer gave as a sequence of values.
struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let Some((&b, rest)) = self.data.split_first() else { return 0 };
        self.data = rest;
        b
    }

    fn number(&mut self) -> i64 {
        i64::from_le_bytes(std::array::from_fn(|_| self.byte()))
    }

    /// A short text: a length byte, then that many bytes (lossily UTF-8).
    fn text(&mut self) -> String {
        let len = usize::from(self.byte() % 24).min(self.data.len());
        let (head, rest) = self.data.split_at(len);
        self.data = rest;
        String::from_utf8_lossy(head).into_owned()
    }

    /// A time as the store keeps it: whole microseconds.
    fn time(&mut self) -> DateTime<Utc> {
        let micros = self.number().rem_euclid(253_402_300_799_000_000);
        DateTime::from_timestamp_micros(micros).unwrap_or_default()
    }
}

fn event(input: &mut Input<'_>) -> ChainedEvent {
    let mut e = ChainedEvent {
        sequence: input.number(),
        id: String::new(),
        occur_time: input.time(),
        record_time: input.time(),
        action: String::new(),
        actor_kind: String::new(),
        actor_id: String::new(),
        actor_name: String::new(),
        client_address: String::new(),
        producer: String::new(),
        resource_type: String::new(),
        resource_id: String::new(),
        department_id: String::new(),
        platform_account_id: String::new(),
        outcome: String::new(),
        rule_id: String::new(),
        reason: String::new(),
        attributes: BTreeMap::new(),
        trace_id: String::new(),
        request_id: String::new(),
        appended_by: String::new(),
        previous_hash: [0; 32],
        hash: [0; 32],
    };
    for i in 0..ChainedEvent::TEXT_FIELDS {
        *e.text_field_mut(i) = input.text();
    }
    for _ in 0..input.byte() % 4 {
        e.attributes.insert(input.text(), input.text());
    }
    e
}

/// Moves `k` characters from the end of one text to the start of another: the edit an
/// ambiguous encoding (plain concatenation) would not see.
fn shift(from: &mut String, to: &mut String, k: usize) {
    let cut = from.char_indices().rev().nth(k.saturating_sub(1)).map_or(0, |(i, _)| i);
    let moved = from.split_off(cut);
    to.insert_str(0, &moved);
}

/// The audit chain's canonical encoding of an event and an edited copy.
pub fn canonical_encoding(data: &[u8]) {
    let mut input = Input { data };
    let a = event(&mut input);
    let mut b = a.clone();
    let (which, k) = (usize::from(input.byte()), usize::from(input.byte() % 8) + 1);
    match input.byte() % 6 {
        // Move the boundary between two neighbouring fields.
        0 => {
            let mut from = std::mem::take(b.text_field_mut(which));
            let mut to = std::mem::take(b.text_field_mut(which + 1));
            shift(&mut from, &mut to, k);
            *b.text_field_mut(which) = from;
            *b.text_field_mut(which + 1) = to;
        }
        // Move the boundary between an attribute's key and its value, or add one.
        1 => {
            let (mut key, mut value) = b.attributes.pop_first().unwrap_or_default();
            shift(&mut key, &mut value, k);
            b.attributes.insert(key, value);
        }
        2 => {
            b.attributes.insert(input.text(), input.text());
        }
        // Another sequence or time.
        3 => b.sequence = input.number(),
        4 => b.record_time = input.time(),
        // Any one field rewritten.
        _ => *b.text_field_mut(which) = input.text(),
    }
    // The hashes are not encoded (and equal here): any other difference must show.
    if a != b {
        assert_ne!(canonical(&a), canonical(&b), "two different events encode alike:\n{a:?}\n{b:?}");
    }
}

/// The command line's draft file format.
pub fn draft_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok((title, body)) = govmedia::cli::content::parse_draft(&text, None) {
        assert!(!title.is_empty() && !body.is_empty(), "a title and a body");
        assert!(!title.contains('\n'), "the title is one line: {title:?}");
        assert_eq!(title.trim(), title, "the title is trimmed");
        assert_eq!(body.trim(), body, "the body is trimmed");
    }
}

/// A service's configuration file (the content service's settings, the most varied).
pub fn config(data: &[u8]) {
    use clap::CommandFactory;
    thread_local! {
        static FILE: tempfile::NamedTempFile = tempfile::NamedTempFile::new().expect("a temporary file");
        // Building the command is most of a load's cost; the loader takes a copy.
        static COMMAND: clap::Command = govmedia_content::ContentSettings::command();
    }
    FILE.with(|file| {
        std::fs::write(file.path(), data).expect("written");
        let args: Vec<std::ffi::OsString> =
            vec!["govmedia-content".into(), "--config".into(), file.path().as_os_str().to_owned()];
        let env = govmedia_kit::config::Environment::from_pairs(Vec::<(String, String)>::new());
        let loaded = COMMAND.with(|command| {
            govmedia_kit::config::load_for_command::<govmedia_content::ContentSettings>(command.clone(), &args, &env)
        });
        if let Err(e) = &loaded {
            for secret in secrets_in(data) {
                assert!(!e.to_string().contains(&secret), "an error about the file shows a secret's value: {e}");
            }
        }
    });
}

/// The settings that hold secrets, as the file names them (flattened, `_` for `-`).
const SECRET_SETTINGS: [&str; 3] = ["webhook_secret", "client_secret", "database_url"];

/// The values the file gives secret settings, at least 8 bytes long (a shorter one could
/// appear in an error text by coincidence).
fn secrets_in(data: &[u8]) -> Vec<String> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<String>) {
        for (key, value) in table {
            let key = key.replace('-', "_");
            let full = if prefix.is_empty() { key } else { format!("{prefix}_{key}") };
            match value {
                toml::Value::Table(inner) => walk(&full, inner, out),
                toml::Value::String(s) if SECRET_SETTINGS.contains(&full.as_str()) => out.push(s.clone()),
                other if SECRET_SETTINGS.contains(&full.as_str()) => out.push(other.to_string()),
                _ => {}
            }
        }
    }
    let Some(table) = std::str::from_utf8(data).ok().and_then(|t| toml::from_str::<toml::Table>(t).ok()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    walk("", &table, &mut out);
    out.retain(|s| s.len() >= 8);
    out
}
