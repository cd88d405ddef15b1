-- Directory objects created through the management API (apps, agents, authorization servers,
-- trusted origins, …): one JSON document, replaced as a whole under an optimistic version.
CREATE TABLE managed_directory (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL,
    body TEXT NOT NULL
);
