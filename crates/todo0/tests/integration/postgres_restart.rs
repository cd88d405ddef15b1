//! todo0's REST API on a PostgreSQL server that is stopped and started under load (issue 10,
//! "Faults and load"): requests during the outage answer 503 `temporarily_unavailable` with a
//! sentence for people, each within a bound (no hang), the API recovers by itself once the server
//! is back, and the todos in the database are exactly the acknowledged (201) adds.
//!
//! The server is a private one ([`PrivatePostgres`]) on its own port: the machine's shared
//! PostgreSQL, which other tests use at the same time, is never restarted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbconn::testing::PrivatePostgres;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use testkit::Stack;
use todo0::store::{PostgresStore, TodoStore};
use tokio::sync::Mutex;

/// What no single request may exceed, outage or not: a request waits at most
/// [`dbconn::ACQUIRE_TIMEOUT`] for a connection; the rest is slack for a loaded machine. A hang
/// check, not a performance assertion.
const ANSWER_BOUND: Duration = Duration::from_secs(dbconn::ACQUIRE_TIMEOUT.as_secs() + 5);
/// How long the API may take to work again once the server accepts connections.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);
const WRITERS: usize = 2;

/// One `POST /todos` and how it ended.
#[derive(Debug)]
struct Attempt {
    title: String,
    status: StatusCode,
    body: Value,
    took: Duration,
    at: Instant,
}

/// The web app + REST API on `store`, its access tokens from `stack`'s idp0 (as
/// `testkit::Stack::start_web_app` starts it on the stack's own store).
async fn start_web_app(stack: &Stack, store: Arc<dyn TodoStore>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let oidc = todo0::web::OidcSettings {
        issuer: stack.idp.issuer.clone(),
        client_id: "todo0".into(),
        client_secret: stack.idp.client_secret("todo0"),
        redirect_uri: testkit::TODO0_REDIRECT.into(),
        post_logout_redirect_uri: "http://localhost:5001/".into(),
    };
    let key =
        todo0::web::SessionKey::from_secret(&todo0::web::SessionKey::generate_secret()).unwrap();
    let config = todo0::web::WebConfig::new(oidc, key, stack.idp.todo0_issuer(), &stack.mcp_url);
    let jwks = protocol::verify::RemoteJwks::discover(
        protocol::discovery::http_client().unwrap(),
        &stack.idp.todo0_issuer(),
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let router = todo0::web::router(config, Arc::new(jwks), store, protocol::clock::system())
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Adds todos `w<writer>-<n>` one after another until `done`, recording every attempt. A failed
/// add is not retried under the same title, so each stored title was one acknowledged add.
async fn write(
    writer: usize,
    url: String,
    token: String,
    done: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Attempt>>>,
) {
    let http = reqwest::Client::builder()
        .timeout(ANSWER_BOUND * 2)
        .build()
        .unwrap();
    let mut n = 0;
    while !done.load(Ordering::Relaxed) {
        n += 1;
        let title = format!("w{writer}-{n}");
        let started = Instant::now();
        let response = http
            .post(format!("{url}/todos"))
            .bearer_auth(&token)
            .json(&json!({"title": title}))
            .send()
            .await
            .expect("an answer, never a dropped connection or a hang");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        log.lock().await.push(Attempt {
            title,
            status,
            body,
            took: started.elapsed(),
            at: Instant::now(),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `log` holds an attempt after `since` matching `wanted` (failing after `bound`).
async fn wait_for(
    log: &Mutex<Vec<Attempt>>,
    since: Instant,
    bound: Duration,
    what: &str,
    wanted: impl Fn(&Attempt) -> bool,
) -> Instant {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(found) = log.lock().await.iter().find(|a| a.at > since && wanted(a)) {
            return found.at;
        }
        assert!(Instant::now() < deadline, "no {what} within {bound:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn with_postgres_stopped_the_rest_api_answers_503_then_recovers_and_keeps_exactly_the_acknowledged_todos()
 {
    let mut pg = PrivatePostgres::launch()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let store = PostgresStore::connect(&pg.url()).await.unwrap();
    let stack = Stack::start().await.unwrap();
    let app = start_web_app(&stack, Arc::new(store)).await;
    let token = stack
        .mcp_token("alice", "mcp:connect mcp:tools:read mcp:tools:manage")
        .await
        .unwrap();

    let done = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            tokio::spawn(write(
                w,
                app.clone(),
                token.expose_secret().to_owned(),
                done.clone(),
                log.clone(),
            ))
        })
        .collect();
    let began = Instant::now();
    let created = |a: &Attempt| a.status == StatusCode::CREATED;
    let unavailable = |a: &Attempt| a.status == StatusCode::SERVICE_UNAVAILABLE;

    // Under load: stop the server, see adds fail, start it again, see adds succeed.
    wait_for(&log, began, RECOVERY_BOUND, "add", created).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.stop().await.unwrap();
    let stopped = Instant::now();
    wait_for(
        &log,
        stopped,
        ANSWER_BOUND * 2,
        "503 while stopped",
        unavailable,
    )
    .await;
    let health = reqwest::get(format!("{app}/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    pg.start().await.unwrap();
    let started = Instant::now();
    let recovered = wait_for(
        &log,
        started,
        RECOVERY_BOUND,
        "add after the start",
        created,
    )
    .await;
    eprintln!(
        "outage {:?}; first add {:?} after the server was back",
        started - stopped,
        recovered - started
    );
    // A few more adds on the recovered pool, then stop writing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let health = reqwest::get(format!("{app}/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    // Every answer came within the bound, and was a 201 or a 503 worded for people.
    let log = log.lock().await;
    let mut acknowledged = Vec::new();
    let mut failed = 0;
    for attempt in log.iter() {
        assert!(attempt.took < ANSWER_BOUND, "{attempt:?} took too long");
        match attempt.status {
            StatusCode::CREATED => {
                assert_eq!(attempt.body["title"], attempt.title.as_str());
                acknowledged.push(attempt.title.clone());
            }
            StatusCode::SERVICE_UNAVAILABLE => {
                failed += 1;
                assert_eq!(
                    attempt.body["error"], "temporarily_unavailable",
                    "{attempt:?}"
                );
                assert_eq!(
                    attempt.body["message"],
                    "the todo store is temporarily unavailable; please try again shortly"
                );
            }
            other => panic!("unexpected {other}: {attempt:?}"),
        }
    }
    let slowest = log.iter().map(|a| a.took).max().unwrap_or_default();
    eprintln!(
        "{} adds: {} acknowledged, {failed} answered 503; slowest answer {slowest:?}",
        log.len(),
        acknowledged.len()
    );
    assert!(failed >= 1 && acknowledged.len() >= 2, "{log:?}");

    // The database holds exactly the acknowledged todos: none lost, none extra, none twice.
    let mut conn = PgConnection::connect(&pg.url()).await.unwrap();
    let mut stored: Vec<String> = sqlx::query_scalar("SELECT title FROM todo0.todos")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    stored.sort();
    acknowledged.sort();
    assert_eq!(stored, acknowledged);

    // And the API lists them.
    let listed: Vec<Value> = reqwest::Client::new()
        .get(format!("{app}/todos"))
        .bearer_auth(token.expose_secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed.len(), acknowledged.len());
}
