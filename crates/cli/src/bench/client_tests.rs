//! The load client against a small MCP server on a loopback port that answers as todo0 and the
//! reference do (JSON or SSE, a session id or none) and records what it received.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::*;

const TOKEN: &str = "header.payload.signature";

/// One request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    peer: SocketAddr,
    method: String,
    /// The JSON-RPC method and id (`None` for `DELETE`, and for notifications' id).
    rpc: Option<(String, Option<u64>)>,
    session: Option<String>,
    host: Option<String>,
}

#[derive(Clone)]
struct TestServer {
    stateless: bool,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn post_mcp(
    State(server): State<TestServer>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request: Value = serde_json::from_slice(&body).unwrap();
    let method = request["method"].as_str().unwrap().to_owned();
    let id = request["id"].as_u64();
    server.seen.lock().unwrap().push(Seen {
        peer,
        method: "POST".to_owned(),
        rpc: Some((method.clone(), id)),
        session: header(&headers, "mcp-session-id"),
        host: header(&headers, "host"),
    });
    if header(&headers, "authorization") != Some(format!("Bearer {TOKEN}"))
        || header(&headers, "mcp-protocol-version").as_deref() != Some(PROTOCOL_VERSION)
        || header(&headers, "content-type").as_deref() != Some("application/json")
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let json = [("content-type", "application/json")];
    let Some(id) = id else {
        return StatusCode::ACCEPTED.into_response();
    };
    if method == "initialize" {
        let reply =
            json!({"jsonrpc": "2.0", "id": id, "result": {"protocolVersion": PROTOCOL_VERSION}});
        return if server.stateless {
            (json, reply.to_string()).into_response()
        } else {
            (json, [("mcp-session-id", "s-1")], reply.to_string()).into_response()
        };
    }
    let result = |result: Value| json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string();
    match request["params"]["name"].as_str().unwrap() {
        "sse" => {
            let message = result(json!({"content": [], "structuredContent": {"count": 3}}));
            let body = format!(
                "id: 0\nretry: 3000\ndata: \n\nevent: message\ndata: {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{{}}}}\n\nevent: message\ndata: {message}\n\n"
            );
            ([("content-type", "text/event-stream")], body).into_response()
        }
        "json" => (
            json,
            result(json!({"content": [{"type": "text", "text": "5"}], "structuredContent": {"count": 5, "todos": []}})),
        )
            .into_response(),
        "echo" => (
            json,
            result(json!({"structuredContent": {"count": request["params"]["arguments"]["n"]}})),
        )
            .into_response(),
        "close" => (
            json,
            [("connection", "close")],
            result(json!({"structuredContent": {"count": 1}})),
        )
            .into_response(),
        "tool-error" => (
            json,
            result(json!({"isError": true, "content": [{"type": "text", "text": "nope"}]})),
        )
            .into_response(),
        "rpc-error" => (
            json,
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32602, "message": "bad"}})
                .to_string(),
        )
            .into_response(),
        "wrong-id" => (
            json,
            json!({"jsonrpc": "2.0", "id": id + 1, "result": {}}).to_string(),
        )
            .into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_mcp(
    State(server): State<TestServer>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> StatusCode {
    server.seen.lock().unwrap().push(Seen {
        peer,
        method: "DELETE".to_owned(),
        rpc: None,
        session: header(&headers, "mcp-session-id"),
        host: header(&headers, "host"),
    });
    StatusCode::OK
}

/// Starts the server on `127.0.0.1:0`; returns its endpoint URL and what it will record.
async fn start(stateless: bool) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route("/mcp", post(post_mcp).delete(delete_mcp))
        .with_state(TestServer {
            stateless,
            seen: seen.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    (format!("http://{addr}/mcp"), seen)
}

fn rpc(seen: &Seen) -> (&str, Option<u64>) {
    let (method, id) = seen.rpc.as_ref().unwrap();
    (method.as_str(), *id)
}

#[tokio::test]
async fn a_stateful_session_keeps_its_id_and_its_connection() {
    let (url, seen) = start(false).await;
    let endpoint = Endpoint::new(&url).unwrap();
    let mut session = endpoint.open(TOKEN).await.unwrap();
    let sse = CallTemplate::new("sse", "{}");
    let json = CallTemplate::new("json", "{}");
    assert_eq!(session.call(&sse).await.unwrap().count, Some(3));
    assert_eq!(session.call(&json).await.unwrap().count, Some(5));
    assert_eq!(session.call(&sse).await.unwrap().count, Some(3));
    session.close().await;

    let seen = seen.lock().unwrap().clone();
    let calls: Vec<(&str, Option<u64>)> =
        seen.iter().filter(|s| s.rpc.is_some()).map(rpc).collect();
    assert_eq!(
        calls,
        [
            ("initialize", Some(0)),
            ("notifications/initialized", None),
            ("tools/call", Some(1)),
            ("tools/call", Some(2)),
            ("tools/call", Some(3)),
        ]
    );
    let host = url.trim_start_matches("http://").trim_end_matches("/mcp");
    for request in &seen {
        assert_eq!(request.peer, seen[0].peer, "one connection: {seen:?}");
        assert_eq!(request.host.as_deref(), Some(host));
    }
    assert_eq!(seen[0].session, None, "initialize has no session id yet");
    assert!(
        seen[1..]
            .iter()
            .all(|s| s.session.as_deref() == Some("s-1"))
    );
    assert_eq!(seen.last().unwrap().method, "DELETE");
}

#[tokio::test]
async fn a_stateless_session_sends_no_id_and_no_delete() {
    let (url, seen) = start(true).await;
    let endpoint = Endpoint::new(&url).unwrap();
    let mut session = endpoint.open(TOKEN).await.unwrap();
    assert_eq!(
        session
            .call(&CallTemplate::new("json", "{}"))
            .await
            .unwrap()
            .count,
        Some(5)
    );
    session.close().await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert!(
        seen.iter()
            .all(|s| s.session.is_none() && s.method == "POST")
    );
}

#[tokio::test]
async fn every_kind_of_failure_is_an_error_and_the_session_goes_on() {
    let (url, _) = start(false).await;
    let mut session = Endpoint::new(&url).unwrap().open(TOKEN).await.unwrap();
    let call = |name: &str| CallTemplate::new(name, "{}");
    assert_eq!(
        session.call(&call("tool-error")).await.err().unwrap(),
        "tool error: nope"
    );
    assert_eq!(
        session.call(&call("rpc-error")).await.err().unwrap(),
        "JSON-RPC error -32602: bad"
    );
    let wrong = session.call(&call("wrong-id")).await.err().unwrap();
    assert!(wrong.contains("the reply is for id Some(4)"), "{wrong}");
    let missing = session.call(&call("missing")).await.err().unwrap();
    assert!(missing.starts_with("HTTP 404"), "{missing}");
    assert_eq!(session.call(&call("json")).await.unwrap().count, Some(5));

    let refused = Endpoint::new(&url)
        .unwrap()
        .open("other")
        .await
        .err()
        .unwrap();
    assert!(format!("{refused:#}").contains("HTTP 401"), "{refused:#}");
}

#[tokio::test]
async fn a_connection_the_server_closes_is_replaced() {
    let (url, seen) = start(false).await;
    let mut session = Endpoint::new(&url).unwrap().open(TOKEN).await.unwrap();
    let close = CallTemplate::new("close", "{}");
    let json = CallTemplate::new("json", "{}");
    assert_eq!(session.call(&close).await.unwrap().count, Some(1));
    assert_eq!(session.call(&json).await.unwrap().count, Some(5));
    assert_eq!(session.call(&json).await.unwrap().count, Some(5));
    let seen = seen.lock().unwrap().clone();
    let peers: Vec<SocketAddr> = seen.iter().map(|s| s.peer).collect();
    assert_eq!(peers[..3], [peers[0]; 3], "{seen:?}");
    assert_ne!(
        peers[3], peers[0],
        "a new connection after Connection: close"
    );
    assert_eq!(peers[4], peers[3]);
    assert!(
        seen[3..]
            .iter()
            .all(|s| s.session.as_deref() == Some("s-1"))
    );
}

#[tokio::test]
async fn the_template_writes_each_call_s_id() {
    let (url, seen) = start(false).await;
    let mut session = Endpoint::new(&url).unwrap().open(TOKEN).await.unwrap();
    let echo = CallTemplate::new("echo", r#"{"n":{id},"title":"todo {id}"}"#);
    for id in 1..=100 {
        assert_eq!(session.call(&echo).await.unwrap().count, Some(id));
    }
    let ids: Vec<Option<u64>> = seen.lock().unwrap()[2..].iter().map(|s| rpc(s).1).collect();
    assert_eq!(ids, (1..=100).map(Some).collect::<Vec<_>>());

    let mut out = BytesMut::new();
    echo.write(12_345, &mut out);
    let body: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        body,
        json!({"jsonrpc": "2.0", "id": 12_345, "method": "tools/call",
               "params": {"name": "echo", "arguments": {"n": 12_345, "title": "todo 12345"}}})
    );
}

#[test]
fn replies_are_found_in_json_and_sse_bodies() {
    let json = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"structuredContent":{"count":3,"todos":[]}}}"#;
    let (reply, _) = find_reply(json).unwrap();
    assert_eq!(reply.id, Some(1));
    assert_eq!(
        reply
            .result
            .and_then(|r| r.structured)
            .and_then(|s| s.count),
        Some(3)
    );

    let sse = b"id: 0\nretry: 3000\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"isError\":true,\"content\":[{\"type\":\"text\",\"text\":\"nope\"}]}}\r\n\r\n";
    let (reply, data) = find_reply(sse).unwrap();
    assert_eq!(reply.result.and_then(|r| r.is_error), Some(true));
    assert!(data.starts_with(b"{") && data.ends_with(b"}"));

    let error = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}"#;
    assert!(find_reply(error).is_some_and(|(r, _)| r.error.is_some()));
    assert!(find_reply(b"").is_none());
    assert!(find_reply(b"data: {\"jsonrpc\":\"2.0\",\"method\":\"x\"}\n\n").is_none());
}
