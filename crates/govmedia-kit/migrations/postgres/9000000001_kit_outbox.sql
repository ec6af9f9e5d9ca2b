-- The audit outbox (govmedia-kit): audit records written in the same transaction as the
-- change they describe, deleted once the audit service has them.
CREATE TABLE govmedia_outbox (
    seq         BIGSERIAL PRIMARY KEY,
    event_id    UUID        NOT NULL UNIQUE,
    payload     JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts    INTEGER     NOT NULL DEFAULT 0,
    last_error  TEXT
);
