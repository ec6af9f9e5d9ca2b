//! Public supervision (R8.2.1, R8.2.2): feedback from the public about the accounts,
//! recorded and triaged by the office, answered and closed by the department.

use clap::{Subcommand, ValueEnum};
use govmedia_proto::audit::v1 as apb;
use govmedia_proto::audit::v1::public_feedback_service_client::PublicFeedbackServiceClient;

use super::BoxError;
use super::output::{Table, label, print_record, time};
use super::session::{Client, authorized, request_id};

/// Public feedback.
#[derive(Debug, Subcommand)]
pub enum Feedback {
    /// Record feedback as received (bureau office).
    Record {
        /// How it arrived.
        #[arg(long, value_enum)]
        channel: Channel,
        /// The account it is about.
        #[arg(long)]
        account: Option<String>,
        /// The comment marked as a complaint, for that channel.
        #[arg(long, default_value = "")]
        comment: String,
        /// A short subject.
        #[arg(long)]
        subject: String,
        /// What the person said.
        #[arg(long)]
        content: String,
        /// The person's name as given.
        #[arg(long, default_value = "")]
        name: String,
        /// A phone number or e-mail address to answer.
        #[arg(long, default_value = "")]
        contact: String,
    },
    /// Feedback in the order received. Without --department: the whole bureau's.
    List {
        /// Only this department's.
        #[arg(long)]
        department: Option<String>,
        /// Only in this state.
        #[arg(long, value_enum)]
        state: Option<State>,
        /// Only not answered by the deadline.
        #[arg(long)]
        overdue: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// One item (the contact in full to the department answering it).
    Show {
        /// The feedback's id.
        public_feedback_id: String,
    },
    /// Give it to the responsible department (bureau office).
    Triage {
        /// The feedback's id.
        public_feedback_id: String,
        /// The responsible department.
        #[arg(long)]
        department: String,
        /// Working days to answer.
        #[arg(long, default_value_t = 10)]
        working_days: u32,
    },
    /// Record the answer given to the person (the department).
    Answer {
        /// The feedback's id.
        public_feedback_id: String,
        /// What the person was told.
        #[arg(long)]
        answer: String,
        /// How (phone call, letter, e-mail, platform message).
        #[arg(long = "via")]
        channel: String,
    },
    /// Close it with the adjustments it led to, or why none was needed (the department).
    Close {
        /// The feedback's id.
        public_feedback_id: String,
        /// A correction draft it led to.
        #[arg(long)]
        correction_draft: Vec<String>,
        /// A rectification order it led to.
        #[arg(long)]
        rectification: Vec<String>,
        /// A moderation rule it changed.
        #[arg(long)]
        moderation_rule: Vec<String>,
        /// Why no adjustment was needed.
        #[arg(long, default_value = "")]
        no_adjustment_reason: String,
    },
}

/// How feedback arrived.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Channel {
    /// The hotline.
    Hotline,
    /// A letter.
    Letter,
    /// E-mail.
    Email,
    /// A platform's report.
    PlatformReport,
    /// A comment marked as a complaint.
    CommentComplaint,
    /// In person.
    InPerson,
}

impl From<Channel> for apb::FeedbackChannel {
    fn from(c: Channel) -> Self {
        match c {
            Channel::Hotline => Self::Hotline,
            Channel::Letter => Self::Letter,
            Channel::Email => Self::Email,
            Channel::PlatformReport => Self::PlatformReport,
            Channel::CommentComplaint => Self::CommentComplaint,
            Channel::InPerson => Self::InPerson,
        }
    }
}

/// Where feedback stands.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum State {
    /// Recorded.
    Received,
    /// With a department.
    Triaged,
    /// Answered.
    Answered,
    /// Closed.
    Closed,
}

impl From<State> for apb::PublicFeedbackState {
    fn from(s: State) -> Self {
        match s {
            State::Received => Self::Received,
            State::Triaged => Self::Triaged,
            State::Answered => Self::Answered,
            State::Closed => Self::Closed,
        }
    }
}

fn state(f: &apb::PublicFeedback) -> String {
    let s = label(Some(f.state().as_str_name()), "PUBLIC_FEEDBACK_STATE_");
    if f.overdue { format!("{s} (OVERDUE)") } else { s }
}

fn print_feedback(f: &apb::PublicFeedback, json: bool) -> Result<(), BoxError> {
    let adjustments: Vec<String> = f
        .adjustments
        .iter()
        .map(|a| format!("{} {}", label(Some(a.kind().as_str_name()), "ADJUSTMENT_KIND_"), a.id))
        .collect();
    print_record(
        &[
            ("id", f.id.clone()),
            ("state", state(f)),
            ("channel", label(Some(f.channel().as_str_name()), "FEEDBACK_CHANNEL_")),
            ("received", time(f.receive_time.as_ref())),
            ("platform_account_id", f.platform_account_id.clone()),
            ("subject", f.subject.clone()),
            ("content", f.content.clone()),
            ("contact_name", f.contact_name.clone()),
            ("contact", f.contact.clone()),
            ("department_id", f.department_id.clone()),
            ("due", time(f.due_time.as_ref())),
            ("answer", f.answer.clone()),
            ("answered", format!("{} via {} by {}", time(f.answer_time.as_ref()), f.answer_channel, f.answered_by)),
            ("adjustments", adjustments.join(", ")),
            ("no_adjustment_reason", f.no_adjustment_reason.clone()),
            ("etag", f.etag.clone()),
        ],
        json,
    )
}

