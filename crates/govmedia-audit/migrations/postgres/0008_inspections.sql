-- Inspections and spot checks (R8.1.1): the sample and its verdicts are one JSON array
-- kept with the inspection (at most 600 items), changed only as a whole under its version.
-- The seed is decimal text: a u64 does not fit every backend's signed integer.

CREATE TABLE inspections (
    id             TEXT PRIMARY KEY,
    kind           TEXT NOT NULL,
    title          TEXT NOT NULL,
    department_id  TEXT NOT NULL,
    start_date     TEXT NOT NULL,
    end_date       TEXT NOT NULL,
    seed           TEXT NOT NULL,
    sample_size    BIGINT NOT NULL,
    items          TEXT NOT NULL,
    state          TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL,
    completed_at   TIMESTAMPTZ,
    version        BIGINT NOT NULL
);
CREATE INDEX inspections_created ON inspections (created_at, id);
