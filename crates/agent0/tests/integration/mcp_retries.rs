//! What `McpHub` sends again after a broken connection (issue 10: replicas behind a balancer
//! die mid-request). A tool call whose answer never came may have run: it is repeated only when
//! the tool is read-only or idempotent (MCP `ToolAnnotations`) or when the server surely did not
//! run it (a refused connection, an unknown session). The peer is a small open MCP server on
//! 127.0.0.1:0 whose first call of each tool is counted, then answered `502` as a balancer does
//! when the replica behind it died after the request went out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use agent0::config::AuthStrategy;
use agent0::mcp::{McpError, McpHub, McpServer};
use agent0::tokens::{Principal, TokenBroker};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use protocol::token_client::ClientAuth;
use serde_json::{Value, json};

use super::harness::stand_in;

/// Calls received per tool.
#[derive(Clone, Default)]
struct Calls(Arc<Mutex<HashMap<String, usize>>>);

impl Calls {
    fn of(&self, tool: &str) -> usize {
        self.0.lock().unwrap().get(tool).copied().unwrap_or(0)
    }
}

async fn post_mcp(State(calls): State<Calls>, Json(message): Json<Value>) -> Response {
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    match message["method"].as_str().unwrap_or_default() {
        "initialize" => stand_in::initialized(id, &message, "stand-in", "s-1".into()),
        "tools/list" => stand_in::result(
            id,
            json!({"tools": [
                {"name": "add", "description": "Adds.", "inputSchema": {"type": "object"}},
                {"name": "read", "description": "Reads.", "inputSchema": {"type": "object"},
                 "annotations": {"readOnlyHint": true}},
                {"name": "set", "description": "Sets.", "inputSchema": {"type": "object"},
                 "annotations": {"readOnlyHint": false, "idempotentHint": true}},
            ]}),
        ),
        "tools/call" => {
            let tool = message["params"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let n = {
                let mut calls = calls.0.lock().unwrap();
                let n = calls.entry(tool.clone()).or_insert(0);
                *n += 1;
                *n
            };
            if n == 1 {
                // The call ran; its answer is lost on the way back.
                return (StatusCode::BAD_GATEWAY, "upstream went away").into_response();
            }
            stand_in::result(
                id,
                json!({"content": [{"type": "text", "text": format!("{tool} done")}]}),
            )
        }
        _ => stand_in::method_not_found(id),
    }
}

async fn start() -> (Arc<McpHub>, McpServer, Calls) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let calls = Calls::default();
    let router = axum::Router::new()
        .route(
            "/mcp",
            post(post_mcp)
                .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
                .delete(|| async { StatusCode::OK }),
        )
        .with_state(calls.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    let server = McpServer {
        name: "open".into(),
        label: "Open MCP Server".into(),
        url,
        auth: AuthStrategy::None,
        auto_approve: Vec::new(),
        in_band_refusals: false,
        declared_tools: None,
    };
    let clock = protocol::clock::system();
    // Never asked: the server is open.
    let broker = Arc::new(
        TokenBroker::new(
            "http://127.0.0.1:9/token".into(),
            ClientAuth::None {
                client_id: "agent0".into(),
            },
            clock.clone(),
        )
        .unwrap(),
    );
    let hub = Arc::new(McpHub::new(vec![server.clone()], broker, clock).unwrap());
    (hub, server, calls)
}

fn alice() -> Principal {
    Principal {
        subject: "alice".into(),
        name: "Alice".into(),
        email: None,
        id_token: "unused".into(),
    }
}

#[tokio::test]
async fn a_call_that_may_have_run_is_repeated_only_when_the_tool_says_that_is_harmless() {
    let (hub, server, calls) = start().await;
    let alice = alice();
    assert_eq!(hub.list_tools(&alice, &server).await.unwrap().len(), 3);

    // A write whose answer was lost is not sent again: it ran once, and the person is told it
    // may have run.
    let error = hub
        .call_tool(&alice, &server, "add", serde_json::Map::new())
        .await
        .unwrap_err();
    assert!(matches!(error, McpError::Unavailable { .. }), "{error}");
    assert!(
        error.to_string().contains("may or may not have run"),
        "{error}"
    );
    assert_eq!(calls.of("add"), 1, "never repeated");

    // Read-only and idempotent tools are repeated once, and succeed.
    for tool in ["read", "set"] {
        let outcome = hub
            .call_tool(&alice, &server, tool, serde_json::Map::new())
            .await
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(!outcome.is_error, "{tool}");
        assert_eq!(calls.of(tool), 2, "{tool} repeated once");
    }
}
