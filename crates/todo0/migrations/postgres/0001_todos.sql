-- Todos (PostgreSQL). Times are Unix seconds. Sequence values are never reused.
CREATE TABLE todos (
    id BIGSERIAL PRIMARY KEY,
    owner TEXT NOT NULL CHECK (octet_length(owner) BETWEEN 1 AND 256),
    title TEXT NOT NULL CHECK (char_length(title) BETWEEN 1 AND 500),
    completed BOOLEAN NOT NULL DEFAULT false,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Every query is `WHERE owner = $1 [AND id = $2]`, listing in id order.
CREATE INDEX todos_owner_id ON todos (owner, id);
