//! The [`SessionStore`], [`TokenCache`] and [`Leases`] contracts, run against the in-process
//! implementations and Redis (each test under its own random key prefix, whose keys it deletes
//! at the end), plus what only Redis can get wrong: records bound to their keys, no subject or
//! scope in key names, TTLs set, an unreachable Redis named without its password.
//!
//! Redis is required: `AGENT0_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`. An unreachable
//! server fails the tests, saying what to start.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::clock::FixedClock;
use protocol::{Scopes, UnixTime};
use rstest::rstest;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use super::redis::{RedisConn, hashed};
use super::*;
use crate::session::Session;
use crate::tokens::{AccessToken, Principal, TokenKey};

/// The variable that points the Redis cases at another server.
const REDIS_ENV: &str = "AGENT0_TEST_REDIS_URL";

fn redis_url() -> String {
    std::env::var(REDIS_ENV).unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

#[derive(Debug, Clone, Copy)]
enum Backend {
    InProcess,
    Redis,
}

/// A fresh shared state (Redis: under a random prefix, cleaned up by [`Rig::finish`]).
struct Rig {
    shared: SharedState,
    clock: Arc<FixedClock>,
    redis: Option<(RedisConn, String)>,
}

impl Rig {
    async fn start(backend: Backend) -> Self {
        let clock = FixedClock::frozen_now();
        match backend {
            Backend::InProcess => Self {
                shared: SharedState::in_process(clock.clone()),
                clock,
                redis: None,
            },
            Backend::Redis => {
                let prefix = format!("agent0-test-{}:", uuid::Uuid::new_v4().simple());
                let url = redis_url();
                let shared = SharedState::redis(&url, &prefix, clock.clone())
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "these tests need Redis ({e}). Start one: `redis-server --daemonize \
                             yes` (Debian: apt-get install redis-server), or point {REDIS_ENV} \
                             at one"
                        )
                    });
                let conn = RedisConn::connect(&url, &prefix).await.unwrap();
                Self {
                    shared,
                    clock,
                    redis: Some((conn, prefix)),
                }
            }
        }
    }

    /// Every key under this test's prefix.
    async fn keys(&self) -> Vec<String> {
        let Some((conn, prefix)) = &self.redis else {
            return Vec::new();
        };
        conn.raw::<Vec<String>>(::redis::cmd("KEYS").arg(format!("{prefix}*")))
            .await
            .unwrap()
    }

    async fn finish(self) {
        let keys = self.keys().await;
        if let (Some((conn, _)), false) = (&self.redis, keys.is_empty()) {
            conn.raw::<i64>(::redis::cmd("DEL").arg(keys))
                .await
                .unwrap();
        }
    }
}

