-- Todos (SQLite). Times are Unix seconds; `completed` is 0 or 1.
-- AUTOINCREMENT: ids are never reused, even after the newest todo is deleted.
CREATE TABLE todos (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL CHECK (length(owner) BETWEEN 1 AND 256),
    title TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
    completed INTEGER NOT NULL DEFAULT 0 CHECK (completed IN (0, 1)),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

-- Every query is `WHERE owner = ? [AND id = ?]`, listing in id order.
CREATE INDEX todos_owner_id ON todos (owner, id);
