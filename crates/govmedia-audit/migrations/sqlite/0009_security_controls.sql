-- The register of security controls (R7.2.1): per asset, the controls in place, their
-- status and verification; next_due_at is kept so "overdue" is one indexed comparison.

CREATE TABLE security_controls (
    id             TEXT PRIMARY KEY,
    asset_type     TEXT NOT NULL,
    asset_id       TEXT NOT NULL,
    asset_name     TEXT NOT NULL,
    control_type   TEXT NOT NULL,
    description    TEXT NOT NULL,
    status         TEXT NOT NULL,
    interval_days  INTEGER NOT NULL,
    verified_at    TEXT,
    verified_by    TEXT NOT NULL,
    evidence       TEXT NOT NULL,
    department_id  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    next_due_at    TEXT NOT NULL,
    version        INTEGER NOT NULL
);
CREATE INDEX security_controls_asset ON security_controls (asset_type, asset_id, control_type, id);
CREATE INDEX security_controls_due ON security_controls (next_due_at);
