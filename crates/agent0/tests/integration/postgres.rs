//! agent0 on PostgreSQL, end to end with the offline model: a turn one agent0 records, a second
//! agent0 on the same database lists, reopens and continues; a database outage during a chat is a
//! 503 with one sentence (never a hang), and the service recovers by itself when it is back.
//!
//! PostgreSQL is required: `AGENT0_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; each run uses a fresh schema, dropped afterwards.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent0::conversations::{ConversationStore, PostgresConversations};
use agent0::llm::offline::OfflineModel;
use dbconn::testing::TestSchema;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use super::harness::{AgentStack, Person};

/// The variable that points this test at another server.
const PG_ENV: &str = "AGENT0_TEST_DATABASE_URL";

fn pg_url() -> String {
    dbconn::testing::database_url(PG_ENV)
}

/// A fresh schema `t_<uuid>` (dropped with the guard), and stores in it.
struct Schema(TestSchema);

impl Schema {
    fn new() -> Self {
        Self(TestSchema::new(PG_ENV))
    }

    async fn store(&self, url: &str) -> Arc<dyn ConversationStore> {
        match PostgresConversations::connect_in_schema(url, self.0.name()).await {
            Ok(store) => Arc::new(store),
            Err(e) => panic!("{}", self.0.required(e)),
        }
    }
}

/// A TCP relay to PostgreSQL on 127.0.0.1:`port` (0: any): cutting it is an outage (every open
/// connection reset, new ones refused).
struct Relay {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(port: u16) -> Self {
        let target = url::Url::parse(&pg_url()).unwrap();
        let to = format!(
            "{}:{}",
            target.host_str().unwrap(),
            target.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let to = to.clone();
                links.spawn(async move {
                    let mut outbound = TcpStream::connect(to).await?;
                    tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await
                });
            }
        });
        Self { port, task }
    }

    /// The test database's URL through this relay.
    fn url(&self) -> String {
        let mut url = url::Url::parse(&pg_url()).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    /// Cuts every link and stops listening.
    async fn cut(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn conversations(person: &Person) -> Vec<Value> {
    let (status, list) = person.get("/api/conversations").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["conversations"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_recorded_by_one_agent0_is_listed_and_continued_by_another_on_postgres() {
    let schema = Schema::new();
    let relay = Relay::start(0).await;
    // The first agent0 reaches PostgreSQL through the relay, the second directly: two pools,
    // two instances, one database.
    let first = schema.store(&relay.url()).await;
    let second = schema.store(&pg_url()).await;
    let first_store = first.clone();
    let mut stack = AgentStack::start_with(Arc::new(OfflineModel::new()), move |config| {
        config.store = first_store;
    })
    .await;
    let alice = stack.login("alice").await;
    let reply = alice.chat("list my todos").await;
    let id = reply["conversationId"].as_str().unwrap().to_owned();

    // A second agent0 (new process state, its own pool) on the same database.
    stack.stop().await;
    stack.start_again_with(second).await;
    let alice = stack.login("alice").await;
    let list = conversations(&alice).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["title"], "list my todos");
    assert_eq!(list[0]["turns"], 1);
    let (status, opened) = alice.get(&format!("/api/conversations/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{opened}");
    assert_eq!(opened["messages"].as_array().unwrap().len(), 2, "{opened}");
    let (status, reply) = alice
        .post(
            "/api/chat",
            &json!({"message": "list my todos again", "conversationId": id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    // Another person sees none of it.
    let bob = stack.login("bob").await;
    assert!(conversations(&bob).await.is_empty());

    // Back on the first instance's pool: it reads what the second wrote.
    stack.stop().await;
    stack.start_again_with(first).await;
    let alice = stack.login("alice").await;
    let list = conversations(&alice).await;
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["turns"], 2);

    // The database goes away mid-service: a chat is a quick 503 with one sentence.
    let port = relay.port;
    relay.cut().await;
    let started = Instant::now();
    let response = alice
        .browser
        .http
        .post(stack.at("/api/chat"))
        .header("x-csrf-token", &alice.csrf)
        .json(&json!({"message": "list my todos", "conversationId": id}))
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unavailable", "{body}");
    assert_eq!(
        body["message"], "your conversations cannot be reached right now; try again in a moment",
        "one sentence, no internals"
    );

    // It comes back on the same address: agent0 recovers by itself.
    let relay = Relay::start(port).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, reply) = alice
            .post(
                "/api/chat",
                &json!({"message": "list my todos", "conversationId": id}),
            )
            .await;
        if status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: {status} {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(conversations(&alice).await[0]["turns"], 3);
    stack.stop().await;
    relay.cut().await;
}
