//! The hash chain of the audit log.
//!
//! Every event is hashed as `hash = SHA-256(previous_hash || canonical(event))`, where
//! `previous_hash` is the hash of the event before (32 zero bytes before the first). The
//! canonical encoding is documented in docs/audit-log.md so an outside auditor can
//! recompute the chain with any SHA-256 tool:
//!
//! - the 4 bytes `GMA1`;
//! - then each field, in this order, as a 4-byte big-endian byte length followed by its
//!   UTF-8 bytes: sequence (decimal), id, occur_time, record_time (both RFC 3339 UTC with
//!   exactly 6 fractional digits and `Z`), action, actor_kind, actor_id, actor_name,
//!   client_address, producer, resource_type, resource_id, department_id,
//!   platform_account_id, outcome, rule_id, reason, trace_id, request_id;
//! - then the number of attributes as a 4-byte big-endian integer, and each attribute,
//!   sorted by key (bytewise), as key then value, each length-prefixed as above.
//!
//! An event that names who appended it (`appended_by`, the authenticated client id of
//! the service principal that called `AppendEvents`; every event appended since that
//! field exists) starts with `GMA2` instead and ends with `appended_by`, length-prefixed,
//! after the attributes. Events from before keep `GMA1`: emptying `appended_by` of a
//! newer event changes its encoding and so its hash.
//!
//! A checkpoint signs (Ed25519) the bytes `GMC1`, the sequence as 8-byte big-endian, the
//! 32-byte hash of that event, and the creation time as 8-byte big-endian microseconds
//! since the Unix epoch.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

/// The hash before the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// An event as the chain sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainedEvent {
    /// Position, from 1.
    pub sequence: i64,
    /// Event id.
    pub id: String,
    /// When it happened.
    pub occur_time: DateTime<Utc>,
    /// When it was recorded.
    pub record_time: DateTime<Utc>,
    /// Action.
    pub action: String,
    /// `user`, `service` or `system`.
    pub actor_kind: String,
    /// Actor id.
    pub actor_id: String,
    /// Actor name.
    pub actor_name: String,
    /// Client address.
    pub client_address: String,
    /// Producing service.
    pub producer: String,
    /// Resource type.
    pub resource_type: String,
    /// Resource id.
    pub resource_id: String,
    /// Department.
    pub department_id: String,
    /// Platform account.
    pub platform_account_id: String,
    /// `success`, `failure` or `denied`.
    pub outcome: String,
    /// Rule id.
    pub rule_id: String,
    /// Stated reason.
    pub reason: String,
    /// Further facts, sorted by key.
    pub attributes: BTreeMap<String, String>,
    /// Trace id.
    pub trace_id: String,
    /// Request id.
    pub request_id: String,
    /// The client id of the service principal that appended it, as the audit service
    /// authenticated it; empty only on events appended before it was recorded.
    pub appended_by: String,
    /// Hash of the event before.
    pub previous_hash: [u8; 32],
    /// This event's hash.
    pub hash: [u8; 32],
}

impl ChainedEvent {
    /// How many text fields an event has (see [`ChainedEvent::text_field_mut`]).
    pub const TEXT_FIELDS: usize = 17;

    /// Text field `i` (modulo [`ChainedEvent::TEXT_FIELDS`]), in encoding order with
    /// `appended_by` last: for changing one field at a time (the chain's property tests
    /// and its fuzz target).
    pub fn text_field_mut(&mut self, i: usize) -> &mut String {
        match i % Self::TEXT_FIELDS {
            0 => &mut self.id,
            1 => &mut self.action,
            2 => &mut self.actor_kind,
            3 => &mut self.actor_id,
            4 => &mut self.actor_name,
            5 => &mut self.client_address,
            6 => &mut self.producer,
            7 => &mut self.resource_type,
            8 => &mut self.resource_id,
            9 => &mut self.department_id,
            10 => &mut self.platform_account_id,
            11 => &mut self.outcome,
            12 => &mut self.rule_id,
            13 => &mut self.reason,
            14 => &mut self.trace_id,
            15 => &mut self.request_id,
            _ => &mut self.appended_by,
        }
    }
}

/// A time in the canonical form: RFC 3339, UTC, 6 fractional digits, `Z`.
pub fn canonical_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn put(out: &mut Vec<u8>, field: &str) {
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field.as_bytes());
}

