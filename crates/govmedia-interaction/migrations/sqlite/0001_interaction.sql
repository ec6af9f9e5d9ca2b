-- The interaction service's tables (R4). Ids are UUIDv7 text on both backends; lists
-- of ids are comma-joined, findings and structured values JSON text.

CREATE TABLE interaction_settings (
    platform_account_id      TEXT PRIMARY KEY,
    reply_approval_required  INTEGER NOT NULL,
    response_targets         TEXT NOT NULL,
    updated_at               TEXT NOT NULL,
    version                  INTEGER NOT NULL
);

CREATE TABLE moderation_rules (
    id                   TEXT PRIMARY KEY,
    name                 TEXT NOT NULL,
    priority             INTEGER NOT NULL,
    -- '' for a rule that applies to every account.
    platform_account_id  TEXT NOT NULL,
    condition            TEXT NOT NULL,
    actions              TEXT NOT NULL,
    enabled              INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    version              INTEGER NOT NULL
);
CREATE INDEX moderation_rules_order ON moderation_rules (priority, created_at, id);

CREATE TABLE comments (
    id                          TEXT PRIMARY KEY,
    platform_account_id         TEXT NOT NULL,
    publication_id              TEXT NOT NULL,
    platform_post_id            TEXT NOT NULL,
    platform_comment_id         TEXT NOT NULL,
    parent_platform_comment_id  TEXT NOT NULL,
    author_platform_id          TEXT NOT NULL,
    author_name                 TEXT NOT NULL,
    text                        TEXT NOT NULL,
    posted_at                   TEXT,
    ingested_at                 TEXT NOT NULL,
    -- When the response clock started: the platform's post time, never after ingest.
    arrived_at                  TEXT NOT NULL,
    status                      TEXT NOT NULL,
    screening_findings          TEXT NOT NULL,
    screening_lexicon           INTEGER NOT NULL,
    assignee_user_id            TEXT NOT NULL,
    tags                        TEXT NOT NULL,
    response_target_minutes     INTEGER NOT NULL,
    response_due_at             TEXT NOT NULL,
    first_response_at           TEXT,
    first_responder_user_id     TEXT NOT NULL,
    version                     INTEGER NOT NULL,
    -- Ingest is idempotent on the platform's comment id (R4.1.3).
    UNIQUE (platform_account_id, platform_comment_id)
);
CREATE INDEX comments_queue ON comments (arrived_at, id);
CREATE INDEX comments_due ON comments (response_due_at) WHERE first_response_at IS NULL;

CREATE TABLE comment_actions (
    comment_id          TEXT NOT NULL REFERENCES comments (id),
    seq                 INTEGER NOT NULL,
    action              TEXT NOT NULL,
    reason              TEXT NOT NULL,
    actor_user_id       TEXT NOT NULL,
    moderation_rule_id  TEXT NOT NULL,
    channel             TEXT NOT NULL,
    evidence            TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    PRIMARY KEY (comment_id, seq)
);

CREATE TABLE replies (
    id                  TEXT PRIMARY KEY,
    comment_id          TEXT NOT NULL REFERENCES comments (id),
    text                TEXT NOT NULL,
    author_user_id      TEXT NOT NULL,
    state               TEXT NOT NULL,
    screening_findings  TEXT NOT NULL,
    approver_user_id    TEXT NOT NULL,
    reject_reason       TEXT NOT NULL,
    platform_reply_id   TEXT NOT NULL,
    channel             TEXT NOT NULL,
    evidence            TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    posted_at           TEXT,
    version             INTEGER NOT NULL
);
CREATE INDEX replies_comment ON replies (comment_id, created_at);

