//! Security incidents: report, contain (retract, freeze), investigate, report upward,
//! close.

use clap::{Subcommand, ValueEnum};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::security_incident_service_client::SecurityIncidentServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

macro_rules! call {
    ($client:expr, $request:expr, $method:ident) => {{
        let request = $request;
        $client
            .call(|channel, token| {
                let request = request.clone();
                async move { SecurityIncidentServiceClient::new(channel).$method(authorized(request, &token)).await }
            })
            .await?
    }};
}

/// Security incidents.
#[derive(Debug, Subcommand)]
pub enum Incidents {
    /// Report an incident.
    Report {
        /// What happened.
        #[arg(long, value_enum)]
        kind: Kind,
        /// How serious.
        #[arg(long, value_enum, default_value = "general")]
        severity: Severity,
        /// A one-line title.
        #[arg(long)]
        title: String,
        /// What was observed.
        #[arg(long)]
        description: String,
        /// The department concerned (not needed when an account is named).
        #[arg(long)]
        department: Option<String>,
        /// The platform account concerned.
        #[arg(long)]
        account: Option<String>,
        /// The publication, for a content incident.
        #[arg(long)]
        publication: Option<String>,
        /// identity's account incident, for an account anomaly.
        #[arg(long)]
        account_incident: Option<String>,
    },
    /// Incidents, the newest first.
    List {
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// One incident with its steps.
    Show {
        /// Its id.
        incident_id: String,
    },
    /// Contain it: --retract its publication, --freeze its account, and say what else.
    Contain {
        /// Its id.
        incident_id: String,
        /// Retract the publication through the content service.
        #[arg(long)]
        retract: bool,
        /// Freeze the account through the identity service.
        #[arg(long)]
        freeze: bool,
        /// What was done and why.
        #[arg(long)]
        note: String,
    },
    /// Record investigation findings.
    Investigate {
        /// Its id.
        incident_id: String,
        /// What was found.
        #[arg(long)]
        findings: String,
    },
    /// Mark it reported upward.
    ReportUpward {
        /// Its id.
        incident_id: String,
        /// To whom.
        #[arg(long)]
        to: String,
        /// How and when (a document number).
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Close it with the root cause and the corrective actions.
    Close {
        /// Its id.
        incident_id: String,
        /// The root cause.
        #[arg(long)]
        root_cause: String,
        /// A corrective action; repeat for each.
        #[arg(long = "action", required = true)]
        actions: Vec<String>,
    },
}

/// What happened.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// Confidential information published.
    ConfidentialInformationPublished,
    /// A serious wording error published.
    SeriousWordingError,
    /// A false or wrong post.
    FalseOrWrongPost,
    /// A data leak.
    DataLeak,
    /// An account anomaly identity raised.
    AccountAnomaly,
}

/// How serious.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Severity {
    /// 一般.
    General,
    /// 较大.
    Serious,
    /// 重大.
    Major,
}

fn print_incident(i: &apb::SecurityIncident, json: bool) -> Result<(), BoxError> {
    let steps: Vec<String> = i
        .steps
        .iter()
        .map(|s| {
            format!(
                "{} {}: {}",
                time(s.create_time.as_ref()),
                label(Some(s.kind().as_str_name()), "INCIDENT_STEP_KIND_"),
                s.detail
            )
        })
        .collect();
    print_record(
        &[
            ("id", i.id.clone()),
            ("kind", label(Some(i.kind().as_str_name()), "SECURITY_INCIDENT_KIND_")),
            ("severity", label(Some(i.severity().as_str_name()), "SECURITY_INCIDENT_SEVERITY_")),
            ("title", i.title.clone()),
            ("department_id", i.department_id.clone()),
            ("platform_account_id", i.platform_account_id.clone()),
            ("publication_id", i.publication_id.clone()),
            ("account_incident_id", i.account_incident_id.clone()),
            ("state", label(Some(i.state().as_str_name()), "SECURITY_INCIDENT_STATE_")),
            ("steps", steps.join("\n")),
            ("reported_to", i.reported_to.clone()),
            ("root_cause", i.root_cause.clone()),
            ("corrective_actions", i.corrective_actions.join("; ")),
            ("etag", i.etag.clone()),
        ],
        json,
    )
}

