//! The [`TodoStore`] contract, run against every backend: SQLite (a file) and
//! PostgreSQL (each test in its own fresh schema, so tests run in parallel).
//!
//! PostgreSQL is required: `TODO0_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`. An unreachable server fails the tests.
#![allow(clippy::unwrap_used)]

use std::ops::Deref;
use std::sync::Arc;

use dbconn::testing::TestSchema;
use rstest::rstest;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{PostgresStore, SqliteStore, TodoStore};
use crate::domain::{Filter, Owner, Title, Todo, TodoChange, TodoError, rfc3339};

/// A fixed "now" (2023-11-14T22:13:20Z); tests pass explicit times.
const T0: i64 = 1_700_000_000;

/// The variable that points the PostgreSQL cases at another server.
const PG_ENV: &str = "TODO0_TEST_DATABASE_URL";

fn pg_url() -> String {
    dbconn::testing::database_url(PG_ENV)
}

fn owner(id: &str) -> Owner {
    Owner::new(id).unwrap()
}

fn title(text: &str) -> Title {
    Title::parse(text).unwrap()
}

fn change(title: Option<&str>, completed: Option<bool>) -> TodoChange {
    TodoChange::parse(title, completed).unwrap()
}

fn filter(completed: Option<bool>, text: Option<&str>) -> Filter {
    Filter {
        completed,
        text: text.map(str::to_owned),
    }
}

fn ids(todos: &[Todo]) -> Vec<i64> {
    todos.iter().map(|t| t.id).collect()
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy)]
enum Backend {
    SqliteFile,
    Postgres,
}

/// A fresh, empty store, and whatever must outlive it (temp dir, schema to drop).
struct Harness {
    store: Arc<dyn TodoStore>,
    _dir: Option<tempfile::TempDir>,
    _schema: Option<TestSchema>,
}

impl Deref for Harness {
    type Target = dyn TodoStore;
    fn deref(&self) -> &Self::Target {
        &*self.store
    }
}

impl Backend {
    async fn open(self) -> anyhow::Result<Harness> {
        Ok(match self {
            Self::SqliteFile => {
                let dir = tempfile::tempdir()?;
                let store = SqliteStore::open(&dir.path().join("todo0.db")).await?;
                Harness {
                    store: Arc::new(store),
                    _dir: Some(dir),
                    _schema: None,
                }
            }
            Self::Postgres => {
                let (store, guard) = pg_store(&pg_url()).await?;
                Harness {
                    store: Arc::new(store),
                    _dir: None,
                    _schema: Some(guard),
                }
            }
        })
    }
}

