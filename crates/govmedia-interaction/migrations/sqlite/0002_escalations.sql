-- Missed reply deadlines raised to the responsible department (R4.1.1, R4.2.1, R4.2.2).
CREATE TABLE escalations (
    id                   TEXT PRIMARY KEY,
    -- comment, conversation or referral.
    item_type            TEXT NOT NULL,
    item_id              TEXT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    -- '' when the account belongs to no department.
    department_id        TEXT NOT NULL,
    due_at               TEXT NOT NULL,
    escalated_at         TEXT NOT NULL,
    state                TEXT NOT NULL,
    acknowledged_by      TEXT NOT NULL,
    acknowledged_at      TEXT,
    note                 TEXT NOT NULL,
    resolved_at          TEXT,
    version              INTEGER NOT NULL,
    -- One escalation per missed deadline, also with several replicas watching.
    UNIQUE (item_type, item_id, due_at)
);
CREATE INDEX escalations_queue ON escalations (department_id, due_at, id);
CREATE INDEX escalations_unresolved ON escalations (item_type, item_id) WHERE state <> 'resolved';
