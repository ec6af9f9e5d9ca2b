-- Dead letters of the audit outbox (govmedia-kit): records the audit service refused as
-- invalid on every one of a bounded number of attempts. They are kept, never dropped,
-- until an operator re-drives them into the outbox (`govmedia outbox redrive`).
CREATE TABLE govmedia_outbox_dead_letters (
    event_id    TEXT    PRIMARY KEY,
    outbox_seq  INTEGER NOT NULL,
    payload     TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  TEXT    NOT NULL,
    buried_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

-- How often the audit service refused a record as invalid (attempts counts every try,
-- outages included); at the relay's limit the record becomes a dead letter.
ALTER TABLE govmedia_outbox ADD COLUMN rejections INTEGER NOT NULL DEFAULT 0;
