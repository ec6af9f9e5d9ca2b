//! Information security (R7.2): the register of security controls, security checks and
//! their hidden dangers, and security incidents.

use clap::{Subcommand, ValueEnum};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::security_control_service_client::SecurityControlServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Information security.
#[derive(Debug, Subcommand)]
pub enum Security {
    /// The register of security controls (R7.2.1).
    #[command(subcommand)]
    Controls(Controls),
    /// Security checklists and their versions (R7.2.2).
    #[command(subcommand)]
    Checklists(super::security_checks::Checklists),
    /// Security checks: schedules, runs, results (R7.2.2).
    #[command(subcommand)]
    Checks(super::security_checks::Checks),
    /// Hidden dangers found by checks: fixes and their verification (R7.2.2).
    #[command(subcommand)]
    Findings(super::security_checks::Findings),
    /// Security incidents: report, contain, investigate, close (R7.2).
    #[command(subcommand)]
    Incidents(super::incidents::Incidents),
}

/// The register of security controls.
#[derive(Debug, Subcommand)]
pub enum Controls {
    /// Controls by asset; --overdue lists those past their verification interval.
    List {
        /// Only controls of this asset.
        #[arg(long)]
        asset: Option<String>,
        /// Only overdue controls.
        #[arg(long)]
        overdue: bool,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Register a control of an asset (security officer).
    Add {
        /// What is protected.
        #[arg(long, value_enum)]
        asset_type: AssetType,
        /// The asset's id or inventory name (a platform account's id for that type).
        #[arg(long)]
        asset: String,
        /// The asset's name.
        #[arg(long)]
        asset_name: String,
        /// The kind of control.
        #[arg(long = "control", value_enum)]
        control_type: ControlType,
        /// What the control is and how it is configured.
        #[arg(long)]
        description: String,
        /// How it stands now.
        #[arg(long, value_enum, default_value = "in-place")]
        status: Status,
        /// Days between verifications.
        #[arg(long, default_value_t = 90)]
        interval_days: u32,
        /// The department that keeps the asset.
        #[arg(long)]
        department: Option<String>,
    },
    /// Record a verification with its evidence (security officer).
    Verify {
        /// The control's id.
        security_control_id: String,
        /// The status found.
        #[arg(long, value_enum)]
        status: Status,
        /// What was checked, and where the record is.
        #[arg(long)]
        evidence: String,
    },
    /// Retire a control no longer in use (security officer).
    Retire {
        /// The control's id.
        security_control_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

/// What is protected.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum AssetType {
    /// A platform account.
    PlatformAccount,
    /// A server.
    Server,
    /// A workstation group.
    WorkstationGroup,
    /// A network segment.
    Network,
}

/// The kind of control.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ControlType {
    /// A firewall.
    Firewall,
    /// Antivirus.
    Antivirus,
    /// Access control.
    AccessControl,
    /// Backup.
    Backup,
    /// The platform's two-factor login.
    TwoFactorLogin,
    /// Patching.
    Patching,
    /// Logging and monitoring.
    Logging,
    /// Encryption.
    Encryption,
    /// Anything else.
    Other,
}

/// How a control stands.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Status {
    /// In place.
    InPlace,
    /// Partly in place.
    Partial,
    /// Missing.
    Missing,
}

fn status(s: Status) -> apb::ControlStatus {
    match s {
        Status::InPlace => apb::ControlStatus::InPlace,
        Status::Partial => apb::ControlStatus::Partial,
        Status::Missing => apb::ControlStatus::Missing,
    }
}

fn shown_status(c: &apb::SecurityControl) -> String {
    let s = label(Some(c.status().as_str_name()), "CONTROL_STATUS_");
    if c.overdue { format!("{s} (OVERDUE)") } else { s }
}

fn print_control(c: &apb::SecurityControl, json: bool) -> Result<(), BoxError> {
    print_record(
        &[
            ("id", c.id.clone()),
            (
                "asset",
                format!(
                    "{} {} ({})",
                    label(Some(c.asset_type().as_str_name()), "ASSET_TYPE_"),
                    c.asset_id,
                    c.asset_name
                ),
            ),
            ("control", label(Some(c.control_type().as_str_name()), "CONTROL_TYPE_")),
            ("description", c.description.clone()),
            ("status", shown_status(c)),
            ("interval_days", c.verify_interval_days.to_string()),
            ("last_verified", format!("{} {}", time(c.last_verify_time.as_ref()), c.last_verified_by)),
            ("evidence", c.evidence.clone()),
            ("next_verification", time(c.next_verify_time.as_ref())),
            ("etag", c.etag.clone()),
        ],
        json,
    )
}

