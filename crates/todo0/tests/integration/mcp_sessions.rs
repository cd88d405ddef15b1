//! MCP sessions belong to the person who opened them, for as long as they exist: no number of
//! sessions opened by someone else unbinds them; each person and the server have a cap with a
//! clear refusal; idle and deleted sessions end and give their slot back.

use std::time::Duration;

use serde_json::{Value, json};
use todo0::domain::Owner;
use todo0::mcp::SessionLimits;

use crate::harness::{Backend, Server, call};

const ALL: &str = "mcp:connect mcp:tools:read mcp:tools:manage mcp:tools:delete";

fn init_body() -> Value {
    json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
}

/// The same `initialize`, opened by rmcp rather than the guard (an `Mcp-Method` header sends it
/// there; see `mcp_direct`): the limits refuse it the same way.
async fn init_through_rmcp(server: &Server, token: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(&server.url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-method", "initialize")
        .json(&init_body())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let json = serde_json::from_str(&response.text().await.unwrap()).unwrap_or(Value::Null);
    (status, retry_after, json)
}

async fn with_limits(idle: Duration, per_owner: usize, total: usize) -> Server {
    Server::start_with(Backend::Sqlite, |config| {
        config.sessions = SessionLimits {
            idle,
            per_owner,
            total,
            ..SessionLimits::default()
        }
    })
    .await
}

#[tokio::test]
async fn a_person_cannot_use_another_persons_session_however_many_they_open() {
    let server = with_limits(Duration::from_secs(600), 5, 100).await;
    let alice = server.token("alice", ALL);
    let bob = server.token("bob", ALL);
    let alices = server.initialize(&alice).await.unwrap();

    for _ in 0..5 {
        server.initialize(&bob).await.unwrap();
    }
    let refused = server.rpc(Some(&bob), None, &init_body()).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    assert_eq!(refused.json["jsonrpc"], "2.0");
    assert_eq!(refused.json["error"]["code"], -32000);
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("open MCP sessions"),
        "{}",
        refused.text
    );
    assert!(refused.headers.get("retry-after").is_some());
    let (status, retry_after, json) = init_through_rmcp(&server, &bob).await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (429, &json!(-32000)),
        "{json}"
    );
    assert!(retry_after.is_some());
    assert_eq!(server.sessions.count_for(&Owner::new("bob").unwrap()), 5);
    assert_eq!(server.sessions.len(), 6, "the refused session was not kept");

    // Alice's session is still hers, and refuses Bob on every method.
    assert_eq!(
        server.sessions.owner_of(&alices),
        Some(Owner::new("alice").unwrap())
    );
    let hijack = server
        .rpc(Some(&bob), Some(&alices), &call("get-todos", json!({})))
        .await;
    assert_eq!(hijack.status, 403, "{}", hijack.text);
    assert_eq!(server.delete_session(&bob, &alices).await, 403);
    let get = reqwest::Client::new()
        .get(&server.url)
        .bearer_auth(&bob)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &alices)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 403);
    let own = server
        .rpc(Some(&alice), Some(&alices), &call("get-todos", json!({})))
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
}

#[tokio::test]
async fn the_server_wide_cap_refuses_new_sessions_with_503() {
    let server = with_limits(Duration::from_secs(600), 10, 3).await;
    let alice = server.token("alice", ALL);
    let bob = server.token("bob", ALL);
    server.initialize(&alice).await.unwrap();
    server.initialize(&alice).await.unwrap();
    server.initialize(&bob).await.unwrap();
    let carol = server.token("carol", ALL);
    let refused = server.rpc(Some(&carol), None, &init_body()).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert_eq!(refused.json["error"]["code"], -32000);
    assert!(refused.headers.get("retry-after").is_some());
    let (status, retry_after, json) = init_through_rmcp(&server, &carol).await;
    assert_eq!(
        (status, &json["error"]["code"]),
        (503, &json!(-32000)),
        "{json}"
    );
    assert!(retry_after.is_some());
    assert_eq!(server.sessions.len(), 3);
}

#[tokio::test]
async fn a_deleted_session_ends_and_gives_its_slot_back() {
    let server = with_limits(Duration::from_secs(600), 2, 100).await;
    let alice = server.token("alice", ALL);
    let first = server.initialize(&alice).await.unwrap();
    server.initialize(&alice).await.unwrap();
    assert_eq!(
        server.rpc(Some(&alice), None, &init_body()).await.status,
        429
    );

    let deleted = server.delete_session(&alice, &first).await;
    assert!(deleted == 200 || deleted == 202, "{deleted}");
    assert_eq!(server.sessions.owner_of(&first), None);
    assert_eq!(server.sessions.count_for(&Owner::new("alice").unwrap()), 1);
    let gone = server
        .rpc(Some(&alice), Some(&first), &call("get-todos", json!({})))
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    server.initialize(&alice).await.unwrap();
}

#[tokio::test]
async fn idle_sessions_expire_and_busy_ones_do_not() {
    let server = with_limits(Duration::from_millis(600), 10, 100).await;
    let alice = server.token("alice", ALL);
    let idle = server.initialize(&alice).await.unwrap();
    let busy = server.initialize(&alice).await.unwrap();
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let reply = server
            .rpc(Some(&alice), Some(&busy), &call("get-todos", json!({})))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    // Over a second without a request: the idle one is gone, binding and all.
    let mut waited = 0;
    while server.sessions.owner_of(&idle).is_some() && waited < 50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += 1;
    }
    assert_eq!(server.sessions.owner_of(&idle), None);
    let expired = server
        .rpc(Some(&alice), Some(&idle), &call("get-todos", json!({})))
        .await;
    assert_eq!(expired.status, 404, "{}", expired.text);
    assert!(server.sessions.owner_of(&busy).is_some());
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Opens and deletes many sessions, three times: every one is released, binding and all. The
/// RSS figures are printed for the record only: the test binary's other tests share the process,
/// and the allocator keeps freed pages, so they are unfit for an assertion.
#[tokio::test]
async fn many_sessions_opened_and_deleted_leave_nothing_behind() {
    const N: usize = 500;
    let server = with_limits(Duration::from_secs(600), N, N).await;
    let alice = server.token("alice", ALL);
    let http = reqwest::Client::new();
    let post = |body: Value, session: Option<String>| {
        let mut request = http
            .post(&server.url)
            .bearer_auth(&alice)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let before = rss_kib();
    let mut figures = vec![];
    for _round in 0..3 {
        let mut ids = Vec::with_capacity(N);
        for _ in 0..N {
            let reply = post(init_body(), None).await.unwrap();
            assert_eq!(reply.status(), 200);
            let id = reply.headers()["mcp-session-id"]
                .to_str()
                .unwrap()
                .to_owned();
            reply.bytes().await.unwrap();
            let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
            post(done, Some(id.clone()))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            ids.push(id);
        }
        assert_eq!(server.sessions.len(), N);
        let open = rss_kib();
        for id in &ids {
            let status = http
                .delete(&server.url)
                .bearer_auth(&alice)
                .header("mcp-session-id", id)
                .header("mcp-protocol-version", "2025-11-25")
                .send()
                .await
                .unwrap()
                .status();
            assert!(status.is_success(), "{status}");
        }
        assert!(server.sessions.is_empty());
        tokio::time::sleep(Duration::from_millis(200)).await;
        figures.push((open, rss_kib()));
    }
    eprintln!("RSS before: {before} KiB; with {N} sessions / after deleting them: {figures:?} KiB");
    // The slots are free again.
    server.initialize(&alice).await.unwrap();
}
