//! Security checks (R7.2.2): checklists and their versions, schedules, checks with one
//! result per item, and the hidden dangers ("findings") failed items open.

use clap::{Subcommand, ValueEnum};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::security_check_service_client::SecurityCheckServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

macro_rules! call {
    ($client:expr, $request:expr, $method:ident) => {{
        let request = $request;
        $client
            .call(|channel, token| {
                let request = request.clone();
                async move { SecurityCheckServiceClient::new(channel).$method(authorized(request, &token)).await }
            })
            .await?
    }};
}

macro_rules! list {
    ($client:expr, $limit:expr, $request:expr, $method:ident, $items:ident) => {{
        let base = $request;
        $client
            .list(
                $limit,
                |channel, token, page_token, page_size| {
                    let request = {
                        let mut r = base.clone();
                        r.page_token = page_token;
                        r.page_size = page_size;
                        r
                    };
                    async move { SecurityCheckServiceClient::new(channel).$method(authorized(request, &token)).await }
                },
                |r| (r.$items, r.next_page_token),
            )
            .await?
    }};
}

/// Versioned checklists.
#[derive(Debug, Subcommand)]
pub enum Checklists {
    /// Checklists at their current versions.
    List {
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// One checklist, at its current version or --version.
    Show {
        /// The checklist's id.
        checklist_id: String,
        /// The version to show.
        #[arg(long, default_value_t = 0)]
        version: u32,
    },
    /// Create a checklist (security officer).
    Create {
        /// Its name.
        #[arg(long)]
        name: String,
        /// What it is for.
        #[arg(long, default_value = "")]
        description: String,
        /// An item, as CODE=TEXT; repeat for each, in order.
        #[arg(long = "item", value_name = "CODE=TEXT", required = true)]
        items: Vec<String>,
    },
    /// Revise a checklist: the items given become its next version.
    Revise {
        /// The checklist's id.
        checklist_id: String,
        /// An item, as CODE=TEXT; repeat for each, in order.
        #[arg(long = "item", value_name = "CODE=TEXT", required = true)]
        items: Vec<String>,
        /// What changed and why.
        #[arg(long)]
        note: String,
    },
}

/// Schedules and checks.
#[derive(Debug, Subcommand)]
pub enum Checks {
    /// Schedule a checklist's check of a department or an account every N days.
    Schedule {
        /// The checklist.
        #[arg(long)]
        checklist: String,
        /// The department checked.
        #[arg(long, required_unless_present = "account")]
        department: Option<String>,
        /// The platform account checked.
        #[arg(long)]
        account: Option<String>,
        /// Days between checks.
        #[arg(long, default_value_t = 90)]
        every_days: u32,
        /// The first check's date (YYYY-MM-DD); today when not given.
        #[arg(long)]
        first: Option<String>,
    },
    /// Schedules, the earliest next check first; --due lists those due.
    Schedules {
        /// Only those due.
        #[arg(long)]
        due: bool,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Start a check: of a schedule, or ad hoc (--checklist and a target).
    Start {
        /// The schedule to run.
        #[arg(long, conflicts_with_all = ["checklist", "department", "account"])]
        schedule: Option<String>,
        /// The checklist of an ad hoc check.
        #[arg(long, required_unless_present = "schedule")]
        checklist: Option<String>,
        /// The department checked.
        #[arg(long)]
        department: Option<String>,
        /// The platform account checked.
        #[arg(long)]
        account: Option<String>,
    },
    /// Record one item's result; a failure names its hidden danger.
    Record {
        /// The check's id.
        check_id: String,
        /// The item's code.
        item: String,
        /// The result.
        #[arg(long, value_enum)]
        result: ItemResult,
        /// What was looked at and found.
        #[arg(long)]
        evidence: String,
        /// For a failure: what is wrong.
        #[arg(long, required_if_eq("result", "fail"))]
        danger: Option<String>,
        /// For a failure: the user who owns the fix (of the department checked).
        #[arg(long, required_if_eq("result", "fail"))]
        owner: Option<String>,
        /// For a failure: how serious.
        #[arg(long, value_enum, default_value = "general")]
        severity: Severity,
        /// For a failure: working days to fix it.
        #[arg(long, default_value_t = 10)]
        working_days: u32,
    },
    /// Complete a check: failed items open hidden dangers.
    Complete {
        /// The check's id.
        check_id: String,
        /// The conclusion.
        #[arg(long)]
        conclusion: String,
    },
    /// Checks, the newest first.
    List {
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// One check with its items.
    Show {
        /// The check's id.
        check_id: String,
    },
}

/// Hidden dangers found by checks.
#[derive(Debug, Subcommand)]
pub enum Findings {
    /// Hidden dangers, the earliest deadline first.
    List {
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// Only overdue ones.
        #[arg(long)]
        overdue: bool,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// One hidden danger.
    Show {
        /// Its id.
        hidden_danger_id: String,
    },
    /// Submit the fix (its owner).
    SubmitFix {
        /// Its id.
        hidden_danger_id: String,
        /// What was done and where the evidence is.
        #[arg(long)]
        evidence: String,
    },
    /// Verify a fix (someone other than the owner): --accept closes it, --return reopens it.
    Verify {
        /// Its id.
        hidden_danger_id: String,
        /// Close it.
        #[arg(long, conflicts_with = "return_it", required_unless_present = "return_it")]
        accept: bool,
        /// Reopen it for the owner.
        #[arg(long = "return")]
        return_it: bool,
        /// What was checked; the reason when returned.
        #[arg(long, default_value = "")]
        note: String,
    },
}

/// An item's result.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ItemResult {
    /// Passed.
    Pass,
    /// Failed.
    Fail,
    /// Does not apply.
    NotApplicable,
}

/// A hidden danger's severity.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Severity {
    /// 一般隐患.
    General,
    /// 重大隐患.
    Major,
}

fn items(given: Vec<String>) -> Result<Vec<apb::SecurityChecklistItem>, BoxError> {
    given
        .into_iter()
        .map(|i| match i.split_once('=') {
            Some((code, text)) => Ok(apb::SecurityChecklistItem {
                code: code.trim().to_owned(),
                text: text.trim().to_owned(),
                guidance: String::new(),
            }),
            None => Err(format!("--item {i:?} is not CODE=TEXT").into()),
        })
        .collect()
}

fn target(department: Option<String>, account: Option<String>) -> Option<apb::SecurityCheckTarget> {
    Some(apb::SecurityCheckTarget {
        department_id: department.unwrap_or_default(),
        platform_account_id: account.unwrap_or_default(),
    })
}

fn shown_target(t: Option<&apb::SecurityCheckTarget>) -> String {
    match t {
        Some(t) if !t.platform_account_id.is_empty() => format!("account {}", t.platform_account_id),
        Some(t) => format!("department {}", t.department_id),
        None => String::new(),
    }
}

fn print_checklist(c: &apb::SecurityChecklist, json: bool) -> Result<(), BoxError> {
    let items: Vec<String> = c.items.iter().map(|i| format!("{}: {}", i.code, i.text)).collect();
    print_record(
        &[
            ("id", c.id.clone()),
            ("name", c.name.clone()),
            ("version", format!("{} (current {})", c.version, c.current_version)),
            ("items", items.join("\n")),
            ("change_note", c.change_note.clone()),
            ("etag", c.etag.clone()),
        ],
        json,
    )
}

fn print_schedule(s: &apb::SecurityCheckSchedule, json: bool) -> Result<(), BoxError> {
    print_record(
        &[
            ("id", s.id.clone()),
            ("checklist_id", s.checklist_id.clone()),
            ("target", shown_target(s.target.as_ref())),
            ("every_days", s.interval_days.to_string()),
            ("next_due_date", if s.due { format!("{} (DUE)", s.next_due_date) } else { s.next_due_date.clone() }),
            ("state", label(Some(s.state().as_str_name()), "SECURITY_CHECK_SCHEDULE_STATE_")),
            ("etag", s.etag.clone()),
        ],
        json,
    )
}

fn print_check(c: &apb::SecurityCheck, json: bool) -> Result<(), BoxError> {
    let items: Vec<String> = c
        .items
        .iter()
        .map(|i| {
            let code = i.item.as_ref().map(|x| x.code.clone()).unwrap_or_default();
            let result = label(Some(i.result().as_str_name()), "CHECK_ITEM_RESULT_");
            let danger =
                if i.hidden_danger_id.is_empty() { String::new() } else { format!(" -> {}", i.hidden_danger_id) };
            format!("{code}: {result}{danger}")
        })
        .collect();
    print_record(
        &[
            ("id", c.id.clone()),
            ("checklist", format!("{} v{}", c.checklist_name, c.checklist_version)),
            ("target", shown_target(c.target.as_ref())),
            ("state", label(Some(c.state().as_str_name()), "SECURITY_CHECK_STATE_")),
            ("items", items.join("\n")),
            ("failed", c.failed_count.to_string()),
            ("conclusion", c.conclusion.clone()),
            ("etag", c.etag.clone()),
        ],
        json,
    )
}

fn danger_state(d: &apb::HiddenDanger) -> String {
    let s = label(Some(d.state().as_str_name()), "HIDDEN_DANGER_STATE_");
    if d.overdue { format!("{s} (OVERDUE)") } else { s }
}

fn print_danger(d: &apb::HiddenDanger, json: bool) -> Result<(), BoxError> {
    print_record(
        &[
            ("id", d.id.clone()),
            ("check_id", d.check_id.clone()),
            ("item", format!("{}: {}", d.item_code, d.item_text)),
            ("description", d.description.clone()),
            ("target", shown_target(d.target.as_ref())),
            ("owner_user_id", d.owner_user_id.clone()),
            ("severity", label(Some(d.severity().as_str_name()), "HIDDEN_DANGER_SEVERITY_")),
            ("due_date", d.due_date.clone()),
            ("state", danger_state(d)),
            ("fix_evidence", d.fix_evidence.clone()),
            ("verification_note", d.verification_note.clone()),
            ("etag", d.etag.clone()),
        ],
        json,
    )
}

impl Checklists {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let shown = match self {
            Checklists::List { limit } => {
                let list = list!(
                    client,
                    limit,
                    apb::ListSecurityChecklistsRequest::default(),
                    list_security_checklists,
                    checklists
                );
                let mut table = Table::new(&["id", "name", "version", "items"]);
                for c in &list {
                    table.row(vec![
                        c.id.clone(),
                        c.name.clone(),
                        c.current_version.to_string(),
                        c.items.len().to_string(),
                    ]);
                }
                return table.print(json);
            }
            Checklists::Show { checklist_id, version } => {
                call!(client, apb::GetSecurityChecklistRequest { checklist_id, version }, get_security_checklist)
                    .checklist
            }
            Checklists::Create { name, description, items: given } => {
                let checklist =
                    apb::SecurityChecklist { name, description, items: items(given)?, ..Default::default() };
                let request =
                    apb::CreateSecurityChecklistRequest { request_id: request_id(), checklist: Some(checklist) };
                call!(client, request, create_security_checklist).checklist
            }
            Checklists::Revise { checklist_id, items: given, note } => {
                let current = call!(
                    client,
                    apb::GetSecurityChecklistRequest { checklist_id: checklist_id.clone(), version: 0 },
                    get_security_checklist
                );
                let request = apb::ReviseSecurityChecklistRequest {
                    request_id: request_id(),
                    checklist_id,
                    items: items(given)?,
                    change_note: note,
                    etag: current.checklist.unwrap_or_default().etag,
                };
                call!(client, request, revise_security_checklist).checklist
            }
        };
        print_checklist(&shown.unwrap_or_default(), json)
    }
}

impl Checks {
    async fn get(client: &mut Client, id: &str) -> Result<apb::SecurityCheck, BoxError> {
        let r = call!(client, apb::GetSecurityCheckRequest { check_id: id.to_owned() }, get_security_check);
        Ok(r.check.unwrap_or_default())
    }

    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let shown = match self {
            Checks::Schedule { checklist, department, account, every_days, first } => {
                let schedule = apb::SecurityCheckSchedule {
                    checklist_id: checklist,
                    target: target(department, account),
                    interval_days: every_days,
                    next_due_date: first.unwrap_or_default(),
                    ..Default::default()
                };
                let request =
                    apb::CreateSecurityCheckScheduleRequest { request_id: request_id(), schedule: Some(schedule) };
                let s = call!(client, request, create_security_check_schedule).schedule.unwrap_or_default();
                return print_schedule(&s, json);
            }
            Checks::Schedules { due, limit } => {
                let request = apb::ListSecurityCheckSchedulesRequest { due_only: due, ..Default::default() };
                let list = list!(client, limit, request, list_security_check_schedules, schedules);
                let mut table = Table::new(&["id", "checklist_id", "target", "every_days", "next_due_date", "state"]);
                for s in &list {
                    table.row(vec![
                        s.id.clone(),
                        s.checklist_id.clone(),
                        shown_target(s.target.as_ref()),
                        s.interval_days.to_string(),
                        if s.due { format!("{} (DUE)", s.next_due_date) } else { s.next_due_date.clone() },
                        label(Some(s.state().as_str_name()), "SECURITY_CHECK_SCHEDULE_STATE_"),
                    ]);
                }
                return table.print(json);
            }
            Checks::Start { schedule, checklist, department, account } => {
                let request = match schedule {
                    Some(schedule_id) => {
                        apb::StartSecurityCheckRequest { request_id: request_id(), schedule_id, ..Default::default() }
                    }
                    None => apb::StartSecurityCheckRequest {
                        request_id: request_id(),
                        checklist_id: checklist.unwrap_or_default(),
                        target: target(department, account),
                        ..Default::default()
                    },
                };
                call!(client, request, start_security_check).check
            }
            Checks::Record { check_id, item, result, evidence, danger, owner, severity, working_days } => {
                let etag = Self::get(client, &check_id).await?.etag;
                let (result, hidden_danger) = match result {
                    ItemResult::Pass => (apb::CheckItemResult::Pass, None),
                    ItemResult::NotApplicable => (apb::CheckItemResult::NotApplicable, None),
                    ItemResult::Fail => (
                        apb::CheckItemResult::Fail,
                        Some(apb::HiddenDangerSpec {
                            description: danger.unwrap_or_default(),
                            owner_user_id: owner.unwrap_or_default(),
                            severity: match severity {
                                Severity::General => apb::HiddenDangerSeverity::General,
                                Severity::Major => apb::HiddenDangerSeverity::Major,
                            } as i32,
                            working_days,
                        }),
                    ),
                };
                let request = apb::RecordSecurityCheckResultsRequest {
                    request_id: request_id(),
                    check_id,
                    results: vec![apb::SecurityCheckResult {
                        item_code: item,
                        result: result as i32,
                        evidence,
                        hidden_danger,
                    }],
                    etag,
                };
                call!(client, request, record_security_check_results).check
            }
            Checks::Complete { check_id, conclusion } => {
                let etag = Self::get(client, &check_id).await?.etag;
                let request =
                    apb::CompleteSecurityCheckRequest { request_id: request_id(), check_id, conclusion, etag };
                let done = call!(client, request, complete_security_check);
                if !json {
                    for d in &done.hidden_dangers {
                        eprintln!("hidden danger {} opened: {} (due {})", d.id, d.item_code, d.due_date);
                    }
                }
                done.check
            }
            Checks::List { department, limit } => {
                let request = apb::ListSecurityChecksRequest {
                    department_id: department.unwrap_or_default(),
                    ..Default::default()
                };
                let list = list!(client, limit, request, list_security_checks, checks);
                let mut table = Table::new(&["id", "checklist", "target", "state", "failed", "started"]);
                for c in &list {
                    table.row(vec![
                        c.id.clone(),
                        format!("{} v{}", c.checklist_name, c.checklist_version),
                        shown_target(c.target.as_ref()),
                        label(Some(c.state().as_str_name()), "SECURITY_CHECK_STATE_"),
                        c.failed_count.to_string(),
                        time(c.start_time.as_ref()),
                    ]);
                }
                return table.print(json);
            }
            Checks::Show { check_id } => Some(Self::get(client, &check_id).await?),
        };
        print_check(&shown.unwrap_or_default(), json)
    }
}

