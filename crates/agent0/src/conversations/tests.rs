//! The [`ConversationStore`] contract, run against every backend: SQLite in memory, SQLite in a
//! file, and PostgreSQL (each test in its own fresh schema `t_<uuid>`, dropped afterwards, so
//! tests run in parallel and reruns never collide).
//!
//! PostgreSQL is required: `AGENT0_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`. An unreachable server fails the tests, saying what
//! to start.
#![allow(clippy::unwrap_used)]

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbconn::testing::TestSchema;
use rstest::rstest;
use serde_json::json;
use sqlx::Connection;

use super::*;
use crate::llm::{Block, Role};
use dbconn::ACQUIRE_TIMEOUT;

/// The variable that points the PostgreSQL cases at another server.
const PG_ENV: &str = "AGENT0_TEST_DATABASE_URL";

fn pg_url() -> String {
    dbconn::testing::database_url(PG_ENV)
}

fn turn(text: &str) -> Turn {
    Turn {
        user_text: text.into(),
        reply_text: format!("re: {text}"),
        messages: vec![Message::user_text(text)],
        tool_results: vec![],
    }
}

/// What `find_latest` answers for conversation `id` with `turns` turns.
fn latest(id: &str, turns: u32) -> Option<Latest> {
    Some(Latest {
        id: id.to_owned(),
        turns,
    })
}

fn texts(turns: &[Turn]) -> Vec<&str> {
    turns.iter().map(|t| t.user_text.as_str()).collect()
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy)]
enum Backend {
    SqliteTemporary,
    SqliteFile,
    Postgres,
}

/// Where a store's data lives, kept alive (and cleaned up) with the test.
enum Place {
    Temporary,
    File(tempfile::TempDir),
    Schema(TestSchema),
}

/// A fresh, empty store.
struct Harness {
    store: Arc<dyn ConversationStore>,
    place: Place,
}

impl Deref for Harness {
    type Target = dyn ConversationStore;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Backend {
    async fn open(self) -> anyhow::Result<Harness> {
        Ok(match self {
            Self::SqliteTemporary => Harness {
                store: Arc::new(SqliteConversations::temporary().await?),
                place: Place::Temporary,
            },
            Self::SqliteFile => {
                let dir = tempfile::tempdir()?;
                let store = SqliteConversations::open(&dir.path().join("agent0.db")).await?;
                Harness {
                    store: Arc::new(store),
                    place: Place::File(dir),
                }
            }
            Self::Postgres => {
                let guard = TestSchema::new(PG_ENV);
                let store = pg_store(guard.name()).await?;
                Harness {
                    store: Arc::new(store),
                    place: Place::Schema(guard),
                }
            }
        })
    }
}

impl Harness {
    /// Another store instance on the same database (a second replica, or a restart); `None` for
    /// a private temporary store.
    async fn another(&self) -> anyhow::Result<Option<Arc<dyn ConversationStore>>> {
        Ok(match &self.place {
            Place::Temporary => None,
            Place::File(dir) => Some(Arc::new(
                SqliteConversations::open(&dir.path().join("agent0.db")).await?,
            )),
            Place::Schema(guard) => Some(Arc::new(pg_store(guard.name()).await?)),
        })
    }
}

/// A store in `schema` of the test database; an unreachable server is a failure that says what
/// to start.
async fn pg_store(schema: &str) -> anyhow::Result<PostgresConversations> {
    PostgresConversations::connect_in_schema(&pg_url(), schema)
        .await
        .map_err(|e| anyhow::anyhow!(dbconn::testing::required(&pg_url(), PG_ENV, e)))
}

#[rstest]
#[case::sqlite_temporary(Backend::SqliteTemporary)]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn turns_are_kept_in_order_and_only_for_their_owner(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    assert_eq!(store.find_latest("alice").await?, None);
    let id = store.create("alice", 1).await?;
    assert_eq!(store.count_turns("alice", &id).await?, 0);
    assert!(store.find_turns("alice", &id, 10).await?.is_empty());
    // Each append says which turn it became.
    assert_eq!(store.append("alice", &id, &turn("one"), 2).await?, 1);
    assert_eq!(store.append("alice", &id, &turn("two"), 3).await?, 2);
    assert_eq!(store.append("alice", &id, &turn("three"), 3).await?, 3);

