//! Drafts through the three-stage review (R3.2), proofreading (R3.3.2), scheduling and
//! publications (R3.3): what editors, reviewers, leaders and publishers do each day.

use clap::{Args, Subcommand};
use govmedia_proto::content::v1 as pb;
use govmedia_proto::content::v1::draft_service_client::DraftServiceClient;
use govmedia_proto::content::v1::publication_service_client::PublicationServiceClient;

use super::BoxError;
use super::output::{Table, label, parse_time, print_record, time};
use super::session::{Client, authorized, request_id};

/// A review criterion of R3.2.3, as typed on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Criterion {
    /// Legality.
    Legality,
    /// Truthfulness.
    Truthfulness,
    /// Objectivity.
    Objectivity,
    /// Accuracy.
    Accuracy,
    /// Standard wording.
    Standardisation,
}

/// The five criteria, each met unless named in `not_met`.
fn criteria(not_met: &[Criterion]) -> pb::ReviewCriteria {
    let result = |c| {
        if not_met.contains(&c) { pb::CriterionResult::NotMet as i32 } else { pb::CriterionResult::Met as i32 }
    };
    pb::ReviewCriteria {
        legality: result(Criterion::Legality),
        truthfulness: result(Criterion::Truthfulness),
        objectivity: result(Criterion::Objectivity),
        accuracy: result(Criterion::Accuracy),
        standardisation: result(Criterion::Standardisation),
    }
}

/// A review decision's common options.
#[derive(Debug, Args)]
pub struct Decision {
    /// The draft's id.
    draft_id: String,
    /// A criterion of R3.2.3 the text does not meet (repeat for several); the others
    /// count as met.
    #[arg(long, value_enum)]
    not_met: Vec<Criterion>,
}