/// The canonical encoding of an event (without its hashes).
pub fn canonical(e: &ChainedEvent) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(if e.appended_by.is_empty() { b"GMA1" } else { b"GMA2" });
    put(&mut out, &e.sequence.to_string());
    for field in [
        e.id.as_str(),
        &canonical_time(e.occur_time),
        &canonical_time(e.record_time),
        &e.action,
        &e.actor_kind,
        &e.actor_id,
        &e.actor_name,
        &e.client_address,
        &e.producer,
        &e.resource_type,
        &e.resource_id,
        &e.department_id,
        &e.platform_account_id,
        &e.outcome,
        &e.rule_id,
        &e.reason,
        &e.trace_id,
        &e.request_id,
    ] {
        put(&mut out, field);
    }
    out.extend_from_slice(&u32::try_from(e.attributes.len()).unwrap_or(u32::MAX).to_be_bytes());
    for (key, value) in &e.attributes {
        put(&mut out, key);
        put(&mut out, value);
    }
    if !e.appended_by.is_empty() {
        put(&mut out, &e.appended_by);
    }
    out
}

/// The hash of `event` chained to `previous`.
pub fn link(previous: &[u8; 32], event: &ChainedEvent) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(canonical(event));
    hasher.finalize().into()
}

/// The bytes a checkpoint signs.
pub fn checkpoint_message(sequence: i64, hash: &[u8; 32], created_at: DateTime<Utc>) -> Vec<u8> {
    let mut out = Vec::with_capacity(52);
    out.extend_from_slice(b"GMC1");
    out.extend_from_slice(&sequence.to_be_bytes());
    out.extend_from_slice(hash);
    out.extend_from_slice(&created_at.timestamp_micros().to_be_bytes());
    out
}

/// Signs a checkpoint.
pub fn sign_checkpoint(key: &SigningKey, sequence: i64, hash: &[u8; 32], created_at: DateTime<Utc>) -> [u8; 64] {
    key.sign(&checkpoint_message(sequence, hash, created_at)).to_bytes()
}

/// Checks a checkpoint's signature with its public key.
pub fn checkpoint_signature_valid(
    public_key: &[u8],
    signature: &[u8],
    sequence: i64,
    hash: &[u8; 32],
    created_at: DateTime<Utc>,
) -> bool {
    let (Ok(public), Ok(signature)) = (<[u8; 32]>::try_from(public_key), Signature::from_slice(signature)) else {
        return false;
    };
    VerifyingKey::from_bytes(&public)
        .is_ok_and(|key| key.verify(&checkpoint_message(sequence, hash, created_at), &signature).is_ok())
}

/// What is wrong at the first broken link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Break {
    /// The stored hash is not the hash of the stored content: the event was altered.
    HashMismatch,
    /// The event's previous hash is not the hash of the event before it.
    ChainMismatch,
    /// A sequence number is missing.
    SequenceGap,
    /// A checkpoint's signature does not verify.
    CheckpointSignatureInvalid,
    /// A checkpoint's hash differs from the event it covers.
    CheckpointHashMismatch,
    /// The log ends before a sequence something vouches for: its tail was removed.
    TailMissing,
    /// The kept checkpoint is not among the stored ones.
    CheckpointMissing,
}

/// What vouches for the end of the log, read head first (an append moves the head and
/// adds its events in one transaction, so a head read before the last sequence is never
/// ahead of it unless events were removed).
#[derive(Debug, Clone)]
pub struct Tail {
    /// The newest stored event's sequence.
    pub last_event: i64,
    /// The chain head's sequence.
    pub head: i64,
    /// The newest stored checkpoint's sequence.
    pub latest_checkpoint: Option<i64>,
    /// A checkpoint kept outside the database, already checked to be signed by the
    /// audit key, with what the database holds at its sequence.
    pub kept: Option<KeptCheckpoint>,
}

/// A kept checkpoint and what the database holds at its sequence.
#[derive(Debug, Clone)]
pub struct KeptCheckpoint {
    /// Its sequence.
    pub sequence: i64,
    /// Its hash.
    pub hash: [u8; 32],
    /// The stored event's hash at that sequence.
    pub stored_event_hash: Option<[u8; 32]>,
    /// Whether the stored checkpoints still hold it.
    pub stored: bool,
}

/// Checks that nothing is missing at the end of the log (R1.3.5): the first problem,
/// with the sequence it concerns and a sentence.
pub fn check_tail(tail: &Tail) -> Option<(i64, Break, String)> {
    let missing_from = tail.last_event + 1;
    let gone = |what: String, upto: i64| {
        Some((
            missing_from,
            Break::TailMissing,
            format!("the log ends at {} but {what}: events {missing_from} to {upto} are missing", tail.last_event),
        ))
    };
    if let Some(kept) = &tail.kept {
        if kept.sequence > tail.last_event {
            return gone(format!("the kept checkpoint vouches for event {}", kept.sequence), kept.sequence);
        }
        if kept.stored_event_hash != Some(kept.hash) {
            return Some((
                kept.sequence,
                Break::CheckpointHashMismatch,
                format!("event {} is not the one the kept checkpoint signed", kept.sequence),
            ));
        }
        if !kept.stored {
            return Some((
                kept.sequence,
                Break::CheckpointMissing,
                format!("the checkpoint at {} was removed from the stored checkpoints", kept.sequence),
            ));
        }
    }
    if let Some(checkpoint) = tail.latest_checkpoint.filter(|c| *c > tail.last_event) {
        return gone(format!("a stored checkpoint vouches for event {checkpoint}"), checkpoint);
    }
    if tail.head > tail.last_event {
        return gone(format!("the chain head is at {}", tail.head), tail.head);
    }
    None
}

