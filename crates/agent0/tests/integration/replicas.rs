//! Two agent0 replicas sharing one Redis (issue 10), as two `AppState`s in this process, each
//! with its own Redis connection and listener, the same cookie key, one idp0 and todo0: a
//! person logged in through replica A chats through replica B (and a warm token minted by B
//! serves A with no IdP round trip); a logout through B ends the session at A; N callers on two
//! replicas asking for one token at once cause exactly one exchange; with Redis gone, requests
//! fail fast with a 503 and recover by themselves when it is back.
//!
//! Redis is required (`AGENT0_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`): an unreachable
//! one fails the tests, saying what to start. Each test uses its own random key prefix and
//! deletes its keys at the end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent0::shared::SharedState;
use agent0::tokens::{IdJagTarget, Principal, TokenBroker};
use protocol::clock::FixedClock;
use protocol::{Clock, Scopes};
use reqwest::StatusCode;
use testkit::{Browser, IdpHandle, Stack};
use weblogin::SessionKey;

use crate::harness::{Person, config, login_at, serve};

pub(crate) fn redis_url() -> String {
    std::env::var("AGENT0_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub(crate) fn prefix() -> String {
    format!("agent0-test-{}:", uuid::Uuid::new_v4().simple())
}

async fn shared(url: &str, prefix: &str, clock: Arc<dyn protocol::Clock>) -> SharedState {
    SharedState::redis(url, prefix, clock)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "these tests need Redis ({e}). Start one: `redis-server --daemonize yes` \
                 (Debian: apt-get install redis-server), or point AGENT0_TEST_REDIS_URL at one"
            )
        })
}

/// The keys under `prefix`.
async fn keys(url: &str, prefix: &str) -> Vec<String> {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("KEYS")
        .arg(format!("{prefix}*"))
        .query_async(&mut conn)
        .await
        .unwrap()
}

/// Deletes every key under `prefix`.
pub(crate) async fn clean_up(url: &str, prefix: &str) {
    let keys = keys(url, prefix).await;
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    if !keys.is_empty() {
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<i64>(&mut conn)
            .await
            .unwrap();
    }
}

/// One replica: its state, address and server.
pub(crate) struct Replica {
    pub(crate) app: agent0::AppState,
    pub(crate) base: String,
    _server: (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ),
}

/// idp0 + todo0 and two agent0 replicas behind one public address (A's, as a load balancer
/// would present them), sharing Redis at `url` under `prefix`.
pub(crate) struct Replicas {
    pub(crate) stack: Stack,
    pub(crate) a: Replica,
    pub(crate) b: Replica,
}

impl Replicas {
    pub(crate) async fn start(url: &str, prefix: &str) -> Self {
        Self::start_at(url, prefix, None).await
    }

    /// With agent0's clock `clock` on both replicas (idp0 keeps real time).
    async fn start_at(url: &str, prefix: &str, clock: Option<Arc<FixedClock>>) -> Self {
        Self::start_with(url, prefix, clock, offline()).await
    }

    /// With `model` answering on both replicas.
    pub(crate) async fn start_with(
        url: &str,
        prefix: &str,
        clock: Option<Arc<FixedClock>>,
        model: Arc<dyn agent0::llm::Model>,
    ) -> Self {
        let listener_a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let listener_b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_a = format!("http://{}", listener_a.local_addr().unwrap());
        let base_b = format!("http://{}", listener_b.local_addr().unwrap());
        let stack = Stack::start_for_agent(&base_a).await.unwrap();
        // Replicas share the cookie key, as a deployment must.
        let secret = SessionKey::generate_secret();
        let public = base_a.clone();
        let mut replicas = Vec::new();
        // And one conversation store, as replicas on one PostgreSQL do.
        let mut store = None;
        for (listener, base) in [(listener_a, base_a), (listener_b, base_b)] {
            let mut config = config(&stack, &public, model.clone()).await;
            let store = store.get_or_insert_with(|| config.store.clone());
            config.store = store.clone();
            config.session_key = SessionKey::from_secret(&secret).unwrap();
            if let Some(clock) = &clock {
                config.clock = clock.clone();
            }
            let shared = shared(url, prefix, config.clock.clone()).await;
            let app = agent0::AppState::with_shared_state(config, shared)
                .await
                .unwrap();
            let server = serve(listener, &app);
            replicas.push(Replica {
                app,
                base,
                _server: server,
            });
        }
        let b = replicas.pop().unwrap();
        let a = replicas.pop().unwrap();
        Self { stack, a, b }
    }

