//! The audit log for the bureau office and auditors (R1.3, R9.2): query it, verify its
//! hash chain and checkpoint signatures, export it as JSON lines, and keep a copy of the
//! newest signed checkpoint outside the database that verify checks the log against.
//! Verify and export show their progress on a terminal (hidden when the output is not
//! one).

use std::io::Write;

use clap::{Args, Subcommand};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::audit_log_service_client::AuditLogServiceClient;
use govmedia_proto::common::v1 as cpb;

use super::BoxError;
use super::output::{Table, label, parse_time, print_record, time};
use super::session::{Client, authorized};

/// Which events.
#[derive(Debug, Args)]
pub struct Filter {
    /// Only this actor's (a principal id).
    #[arg(long)]
    actor: Option<String>,
    /// Only this action, for example draft.approved (repeat for several).
    #[arg(long = "action")]
    actions: Vec<String>,
    /// Only on this kind of resource, for example draft.
    #[arg(long)]
    resource_type: Option<String>,
    /// Only on this resource.
    #[arg(long)]
    resource_id: Option<String>,
    /// From this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    since: Option<prost_types::Timestamp>,
    /// Until this time (RFC 3339).
    #[arg(long, value_parser = parse_time)]
    until: Option<prost_types::Timestamp>,
}

impl Filter {
    fn to_proto(&self) -> apb::EventFilter {
        apb::EventFilter {
            actor_id: self.actor.clone().unwrap_or_default(),
            actions: self.actions.clone(),
            resource_type: self.resource_type.clone().unwrap_or_default(),
            resource_id: self.resource_id.clone().unwrap_or_default(),
            time_range: (self.since.is_some() || self.until.is_some())
                .then_some(cpb::TimeRange { start_time: self.since, end_time: self.until }),
            ..Default::default()
        }
    }
}

/// The audit log.
#[derive(Debug, Subcommand)]
pub enum Audit {
    /// Events matching a filter, oldest first.
    Query {
        /// Which events.
        #[command(flatten)]
        filter: Filter,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Recompute the hash chain and check the checkpoint signatures; names the first
    /// broken link. Exits non-zero when the log is not intact.
    Verify {
        /// The first sequence number (default 1).
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// The last sequence number (default the newest).
        #[arg(long)]
        to: Option<u64>,
        /// Events verified per call: each call is bounded and the progress moves.
        #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(2..))]
        chunk: u64,
        /// A checkpoint saved earlier with `govmedia audit checkpoint --output`: the log
        /// must still hold the event it signed. This finds a tail removed together with
        /// its stored checkpoints.
        #[arg(long, value_name = "FILE")]
        kept_checkpoint: Option<std::path::PathBuf>,
    },
    /// Save the newest signed checkpoint, to keep outside the database (another system,
    /// removable media in the office safe); `verify --kept-checkpoint` checks against it.
    Checkpoint {
        /// The file to write (standard output if omitted); never overwritten.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// Every matching event as JSON lines, to a file or standard output.
    Export {
        /// Which events.
        #[command(flatten)]
        filter: Filter,
        /// The file to write (standard output if omitted).
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

fn progress(length: Option<u64>, what: &str) -> indicatif::ProgressBar {
    let bar = match length {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let style = indicatif::ProgressStyle::with_template("{msg} {wide_bar} {pos}/{len} events ({eta})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(what.to_owned());
    bar
}

/// One event as a JSON object: the fields of the canonical record, hashes in hex.
fn event_json(e: &apb::AuditEvent) -> serde_json::Value {
    let actor = e.actor.clone().unwrap_or_default();
    let resource = e.resource.clone().unwrap_or_default();
    serde_json::json!({
        "id": e.id,
        "sequence": e.sequence,
        "occur_time": time(e.occur_time.as_ref()),
        "record_time": time(e.record_time.as_ref()),
        "action": e.action,
        "actor": {
            "kind": label(Some(actor.kind().as_str_name()), "PRINCIPAL_KIND_"),
            "id": actor.id,
            "display_name": actor.display_name,
        },
        "client_address": e.client_address,
        "producer": e.producer,
        "resource": {
            "type": resource.r#type,
            "id": resource.id,
            "department_id": resource.department_id,
            "platform_account_id": resource.platform_account_id,
        },
        "outcome": label(Some(e.outcome().as_str_name()), "AUDIT_OUTCOME_"),
        "rule_id": e.rule_id,
        "reason": e.reason,
        "attributes": e.attributes,
        "trace_id": e.trace_id,
        "request_id": e.request_id,
        "previous_hash": hex::encode(&e.previous_hash),
        "hash": hex::encode(&e.hash),
    })
}

impl Audit {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Audit::Query { filter, limit } => {
                let filter = filter.to_proto();
                let events = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request =
                                apb::QueryEventsRequest { filter: Some(filter.clone()), page_size, page_token };
                            async move {
                                AuditLogServiceClient::new(channel).query_events(authorized(request, &token)).await
                            }
                        },
                        |r: apb::QueryEventsResponse| (r.events, r.next_page_token),
                    )
                    .await?;
                if json {
                    let all: Vec<serde_json::Value> = events.iter().map(event_json).collect();
                    writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&all)?)?;
                    return Ok(());
                }
                let mut table =
                    Table::new(&["sequence", "time", "action", "actor", "resource", "outcome", "rule_id", "reason"]);
                for e in events {
                    let actor = e.actor.clone().unwrap_or_default();
                    let resource = e.resource.clone().unwrap_or_default();
                    table.row(vec![
                        e.sequence.to_string(),
                        time(e.occur_time.as_ref()),
                        e.action.clone(),
                        if actor.display_name.is_empty() { actor.id } else { actor.display_name },
                        format!("{} {}", resource.r#type, resource.id),
                        label(Some(e.outcome().as_str_name()), "AUDIT_OUTCOME_"),
                        e.rule_id.clone(),
                        e.reason.clone(),
                    ]);
                }
                table.print(false)
            }
            Audit::Verify { from, to, chunk, kept_checkpoint } => {
                let kept = kept_checkpoint.as_deref().map(read_checkpoint).transpose()?;
                verify(client, from.max(1), to, chunk, kept, json).await
            }
            Audit::Checkpoint { output } => save_checkpoint(client, output, json).await,
            Audit::Export { filter, output } => export(client, filter.to_proto(), output, json).await,
        }
    }
}

/// A checkpoint as kept in a file: every field the signature covers, hex and RFC 3339.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptCheckpoint {
    sequence: u64,
    hash: String,
    create_time: String,
    key_id: String,
    signature: String,
    public_key: String,
}

