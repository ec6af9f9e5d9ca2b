-- Violation records (R9.1, R9.2): proposed by the detectors or recorded by a person,
-- decided by a person; the evidence is a JSON array of audit event ids.

CREATE TABLE violations (
    id                   TEXT PRIMARY KEY,
    violation_type       TEXT NOT NULL,
    responsible_user_id  TEXT NOT NULL,
    department_id        TEXT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    description          TEXT NOT NULL,
    evidence             TEXT NOT NULL,
    severity             TEXT NOT NULL,
    state                TEXT NOT NULL,
    detector             TEXT NOT NULL,
    detection_key        TEXT NOT NULL UNIQUE,
    created_at           TIMESTAMPTZ NOT NULL,
    handling             TEXT NOT NULL,
    decided_by           TEXT NOT NULL,
    decided_at           TIMESTAMPTZ,
    rectification_id     TEXT NOT NULL,
    version              BIGINT NOT NULL
);
CREATE INDEX violations_created ON violations (created_at, id);
CREATE INDEX violations_department ON violations (department_id, created_at, id);
