-- The content workflow's tables (R3, R5). Ids are UUIDv7 text on both backends.

CREATE TABLE plans (
    id                TEXT PRIMARY KEY,
    department_id     TEXT NOT NULL,
    topic             TEXT NOT NULL,
    reason            TEXT NOT NULL,
    reason_detail     TEXT NOT NULL,
    target_accounts   TEXT NOT NULL,
    window_start      TIMESTAMPTZ,
    window_end        TIMESTAMPTZ,
    owner_user_id     TEXT NOT NULL,
    state             TEXT NOT NULL,
    cancel_reason     TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    version           BIGINT NOT NULL
);
CREATE INDEX plans_department_window ON plans (department_id, window_start);

CREATE TABLE drafts (
    id                       TEXT PRIMARY KEY,
    department_id            TEXT NOT NULL,
    author_user_id           TEXT NOT NULL,
    target_accounts          TEXT NOT NULL,
    plan_id                  TEXT REFERENCES plans (id),
    corrects_publication_id  TEXT,
    state                    TEXT NOT NULL,
    review_stage             TEXT NOT NULL,
    current_version          BIGINT NOT NULL,
    screening_findings       TEXT NOT NULL,
    screening_lexicon        BIGINT NOT NULL,
    submitted_at             TIMESTAMPTZ,
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL,
    version                  BIGINT NOT NULL
);
CREATE INDEX drafts_department_state ON drafts (department_id, state);

CREATE TABLE draft_versions (
    draft_id        TEXT NOT NULL REFERENCES drafts (id),
    version         BIGINT NOT NULL,
    content         TEXT NOT NULL,
    editor_user_id  TEXT NOT NULL,
    change_note     TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (draft_id, version)
);

CREATE TABLE review_decisions (
    id                TEXT PRIMARY KEY,
    draft_id          TEXT NOT NULL REFERENCES drafts (id),
    draft_version     BIGINT NOT NULL,
    stage             TEXT NOT NULL,
    reviewer_user_id  TEXT NOT NULL,
    outcome           TEXT NOT NULL,
    criteria          TEXT NOT NULL,
    comment           TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    -- One decision counts per stage of a version: the second of two racing reviewers
    -- fails here (R3.2.2).
    UNIQUE (draft_id, draft_version, stage)
);

CREATE TABLE proofreading_signoffs (
    draft_id             TEXT NOT NULL REFERENCES drafts (id),
    draft_version        BIGINT NOT NULL,
    proofreader_user_id  TEXT NOT NULL,
    note                 TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (draft_id, draft_version, proofreader_user_id)
);

CREATE TABLE publications (
    id                   TEXT PRIMARY KEY,
    draft_id             TEXT NOT NULL REFERENCES drafts (id),
    draft_version        BIGINT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    state                TEXT NOT NULL,
    scheduled_at         TIMESTAMPTZ NOT NULL,
    published_at         TIMESTAMPTZ,
    scheduled_by         TEXT NOT NULL,
    channel              TEXT NOT NULL,
    connector            TEXT NOT NULL,
    platform_post_id     TEXT NOT NULL,
    url                  TEXT NOT NULL,
    attempt_count        BIGINT NOT NULL,
    next_attempt_at      TIMESTAMPTZ,
    lease_until          TIMESTAMPTZ,
    last_error           TEXT NOT NULL,
    approvers            TEXT NOT NULL,
    proofreaders         TEXT NOT NULL,
    evidence             TEXT NOT NULL,
    withdrawal_reason    TEXT NOT NULL,
    withdrawn_by         TEXT NOT NULL,
    withdrawn_at         TIMESTAMPTZ,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL,
    version              BIGINT NOT NULL
);
CREATE INDEX publications_due ON publications (state, scheduled_at);
CREATE INDEX publications_account ON publications (platform_account_id, published_at);

CREATE TABLE feedback_items (
    id                   TEXT PRIMARY KEY,
    publication_id       TEXT NOT NULL REFERENCES publications (id),
    platform_account_id  TEXT NOT NULL,
    kind                 TEXT NOT NULL,
    description          TEXT NOT NULL,
    source               TEXT NOT NULL,
    state                TEXT NOT NULL,
    assignee_user_id     TEXT NOT NULL,
    resolution           TEXT NOT NULL,
    correction_draft_id  TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    closed_at            TIMESTAMPTZ,
    version              BIGINT NOT NULL
);

CREATE TABLE metric_observations (
    publication_id  TEXT NOT NULL REFERENCES publications (id),
    observed_at     TIMESTAMPTZ NOT NULL,
    reads           BIGINT NOT NULL,
    likes           BIGINT NOT NULL,
    comments        BIGINT NOT NULL,
    shares          BIGINT NOT NULL,
    favourites      BIGINT NOT NULL,
    PRIMARY KEY (publication_id, observed_at)
);
