//! The bureau's platform accounts (R2.1): the registry, with each account's responsible
//! person, filing and lifecycle state.

use clap::Subcommand;
use govmedia_proto::common::v1 as cpb;
use govmedia_proto::identity::v1 as ipb;
use govmedia_proto::identity::v1::platform_account_service_client::PlatformAccountServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// A platform, as typed on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Platform {
    /// WeChat official account.
    Wechat,
    /// Weibo.
    Weibo,
    /// Douyin.
    Douyin,
    /// Toutiao.
    Toutiao,
    /// Bilibili.
    Bilibili,
    /// Xiaohongshu.
    Xiaohongshu,
    /// Another platform.
    Other,
}

impl From<Platform> for cpb::Platform {
    fn from(p: Platform) -> Self {
        match p {
            Platform::Wechat => cpb::Platform::WechatOfficialAccount,
            Platform::Weibo => cpb::Platform::Weibo,
            Platform::Douyin => cpb::Platform::Douyin,
            Platform::Toutiao => cpb::Platform::Toutiao,
            Platform::Bilibili => cpb::Platform::Bilibili,
            Platform::Xiaohongshu => cpb::Platform::Xiaohongshu,
            Platform::Other => cpb::Platform::Other,
        }
    }
}

/// Platform accounts.
#[derive(Debug, Subcommand)]
pub enum Accounts {
    /// List accounts.
    List {
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// One account in full.
    Show {
        /// The account's id.
        account_id: String,
    },
    /// Register an account.
    Create {
        /// The platform.
        #[arg(long, value_enum)]
        platform: Platform,
        /// The handle on the platform.
        #[arg(long)]
        handle: String,
        /// The name shown on the platform.
        #[arg(long)]
        display_name: String,
        /// The department that runs it.
        #[arg(long)]
        department: String,
        /// The designated responsible person (an active user's id).
        #[arg(long)]
        responsible: String,
    },
}

/// Accounts of one department (or all with `""`).
async fn list(client: &mut Client, department: &str, limit: usize) -> Result<Vec<ipb::PlatformAccount>, BoxError> {
    client
        .list(
            limit,
            |channel, token, page_token, page_size| {
                let request = ipb::ListPlatformAccountsRequest {
                    page_size,
                    page_token,
                    department_id: department.to_owned(),
                    ..Default::default()
                };
                async move {
                    PlatformAccountServiceClient::new(channel).list_platform_accounts(authorized(request, &token)).await
                }
            },
            |r: ipb::ListPlatformAccountsResponse| (r.platform_accounts, r.next_page_token),
        )
        .await
}

/// The platform accounts the signed-in principal's role bindings reach: those bound on an
/// account, and every account of each department bound. For someone without a bureau-wide
/// role, "everything I may see" is these accounts.
pub(super) async fn mine(client: &mut Client) -> Result<Vec<String>, BoxError> {
    use govmedia_proto::identity::v1::authentication_service_client::AuthenticationServiceClient;
    let me = client
        .call(|channel, token| async move {
            AuthenticationServiceClient::new(channel)
                .get_current_principal(authorized(ipb::GetCurrentPrincipalRequest {}, &token))
                .await
        })
        .await?;
    let mut accounts = std::collections::BTreeSet::new();
    let mut departments = std::collections::BTreeSet::new();
    for binding in me.role_bindings {
        let scope = binding.scope.unwrap_or_default();
        match scope.kind() {
            cpb::ScopeKind::PlatformAccount => {
                accounts.insert(scope.id);
            }
            cpb::ScopeKind::Department => {
                departments.insert(scope.id);
            }
            cpb::ScopeKind::Global | cpb::ScopeKind::Unspecified => {}
        }
    }
    for department in departments {
        accounts.extend(list(client, &department, usize::MAX).await?.into_iter().map(|a| a.id));
    }
    Ok(accounts.into_iter().collect())
}

/// A list of one account's items when `account` is named; otherwise everything the caller
/// may see: the bureau-wide list, or for someone whose roles are scoped (refused the
/// bureau-wide list) the lists of the accounts those scopes reach, merged in `key` order.
pub(super) async fn per_account<T, K: Ord>(
    client: &mut Client,
    account: Option<String>,
    limit: usize,
    mut fetch: impl AsyncFnMut(&mut Client, &str) -> Result<Vec<T>, BoxError>,
    key: impl FnMut(&T) -> K,
) -> Result<Vec<T>, BoxError> {
    if let Some(account) = account {
        return fetch(client, &account).await;
    }
    match fetch(client, "").await {
        Err(e) if super::output::is_denied(&e) => {
            let mut all = Vec::new();
            for account in mine(client).await? {
                all.extend(fetch(client, &account).await?);
            }
            all.sort_by_key(key);
            all.truncate(limit);
            Ok(all)
        }
        answer => answer,
    }
}

impl Accounts {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Accounts::List { department, limit } => {
                let accounts = list(client, &department.unwrap_or_default(), limit).await?;
                let mut table =
                    Table::new(&["id", "platform", "handle", "display_name", "department_id", "state", "filing"]);
                for a in accounts {
                    table.row(vec![
                        a.id.clone(),
                        label(Some(a.platform().as_str_name()), "PLATFORM_"),
                        a.handle.clone(),
                        a.profile.as_ref().map(|p| p.display_name.clone()).unwrap_or_default(),
                        a.department_id.clone(),
                        label(Some(a.state().as_str_name()), "PLATFORM_ACCOUNT_STATE_"),
                        label(Some(a.filing_status().as_str_name()), "FILING_STATUS_"),
                    ]);
                }
                table.print(json)
            }
            Accounts::Show { account_id } => {
                let account = client
                    .call(|channel, token| {
                        let request = ipb::GetPlatformAccountRequest { platform_account_id: account_id.clone() };
                        async move {
                            PlatformAccountServiceClient::new(channel)
                                .get_platform_account(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .platform_account
                    .unwrap_or_default();
                print_account(&account, json)
            }
            Accounts::Create { platform, handle, display_name, department, responsible } => {
                let request = ipb::CreatePlatformAccountRequest {
                    request_id: request_id(),
                    platform_account: Some(ipb::PlatformAccount {
                        platform: cpb::Platform::from(platform) as i32,
                        handle,
                        profile: Some(ipb::PlatformAccountProfile { display_name, ..Default::default() }),
                        department_id: department,
                        responsible_user_id: responsible,
                        ..Default::default()
                    }),
                };
                let account = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            PlatformAccountServiceClient::new(channel)
                                .create_platform_account(authorized(request, &token))
                                .await
                        }
                    })
                    .await?
                    .platform_account
                    .unwrap_or_default();
                print_account(&account, json)
            }
        }
    }
}

fn print_account(a: &ipb::PlatformAccount, json: bool) -> Result<(), BoxError> {
    print_record(
        &[
            ("id", a.id.clone()),
            ("platform", label(Some(a.platform().as_str_name()), "PLATFORM_")),
            ("handle", a.handle.clone()),
            ("display_name", a.profile.as_ref().map(|p| p.display_name.clone()).unwrap_or_default()),
            ("department_id", a.department_id.clone()),
            ("responsible_user_id", a.responsible_user_id.clone()),
            ("state", label(Some(a.state().as_str_name()), "PLATFORM_ACCOUNT_STATE_")),
            ("state_reason", a.state_reason.clone()),
            ("filing", label(Some(a.filing_status().as_str_name()), "FILING_STATUS_")),
            ("filing_number", a.filing_number.clone()),
            ("created", time(a.create_time.as_ref())),
        ],
        json,
    )
}
