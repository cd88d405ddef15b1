//! What the guard answers itself, without rmcp: a plain `tools/call`, and a session's handshake
//! (`initialize`, `notifications/initialized`). Each answer is the one rmcp gives, and a request
//! rmcp would refuse (a foreign `Host` or `Origin`: DNS-rebinding protection) is left to rmcp.

use serde_json::{Value, json};

use crate::harness::{Backend, Server, call};

const ALL: &str = "mcp:connect mcp:tools:read mcp:tools:manage mcp:tools:delete";

/// POSTs `body` as a plain client would (no `MCP-Protocol-Version` unless in `extra`), with
/// `extra` headers; status, headers and body.
async fn exchange(
    server: &Server,
    token: &str,
    session: Option<&str>,
    body: &Value,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, String) {
    let mut request = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

/// [`exchange`] as after the handshake (`MCP-Protocol-Version: 2025-11-25`); status and body.
async fn post(
    server: &Server,
    token: &str,
    session: Option<&str>,
    body: &Value,
    extra: &[(&str, &str)],
) -> (u16, String) {
    let mut headers = vec![("mcp-protocol-version", "2025-11-25")];
    headers.extend_from_slice(extra);
    let (status, _, text) = exchange(server, token, session, body, &headers).await;
    (status, text)
}

/// The JSON-RPC message of a JSON or SSE body.
fn message(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        text.lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .find_map(|data| serde_json::from_str(data.trim()).ok())
            .unwrap_or(Value::Null)
    })
}

/// rmcp refuses a `Host` outside its allowed list and an `Origin` outside `allowed_origins`
/// (`403`); a plain `tools/call` or `initialize`, which the guard answers itself, is refused the
/// same way, in a session and in stateless mode, and nothing is written or opened.
#[tokio::test]
async fn a_foreign_host_or_origin_is_refused_on_the_direct_path_too() {
    for stateless in [false, true] {
        let server = Server::start(Backend::Sqlite, stateless).await;
        let token = server.token("alice", ALL);
        let session = server.initialize(&token).await;
        let create = call("create-todo", json!({"title": "rebound"}));
        let open = server.sessions.len();
        for header in [
            ("host", "evil.example"),
            ("host", "127.0.0.1.evil.example"),
            ("origin", "http://evil.example"),
        ] {
            let (status, text) =
                post(&server, &token, session.as_deref(), &create, &[header]).await;
            assert_eq!(status, 403, "stateless {stateless}, {header:?}: {text}");
            let (status, _, text) =
                exchange(&server, &token, None, &initialize("2025-11-25"), &[header]).await;
            assert_eq!(status, 403, "initialize, {header:?}: {text}");
        }
        assert_eq!(server.sessions.len(), open, "no session was opened");
        let (status, text) = post(
            &server,
            &token,
            session.as_deref(),
            &call("get-todos", json!({})),
            &[],
        )
        .await;
        assert_eq!(status, 200, "{text}");
        let reply: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reply["result"]["structuredContent"]["count"], 0, "{text}");
    }
}

fn initialize(version: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

const INITIALIZED: &str = r#"{"jsonrpc": "2.0", "method": "notifications/initialized"}"#;

/// A plain `initialize` is answered by the guard as one JSON object, with the result rmcp gives
/// (rmcp still answers it, as SSE, when the request carries anything more, here an `Mcp-Method`
/// header); the session starts with no rmcp worker and becomes ready with a `202` to its
/// `notifications/initialized`; it serves calls, and rmcp restores a worker for a listing.
#[tokio::test]
async fn a_plain_handshake_is_answered_here_as_rmcp_answers_it_and_needs_no_worker() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    // A client's first request carries no `MCP-Protocol-Version`: nothing is agreed yet.
    let (status, headers, text) =
        exchange(&server, &token, None, &initialize("2025-06-18"), &[]).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(headers["content-type"], "application/json");
    let direct: Value = serde_json::from_str(&text).unwrap();
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&session).is_ok(), "{session}");
    assert_eq!(direct["id"], 0);
    assert_eq!(direct["result"]["protocolVersion"], "2025-06-18");
    assert!(server.sessions.is_parked(&session));
    assert_eq!(server.sessions.workers(), 0);

    let marked = [("mcp-method", "initialize")];
    let (status, headers, text) =
        exchange(&server, &token, None, &initialize("2025-06-18"), &marked).await;
    assert_eq!(status, 200, "{text}");
    let content_type = headers["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(direct["result"], message(&text)["result"]);

    let done: Value = serde_json::from_str(INITIALIZED).unwrap();
    let (status, text) = post(&server, &token, Some(&session), &done, &[]).await;
    assert_eq!((status, text.as_str()), (202, ""));
    assert!(server.sessions.is_parked(&session));
    let create = call("create-todo", json!({"title": "no worker"}));
    let created = server.rpc(Some(&token), Some(&session), &create).await;
    assert_eq!(created.headers["content-type"], "application/json");
    assert_eq!(created.structured()["todo"]["title"], "no worker");
    assert!(server.sessions.is_parked(&session));

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let listed = server.rpc(Some(&token), Some(&session), &list).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(listed.json["result"]["tools"].as_array().unwrap().len() >= 4);
    assert_eq!(server.sessions.len(), 2);
}

