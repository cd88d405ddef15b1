-- Brokered consent ("OAuth STS"): the token vault (ISV tokens sealed with AES-256-GCM, never in
-- the clear) and the consent interactions behind `interaction_uri`.
CREATE TABLE sts_vault (
    user_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    resource TEXT NOT NULL,
    access_token TEXT,
    access_hash TEXT,
    access_expires_at BIGINT,
    refresh_token TEXT,
    scope TEXT NOT NULL,
    granted_at BIGINT NOT NULL,
    last_used_at BIGINT,
    PRIMARY KEY (user_id, agent, resource)
);
CREATE INDEX sts_vault_access_hash ON sts_vault (access_hash);

CREATE TABLE sts_interactions (
    id_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    resource TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    last_polled_at BIGINT NOT NULL,
    state_hash TEXT,
    pkce_verifier TEXT
);
CREATE INDEX sts_interactions_owner ON sts_interactions (user_id, agent, resource, created_at);
CREATE UNIQUE INDEX sts_interactions_state ON sts_interactions (state_hash);
