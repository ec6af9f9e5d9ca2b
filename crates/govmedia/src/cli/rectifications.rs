//! Rectification orders (R8.1.2): issued by the bureau office, fixed and evidenced by the
//! person responsible, verified (or returned) by the office.

use clap::{Subcommand, ValueEnum};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::rectification_service_client::RectificationServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Rectification orders.
#[derive(Debug, Subcommand)]
pub enum Rectifications {
    /// Orders, the earliest deadline first. Without --department: the whole bureau's.
    List {
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// Only in this state.
        #[arg(long, value_enum)]
        state: Option<State>,
        /// Only orders past their deadline and not closed.
        #[arg(long)]
        overdue: bool,
        /// Only this person's.
        #[arg(long)]
        responsible: Option<String>,
        /// Only about this account.
        #[arg(long)]
        account: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One order.
    Show {
        /// The order's id.
        rectification_id: String,
    },
    /// Issue an order to a department's person responsible (bureau office).
    Issue {
        /// What found the problem.
        #[arg(long, value_enum)]
        source: Source,
        /// The finding's id in its register.
        #[arg(long, default_value = "")]
        source_id: String,
        /// The department that must rectify.
        #[arg(long)]
        department: String,
        /// The person responsible (a user id of that department).
        #[arg(long)]
        responsible: String,
        /// The platform account concerned.
        #[arg(long)]
        account: Option<String>,
        /// A short title.
        #[arg(long)]
        title: String,
        /// What must change.
        #[arg(long)]
        requirement: String,
        /// The rule broken (R3.2.3, ...).
        #[arg(long)]
        rule: String,
        /// Working days to rectify, on the business calendar.
        #[arg(long, default_value_t = 10)]
        working_days: u32,
    },
    /// Submit evidence of the fix, as the person responsible.
    Submit {
        /// The order's id.
        rectification_id: String,
        /// What was done.
        #[arg(long)]
        description: String,
        /// Where the evidence is kept.
        #[arg(long, default_value = "")]
        uri: String,
        /// SHA-256 of the evidence file, hex.
        #[arg(long, default_value = "")]
        sha256: String,
    },
    /// Verify submitted evidence and close the order (bureau office).
    Verify {
        /// The order's id.
        rectification_id: String,
        /// The verifier's note.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Return submitted evidence to the person responsible, with the reason.
    Return {
        /// The order's id.
        rectification_id: String,
        /// Why it is not accepted.
        #[arg(long)]
        reason: String,
    },
    /// Cancel an order issued in error, with the reason.
    Cancel {
        /// The order's id.
        rectification_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum State {
    /// Being fixed.
    InProgress,
    /// Evidence submitted.
    Submitted,
    /// Closed.
    Verified,
    /// Cancelled.
    Cancelled,
}

impl From<State> for apb::RectificationState {
    fn from(s: State) -> Self {
        match s {
            State::InProgress => Self::InProgress,
            State::Submitted => Self::Submitted,
            State::Verified => Self::Verified,
            State::Cancelled => Self::Cancelled,
        }
    }
}

/// What found the problem.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Source {
    /// A security check's finding.
    SecurityCheck,
    /// An inspection or spot check.
    Inspection,
    /// A security incident.
    Incident,
    /// Public feedback.
    PublicFeedback,
    /// The inspection-readiness monitor.
    Compliance,
    /// A recorded violation.
    Violation,
    /// Anything else.
    Other,
}

impl From<Source> for apb::FindingSource {
    fn from(s: Source) -> Self {
        match s {
            Source::SecurityCheck => Self::SecurityCheck,
            Source::Inspection => Self::Inspection,
            Source::Incident => Self::Incident,
            Source::PublicFeedback => Self::PublicFeedback,
            Source::Compliance => Self::Compliance,
            Source::Violation => Self::Violation,
            Source::Other => Self::Other,
        }
    }
}

fn state(r: &apb::Rectification) -> String {
    let s = label(Some(r.state().as_str_name()), "RECTIFICATION_STATE_");
    if r.overdue { format!("{s} (OVERDUE)") } else { s }
}

fn print_rectification(r: &apb::Rectification, json: bool) -> Result<(), BoxError> {
    let evidence = r.evidence.clone().unwrap_or_default();
    print_record(
        &[
            ("id", r.id.clone()),
            ("title", r.title.clone()),
            ("state", state(r)),
            ("source", format!("{} {}", label(Some(r.source().as_str_name()), "FINDING_SOURCE_"), r.source_id)),
            ("department_id", r.department_id.clone()),
            ("responsible_user_id", r.responsible_user_id.clone()),
            ("platform_account_id", r.platform_account_id.clone()),
            ("rule", r.rule_id.clone()),
            ("requirement", r.requirement.clone()),
            ("due", format!("{} ({} working days)", r.due_date, r.working_days)),
            ("issued", format!("{} by {}", time(r.issue_time.as_ref()), r.issued_by)),
            ("evidence", evidence.description),
            ("evidence_uri", evidence.uri),
            ("submitted", time(r.submit_time.as_ref())),
            ("verified", format!("{} {}", time(r.verify_time.as_ref()), r.verified_by)),
            ("note", r.verification_note.clone()),
            ("returned", r.return_count.to_string()),
            ("etag", r.etag.clone()),
        ],
        json,
    )
}

impl Rectifications {
    async fn get(client: &mut Client, id: &str) -> Result<apb::Rectification, BoxError> {
        let request = apb::GetRectificationRequest { rectification_id: id.to_owned() };
        Ok(
            client
                .call(|channel, token| {
                    let request = request.clone();
                    async move {
                        RectificationServiceClient::new(channel).get_rectification(authorized(request, &token)).await
                    }
                })
                .await?
                .rectification
                .unwrap_or_default(),
        )
    }

    async fn verify(
        client: &mut Client,
        id: String,
        accepted: bool,
        note: String,
    ) -> Result<apb::Rectification, BoxError> {
        let etag = Self::get(client, &id).await?.etag;
        let request =
            apb::VerifyRectificationRequest { request_id: request_id(), rectification_id: id, accepted, note, etag };
        Ok(client
            .call(|channel, token| {
                let request = request.clone();
                async move {
                    RectificationServiceClient::new(channel).verify_rectification(authorized(request, &token)).await
                }
            })
            .await?
            .rectification
            .unwrap_or_default())
    }

    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Rectifications::List { department, state: wanted, overdue, responsible, account, limit } => {
                let wanted = wanted.map(|s| apb::RectificationState::from(s) as i32).unwrap_or_default();
                let (department, responsible, account) =
                    (department.unwrap_or_default(), responsible.unwrap_or_default(), account.unwrap_or_default());
                let list = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListRectificationsRequest {
                                page_size,
                                page_token,
                                department_id: department.clone(),
                                state: wanted,
                                overdue_only: overdue,
                                responsible_user_id: responsible.clone(),
                                platform_account_id: account.clone(),
                            };
                            async move {
                                RectificationServiceClient::new(channel)
                                    .list_rectifications(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: apb::ListRectificationsResponse| (r.rectifications, r.next_page_token),
                    )
                    .await?;
                let mut table = Table::new(&["id", "due", "state", "title", "department_id", "responsible_user_id"]);
                for r in &list {
                    table.row(vec![
                        r.id.clone(),
                        r.due_date.clone(),
                        state(r),
                        r.title.clone(),
                        r.department_id.clone(),
                        r.responsible_user_id.clone(),
                    ]);
                }
                table.print(json)
            }
            Rectifications::Show { rectification_id } => {
                print_rectification(&Self::get(client, &rectification_id).await?, json)
            }
            Rectifications::Issue {
                source,
                source_id,
                department,
                responsible,
                account,
                title,
                requirement,
                rule,
                working_days,
            } => {
                let request = apb::IssueRectificationRequest {
                    request_id: request_id(),
                    rectification: Some(apb::Rectification {
                        source: apb::FindingSource::from(source) as i32,
                        source_id,
                        department_id: department,
                        responsible_user_id: responsible,
                        platform_account_id: account.unwrap_or_default(),
                        title,
                        requirement,
                        rule_id: rule,
                        working_days,
                        ..Default::default()
                    }),
                };
                let r = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            RectificationServiceClient::new(channel)
                                .issue_rectification(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .rectification
                    .unwrap_or_default();
                print_rectification(&r, json)
            }
            Rectifications::Submit { rectification_id, description, uri, sha256 } => {
                let etag = Self::get(client, &rectification_id).await?.etag;
                let request = apb::SubmitRectificationEvidenceRequest {
                    request_id: request_id(),
                    rectification_id,
                    evidence: Some(apb::RectificationEvidence { description, uri, sha256 }),
                    etag,
                };
                let r = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            RectificationServiceClient::new(channel)
                                .submit_rectification_evidence(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .rectification
                    .unwrap_or_default();
                print_rectification(&r, json)
            }
            Rectifications::Verify { rectification_id, note } => {
                print_rectification(&Self::verify(client, rectification_id, true, note).await?, json)
            }
            Rectifications::Return { rectification_id, reason } => {
                print_rectification(&Self::verify(client, rectification_id, false, reason).await?, json)
            }
            Rectifications::Cancel { rectification_id, reason } => {
                let etag = Self::get(client, &rectification_id).await?.etag;
                let request =
                    apb::CancelRectificationRequest { request_id: request_id(), rectification_id, reason, etag };
                let r = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            RectificationServiceClient::new(channel)
                                .cancel_rectification(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .rectification
                    .unwrap_or_default();
                print_rectification(&r, json)
            }
        }
    }
}