macro_rules! call {
    ($client:expr, $request:expr, $method:ident) => {{
        let request = $request;
        $client
            .call(|channel, token| {
                let request = request.clone();
                async move { PublicFeedbackServiceClient::new(channel).$method(authorized(request, &token)).await }
            })
            .await?
    }};
}

impl Feedback {
    async fn get(client: &mut Client, id: &str) -> Result<apb::PublicFeedback, BoxError> {
        let r = call!(client, apb::GetPublicFeedbackRequest { public_feedback_id: id.to_owned() }, get_public_feedback);
        Ok(r.public_feedback.unwrap_or_default())
    }

    pub(super) async fn run(self, client: &mut Client, json: bool) -> Result<(), BoxError> {
        let shown = match self {
            Feedback::Record { channel, account, comment, subject, content, name, contact } => {
                let request = apb::RecordPublicFeedbackRequest {
                    request_id: request_id(),
                    public_feedback: Some(apb::PublicFeedback {
                        channel: apb::FeedbackChannel::from(channel) as i32,
                        platform_account_id: account.unwrap_or_default(),
                        comment_id: comment,
                        subject,
                        content,
                        contact_name: name,
                        contact,
                        ..Default::default()
                    }),
                };
                call!(client, request, record_public_feedback).public_feedback
            }
            Feedback::List { department, state: wanted, overdue, limit } => {
                let wanted = wanted.map(|s| apb::PublicFeedbackState::from(s) as i32).unwrap_or_default();
                let department = department.unwrap_or_default();
                let list = client
                    .list(
                        limit,
                        |channel, token, page_token, page_size| {
                            let request = apb::ListPublicFeedbackRequest {
                                page_size,
                                page_token,
                                department_id: department.clone(),
                                state: wanted,
                                overdue_only: overdue,
                            };
                            async move {
                                PublicFeedbackServiceClient::new(channel)
                                    .list_public_feedback(authorized(request, &token))
                                    .await
                            }
                        },
                        |r: apb::ListPublicFeedbackResponse| (r.public_feedback, r.next_page_token),
                    )
                    .await?;
                let mut table = Table::new(&["id", "received", "state", "subject", "department_id", "contact"]);
                for f in &list {
                    table.row(vec![
                        f.id.clone(),
                        time(f.receive_time.as_ref()),
                        state(f),
                        f.subject.clone(),
                        f.department_id.clone(),
                        f.contact.clone(),
                    ]);
                }
                return table.print(json);
            }
            Feedback::Show { public_feedback_id } => Some(Self::get(client, &public_feedback_id).await?),
            Feedback::Triage { public_feedback_id, department, working_days } => {
                let etag = Self::get(client, &public_feedback_id).await?.etag;
                let request = apb::TriagePublicFeedbackRequest {
                    request_id: request_id(),
                    public_feedback_id,
                    department_id: department,
                    working_days,
                    etag,
                };
                call!(client, request, triage_public_feedback).public_feedback
            }
            Feedback::Answer { public_feedback_id, answer, channel } => {
                let etag = Self::get(client, &public_feedback_id).await?.etag;
                let request = apb::AnswerPublicFeedbackRequest {
                    request_id: request_id(),
                    public_feedback_id,
                    answer,
                    answer_channel: channel,
                    etag,
                };
                call!(client, request, answer_public_feedback).public_feedback
            }
            Feedback::Close {
                public_feedback_id,
                correction_draft,
                rectification,
                moderation_rule,
                no_adjustment_reason,
            } => {
                let etag = Self::get(client, &public_feedback_id).await?.etag;
                let adjustment = |kind: apb::AdjustmentKind, id: String| apb::Adjustment {
                    kind: kind as i32,
                    id,
                    note: String::new(),
                };
                let adjustments = correction_draft
                    .into_iter()
                    .map(|id| adjustment(apb::AdjustmentKind::CorrectionDraft, id))
                    .chain(rectification.into_iter().map(|id| adjustment(apb::AdjustmentKind::Rectification, id)))
                    .chain(moderation_rule.into_iter().map(|id| adjustment(apb::AdjustmentKind::ModerationRule, id)))
                    .collect();
                let request = apb::ClosePublicFeedbackRequest {
                    request_id: request_id(),
                    public_feedback_id,
                    adjustments,
                    no_adjustment_reason,
                    etag,
                };
                call!(client, request, close_public_feedback).public_feedback
            }
        };
        print_feedback(&shown.unwrap_or_default(), json)
    }
}
