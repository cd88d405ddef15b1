//! MCP sessions of `McpHub` (issue 10): one person's slow `initialize` does not hold up anyone
//! else, concurrent first calls of one person open one session, and sessions are closed at
//! logout and shutdown. The peer is a small open (no-token) MCP server speaking Streamable HTTP
//! with JSON responses on 127.0.0.1:0, whose first `initialize` waits until the test lets it go.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use agent0::config::AuthStrategy;
use agent0::mcp::{McpHub, McpServer};
use agent0::tokens::{Principal, TokenBroker};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use protocol::token_client::ClientAuth;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

#[derive(Clone)]
struct StandIn {
    initializes: Arc<AtomicUsize>,
    deletes: Arc<AtomicUsize>,
    /// The first `initialize` takes one permit before answering (none until the test adds it).
    first_gate: Arc<Semaphore>,
    /// How long every later `initialize` takes.
    delay: Duration,
}

struct Rig {
    hub: Arc<McpHub>,
    server: McpServer,
    stand_in: StandIn,
}

impl Rig {
    async fn start(gate_first: bool, delay: Duration) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let stand_in = StandIn {
            initializes: Arc::new(AtomicUsize::new(0)),
            deletes: Arc::new(AtomicUsize::new(0)),
            first_gate: Arc::new(Semaphore::new(if gate_first { 0 } else { 1 })),
            delay,
        };
        let router = axum::Router::new()
            .route(
                "/mcp",
                post(post_mcp)
                    .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
                    .delete(delete_mcp),
            )
            .with_state(stand_in.clone());
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
        Self {
            hub,
            server,
            stand_in,
        }
    }

    fn list_tools(&self, who: &str) -> tokio::task::JoinHandle<Result<usize, String>> {
        let (hub, server, who) = (self.hub.clone(), self.server.clone(), person(who));
        tokio::spawn(async move {
            hub.list_tools(&who, &server)
                .await
                .map(|tools| tools.len())
                .map_err(|e| e.to_string())
        })
    }

    fn initializes(&self) -> usize {
        self.stand_in.initializes.load(Ordering::SeqCst)
    }

    fn deletes(&self) -> usize {
        self.stand_in.deletes.load(Ordering::SeqCst)
    }
}

fn person(subject: &str) -> Principal {
    Principal {
        subject: subject.into(),
        name: subject.into(),
        email: None,
        id_token: "unused".into(),
    }
}

async fn post_mcp(State(stand_in): State<StandIn>, Json(message): Json<Value>) -> Response {
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match message["method"].as_str().unwrap_or_default() {
        "initialize" => {
            let n = stand_in.initializes.fetch_add(1, Ordering::SeqCst);
            if n == 0 {
                let _permit = stand_in.first_gate.acquire().await.unwrap();
            } else {
                tokio::time::sleep(stand_in.delay).await;
            }
            let session = format!("session-{n}");
            return super::harness::stand_in::initialized(id, &message, "stand-in", session);
        }
        "tools/list" => json!({"tools": [{
            "name": "ping",
            "description": "Answers pong.",
            "inputSchema": {"type": "object"},
        }]}),
        _ => return super::harness::stand_in::method_not_found(id),
    };
    super::harness::stand_in::result(id, result)
}

async fn delete_mcp(State(stand_in): State<StandIn>) -> StatusCode {
    stand_in.deletes.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_slow_initialize_for_one_person_does_not_delay_another() {
    let rig = Rig::start(true, Duration::ZERO).await;
    let alice = rig.list_tools("alice");
    wait_for("alice's initialize", || rig.initializes() == 1).await;

    // Alice's initialize hangs until released; Bob's whole call finishes meanwhile.
    let started = Instant::now();
    let bob = tokio::time::timeout(Duration::from_secs(5), rig.list_tools("bob"))
        .await
        .expect("bob was held up by alice's session")
        .unwrap();
    assert_eq!(bob, Ok(1));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!alice.is_finished(), "alice's initialize is still held");

    rig.stand_in.first_gate.add_permits(1);
    assert_eq!(alice.await.unwrap(), Ok(1));
    assert_eq!(rig.initializes(), 2);
}

#[tokio::test]
async fn concurrent_first_calls_of_one_person_open_one_session() {
    let rig = Rig::start(false, Duration::from_millis(200)).await;
    let calls: Vec<_> = (0..4).map(|_| rig.list_tools("alice")).collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok(1));
    }
    assert_eq!(rig.initializes(), 1, "one session for alice");

    // Someone else gets their own session.
    assert_eq!(rig.list_tools("bob").await.unwrap(), Ok(1));
    assert_eq!(rig.initializes(), 2);
}

#[tokio::test]
async fn sessions_close_at_logout_and_at_shutdown() {
    let rig = Rig::start(false, Duration::ZERO).await;
    assert_eq!(rig.list_tools("alice").await.unwrap(), Ok(1));
    assert_eq!(rig.list_tools("bob").await.unwrap(), Ok(1));
    assert_eq!(rig.initializes(), 2);

    rig.hub.forget_person("alice").await;
    wait_for("alice's session to close", || rig.deletes() == 1).await;
    // Her next call opens a new session (the tool list was forgotten too); Bob's is untouched.
    assert_eq!(rig.list_tools("alice").await.unwrap(), Ok(1));
    assert_eq!(rig.initializes(), 3);

    rig.hub.close_all(Duration::from_secs(3)).await;
    wait_for("every session to close", || rig.deletes() == 3).await;
}