    // Another person's conversation behaves exactly like a missing one, for every method.
    assert!(matches!(
        store.append("bob", &id, &turn("evil"), 4).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.find_turns("bob", &id, 10).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.count_turns("bob", &id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.append("alice", "no-such-id", &turn("x"), 4).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.count_turns("alice", "no-such-id").await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.find_latest("bob").await?, None);
    assert!(store.find_conversations("bob", 10).await?.is_empty());

    assert_eq!(
        store.find_turns("alice", &id, 10).await?,
        vec![turn("one"), turn("two"), turn("three")]
    );
    assert_eq!(store.count_turns("alice", &id).await?, 3);
    let recent = store.find_turns("alice", &id, 2).await?;
    assert_eq!(
        texts(&recent),
        ["two", "three"],
        "the most recent, oldest first"
    );
    assert!(store.find_turns("alice", &id, 0).await?.is_empty());
    assert_eq!(store.find_latest("alice").await?, latest(&id, 3));
    let newer = store.create("alice", 5).await?;
    assert_eq!(store.find_latest("alice").await?, latest(&newer, 0));
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_reopened_store_has_lost_nothing(#[case] backend: Backend) -> anyhow::Result<()> {
    let harness = backend.open().await?;
    let id = harness.create("alice", 1).await?;
    harness.append("alice", &id, &turn("one"), 2).await?;
    harness.append("alice", &id, &turn("two"), 3).await?;
    let Harness { store, place } = harness;
    drop(store);
    // The place (file, schema) stays; only the store instance is new.
    let harness = Harness {
        store: Arc::new(SqliteConversations::temporary().await?),
        place,
    };
    let reopened = harness.another().await?.unwrap();
    assert_eq!(reopened.find_latest("alice").await?, latest(&id, 2));
    assert_eq!(
        reopened.find_turns("alice", &id, 10).await?,
        vec![turn("one"), turn("two")]
    );
    assert_eq!(reopened.count_turns("alice", &id).await?, 2);
    Ok(())
}

/// A file written before each conversation kept its turn count (migration 2) gets the counts of
/// the turns it holds when it is opened, and later turns keep them.
#[tokio::test]
async fn an_older_sqlite_file_gets_its_turn_counts() -> anyhow::Result<()> {
    use dbconn::sqlite_readers::rusqlite;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("agent0.db");
    let store = SqliteConversations::open(&path).await?;
    let a = store.create("alice", 10).await?;
    let b = store.create("alice", 11).await?;
    let empty = store.create("bob", 12).await?;
    for i in 0..3 {
        store
            .append("alice", &a, &turn(&format!("a{i}")), 13)
            .await?;
    }
    store.append("alice", &b, &turn("b0"), 14).await?;
    drop(store);
    // Back to the schema before it: no count, no trigger, migration 2 not recorded.
    rusqlite::Connection::open(&path)?.execute_batch(
        "DROP TRIGGER turns_count; ALTER TABLE conversations DROP COLUMN turn_count; \
         DELETE FROM _sqlx_migrations WHERE version = 2;",
    )?;

    let store = SqliteConversations::open(&path).await?;
    assert_eq!(store.count_turns("alice", &a).await?, 3);
    assert_eq!(store.find_latest("alice").await?, latest(&b, 1));
    assert_eq!(store.find_latest("bob").await?, latest(&empty, 0));
    assert_eq!(store.append("alice", &a, &turn("a3"), 15).await?, 4);
    assert_eq!(store.find_latest("alice").await?, latest(&a, 4));
    let listed = store.find_conversations("alice", 10).await?;
    let counts: Vec<u32> = listed.iter().map(|c| c.turns).collect();
    assert_eq!(counts, [4, 1]);
    Ok(())
}

#[rstest]
#[case::sqlite_temporary(Backend::SqliteTemporary)]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn conversations_are_listed_newest_first_bounded_and_only_for_their_owner(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let old = store.create("alice", 1).await?;
    store.append("alice", &old, &turn("first one"), 2).await?;
    store.append("alice", &old, &turn("second"), 3).await?;
    let long = "x".repeat(200);
    let newer = store.create("alice", 4).await?;
    store.append("alice", &newer, &turn(&long), 5).await?;
    let empty = store.create("alice", 6).await?;
    store.create("bob", 7).await?;

    let list = store.find_conversations("alice", 50).await?;
    let ids: Vec<&str> = list.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, [empty.as_str(), newer.as_str(), old.as_str()]);
    assert_eq!((list[0].title.as_str(), list[0].turns), ("", 0));
    assert_eq!(list[0].updated_at, 6);
    assert_eq!(list[1].title.chars().count(), TITLE_CHARS);
    assert!(list[1].title.ends_with('…'));
    assert_eq!(list[2].title, "first one");
    assert_eq!((list[2].turns, list[2].updated_at), (2, 3));
    assert_eq!(store.find_conversations("alice", 2).await?.len(), 2);
    assert_eq!(store.find_conversations("bob", 50).await?.len(), 1);
    assert!(store.find_conversations("carol", 50).await?.is_empty());
    Ok(())
}

#[rstest]
#[case::sqlite_temporary(Backend::SqliteTemporary)]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn within_one_second_the_latest_turn_then_the_newest_conversation_comes_first(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let a = store.create("alice", 10).await?;
    let b = store.create("alice", 10).await?;
    let c = store.create("alice", 10).await?;
    // All used in the same second: `c` is the newest, so it is the latest.
    assert_eq!(store.find_latest("alice").await?, latest(&c, 0));
    store.append("alice", &b, &turn("to b"), 10).await?;
    store.append("alice", &a, &turn("to a"), 10).await?;
    let list = store.find_conversations("alice", 10).await?;
    let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [a.as_str(), b.as_str(), c.as_str()],
        "the latest turn first, then conversations without a turn"
    );
    // A later second wins over any order within one.
    store.append("alice", &c, &turn("to c"), 11).await?;
    assert_eq!(store.find_latest("alice").await?, latest(&c, 1));
    assert_eq!(store.find_conversations("alice", 1).await?[0].id, c);
    Ok(())
}

