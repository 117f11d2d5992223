-- Operational alerts ("something needs a person"), written in the same transaction as the fact they report and
-- delivered like notifications: signed, retried, at least once. `body` is the JSON sent, exactly.
CREATE TABLE alerts (
    aseq INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    instance_id      BIGINT  NOT NULL,
    org_id           BIGINT  NOT NULL,
    alert_type       TEXT    NOT NULL,
    created_at       BIGINT  NOT NULL,
    body             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    delivered_at     BIGINT,
    last_error       TEXT,
    target           TEXT,
    lease_owner      TEXT,
    lease_generation BIGINT  NOT NULL DEFAULT 0,
    lease_expires_at BIGINT
);
CREATE INDEX alerts_due ON alerts (status, next_attempt_at);
CREATE INDEX alerts_instance ON alerts (instance_id, aseq);

CREATE TABLE alert_attempts (
    alert_id         TEXT   NOT NULL,
    number           BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    status_code      BIGINT,
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    response_excerpt TEXT   NOT NULL,
    PRIMARY KEY (alert_id, number)
);

-- `polling.failing`: when the current streak of failed polls of a job began (NULL while its last poll
-- succeeded), and whether that streak was reported already.
ALTER TABLE poll_jobs ADD COLUMN failing_since BIGINT;
ALTER TABLE poll_jobs ADD COLUMN failing_alerted BOOLEAN NOT NULL DEFAULT FALSE;