/// What the guard does not answer stays rmcp's: an `initialize` whose `MCP-Protocol-Version`
/// header contradicts its body is refused (`400`) and opens nothing; one naming a version
/// without the handshake is answered with a session-based version; another user's
/// `notifications/initialized` is refused (`403`), and a call before the session is ready is
/// served by rmcp.
#[tokio::test]
async fn what_the_guard_does_not_answer_is_rmcp_s() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    let contradicted = [("mcp-protocol-version", "2025-03-26")];
    let (status, _, text) = exchange(
        &server,
        &token,
        None,
        &initialize("2025-06-18"),
        &contradicted,
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(server.sessions.is_empty());

    let (status, _, text) = exchange(&server, &token, None, &initialize("2026-07-28"), &[]).await;
    assert_eq!(status, 200, "{text}");
    let version = message(&text)["result"]["protocolVersion"].clone();
    assert!(version.as_str().unwrap() < "2026-07-28", "{version}");

    let (status, headers, text) =
        exchange(&server, &token, None, &initialize("2025-11-25"), &[]).await;
    assert_eq!(status, 200, "{text}");
    let opened = headers["mcp-session-id"].to_str().unwrap().to_owned();
    let mallory = server.token("mallory", ALL);
    let done: Value = serde_json::from_str(INITIALIZED).unwrap();
    let (status, text) = post(&server, &mallory, Some(&opened), &done, &[]).await;
    assert_eq!(status, 403, "{text}");
    let early = server
        .rpc(Some(&token), Some(&opened), &call("get-todos", json!({})))
        .await;
    let content_type = early.headers["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(early.structured()["count"], 0, "{}", early.text);
}

/// 64 clients opening sessions at the same moment get 64 sessions, none of which has an rmcp
/// worker between its `initialize` and its `notifications/initialized`, nor after.
#[tokio::test]
async fn a_burst_of_handshakes_starts_no_worker() {
    let server = Server::start(Backend::Sqlite, false).await;
    let tokens: Vec<String> = (0..8)
        .map(|i| server.token(&format!("user{i}"), ALL))
        .collect();
    let (server, tokens) = (&server, &tokens);
    let opened = futures::future::join_all((0..64).map(|i| {
        let token = &tokens[i % tokens.len()];
        async move {
            let (status, headers, text) =
                exchange(server, token, None, &initialize("2025-11-25"), &[]).await;
            assert_eq!(status, 200, "{text}");
            let id = headers["mcp-session-id"].to_str().unwrap().to_owned();
            (token, id)
        }
    }))
    .await;
    assert_eq!(server.sessions.len(), 64);
    assert_eq!(server.sessions.workers(), 0, "between the two messages");
    let done: Value = serde_json::from_str(INITIALIZED).unwrap();
    for (token, id) in &opened {
        assert!(server.sessions.is_parked(id));
        let (status, text) = post(server, token, Some(id), &done, &[]).await;
        assert_eq!(status, 202, "{text}");
    }
    let distinct: std::collections::HashSet<_> = opened.iter().map(|(_, id)| id).collect();
    assert_eq!(distinct.len(), 64);
    assert_eq!(server.sessions.workers(), 0);
}

/// A session rmcp opened (its `initialize` carried an `Mcp-Method` header) has a worker until
/// its handshake completes; its `notifications/initialized`, served by rmcp, parks it.
#[tokio::test]
async fn a_session_rmcp_opened_is_parked_when_its_handshake_completes() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    let marked = [("mcp-method", "initialize")];
    let (status, headers, text) =
        exchange(&server, &token, None, &initialize("2025-11-25"), &marked).await;
    assert_eq!(status, 200, "{text}");
    let session = headers["mcp-session-id"].to_str().unwrap().to_owned();
    assert_eq!(server.sessions.workers(), 1);
    assert!(!server.sessions.is_parked(&session));
    let done: Value = serde_json::from_str(INITIALIZED).unwrap();
    let (status, text) = post(&server, &token, Some(&session), &done, &[]).await;
    assert_eq!(status, 202, "{text}");
    assert!(server.sessions.is_parked(&session));
    assert_eq!(server.sessions.workers(), 0);
    let reply = server
        .rpc(Some(&token), Some(&session), &call("get-todos", json!({})))
        .await;
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.structured()["count"], 0, "{}", reply.text);
}
