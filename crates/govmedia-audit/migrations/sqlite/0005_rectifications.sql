-- Rectification orders (R8.1.2): issued from a finding to a department and a person
-- responsible, due after working days on the business calendar, closed only when the
-- issuing office verifies the evidence.

CREATE TABLE rectifications (
    id                   TEXT PRIMARY KEY,
    source               TEXT NOT NULL,
    source_id            TEXT NOT NULL,
    department_id        TEXT NOT NULL,
    responsible_user_id  TEXT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    title                TEXT NOT NULL,
    requirement          TEXT NOT NULL,
    rule_id              TEXT NOT NULL,
    working_days         INTEGER NOT NULL,
    due_date             TEXT NOT NULL,
    due_at               TEXT NOT NULL,
    state                TEXT NOT NULL,
    issued_by            TEXT NOT NULL,
    issued_at            TEXT NOT NULL,
    evidence             TEXT NOT NULL,
    submitted_at         TEXT,
    verified_by          TEXT NOT NULL,
    verified_at          TEXT,
    note                 TEXT NOT NULL,
    return_count         INTEGER NOT NULL,
    closed_at            TEXT,
    version              INTEGER NOT NULL
);
CREATE INDEX rectifications_department ON rectifications (department_id, due_at, id);
CREATE INDEX rectifications_due ON rectifications (due_at, id);
CREATE INDEX rectifications_account ON rectifications (platform_account_id, issued_at);