#[rstest]
#[case::sqlite_temporary(Backend::SqliteTemporary)]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_turn_round_trips_exactly_with_tool_calls_and_any_text(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let text = "Ünïcödé ✓ — 日本語 🚀 '; DROP TABLE turns; -- 100% \"quoted\" \\ \t\0end";
    let rich = Turn {
        user_text: text.into(),
        reply_text: format!("**done**\n\n{text}"),
        messages: vec![
            Message::user_text(text),
            Message {
                role: Role::Assistant,
                content: vec![Block::ToolUse {
                    id: "call-1".into(),
                    name: "create-todo".into(),
                    input: json!({"title": text, "n": 1.5, "z": null}),
                }],
            },
            Message {
                role: Role::User,
                content: vec![Block::ToolResult {
                    tool_use_id: "call-1".into(),
                    content: "{\"id\":1}".into(),
                    is_error: false,
                }],
            },
        ],
        tool_results: vec![ToolResultView {
            id: "call-1".into(),
            tool: "create-todo".into(),
            connection: "todo0".into(),
            arguments: json!({"title": text}),
            result: json!({"id": 1, "nested": [1, {"b": true, "a": "x"}]}),
            is_error: true,
            step_up: Some(StepUp {
                from: "mcp:read".into(),
                to: "mcp:read mcp:write".into(),
            }),
            detail: Some("HTTP 500 from the server".into()),
        }],
    };
    let id = store.create("alice", 1).await?;
    store.append("alice", &id, &rich, 2).await?;
    assert_eq!(store.find_turns("alice", &id, 1).await?, vec![rich]);
    let list = store.find_conversations("alice", 1).await?;
    assert_eq!(list[0].title, title_of(text));
    Ok(())
}

