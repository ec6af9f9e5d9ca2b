//! The comments queue (R4.1): what waits for a moderator, replies, and hiding what must
//! not stay visible.

use clap::Subcommand;
use govmedia_proto::interaction::v1 as xpb;
use govmedia_proto::interaction::v1::comment_service_client::CommentServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Comments.
#[derive(Debug, Subcommand)]
pub enum Comments {
    /// What waits: open comments and those needing review, soonest due first. Without
    /// --account: every account the caller's roles reach.
    Queue {
        /// Only this account's.
        #[arg(long)]
        account: Option<String>,
        /// Only those past their reply deadline.
        #[arg(long)]
        overdue: bool,
        /// Only those assigned to this user.
        #[arg(long)]
        assignee: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One comment in full.
    Show {
        /// The comment's id.
        comment_id: String,
    },
    /// Reply to a comment; the reply is screened first.
    Reply {
        /// The comment's id.
        comment_id: String,
        /// The reply.
        #[arg(long)]
        text: String,
    },
    /// Hide a comment (on the platform too, where the connector can).
    Hide {
        /// The comment's id.
        comment_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

fn print_comment(c: &xpb::Comment, json: bool) -> Result<(), BoxError> {
    let findings = c
        .screening_findings
        .iter()
        .map(|f| {
            format!(
                "{} {:?} ({})",
                label(Some(f.category().as_str_name()), "SCREENING_CATEGORY_"),
                f.matched_term,
                f.rule_id
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    print_record(
        &[
            ("id", c.id.clone()),
            ("platform_account_id", c.platform_account_id.clone()),
            ("author", c.author_name.clone()),
            ("text", c.text.clone()),
            ("status", label(Some(c.status().as_str_name()), "COMMENT_STATUS_")),
            ("assignee_user_id", c.assignee_user_id.clone()),
            ("screening_findings", findings),
            ("replies", c.replies.iter().map(|r| r.text.clone()).collect::<Vec<_>>().join(" | ")),
            ("response_due", time(c.response_due_time.as_ref())),
            ("overdue", c.overdue.to_string()),
        ],
        json,
    )
}

/// Open comments and those needing review, of one account (or all with `""`).
async fn queue(
    client: &mut Client,
    account: &str,
    assignee: &str,
    overdue: bool,
    limit: usize,
) -> Result<Vec<xpb::Comment>, BoxError> {
    client
        .list(
            limit,
            |channel, token, page_token, page_size| {
                let request = xpb::ListCommentsRequest {
                    page_size,
                    page_token,
                    statuses: vec![xpb::CommentStatus::Open as i32, xpb::CommentStatus::NeedsReview as i32],
                    platform_account_id: account.to_owned(),
                    assignee_user_id: assignee.to_owned(),
                    overdue_only: overdue,
                    ..Default::default()
                };
                async move { CommentServiceClient::new(channel).list_comments(authorized(request, &token)).await }
            },
            |r: xpb::ListCommentsResponse| (r.comments, r.next_page_token),
        )
        .await
}

impl Comments {
    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        match self {
            Comments::Queue { account, overdue, assignee, limit } => {
                let assignee = assignee.unwrap_or_default();
                let comments = super::accounts::per_account(
                    client,
                    account,
                    limit,
                    async |client, account| queue(client, account, &assignee, overdue, limit).await,
                    |c| c.response_due_time.map(|t| (t.seconds, t.nanos)),
                )
                .await?;
                let mut table = Table::new(&["id", "status", "author", "text", "due", "overdue", "assignee_user_id"]);
                for c in comments {
                    table.row(vec![
                        c.id.clone(),
                        label(Some(c.status().as_str_name()), "COMMENT_STATUS_"),
                        c.author_name.clone(),
                        c.text.clone(),
                        time(c.response_due_time.as_ref()),
                        c.overdue.to_string(),
                        c.assignee_user_id.clone(),
                    ]);
                }
                table.print(json)
            }
            Comments::Show { comment_id } => {
                let comment = client
                    .call(|channel, token| {
                        let request = xpb::GetCommentRequest { comment_id: comment_id.clone() };
                        async move { CommentServiceClient::new(channel).get_comment(authorized(request, &token)).await }
                    })
                    .await?
                    .comment
                    .unwrap_or_default();
                print_comment(&comment, json)
            }
            Comments::Reply { comment_id, text } => {
                let request = xpb::ReplyToCommentRequest { request_id: request_id(), comment_id, text };
                let reply =
                    client
                        .call(|channel, token| {
                            let request = request.clone();
                            async move {
                                CommentServiceClient::new(channel).reply_to_comment(authorized(request, &token)).await
                            }
                        })
                        .await?
                        .reply
                        .unwrap_or_default();
                print_record(
                    &[
                        ("id", reply.id.clone()),
                        ("comment_id", reply.comment_id.clone()),
                        ("state", label(Some(reply.state().as_str_name()), "REPLY_STATE_")),
                        ("text", reply.text.clone()),
                    ],
                    json,
                )
            }
            Comments::Hide { comment_id, reason } => {
                let request =
                    xpb::HideCommentRequest { request_id: request_id(), comment_id, reason, ..Default::default() };
                let comment = client
                    .call(|channel, token| {
                        let request = request.clone();
                        async move { CommentServiceClient::new(channel).hide_comment(authorized(request, &token)).await }
                    })
                    .await?
                    .comment
                    .unwrap_or_default();
                print_comment(&comment, json)
            }
        }
    }
}
