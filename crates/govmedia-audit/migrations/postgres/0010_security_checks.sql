-- Security checks (R7.2.2): versioned checklists (a version's items never change once
-- made), schedules of checks per department or account, checks with each item's result
-- (JSON: the items are read and written whole, under the check's lock), and the hidden
-- dangers their failed items open.

CREATE TABLE security_checklists (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    description      TEXT NOT NULL,
    current_version  BIGINT NOT NULL,
    version          BIGINT NOT NULL
);

CREATE TABLE security_checklist_versions (
    checklist_id  TEXT NOT NULL REFERENCES security_checklists (id),
    version       BIGINT NOT NULL,
    items         TEXT NOT NULL,
    change_note   TEXT NOT NULL,
    created_by    TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (checklist_id, version)
);

CREATE TABLE security_check_schedules (
    id                   TEXT PRIMARY KEY,
    checklist_id         TEXT NOT NULL REFERENCES security_checklists (id),
    department_id        TEXT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    interval_days        BIGINT NOT NULL,
    next_due_date        TEXT NOT NULL,
    state                TEXT NOT NULL,
    last_check_id        TEXT NOT NULL,
    created_by           TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    cancel_reason        TEXT NOT NULL,
    version              BIGINT NOT NULL
);
CREATE INDEX security_check_schedules_due ON security_check_schedules (state, next_due_date, id);

CREATE TABLE security_checks (
    id                   TEXT PRIMARY KEY,
    checklist_id         TEXT NOT NULL REFERENCES security_checklists (id),
    checklist_name       TEXT NOT NULL,
    checklist_version    BIGINT NOT NULL,
    schedule_id          TEXT NOT NULL,
    department_id        TEXT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    state                TEXT NOT NULL,
    items                TEXT NOT NULL,
    conclusion           TEXT NOT NULL,
    started_by           TEXT NOT NULL,
    started_at           TIMESTAMPTZ NOT NULL,
    completed_by         TEXT NOT NULL,
    completed_at         TIMESTAMPTZ,
    version              BIGINT NOT NULL
);
CREATE INDEX security_checks_started ON security_checks (started_at, id);
CREATE INDEX security_checks_department ON security_checks (department_id, started_at, id);

CREATE TABLE hidden_dangers (
    id                   TEXT PRIMARY KEY,
    check_id             TEXT NOT NULL REFERENCES security_checks (id),
    item_code            TEXT NOT NULL,
    item_text            TEXT NOT NULL,
    description          TEXT NOT NULL,
    department_id        TEXT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    owner_id             TEXT NOT NULL,
    severity             TEXT NOT NULL,
    working_days         BIGINT NOT NULL,
    due_date             TEXT NOT NULL,
    due_at               TIMESTAMPTZ NOT NULL,
    state                TEXT NOT NULL,
    fix_evidence         TEXT NOT NULL,
    fix_submitted_by     TEXT NOT NULL,
    fix_submitted_at     TIMESTAMPTZ,
    verified_by          TEXT NOT NULL,
    verified_at          TIMESTAMPTZ,
    note                 TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    version              BIGINT NOT NULL
);
CREATE INDEX hidden_dangers_due ON hidden_dangers (due_at, id);
CREATE INDEX hidden_dangers_department ON hidden_dangers (department_id, due_at, id);