#[rstest]
#[case::sqlite_temporary(Backend::SqliteTemporary)]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_lose_nothing_and_mix_nothing(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = store.create("alice", 1).await?;
    let bob = store.create("bob", 1).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = store.store.clone();
        let (owner, id) = if i % 2 == 0 {
            ("alice", alice.clone())
        } else {
            ("bob", bob.clone())
        };
        tasks.spawn(async move { store.append(owner, &id, &turn(&format!("t{i}")), 2).await });
    }
    // One append to someone else's conversation fails alone.
    let wrong = store.append("bob", &alice, &turn("intruder"), 2).await;
    assert!(matches!(wrong, Err(StoreError::NotFound)));
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let turns = store.find_turns("alice", &alice, 100).await?;
    assert_eq!(turns.len(), 25);
    assert!(turns.iter().all(|t| t.user_text != "intruder"));
    let bobs = store.find_turns("bob", &bob, 100).await?;
    assert_eq!(bobs.len(), 25);
    assert!(bobs.iter().all(|t| {
        let n: u32 = t.user_text[1..].parse().unwrap();
        n % 2 == 1
    }));
    assert_eq!(store.count_turns("alice", &alice).await?, 25);
    Ok(())
}

/// Two replicas (two store instances on one database) append to one person's conversation at
/// once: every turn is kept once, each writer's turns keep their order, and both read the same.
#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_one_database_keep_every_turn_in_one_order(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    const EACH: usize = 30;
    let harness = backend.open().await?;
    let first = harness.store.clone();
    let second = harness.another().await?.unwrap();
    let id = first.create("alice", 1).await?;
    let writer = |store: Arc<dyn ConversationStore>, name: &'static str| {
        let id = id.clone();
        tokio::spawn(async move {
            for i in 0..EACH {
                store
                    .append("alice", &id, &turn(&format!("{name}{i:02}")), 2)
                    .await?;
            }
            Ok::<_, StoreError>(())
        })
    };
    let (a, b) = tokio::join!(writer(first.clone(), "a"), writer(second.clone(), "b"));
    a??;
    b??;
    let seen_first = first.find_turns("alice", &id, 1000).await?;
    let seen_second = second.find_turns("alice", &id, 1000).await?;
    assert_eq!(seen_first, seen_second, "both replicas read one order");
    assert_eq!(seen_first.len(), 2 * EACH, "no turn lost or duplicated");
    for name in ["a", "b"] {
        let own: Vec<&str> = texts(&seen_first)
            .into_iter()
            .filter(|t| t.starts_with(name))
            .collect();
        let expected: Vec<String> = (0..EACH).map(|i| format!("{name}{i:02}")).collect();
        assert_eq!(
            own, expected,
            "{name}'s turns in the order it appended them"
        );
    }
    assert_eq!(first.count_turns("alice", &id).await?, 2 * EACH as u32);
    assert_eq!(
        second.find_conversations("alice", 10).await?[0].turns,
        2 * EACH as u32
    );
    Ok(())
}

