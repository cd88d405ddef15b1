//! agent0 with conversations on PostgreSQL and sessions on Redis, each a private server of this
//! test's own that is restarted while people chat (issue 10, "Faults and load"):
//!
//! - PostgreSQL stopped: chat turns answer 503 with one sentence, each within a bound (no hang);
//!   started again: turns work again by themselves, and the stored turns are exactly the
//!   acknowledged ones (none lost, none half-stored, none twice).
//! - Redis restarted (it keeps nothing on disk, so every session is gone): requests answer fast,
//!   503 while it is down, then "log in again" (401 `login_expired`), never an error page or
//!   another person's session; after logging in again each person chats on, with every
//!   acknowledged turn still there.
//!
//! `replicas.rs` covers Redis disappearing under two replicas; here the servers are really
//! stopped and started ([`PrivatePostgres`], [`PrivateRedis`]) under a loop of turns. The machine's
//! shared servers, which other tests use at the same time, are never restarted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent0::conversations::PostgresConversations;
use agent0::shared::SharedState;
use dbconn::testing::{PrivatePostgres, PrivateRedis};
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::Stack;
use tokio::sync::Mutex;

use super::harness::{Person, config, login_at, serve};

/// What no single request may exceed, outage or not: a request waits at most
/// [`dbconn::ACQUIRE_TIMEOUT`] for a database connection; the rest is slack for a loaded
/// machine. A hang check, not a performance assertion.
const ANSWER_BOUND: Duration = Duration::from_secs(dbconn::ACQUIRE_TIMEOUT.as_secs() + 5);
/// How long agent0 may take to work again once the server accepts connections.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);

/// idp0 + todo0, and one agent0 on the private servers.
struct Agent {
    stack: Stack,
    base: String,
    _server: (
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    ),
}

impl Agent {
    async fn start(pg: &PrivatePostgres, redis: &PrivateRedis) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stack = Stack::start_for_agent(&base).await.unwrap();
        let model = Arc::new(agent0::llm::offline::OfflineModel::new());
        let mut config = config(&stack, &base, model).await;
        config.store = Arc::new(PostgresConversations::connect(&pg.url()).await.unwrap());
        let shared = SharedState::redis(&redis.url(), "agent0:", config.clock.clone())
            .await
            .unwrap();
        let app = agent0::AppState::with_shared_state(config, shared)
            .await
            .unwrap();
        let server = serve(listener, &app);
        Self {
            stack,
            base,
            _server: server,
        }
    }

    async fn login(&self, user: &str) -> Person {
        login_at(&self.stack, &self.base, user).await
    }
}

/// One chat turn in conversation `id`: its status, body and how long it took.
async fn turn(person: &Person, id: &str) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let (status, body) = person
        .post(
            "/api/chat",
            &json!({"message": "hello", "conversationId": id}),
        )
        .await;
    let took = started.elapsed();
    assert!(took < ANSWER_BOUND, "a turn took {took:?}: {status} {body}");
    (status, body, took)
}

