//! What `/mcp` answers to a body that is not a JSON-RPC message or is not sent as JSON: JSON-RPC
//! 2.0 error objects (JSON-RPC 2.0 §5.1), never plain text.

use crate::harness::{Backend, Server};

const ALL: &str = "mcp:connect mcp:tools:read";

#[tokio::test]
async fn malformed_json_gets_http_400_and_a_json_rpc_parse_error() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    let reply = server
        .post_raw(&token, "application/json", r#"{"jsonrpc":"2.0","id":1,"#)
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(
        reply.json,
        serde_json::json!({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}})
    );
    let not_rpc = server
        .post_raw(&token, "application/json", r#"{"id":7,"hello":"world"}"#)
        .await;
    assert_eq!(not_rpc.status, 400, "{}", not_rpc.text);
    assert_eq!(not_rpc.json["error"]["code"], -32600);
    assert_eq!(not_rpc.json["id"], 7);
}

#[tokio::test]
async fn a_non_json_content_type_gets_415_with_a_json_rpc_body() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    for content_type in ["text/plain", "application/x-www-form-urlencoded", ""] {
        let reply = server.post_raw(&token, content_type, body).await;
        assert_eq!(reply.status, 415, "{content_type:?}: {}", reply.text);
        assert_eq!(reply.json["jsonrpc"], "2.0", "{}", reply.text);
        assert_eq!(reply.json["error"]["code"], -32600);
        assert!(
            reply.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }
    let charset = server
        .post_raw(
            &token,
            "application/json; charset=utf-8",
            r#"{"jsonrpc":"2.0","id":1,"#,
        )
        .await;
    assert_eq!(
        charset.status, 400,
        "a parameter does not hide the JSON type"
    );
}

#[tokio::test]
async fn rmcps_own_refusals_also_carry_json_rpc_bodies() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    let unknown = server
        .rpc(
            Some(&token),
            Some("no-such-session"),
            &crate::harness::call("get-todos", serde_json::json!({})),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.json["jsonrpc"], "2.0", "{}", unknown.text);
    assert_eq!(unknown.json["error"]["code"], -32600);
    let not_acceptable = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(&token)
        .header("accept", "text/html")
        .header("content-type", "application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(not_acceptable.status(), 406);
    let body: serde_json::Value = not_acceptable.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("text/event-stream"),
        "{body}"
    );
}

/// An authorization server whose JWKS endpoint fails: the token cannot be checked, and `/mcp`
/// says so as a JSON-RPC error (503, server busy, `Retry-After`), not as plain text.
#[tokio::test]
async fn unavailable_keys_get_503_with_a_json_rpc_body_and_retry_after() {
    use std::sync::Arc;
    use std::time::Duration;

    use protocol::claims::{AccessTokenClaims, Audience};
    use protocol::keys::{KeyKind, SigningKey};
    use protocol::verify::RemoteJwks;

    let jwks = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_uri = format!("http://{}/keys", jwks.local_addr().unwrap());
    let failing = axum::Router::new().route(
        "/keys",
        axum::routing::get(|| async { axum::http::StatusCode::INTERNAL_SERVER_ERROR }),
    );
    tokio::spawn(async move { axum::serve(jwks, failing).await });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resource = format!("http://{}/mcp", listener.local_addr().unwrap());
    let keys = RemoteJwks::new(
        protocol::discovery::http_client().unwrap(),
        jwks_uri,
        Duration::from_secs(30),
    );
    let (store, _schema) = crate::harness::store(Backend::Sqlite).await;
    let config = todo0::mcp::McpConfig::new(crate::harness::ISSUER, &resource);
    let mcp = todo0::mcp::build(&config, Arc::new(keys), store, protocol::clock::system());
    tokio::spawn(async move { axum::serve(listener, mcp.router).await });

    // A well-formed token whose key the server would have to fetch.
    let key = SigningKey::generate(KeyKind::Rsa).unwrap();
    let now = protocol::clock::system().now();
    let claims = AccessTokenClaims {
        iss: crate::harness::ISSUER.into(),
        aud: Audience::One(resource.clone()),
        sub: "alice".into(),
        exp: now + 600,
        iat: now,
        jti: Some("keys-unavailable".into()),
        uid: Some("alice".into()),
        cid: Some("agent0-agent".into()),
        client_id: Some("agent0-agent".into()),
        scp: Some(vec!["mcp:connect".into()]),
        scope: Some("mcp:connect".into()),
        auth_time: None,
        act: None,
    };
    let token = key.sign("at+jwt", &claims).unwrap();
    let client = crate::harness::Server::attach(&resource);
    let reply = client
        .rpc(
            Some(&token),
            None,
            &serde_json::json!({"jsonrpc":"2.0","id":1,"method":"ping"}),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(reply.json["jsonrpc"], "2.0", "{}", reply.text);
    assert_eq!(reply.json["error"]["code"], -32000);
    assert!(
        reply.json["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("try again")),
        "{}",
        reply.text
    );
    assert_eq!(reply.headers["retry-after"], "30");
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}
