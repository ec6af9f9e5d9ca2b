-- Idempotency keys (govmedia-kit): the first answer to each (principal, method,
-- request_id), stored in the same transaction as the change, returned on a retry.
CREATE TABLE govmedia_idempotency (
    principal_id  TEXT NOT NULL,
    method        TEXT NOT NULL,
    request_id    TEXT NOT NULL,
    request_hash  BLOB NOT NULL,
    response      BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (principal_id, method, request_id)
);
CREATE INDEX govmedia_idempotency_created_at ON govmedia_idempotency (created_at);
