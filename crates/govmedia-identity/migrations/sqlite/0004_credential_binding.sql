-- What a sealed credential's associated data binds it to (issue 18): 1 = the account
-- only (installations before this migration), 2 = the account and the login name.
-- Identity re-seals every 1 as 2 when it starts, so a login name changed in the
-- database makes the secret unopenable instead of revealing it under another name.

ALTER TABLE account_credentials ADD COLUMN sealing_binding INTEGER NOT NULL DEFAULT 1;