/// The number of turns stored in `person`'s conversation `id`.
async fn stored_turns(person: &Person, id: &str) -> u64 {
    let (status, list) = person.get("/api/conversations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let conversations = list["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1, "{list}");
    assert_eq!(conversations[0]["id"], id);
    let (status, opened) = person.get(&format!("/api/conversations/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    let turns = conversations[0]["turns"].as_u64().unwrap();
    assert_eq!(
        opened["messages"].as_array().unwrap().len() as u64,
        2 * turns,
        "each stored turn whole: the message and the answer"
    );
    turns
}

/// A first turn, which opens `person`'s conversation; its id.
async fn open_conversation(person: &Person) -> String {
    let reply = person.chat("hello").await;
    reply["conversationId"].as_str().unwrap().to_owned()
}

/// One turn's outcome, for the log the PostgreSQL test keeps.
#[derive(Debug)]
struct Outcome {
    user: &'static str,
    status: StatusCode,
    body: Value,
    took: Duration,
    at: Instant,
}

/// `person` chats in conversation `id`, one turn after another, until `done`; every outcome goes
/// to `log`. Hands the person back at the end.
async fn chat_until(
    user: &'static str,
    person: Person,
    id: String,
    done: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Outcome>>>,
) -> Person {
    while !done.load(Ordering::Relaxed) {
        let (status, body, took) = turn(&person, &id).await;
        log.lock().await.push(Outcome {
            user,
            status,
            body,
            took,
            at: Instant::now(),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    person
}

/// Waits until every user in `users` has an outcome after `since` with `status`.
async fn wait_for(
    log: &Mutex<Vec<Outcome>>,
    users: &[&str],
    since: Instant,
    bound: Duration,
    status: StatusCode,
) {
    let deadline = Instant::now() + bound;
    loop {
        let seen = {
            let log = log.lock().await;
            users.iter().all(|u| {
                log.iter()
                    .any(|o| o.user == *u && o.at > since && o.status == status)
            })
        };
        if seen {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not every person saw {status} within {bound:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_restarted_mid_chat_turns_fail_fast_recover_and_exactly_the_acknowledged_turns_are_stored()
 {
    let mut pg = PrivatePostgres::launch()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let redis = PrivateRedis::launch()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let agent = Agent::start(&pg, &redis).await;
    let users = ["alice", "bob"];
    let done = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut chats = Vec::new();
    let mut ids = Vec::new();
    for user in users {
        let person = agent.login(user).await;
        let id = open_conversation(&person).await;
        ids.push(id.clone());
        chats.push(tokio::spawn(chat_until(
            user,
            person,
            id,
            done.clone(),
            log.clone(),
        )));
    }

    // Under load: stop the server, see every person's turn refused, start it, see them all work.
    wait_for(&log, &users, Instant::now(), RECOVERY_BOUND, StatusCode::OK).await;
    pg.stop().await.unwrap();
    let stopped = Instant::now();
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    wait_for(&log, &users, stopped, ANSWER_BOUND * 2, unavailable).await;
    pg.start().await.unwrap();
    let started = Instant::now();
    wait_for(&log, &users, started, RECOVERY_BOUND, StatusCode::OK).await;
    let recovered = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    let mut people = Vec::new();
    for chat in chats {
        people.push(chat.await.unwrap());
    }

    // Every turn was acknowledged or a 503 with one sentence, never "log in again": the session
    // (on Redis) outlived the outage.
    let log = log.lock().await;
    for outcome in log.iter() {
        match outcome.status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(outcome.body["error"], "unavailable", "{outcome:?}");
                assert_eq!(
                    outcome.body["message"],
                    "your conversations cannot be reached right now; try again in a moment"
                );
            }
            other => panic!("a turn answered {other}: {outcome:?}"),
        }
    }
    let slowest = log.iter().map(|o| o.took).max().unwrap_or_default();
    let failed = log.iter().filter(|o| o.status == unavailable).count();
    eprintln!(
        "{} turns: {failed} answered 503 (slowest {slowest:?}); recovered {recovered:?} after \
         the server was back",
        log.len()
    );

    // Each conversation holds exactly its acknowledged turns (the opening one included).
    for ((user, person), id) in users.iter().zip(&people).zip(&ids) {
        let acknowledged = 1 + log
            .iter()
            .filter(|o| o.user == *user && o.status == StatusCode::OK)
            .count() as u64;
        assert_eq!(stored_turns(person, id).await, acknowledged, "{user}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_restarted_mid_chat_people_log_in_again_and_keep_exactly_their_acknowledged_turns()
 {
    let pg = PrivatePostgres::launch()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut redis = PrivateRedis::launch()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let agent = Agent::start(&pg, &redis).await;
    let alice = agent.login("alice").await;
    let bob = agent.login("bob").await;
    let alice_id = open_conversation(&alice).await;
    let bob_id = open_conversation(&bob).await;
    let (mut alice_turns, mut bob_turns) = (1, 1);
    for _ in 0..2 {
        for (person, id, count) in [
            (&alice, &alice_id, &mut alice_turns),
            (&bob, &bob_id, &mut bob_turns),
        ] {
            let (status, body, _) = turn(person, id).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            *count += 1;
        }
    }

    // Down: every request answers fast with a 503 and one sentence.
    redis.stop().await.unwrap();
    for (person, id) in [(&alice, &alice_id), (&bob, &bob_id)] {
        let (status, body, took) = turn(person, id).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert_eq!(body["error"], "unavailable", "{body}");
        assert_eq!(
            body["message"],
            "sessions cannot be reached right now; try again in a moment"
        );
        assert!(took < Duration::from_secs(5), "{took:?}");
    }

    // Back, empty: agent0 reconnects by itself, and each person is told to log in again.
    redis.start().await.unwrap();
    let started = Instant::now();
    for (person, id) in [(&alice, &alice_id), (&bob, &bob_id)] {
        loop {
            let (status, body, _) = turn(person, id).await;
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(body["error"], "login_expired", "{body}");
                break;
            }
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            assert!(started.elapsed() < RECOVERY_BOUND, "not recovered: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (status, me) = person.get("/auth/status").await;
        assert_eq!(status, StatusCode::OK, "{me}");
        assert_eq!(me["authenticated"], false, "{me}");
        let (status, claims) = person.get("/api/me/claims").await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "no one's claims: {claims}"
        );
    }
    eprintln!(
        "sessions answered 'log in again' {:?} after Redis was back",
        started.elapsed()
    );

    // Logged in again, each person is themselves and chats on in their own conversation, which
    // holds exactly their acknowledged turns.
    for (user, id, count) in [
        ("alice", &alice_id, &mut alice_turns),
        ("bob", &bob_id, &mut bob_turns),
    ] {
        let person = agent.login(user).await;
        let (status, claims) = person.get("/api/me/claims").await;
        assert_eq!(status, StatusCode::OK, "{claims}");
        let email = claims["claims"]["email"].as_str().unwrap_or_default();
        assert!(email.starts_with(user), "{user} got {claims}");
        let (status, body, _) = turn(&person, id).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        *count += 1;
        assert_eq!(stored_turns(&person, id).await, *count);
    }
}
