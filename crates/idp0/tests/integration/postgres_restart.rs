//! idp0's token endpoint on a PostgreSQL server that is stopped and started under load (issue
//! 10, "Faults and load"): refresh-token rotations during the outage answer 503
//! `temporarily_unavailable` with `Retry-After`, each within a bound (no hang); the endpoint
//! recovers by itself; a rotation that was refused consumed nothing, so the person's refresh token
//! keeps working (never "reuse detected" and a revoked login); and the database records exactly
//! the acknowledged rotations.
//!
//! The server is a private one ([`PrivatePostgres`]) on its own port: the machine's shared
//! PostgreSQL, which other tests use at the same time, is never restarted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbconn::testing::PrivatePostgres;
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use testkit::{Browser, IdpHandle};
use tokio::sync::Mutex;

/// What no single request may exceed, outage or not: a request waits at most
/// [`dbconn::ACQUIRE_TIMEOUT`] for a connection; the rest is slack for a loaded machine. A hang
/// check, not a performance assertion.
const ANSWER_BOUND: Duration = Duration::from_secs(dbconn::ACQUIRE_TIMEOUT.as_secs() + 5);
/// How long the endpoint may take to work again once the server accepts connections.
const RECOVERY_BOUND: Duration = Duration::from_secs(15);
/// Concurrent logins, each rotating its own refresh token.
const CHAINS: usize = 3;

/// One refresh request and how it ended.
#[derive(Debug)]
struct Attempt {
    chain: usize,
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
    took: Duration,
    at: Instant,
}

/// Rotates one login's refresh token until `done`: on 200 the new token replaces the old one, on
/// anything else the same token is presented again (what a client does after a 503).
async fn rotate(
    chain: usize,
    endpoint: String,
    secret: String,
    mut refresh_token: String,
    done: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Attempt>>>,
) {
    let http = reqwest::Client::builder()
        .timeout(ANSWER_BOUND * 2)
        .build()
        .unwrap();
    while !done.load(Ordering::Relaxed) {
        let started = Instant::now();
        let response = http
            .post(&endpoint)
            .basic_auth("agent0", Some(&secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh_token),
            ])
            .send()
            .await
            .expect("an answer, never a dropped connection or a hang");
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == StatusCode::OK {
            refresh_token = body["refresh_token"].as_str().unwrap().to_owned();
        }
        let mut body = body;
        for secret in ["access_token", "refresh_token", "id_token"] {
            body.as_object_mut().map(|o| o.remove(secret));
        }
        log.lock().await.push(Attempt {
            chain,
            status,
            retry_after,
            body,
            took: started.elapsed(),
            at: Instant::now(),
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every chain in `chains` has an attempt after `since` matching `wanted` (failing
/// after `bound`); returns when the last one came.
async fn wait_for_all(
    log: &Mutex<Vec<Attempt>>,
    chains: &[usize],
    since: Instant,
    bound: Duration,
    what: &str,
    wanted: impl Fn(&Attempt) -> bool,
) -> Instant {
    let deadline = Instant::now() + bound;
    loop {
        let found: Vec<Instant> = {
            let log = log.lock().await;
            chains
                .iter()
                .filter_map(|c| {
                    log.iter()
                        .find(|a| a.chain == *c && a.at > since && wanted(a))
                        .map(|a| a.at)
                })
                .collect()
        };
        if found.len() == chains.len() {
            return found.into_iter().max().unwrap_or(since);
        }
        if Instant::now() >= deadline {
            let log = log.lock().await;
            let last: Vec<&Attempt> = log.iter().rev().take(2 * chains.len()).collect();
            panic!("no {what} on every chain within {bound:?}; the last attempts: {last:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn with_postgres_stopped_refreshes_answer_503_then_recover_and_only_acknowledged_rotations_count()
 {
    let mut pg = PrivatePostgres::launch()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let idp = IdpHandle::start_replica(dir.path(), &pg.url())
        .await
        .unwrap();
    let endpoint = idp.org_token_endpoint();
    let secret = idp.client_secret("agent0").expose_secret().to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut chains = Vec::new();
    for chain in 0..CHAINS {
        let login = idp.login(&Browser::new(), "alice").await.unwrap();
        let refresh_token = login.refresh_token.unwrap().expose_secret().to_owned();
        chains.push(tokio::spawn(rotate(
            chain,
            endpoint.clone(),
            secret.clone(),
            refresh_token,
            done.clone(),
            log.clone(),
        )));
    }
    let all: Vec<usize> = (0..CHAINS).collect();
    let ok = |a: &Attempt| a.status == StatusCode::OK;
    let unavailable = |a: &Attempt| a.status == StatusCode::SERVICE_UNAVAILABLE;

    // Under load: stop the server, see every chain refused, start it, see every chain work.
    wait_for_all(&log, &all, Instant::now(), RECOVERY_BOUND, "rotation", ok).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    pg.stop().await.unwrap();
    let stopped = Instant::now();
    wait_for_all(&log, &all, stopped, ANSWER_BOUND * 2, "503", unavailable).await;
    pg.start().await.unwrap();
    let started = Instant::now();
    let recovered = wait_for_all(
        &log,
        &all,
        started,
        RECOVERY_BOUND,
        "rotation after the start",
        ok,
    )
    .await;
    eprintln!(
        "outage {:?}; every chain rotated again {:?} after the server was back",
        started - stopped,
        recovered - started
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, Ordering::Relaxed);
    for chain in chains {
        chain.await.unwrap();
    }

    // Every answer came within the bound, and was a 200 or a 503 with Retry-After.
    let log = log.lock().await;
    let mut acknowledged = 0;
    let mut failed = 0;
    for attempt in log.iter() {
        assert!(attempt.took < ANSWER_BOUND, "{attempt:?} took too long");
        match attempt.status {
            StatusCode::OK => acknowledged += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                failed += 1;
                assert_eq!(
                    attempt.body["error"], "temporarily_unavailable",
                    "{attempt:?}"
                );
                assert!(
                    attempt.body["error_description"]
                        .as_str()
                        .is_some_and(|d| d.contains("try again")),
                    "{attempt:?}"
                );
                assert_eq!(attempt.retry_after.as_deref(), Some("5"), "{attempt:?}");
            }
            other => {
                panic!("unexpected {other} (a refused rotation consumed the token?): {attempt:?}")
            }
        }
    }
    let slowest = log.iter().map(|a| a.took).max().unwrap_or_default();
    eprintln!(
        "{} refreshes: {acknowledged} acknowledged, {failed} answered 503; slowest {slowest:?}",
        log.len()
    );

    // The database records exactly the acknowledged rotations (each consumed one token and issued
    // one), and no login was revoked.
    let mut conn = PgConnection::connect(&pg.url()).await.unwrap();
    let consumed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM idp0.refresh_tokens WHERE used_at IS NOT NULL")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let revoked: i64 = sqlx::query_scalar("SELECT count(*) FROM idp0.revoked_families")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let _ = conn.close().await;
    assert_eq!(consumed, acknowledged);
    assert_eq!(revoked, 0);
    idp.stop().await.unwrap();
}
