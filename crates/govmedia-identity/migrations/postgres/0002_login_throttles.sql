-- Login throttling by username and source together (R2.3.1): an attacker's failures
-- from one address slow that address, not the owner signing in from another. The
-- user's own locked_until keeps the end of the latest throttle, for the administrator.
CREATE TABLE login_throttles (
    username        TEXT NOT NULL,
    client_address  TEXT NOT NULL,
    failed_attempts BIGINT NOT NULL,
    lockout_count   BIGINT NOT NULL,
    locked_until    TIMESTAMPTZ,
    updated_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (username, client_address)
);