impl Findings {
    async fn get(client: &mut Client, id: &str) -> Result<apb::HiddenDanger, BoxError> {
        let r = call!(client, apb::GetHiddenDangerRequest { hidden_danger_id: id.to_owned() }, get_hidden_danger);
        Ok(r.hidden_danger.unwrap_or_default())
    }

    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let shown = match self {
            Findings::List { department, overdue, limit } => {
                let request = apb::ListHiddenDangersRequest {
                    department_id: department.unwrap_or_default(),
                    overdue_only: overdue,
                    ..Default::default()
                };
                let list = list!(client, limit, request, list_hidden_dangers, hidden_dangers);
                let mut table = Table::new(&["id", "item", "severity", "owner_user_id", "due_date", "state"]);
                for d in &list {
                    table.row(vec![
                        d.id.clone(),
                        d.item_code.clone(),
                        label(Some(d.severity().as_str_name()), "HIDDEN_DANGER_SEVERITY_"),
                        d.owner_user_id.clone(),
                        d.due_date.clone(),
                        danger_state(d),
                    ]);
                }
                return table.print(json);
            }
            Findings::Show { hidden_danger_id } => Some(Self::get(client, &hidden_danger_id).await?),
            Findings::SubmitFix { hidden_danger_id, evidence } => {
                let etag = Self::get(client, &hidden_danger_id).await?.etag;
                let request =
                    apb::SubmitHiddenDangerFixRequest { request_id: request_id(), hidden_danger_id, evidence, etag };
                call!(client, request, submit_hidden_danger_fix).hidden_danger
            }
            Findings::Verify { hidden_danger_id, accept, return_it: _, note } => {
                let etag = Self::get(client, &hidden_danger_id).await?.etag;
                let request = apb::VerifyHiddenDangerFixRequest {
                    request_id: request_id(),
                    hidden_danger_id,
                    accepted: accept,
                    note,
                    etag,
                };
                call!(client, request, verify_hidden_danger_fix).hidden_danger
            }
        };
        print_danger(&shown.unwrap_or_default(), json)
    }
}
