-- Conversations and their turns (PostgreSQL). Times are Unix seconds. A turn holds the person's
-- message, the provider-neutral messages it added to the model's history (tool calls always
-- with their results), and what the page shows: the reply text and the tool results. The
-- person's and the model's texts are UTF-8 bytes (BYTEA): TEXT cannot hold a NUL character,
-- which SQLite keeps; the JSON columns never contain one (serde_json escapes it).
CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    -- Creation order: of two conversations used in the same second, the newer comes first.
    position BIGINT GENERATED ALWAYS AS IDENTITY,
    -- How many turns it has. An append raises it under the row's lock and numbers its turn with
    -- it, in one statement: replicas appending at once never reuse or skip a number.
    turn_count INTEGER NOT NULL DEFAULT 0,
    -- When its last turn was added, in the order of all appends (NULL while it has none).
    last_turn BIGINT
);
CREATE INDEX conversations_by_owner ON conversations (owner, updated_at);

CREATE SEQUENCE turn_order;

CREATE TABLE turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    user_text BYTEA NOT NULL,
    reply_text BYTEA NOT NULL,
    messages TEXT NOT NULL,
    tool_results TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