    fn exchanges(&self) -> (u64, u64) {
        (
            self.a.app.agent().hub().broker().exchange_count(),
            self.b.app.agent().hub().broker().exchange_count(),
        )
    }
}

fn offline() -> Arc<dyn agent0::llm::Model> {
    Arc::new(agent0::llm::offline::OfflineModel::new())
}

/// `person` now talks to `replica`.
pub(crate) fn through(person: &mut Person, replica: &Replica) {
    person.base = replica.base.clone();
}

#[tokio::test]
async fn a_person_logged_in_through_one_replica_chats_through_the_other() {
    let (url, prefix) = (redis_url(), prefix());
    let replicas = Replicas::start(&url, &prefix).await;
    let mut alice = login_at(&replicas.stack, &replicas.a.base, "alice").await;

    // The browser's cookie reaches B (same host, another port): B knows the session.
    through(&mut alice, &replicas.b);
    let (status, me) = alice.get("/auth/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["authenticated"], true, "{me}");
    assert_eq!(
        me["csrf"],
        alice.csrf.as_str(),
        "one session, one CSRF token"
    );
    let reply = alice.chat_approved("list my todos").await;
    let tools = reply["toolResults"].as_array().unwrap();
    assert_eq!(tools.len(), 1, "{reply}");
    assert_eq!(tools[0]["tool"], "get-todos");
    assert_eq!(tools[0]["isError"], false, "{reply}");
    assert_eq!(replicas.exchanges(), (0, 1), "B exchanged once");

    // Back on A, the token B minted is in the shared cache: no IdP round trip.
    through(&mut alice, &replicas.a);
    let reply = alice.chat_approved("list my todos").await;
    assert_eq!(reply["toolResults"][0]["isError"], false, "{reply}");
    assert_eq!(replicas.exchanges(), (0, 1), "warm across replicas");

    // Logging out through B ends the session at A too.
    through(&mut alice, &replicas.b);
    let response = alice
        .browser
        .http
        .post(format!("{}/auth/logout", replicas.b.base))
        .header("x-csrf-token", &alice.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The session is gone from the shared store, so from A too.
    assert!(keys(&url, &format!("{prefix}session:")).await.is_empty());
    through(&mut alice, &replicas.a);
    let (_, me) = alice.get("/auth/status").await;
    assert_eq!(me["authenticated"], false, "{me}");
    clean_up(&url, &prefix).await;
}

#[tokio::test]
async fn a_replica_sees_a_login_it_did_not_see_and_forgets_a_flushed_one() {
    let (url, prefix) = (redis_url(), prefix());
    let replicas = Replicas::start(&url, &prefix).await;
    let mut bob = login_at(&replicas.stack, &replicas.a.base, "bob").await;
    through(&mut bob, &replicas.b);
    assert_eq!(bob.get("/auth/status").await.1["authenticated"], true);
    // Redis evicted or lost the session: "log in again", never an error page.
    clean_up(&url, &prefix).await;
    let (status, me) = bob.get("/auth/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["authenticated"], false, "{me}");
    let (status, body) = bob.get("/api/me/claims").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "login_expired");
}

/// agent0 renews an ID token this many seconds before it expires.
const RENEW_MARGIN: i64 = 60;

#[tokio::test]
async fn two_replicas_renewing_one_session_at_once_rotate_its_refresh_token_once() {
    let (url, prefix) = (redis_url(), prefix());
    let clock = FixedClock::frozen_now();
    let replicas = Replicas::start_at(&url, &prefix, Some(clock.clone())).await;
    let alice = login_at(&replicas.stack, &replicas.a.base, "alice").await;
    let (_, mut current) = alice.get("/api/me/claims").await;
    for round in 0..2 {
        // Exactly at the renewal margin of the current ID token, from agent0's point of view,
        // on both replicas at once: a refresh token used twice would be refused by idp0
        // (rotation), ending the session on one of them. idp0 keeps real time: two seconds
        // later its renewed token outlives the margin, so one renewal serves everyone.
        let expires = current["claims"]["exp"].as_i64().unwrap();
        clock.advance(expires - RENEW_MARGIN - clock.now());
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let calls: Vec<_> = (0..6)
            .map(|i| {
                let http = alice.browser.http.clone();
                let base = [&replicas.a.base, &replicas.b.base][i % 2].clone();
                tokio::spawn(async move {
                    let response = http
                        .get(format!("{base}/api/me/claims"))
                        .send()
                        .await
                        .unwrap();
                    let status = response.status();
                    (status, response.json::<serde_json::Value>().await.unwrap())
                })
            })
            .collect();
        let mut issued = Vec::new();
        for call in calls {
            let (status, body) = call.await.unwrap();
            assert_eq!(status, StatusCode::OK, "round {round}: {body}");
            issued.push(body["claims"]["iat"].clone());
        }
        issued.dedup();
        assert_eq!(
            issued.len(),
            1,
            "round {round}: one renewal, seen by all: {issued:?}"
        );
        assert_ne!(
            issued[0], current["claims"]["iat"],
            "round {round}: renewed"
        );
        current = alice.get("/api/me/claims").await.1;
    }
    clean_up(&url, &prefix).await;
}

#[tokio::test]
async fn two_replicas_asked_for_one_token_at_once_make_one_exchange() {
    let (url, prefix) = (redis_url(), prefix());
    let resource = "http://127.0.0.1:9/mcp";
    let idp = IdpHandle::start_for_resource(resource).await.unwrap();
    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let alice = Principal {
        subject: "alice".into(),
        name: "Alice".into(),
        email: None,
        id_token: login.id_token.unwrap(),
    };
    let target = IdJagTarget {
        connection: "todo0".into(),
        as_issuer: idp.todo0_issuer(),
        as_token_endpoint: idp.todo0_token_endpoint(),
        resource: resource.into(),
    };
    let scopes = Scopes::parse("mcp:connect mcp:tools:read").unwrap();
    let clock = FixedClock::frozen_now();
    let mut brokers = Vec::new();
    for _ in 0..2 {
        // Each replica: its own Redis connection, cache and in-process locks.
        let shared = shared(&url, &prefix, clock.clone()).await;
        brokers.push(Arc::new(
            TokenBroker::shared(
                idp.org_token_endpoint(),
                idp.agent_auth(),
                clock.clone(),
                shared.tokens,
                shared.leases,
            )
            .unwrap(),
        ));
    }
    let (alice, target, scopes) = (Arc::new(alice), Arc::new(target), Arc::new(scopes));
    let calls: Vec<_> = (0..10)
        .map(|i| {
            let broker = brokers[i % 2].clone();
            let (alice, target, scopes) = (alice.clone(), target.clone(), scopes.clone());
            tokio::spawn(async move {
                broker
                    .access_token(&alice, &target, &scopes)
                    .await
                    .map(|t| t.expires_at)
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let mut expiries = Vec::new();
    for call in calls {
        expiries.push(call.await.unwrap().unwrap());
    }
    expiries.dedup();
    assert_eq!(expiries.len(), 1, "every caller got the one token");
    let exchanges: u64 = brokers.iter().map(|b| b.exchange_count()).sum();
    assert_eq!(exchanges, 1, "the IdP's token endpoint saw one exchange");
    clean_up(&url, &prefix).await;
}

#[tokio::test]
async fn with_redis_gone_requests_fail_fast_and_recover_when_it_is_back() {
    // A private Redis this test may stop and start.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let start_redis = || {
        std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (Debian: apt-get install redis-server)")
    };
    let wait_up = || async {
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the private redis-server did not start");
    };
    let mut server = start_redis();
    wait_up().await;
    let url = format!("redis://127.0.0.1:{port}");
    let replicas = Replicas::start(&url, "agent0:").await;
    let mut alice = login_at(&replicas.stack, &replicas.a.base, "alice").await;
    through(&mut alice, &replicas.b);

    server.kill().unwrap();
    server.wait().unwrap();
    let started = Instant::now();
    let (status, body) = alice.get("/api/me/claims").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert_eq!(
        body["message"],
        "sessions cannot be reached right now; try again in a moment"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Back (empty: this Redis keeps nothing on disk): the replica reconnects by itself, and
    // the lost session means "log in again".
    let mut server = start_redis();
    wait_up().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = alice.get("/api/me/claims").await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["error"], "login_expired");
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = login_at(&replicas.stack, &replicas.b.base, "alice").await;
    assert_eq!(again.get("/auth/status").await.1["authenticated"], true);
    server.kill().unwrap();
    server.wait().unwrap();
}
