//! Inspections and random spot checks by the bureau office (R8.1.1): a reproducible
//! sample drawn from the audit log, a verdict on every item.

use clap::{Subcommand, ValueEnum};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::inspection_service_client::InspectionServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Inspections.
#[derive(Debug, Subcommand)]
pub enum Inspections {
    /// Open an inspection and draw its sample.
    Create {
        /// Periodic or a random spot check.
        #[arg(long, value_enum, default_value = "spot-check")]
        kind: Kind,
        /// A title.
        #[arg(long)]
        title: String,
        /// Only this department's accounts (default: the whole bureau).
        #[arg(long)]
        department: Option<String>,
        /// The first Beijing date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// The last Beijing date, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// The seed of the draw (default: chosen at random, and recorded).
        #[arg(long)]
        seed: Option<u64>,
        /// Items per item type.
        #[arg(long, default_value_t = 10)]
        sample_size: u32,
    },
    /// Inspections, the newest first.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// One inspection and its sample.
    Show {
        /// The inspection's id.
        inspection_id: String,
    },
    /// Record the verdict on a sampled item.
    Verdict {
        /// The inspection's id.
        inspection_id: String,
        /// The item's type.
        #[arg(long = "type", value_enum)]
        item_type: ItemType,
        /// The item's id.
        #[arg(long)]
        item: String,
        /// A problem, failing this criterion (R3.2.3, R4.1.1, R4.1.2); pass without it.
        #[arg(long)]
        problem: Option<String>,
        /// The note (required for a problem).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Complete an inspection whose every item has a verdict.
    Complete {
        /// The inspection's id.
        inspection_id: String,
    },
}

/// The kind of inspection.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Periodic.
    Periodic,
    /// A random spot check.
    SpotCheck,
}

/// A sampled item's type.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ItemType {
    /// A publication.
    Publication,
    /// A reply to a comment.
    Reply,
    /// A conversation.
    Conversation,
}

fn print_inspection(i: &apb::Inspection, json: bool) -> Result<(), BoxError> {
    if json {
        let items: Vec<serde_json::Value> = i
            .items
            .iter()
            .map(|x| {
                serde_json::json!({
                    "type": label(Some(x.item_type().as_str_name()), "SAMPLED_ITEM_TYPE_"),
                    "id": x.item_id,
                    "platform_account_id": x.platform_account_id,
                    "criteria": x.criteria,
                    "verdict": label(Some(x.verdict().as_str_name()), "VERDICT_"),
                    "failed_rule_id": x.failed_rule_id,
                    "note": x.note,
                })
            })
            .collect();
        let value = serde_json::json!({
            "id": i.id, "title": i.title, "seed": i.seed, "state": label(Some(i.state().as_str_name()), "INSPECTION_STATE_"),
            "period": format!("{}..{}", i.start_date, i.end_date), "department_id": i.department_id,
            "problems": i.problems, "items": items,
        });
        use std::io::Write;
        writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&value)?)?;
        return Ok(());
    }
    print_record(
        &[
            ("id", i.id.clone()),
            ("title", i.title.clone()),
            ("kind", label(Some(i.kind().as_str_name()), "INSPECTION_KIND_")),
            ("state", label(Some(i.state().as_str_name()), "INSPECTION_STATE_")),
            ("period", format!("{} to {}", i.start_date, i.end_date)),
            ("department_id", i.department_id.clone()),
            ("seed", i.seed.clone()),
            ("problems", i.problems.to_string()),
            ("created", time(i.create_time.as_ref())),
        ],
        false,
    )?;
    let mut table = Table::new(&["type", "id", "platform_account_id", "criteria", "verdict", "note"]);
    for x in &i.items {
        table.row(vec![
            label(Some(x.item_type().as_str_name()), "SAMPLED_ITEM_TYPE_"),
            x.item_id.clone(),
            x.platform_account_id.clone(),
            x.criteria.clone(),
            label(Some(x.verdict().as_str_name()), "VERDICT_"),
            x.note.clone(),
        ]);
    }
    table.print(false)
}

impl Inspections {
    async fn get(client: &mut Client, id: &str) -> Result<apb::Inspection, BoxError> {
        let request = apb::GetInspectionRequest { inspection_id: id.to_owned() };
        Ok(client
            .call(|channel, token| {
                let request = request.clone();
                async move { InspectionServiceClient::new(channel).get_inspection(authorized(request, &token)).await }
            })
            .await?
            .inspection
            .unwrap_or_default())
    }

    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let shown = match self {
            Inspections::Create { kind, title, department, from, to, seed, sample_size } => {
                let request = apb::CreateInspectionRequest {
                    request_id: request_id(),
                    inspection: Some(apb::Inspection {
                        kind: match kind {
                            Kind::Periodic => apb::InspectionKind::Periodic,
                            Kind::SpotCheck => apb::InspectionKind::SpotCheck,
                        } as i32,
                        title,
                        department_id: department.unwrap_or_default(),
                        start_date: from,
                        end_date: to,
                        seed: seed.map(|s| s.to_string()).unwrap_or_default(),
                        sample_size,
                        ..Default::default()
                    }),
                };
                client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            InspectionServiceClient::new(channel).create_inspection(authorized(request, &token)).await
                        }
                    })
                    .await?
                    .inspection
            }
            Inspections::List { limit } => {
                let list = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListInspectionsRequest { page_size, page_token };
                            async move {
                                InspectionServiceClient::new(channel)
                                    .list_inspections(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: apb::ListInspectionsResponse| (r.inspections, r.next_page_token),
                    )
                    .await?;
                let mut table = Table::new(&["id", "title", "state", "period", "seed", "problems"]);
                for i in &list {
                    table.row(vec![
                        i.id.clone(),
                        i.title.clone(),
                        label(Some(i.state().as_str_name()), "INSPECTION_STATE_"),
                        format!("{}..{}", i.start_date, i.end_date),
                        i.seed.clone(),
                        i.problems.to_string(),
                    ]);
                }
                return table.print(json);
            }
            Inspections::Show { inspection_id } => Some(Self::get(client, &inspection_id).await?),
            Inspections::Verdict { inspection_id, item_type, item, problem, note } => {
                let etag = Self::get(client, &inspection_id).await?.etag;
                let request = apb::RecordInspectionVerdictRequest {
                    request_id: request_id(),
                    inspection_id,
                    item_type: match item_type {
                        ItemType::Publication => apb::SampledItemType::Publication,
                        ItemType::Reply => apb::SampledItemType::Reply,
                        ItemType::Conversation => apb::SampledItemType::Conversation,
                    } as i32,
                    item_id: item,
                    verdict: if problem.is_some() { apb::Verdict::Problem } else { apb::Verdict::Pass } as i32,
                    failed_rule_id: problem.unwrap_or_default(),
                    note,
                    etag,
                };
                client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            InspectionServiceClient::new(channel)
                                .record_inspection_verdict(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .inspection
            }
            Inspections::Complete { inspection_id } => {
                let etag = Self::get(client, &inspection_id).await?.etag;
                let request = apb::CompleteInspectionRequest { request_id: request_id(), inspection_id, etag };
                client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            InspectionServiceClient::new(channel).complete_inspection(authorized(request, &token)).await
                        }
                    })
                    .await?
                    .inspection
            }
        };
        print_inspection(&shown.unwrap_or_default(), json)
    }
}
