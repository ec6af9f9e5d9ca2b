-- The sensitive lexicon and whitelist (R7.1.1), versioned: every change makes a version.
CREATE TABLE lexicon_versions (
    version     BIGINT PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL,
    actor_id    TEXT NOT NULL,
    summary     TEXT NOT NULL
);

CREATE TABLE lexicon_entries (
    id          TEXT PRIMARY KEY,
    term        TEXT NOT NULL UNIQUE,
    category    TEXT NOT NULL,
    severity    TEXT NOT NULL,
    suggestion  TEXT NOT NULL,
    rule_id     TEXT NOT NULL,
    contexts    TEXT NOT NULL,
    source      TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE whitelist_entries (
    id          TEXT PRIMARY KEY,
    phrase      TEXT NOT NULL UNIQUE,
    note        TEXT NOT NULL,
    version     BIGINT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
