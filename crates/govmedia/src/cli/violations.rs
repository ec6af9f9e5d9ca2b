//! Violations (R9.1, R9.2): the catalogue, the detectors' proposals and the office's
//! decisions.

use clap::{Subcommand, ValueEnum};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::violation_service_client::ViolationServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Violations.
#[derive(Debug, Subcommand)]
pub enum Violations {
    /// The catalogue of violation types.
    Types,
    /// Violations, the newest first. Without --department: the whole bureau's.
    List {
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// Only in this state.
        #[arg(long, value_enum)]
        state: Option<State>,
        /// Only naming this person.
        #[arg(long)]
        responsible: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One violation with its evidence.
    Show {
        /// The violation's id.
        violation_id: String,
    },
    /// Record a violation found by a person, decided at once.
    Record {
        /// The catalogue code (see `violations types`).
        #[arg(long = "type")]
        violation_type: String,
        /// The person responsible.
        #[arg(long)]
        responsible: String,
        /// Their department.
        #[arg(long)]
        department: String,
        /// The account concerned.
        #[arg(long)]
        account: Option<String>,
        /// What happened.
        #[arg(long)]
        description: String,
        /// An audit event id that shows it (repeat for more).
        #[arg(long = "evidence", required = true)]
        evidence: Vec<String>,
        /// The handling decided.
        #[arg(long)]
        handling: String,
        /// The severity, when not the type's default.
        #[arg(long, value_enum)]
        severity: Option<Severity>,
        /// The rectification order it triggered.
        #[arg(long)]
        rectification: Option<String>,
    },
    /// Confirm a proposed violation with the handling decided.
    Confirm {
        /// The violation's id.
        violation_id: String,
        /// The handling decided.
        #[arg(long)]
        handling: String,
        /// Another severity than proposed.
        #[arg(long, value_enum)]
        severity: Option<Severity>,
        /// The rectification order it triggered.
        #[arg(long)]
        rectification: Option<String>,
    },
    /// Dismiss a proposed violation with the reason.
    Dismiss {
        /// The violation's id.
        violation_id: String,
        /// Why it is not a violation.
        #[arg(long)]
        reason: String,
    },
    /// Run the detectors now.
    Detect,
}

/// Where a record stands.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum State {
    /// Waits for a person.
    Proposed,
    /// Confirmed.
    Confirmed,
    /// Dismissed.
    Dismissed,
}

impl From<State> for apb::ViolationState {
    fn from(s: State) -> Self {
        match s {
            State::Proposed => Self::Proposed,
            State::Confirmed => Self::Confirmed,
            State::Dismissed => Self::Dismissed,
        }
    }
}

/// How serious.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Severity {
    /// 一般.
    Minor,
    /// 较重.
    Serious,
    /// 严重.
    Grave,
}

impl From<Severity> for apb::ViolationSeverity {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Minor => Self::Minor,
            Severity::Serious => Self::Serious,
            Severity::Grave => Self::Grave,
        }
    }
}

fn print_violation(v: &apb::Violation, json: bool) -> Result<(), BoxError> {
    print_record(
        &[
            ("id", v.id.clone()),
            ("type", v.violation_type.clone()),
            ("rule", v.rule_id.clone()),
            ("state", label(Some(v.state().as_str_name()), "VIOLATION_STATE_")),
            ("severity", label(Some(v.severity().as_str_name()), "VIOLATION_SEVERITY_")),
            ("responsible_user_id", v.responsible_user_id.clone()),
            ("department_id", v.department_id.clone()),
            ("platform_account_id", v.platform_account_id.clone()),
            ("description", v.description.clone()),
            ("evidence", v.evidence_event_ids.join(",")),
            ("detector", v.detector.clone()),
            ("created", time(v.create_time.as_ref())),
            ("handling", v.handling.clone()),
            ("decided", format!("{} {}", time(v.decide_time.as_ref()), v.decided_by)),
            ("rectification_id", v.rectification_id.clone()),
        ],
        json,
    )
}

