-- Inspection readiness (R8.1.1): one assessment per platform account per Beijing date,
-- kept as computed so that the state on any past date can be shown to an inspector.
-- Rewritten by the compliance monitor while the date lasts; final once it is over.

CREATE TABLE compliance_assessments (
    platform_account_id          TEXT NOT NULL,
    assessment_date              TEXT NOT NULL,
    department_id                TEXT NOT NULL,
    platform                     TEXT NOT NULL,
    handle                       TEXT NOT NULL,
    level                        TEXT NOT NULL,
    severity                     BIGINT NOT NULL,
    score                        BIGINT NOT NULL,
    days_since_last_publication  BIGINT NOT NULL,
    last_publication_at          TIMESTAMPTZ,
    interaction_status           TEXT NOT NULL,
    interactions_received        BIGINT NOT NULL,
    interactions_answered        BIGINT NOT NULL,
    missed_reply_deadlines       BIGINT NOT NULL,
    overdue_referrals            BIGINT NOT NULL,
    security_incidents           BIGINT NOT NULL,
    open_rectifications          BIGINT NOT NULL,
    overdue_rectifications       BIGINT NOT NULL,
    responsible_person_active    BOOLEAN NOT NULL,
    items                        TEXT NOT NULL,
    window_start_date            TEXT NOT NULL,
    computed_at                  TIMESTAMPTZ NOT NULL,
    final                        BOOLEAN NOT NULL,
    PRIMARY KEY (platform_account_id, assessment_date)
);
CREATE INDEX compliance_assessments_date ON compliance_assessments (assessment_date, severity, score);

-- The monitor's questions of the log are by action and time.
CREATE INDEX audit_events_action_time ON audit_events (action, occur_time);
