-- The audit log (R1.3.5, R9.2): append-only, hash-chained events and signed checkpoints.
-- The canonical encoding that is hashed is documented in docs/audit-log.md.

CREATE TABLE audit_events (
    sequence             INTEGER PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    occur_time           TEXT NOT NULL,
    record_time          TEXT NOT NULL,
    action               TEXT NOT NULL,
    actor_kind           TEXT NOT NULL,
    actor_id             TEXT NOT NULL,
    actor_name           TEXT NOT NULL,
    client_address       TEXT NOT NULL,
    producer             TEXT NOT NULL,
    resource_type        TEXT NOT NULL,
    resource_id          TEXT NOT NULL,
    department_id        TEXT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    outcome              TEXT NOT NULL,
    rule_id              TEXT NOT NULL,
    reason               TEXT NOT NULL,
    attributes           TEXT NOT NULL,
    trace_id             TEXT NOT NULL,
    request_id           TEXT NOT NULL,
    previous_hash        BLOB NOT NULL,
    hash                 BLOB NOT NULL
);
CREATE INDEX audit_events_actor ON audit_events (actor_id, sequence);
CREATE INDEX audit_events_action ON audit_events (action, sequence);
CREATE INDEX audit_events_resource ON audit_events (resource_type, resource_id, sequence);
CREATE INDEX audit_events_occur_time ON audit_events (occur_time);

CREATE TABLE audit_chain_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    sequence  INTEGER NOT NULL,
    hash      BLOB NOT NULL
);
INSERT INTO audit_chain_head (id, sequence, hash) VALUES (1, 0, zeroblob(32));

CREATE TABLE audit_checkpoints (
    sequence    INTEGER PRIMARY KEY,
    hash        BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    signature   BLOB NOT NULL,
    public_key  BLOB NOT NULL
);

CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE on audit_events refused'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE on audit_events refused'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE on audit_checkpoints refused'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE on audit_checkpoints refused'); END;