/// A store in a fresh schema `t_<uuid>` of the test database at `url`; the guard drops the
/// schema.
async fn pg_store(url: &str) -> anyhow::Result<(PostgresStore, TestSchema)> {
    let guard = TestSchema::new(PG_ENV);
    let store = PostgresStore::connect_in_schema(url, guard.name())
        .await
        .map_err(|e| anyhow::anyhow!(dbconn::testing::required(url, PG_ENV, e)))?;
    Ok((store, guard))
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn created_todos_are_got_and_listed_oldest_first(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    store.ping().await?;
    assert!(store.list(&alice, &Filter::default()).await?.is_empty());

    let first = store.create(&alice, &title("  buy milk "), T0).await?;
    assert_eq!(
        first,
        Todo {
            id: 1,
            title: "buy milk".into(),
            completed: false,
            created_at: rfc3339(T0),
            updated_at: rfc3339(T0),
        },
        "a fresh store starts at id 1"
    );
    let second = store.create(&alice, &title("walk the dog"), T0 + 1).await?;
    let third = store
        .create(&alice, &title("write report"), T0 - 10)
        .await?;
    assert!(first.id < second.id && second.id < third.id);

    assert_eq!(store.get(&alice, second.id).await?, second);
    let all = store.list(&alice, &Filter::default()).await?;
    assert_eq!(
        all,
        vec![first, second, third],
        "ordered by id, not by time"
    );
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn lists_filter_by_completion_and_text(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let milk = store.create(&alice, &title("Buy MILK"), T0).await?;
    let bread = store.create(&alice, &title("buy bread"), T0).await?;
    let call = store.create(&alice, &title("call mum"), T0).await?;
    let oat = store.create(&alice, &title("oat milk, too"), T0).await?;
    store
        .set_completed(&alice, bread.id, Some(true), T0)
        .await?;
    store.set_completed(&alice, oat.id, Some(true), T0).await?;

    let list = async |completed, text| {
        store
            .list(&alice, &filter(completed, text))
            .await
            .map(|todos| ids(&todos))
    };
    assert_eq!(list(Some(true), None).await?, [bread.id, oat.id]);
    assert_eq!(list(Some(false), None).await?, [milk.id, call.id]);
    assert_eq!(
        list(None, Some("milk")).await?,
        [milk.id, oat.id],
        "case-insensitive"
    );
    assert_eq!(list(None, Some("BUY")).await?, [milk.id, bread.id]);
    assert_eq!(list(Some(true), Some("Milk")).await?, [oat.id]);
    assert_eq!(list(Some(false), Some("milk")).await?, [milk.id]);
    assert_eq!(
        list(None, Some("")).await?,
        [milk.id, bread.id, call.id, oat.id]
    );
    assert!(list(None, Some("cheese")).await?.is_empty());
    assert!(list(Some(true), Some("call")).await?.is_empty());
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn titles_are_data_unicode_and_sql_alike(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let long = "é".repeat(500);
    let texts = [
        "Ünïcödé ✓ — 日本語のタスク 🚀",
        "'; DROP TABLE todos; --",
        "Robert'); DELETE FROM todos WHERE ('1'='1",
        "100% done",
        "\"quoted\" \\ back\tslash",
        long.as_str(),
    ];
    let mut created = Vec::new();
    for text in texts {
        let todo = store.create(&alice, &title(text), T0).await?;
        assert_eq!(todo.title, text);
        assert_eq!(store.get(&alice, todo.id).await?.title, text);
        created.push(todo.id);
    }
    assert_eq!(
        ids(&store.list(&alice, &Filter::default()).await?),
        created,
        "table intact"
    );

    let find = async |text: &str| {
        store
            .list(&alice, &filter(None, Some(text)))
            .await
            .map(|todos| ids(&todos))
    };
    assert_eq!(find("日本語").await?, [created[0]]);
    assert_eq!(find("🚀").await?, [created[0]]);
    // Search text is never a pattern: `%` and `_` match only themselves, quotes are plain.
    assert_eq!(find("%").await?, [created[3]]);
    assert!(find("_").await?.is_empty());
    assert!(find("d%e").await?.is_empty());
    assert_eq!(find("' or '1'='1").await?, Vec::<i64>::new());
    assert_eq!(find("drop table").await?, [created[1]]);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn renaming_moves_updated_at_but_not_created_at(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let todo = store.create(&alice, &title("draft"), T0).await?;
    let renamed = store
        .update(&alice, todo.id, &change(Some("final"), None), T0 + 60)
        .await?;
    assert_eq!(
        renamed,
        Todo {
            title: "final".into(),
            updated_at: rfc3339(T0 + 60),
            ..todo.clone()
        }
    );
    assert_eq!(store.get(&alice, todo.id).await?, renamed);
    assert_eq!(renamed.created_at, todo.created_at);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn an_update_changes_what_it_names_and_keeps_the_rest(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let todo = store.create(&alice, &title("draft"), T0).await?;

    let both = store
        .update(&alice, todo.id, &change(Some("final"), Some(true)), T0 + 1)
        .await?;
    let expected = Todo {
        title: "final".into(),
        completed: true,
        updated_at: rfc3339(T0 + 1),
        ..todo.clone()
    };
    assert_eq!(both, expected, "title and completion in one write");
    let reopened = store
        .update(&alice, todo.id, &change(None, Some(false)), T0 + 2)
        .await?;
    assert_eq!(
        (reopened.title.as_str(), reopened.completed),
        ("final", false),
        "the title is kept"
    );
    let renamed = store
        .update(&alice, todo.id, &change(Some("again"), None), T0 + 3)
        .await?;
    assert_eq!(
        (renamed.title.as_str(), renamed.completed),
        ("again", false),
        "completion is kept"
    );
    assert_eq!(store.get(&alice, todo.id).await?, renamed);
    Ok(())
}

/// Many concurrent updates, half renaming and half completing the same todos: each write reads
/// and writes its row in one statement, so no update puts back a field another one just changed.
#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_of_different_fields_both_land(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(store.create(&alice, &title("before"), T0).await?.id);
    }
    let mut tasks = Vec::new();
    for &id in &ids {
        for update in [change(Some("after"), None), change(None, Some(true))] {
            let (store, alice) = (store.store.clone(), alice.clone());
            tasks.push(tokio::spawn(async move {
                store.update(&alice, id, &update, T0 + 1).await
            }));
        }
    }
    for task in tasks {
        task.await??;
    }
    for todo in store.list(&alice, &Filter::default()).await? {
        assert_eq!(
            (todo.title.as_str(), todo.completed),
            ("after", true),
            "todo {}: both updates landed",
            todo.id
        );
    }
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn completion_is_set_or_toggled(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let id = store.create(&alice, &title("ship it"), T0).await?.id;

    let done = store.set_completed(&alice, id, Some(true), T0 + 1).await?;
    assert!(done.completed);
    assert_eq!(
        (done.created_at.as_str(), done.updated_at),
        (rfc3339(T0).as_str(), rfc3339(T0 + 1))
    );
    assert!(
        store
            .set_completed(&alice, id, Some(true), T0 + 2)
            .await?
            .completed,
        "idempotent"
    );
    assert!(
        !store
            .set_completed(&alice, id, Some(false), T0 + 3)
            .await?
            .completed
    );
    assert!(
        !store
            .set_completed(&alice, id, Some(false), T0 + 4)
            .await?
            .completed
    );

    let toggled = store.set_completed(&alice, id, None, T0 + 5).await?;
    assert!(toggled.completed);
    assert_eq!(toggled.updated_at, rfc3339(T0 + 5));
    assert!(
        !store
            .set_completed(&alice, id, None, T0 + 6)
            .await?
            .completed
    );
    assert!(
        store
            .set_completed(&alice, id, None, T0 + 7)
            .await?
            .completed
    );
    assert_eq!(
        store.get(&alice, id).await?,
        Todo {
            updated_at: rfc3339(T0 + 7),
            ..toggled
        }
    );
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn a_deleted_todo_is_gone(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let keep = store.create(&alice, &title("keep"), T0).await?;
    let gone = store.create(&alice, &title("gone"), T0).await?;

    assert_eq!(
        store.delete(&alice, gone.id).await?,
        gone,
        "returns what it deleted"
    );
    let id = gone.id;
    assert!(matches!(store.get(&alice, id).await, Err(TodoError::NotFound(i)) if i == id));
    assert!(matches!(store.delete(&alice, id).await, Err(TodoError::NotFound(i)) if i == id));
    assert!(matches!(
        store.update(&alice, id, &change(Some("x"), Some(true)), T0).await,
        Err(TodoError::NotFound(i)) if i == id
    ));
    assert!(matches!(
        store.set_completed(&alice, id, None, T0).await,
        Err(TodoError::NotFound(i)) if i == id
    ));
    assert!(matches!(
        store.get(&alice, 999_999).await,
        Err(TodoError::NotFound(999_999))
    ));
    assert_eq!(store.list(&alice, &Filter::default()).await?, vec![keep]);
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn ids_are_never_reused(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let bob = owner("bob");
    let a = store.create(&alice, &title("a"), T0).await?;
    let b = store.create(&alice, &title("b"), T0).await?;
    // Deleting the newest row is what makes a plain rowid table hand its id out again.
    store.delete(&alice, b.id).await?;
    let c = store.create(&alice, &title("c"), T0).await?;
    assert!(c.id > b.id, "{} reused after {} was deleted", c.id, b.id);
    store.delete(&alice, a.id).await?;
    store.delete(&alice, c.id).await?;
    let d = store.create(&bob, &title("d"), T0).await?;
    assert!(
        d.id > c.id,
        "ids are store-wide and never reused, even when the table is empty"
    );
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn owners_cannot_reach_each_others_todos(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let bob = owner("bob");
    let hers = store.create(&alice, &title("alice's secret"), T0).await?;
    let his = store.create(&bob, &title("bob's"), T0).await?;
    let id = hers.id;

    let not_found =
        |r: Result<Todo, TodoError>| matches!(r, Err(TodoError::NotFound(i)) if i == id);
    assert!(
        not_found(store.get(&bob, id).await),
        "a foreign id looks missing"
    );
    assert!(not_found(
        store
            .update(&bob, id, &change(Some("pwned"), Some(true)), T0 + 9)
            .await
    ));
    assert!(not_found(
        store.set_completed(&bob, id, Some(true), T0 + 9).await
    ));
    assert!(not_found(store.set_completed(&bob, id, None, T0 + 9).await));
    assert!(not_found(store.delete(&bob, id).await));

    assert_eq!(
        store.get(&alice, id).await?,
        hers,
        "alice's todo is unchanged"
    );
    assert_eq!(store.list(&alice, &Filter::default()).await?, vec![hers]);
    assert_eq!(
        store.list(&bob, &Filter::default()).await?,
        vec![his.clone()]
    );
    let everything = filter(None, Some("secret"));
    assert!(store.list(&bob, &everything).await?.is_empty());
    // Owner ids are compared exactly.
    assert!(
        store
            .list(&owner("Alice"), &Filter::default())
            .await?
            .is_empty()
    );
    assert!(
        store
            .list(&owner("alice "), &Filter::default())
            .await?
            .is_empty()
    );
    Ok(())
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn concurrent_writes_all_land(#[case] backend: Backend) -> anyhow::Result<()> {
    let store = backend.open().await?;
    let alice = owner("alice");
    let id = store.create(&alice, &title("flip me"), T0).await?.id;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..40_i64 {
        let (store, alice) = (Arc::clone(&store.store), alice.clone());
        tasks.spawn(async move {
            store
                .create(&alice, &Title::parse(&format!("task {n}"))?, T0 + n)
                .await?;
            store.set_completed(&alice, id, None, T0 + n).await?;
            Ok::<_, TodoError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let all = store.list(&alice, &Filter::default()).await?;
    assert_eq!(all.len(), 41);
    assert!(!all[0].completed, "40 toggles, none lost");
    Ok(())
}

#[tokio::test]
async fn a_sqlite_file_keeps_todos_across_reopening() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("nested name with spaces #1.db");
    let alice = owner("alice");
    let (kept, deleted) = {
        let store = SqliteStore::open(&path).await?;
        let kept = store.create(&alice, &title("persist me"), T0).await?;
        let kept = store
            .set_completed(&alice, kept.id, Some(true), T0 + 1)
            .await?;
        let deleted = store.create(&alice, &title("delete me"), T0).await?;
        store.delete(&alice, deleted.id).await?;
        (kept, deleted)
    };
    let reopened = SqliteStore::open(&path).await?;
    assert_eq!(reopened.list(&alice, &Filter::default()).await?, vec![kept]);
    let next = reopened.create(&alice, &title("after reopen"), T0).await?;
    assert!(
        next.id > deleted.id,
        "the id high-water mark survives reopening too"
    );
    Ok(())
}

#[tokio::test]
async fn stores_open_by_url() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("by-url.db");
    let alice = owner("alice");
    let url = format!("sqlite://{}", path.display());
    super::open(&url)
        .await?
        .create(&alice, &title("via url"), T0)
        .await?;
    let plain = super::open(path.to_str().unwrap()).await?;
    assert_eq!(plain.list(&alice, &Filter::default()).await?.len(), 1);

    // `PostgresStore::connect` honours URL options; a search_path keeps it out of `public`.
    let guard = TestSchema::new(PG_ENV);
    guard.create().await.map_err(anyhow::Error::msg)?;
    let schema = guard.name();
    let url = guard.url_with_search_path();
    let pg = super::open(&url).await?;
    let todo = pg.create(&alice, &title("via postgres url"), T0).await?;
    assert_eq!(todo.id, 1, "a fresh schema");
    let mut check = PgConnection::connect(&pg_url()).await?;
    let in_schema: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'todos'",
    )
    .bind(schema)
    .fetch_one(&mut check)
    .await?;
    assert_eq!(in_schema, 1, "migrated inside the URL's search_path");
    check.close().await?;
    Ok(())
}

/// Every `(schema, table)` of a database outside the system schemas.
async fn tables_of(url: &str) -> anyhow::Result<Vec<(String, String)>> {
    let mut conn = PgConnection::connect(url).await?;
    let tables = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await?;
    conn.close().await?;
    Ok(tables)
}

#[tokio::test]
async fn without_a_search_path_the_tables_live_in_schema_todo0() -> anyhow::Result<()> {
    // A fresh database, so the real schema name is used without colliding with parallel runs.
    let db = dbconn::testing::TestDatabase::create(PG_ENV)
        .await
        .map_err(anyhow::Error::msg)?;
    let alice = owner("alice");
    let store = PostgresStore::connect(db.url()).await?;
    store.create(&alice, &title("own schema"), T0).await?;
    let again = PostgresStore::connect(db.url()).await?;
    assert_eq!(again.list(&alice, &Filter::default()).await?.len(), 1);
    let tables = tables_of(db.url()).await?;
    assert!(
        tables.iter().all(|(schema, _)| schema == "todo0"),
        "{tables:?}"
    );
    for table in ["_sqlx_migrations", "todos", "ended_sessions"] {
        assert!(
            tables.contains(&("todo0".into(), table.into())),
            "{tables:?}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn todos_an_earlier_todo0_kept_in_public_stay_there() -> anyhow::Result<()> {
    // An earlier todo0 migrated into `public` (the URL's default search_path back then).
    let db = dbconn::testing::TestDatabase::create(PG_ENV)
        .await
        .map_err(anyhow::Error::msg)?;
    let alice = owner("alice");
    let old =
        PostgresStore::connect(&dbconn::testing::with_search_path(db.url(), "public")).await?;
    old.create(&alice, &title("from before"), T0).await?;
    drop(old);

    // The same URL as before, without a search_path: the todos are still there, in `public`.
    let store = PostgresStore::connect(db.url()).await?;
    let todos = store.list(&alice, &Filter::default()).await?;
    assert_eq!(todos.len(), 1, "{todos:?}");
    assert_eq!(todos[0].title, "from before");
    store.create(&alice, &title("after"), T0).await?;
    let tables = tables_of(db.url()).await?;
    assert!(
        tables.iter().all(|(schema, _)| schema == "public"),
        "{tables:?}"
    );

    // A `public` with someone else's tables (another service's migration history) is not todo0's:
    // todo0 then takes its own schema.
    let other = dbconn::testing::TestDatabase::create(PG_ENV)
        .await
        .map_err(anyhow::Error::msg)?;
    let mut conn = PgConnection::connect(other.url()).await?;
    sqlx::raw_sql(
        "CREATE TABLE todos (id BIGINT); \
         CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
         installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
         checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL); \
         INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (1, 'someone else', true, '\\x00'::bytea, 0)",
    )
    .execute(&mut conn)
    .await?;
    conn.close().await?;
    let store = PostgresStore::connect(other.url()).await?;
    assert!(store.list(&alice, &Filter::default()).await?.is_empty());
    let tables = tables_of(other.url()).await?;
    assert!(
        tables.contains(&("todo0".into(), "todos".into())),
        "{tables:?}"
    );
    Ok(())
}

/// Asserts a store error is `Unavailable`, worded for people, and names no credential or address.
fn assert_safe_unavailable(err: &TodoError, secrets: &[&str]) {
    let message = err.to_string();
    assert!(matches!(err, TodoError::Unavailable(_)), "{err:?}");
    assert!(
        message.starts_with("the todo store is unavailable: "),
        "{message}"
    );
    for secret in secrets.iter().chain(&["postgres://", "postgresql://"]) {
        assert!(!message.contains(secret), "{message:?} leaks {secret:?}");
    }
}

#[tokio::test]
async fn postgres_recovers_after_its_connections_are_killed() -> anyhow::Result<()> {
    // A password the server ignores (trust auth), to prove errors never carry it.
    let mut url = url::Url::parse(&pg_url())?;
    if url.password().is_none() {
        url.set_password(Some("not-a-real-secret-pw"))
            .map_err(|()| anyhow::anyhow!("cannot set a password on {url}"))?;
    }
    let password = url.password().unwrap().to_owned();
    let address = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let secrets = [password.as_str(), address.as_str()];
    let (store, guard) = pg_store(url.as_str()).await?;
    let app = format!("todo0-{}", guard.name());
    let alice = owner("alice");
    let todo = store.create(&alice, &title("survive"), T0).await?;

    // Park one store operation on a table lock, so a session dies mid-query, not only idle ones.
    let mut locker = PgConnection::connect(&pg_url()).await?;
    let mut tx = locker.begin().await?;
    sqlx::query("SELECT set_config('search_path', $1, true)")
        .bind(guard.name())
        .execute(&mut *tx)
        .await?;
    sqlx::query("LOCK TABLE todos IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    let in_flight = tokio::spawn({
        let (store, alice) = (store.clone(), alice.clone());
        async move { store.get(&alice, todo.id).await }
    });

    let mut admin = PgConnection::connect(&pg_url()).await?;
    let mut waiting = false;
    for _ in 0..100 {
        waiting = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity \
             WHERE application_name = $1 AND wait_event_type = 'Lock')",
        )
        .bind(&app)
        .fetch_one(&mut admin)
        .await?;
        if waiting {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(waiting, "the store's query never blocked on the lock");

    // Terminate every session of this store (found by its unique application_name), waiting up
    // to 5 s for each to be gone; other tests' sessions are untouched.
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(&app)
    .fetch_all(&mut admin)
    .await?;
    assert!(
        !killed.is_empty() && killed.iter().all(|k| *k),
        "sessions killed: {killed:?}"
    );
    tx.rollback().await?;
    locker.close().await?;
    admin.close().await?;

    let Err(err) = in_flight.await? else {
        panic!("a query whose session was terminated cannot succeed");
    };
    assert_safe_unavailable(&err, &secrets);

    // The pool discards the dead connections: an attempt may still fail, but a retry succeeds.
    let mut failures = Vec::new();
    let mut recovered = None;
    for _ in 0..5 {
        match store.get(&alice, todo.id).await {
            Ok(got) => {
                recovered = Some(got);
                break;
            }
            Err(e) => failures.push(e),
        }
    }
    assert_eq!(recovered, Some(todo), "no recovery; failures: {failures:?}");
    for failure in &failures {
        assert_safe_unavailable(failure, &secrets);
    }
    store.ping().await?;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_postgres_is_unavailable_without_leaking_the_url() {
    // Port 1: connection refused; the pool retries until its 5 s acquire timeout.
    let url = "postgres://todo0:hunter2-very-secret@127.0.0.1:1/todo";
    let Err(err) = PostgresStore::connect(url).await else {
        panic!("nothing listens on port 1");
    };
    assert_safe_unavailable(&err, &["hunter2", "127.0.0.1:1"]);
}

#[rstest]
#[case::sqlite_file(Backend::SqliteFile)]
#[case::postgres(Backend::Postgres)]
#[tokio::test]
async fn ended_sessions_are_remembered_until_they_expire(
    #[case] backend: Backend,
) -> anyhow::Result<()> {
    let store = backend.open().await?;
    assert!(!store.is_session_ended("s1").await?);
    store.end_session("s1", T0 + 100, T0).await?;
    store.end_session("s1", T0 + 100, T0).await?;
    assert!(store.is_session_ended("s1").await?, "ending twice is fine");
    assert!(!store.is_session_ended("s2").await?);
    // A later logout purges rows whose sessions have expired by now.
    store.end_session("s2", T0 + 10_000, T0 + 101).await?;
    assert!(
        !store.is_session_ended("s1").await?,
        "purged after its expiry"
    );
    assert!(store.is_session_ended("s2").await?);
    Ok(())
}

#[tokio::test]
async fn ended_sessions_survive_reopening_a_sqlite_file() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("todo0.db");
    {
        let store = SqliteStore::open(&path).await?;
        store.end_session("gone", T0 + 3600, T0).await?;
    }
    let reopened = SqliteStore::open(&path).await?;
    assert!(reopened.is_session_ended("gone").await?);
    assert!(!reopened.is_session_ended("other").await?);
    Ok(())
}
