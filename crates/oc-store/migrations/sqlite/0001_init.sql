-- ocpoll schema v1 (SQLite). Instants compared in SQL are BIGINT nanoseconds since the Unix epoch (UTC);
-- instants only read back (watermarks, event dates, token expiry) are RFC 3339 text with nanoseconds.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE organizations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    secret_hash BLOB    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      BIGINT  NOT NULL REFERENCES organizations (id),
    secret_hash BLOB    NOT NULL UNIQUE,
    created_at  BIGINT  NOT NULL
);

CREATE TABLE instances (
    id                            INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id                        BIGINT  NOT NULL REFERENCES organizations (id),
    user_id                       BIGINT  NOT NULL REFERENCES users (id),
    name                          TEXT    NOT NULL,
    element_key                   TEXT    NOT NULL,
    tags                          TEXT    NOT NULL,
    configuration                 TEXT    NOT NULL,
    config_secrets                BLOB,
    account                       TEXT    NOT NULL,
    disabled                      BOOLEAN NOT NULL DEFAULT FALSE,
    valid                         BOOLEAN NOT NULL DEFAULT TRUE,
    invalid_reason                TEXT,
    notifications_enabled         BOOLEAN NOT NULL DEFAULT FALSE,
    notifications_disabled_reason TEXT,
    token_hash                    BLOB UNIQUE,
    created_at                    BIGINT  NOT NULL,
    updated_at                    BIGINT  NOT NULL,
    poll_start                    TEXT    NOT NULL,
    deleted_at                    BIGINT
);
CREATE INDEX instances_org ON instances (org_id, id);

CREATE TABLE instance_tokens (
    instance_id        BIGINT PRIMARY KEY REFERENCES instances (id),
    access_token       BLOB   NOT NULL,
    refresh_token      BLOB   NOT NULL,
    expires_at         TEXT   NOT NULL,
    refresh_expires_at TEXT,
    scope              TEXT,
    refresh_holder     TEXT,
    refresh_lock_until BIGINT
);

CREATE TABLE poll_jobs (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id          BIGINT  NOT NULL REFERENCES instances (id),
    resource             TEXT    NOT NULL,
    config               TEXT    NOT NULL,
    interval_ms          BIGINT  NOT NULL,
    created_at           TEXT    NOT NULL,
    next_run_at          BIGINT  NOT NULL,
    lease_owner          TEXT,
    lease_generation     BIGINT  NOT NULL DEFAULT 0,
    lease_expires_at     BIGINT,
    watermark            TEXT,
    seen                 BLOB    NOT NULL,
    skew_ms              BIGINT  NOT NULL DEFAULT 0,
    consecutive_failures BIGINT  NOT NULL DEFAULT 0,
    last_status          TEXT,
    last_poll_at         BIGINT,
    polls_total          BIGINT  NOT NULL DEFAULT 0,
    polls_failed         BIGINT  NOT NULL DEFAULT 0,
    events_total         BIGINT  NOT NULL DEFAULT 0,
    UNIQUE (instance_id, resource)
);
CREATE INDEX poll_jobs_due ON poll_jobs (next_run_at);

CREATE TABLE polls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id BIGINT  NOT NULL,
    resource    TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    started_at  BIGINT  NOT NULL,
    outcome     TEXT    NOT NULL
);
CREATE INDEX polls_instance ON polls (instance_id, id);
CREATE INDEX polls_job ON polls (instance_id, resource, id);

CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    instance_id     BIGINT  NOT NULL,
    resource        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    object_type     TEXT    NOT NULL,
    object_id       TEXT    NOT NULL,
    date            TEXT    NOT NULL,
    record          TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    notification_id TEXT,
    dropped         BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX events_unbatched ON events (seq) WHERE notification_id IS NULL AND NOT dropped;
CREATE INDEX events_notification ON events (notification_id);
CREATE INDEX events_object ON events (instance_id, object_type, object_id);
CREATE INDEX events_instance ON events (instance_id, seq);

CREATE TABLE notifications (
    nseq             INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT    NOT NULL UNIQUE,
    instance_id      BIGINT  NOT NULL,
    object_type      TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    attempts         BIGINT  NOT NULL DEFAULT 0,
    created_at       BIGINT  NOT NULL,
    next_attempt_at  BIGINT,
    delivered_at     BIGINT,
    last_error       TEXT,
    lease_owner      TEXT,
    lease_generation BIGINT  NOT NULL DEFAULT 0,
    lease_expires_at BIGINT
);
CREATE INDEX notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX notifications_instance ON notifications (instance_id, status);
CREATE INDEX notifications_delivered ON notifications (delivered_at) WHERE status = 'delivered';

CREATE TABLE attempts (
    notification_id  TEXT   NOT NULL,
    number           BIGINT NOT NULL,
    at               BIGINT NOT NULL,
    status_code      BIGINT,
    latency_ms       BIGINT NOT NULL,
    error            TEXT,
    response_excerpt TEXT   NOT NULL,
    PRIMARY KEY (notification_id, number)
);
