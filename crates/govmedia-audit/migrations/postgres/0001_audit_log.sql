-- The audit log (R1.3.5, R9.2): append-only, hash-chained events and signed checkpoints.
-- The canonical encoding that is hashed is documented in docs/audit-log.md.

CREATE TABLE audit_events (
    sequence             BIGINT PRIMARY KEY,
    id                   TEXT NOT NULL UNIQUE,
    occur_time           TIMESTAMPTZ NOT NULL,
    record_time          TIMESTAMPTZ NOT NULL,
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
    previous_hash        BYTEA NOT NULL,
    hash                 BYTEA NOT NULL
);
CREATE INDEX audit_events_actor ON audit_events (actor_id, sequence);
CREATE INDEX audit_events_action ON audit_events (action, sequence);
CREATE INDEX audit_events_resource ON audit_events (resource_type, resource_id, sequence);
CREATE INDEX audit_events_occur_time ON audit_events (occur_time);

-- The head of the chain: one row, locked by every append so appends are serialised
-- across replicas.
CREATE TABLE audit_chain_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    sequence  BIGINT NOT NULL,
    hash      BYTEA NOT NULL
);
INSERT INTO audit_chain_head (id, sequence, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE audit_checkpoints (
    sequence    BIGINT PRIMARY KEY,
    hash        BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    key_id      TEXT NOT NULL,
    signature   BYTEA NOT NULL,
    public_key  BYTEA NOT NULL
);

-- Append-only: events and checkpoints are never changed or removed.
CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END;
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
