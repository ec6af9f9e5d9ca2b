//! Inspection readiness (R8.1.1): each account's daily assessment against the veto items
//! and deductions of the inspection indicators (docs/compliance.md).

use clap::{Subcommand, ValueEnum};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::compliance_service_client::ComplianceServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Inspection readiness.
#[derive(Debug, Subcommand)]
pub enum Compliance {
    /// A date's assessments, worst first. Without --department: the whole bureau's,
    /// which needs `compliance.read` over the bureau.
    List {
        /// The Beijing date, YYYY-MM-DD (default: the latest assessed).
        #[arg(long)]
        date: Option<String>,
        /// Only this department's accounts.
        #[arg(long)]
        department: Option<String>,
        /// Only accounts at this level or worse.
        #[arg(long, value_enum)]
        minimum: Option<Level>,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// One account's assessment: level, score, and every item found.
    Show {
        /// The platform account's id.
        platform_account_id: String,
        /// The Beijing date, YYYY-MM-DD (default: the latest).
        #[arg(long)]
        date: Option<String>,
    },
    /// One account's daily assessments over a period, oldest first.
    History {
        /// The platform account's id.
        platform_account_id: String,
        /// The first date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// The last date, YYYY-MM-DD.
        #[arg(long)]
        to: String,
    },
    /// Assess every account now (`compliance.manage`).
    Assess,
    /// A report of a period: every account's daily assessments as CSV, JSON, or an SVG
    /// chart of score and days since the last publication. The accounts are those
    /// assessed on the last date (of --department when given).
    Report {
        /// The first date, YYYY-MM-DD.
        #[arg(long)]
        from: String,
        /// The last date, YYYY-MM-DD.
        #[arg(long)]
        to: String,
        /// Only this department's accounts.
        #[arg(long)]
        department: Option<String>,
        /// The format.
        #[arg(long, value_enum, default_value = "csv")]
        format: ReportFormat,
        /// Where to write it; standard output when not given.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

/// A report's format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ReportFormat {
    /// One row per account and date.
    Csv,
    /// The same rows as a JSON array.
    Json,
    /// A chart, a panel per account.
    Svg,
}

async fn history(
    client: &mut Client,
    account: &str,
    from: &str,
    to: &str,
) -> Result<Vec<apb::AccountCompliance>, BoxError> {
    client
        .list(
            366,
            |channel, token, page_token, page_size| {
                let request = apb::ListAccountComplianceHistoryRequest {
                    platform_account_id: account.to_owned(),
                    start_date: from.to_owned(),
                    end_date: to.to_owned(),
                    page_size,
                    page_token,
                };
                async move {
                    ComplianceServiceClient::new(channel)
                        .list_account_compliance_history(authorized(request, &token))
                        .await
                }
            },
            |r: apb::ListAccountComplianceHistoryResponse| (r.compliance, r.next_page_token),
        )
        .await
}

/// A compliance level.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Level {
    /// Everything.
    Compliant,
    /// Warning and veto.
    Warning,
    /// Veto only.
    Veto,
}

impl From<Level> for apb::ComplianceLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Compliant => Self::Compliant,
            Level::Warning => Self::Warning,
            Level::Veto => Self::Veto,
        }
    }
}

fn level(c: &apb::AccountCompliance) -> String {
    label(Some(c.level().as_str_name()), "COMPLIANCE_LEVEL_")
}

