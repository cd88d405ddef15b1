//! todo0: per-user todos — the resource an agent reaches on a person's behalf.
//!
//! * [`domain`]: todos, titles, owners, errors (no HTTP).
//! * [`store`]: the storage trait with SQLite and PostgreSQL backends.
//! * [`mcp`]: the scope-protected MCP server (Streamable HTTP, rmcp).
//! * [`web`]: the web app (OIDC login, encrypted session cookie) and the REST API.

pub mod domain;
pub mod mcp;
pub mod store;
pub mod web;
