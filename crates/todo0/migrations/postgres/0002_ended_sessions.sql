-- Web sessions ended before they expired (logout): a copy of the cookie is refused. A row is
-- needed only until the session would have expired (`expires_at`, Unix seconds), then purged.
CREATE TABLE ended_sessions (
    sid TEXT PRIMARY KEY CHECK (octet_length(sid) BETWEEN 1 AND 128),
    expires_at BIGINT NOT NULL
);

CREATE INDEX ended_sessions_expires_at ON ended_sessions (expires_at);
