//! github0 over real HTTP on 127.0.0.1:0: the OAuth web flow as a browser walks it, the REST
//! API, the MCP endpoint with rmcp's client, and seeding across restarts.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod integration {
    pub mod harness;
    mod mcp;
    mod oauth;
    mod rest;
}
