-- The audit outbox (govmedia-kit): audit records written in the same transaction as the
-- change they describe, deleted once the audit service has them.
CREATE TABLE govmedia_outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT    NOT NULL UNIQUE,
    payload     TEXT    NOT NULL,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT
);
