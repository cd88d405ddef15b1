-- idp0 state. Secrets (codes, refresh tokens, session ids) are stored as SHA-256 hashes only.
CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,
    server         TEXT NOT NULL,
    client_id      TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    auth_time      INTEGER NOT NULL,
    sid            TEXT,
    family         TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    server     TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    nonce      TEXT,
    auth_time  INTEGER NOT NULL,
    sid        TEXT,
    family     TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);

-- A family is one login's lineage: its code, refresh tokens and the access tokens issued from them.
CREATE TABLE revoked_families (
    family     TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL
);

CREATE TABLE issued_access_tokens (
    jti        TEXT PRIMARY KEY,
    family     TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX issued_access_tokens_family ON issued_access_tokens (family);

CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

-- Replay caches: client assertion jti per client, ID-JAG jti per authorization server.
CREATE TABLE seen_jti (
    namespace  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, jti)
);

CREATE TABLE sso_sessions (
    id_hash    TEXT PRIMARY KEY,
    sid        TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    auth_time  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