/// Drafts.
#[derive(Debug, Subcommand)]
pub enum Drafts {
    /// List drafts.
    List {
        /// Only those in this state (drafting, in_review, changes_requested, rejected, approved).
        #[arg(long)]
        state: Option<String>,
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Create a draft from a text file: its first line is the title (a leading `#` is
    /// dropped), the rest the body; or the whole file is the body with --title.
    Create {
        /// The file.
        #[arg(long)]
        file: std::path::PathBuf,
        /// The department the draft belongs to.
        #[arg(long)]
        department: String,
        /// A target platform account (repeat for several).
        #[arg(long = "account", required = true)]
        accounts: Vec<String>,
        /// The title, when the file holds only the body.
        #[arg(long)]
        title: Option<String>,
        /// The plan it realises.
        #[arg(long)]
        plan: Option<String>,
        /// The publication this draft corrects (R3.3.3): reviewed in full like any draft.
        #[arg(long)]
        corrects: Option<String>,
    },
    /// One draft in full: its state, the review so far, screening findings.
    Show {
        /// The draft's id.
        draft_id: String,
    },
    /// Submit for review: screening and format checks run first (R3.2).
    Submit {
        /// The draft's id.
        draft_id: String,
    },
    /// The drafts waiting for my review.
    Queue {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Approve the draft's current stage (R3.2.2) with the five criteria (R3.2.3).
    Approve {
        /// The draft and the criteria.
        #[command(flatten)]
        decision: Decision,
        /// The reviewer's comment.
        #[arg(long)]
        comment: String,
    },
    /// Reject the draft at its current stage.
    Reject {
        /// The draft and the criteria.
        #[command(flatten)]
        decision: Decision,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Send the draft back to its author for changes.
    RequestChanges {
        /// The draft and the criteria.
        #[command(flatten)]
        decision: Decision,
        /// What to change.
        #[arg(long)]
        reason: String,
    },
    /// Sign off a proofreading pass of the approved version (R3.3.2).
    Proofread {
        /// The draft's id.
        draft_id: String,
        /// A note.
        #[arg(long, default_value = "")]
        note: String,
    },
}

async fn get_draft(client: &mut Client, draft_id: &str) -> Result<pb::Draft, BoxError> {
    client
        .call(|channel, token| {
            let request = pb::GetDraftRequest { draft_id: draft_id.to_owned() };
            async move { DraftServiceClient::new(channel).get_draft(authorized(request, &token)).await }
        })
        .await?
        .draft
        .ok_or_else(|| "content answered without the draft".into())
}

/// Reads a draft file into (title, body).
fn read_draft(file: &std::path::Path, title: Option<String>) -> Result<(String, String), BoxError> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    parse_draft(&text, title).map_err(|e| format!("{}: {e}", file.display()).into())
}

/// The draft file format: the first line that is not blank is the title (leading `#`s
/// dropped, as a Markdown heading), the rest the body; or, with `title` given, the whole
/// text is the body. Both trimmed; a file without a title line and a body is refused.
pub fn parse_draft(text: &str, title: Option<String>) -> Result<(String, String), String> {
    if let Some(title) = title {
        return Ok((title, text.trim().to_owned()));
    }
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let title = lines.next().map(|l| l.trim_start_matches('#').trim().to_owned()).unwrap_or_default();
    let body = lines.collect::<Vec<_>>().join("\n").trim().to_owned();
    if title.is_empty() || body.is_empty() {
        return Err("expected a title line and a body (or --title and a body)".to_owned());
    }
    Ok((title, body))
}

fn draft_rows(drafts: Vec<pb::Draft>) -> Table {
    let mut table = Table::new(&["id", "title", "state", "stage", "version", "author_user_id", "updated"]);
    for d in drafts {
        table.row(vec![
            d.id.clone(),
            d.content.as_ref().map(|c| c.title.clone()).unwrap_or_default(),
            label(Some(d.state().as_str_name()), "DRAFT_STATE_"),
            label(Some(d.review_stage().as_str_name()), "REVIEW_STAGE_"),
            d.current_version.to_string(),
            d.author_user_id.clone(),
            time(d.update_time.as_ref()),
        ]);
    }
    table
}

fn print_draft(d: &pb::Draft, json: bool) -> Result<(), BoxError> {
    let decisions = d
        .decisions
        .iter()
        .map(|x| {
            format!(
                "v{} {} {} by {}{}",
                x.version,
                label(Some(x.stage().as_str_name()), "REVIEW_STAGE_"),
                label(Some(x.outcome().as_str_name()), "REVIEW_OUTCOME_"),
                x.reviewer_user_id,
                if x.comment.is_empty() { String::new() } else { format!(": {}", x.comment) }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let findings = d
        .screening_findings
        .iter()
        .map(|f| {
            format!(
                "{} {} {:?} ({})",
                label(Some(f.severity().as_str_name()), "SCREENING_SEVERITY_"),
                label(Some(f.category().as_str_name()), "SCREENING_CATEGORY_"),
                f.matched_term,
                f.rule_id
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let proofread = d.proofreading_sign_offs.iter().filter(|p| p.version == d.current_version).count();
    print_record(
        &[
            ("id", d.id.clone()),
            ("title", d.content.as_ref().map(|c| c.title.clone()).unwrap_or_default()),
            ("state", label(Some(d.state().as_str_name()), "DRAFT_STATE_")),
            ("stage", label(Some(d.review_stage().as_str_name()), "REVIEW_STAGE_")),
            ("version", d.current_version.to_string()),
            ("department_id", d.department_id.clone()),
            ("author_user_id", d.author_user_id.clone()),
            ("target_platform_account_ids", d.target_platform_account_ids.join(", ")),
            ("decisions", decisions),
            ("proofreading", format!("{proofread} of {}", d.required_proofreading_count)),
            ("screening_findings", findings),
            ("updated", time(d.update_time.as_ref())),
        ],
        json,
    )
}

impl Drafts {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Drafts::List { state, department, limit } => {
                let state = match state {
                    Some(s) => pb::DraftState::from_str_name(&format!("DRAFT_STATE_{}", s.to_uppercase()))
                        .ok_or_else(|| format!("unknown draft state {s:?}"))?,
                    None => pb::DraftState::Unspecified,
                };
                let department = department.unwrap_or_default();
                let drafts =
                    client
                        .list(
                            limit,
                            |channel, token, page_token, page_size| {
                                let request = pb::ListDraftsRequest {
                                    page_size,
                                    page_token,
                                    department_id: department.clone(),
                                    state: state as i32,
                                    ..Default::default()
                                };
                                async move {
                                    DraftServiceClient::new(channel).list_drafts(authorized(request, &token)).await
                                }
                            },
                            |r: pb::ListDraftsResponse| (r.drafts, r.next_page_token),
                        )
                        .await?;
                draft_rows(drafts).print(json)
            }
            Drafts::Create { file, department, accounts, title, plan, corrects } => {
                let (title, body) = read_draft(&file, title)?;
                let request = pb::CreateDraftRequest {
                    request_id: request_id(),
                    department_id: department,
                    target_platform_account_ids: accounts,
                    plan_id: plan.unwrap_or_default(),
                    corrects_publication_id: corrects.unwrap_or_default(),
                    content: Some(pb::DraftContent { title, body, ..Default::default() }),
                };
                let draft = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move { DraftServiceClient::new(channel).create_draft(authorized(request, &token)).await }
                    })
                    .await?
                    .draft
                    .unwrap_or_default();
                print_draft(&draft, json)
            }
            Drafts::Show { draft_id } => print_draft(&get_draft(client, &draft_id).await?, json),
            Drafts::Submit { draft_id } => {
                let draft = get_draft(client, &draft_id).await?;
                let request = pb::SubmitDraftRequest { request_id: request_id(), draft_id, etag: draft.etag };
                let draft = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move { DraftServiceClient::new(channel).submit_draft(authorized(request, &token)).await }
                    })
                    .await?
                    .draft
                    .unwrap_or_default();
                print_draft(&draft, json)
            }
            Drafts::Queue { limit } => {
                let drafts = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = pb::ListReviewQueueRequest { page_size, page_token, ..Default::default() };
                            async move {
                                DraftServiceClient::new(channel).list_review_queue(authorized(request, &token)).await
                            }
                        },
                        |r: pb::ListReviewQueueResponse| (r.drafts, r.next_page_token),
                    )
                    .await?;
                draft_rows(drafts).print(json)
            }
            Drafts::Approve { decision, comment } => {
                let draft = get_draft(client, &decision.draft_id).await?;
                let request = pb::ApproveDraftRequest {
                    request_id: request_id(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    stage: draft.review_stage,
                    criteria: Some(criteria(&decision.not_met)),
                    comment,
                };
                let draft = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move { DraftServiceClient::new(channel).approve_draft(authorized(request, &token)).await }
                    })
                    .await?
                    .draft
                    .unwrap_or_default();
                print_draft(&draft, json)
            }
            Drafts::Reject { decision, reason } => {
                let draft = get_draft(client, &decision.draft_id).await?;
                let request = pb::RejectDraftRequest {
                    request_id: request_id(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    stage: draft.review_stage,
                    criteria: Some(criteria(&decision.not_met)),
                    reason,
                };
                let draft = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move { DraftServiceClient::new(channel).reject_draft(authorized(request, &token)).await }
                    })
                    .await?
                    .draft
                    .unwrap_or_default();
                print_draft(&draft, json)
            }
            Drafts::RequestChanges { decision, reason } => {
                let draft = get_draft(client, &decision.draft_id).await?;
                let request = pb::RequestDraftChangesRequest {
                    request_id: request_id(),
                    draft_id: draft.id.clone(),
                    version: draft.current_version,
                    stage: draft.review_stage,
                    criteria: Some(criteria(&decision.not_met)),
                    comment: reason,
                };
                let draft = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            DraftServiceClient::new(channel).request_draft_changes(authorized(request, &token)).await
                        }
                    })
                    .await?
                    .draft
                    .unwrap_or_default();
                print_draft(&draft, json)
            }
            Drafts::Proofread { draft_id, note } => {
                let draft = get_draft(client, &draft_id).await?;
                let request = pb::SignOffProofreadingRequest {
                    request_id: request_id(),
                    draft_id,
                    version: draft.current_version,
                    note,
                };
                let draft = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move {
                            DraftServiceClient::new(channel).sign_off_proofreading(authorized(request, &token)).await
                        }
                    })
                    .await?
                    .draft
                    .unwrap_or_default();
                print_draft(&draft, json)
            }
        }
    }
}

