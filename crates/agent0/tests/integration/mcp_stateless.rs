//! agent0's MCP client against todo0's MCP server in stateless mode (`todo-mcp --stateless`, as
//! run on several replicas behind a load balancer; issue 10): a server that never answers with an
//! `Mcp-Session-Id` and refuses GET and DELETE with `405`. The hub lists tools, steps up through
//! the real Cross-App Access flow at idp0 when a tool needs more scope, writes and reads todos,
//! and shuts down, exactly as against a server with sessions.

use std::sync::Arc;
use std::time::Duration;

use agent0::config::AuthStrategy;
use agent0::mcp::{McpHub, McpServer};
use agent0::tokens::{IdJagTarget, Principal, TokenBroker};
use protocol::Scopes;
use serde_json::json;
use testkit::{Browser, Stack};

#[tokio::test]
async fn the_hub_works_unchanged_against_a_stateless_todo0() {
    let stack = Stack::start_with(true).await.unwrap();
    // The server really is stateless: initialize names no session.
    let token = stack.mcp_token("alice", "mcp:connect").await.unwrap();
    let init = reqwest::Client::new()
        .post(&stack.mcp_url)
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
        .header("accept", "application/json, text/event-stream")
        .json(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "check", "version": "1"}}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    assert!(init.headers().get("mcp-session-id").is_none());

    let clock = protocol::clock::system();
    let server = McpServer {
        name: "todo0".into(),
        label: "Todo0 MCP Server".into(),
        url: stack.mcp_url.clone(),
        auth: AuthStrategy::IdJag {
            target: IdJagTarget {
                connection: "todo0".into(),
                as_issuer: stack.idp.todo0_issuer(),
                as_token_endpoint: stack.idp.todo0_token_endpoint(),
                resource: stack.mcp_url.clone(),
            },
            initial_scopes: Scopes::parse("mcp:connect mcp:tools:read").unwrap(),
        },
        auto_approve: Vec::new(),
        in_band_refusals: false,
        declared_tools: None,
    };
    let broker = Arc::new(
        TokenBroker::new(
            stack.idp.org_token_endpoint(),
            stack.idp.agent_auth(),
            clock.clone(),
        )
        .unwrap(),
    );
    let hub = McpHub::new(vec![server.clone()], broker, clock).unwrap();
    let login = stack.idp.login(&Browser::new(), "alice").await.unwrap();
    let alice = Principal {
        subject: "alice".into(),
        name: "Alice".into(),
        email: None,
        id_token: login.id_token.unwrap(),
    };

    let tools = hub.list_tools(&alice, &server).await.unwrap();
    assert_eq!(tools.len(), 5);
    let args = |value: serde_json::Value| value.as_object().unwrap().clone();
    let created = hub
        .call_tool(
            &alice,
            &server,
            "create-todo",
            args(json!({"title": "through a stateless server"})),
        )
        .await
        .unwrap();
    assert!(!created.is_error, "{}", created.result);
    let (from, to) = created.step_up.expect("create-todo needs mcp:tools:manage");
    assert!(!from.contains("mcp:tools:manage") && to.contains("mcp:tools:manage"));
    let listed = hub
        .call_tool(&alice, &server, "get-todos", args(json!({})))
        .await
        .unwrap();
    assert!(!listed.is_error);
    assert_eq!(listed.result["count"], 1, "{}", listed.result);
    assert_eq!(
        listed.result["todos"][0]["title"],
        "through a stateless server"
    );

    // Nothing to end on a server without sessions: shutting down neither hangs nor fails.
    tokio::time::timeout(
        Duration::from_secs(5),
        hub.close_all(Duration::from_secs(3)),
    )
    .await
    .expect("close_all returns");
}
