-- Public supervision (R8.2.1, R8.2.2): feedback from the public about the accounts,
-- triaged with a deadline in working days, answered, closed with its adjustments (a JSON
-- array). The contact is kept for those who answer; everything else shows it masked.

CREATE TABLE public_feedback (
    id                    TEXT PRIMARY KEY,
    channel               TEXT NOT NULL,
    received_at           TIMESTAMPTZ NOT NULL,
    platform_account_id   TEXT NOT NULL,
    comment_id            TEXT NOT NULL,
    subject               TEXT NOT NULL,
    content               TEXT NOT NULL,
    contact_name          TEXT NOT NULL,
    contact               TEXT NOT NULL,
    state                 TEXT NOT NULL,
    department_id         TEXT NOT NULL,
    working_days          BIGINT NOT NULL,
    due_date              TEXT NOT NULL,
    due_at                TIMESTAMPTZ,
    answer                TEXT NOT NULL,
    answer_channel        TEXT NOT NULL,
    answered_by           TEXT NOT NULL,
    answered_at           TIMESTAMPTZ,
    adjustments           TEXT NOT NULL,
    no_adjustment_reason  TEXT NOT NULL,
    closed_at             TIMESTAMPTZ,
    recorded_by           TEXT NOT NULL,
    version               BIGINT NOT NULL
);
CREATE INDEX public_feedback_received ON public_feedback (received_at, id);
CREATE INDEX public_feedback_department ON public_feedback (department_id, received_at, id);
