-- Dead letters of the audit outbox (govmedia-kit): records the audit service refused as
-- invalid on every one of a bounded number of attempts. They are kept, never dropped,
-- until an operator re-drives them into the outbox (`govmedia outbox redrive`).
CREATE TABLE govmedia_outbox_dead_letters (
    event_id    UUID        PRIMARY KEY,
    outbox_seq  BIGINT      NOT NULL,
    payload     TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    attempts    INTEGER     NOT NULL,
    last_error  TEXT        NOT NULL,
    buried_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- How often the audit service refused a record as invalid (attempts counts every try,
-- outages included); at the relay's limit the record becomes a dead letter.
ALTER TABLE govmedia_outbox ADD COLUMN rejections INTEGER NOT NULL DEFAULT 0;
