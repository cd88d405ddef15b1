-- github0, the offline GitHub sandbox (SQLite). Times are Unix seconds. Every token, code,
-- session id and pending-authorization id is stored as its SHA-256 (hex), never in clear.

-- People and organisations. `password_hash` (Argon2id PHC) is NULL for accounts that cannot
-- sign in (organisations, the seeded authors).
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    login TEXT NOT NULL UNIQUE CHECK (length(login) BETWEEN 1 AND 39),
    kind TEXT NOT NULL CHECK (kind IN ('User', 'Organization')),
    name TEXT NOT NULL,
    password_hash TEXT,
    created_at INTEGER NOT NULL
);
-- Numeric ids look like GitHub's (seven digits and up).
INSERT INTO sqlite_sequence (name, seq) VALUES ('accounts', 5800000);

-- Browser sessions at github0 (its own sign-in).
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- An authorization request waiting on the consent page, bound to the session that saw it.
CREATE TABLE pending_authorizations (
    id_hash TEXT PRIMARY KEY NOT NULL,
    session_hash TEXT NOT NULL,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    state TEXT,
    code_challenge TEXT,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- What a person granted an app (GitHub's "authorized OAuth apps").
CREATE TABLE grants (
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (account_id, client_id)
) WITHOUT ROWID;

-- Authorization codes: single use, ten minutes. `family` links the tokens issued from a code.
CREATE TABLE codes (
    code_hash TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    code_challenge TEXT,
    family TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Access (`ghu_`/`gho_`) and refresh (`ghr_`) tokens. `expires_at` NULL: does not expire.
CREATE TABLE tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    client_id TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts (id),
    scope TEXT NOT NULL,
    family TEXT NOT NULL,
    expires_at INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX tokens_family ON tokens (family);
CREATE INDEX tokens_account_client ON tokens (account_id, client_id);

-- The REST API's hourly budget per access token.
CREATE TABLE rate_windows (
    token_hash TEXT PRIMARY KEY NOT NULL,
    window_start INTEGER NOT NULL,
    used INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE repos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id INTEGER NOT NULL REFERENCES accounts (id),
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    default_branch TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX repos_owner_name ON repos (owner_id, name);
INSERT INTO sqlite_sequence (name, seq) VALUES ('repos', 700000000);

CREATE TABLE pulls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos (id),
    number INTEGER NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
    author_id INTEGER NOT NULL REFERENCES accounts (id),
    head_ref TEXT NOT NULL,
    head_sha TEXT NOT NULL,
    base_ref TEXT NOT NULL,
    base_sha TEXT NOT NULL,
    additions INTEGER NOT NULL,
    deletions INTEGER NOT NULL,
    changed_files INTEGER NOT NULL,
    commits INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    closed_at INTEGER
);
CREATE UNIQUE INDEX pulls_repo_number ON pulls (repo_id, number);
INSERT INTO sqlite_sequence (name, seq) VALUES ('pulls', 2100000000);

-- Issue comments (a pull request's conversation comments are issue comments).
CREATE TABLE comments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id INTEGER NOT NULL REFERENCES repos (id),
    number INTEGER NOT NULL,
    author_id INTEGER NOT NULL REFERENCES accounts (id),
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX comments_issue ON comments (repo_id, number, id);
INSERT INTO sqlite_sequence (name, seq) VALUES ('comments', 2500000000);
