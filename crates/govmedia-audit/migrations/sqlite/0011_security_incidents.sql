-- Security incidents: reported, contained, investigated, closed. The steps taken and the
-- corrective actions are JSON lists, read and written whole under the incident's lock.
-- An account anomaly links identity's incident by id (account_incident_id), not a copy.

CREATE TABLE security_incidents (
    id                   TEXT PRIMARY KEY,
    kind                 TEXT NOT NULL,
    severity             TEXT NOT NULL,
    title                TEXT NOT NULL,
    description          TEXT NOT NULL,
    department_id        TEXT NOT NULL,
    platform_account_id  TEXT NOT NULL,
    publication_id       TEXT NOT NULL,
    account_incident_id  TEXT NOT NULL,
    state                TEXT NOT NULL,
    steps                TEXT NOT NULL,
    reported_to          TEXT NOT NULL,
    root_cause           TEXT NOT NULL,
    corrective_actions   TEXT NOT NULL,
    reported_by          TEXT NOT NULL,
    reported_at          TEXT NOT NULL,
    closed_by            TEXT NOT NULL,
    closed_at            TEXT,
    version              INTEGER NOT NULL
);
CREATE INDEX security_incidents_reported ON security_incidents (reported_at, id);
CREATE INDEX security_incidents_department ON security_incidents (department_id, reported_at, id);
-- One security incident per identity incident it links.
CREATE UNIQUE INDEX security_incidents_account_incident ON security_incidents (account_incident_id)
    WHERE account_incident_id <> '';
