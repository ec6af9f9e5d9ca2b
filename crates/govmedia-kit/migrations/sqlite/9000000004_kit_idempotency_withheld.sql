-- An answer that carried a secret (a one-time password, a client secret) is not kept for
-- replay: the key is kept, marked withheld, and a retry is told the secret was shown once.
ALTER TABLE govmedia_idempotency ADD COLUMN withheld BOOLEAN NOT NULL DEFAULT FALSE;
