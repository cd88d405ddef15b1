-- Conversations and their turns. A turn holds the person's message, the provider-neutral
-- messages it added to the model's history (tool calls always with their results), and what
-- the page shows: the reply text and the tool results.
CREATE TABLE conversations (
    id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX conversations_by_owner ON conversations (owner, updated_at);

CREATE TABLE turns (
    conversation_id TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    user_text TEXT NOT NULL,
    reply_text TEXT NOT NULL,
    messages TEXT NOT NULL,
    tool_results TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
