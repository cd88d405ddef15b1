//! The [`Store`] contract, run against every backend: SQLite (a file) and
//! PostgreSQL (each test in its own fresh schema `t_<uuid>`, dropped at the end, so tests run in
//! parallel and reruns never collide).
//!
//! PostgreSQL is required, never skipped: `IDP0_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`. An unreachable server fails the tests with what to
//! start.
#![allow(clippy::unwrap_used)]

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbconn::testing::TestSchema;
use rstest::rstest;

use super::{
    AuthCode, Grant, PostgresStore, RefreshRecord, SqliteStore, SsoSession, Store, secret_hash,
};

/// A fixed "now"; tests pass explicit times.
const T0: i64 = 1_700_000_000;

fn grant(family: &str) -> Grant {
    Grant {
        server: String::new(),
        client_id: "agent0".into(),
        user_id: "00u1".into(),
        scope: "openid offline_access".into(),
        nonce: Some("n".into()),
        auth_time: T0 - 5,
        sid: Some("sid1".into()),
        family: family.into(),
    }
}

fn code(expires_at: i64) -> AuthCode {
    AuthCode {
        grant: grant("fam1"),
        redirect_uri: "http://localhost:3000/callback".into(),
        code_challenge: "challenge".into(),
        expires_at,
        used: false,
    }
}

fn refresh(family: &str, expires_at: i64) -> RefreshRecord {
    RefreshRecord {
        grant: Grant {
            nonce: None,
            sid: None,
            ..grant(family)
        },
        expires_at,
        used: false,
    }
}

fn session(sid: &str, expires_at: i64) -> SsoSession {
    SsoSession {
        sid: sid.into(),
        user_id: "00u1".into(),
        auth_time: T0 - 5,
        expires_at,
    }
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy)]
enum Backend {
    SqliteFile,
    Postgres,
}

/// A fresh, empty store, and whatever must outlive it (temp dir, schema to drop).
struct Harness {
    store: Arc<dyn Store>,
    dir: Option<tempfile::TempDir>,
    schema: Option<TestSchema>,
}

impl Deref for Harness {
    type Target = dyn Store;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Backend {
    async fn open(self) -> anyhow::Result<Harness> {
        Ok(match self {
            Self::SqliteFile => {
                let dir = tempfile::tempdir()?;
                let store = SqliteStore::open(&dir.path().join("idp0.db")).await?;
                Harness {
                    store: Arc::new(store),
                    dir: Some(dir),
                    schema: None,
                }
            }
            Self::Postgres => {
                let guard = TestSchema::new(PG_ENV);
                let store = connect(&guard).await?;
                Harness {
                    store: Arc::new(store),
                    dir: None,
                    schema: Some(guard),
                }
            }
        })
    }
}

impl Harness {
    /// The same database opened again (a restart, or a second replica).
    async fn reopen(&self) -> anyhow::Result<Arc<dyn Store>> {
        Ok(match (&self.dir, &self.schema) {
            (Some(dir), _) => Arc::new(SqliteStore::open(&dir.path().join("idp0.db")).await?),
            (None, Some(schema)) => Arc::new(connect(schema).await?),
            (None, None) => anyhow::bail!("this harness has neither a file nor a schema"),
        })
    }

