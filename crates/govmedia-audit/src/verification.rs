//! Verifying the audit log's chain over its database (R1.3.5): every event's hash, every
//! link to the event before, every signed checkpoint, and — when the range reaches the
//! newest event — that nothing was cut off the end. Used by `VerifyLog` and by
//! `govmedia restore`, which verifies a restored copy before it reports success.

use govmedia_domain::Error;
use govmedia_kit::db::Database;

use crate::domain::chain::{self, Break, GENESIS};
use crate::store;

/// Events read per page while walking the chain.
const VERIFY_PAGE: u32 = 1000;

/// What a verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// The first sequence verified.
    pub start: i64,
    /// The last sequence verified.
    pub end: i64,
    /// The newest event's sequence.
    pub last: i64,
    /// The newest stored checkpoint's sequence.
    pub latest_checkpoint: Option<i64>,
    /// Events whose hash and link held.
    pub verified_events: u64,
    /// Checkpoints whose signature and hash held.
    pub verified_checkpoints: u64,
    /// The first break: its sequence, kind and a sentence for people.
    pub broken: Option<(i64, Break, String)>,
}

impl Verification {
    /// Whether the range verified whole.
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// Verifies events `start..=end` of the log in `db` (`end` 0: to the newest), against
/// checkpoints signed by `audit_key`, and, when given, a checkpoint kept outside the
/// database (its sequence and hash, signature already checked).
pub async fn verify(
    db: &Database,
    start: i64,
    end: i64,
    audit_key: &[u8; 32],
    kept: Option<(i64, [u8; 32])>,
) -> Result<Verification, Error> {
    // Head and checkpoints before the last sequence: see chain::Tail.
    let head = store::head_sequence(db).await?;
    let latest_checkpoint = store::latest_checkpoint(db).await?.map(|c| c.sequence);
    let last = store::last_sequence(db).await?;
    let start = start.max(1);
    let end = if end == 0 { last } else { end.min(last) };
    if start > end.max(1) && last > 0 {
        return Err(Error::invalid("start_sequence", format!("must not be after the end of the range ({end})")));
    }
    let mut running = if start == 1 {
        GENESIS
    } else {
        // Start from the stored hash of the event before; a break before the range
        // is the business of a verification that covers it.
        store::hash_at(db, start - 1)
            .await?
            .ok_or_else(|| Error::invalid("start_sequence", "the event before it is missing"))?
    };
    let checkpoints = store::checkpoints_between(db, start, end).await?;
    let mut checkpoint_iter = checkpoints.iter().peekable();
    let mut expected = start;
    let mut verified_events = 0_u64;
    let mut verified_checkpoints = 0_u64;
    let mut broken: Option<(i64, Break, String)> = None;
    let mut after = start - 1;
    'pages: while after < end {
        let events = store::events_after(db, after, end, VERIFY_PAGE).await?;
        if events.is_empty() {
            broken = Some((expected, Break::SequenceGap, format!("events {expected} to {end} are missing")));
            break;
        }
        for stored in &events {
            let event = match stored {
                store::StoredEvent::Event(event) => event,
                store::StoredEvent::Unreadable { sequence, why } => {
                    broken = Some(if *sequence == expected {
                        (
                            expected,
                            Break::HashMismatch,
                            format!("event {expected} was altered: its stored row is no longer an event ({why})"),
                        )
                    } else {
                        (
                            expected,
                            Break::SequenceGap,
                            format!("event {expected} is missing (next stored is {sequence})"),
                        )
                    });
                    break 'pages;
                }
            };
            if let Some(kind) = chain::check_event(expected, &running, event) {
                let at = if kind == Break::SequenceGap { expected } else { event.sequence };
                let detail = match kind {
                    Break::SequenceGap => {
                        format!("event {expected} is missing (next stored is {})", event.sequence)
                    }
                    Break::ChainMismatch => {
                        format!("event {} does not follow the event before it: removed or reordered", event.sequence)
                    }
                    Break::HashMismatch => {
                        format!("event {} was altered: its content no longer matches its hash", event.sequence)
                    }
                    Break::CheckpointSignatureInvalid
                    | Break::CheckpointHashMismatch
                    | Break::TailMissing
                    | Break::CheckpointMissing => String::new(),
                };
                broken = Some((at, kind, detail));
                break 'pages;
            }
            while let Some(cp) = checkpoint_iter.peek() {
                if cp.sequence > event.sequence {
                    break;
                }
                let cp = checkpoint_iter.next().ok_or_else(|| Error::internal("peeked checkpoint vanished"))?;
                if cp.sequence == event.sequence {
                    let hash: [u8; 32] = cp.hash.as_slice().try_into().unwrap_or([0; 32]);
                    if !chain::checkpoint_signature_valid(
                        &cp.public_key,
                        &cp.signature,
                        cp.sequence,
                        &hash,
                        cp.created_at,
                    ) || cp.public_key != audit_key
                    {
                        broken = Some((
                            cp.sequence,
                            Break::CheckpointSignatureInvalid,
                            format!("the checkpoint at {} is not signed by the audit key", cp.sequence),
                        ));
                        break 'pages;
                    }
                    if hash != event.hash {
                        broken = Some((
                            cp.sequence,
                            Break::CheckpointHashMismatch,
                            format!("the checkpoint at {} does not match the event's hash", cp.sequence),
                        ));
                        break 'pages;
                    }
                    verified_checkpoints += 1;
                }
            }
            running = event.hash;
            expected += 1;
            verified_events += 1;
        }
        after = match events.last() {
            Some(store::StoredEvent::Event(e)) => e.sequence,
            _ => end,
        };
    }
    // Only a range reaching the newest event can say whether the end is missing.
    if broken.is_none() && end == last {
        let kept = match kept {
            Some((sequence, hash)) => Some(chain::KeptCheckpoint {
                sequence,
                hash,
                stored_event_hash: store::hash_at(db, sequence).await?,
                stored: store::checkpoint_at(db, sequence).await?.is_some_and(|c| c.hash == hash),
            }),
            None => None,
        };
        broken = chain::check_tail(&chain::Tail { last_event: last, head, latest_checkpoint, kept });
    }
    Ok(Verification { start, end, last, latest_checkpoint, verified_events, verified_checkpoints, broken })
}