/// Scheduling.
#[derive(Debug, Args)]
pub struct Schedule {
    /// The approved, proofread draft.
    draft_id: String,
    /// The account to publish on.
    #[arg(long)]
    account: String,
    /// When (RFC 3339, for example 2026-12-01T09:00:00+08:00); now if omitted.
    #[arg(long, value_parser = parse_time)]
    at: Option<prost_types::Timestamp>,
}

impl Schedule {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let request = pb::SchedulePublicationRequest {
            request_id: request_id(),
            draft_id: self.draft_id,
            platform_account_id: self.account,
            scheduled_time: self.at,
        };
        let publication =
            client
                .call(|channel, token| {
                    let request = request.clone();
                    async move {
                        PublicationServiceClient::new(channel).schedule_publication(authorized(request, &token)).await
                    }
                })
                .await?
                .publication
                .unwrap_or_default();
        print_publication(&publication, json)
    }
}

/// Publications.
#[derive(Debug, Subcommand)]
pub enum Publications {
    /// List publications, newest first. Without --account: every account the caller's
    /// roles reach.
    List {
        /// Only this account's.
        #[arg(long)]
        account: Option<String>,
        /// Only those in this state (scheduled, publishing, published, failed, expired, ...).
        #[arg(long)]
        state: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One publication in full, with who approved and proofread it.
    Show {
        /// The publication's id.
        publication_id: String,
    },
    /// Screen published content again now with the lexicon's current version (after
    /// the lexicon gained entries); what is found goes to the audit log.
    Rescreen,
}

fn print_publication(p: &pb::Publication, json: bool) -> Result<(), BoxError> {
    print_record(
        &[
            ("id", p.id.clone()),
            ("draft_id", p.draft_id.clone()),
            ("draft_version", p.draft_version.to_string()),
            ("platform_account_id", p.platform_account_id.clone()),
            ("state", label(Some(p.state().as_str_name()), "PUBLICATION_STATE_")),
            ("scheduled", time(p.scheduled_time.as_ref())),
            ("published", time(p.publish_time.as_ref())),
            ("connector", p.connector.clone()),
            ("url", p.url.clone()),
            ("attempts", p.attempt_count.to_string()),
            ("last_error", p.last_error.clone()),
            ("approvers", p.approver_user_ids.join(", ")),
            ("proofreaders", p.proofreader_user_ids.join(", ")),
        ],
        json,
    )
}

/// Publications of one account (or all with `""`), newest first.
async fn publications(
    client: &mut Client,
    account: &str,
    state: pb::PublicationState,
    limit: usize,
) -> Result<Vec<pb::Publication>, BoxError> {
    client
        .list(
            limit,
            |channel, token, page_token, page_size| {
                let request = pb::ListPublicationsRequest {
                    page_size,
                    page_token,
                    platform_account_id: account.to_owned(),
                    state: state as i32,
                    ..Default::default()
                };
                async move { PublicationServiceClient::new(channel).list_publications(authorized(request, &token)).await }
            },
            |r: pb::ListPublicationsResponse| (r.publications, r.next_page_token),
        )
        .await
}

impl Publications {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Publications::List { account, state, limit } => {
                let state = match state {
                    Some(s) => pb::PublicationState::from_str_name(&format!("PUBLICATION_STATE_{}", s.to_uppercase()))
                        .ok_or_else(|| format!("unknown publication state {s:?}"))?,
                    None => pb::PublicationState::Unspecified,
                };
                let publications = super::accounts::per_account(
                    client,
                    account,
                    limit,
                    async |client, account| publications(client, account, state, limit).await,
                    |p| std::cmp::Reverse(p.scheduled_time.map(|t| (t.seconds, t.nanos))),
                )
                .await?;
                let mut table =
                    Table::new(&["id", "draft_id", "platform_account_id", "state", "scheduled", "published", "url"]);
                for p in publications {
                    table.row(vec![
                        p.id.clone(),
                        p.draft_id.clone(),
                        p.platform_account_id.clone(),
                        label(Some(p.state().as_str_name()), "PUBLICATION_STATE_"),
                        time(p.scheduled_time.as_ref()),
                        time(p.publish_time.as_ref()),
                        p.url.clone(),
                    ]);
                }
                table.print(json)
            }
            Publications::Show { publication_id } => {
                let publication = client
                    .call(|channel, token| {
                        let request = pb::GetPublicationRequest { publication_id: publication_id.clone() };
                        async move {
                            PublicationServiceClient::new(channel).get_publication(authorized(request, &token)).await
                        }
                    })
                    .await?
                    .publication
                    .unwrap_or_default();
                print_publication(&publication, json)
            }
            Publications::Rescreen => {
                let done = client
                    .call(|channel, token| {
                        let request = pb::RescreenPublicationsRequest { request_id: super::session::request_id() };
                        async move {
                            PublicationServiceClient::new(channel)
                                .rescreen_publications(authorized(request, &token))
                                .await
                        }
                    })
                    .await?;
                print_record(
                    &[
                        ("lexicon_version", done.lexicon_version.to_string()),
                        ("screened", done.screened.to_string()),
                        ("found", done.found.to_string()),
                    ],
                    json,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_draft_file_gives_its_title_and_body() {
        let folder = tempfile::tempdir().expect("dir");
        let file = folder.path().join("notice.md");
        std::fs::write(&file, "\n# 汛期安全提示\n\n主汛期已至。\n请关注预警。\n").expect("written");
        assert_eq!(
            read_draft(&file, None).expect("read"),
            ("汛期安全提示".to_owned(), "主汛期已至。\n请关注预警。".to_owned())
        );
        assert_eq!(
            read_draft(&file, Some("标题".into())).expect("read"),
            ("标题".to_owned(), "# 汛期安全提示\n\n主汛期已至。\n请关注预警。".to_owned())
        );
        std::fs::write(&file, "只有一行").expect("written");
        assert!(read_draft(&file, None).is_err(), "a title without a body is refused");
        assert!(read_draft(&folder.path().join("missing.md"), None).is_err());
    }
}