/// Checks one event against the running state; returns the break, if any.
pub fn check_event(expected_sequence: i64, running_hash: &[u8; 32], event: &ChainedEvent) -> Option<Break> {
    if event.sequence != expected_sequence {
        return Some(Break::SequenceGap);
    }
    if &event.previous_hash != running_hash {
        return Some(Break::ChainMismatch);
    }
    if link(&event.previous_hash, event) != event.hash {
        return Some(Break::HashMismatch);
    }
    None
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    pub(crate) fn sample(sequence: i64, previous: [u8; 32]) -> ChainedEvent {
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).single().expect("time");
        let mut e = ChainedEvent {
            sequence,
            id: format!("0193a0c0-0000-7000-8000-00000000000{sequence}"),
            occur_time: t,
            record_time: t,
            action: "draft.approved".into(),
            actor_kind: "user".into(),
            actor_id: "u1".into(),
            actor_name: "李伟".into(),
            client_address: "10.0.0.8".into(),
            producer: "content".into(),
            resource_type: "draft".into(),
            resource_id: "d1".into(),
            department_id: String::new(),
            platform_account_id: String::new(),
            outcome: "success".into(),
            rule_id: "R3.2.2".into(),
            reason: String::new(),
            attributes: BTreeMap::from([("stage".to_owned(), "department".to_owned())]),
            trace_id: String::new(),
            request_id: String::new(),
            appended_by: String::new(),
            previous_hash: previous,
            hash: [0; 32],
        };
        e.hash = link(&previous, &e);
        e
    }

    /// A fixed vector for docs/audit-log.md: an outside implementation must produce it.
    #[test]
    fn the_documented_test_vector_holds() {
        let e = sample(1, GENESIS);
        assert_eq!(hex::encode(e.hash), "9b0ef48b17215eeb27aba008a4528660dd6f71adc3e07d18bef5155060ccf9e1");
        let mut appended = sample(1, GENESIS);
        appended.appended_by = "govmedia-content".into();
        assert_eq!(
            hex::encode(link(&GENESIS, &appended)),
            "746823d0bdc40017d911ec75d8f6aec7f96d77465c6ec4cb5a5811095cf924f9"
        );
    }

    /// Who appended an event is hashed with it: naming another appender, or none (to
    /// pass it off as an event from before the field), breaks the chain there.
    #[test]
    fn who_appended_an_event_is_part_of_its_hash() {
        let mut e = sample(1, GENESIS);
        e.appended_by = "govmedia-content".into();
        e.hash = link(&GENESIS, &e);
        for forged in ["govmedia-identity", ""] {
            let mut altered = e.clone();
            altered.appended_by = forged.into();
            assert_eq!(check_event(1, &GENESIS, &altered), Some(Break::HashMismatch), "{forged:?}");
        }
    }

    #[test]
    fn any_change_changes_the_hash_r1_3_5() {
        let e = sample(1, GENESIS);
        let mut altered = e.clone();
        altered.reason = "x".into();
        assert_ne!(link(&GENESIS, &altered), e.hash);
        assert_eq!(check_event(1, &GENESIS, &altered), Some(Break::HashMismatch));
        assert_eq!(check_event(1, &GENESIS, &e), None);
        assert_eq!(check_event(2, &GENESIS, &e), Some(Break::SequenceGap));
        assert_eq!(check_event(1, &[1; 32], &e), Some(Break::ChainMismatch));
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        let mut a = sample(1, GENESIS);
        let mut b = sample(1, GENESIS);
        a.actor_id = "ab".into();
        a.actor_name = "c".into();
        b.actor_id = "a".into();
        b.actor_name = "bc".into();
        assert_ne!(canonical(&a), canonical(&b));
    }

    #[test]
    fn checkpoints_verify_only_with_their_key_and_content() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 2, 0, 0).single().expect("time");
        let sig = sign_checkpoint(&key, 10, &[9; 32], t);
        let public = key.verifying_key().to_bytes();
        assert!(checkpoint_signature_valid(&public, &sig, 10, &[9; 32], t));
        assert!(!checkpoint_signature_valid(&public, &sig, 11, &[9; 32], t));
        assert!(!checkpoint_signature_valid(&public, &sig, 10, &[8; 32], t));
        assert!(!checkpoint_signature_valid(
            &SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes(),
            &sig,
            10,
            &[9; 32],
            t
        ));
    }
}