impl Incidents {
    async fn get(client: &mut Client, id: &str) -> Result<apb::SecurityIncident, BoxError> {
        let r = call!(client, apb::GetSecurityIncidentRequest { incident_id: id.to_owned() }, get_security_incident);
        Ok(r.incident.unwrap_or_default())
    }

    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let shown = match self {
            Incidents::Report {
                kind,
                severity,
                title,
                description,
                department,
                account,
                publication,
                account_incident,
            } => {
                let incident = apb::SecurityIncident {
                    kind: match kind {
                        Kind::ConfidentialInformationPublished => {
                            apb::SecurityIncidentKind::ConfidentialInformationPublished
                        }
                        Kind::SeriousWordingError => apb::SecurityIncidentKind::SeriousWordingError,
                        Kind::FalseOrWrongPost => apb::SecurityIncidentKind::FalseOrWrongPost,
                        Kind::DataLeak => apb::SecurityIncidentKind::DataLeak,
                        Kind::AccountAnomaly => apb::SecurityIncidentKind::AccountAnomaly,
                    } as i32,
                    severity: match severity {
                        Severity::General => apb::SecurityIncidentSeverity::General,
                        Severity::Serious => apb::SecurityIncidentSeverity::Serious,
                        Severity::Major => apb::SecurityIncidentSeverity::Major,
                    } as i32,
                    title,
                    description,
                    department_id: department.unwrap_or_default(),
                    platform_account_id: account.unwrap_or_default(),
                    publication_id: publication.unwrap_or_default(),
                    account_incident_id: account_incident.unwrap_or_default(),
                    ..Default::default()
                };
                let request = apb::ReportSecurityIncidentRequest { request_id: request_id(), incident: Some(incident) };
                call!(client, request, report_security_incident).incident
            }
            Incidents::List { department, limit } => {
                let department = department.unwrap_or_default();
                let list = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListSecurityIncidentsRequest {
                                page_size,
                                page_token,
                                department_id: department.clone(),
                                ..Default::default()
                            };
                            async move {
                                SecurityIncidentServiceClient::new(channel)
                                    .list_security_incidents(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: apb::ListSecurityIncidentsResponse| (r.incidents, r.next_page_token),
                    )
                    .await?;
                let mut table = Table::new(&["id", "reported", "kind", "severity", "state", "title"]);
                for i in &list {
                    table.row(vec![
                        i.id.clone(),
                        time(i.report_time.as_ref()),
                        label(Some(i.kind().as_str_name()), "SECURITY_INCIDENT_KIND_"),
                        label(Some(i.severity().as_str_name()), "SECURITY_INCIDENT_SEVERITY_"),
                        label(Some(i.state().as_str_name()), "SECURITY_INCIDENT_STATE_"),
                        i.title.clone(),
                    ]);
                }
                return table.print(json);
            }
            Incidents::Show { incident_id } => Some(Self::get(client, &incident_id).await?),
            Incidents::Contain { incident_id, retract, freeze, note } => {
                let etag = Self::get(client, &incident_id).await?.etag;
                let request = apb::ContainSecurityIncidentRequest {
                    request_id: request_id(),
                    incident_id,
                    retract_publication: retract,
                    freeze_account: freeze,
                    note,
                    etag,
                };
                call!(client, request, contain_security_incident).incident
            }
            Incidents::Investigate { incident_id, findings } => {
                let etag = Self::get(client, &incident_id).await?.etag;
                let request =
                    apb::InvestigateSecurityIncidentRequest { request_id: request_id(), incident_id, findings, etag };
                call!(client, request, investigate_security_incident).incident
            }
            Incidents::ReportUpward { incident_id, to, note } => {
                let etag = Self::get(client, &incident_id).await?.etag;
                let request = apb::ReportSecurityIncidentUpwardRequest {
                    request_id: request_id(),
                    incident_id,
                    reported_to: to,
                    note,
                    etag,
                };
                call!(client, request, report_security_incident_upward).incident
            }
            Incidents::Close { incident_id, root_cause, actions } => {
                let etag = Self::get(client, &incident_id).await?.etag;
                let request = apb::CloseSecurityIncidentRequest {
                    request_id: request_id(),
                    incident_id,
                    root_cause,
                    corrective_actions: actions,
                    etag,
                };
                call!(client, request, close_security_incident).incident
            }
        };
        print_incident(&shown.unwrap_or_default(), json)
    }
}