impl Violations {
    async fn get(client: &mut Client, id: &str) -> Result<apb::Violation, BoxError> {
        let request = apb::GetViolationRequest { violation_id: id.to_owned() };
        Ok(client
            .call(|channel, token| {
                let request = request.clone();
                async move { ViolationServiceClient::new(channel).get_violation(authorized(request, &token)).await }
            })
            .await?
            .violation
            .unwrap_or_default())
    }

    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Violations::Types => {
                let types = client
                    .list(
                        500,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListViolationTypesRequest { page_size, page_token };
                            async move {
                                ViolationServiceClient::new(channel)
                                    .list_violation_types(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: apb::ListViolationTypesResponse| (r.violation_types, r.next_page_token),
                    )
                    .await?;
                let mut table = Table::new(&["code", "rule", "default_severity", "title"]);
                for t in &types {
                    table.row(vec![
                        t.code.clone(),
                        t.rule_id.clone(),
                        label(Some(t.default_severity().as_str_name()), "VIOLATION_SEVERITY_"),
                        t.title.clone(),
                    ]);
                }
                table.print(json)
            }
            Violations::List { department, state, responsible, limit } => {
                let state = state.map(|s| apb::ViolationState::from(s) as i32).unwrap_or_default();
                let (department, responsible) = (department.unwrap_or_default(), responsible.unwrap_or_default());
                let list = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListViolationsRequest {
                                page_size,
                                page_token,
                                department_id: department.clone(),
                                state,
                                responsible_user_id: responsible.clone(),
                            };
                            async move {
                                ViolationServiceClient::new(channel).list_violations(authorized(request, &token)).await
                            }
                        },
                        |r: apb::ListViolationsResponse| (r.violations, r.next_page_token),
                    )
                    .await?;
                let mut table =
                    Table::new(&["id", "type", "state", "severity", "responsible_user_id", "detector", "created"]);
                for v in &list {
                    table.row(vec![
                        v.id.clone(),
                        v.violation_type.clone(),
                        label(Some(v.state().as_str_name()), "VIOLATION_STATE_"),
                        label(Some(v.severity().as_str_name()), "VIOLATION_SEVERITY_"),
                        v.responsible_user_id.clone(),
                        v.detector.clone(),
                        time(v.create_time.as_ref()),
                    ]);
                }
                table.print(json)
            }
            Violations::Show { violation_id } => print_violation(&Self::get(client, &violation_id).await?, json),
            Violations::Record {
                violation_type,
                responsible,
                department,
                account,
                description,
                evidence,
                handling,
                severity,
                rectification,
            } => {
                let request = apb::RecordViolationRequest {
                    request_id: request_id(),
                    violation: Some(apb::Violation {
                        violation_type,
                        responsible_user_id: responsible,
                        department_id: department,
                        platform_account_id: account.unwrap_or_default(),
                        description,
                        evidence_event_ids: evidence,
                        severity: severity.map(|s| apb::ViolationSeverity::from(s) as i32).unwrap_or_default(),
                        rectification_id: rectification.unwrap_or_default(),
                        ..Default::default()
                    }),
                    handling,
                };
                let v = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            ViolationServiceClient::new(channel).record_violation(authorized(request, &token)).await
                        }
                    })
                    .await?
                    .violation
                    .unwrap_or_default();
                print_violation(&v, json)
            }
            Violations::Confirm { violation_id, handling, severity, rectification } => {
                let etag = Self::get(client, &violation_id).await?.etag;
                let request = apb::ConfirmViolationRequest {
                    request_id: request_id(),
                    violation_id,
                    handling,
                    severity: severity.map(|s| apb::ViolationSeverity::from(s) as i32).unwrap_or_default(),
                    rectification_id: rectification.unwrap_or_default(),
                    etag,
                };
                let v = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            ViolationServiceClient::new(channel).confirm_violation(authorized(request, &token)).await
                        }
                    })
                    .await?
                    .violation
                    .unwrap_or_default();
                print_violation(&v, json)
            }
            Violations::Dismiss { violation_id, reason } => {
                let etag = Self::get(client, &violation_id).await?.etag;
                let request = apb::DismissViolationRequest { request_id: request_id(), violation_id, reason, etag };
                let v = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            ViolationServiceClient::new(channel).dismiss_violation(authorized(request, &token)).await
                        }
                    })
                    .await?
                    .violation
                    .unwrap_or_default();
                print_violation(&v, json)
            }
            Violations::Detect => {
                let request = apb::RunViolationDetectorsRequest { request_id: request_id() };
                let r = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            ViolationServiceClient::new(channel)
                                .run_violation_detectors(authorized(request, &token))
                                .await
                        }
                    })
                    .await?;
                print_record(&[("proposed", r.proposed.to_string())], json)
            }
        }
    }
}
