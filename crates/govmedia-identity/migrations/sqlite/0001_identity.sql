-- The identity service's tables (R2, R6). Ids are UUIDv7 in text form on both backends
-- so one SQL text serves PostgreSQL and SQLite; times are bound from the service clock.

CREATE TABLE departments (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    code        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL
);

CREATE TABLE users (
    id                   TEXT PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,
    display_name         TEXT NOT NULL,
    department_id        TEXT REFERENCES departments (id),
    email                TEXT NOT NULL,
    phone                TEXT NOT NULL,
    status               TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    password_changed_at  TEXT NOT NULL,
    password_expires_at  TEXT NOT NULL,
    must_change_password BOOLEAN NOT NULL,
    failed_attempts      INTEGER NOT NULL,
    lockout_count        INTEGER NOT NULL,
    locked_until         TEXT,
    last_login_at        TEXT,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    version              INTEGER NOT NULL
);
CREATE INDEX users_department ON users (department_id);

CREATE TABLE password_history (
    user_id        TEXT NOT NULL REFERENCES users (id),
    password_hash  TEXT NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE INDEX password_history_user ON password_history (user_id, created_at);

CREATE TABLE service_principals (
    id                 TEXT PRIMARY KEY,
    client_id          TEXT NOT NULL UNIQUE,
    display_name       TEXT NOT NULL,
    owner_user_id      TEXT REFERENCES users (id),
    secret_hash        TEXT NOT NULL,
    disabled           BOOLEAN NOT NULL,
    secret_rotated_at  TEXT NOT NULL,
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL,
    version            INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    key_id              TEXT PRIMARY KEY,
    sealed_private_key  BLOB NOT NULL,
    sealing_key_id      TEXT NOT NULL,
    public_key          BLOB NOT NULL,
    created_at          TEXT NOT NULL,
    retired_at          TEXT
);

CREATE TABLE sessions (
    id                    TEXT PRIMARY KEY,
    principal_id          TEXT NOT NULL,
    password_change_only  BOOLEAN NOT NULL,
    client_address        TEXT NOT NULL,
    created_at            TEXT NOT NULL,
    revoked_at            TEXT,
    revoke_reason         TEXT
);
CREATE INDEX sessions_principal ON sessions (principal_id);

CREATE TABLE refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    issued_at   TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    spent_at    TEXT
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE login_failures (
    username        TEXT NOT NULL,
    client_address  TEXT NOT NULL,
    failed_at       TEXT NOT NULL
);
CREATE INDEX login_failures_username ON login_failures (username, failed_at);
CREATE INDEX login_failures_address ON login_failures (client_address, failed_at);

CREATE TABLE login_addresses (
    user_id         TEXT NOT NULL REFERENCES users (id),
    client_address  TEXT NOT NULL,
    first_seen_at   TEXT NOT NULL,
    PRIMARY KEY (user_id, client_address)
);

CREATE TABLE security_events (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,
    user_id           TEXT,
    username          TEXT NOT NULL,
    client_address    TEXT NOT NULL,
    detail            TEXT NOT NULL,
    created_at        TEXT NOT NULL,
    acknowledged_by   TEXT,
    acknowledged_at   TEXT,
    acknowledge_note  TEXT
);
CREATE INDEX security_events_created ON security_events (created_at);

CREATE TABLE platform_accounts (
    id                   TEXT PRIMARY KEY,
    platform             TEXT NOT NULL,
    handle               TEXT NOT NULL,
    display_name         TEXT NOT NULL,
    avatar_url           TEXT NOT NULL,
    bio                  TEXT NOT NULL,
    department_id        TEXT NOT NULL REFERENCES departments (id),
    responsible_user_id  TEXT NOT NULL REFERENCES users (id),
    filing_status        TEXT NOT NULL,
    filing_number        TEXT NOT NULL,
    filing_date          TEXT,
    state                TEXT NOT NULL,
    state_reason         TEXT NOT NULL,
    revision             INTEGER NOT NULL,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    version              INTEGER NOT NULL,
    UNIQUE (platform, handle)
);

CREATE TABLE platform_account_revisions (
    platform_account_id  TEXT NOT NULL REFERENCES platform_accounts (id),
    revision             INTEGER NOT NULL,
    display_name         TEXT NOT NULL,
    avatar_url           TEXT NOT NULL,
    bio                  TEXT NOT NULL,
    responsible_user_id  TEXT NOT NULL,
    changed_by           TEXT NOT NULL,
    created_at           TEXT NOT NULL,
    PRIMARY KEY (platform_account_id, revision)
);

CREATE TABLE role_bindings (
    id            TEXT PRIMARY KEY,
    principal_id  TEXT NOT NULL,
    role          TEXT NOT NULL,
    scope_kind    TEXT NOT NULL,
    scope_id      TEXT NOT NULL,
    granted_by    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    UNIQUE (principal_id, role, scope_kind, scope_id)
);
CREATE INDEX role_bindings_principal ON role_bindings (principal_id);

CREATE TABLE account_credentials (
    platform_account_id  TEXT PRIMARY KEY REFERENCES platform_accounts (id),
    kind                 TEXT NOT NULL,
    login_name           TEXT NOT NULL,
    sealed_secret        BLOB NOT NULL,
    sealing_key_id       TEXT NOT NULL,
    rotated_at           TEXT NOT NULL,
    rotation_due_at      TEXT NOT NULL,
    rotated_by           TEXT NOT NULL,
    rotation_count       INTEGER NOT NULL
);
CREATE INDEX account_credentials_due ON account_credentials (rotation_due_at);

CREATE TABLE account_incidents (
    id                   TEXT PRIMARY KEY,
    platform_account_id  TEXT NOT NULL REFERENCES platform_accounts (id),
    description          TEXT NOT NULL,
    reported_by          TEXT NOT NULL,
    reported_at          TEXT NOT NULL,
    state                TEXT NOT NULL,
    resolved_by          TEXT,
    resolved_at          TEXT,
    resolution           TEXT,
    version              INTEGER NOT NULL
);
CREATE INDEX account_incidents_account ON account_incidents (platform_account_id, state);

CREATE TABLE incident_actions (
    incident_id   TEXT NOT NULL REFERENCES account_incidents (id),
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    note          TEXT NOT NULL,
    actor_id      TEXT NOT NULL,
    evidence_uri  TEXT NOT NULL,
    evidence_sha256 TEXT NOT NULL,
    evidence_description TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (incident_id, seq)
);