/// A schema newer than this binary (another replica already upgraded it) is refused by name.
#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_schema_newer_than_this_binary_is_refused(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let harness = backend.open().await?;
    let future = "INSERT INTO _sqlx_migrations \
                  (version, description, success, checksum, execution_time) \
                  VALUES (99990101000000, 'from a newer secure-agent', true, x'00', 0)";
    match &harness.place {
        Place::File(dir) => {
            let url = format!("sqlite://{}", dir.path().join("agent0.db").display());
            let mut conn = sqlx::SqliteConnection::connect(&url).await?;
            sqlx::raw_sql(future).execute(&mut conn).await?;
            conn.close().await?;
        }
        Place::Schema(guard) => {
            let mut conn = sqlx::PgConnection::connect(&pg_url()).await?;
            // The schema name is generated (`t_` + hex), never input: it may be spliced.
            let sql = future
                .replace(
                    "_sqlx_migrations",
                    &format!("{}._sqlx_migrations", guard.name()),
                )
                .replace("x'00'", "'\\x00'::bytea");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await?;
            conn.close().await?;
        }
        Place::Temporary => unreachable!("file-backed cases only"),
    }
    let reopened = match &harness.place {
        Place::File(dir) => SqliteConversations::open(&dir.path().join("agent0.db"))
            .await
            .map(|_| ()),
        Place::Schema(guard) => PostgresConversations::connect_in_schema(&pg_url(), guard.name())
            .await
            .map(|_| ()),
        Place::Temporary => unreachable!("file-backed cases only"),
    };
    let Err(refused) = reopened else {
        panic!("a newer schema must be refused");
    };
    assert!(
        matches!(refused, StoreError::Incompatible(_)),
        "{refused:?}"
    );
    let message = refused.to_string();
    assert!(
        message.contains("migrated by a newer secure-agent"),
        "{message}"
    );
    assert!(message.contains("Fix:"), "{message}");
    Ok(())
}

#[tokio::test]
async fn stores_open_by_url() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("by-url.db");
    let store = open(&format!("sqlite://{}", path.display())).await?;
    let id = store.create("alice", 1).await?;
    drop(store);
    let store = open(path.to_str().unwrap()).await?;
    assert_eq!(store.find_latest("alice").await?, latest(&id, 0));

    // PostgreSQL by URL (`postgres://` and `postgresql://`, with query options), confined to a
    // fresh schema by the URL's own `options`.
    let guard = TestSchema::new(PG_ENV);
    guard.create().await.map_err(anyhow::Error::msg)?;
    let separator = if pg_url().contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{separator}sslmode=prefer&options=-c%20search_path%3D{}",
        pg_url(),
        guard.name()
    );
    let store = open(&url).await?;
    let id = store.create("alice", 1).await?;
    store.append("alice", &id, &turn("by url"), 2).await?;
    let store = open(&url.replacen("postgres://", "postgresql://", 1)).await?;
    let turns = store.find_turns("alice", &id, 5).await?;
    assert_eq!(texts(&turns), ["by url"]);
    Ok(())
}

#[tokio::test]
async fn without_a_search_path_the_tables_live_in_schema_agent0() -> anyhow::Result<()> {
    // A fresh database, so the real schema name is used without colliding with parallel runs.
    let db = dbconn::testing::TestDatabase::create(PG_ENV)
        .await
        .map_err(anyhow::Error::msg)?;
    let store = open(db.url()).await?;
    store.create("alice", 1).await?;
    open(db.url()).await?;
    let mut conn = sqlx::PgConnection::connect(db.url()).await?;
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    assert!(!tables.is_empty());
    assert!(
        tables.iter().all(|(schema, _)| schema == DEFAULT_SCHEMA),
        "{tables:?}"
    );
    assert!(
        tables.contains(&(DEFAULT_SCHEMA.into(), "_sqlx_migrations".into())),
        "{tables:?}"
    );
    drop(store);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_database_fails_fast_without_the_password() {
    let started = Instant::now();
    let Err(e) = open("postgres://agent:s3cret@127.0.0.1:1/agent").await else {
        panic!("nothing listens on port 1");
    };
    assert!(
        started.elapsed() < ACQUIRE_TIMEOUT + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
    assert!(!e.to_string().contains("s3cret"), "{e}");
}

#[test]
fn a_title_is_the_first_line_cut_with_an_ellipsis() {
    assert_eq!(title_of("  list my todos "), "list my todos");
    assert_eq!(title_of("first line\nsecond"), "first line…");
    assert_eq!(title_of(&"é".repeat(TITLE_CHARS)), "é".repeat(TITLE_CHARS));
}