fn read_checkpoint(path: &std::path::Path) -> Result<apb::Checkpoint, BoxError> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let kept: KeptCheckpoint =
        serde_json::from_str(&text).map_err(|e| format!("{} is not a kept checkpoint: {e}", path.display()))?;
    kept.into_proto().map_err(|e| format!("{}: {e}", path.display()).into())
}

impl KeptCheckpoint {
    fn from_proto(checkpoint: apb::Checkpoint) -> Result<Self, BoxError> {
        let time = checkpoint
            .create_time
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).ok()?))
            .ok_or("the checkpoint has no creation time")?;
        Ok(Self {
            sequence: checkpoint.sequence,
            hash: hex::encode(&checkpoint.hash),
            create_time: time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            key_id: checkpoint.key_id,
            signature: hex::encode(&checkpoint.signature),
            public_key: hex::encode(&checkpoint.public_key),
        })
    }

    fn into_proto(self) -> Result<apb::Checkpoint, String> {
        let kept = self;
        let time = chrono::DateTime::parse_from_rfc3339(&kept.create_time).map_err(|e| format!("create_time: {e}"))?;
        let hex = |field: &str, value: &str| hex::decode(value).map_err(|e| format!("{field}: {e}"));
        Ok(apb::Checkpoint {
            sequence: kept.sequence,
            hash: hex("hash", &kept.hash)?,
            create_time: Some(prost_types::Timestamp {
                seconds: time.timestamp(),
                nanos: i32::try_from(time.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            key_id: kept.key_id,
            signature: hex("signature", &kept.signature)?,
            public_key: hex("public_key", &kept.public_key)?,
        })
    }
}

async fn save_checkpoint(client: &mut Client, output: Option<std::path::PathBuf>, json: bool) -> Result<(), BoxError> {
    let checkpoint = client
        .call(|channel, token| async move {
            AuditLogServiceClient::new(channel)
                .get_latest_checkpoint(authorized(apb::GetLatestCheckpointRequest {}, &token))
                .await
        })
        .await?
        .checkpoint
        .ok_or("no checkpoint has been signed yet")?;
    let kept = KeptCheckpoint::from_proto(checkpoint)?;
    let text = format!("{}\n", serde_json::to_string_pretty(&kept)?);
    match &output {
        Some(path) => {
            govmedia_kit::private_files::create_file(path, text.as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            print_record(
                &[
                    ("sequence", kept.sequence.to_string()),
                    ("hash", kept.hash.clone()),
                    ("file", path.display().to_string()),
                ],
                json,
            )
        }
        None => Ok(std::io::stdout().lock().write_all(text.as_bytes())?),
    }
}

/// Verifies in bounded chunks that overlap by one event, so every link — the one across
/// two chunks too — is checked. The kept checkpoint goes with every chunk; the end of
/// the log is checked by the chunk that reaches it.
async fn verify(
    client: &mut Client,
    from: u64,
    to: Option<u64>,
    chunk: u64,
    kept: Option<apb::Checkpoint>,
    json: bool,
) -> Result<(), BoxError> {
    let newest = client
        .call(|channel, token| async move {
            AuditLogServiceClient::new(channel)
                .get_latest_checkpoint(authorized(apb::GetLatestCheckpointRequest {}, &token))
                .await
        })
        .await?
        .checkpoint
        .map(|c| c.sequence);
    let estimate = to.or(newest).map(|end| end.saturating_sub(from) + 1);
    let bar = progress(estimate, "verifying");
    let (mut start, mut events, mut checkpoints) = (from, 0u64, 0u64);
    let report = loop {
        let end = to.map_or(start + chunk - 1, |to| to.min(start + chunk - 1));
        let report = client
            .call(|channel, token| {
                let request =
                    apb::VerifyLogRequest { start_sequence: start, end_sequence: end, kept_checkpoint: kept.clone() };
                async move { AuditLogServiceClient::new(channel).verify_log(authorized(request, &token)).await }
            })
            .await?;
        // The first event of every chunk after the first was counted in the one before.
        let counted =
            if start == from { report.verified_event_count } else { report.verified_event_count.saturating_sub(1) };
        events += counted;
        checkpoints += report.verified_checkpoint_count;
        bar.set_position(events);
        if estimate.is_some_and(|n| events > n) {
            bar.set_length(events);
        }
        let finished =
            !report.intact || report.verified_event_count < end - start + 1 || to.is_some_and(|to| end >= to);
        if finished {
            break report;
        }
        start = end;
    };
    bar.finish_and_clear();
    print_record(
        &[
            ("intact", report.intact.to_string()),
            ("verified_events", events.to_string()),
            ("verified_checkpoints", checkpoints.to_string()),
            ("from", from.to_string()),
            ("to", (from + events).saturating_sub(1).to_string()),
            (
                "first_broken_sequence",
                if report.intact { String::new() } else { report.first_broken_sequence.to_string() },
            ),
            (
                "break",
                if report.intact {
                    String::new()
                } else {
                    label(Some(report.break_kind().as_str_name()), "BREAK_KIND_")
                },
            ),
            ("detail", report.detail.clone()),
            ("latest_checkpoint", report.latest_checkpoint_sequence.to_string()),
            ("events_after_latest_checkpoint", report.events_after_latest_checkpoint.to_string()),
        ],
        json,
    )?;
    if report.intact {
        Ok(())
    } else {
        Err(format!("the audit log is broken at sequence {}: {}", report.first_broken_sequence, report.detail).into())
    }
}

async fn export(
    client: &mut Client,
    filter: apb::EventFilter,
    output: Option<std::path::PathBuf>,
    json: bool,
) -> Result<(), BoxError> {
    use tokio_stream::StreamExt;
    let mut stream = client
        .call(|channel, token| {
            let request = apb::ExportEventsRequest { filter: Some(filter.clone()) };
            async move { AuditLogServiceClient::new(channel).export_events(authorized(request, &token)).await }
        })
        .await?;
    let mut sink: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| format!("cannot write {}: {e}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let bar = progress(None, "exporting");
    let mut written = 0u64;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|s| super::explain(&s))?;
        if batch.estimated_total > 0 {
            bar.set_length(batch.estimated_total.max(written + batch.events.len() as u64));
        }
        for e in &batch.events {
            writeln!(sink, "{}", serde_json::to_string(&event_json(e))?)?;
            written += 1;
        }
        bar.set_position(written);
    }
    sink.flush()?;
    bar.finish_and_clear();
    if let Some(path) = &output {
        let summary = [("exported_events", written.to_string()), ("file", path.display().to_string())];
        print_record(&summary, json)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_checkpoint_reads_back_exactly_as_signed() {
        let checkpoint = apb::Checkpoint {
            sequence: 4_321,
            hash: vec![7; 32],
            create_time: Some(prost_types::Timestamp { seconds: 1_795_000_000, nanos: 123_456_000 }),
            key_id: "audit-1".into(),
            signature: vec![9; 64],
            public_key: vec![3; 32],
        };
        let kept = KeptCheckpoint::from_proto(checkpoint.clone()).expect("kept");
        let text = serde_json::to_string(&kept).expect("json");
        let back: KeptCheckpoint = serde_json::from_str(&text).expect("parsed");
        assert_eq!(
            back.into_proto().expect("proto"),
            checkpoint,
            "the signature covers every field, to the microsecond"
        );
    }
}
