//! The department head's queue of missed reply deadlines (R4.1.1, R4.2.1, R4.2.2):
//! comments, private messages and referrals escalated by the deadline watch.

use clap::{Subcommand, ValueEnum};
use govmedia_proto::interaction::v1 as xpb;
use govmedia_proto::interaction::v1::escalation_service_client::EscalationServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Escalations.
#[derive(Debug, Subcommand)]
pub enum Escalations {
    /// Missed deadlines, the oldest first. Without --department: the whole bureau's,
    /// which needs `escalation.read` over the bureau.
    Queue {
        /// Only this department's queue.
        #[arg(long)]
        department: Option<String>,
        /// Only in this state.
        #[arg(long, value_enum)]
        state: Option<State>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Take an escalation in hand, as the head of its department.
    Acknowledge {
        /// The escalation's id.
        escalation_id: String,
        /// What is being done about it.
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// Where an escalation is.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum State {
    /// Nobody has taken it in hand.
    Open,
    /// The department head has seen it.
    Acknowledged,
    /// The item was answered.
    Resolved,
}

impl From<State> for xpb::EscalationState {
    fn from(s: State) -> Self {
        match s {
            State::Open => Self::Open,
            State::Acknowledged => Self::Acknowledged,
            State::Resolved => Self::Resolved,
        }
    }
}

fn print_escalation(e: &xpb::Escalation, json: bool) -> Result<(), BoxError> {
    print_record(
        &[
            ("id", e.id.clone()),
            ("item", format!("{} {}", label(Some(e.item_type().as_str_name()), "ESCALATED_ITEM_TYPE_"), e.item_id)),
            ("platform_account_id", e.platform_account_id.clone()),
            ("department_id", e.department_id.clone()),
            ("rule", e.rule_id.clone()),
            ("due", time(e.due_time.as_ref())),
            ("escalated", time(e.escalate_time.as_ref())),
            ("state", label(Some(e.state().as_str_name()), "ESCALATION_STATE_")),
            ("acknowledged_by", e.acknowledged_by.clone()),
            ("note", e.note.clone()),
        ],
        json,
    )
}

impl Escalations {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Escalations::Queue { department, state, limit } => {
                let department = department.unwrap_or_default();
                let state = state.map(|s| xpb::EscalationState::from(s) as i32).unwrap_or_default();
                let escalations = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = xpb::ListEscalationsRequest {
                                page_size,
                                page_token,
                                department_id: department.clone(),
                                state,
                                ..Default::default()
                            };
                            async move {
                                EscalationServiceClient::new(channel)
                                    .list_escalations(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: xpb::ListEscalationsResponse| (r.escalations, r.next_page_token),
                    )
                    .await?;
                let mut table = Table::new(&["id", "item", "item_id", "rule", "due", "state", "department_id"]);
                for e in escalations {
                    table.row(vec![
                        e.id.clone(),
                        label(Some(e.item_type().as_str_name()), "ESCALATED_ITEM_TYPE_"),
                        e.item_id.clone(),
                        e.rule_id.clone(),
                        time(e.due_time.as_ref()),
                        label(Some(e.state().as_str_name()), "ESCALATION_STATE_"),
                        e.department_id.clone(),
                    ]);
                }
                table.print(json)
            }
            Escalations::Acknowledge { escalation_id, note } => {
                let request = xpb::AcknowledgeEscalationRequest {
                    request_id: request_id(),
                    escalation_id,
                    note,
                    ..Default::default()
                };
                let escalation = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            EscalationServiceClient::new(channel)
                                .acknowledge_escalation(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .escalation
                    .unwrap_or_default();
                print_escalation(&escalation, json)
            }
        }
    }
}