CREATE TABLE conversations (
    id                         TEXT PRIMARY KEY,
    platform_account_id        TEXT NOT NULL,
    correspondent_platform_id  TEXT NOT NULL,
    correspondent_name         TEXT NOT NULL,
    state                      TEXT NOT NULL,
    assignee_user_id           TEXT NOT NULL,
    important                  INTEGER NOT NULL,
    important_note             TEXT NOT NULL,
    marked_important_by        TEXT NOT NULL,
    message_count              INTEGER NOT NULL,
    last_message_at            TEXT NOT NULL,
    -- The oldest inbound message not yet answered, and when its answer is due.
    awaiting_since             TEXT,
    response_due_at            TEXT,
    response_target_minutes    INTEGER NOT NULL,
    first_inbound_at           TEXT NOT NULL,
    first_response_at          TEXT,
    first_responder_user_id    TEXT NOT NULL,
    first_response_due_at      TEXT NOT NULL,
    created_at                 TEXT NOT NULL,
    version                    INTEGER NOT NULL
);
-- One open conversation per account and correspondent; a message after closing starts
-- a new one.
CREATE UNIQUE INDEX conversations_open ON conversations (platform_account_id, correspondent_platform_id)
    WHERE state <> 'closed';
CREATE INDEX conversations_assignee ON conversations (assignee_user_id, state);

CREATE TABLE private_messages (
    id                   TEXT PRIMARY KEY,
    conversation_id      TEXT NOT NULL REFERENCES conversations (id),
    platform_account_id  TEXT NOT NULL,
    direction            TEXT NOT NULL,
    platform_message_id  TEXT NOT NULL,
    text                 TEXT NOT NULL,
    author_user_id       TEXT NOT NULL,
    screening_findings   TEXT NOT NULL,
    sent_at              TEXT NOT NULL,
    seq                  INTEGER NOT NULL
);
-- Ingest is idempotent on the platform's message id (R4.2.1).
CREATE UNIQUE INDEX private_messages_platform ON private_messages (platform_account_id, platform_message_id)
    WHERE platform_message_id <> '';
CREATE INDEX private_messages_conversation ON private_messages (conversation_id, seq);

CREATE TABLE referrals (
    id                   TEXT PRIMARY KEY,
    conversation_id      TEXT NOT NULL REFERENCES conversations (id),
    platform_account_id  TEXT NOT NULL,
    department_id        TEXT NOT NULL,
    summary              TEXT NOT NULL,
    state                TEXT NOT NULL,
    due_at               TEXT NOT NULL,
    referred_by          TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    acknowledged_by      TEXT NOT NULL,
    acknowledged_at      TEXT,
    outcome              TEXT NOT NULL,
    outcome_recorded_by  TEXT NOT NULL,
    outcome_at           TEXT,
    closed_at            TEXT,
    version              INTEGER NOT NULL
);
CREATE INDEX referrals_due ON referrals (due_at, id);
CREATE INDEX referrals_conversation ON referrals (conversation_id);

CREATE TABLE follower_snapshots (
    platform_account_id  TEXT NOT NULL,
    -- The calendar day, YYYY-MM-DD.
    snapshot_date        TEXT NOT NULL,
    follower_count       INTEGER NOT NULL,
    new_followers        INTEGER NOT NULL,
    lost_followers       INTEGER NOT NULL,
    breakdown            TEXT NOT NULL,
    recorded_at          TEXT NOT NULL,
    PRIMARY KEY (platform_account_id, snapshot_date)
);

CREATE TABLE campaigns (
    id                    TEXT PRIMARY KEY,
    name                  TEXT NOT NULL,
    description           TEXT NOT NULL,
    department_id         TEXT NOT NULL,
    platform_account_ids  TEXT NOT NULL,
    period_start          TEXT NOT NULL,
    period_end            TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    updated_at            TEXT NOT NULL,
    version               INTEGER NOT NULL
);
CREATE INDEX campaigns_start ON campaigns (period_start, id);

CREATE TABLE campaign_metrics (
    campaign_id          TEXT NOT NULL REFERENCES campaigns (id),
    platform_account_id  TEXT NOT NULL,
    metric_date          TEXT NOT NULL,
    participant_count    INTEGER NOT NULL,
    engagement_count     INTEGER NOT NULL,
    recorded_at          TEXT NOT NULL,
    PRIMARY KEY (campaign_id, platform_account_id, metric_date)
);
