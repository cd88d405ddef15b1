//! A session whose rmcp worker nothing uses is parked (its worker closed, its entry kept) and
//! gets a worker back, transparently, when a request needs rmcp: the client sees one session
//! throughout, and the owner checks, the idle expiry and `DELETE` work the same on a parked one.

use std::time::Duration;

use serde_json::{Value, json};
use todo0::mcp::SessionLimits;

use crate::harness::{Backend, Server, call};

/// How long an unused worker is kept in these tests (10 s by default).
const PARK_AFTER: Duration = Duration::from_millis(300);

/// A server whose unused workers are parked after [`PARK_AFTER`].
async fn server() -> Server {
    Server::start_with(Backend::Sqlite, |config| {
        config.sessions = SessionLimits {
            park_after: PARK_AFTER,
            ..SessionLimits::default()
        }
    })
    .await
}

const ALL: &str = "mcp:connect mcp:tools:read mcp:tools:manage mcp:tools:delete";

fn list(id: u64) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"})
}

/// Opens session `id`'s `GET` stream (server-to-client messages) with `token`.
async fn open_stream(server: &Server, token: &str, id: &str) -> reqwest::Result<reqwest::Response> {
    reqwest::Client::new()
        .get(&server.url)
        .bearer_auth(token)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", id)
        .header("mcp-protocol-version", "2025-11-25")
        .send()
        .await
}

/// Waits up to 5 s for session `id` to be parked; whether it was.
async fn parked_soon(server: &Server, id: &str) -> bool {
    for _ in 0..50 {
        if server.sessions.is_parked(id) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn a_session_is_parked_after_its_handshake_and_restored_for_what_rmcp_serves() {
    let server = server().await;
    let alice = server.token("alice", ALL);
    let id = server.initialize(&alice).await.unwrap();
    assert!(
        server.sessions.is_parked(&id),
        "no worker after the handshake"
    );
    assert_eq!(server.sessions.workers(), 0);

    // A plain tool call is answered without a worker.
    let created = server
        .rpc(
            Some(&alice),
            Some(&id),
            &call("create-todo", json!({"title": "parked"})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.structured()["todo"]["title"], "parked");
    assert!(server.sessions.is_parked(&id));

    // A listing goes through rmcp: the same session, with a worker again.
    let listed = server.rpc(Some(&alice), Some(&id), &list(2)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["id"], 2);
    let names: Vec<&str> = listed.json["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"get-todos") && names.contains(&"create-todo"),
        "{names:?}"
    );
    assert!(!server.sessions.is_parked(&id));
    assert_eq!(server.sessions.workers(), 1);

    // A call rmcp serves (its metadata is more than a progress token) sees the same todos.
    let mut with_meta = call("get-todos", json!({}));
    with_meta["params"]["_meta"] = json!({"trace": "x"});
    let routed = server.rpc(Some(&alice), Some(&id), &with_meta).await;
    assert_eq!(routed.status, 200, "{}", routed.text);
    assert_eq!(routed.structured()["count"], 1);

    // Unused for a while: parked again, and a second restore works as the first.
    assert!(parked_soon(&server, &id).await);
    let again = server.rpc(Some(&alice), Some(&id), &list(3)).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json["result"], listed.json["result"]);
    assert!(parked_soon(&server, &id).await);

    // Someone else cannot wake it, nor use it.
    let bob = server.token("bob", ALL);
    let foreign = server.rpc(Some(&bob), Some(&id), &list(4)).await;
    assert_eq!(foreign.status, 403, "{}", foreign.text);
    assert!(server.sessions.is_parked(&id));

    // DELETE ends a parked session like any other.
    let deleted = server.delete_session(&alice, &id).await;
    assert!(deleted == 200 || deleted == 202, "{deleted}");
    assert_eq!(server.sessions.owner_of(&id), None);
    let gone = server.rpc(Some(&alice), Some(&id), &list(5)).await;
    assert_eq!(gone.status, 404, "{}", gone.text);
    let gone = server
        .rpc(Some(&alice), Some(&id), &call("get-todos", json!({})))
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);
}

#[tokio::test]
async fn concurrent_requests_of_a_parked_session_restore_it_once_and_all_succeed() {
    let server = server().await;
    let alice = server.token("alice", ALL);
    let id = server.initialize(&alice).await.unwrap();
    assert!(server.sessions.is_parked(&id));
    let replies = futures::future::join_all((10..26).map(|n| {
        let (server, alice, id) = (&server, &alice, &id);
        async move { server.rpc(Some(alice), Some(id), &list(n)).await }
    }))
    .await;
    for (n, reply) in (10..26).zip(&replies) {
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["id"], n);
    }
    assert_eq!(server.sessions.workers(), 1);
    assert_eq!(server.sessions.len(), 1);
}

#[tokio::test]
async fn an_open_get_stream_keeps_the_worker_and_its_end_lets_the_session_park() {
    let server = server().await;
    let alice = server.token("alice", ALL);
    let id = server.initialize(&alice).await.unwrap();
    let stream = open_stream(&server, &alice, &id).await.unwrap();
    assert_eq!(stream.status(), 200);
    assert!(!server.sessions.is_parked(&id), "restored for the stream");
    tokio::time::sleep(PARK_AFTER * 5).await;
    assert!(
        !server.sessions.is_parked(&id),
        "kept while the stream is open"
    );
    // Tool calls work alongside it.
    let reply = server
        .rpc(Some(&alice), Some(&id), &call("get-todos", json!({})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    drop(stream);
    assert!(
        parked_soon(&server, &id).await,
        "parked once the stream ended"
    );
    let listed = server.rpc(Some(&alice), Some(&id), &list(2)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
}

#[tokio::test]
async fn by_default_a_restored_worker_is_kept_while_rmcp_keeps_finished_messages() {
    assert_eq!(
        SessionLimits::default().park_after,
        Duration::from_secs(10),
        "rmcp keeps a finished request's messages 10 s for a resuming client"
    );
    let server = Server::start(Backend::Sqlite, false).await;
    let alice = server.token("alice", ALL);
    let id = server.initialize(&alice).await.unwrap();
    assert!(server.sessions.is_parked(&id), "parked after the handshake");
    let listed = server.rpc(Some(&alice), Some(&id), &list(2)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        !server.sessions.is_parked(&id),
        "kept for a resuming client"
    );
}

/// What rmcp's client does right after the handshake: its `GET` stream and its first request
/// at the same moment, on a session parked a moment ago.
#[tokio::test]
async fn a_get_stream_and_a_request_at_once_after_the_handshake_both_succeed() {
    let server = server().await;
    let alice = server.token("alice", ALL);
    for n in 0..20 {
        let id = server.initialize(&alice).await.unwrap();
        let get = open_stream(&server, &alice, &id);
        let body = list(n);
        let (stream, listed) = tokio::join!(get, server.rpc(Some(&alice), Some(&id), &body));
        let stream = stream.unwrap();
        let status = stream.status();
        let body = if status == 200 {
            String::new()
        } else {
            stream.text().await.unwrap()
        };
        assert_eq!(status, 200, "GET, round {n}: {body}");
        assert_eq!(listed.status, 200, "tools/list, round {n}: {}", listed.text);
        let _ = server.delete_session(&alice, &id).await;
    }
}
