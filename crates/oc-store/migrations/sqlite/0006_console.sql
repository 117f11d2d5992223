-- The web console's sign-ins and its OAuth rounds in flight, shared by every node. Tokens and states are kept as
-- SHA-256 digests only; a round's pending instance body is sealed under the master key (it holds secrets).
-- These rows are short-lived: none of them keeps an organization, a user, an instance or a session from going.
CREATE TABLE console_sessions (
    token      BLOB   NOT NULL PRIMARY KEY,
    org_id     BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id    BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);

CREATE TABLE oauth_rounds (
    state       BLOB   NOT NULL PRIMARY KEY,
    session     BLOB   NOT NULL REFERENCES console_sessions (token) ON DELETE CASCADE,
    org_id      BIGINT NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    user_id     BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body        BLOB   NOT NULL,
    instance_id BIGINT REFERENCES instances (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX oauth_rounds_expiry ON oauth_rounds (expires_at);
CREATE INDEX oauth_rounds_session ON oauth_rounds (session);
CREATE INDEX oauth_rounds_instance ON oauth_rounds (instance_id) WHERE instance_id IS NOT NULL;