impl Security {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Security::Controls(c) => c.run(client, json).await,
            Security::Checklists(c) => c.run(client, json).await,
            Security::Checks(c) => c.run(client, json).await,
            Security::Findings(f) => f.run(client, json).await,
            Security::Incidents(i) => i.run(client, json).await,
        }
    }
}

impl Controls {
    async fn get(client: &mut Client, id: &str) -> Result<apb::SecurityControl, BoxError> {
        let request = apb::GetSecurityControlRequest { security_control_id: id.to_owned() };
        Ok(client
            .call(|channel, token| {
                let request = request.clone();
                async move {
                    SecurityControlServiceClient::new(channel).get_security_control(authorized(request, &token)).await
                }
            })
            .await?
            .security_control
            .unwrap_or_default())
    }

    async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let shown = match self {
            Controls::List { asset, overdue, limit } => {
                let asset = asset.unwrap_or_default();
                let list = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListSecurityControlsRequest {
                                page_size,
                                page_token,
                                asset_id: asset.clone(),
                                overdue_only: overdue,
                                ..Default::default()
                            };
                            async move {
                                SecurityControlServiceClient::new(channel)
                                    .list_security_controls(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: apb::ListSecurityControlsResponse| (r.security_controls, r.next_page_token),
                    )
                    .await?;
                let mut table = Table::new(&["id", "asset", "control", "status", "last_verified", "next_verification"]);
                for c in &list {
                    table.row(vec![
                        c.id.clone(),
                        format!("{} ({})", c.asset_id, c.asset_name),
                        label(Some(c.control_type().as_str_name()), "CONTROL_TYPE_"),
                        shown_status(c),
                        time(c.last_verify_time.as_ref()),
                        time(c.next_verify_time.as_ref()),
                    ]);
                }
                return table.print(json);
            }
            Controls::Add {
                asset_type,
                asset,
                asset_name,
                control_type,
                description,
                status: s,
                interval_days,
                department,
            } => {
                let request = apb::CreateSecurityControlRequest {
                    request_id: request_id(),
                    security_control: Some(apb::SecurityControl {
                        asset_type: match asset_type {
                            AssetType::PlatformAccount => apb::AssetType::PlatformAccount,
                            AssetType::Server => apb::AssetType::Server,
                            AssetType::WorkstationGroup => apb::AssetType::WorkstationGroup,
                            AssetType::Network => apb::AssetType::Network,
                        } as i32,
                        asset_id: asset,
                        asset_name,
                        control_type: match control_type {
                            ControlType::Firewall => apb::ControlType::Firewall,
                            ControlType::Antivirus => apb::ControlType::Antivirus,
                            ControlType::AccessControl => apb::ControlType::AccessControl,
                            ControlType::Backup => apb::ControlType::Backup,
                            ControlType::TwoFactorLogin => apb::ControlType::TwoFactorLogin,
                            ControlType::Patching => apb::ControlType::Patching,
                            ControlType::Logging => apb::ControlType::Logging,
                            ControlType::Encryption => apb::ControlType::Encryption,
                            ControlType::Other => apb::ControlType::Other,
                        } as i32,
                        description,
                        status: status(s) as i32,
                        verify_interval_days: interval_days,
                        department_id: department.unwrap_or_default(),
                        ..Default::default()
                    }),
                };
                client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            SecurityControlServiceClient::new(channel)
                                .create_security_control(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .security_control
            }
            Controls::Verify { security_control_id, status: s, evidence } => {
                let etag = Self::get(client, &security_control_id).await?.etag;
                let request = apb::VerifySecurityControlRequest {
                    request_id: request_id(),
                    security_control_id,
                    status: status(s) as i32,
                    evidence,
                    etag,
                };
                client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            SecurityControlServiceClient::new(channel)
                                .verify_security_control(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .security_control
            }
            Controls::Retire { security_control_id, reason } => {
                let etag = Self::get(client, &security_control_id).await?.etag;
                let request =
                    apb::RetireSecurityControlRequest { request_id: request_id(), security_control_id, reason, etag };
                client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            SecurityControlServiceClient::new(channel)
                                .retire_security_control(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .security_control
            }
        };
        print_control(&shown.unwrap_or_default(), json)
    }
}