fn session(id: &str, subject: &str, expires_at: UnixTime) -> Session {
    Session {
        id: id.to_owned(),
        principal: Principal {
            subject: subject.to_owned(),
            name: subject.to_uppercase(),
            email: Some(format!("{subject}@example.com")),
            id_token: SecretString::from(format!("id-token-of-{subject}")),
        },
        claims: json!({"sub": subject}),
        id_token_expires_at: expires_at - 100,
        refresh_token: Some(SecretString::from(format!("refresh-of-{subject}"))),
        csrf: format!("csrf-{id}"),
        expires_at,
    }
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn sessions_are_created_found_updated_and_deleted(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let store = rig.shared.sessions.clone();
    let now = rig.clock.now();
    assert!(store.find("nobody").await.unwrap().is_none());
    store
        .create(&session("s1", "alice", now + 3600))
        .await
        .unwrap();
    let found = store.find("s1").await.unwrap().unwrap();
    assert_eq!(found.principal.subject, "alice");
    assert_eq!(
        found.principal.id_token.expose_secret(),
        "id-token-of-alice"
    );
    assert_eq!(
        found.refresh_token.as_ref().unwrap().expose_secret(),
        "refresh-of-alice"
    );
    assert_eq!(
        (found.csrf.as_str(), found.expires_at),
        ("csrf-s1", now + 3600)
    );
    assert_eq!(found.claims, json!({"sub": "alice"}));

    let mut renewed = session("s1", "alice", now + 3600);
    renewed.refresh_token = Some(SecretString::from("rotated"));
    store.update(&renewed).await.unwrap();
    let found = store.find("s1").await.unwrap().unwrap();
    assert_eq!(
        found.refresh_token.as_ref().unwrap().expose_secret(),
        "rotated"
    );

    store.delete("s1").await.unwrap();
    assert!(store.find("s1").await.unwrap().is_none());
    // A refresh finishing after a logout does not bring the session back.
    store.update(&renewed).await.unwrap();
    assert!(store.find("s1").await.unwrap().is_none());
    rig.finish().await;
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn a_session_is_gone_at_its_end_by_the_injected_clock(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let store = rig.shared.sessions.clone();
    let now = rig.clock.now();
    store
        .create(&session("s1", "alice", now + 100))
        .await
        .unwrap();
    rig.clock.advance(99);
    assert!(store.find("s1").await.unwrap().is_some());
    rig.clock.advance(1);
    assert!(store.find("s1").await.unwrap().is_none());
    rig.finish().await;
}

#[tokio::test]
async fn redis_keeps_a_session_until_its_end_and_binds_the_record_to_its_id() {
    let rig = Rig::start(Backend::Redis).await;
    let (conn, prefix) = rig.redis.clone().unwrap();
    let store = rig.shared.sessions.clone();
    let now = rig.clock.now();
    store
        .create(&session("s-alice", "alice", now + 3600))
        .await
        .unwrap();
    store
        .create(&session("s-bob", "bob", now + 3600))
        .await
        .unwrap();
    let alice_key = format!("{prefix}session:{}", hashed("s-alice"));
    let ttl: i64 = conn.raw(::redis::cmd("TTL").arg(&alice_key)).await.unwrap();
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");
    // Neither the session id nor the person shows in key names.
    let keys = rig.keys().await.join(" ");
    assert!(
        !keys.contains("s-alice") && !keys.contains("alice"),
        "{keys}"
    );

    // Alice's record under Bob's key (a mixed-up or forged store): Bob's cookie finds nothing.
    let record: String = conn.raw(::redis::cmd("GET").arg(&alice_key)).await.unwrap();
    let bob_key = format!("{prefix}session:{}", hashed("s-bob"));
    conn.raw::<()>(::redis::cmd("SET").arg(&bob_key).arg(&record))
        .await
        .unwrap();
    assert!(store.find("s-bob").await.unwrap().is_none());
    // An unreadable record means "log in again", not an error.
    conn.raw::<()>(::redis::cmd("SET").arg(&bob_key).arg("{not json"))
        .await
        .unwrap();
    assert!(store.find("s-bob").await.unwrap().is_none());
    // Evicted (or flushed): gone, no error.
    conn.raw::<i64>(::redis::cmd("DEL").arg(&alice_key))
        .await
        .unwrap();
    assert!(store.find("s-alice").await.unwrap().is_none());
    rig.finish().await;
}

fn key(subject: &str, connection: &str) -> TokenKey {
    TokenKey {
        subject: subject.into(),
        connection: connection.into(),
        scopes: "mcp:connect mcp:tools:read".into(),
    }
}

fn token(value: &str, expires_at: UnixTime) -> AccessToken {
    AccessToken {
        token: SecretString::from(value.to_owned()),
        scopes: Scopes::parse("mcp:connect").unwrap(),
        expires_at,
    }
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn a_token_is_kept_until_its_usable_end(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let cache = rig.shared.tokens.clone();
    let now = rig.clock.now();
    assert!(cache.get(&key("alice", "todo0")).await.unwrap().is_none());
    cache
        .insert(key("alice", "todo0"), token("t-alice", now + 240))
        .await
        .unwrap();
    let got = cache.get(&key("alice", "todo0")).await.unwrap().unwrap();
    assert_eq!(got.token.expose_secret(), "t-alice");
    assert_eq!(got.scopes.to_string(), "mcp:connect");
    assert_eq!(got.expires_at, now + 240);
    assert!(cache.has_live("alice", "todo0").await.unwrap());
    assert!(!cache.has_live("alice", "github").await.unwrap());
    assert!(!cache.has_live("bob", "todo0").await.unwrap());
    rig.clock.advance(239);
    assert!(cache.get(&key("alice", "todo0")).await.unwrap().is_some());
    rig.clock.advance(1);
    assert!(cache.get(&key("alice", "todo0")).await.unwrap().is_none());
    assert!(!cache.has_live("alice", "todo0").await.unwrap());
    // A token with no life left is never kept.
    cache
        .insert(key("bob", "todo0"), token("t-bob", rig.clock.now()))
        .await
        .unwrap();
    assert!(cache.get(&key("bob", "todo0")).await.unwrap().is_none());
    rig.finish().await;
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn invalidation_drops_one_token_or_one_persons_tokens(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let cache = rig.shared.tokens.clone();
    let later = rig.clock.now() + 1_000;
    for (subject, connection) in [("alice", "todo0"), ("alice", "github"), ("bob", "todo0")] {
        cache
            .insert(key(subject, connection), token("t", later))
            .await
            .unwrap();
    }
    cache.invalidate(&key("alice", "todo0")).await.unwrap();
    assert!(cache.get(&key("alice", "todo0")).await.unwrap().is_none());
    assert!(cache.get(&key("alice", "github")).await.unwrap().is_some());

    cache.invalidate_person("alice").await.unwrap();
    assert!(cache.get(&key("alice", "github")).await.unwrap().is_none());
    assert!(!cache.has_live("alice", "github").await.unwrap());
    assert!(cache.get(&key("bob", "todo0")).await.unwrap().is_some());
    assert!(cache.has_live("bob", "todo0").await.unwrap());
    rig.finish().await;
}

#[tokio::test]
async fn redis_token_keys_show_no_subject_connection_or_scope_and_expire() {
    let rig = Rig::start(Backend::Redis).await;
    let (conn, prefix) = rig.redis.clone().unwrap();
    let cache = rig.shared.tokens.clone();
    cache
        .insert(key("alice", "todo0"), token("t", rig.clock.now() + 300))
        .await
        .unwrap();
    let keys = rig.keys().await;
    let all = keys.join(" ");
    for clear in ["alice", "todo0", "mcp:"] {
        assert!(!all.contains(clear), "{clear} in {all}");
    }
    let token_key = keys
        .iter()
        .find(|k| k.starts_with(&format!("{prefix}token:")))
        .unwrap();
    let pttl: i64 = conn.raw(::redis::cmd("PTTL").arg(token_key)).await.unwrap();
    assert!((299_000..=300_000).contains(&pttl), "PTTL {pttl}");
    rig.finish().await;
}

#[tokio::test]
async fn a_redis_lease_has_one_holder_is_released_only_by_it_and_expires() {
    let rig = Rig::start(Backend::Redis).await;
    let leases = rig.shared.leases.clone();
    let ttl = Duration::from_millis(300);
    let first = leases.try_acquire("k", ttl).await.unwrap().unwrap();
    assert!(leases.try_acquire("k", ttl).await.unwrap().is_none());
    assert!(leases.try_acquire("other", ttl).await.unwrap().is_some());
    leases.release(first).await.unwrap();
    let second = leases.try_acquire("k", ttl).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    // Expired: a third holder takes over, and the second's late release leaves it alone.
    let third = leases.try_acquire("k", ttl).await.unwrap().unwrap();
    leases.release(second).await.unwrap();
    assert!(leases.try_acquire("k", ttl).await.unwrap().is_none());
    leases.release(third).await.unwrap();
    rig.finish().await;
}

#[tokio::test]
async fn followers_wait_for_the_leader_and_take_over_when_its_lease_expires() {
    let rig = Rig::start(Backend::Redis).await;
    let leases = rig.shared.leases.clone();
    let ttl = Duration::from_millis(400);
    // A leader that never finishes (it died): the follower takes over after the lease.
    let _dead = leases.try_acquire("k", ttl).await.unwrap().unwrap();
    let started = Instant::now();
    let turn = lead_or_follow(&leases, "k", ttl, "test", || async { Ok(None::<()>) })
        .await
        .unwrap();
    assert!(matches!(turn, Turn::Lead(_)));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // A leader that finishes: the follower gets its result without leading.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _leader = leases.try_acquire("j", ttl * 10).await.unwrap().unwrap();
    let finisher = done.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        finisher.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let turn = lead_or_follow(&leases, "j", ttl * 10, "test", || {
        let done = done.clone();
        async move { Ok(done.load(std::sync::atomic::Ordering::SeqCst).then_some(7)) }
    })
    .await
    .unwrap();
    assert!(matches!(turn, Turn::Done(7)));
    rig.finish().await;
}

#[tokio::test]
async fn an_unreachable_redis_fails_fast_naming_the_url_without_its_password() {
    let started = Instant::now();
    let error = SharedState::redis(
        "redis://:hunter2@127.0.0.1:1/0",
        "agent0:",
        FixedClock::frozen_now(),
    )
    .await
    .err()
    .unwrap();
    let message = error.to_string();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(message.contains("redis://:***@127.0.0.1:1/0"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(matches!(error, SharedStateError::Unavailable { .. }));
}

#[test]
fn rediss_urls_are_accepted_as_tls() {
    // The redis crate refuses `rediss://` at parse time when built without a TLS feature; ours
    // (`tokio-rustls-comp`) reads it as TLS with certificate checks, password and database kept.
    let client = ::redis::Client::open("rediss://:hunter2@cache.example:6380/2").unwrap();
    let info = client.get_connection_info();
    assert!(
        matches!(
            info.addr(),
            ::redis::ConnectionAddr::TcpTls { host, port: 6380, insecure: false, .. }
                if host == "cache.example"
        ),
        "{:?}",
        info.addr()
    );
    assert_eq!(info.redis_settings().db(), 2);
}

#[tokio::test]
async fn rediss_speaks_tls_and_fails_cleanly_against_a_plain_server() {
    // The plain test server does not answer a TLS handshake: a clear error, not a hang or a
    // panic (the TLS provider is aws-lc-rs, the workspace's only one).
    let url = redis_url().replacen("redis://", "rediss://", 1);
    let started = Instant::now();
    let error = SharedState::redis(&url, "agent0:", FixedClock::frozen_now())
        .await
        .err()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(error, SharedStateError::Unavailable { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn a_lease_whose_holder_is_dropped_is_released_without_waiting_for_it_to_expire() {
    let rig = Rig::start(Backend::Redis).await;
    let leases = rig.shared.leases.clone();
    let ttl = Duration::from_secs(30);
    let Turn::Lead(held) = lead_or_follow(&leases, "k", ttl, "test", || async { Ok(None::<()>) })
        .await
        .unwrap()
    else {
        panic!("nobody else holds it");
    };
    assert!(leases.try_acquire("k", ttl).await.unwrap().is_none());
    drop(held); // the request was cancelled (its client went away)
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(lease) = leases.try_acquire("k", ttl).await.unwrap() {
            leases.release(lease).await.unwrap();
            break;
        }
        assert!(Instant::now() < deadline, "still held");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.finish().await;
}

fn approval(subject: &str, conversation: &str) -> crate::approvals::ApprovalKey {
    crate::approvals::ApprovalKey {
        subject: subject.to_owned(),
        conversation: conversation.to_owned(),
        connection: "todo0".to_owned(),
    }
}

#[rstest]
#[case::in_process(Backend::InProcess)]
#[case::redis(Backend::Redis)]
#[tokio::test]
async fn approvals_add_up_per_person_and_conversation(#[case] backend: Backend) {
    let rig = Rig::start(backend).await;
    let approvals = rig.shared.approvals.clone();
    let manage = Scopes::parse("mcp:tools:manage").unwrap();
    let delete = Scopes::parse("mcp:tools:delete").unwrap();
    assert!(
        approvals
            .approved(&approval("alice", "c1"))
            .await
            .unwrap()
            .is_empty()
    );
    approvals
        .approve(&approval("alice", "c1"), &manage)
        .await
        .unwrap();
    approvals
        .approve(&approval("alice", "c1"), &delete)
        .await
        .unwrap();
    let both = approvals.approved(&approval("alice", "c1")).await.unwrap();
    assert_eq!(both.to_string(), manage.union(&delete).to_string());
    // Another conversation, another person: nothing approved.
    assert!(
        approvals
            .approved(&approval("alice", "c2"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        approvals
            .approved(&approval("bob", "c1"))
            .await
            .unwrap()
            .is_empty()
    );
    rig.finish().await;
}

#[tokio::test]
async fn redis_approval_keys_show_no_subject_or_scope_and_expire() {
    let rig = Rig::start(Backend::Redis).await;
    let (conn, prefix) = rig.redis.clone().unwrap();
    let manage = Scopes::parse("mcp:tools:manage").unwrap();
    rig.shared
        .approvals
        .approve(&approval("alice", "conv-q7"), &manage)
        .await
        .unwrap();
    let keys = rig.keys().await;
    let all = keys.join(" ");
    // Each of these holds a character that is not hex, so it cannot turn up in a key's digest
    // by chance (a conversation id "c1" did, once in a while).
    for clear in ["alice", "conv-q7", "todo0", "mcp:"] {
        assert!(!all.contains(clear), "{clear} in {all}");
    }
    let key = keys
        .iter()
        .find(|k| k.starts_with(&format!("{prefix}approved:")))
        .unwrap();
    let ttl: i64 = conn.raw(::redis::cmd("TTL").arg(key)).await.unwrap();
    let lifetime = crate::approvals::APPROVAL_LIFETIME.as_secs() as i64;
    assert!((lifetime - 5..=lifetime).contains(&ttl), "TTL {ttl}");
    rig.finish().await;
}

#[tokio::test]
async fn a_working_leader_keeps_its_lease_and_a_dead_one_loses_it_within_seconds() {
    let rig = Rig::start(Backend::Redis).await;
    let leases = rig.shared.leases.clone();
    let work = Duration::from_secs(60);
    let nothing = || async { Ok::<Option<u8>, SharedStateError>(None) };
    // A leader working longer than the lease's life in Redis renews it: nobody takes over.
    let Turn::Lead(held) = lead_or_follow(&leases, "w", work, "test", nothing)
        .await
        .unwrap()
    else {
        panic!("the first caller leads");
    };
    tokio::time::sleep(LIVE_TTL * 2).await;
    assert!(
        leases.try_acquire("w", work).await.unwrap().is_none(),
        "still held"
    );
    held.release().await.unwrap();
    // A leader that died (its lease taken without a holder renewing it) delays the next one by
    // at most the lease's life, not by the work's limit.
    let _dead = leases.try_acquire("d", LIVE_TTL).await.unwrap().unwrap();
    let started = Instant::now();
    let turn = lead_or_follow(&leases, "d", work, "test", nothing)
        .await
        .unwrap();
    assert!(matches!(turn, Turn::Lead(_)));
    assert!(
        started.elapsed() <= LIVE_TTL + Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    rig.finish().await;
}
