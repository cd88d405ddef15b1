-- Failed-login throttling shared by every replica: consecutive failures per key (`user:<id>`,
-- `unknown:<sha256 of the typed username>`, `ip:<address>`), when the last one was counted, and
-- when the row may be purged.
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    last_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_throttle_expires_at ON login_throttle (expires_at);