    /// Records a migration this binary does not have, as a newer idp0 would have.
    async fn apply_future_migration(&self) -> anyhow::Result<()> {
        let sql = "INSERT INTO _sqlx_migrations \
                   (version, description, success, checksum, execution_time) \
                   VALUES (9999, 'from the future', true, x'00', 0)";
        let pg_sql = sql.replace("x'00'", "'\\x00'::bytea");
        match (&self.dir, &self.schema) {
            (Some(dir), _) => {
                let url = format!("sqlite://{}", dir.path().join("idp0.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await?;
                sqlx::query(sql).execute(&pool).await?;
                pool.close().await;
            }
            (None, Some(schema)) => {
                let pool = sqlx::PgPool::connect(&schema.url_with_search_path()).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(pg_sql))
                    .execute(&pool)
                    .await?;
                pool.close().await;
            }
            (None, None) => anyhow::bail!("no database to change"),
        }
        Ok(())
    }
}

/// The variable that points the PostgreSQL cases at another server.
const PG_ENV: &str = "IDP0_TEST_DATABASE_URL";

/// A store in `schema` (created if missing); an unreachable server fails the test with what to
/// start.
async fn connect(schema: &TestSchema) -> anyhow::Result<PostgresStore> {
    PostgresStore::connect_in_schema(schema.url(), schema.name())
        .await
        .map_err(|e| anyhow::anyhow!(schema.required(e)))
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_code_is_found_and_consumed_exactly_once(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let hash = secret_hash("code");
    assert!(store.find_code(&hash).await?.is_none());
    assert!(!store.consume_code(&hash, T0).await?, "no such code");
    store.create_code(&hash, &code(T0 + 60)).await?;
    let found = store.find_code(&hash).await?.unwrap();
    assert_eq!(found.grant, grant("fam1"));
    assert_eq!(found.redirect_uri, "http://localhost:3000/callback");
    assert_eq!(found.code_challenge, "challenge");
    assert_eq!(found.expires_at, T0 + 60);
    assert!(!found.used);
    assert!(store.consume_code(&hash, T0).await?);
    assert!(!store.consume_code(&hash, T0 + 1).await?);
    assert!(store.find_code(&hash).await?.unwrap().used);
    assert!(
        store.create_code(&hash, &code(T0 + 60)).await.is_err(),
        "a code hash is unique"
    );
    Ok(())
}

/// Runs `n` copies of `op` at once; how many returned `true`.
async fn winners<F, Fut>(n: usize, op: F) -> anyhow::Result<usize>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, super::StoreError>> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(op())).collect();
    let mut won = 0;
    for task in tasks {
        won += usize::from(task.await??);
    }
    Ok(won)
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_have_exactly_one_winner(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let harness = backend.open().await?;
    // A second pool on the same database too, as a second replica would have.
    let other = harness.reopen().await?;
    let stores = [harness.store.clone(), other];
    for round in 0..5 {
        let code_hash = secret_hash(&format!("code-{round}"));
        harness.create_code(&code_hash, &code(T0 + 60)).await?;
        let token_hash = secret_hash(&format!("refresh-{round}"));
        harness
            .create_refresh_token(&token_hash, &refresh("fam1", T0 + 60))
            .await?;
        let jti = format!("jti-{round}");
        let i = std::sync::atomic::AtomicUsize::new(0);
        let pick = || stores[i.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 2].clone();

        let codes = winners(16, || {
            let (store, hash) = (pick(), code_hash.clone());
            async move { store.consume_code(&hash, T0).await }
        });
        let tokens = winners(16, || {
            let (store, hash) = (pick(), token_hash.clone());
            async move { store.consume_refresh_token(&hash, T0).await }
        });
        let jtis = winners(16, || {
            let (store, jti) = (pick(), jti.clone());
            async move { store.remember_jti("client:agent", &jti, T0 + 60).await }
        });
        let directory = winners(16, || {
            let store = pick();
            let expected = round;
            async move { store.replace_managed_directory(expected, "{}").await }
        });
        let (codes, tokens, jtis, directory) = tokio::join!(codes, tokens, jtis, directory);
        assert_eq!(codes?, 1, "round {round}: one code redemption wins");
        assert_eq!(tokens?, 1, "round {round}: one refresh rotation wins");
        assert_eq!(jtis?, 1, "round {round}: one jti is new");
        assert_eq!(directory?, 1, "round {round}: one directory writer wins");
    }
    assert_eq!(harness.find_managed_directory().await?.unwrap().0, 5);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_refresh_token_rotates_once(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let hash = secret_hash("refresh");
    assert!(store.find_refresh_token(&hash).await?.is_none());
    store
        .create_refresh_token(&hash, &refresh("fam1", T0 + 3600))
        .await?;
    let found = store.find_refresh_token(&hash).await?.unwrap();
    assert_eq!(found.grant, refresh("fam1", 0).grant, "NULL nonce and sid");
    assert_eq!(found.expires_at, T0 + 3600);
    assert!(!found.used);
    assert!(store.consume_refresh_token(&hash, T0).await?);
    assert!(!store.consume_refresh_token(&hash, T0).await?);
    assert!(store.find_refresh_token(&hash).await?.unwrap().used);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn revoking_a_family_revokes_its_recorded_access_tokens(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    store.record_access_token("jti-1", "fam1", T0 + 60).await?;
    store.record_access_token("jti-1", "fam1", T0 + 60).await?;
    store.record_access_token("jti-2", "fam1", T0 + 60).await?;
    store.record_access_token("jti-3", "fam2", T0 + 60).await?;
    assert!(!store.is_family_revoked("fam1").await?);
    assert!(!store.is_access_token_revoked("jti-1").await?);
    assert!(!store.is_access_token_revoked("unrecorded").await?);

    store.revoke_family("fam1", T0).await?;
    store.revoke_family("fam1", T0 + 1).await?;
    assert!(store.is_family_revoked("fam1").await?);
    assert!(!store.is_family_revoked("fam2").await?);
    assert!(store.is_access_token_revoked("jti-1").await?);
    assert!(store.is_access_token_revoked("jti-2").await?);
    assert!(
        !store.is_access_token_revoked("jti-3").await?,
        "other family"
    );

    store.revoke_access_token("jti-3", T0 + 60).await?;
    store.revoke_access_token("jti-3", T0 + 60).await?;
    assert!(store.is_access_token_revoked("jti-3").await?);
    store.revoke_access_token("never-recorded", T0 + 60).await?;
    assert!(store.is_access_token_revoked("never-recorded").await?);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_id_token_is_active_only_while_its_family_and_session_live(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    store
        .create_session("cookie-hash", &session("sid1", T0 + 100))
        .await?;
    store
        .record_access_token("id-jti", "fam1", T0 + 100)
        .await?;
    assert!(store.is_id_token_active("id-jti", "sid1", T0).await?);
    assert!(!store.is_id_token_active("unrecorded", "sid1", T0).await?);
    assert!(!store.is_id_token_active("id-jti", "other-sid", T0).await?);
    assert!(
        !store.is_id_token_active("id-jti", "sid1", T0 + 100).await?,
        "session expired"
    );
    store.delete_sessions_by_sid("sid1").await?;
    assert!(
        !store.is_id_token_active("id-jti", "sid1", T0).await?,
        "session ended"
    );
    store
        .create_session("cookie-hash", &session("sid1", T0 + 100))
        .await?;
    assert!(store.is_id_token_active("id-jti", "sid1", T0).await?);
    store.revoke_access_token("id-jti", T0 + 100).await?;
    assert!(
        !store.is_id_token_active("id-jti", "sid1", T0).await?,
        "token revoked"
    );
    store
        .record_access_token("id-jti-2", "fam2", T0 + 100)
        .await?;
    assert!(store.is_id_token_active("id-jti-2", "sid1", T0).await?);
    store.revoke_family("fam2", T0).await?;
    assert!(
        !store.is_id_token_active("id-jti-2", "sid1", T0).await?,
        "family revoked"
    );
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_jti_is_remembered_per_namespace_until_purged(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    assert!(store.remember_jti("client:a", "j1", T0 + 100).await?);
    assert!(!store.remember_jti("client:a", "j1", T0 + 100).await?);
    assert!(!store.remember_jti("client:a", "j1", T0 + 999).await?);
    assert!(store.remember_jti("client:b", "j1", T0 + 100).await?);
    store.purge_expired(T0 + 100).await?;
    assert!(
        !store.remember_jti("client:a", "j1", T0 + 200).await?,
        "kept until past its expiry"
    );
    store.purge_expired(T0 + 101).await?;
    assert!(store.remember_jti("client:a", "j1", T0 + 200).await?);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn sessions_are_found_and_ended(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    assert!(store.find_session("h1").await?.is_none());
    store
        .create_session("h1", &session("sid1", T0 + 100))
        .await?;
    store
        .create_session("h2", &session("sid1", T0 + 100))
        .await?;
    store
        .create_session("h3", &session("sid2", T0 + 100))
        .await?;
    let found = store.find_session("h1").await?.unwrap();
    assert_eq!(
        (found.sid, found.user_id, found.auth_time, found.expires_at),
        ("sid1".into(), "00u1".into(), T0 - 5, T0 + 100)
    );
    store.delete_session("h3").await?;
    store.delete_session("h3").await?;
    assert!(store.find_session("h3").await?.is_none());
    assert!(store.find_session("h1").await?.is_some());
    store.delete_sessions_by_sid("sid1").await?;
    assert!(store.find_session("h1").await?.is_none());
    assert!(store.find_session("h2").await?.is_none());
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn the_managed_directory_is_replaced_only_at_the_version_read(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    assert_eq!(store.find_managed_directory().await?, None);
    assert!(!store.replace_managed_directory(1, "{\"v\":1}").await?);
    assert_eq!(
        store.find_managed_directory().await?,
        None,
        "nothing written"
    );
    assert!(store.replace_managed_directory(0, "{\"v\":1}").await?);
    assert_eq!(
        store.find_managed_directory().await?,
        Some((1, "{\"v\":1}".into()))
    );
    assert!(
        !store
            .replace_managed_directory(0, "{\"lost\":true}")
            .await?,
        "a second first writer loses"
    );
    assert!(store.replace_managed_directory(1, "{\"v\":2}").await?);
    assert!(
        !store
            .replace_managed_directory(1, "{\"stale\":true}")
            .await?,
        "a writer that read version 1 loses"
    );
    assert!(
        !store
            .replace_managed_directory(3, "{\"ahead\":true}")
            .await?
    );
    let body = "{\"name\":\"Ünïcödé ✓ 'quoted' \\\"x\\\"\"}".repeat(1000);
    assert!(store.replace_managed_directory(2, &body).await?);
    assert_eq!(store.find_managed_directory().await?, Some((3, body)));
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn purging_removes_only_what_expired(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let now = T0;
    // Codes stay a day past expiry, so a late replay is still recognised as reuse.
    store.create_code("code-old", &code(now - 86_401)).await?;
    store.create_code("code-recent", &code(now - 10)).await?;
    store
        .create_refresh_token("rt-old", &refresh("fam1", now - 1))
        .await?;
    store
        .create_refresh_token("rt-live", &refresh("fam1", now))
        .await?;
    store.record_access_token("at-old", "fam1", now - 1).await?;
    store.record_access_token("at-live", "fam2", now).await?;
    store.revoke_access_token("rv-old", now - 1).await?;
    store.revoke_access_token("rv-live", now).await?;
    store.remember_jti("ns", "jti-old", now - 1).await?;
    store.remember_jti("ns", "jti-live", now).await?;
    store
        .create_session("s-old", &session("sid-old", now - 1))
        .await?;
    store
        .create_session("s-live", &session("sid-live", now))
        .await?;
    store.revoke_family("fam1", now - 99_999).await?;
    store.replace_managed_directory(0, "{}").await?;

    store.purge_expired(now).await?;

    assert!(store.find_code("code-old").await?.is_none());
    assert!(store.find_code("code-recent").await?.is_some());
    assert!(store.find_refresh_token("rt-old").await?.is_none());
    assert!(store.find_refresh_token("rt-live").await?.is_some());
    assert!(
        !store.is_access_token_revoked("at-old").await?,
        "an expired token's family record is gone (the token is refused for its exp anyway)"
    );
    assert!(!store.is_access_token_revoked("rv-old").await?);
    assert!(store.is_access_token_revoked("rv-live").await?);
    assert!(store.remember_jti("ns", "jti-old", now + 60).await?);
    assert!(!store.remember_jti("ns", "jti-live", now + 60).await?);
    assert!(store.find_session("s-old").await?.is_none());
    assert!(store.find_session("s-live").await?.is_some());
    assert!(store.is_family_revoked("fam1").await?, "families are kept");
    assert!(store.find_managed_directory().await?.is_some());
    store
        .record_access_token("at-live-2", "fam1", now + 60)
        .await?;
    assert!(store.is_access_token_revoked("at-live-2").await?);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn state_survives_reopening_and_a_newer_schema_is_refused(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let harness = backend.open().await?;
    harness.create_session("h", &session("s", T0 + 99)).await?;
    harness.replace_managed_directory(0, "{}").await?;
    let reopened = harness.reopen().await?;
    assert_eq!(
        reopened.find_session("h").await?.map(|s| s.user_id),
        Some("00u1".into())
    );
    assert_eq!(reopened.find_managed_directory().await?.unwrap().0, 1);

    harness.apply_future_migration().await?;
    let Err(err) = harness.reopen().await else {
        panic!("a database migrated by a newer idp0 must be refused");
    };
    let message = err.to_string();
    assert!(
        message.contains("migrated by a newer secure-agent"),
        "{message}"
    );
    assert!(message.contains("9999"), "{message}");
    assert!(message.contains("Fix:"), "{message}");
    Ok(())
}

#[tokio::test]
async fn open_picks_the_backend_by_url() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("by-url.db");
    let store = super::open(&format!("sqlite://{}", path.display())).await?;
    store.create_session("h", &session("s", T0 + 99)).await?;
    let plain = super::open(&path.display().to_string()).await?;
    assert!(plain.find_session("h").await?.is_some(), "a plain path");

    let guard = TestSchema::new(PG_ENV);
    connect(&guard).await?;
    let store = super::open(&guard.url_with_search_path()).await?;
    store.create_session("h", &session("s", T0 + 99)).await?;
    let pg = connect(&guard).await?;
    assert!(pg.find_session("h").await?.is_some(), "postgres://");
    let alias = guard
        .url_with_search_path()
        .replacen("postgres://", "postgresql://", 1);
    assert!(
        super::open(&alias)
            .await?
            .find_session("h")
            .await?
            .is_some()
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_database_fails_fast_without_the_password() {
    let started = Instant::now();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let Err(err) = super::open("postgres://idp0:s3cret@127.0.0.1:1/idp0?sslmode=prefer").await
    else {
        panic!("nothing listens on port 1");
    };
    let message = err.to_string();
    assert!(started.elapsed() < Duration::from_secs(6), "{message}");
    assert!(!message.contains("s3cret"), "{message}");
    assert!(
        message.contains("postgres://idp0:***@127.0.0.1:1/idp0?sslmode=prefer"),
        "{message}"
    );
    assert!(message.contains("Fix: start the server"), "{message}");
    assert!(message.contains("IDP_DATABASE_URL"), "{message}");
}

#[tokio::test]
async fn sslmode_require_connects_over_tls_or_says_why_not() -> anyhow::Result<()> {
    // rustls with aws-lc-rs: `sslmode=require` must encrypt (or fail), never connect in the clear.
    let guard = TestSchema::new(PG_ENV);
    connect(&guard).await?;
    let url = format!("{}&sslmode=require", guard.url_with_search_path());
    match super::open(&url).await {
        Ok(_) => {
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await?;
            let ssl: bool =
                sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                    .fetch_one(&mut conn)
                    .await?;
            assert!(ssl, "sslmode=require connected without TLS");
        }
        // A server without TLS configured refuses: the message says so.
        Err(err) => {
            let message = err.to_string().to_lowercase();
            assert!(
                message.contains("tls") || message.contains("ssl"),
                "{message}"
            );
        }
    }
    Ok(())
}

#[test]
fn the_sqlite_migrations_are_byte_for_byte_those_already_applied() {
    // sqlx refuses a database whose applied migration's checksum (SHA-384 of the file) changed:
    // these are the checksums idp0 databases in the field carry.
    let expected = [
        (
            1,
            "4228f171a49b60d469e8d11551e190cd0efc0e0790d88788b8daa9ee0c4cd5c04b9f4cc85516f963e1e5a3747fc88ce5",
        ),
        (
            2,
            "ce8f1a854fb60878b7180c2dc730c5b974abc466c706fe93474688ff40904744a54f9afb4f608a7ad4a897fec078e2e1",
        ),
        (
            3,
            "975d766a4d624b7c34f400d129fd6118e50c3a9f7262d7207424baa504d00458d02fc859590cf913bc857a0d9aa7528c",
        ),
    ];
    let sqlite = sqlx::migrate!("./migrations/sqlite");
    for ((version, checksum), migration) in expected.iter().zip(sqlite.iter()) {
        let hex: String = migration
            .checksum
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!((migration.version, hex.as_str()), (*version, *checksum));
    }
    let versions = |m: &sqlx::migrate::Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
    assert_eq!(
        versions(&sqlite),
        versions(&sqlx::migrate!("./migrations/postgres")),
        "both backends number their migrations alike"
    );
}

#[path = "sts_tests.rs"]
mod sts_tests;

#[path = "login_throttle_tests.rs"]
mod login_throttle_tests;
