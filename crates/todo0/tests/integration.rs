//! todo0's integration tests: one binary, servers on 127.0.0.1:0.
#![allow(clippy::unwrap_used, unreachable_pub)]

#[path = "integration/harness.rs"]
mod harness;
#[path = "integration/mcp_behaviour.rs"]
mod mcp_behaviour;
#[path = "integration/mcp_direct.rs"]
mod mcp_direct;
#[path = "integration/mcp_parking.rs"]
mod mcp_parking;
#[path = "integration/mcp_revocation.rs"]
mod mcp_revocation;
#[path = "integration/mcp_scopes.rs"]
mod mcp_scopes;
#[path = "integration/mcp_sessions.rs"]
mod mcp_sessions;
#[path = "integration/mcp_wire_errors.rs"]
mod mcp_wire_errors;
#[path = "integration/postgres_restart.rs"]
mod postgres_restart;
#[path = "integration/python_sdk.rs"]
mod python_sdk;
#[path = "integration/replicas.rs"]
mod replicas;
#[path = "integration/scope_policy.rs"]
mod scope_policy;
#[path = "integration/web.rs"]
mod web;
