//! Properties of the hash chain (R1.3.5), over generated events rather than examples:
//! a chain made by `link` always verifies; changing any one field of any event breaks
//! the chain exactly there; the canonical encoding tells apart events whose fields only
//! differ in where one ends and the next begins; a checkpoint signature holds for what
//! was signed and for nothing else.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use govmedia_audit::domain::chain::{
    Break, ChainedEvent, GENESIS, canonical, check_event, checkpoint_signature_valid, link, sign_checkpoint,
};
use proptest::prelude::*;

/// Text as services write it: ASCII, Chinese, empty, separators.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-z0-9._:-]{1,12}", "[\\u{4e00}-\\u{9fa5}，。：]{1,8}", any::<String>()]
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (1_600_000_000_000_000_i64..1_900_000_000_000_000)
        .prop_map(|micros| Utc.timestamp_micros(micros).single().unwrap_or(DateTime::<Utc>::UNIX_EPOCH))
}

prop_compose! {
    fn event()(
        fields in proptest::collection::vec(text(), 17),
        attributes in proptest::collection::btree_map("[a-z_]{1,8}", text(), 0..4),
        occur in time(),
        record in time(),
    ) -> ChainedEvent {
        let f = |i: usize| fields[i].clone();
        ChainedEvent {
            sequence: 0,
            id: f(0),
            occur_time: occur,
            record_time: record,
            action: f(1),
            actor_kind: f(2),
            actor_id: f(3),
            actor_name: f(4),
            client_address: f(5),
            producer: f(6),
            resource_type: f(7),
            resource_id: f(8),
            department_id: f(9),
            platform_account_id: f(10),
            outcome: f(11),
            rule_id: f(12),
            reason: f(13),
            trace_id: f(14),
            request_id: f(15),
            attributes,
            appended_by: f(16),
            previous_hash: GENESIS,
            hash: GENESIS,
        }
    }
}

/// Chains `events` as the writer does: sequence from 1, each linked to the one before.
fn chained(mut events: Vec<ChainedEvent>) -> Vec<ChainedEvent> {
    let mut previous = GENESIS;
    for (i, e) in events.iter_mut().enumerate() {
        e.sequence = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        e.previous_hash = previous;
        e.hash = link(&previous, e);
        previous = e.hash;
    }
    events
}

/// The first break walking the chain, as the verification walks it.
fn first_break(events: &[ChainedEvent]) -> Option<(i64, Break)> {
    let mut running = GENESIS;
    for (i, e) in events.iter().enumerate() {
        let expected = i64::try_from(i).unwrap_or(i64::MAX) + 1;
        if let Some(b) = check_event(expected, &running, e) {
            return Some((expected, b));
        }
        running = e.hash;
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn a_chain_made_by_link_verifies_whole_r1_3_5(events in proptest::collection::vec(event(), 1..12)) {
        prop_assert_eq!(first_break(&chained(events)), None);
    }

    #[test]
    fn changing_any_text_field_of_any_event_breaks_the_chain_there_r1_3_5(
        events in proptest::collection::vec(event(), 1..10),
        which in any::<prop::sample::Index>(),
        field in 0_usize..17,
        suffix in "[a-z\\u{4e00}-\\u{9fa5}]{1,3}",
    ) {
        let mut events = chained(events);
        let at = which.index(events.len());
        events[at].text_field_mut(field).push_str(&suffix);
        prop_assert_eq!(first_break(&events), Some((i64::try_from(at).unwrap_or(0) + 1, Break::HashMismatch)));
    }

    #[test]
    fn changing_a_time_or_an_attribute_breaks_the_chain_there_r1_3_5(
        events in proptest::collection::vec(event(), 1..10),
        which in any::<prop::sample::Index>(),
        shift_micros in 1_i64..86_400_000_000,
        kind in 0_u8..4,
    ) {
        let mut events = chained(events);
        let at = which.index(events.len());
        let e = &mut events[at];
        match kind {
            0 => e.occur_time += chrono::Duration::microseconds(shift_micros),
            1 => e.record_time -= chrono::Duration::microseconds(shift_micros),
            2 => { e.attributes.insert("added".into(), "x".into()); }
            _ => {
                // An attribute removed, or (none to remove) one added.
                if let Some(key) = e.attributes.keys().next().cloned() {
                    e.attributes.remove(&key);
                } else {
                    e.attributes.insert("k".into(), String::new());
                }
            }
        }
        prop_assert_eq!(first_break(&events), Some((i64::try_from(at).unwrap_or(0) + 1, Break::HashMismatch)));
    }

    #[test]
    fn removing_or_swapping_events_is_found_at_the_first_moved_place_r1_3_5(
        events in proptest::collection::vec(event(), 2..10),
        a in any::<prop::sample::Index>(),
        b in any::<prop::sample::Index>(),
        remove in any::<bool>(),
    ) {
        let mut events = chained(events);
        let (i, j) = (a.index(events.len()), b.index(events.len()));
        let first = i.min(j);
        if remove {
            if first + 1 == events.len() {
                // The last event removed leaves a whole chain: the tail check's business.
                return Ok(());
            }
            events.remove(first);
            prop_assert_eq!(first_break(&events), Some((i64::try_from(first).unwrap_or(0) + 1, Break::SequenceGap)));
        } else if i != j {
            events.swap(i, j);
            prop_assert!(first_break(&events).is_some_and(|(at, _)| at == i64::try_from(first).unwrap_or(0) + 1));
        }
    }

    #[test]
    fn the_encoding_tells_apart_a_boundary_moved_between_fields(
        e in event(),
        field in 0_usize..16,
        moved in "[a-z\\u{4e00}-\\u{9fa5}]{1,3}",
    ) {
        // Text moved from the end of one field to the start of the next.
        let mut original = e.clone();
        original.text_field_mut(field).push_str(&moved);
        let mut shifted = e;
        let next = shifted.text_field_mut(field + 1);
        *next = format!("{moved}{next}");
        prop_assert_ne!(canonical(&original), canonical(&shifted));
    }

    #[test]
    fn the_encoding_tells_apart_an_attribute_key_from_its_value(
        key in "[a-z]{1,6}",
        value in "[a-z]{1,6}",
        e in event(),
    ) {
        let mut one = e.clone();
        one.attributes = BTreeMap::from([(format!("{key}{value}"), String::new())]);
        let mut other = e;
        other.attributes = BTreeMap::from([(key, value)]);
        prop_assert_ne!(canonical(&one), canonical(&other));
    }

    #[test]
    fn a_checkpoint_signature_holds_only_for_what_was_signed_r1_3_5(
        seed in any::<[u8; 32]>(),
        sequence in 1_i64..1_000_000_000,
        hash in any::<[u8; 32]>(),
        created in time(),
        flip in 0_usize..4,
        bit in 0_u8..8,
    ) {
        let key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes();
        let mut signature = sign_checkpoint(&key, sequence, &hash, created);
        prop_assert!(checkpoint_signature_valid(&public, &signature, sequence, &hash, created));
        let mut hash = hash;
        let (mut sequence, mut created) = (sequence, created);
        match flip {
            0 => signature[usize::from(bit) * 7 % 64] ^= 1 << bit,
            1 => hash[usize::from(bit) * 3 % 32] ^= 1 << bit,
            2 => sequence += 1,
            _ => created += chrono::Duration::microseconds(1),
        }
        prop_assert!(!checkpoint_signature_valid(&public, &signature, sequence, &hash, created));
    }
}
