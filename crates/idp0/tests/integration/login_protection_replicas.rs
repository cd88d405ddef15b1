//! Failed-login throttling across replicas: two idp0s (each its own `Idp`, store connection and
//! `idp0::serve` on 127.0.0.1:0) over one database, as behind a round-robin balancer. Failures
//! through A count on B: after A's free failures, B delays and then locks the account too, without
//! an Argon2id check; a success through B clears what A counted.
//!
//! Run on a SQLite file and on PostgreSQL (`IDP0_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, required, never skipped; a fresh schema per run).

use std::sync::Arc;

use dbconn::testing::TestSchema;
use idp0::store::{PostgresStore, SqliteStore, Store};
use protocol::clock::FixedClock;
use rstest::rstest;

use crate::login_protection::{genuine_form, post_login};

/// One replica: its `Idp` (for the password gate's counter) and its address.
struct Replica {
    idp: idp0::Idp,
    issuer: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Replica {
    async fn start(dir: &std::path::Path, store: Arc<dyn Store>, clock: Arc<FixedClock>) -> Self {
        let dev = devstack::ensure(dir, None).unwrap();
        let config = idp0::config::Config::load(&dev.path).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let idp = idp0::Idp::new(idp0::state::IdpParts {
            config,
            issuer: issuer.clone(),
            store,
            clock,
            keys_dir: None,
            demo_credentials: Vec::new(),
        })
        .unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(idp0::serve(listener, idp.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            idp,
            issuer,
            _stop: stop,
        }
    }

    /// A login through this replica's own form: its status and `Retry-After`.
    async fn login(&self, password: &str) -> (u16, Option<String>) {
        let (cookie, fields) = genuine_form(&self.issuer).await;
        let response = post_login(
            &self.issuer,
            Some(&cookie),
            &fields,
            ("alice", password),
            None,
        )
        .await;
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), retry_after)
    }
}

#[derive(Debug, Clone, Copy)]
enum Database {
    SqliteFile,
    Postgres,
}

#[rstest]
#[case::sqlite_file(Database::SqliteFile)]
#[case::postgres(Database::Postgres)]
#[tokio::test]
async fn failures_through_one_replica_throttle_and_lock_the_account_on_the_other(
    #[case] database: Database,
) {
    let dir = tempfile::tempdir().unwrap();
    let schema = TestSchema::new("IDP0_TEST_DATABASE_URL");
    let open = || async {
        let store: Arc<dyn Store> = match database {
            Database::SqliteFile => Arc::new(
                SqliteStore::open(&dir.path().join(idp0::DATABASE_FILE))
                    .await
                    .unwrap(),
            ),
            Database::Postgres => {
                match PostgresStore::connect_in_schema(schema.url(), schema.name()).await {
                    Ok(store) => Arc::new(store),
                    Err(e) => panic!("{}", schema.required(e)),
                }
            }
        };
        store
    };
    let clock = FixedClock::frozen_now();
    let a = Replica::start(dir.path(), open().await, clock.clone()).await;
    let b = Replica::start(dir.path(), open().await, clock.clone()).await;
    let right = devstack::ensure(dir.path(), None)
        .unwrap()
        .demo_users
        .iter()
        .find(|(u, _)| u == "alice")
        .map(|(_, p)| p.clone())
        .unwrap();

    // A's five free failures.
    for _ in 0..5 {
        assert_eq!(a.login("wrong").await.0, 401);
    }
    // B delays the sixth, without an Argon2id check.
    let checks = b.idp.password_gate.checks_started();
    assert_eq!(b.login("wrong").await, (429, Some("1".to_owned())));
    assert_eq!(b.idp.password_gate.checks_started(), checks);
    // Spaced out and alternating, the failures reach the lock; both replicas hold it, even for
    // the right password.
    for i in 5..10 {
        clock.advance(60);
        let replica = if i % 2 == 0 { &b } else { &a };
        assert_eq!(replica.login("wrong").await.0, 401, "failure {}", i + 1);
    }
    assert_eq!(b.login(&right).await, (429, Some("300".to_owned())));
    clock.advance(100);
    assert_eq!(a.login(&right).await, (429, Some("200".to_owned())));

    // After the lock, a success through B clears what A counted: A has five free failures again.
    clock.advance(200);
    assert_eq!(b.login(&right).await.0, 303);
    for _ in 0..5 {
        assert_eq!(a.login("wrong").await.0, 401, "count was reset by B");
    }
    assert_eq!(a.login("wrong").await.0, 429);
    drop(schema);
}

#[tokio::test]
async fn when_the_shared_counts_cannot_be_reached_the_login_fails_closed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(idp0::DATABASE_FILE);
    let store = Arc::new(SqliteStore::open(&path).await.unwrap());
    let a = Replica::start(dir.path(), store, FixedClock::frozen_now()).await;
    // The counts' table is gone: every read or write of a count fails.
    let mut db = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        path.display()
    ))
    .await
    .unwrap();
    sqlx::query("DROP TABLE login_throttle")
        .execute(&mut db)
        .await
        .unwrap();
    let right = devstack::ensure(dir.path(), None)
        .unwrap()
        .demo_users
        .iter()
        .find(|(u, _)| u == "alice")
        .map(|(_, p)| p.clone())
        .unwrap();
    let checks = a.idp.password_gate.checks_started();
    let (status, retry_after) = a.login("wrong").await;
    assert_eq!(status, 503, "never unthrottled");
    assert!(retry_after.is_some());
    assert_eq!(a.login(&right).await.0, 503);
    assert_eq!(
        a.idp.password_gate.checks_started(),
        checks,
        "no password check without a count"
    );
}