fn items(c: &apb::AccountCompliance) -> String {
    c.items
        .iter()
        .map(|i| {
            let what = label(Some(i.indicator().as_str_name()), "COMPLIANCE_INDICATOR_");
            match i.level() {
                apb::ComplianceLevel::Warning | apb::ComplianceLevel::Veto => {
                    format!(
                        "{} {what}: {} ({})",
                        label(Some(i.level().as_str_name()), "COMPLIANCE_LEVEL_"),
                        i.detail,
                        i.rule_id
                    )
                }
                _ => format!("-{} {what}: {} ({})", i.deduction, i.detail, i.rule_id),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn table(list: &[apb::AccountCompliance]) -> Table {
    let mut table = Table::new(&[
        "date",
        "platform_account_id",
        "handle",
        "level",
        "score",
        "days_since_post",
        "interaction",
        "items",
    ]);
    for c in list {
        table.row(vec![
            c.assessment_date.clone(),
            c.platform_account_id.clone(),
            c.handle.clone(),
            level(c),
            c.score.to_string(),
            c.days_since_last_publication.to_string(),
            label(Some(c.interaction_status().as_str_name()), "INTERACTION_STATUS_"),
            items(c),
        ]);
    }
    table
}

impl Compliance {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Compliance::List { date, department, minimum, limit } => {
                let date = date.unwrap_or_default();
                let department = department.unwrap_or_default();
                let minimum = minimum.map(|m| apb::ComplianceLevel::from(m) as i32).unwrap_or_default();
                let list = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListAccountComplianceRequest {
                                assessment_date: date.clone(),
                                department_id: department.clone(),
                                minimum_level: minimum,
                                page_size,
                                page_token,
                            };
                            async move {
                                ComplianceServiceClient::new(channel)
                                    .list_account_compliance(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: apb::ListAccountComplianceResponse| (r.compliance, r.next_page_token),
                    )
                    .await?;
                table(&list).print(json)
            }
            Compliance::Show { platform_account_id, date } => {
                let request =
                    apb::GetAccountComplianceRequest { platform_account_id, assessment_date: date.unwrap_or_default() };
                let c = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            ComplianceServiceClient::new(channel)
                                .get_account_compliance(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .compliance
                    .unwrap_or_default();
                print_record(
                    &[
                        ("platform_account_id", c.platform_account_id.clone()),
                        ("handle", c.handle.clone()),
                        ("department_id", c.department_id.clone()),
                        ("date", c.assessment_date.clone()),
                        ("final", c.r#final.to_string()),
                        ("level", level(&c)),
                        ("score", c.score.to_string()),
                        ("days_since_last_publication", c.days_since_last_publication.to_string()),
                        ("last_publication", time(c.last_publication_time.as_ref())),
                        ("interaction", label(Some(c.interaction_status().as_str_name()), "INTERACTION_STATUS_")),
                        (
                            "received_answered_missed",
                            format!(
                                "{}/{}/{}",
                                c.interactions_received, c.interactions_answered, c.missed_reply_deadlines
                            ),
                        ),
                        ("overdue_referrals", c.overdue_referrals.to_string()),
                        ("security_incidents", c.security_incidents.to_string()),
                        ("serious_wording_errors", c.serious_wording_errors.to_string()),
                        ("responsible_person_active", c.responsible_person_active.to_string()),
                        ("window", format!("{} to {}", c.window_start_date, c.assessment_date)),
                        ("items", items(&c)),
                        ("computed", time(c.compute_time.as_ref())),
                    ],
                    json,
                )
            }
            Compliance::History { platform_account_id, from, to } => {
                let list = history(client, &platform_account_id, &from, &to).await?;
                table(&list).print(json)
            }
            Compliance::Report { from, to, department, format, output } => {
                let department = department.unwrap_or_default();
                let accounts = client
                    .list(
                        10_000,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListAccountComplianceRequest {
                                assessment_date: to.clone(),
                                department_id: department.clone(),
                                page_size,
                                page_token,
                                ..Default::default()
                            };
                            async move {
                                ComplianceServiceClient::new(channel)
                                    .list_account_compliance(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: apb::ListAccountComplianceResponse| (r.compliance, r.next_page_token),
                    )
                    .await?;
                let mut series = Vec::with_capacity(accounts.len());
                for a in accounts {
                    let days = history(client, &a.platform_account_id, &from, &to).await?;
                    series.push(super::report::Series { account: a.platform_account_id, handle: a.handle, days });
                }
                series.sort_by(|a, b| a.handle.cmp(&b.handle));
                let text = match format {
                    ReportFormat::Csv => super::report::csv(&series)?,
                    ReportFormat::Json => super::report::json(&series)?,
                    ReportFormat::Svg => super::report::svg(&series, &from, &to)?,
                };
                match output {
                    Some(path) => {
                        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                        eprintln!("report of {} accounts written to {}", series.len(), path.display());
                    }
                    None => {
                        use std::io::Write as _;
                        std::io::stdout().lock().write_all(text.as_bytes())?;
                    }
                }
                Ok(())
            }
            Compliance::Assess => {
                let request = apb::RunComplianceAssessmentRequest { request_id: request_id() };
                let r = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            ComplianceServiceClient::new(channel)
                                .run_compliance_assessment(authorized(request, &token))
                                .await
                        }
                    })
                    .await?;
                print_record(
                    &[
                        ("date", r.assessment_date),
                        ("accounts", r.accounts.to_string()),
                        ("warnings", r.warnings.to_string()),
                        ("vetoes", r.vetoes.to_string()),
                        ("alerts", r.alerts.to_string()),
                    ],
                    json,
                )
            }
        }
    }
}
