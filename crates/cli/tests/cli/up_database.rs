//! `secure-agent up --database postgres://…`: the whole stack on one PostgreSQL database, each
//! service in its own schema (`idp0`, `todo0`, `agent0`) and no SQLite store in the data
//! directory; an unreachable database stops `up` before it serves anything.
//!
//! PostgreSQL is required, never skipped: `SECURE_AGENT_TEST_DATABASE_URL` names the server
//! (default `postgres://postgres@127.0.0.1:5432/test`); each test creates a fresh database
//! `t_<uuid>` on it (the services' default schemas cannot be shared by parallel tests) and drops
//! it at the end.

use std::process::Command;
use std::time::{Duration, Instant};

use dbconn::testing::TestDatabase;
use sqlx::Connection;
use testkit::Browser;

use super::BIN;
use super::up::{Up, chat, log_in_to_agent0, post_json};

/// Every `(schema, table)` of the database outside the system schemas.
async fn tables_of(url: &str) -> Vec<(String, String)> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let tables = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();
    tables
}

async fn count(url: &str, sql: &str) -> i64 {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    let n = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    n
}

/// SQLite databases (and their WAL/journal files) anywhere under `dir`.
fn sqlite_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "db")
                || path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.contains(".db-") || n.ends_with(".sqlite"))
            {
                found.push(path);
            }
        }
    }
    found
}

/// J1 + J2 through `up --database`: a todo made through agent0 lands in schema `todo0`, the
/// turn in `agent0`, idp0's codes and sessions in `idp0`; nothing is kept in SQLite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_a_database_keeps_every_service_in_its_own_schema() {
    let db = TestDatabase::create("SECURE_AGENT_TEST_DATABASE_URL")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let (path, url) = (dir.path().to_owned(), db.url().to_owned());
    let up =
        tokio::task::spawn_blocking(move || Up::start_with(&path, [0; 4], &["--database", &url]))
            .await
            .unwrap();
    let agent = format!("http://localhost:{}", up.agent);

    let password = super::demo_password(dir.path(), "alice");
    let browser = Browser::new();
    let csrf = log_in_to_agent0(&browser, &agent, "alice", &password).await;
    let card = chat(&browser, &agent, &csrf, "add a todo \"on postgres\"").await;
    let card = &card["confirmation"];
    assert_eq!(card["tool"], "create-todo", "the first write asks: {card}");
    let reply = post_json(
        &browser,
        &format!("{agent}/api/chat/confirm"),
        &csrf,
        &serde_json::json!({
            "id": card["id"],
            "conversationId": card["conversationId"],
            "decision": "approve",
        }),
    )
    .await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["tool"], "create-todo", "{reply}");
    assert_eq!(chip["isError"], false, "{reply}");

    let tables = tables_of(db.url()).await;
    for (schema, table) in [
        ("idp0", "_sqlx_migrations"),
        ("idp0", "auth_codes"),
        ("idp0", "sso_sessions"),
        ("todo0", "_sqlx_migrations"),
        ("todo0", "todos"),
        ("agent0", "_sqlx_migrations"),
        ("agent0", "conversations"),
        ("agent0", "turns"),
    ] {
        assert!(
            tables.contains(&(schema.into(), table.into())),
            "no {schema}.{table} in {tables:?}"
        );
    }
    assert!(
        tables
            .iter()
            .all(|(schema, _)| ["idp0", "todo0", "agent0"].contains(&schema.as_str())),
        "nothing outside the three schemas: {tables:?}"
    );
    let todos = count(
        db.url(),
        "SELECT count(*) FROM todo0.todos WHERE title = 'on postgres'",
    )
    .await;
    assert_eq!(todos, 1);
    assert_eq!(
        count(db.url(), "SELECT count(*) FROM agent0.conversations").await,
        1
    );
    assert!(count(db.url(), "SELECT count(*) FROM agent0.turns").await >= 1);
    assert!(count(db.url(), "SELECT count(*) FROM idp0.sso_sessions").await >= 1);
    // github0, the offline GitHub sandbox, always keeps its demo data in SQLite.
    let beside: Vec<_> = sqlite_files(dir.path())
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("github0.db"))
        })
        .collect();
    assert_eq!(
        beside,
        Vec::<std::path::PathBuf>::new(),
        "no SQLite store beside the database"
    );

    let log = tokio::task::spawn_blocking(move || up.stop())
        .await
        .unwrap();
    assert!(!log.contains("ERROR"), "a clean stop logs no error:\n{log}");
}

/// Nothing listens on port 1: `up` fails within seconds, before serving, naming the database
/// without its password and what to do.
#[test]
fn up_with_an_unreachable_database_fails_fast_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = Command::new(BIN)
        .args([
            "up",
            "--idp-port",
            "0",
            "--mcp-port",
            "0",
            "--app-port",
            "0",
        ])
        .args(["--agent-port", "0", "--data-dir"])
        .arg(dir.path())
        .args(["--database", "postgres://sa:s3cret@127.0.0.1:1/stack"])
        .env_remove("SECURE_AGENT_DATABASE_URL")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}: {stderr}");
    assert!(
        stderr.contains("postgres://sa:***@127.0.0.1:1/stack"),
        "{stderr}"
    );
    assert!(stderr.contains("Fix: start the server"), "{stderr}");
    assert!(stderr.contains("SECURE_AGENT_DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("s3cret") && !stdout.contains("s3cret"));
    assert!(
        !stdout.contains("listening"),
        "nothing was served: {stdout}"
    );
    assert!(sqlite_files(dir.path()).is_empty());
}

/// `up --redis`: agent0's sessions live in Redis, so a person logged in before a restart of the
/// whole stack is still logged in after it (an in-process session would be gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_redis_keeps_agent0_sessions_across_a_restart() {
    let redis = std::env::var("SECURE_AGENT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let (path, url) = (dir.path().to_owned(), redis.clone());
    let up = tokio::task::spawn_blocking(move || Up::start_with(&path, [0; 4], &["--redis", &url]))
        .await
        .unwrap();
    assert!(
        up.banner
            .iter()
            .any(|l| l.contains("sessions:") && l.contains("redis redis://")),
        "the banner says where sessions live: {:#?}",
        up.banner
    );
    let ports = [up.idp, up.mcp, up.app, up.agent];
    let agent = format!("http://localhost:{}", up.agent);
    let password = super::demo_password(dir.path(), "alice");
    let browser = Browser::new();
    log_in_to_agent0(&browser, &agent, "alice", &password).await;
    tokio::task::spawn_blocking(move || up.stop())
        .await
        .unwrap();

    let (path, url) = (dir.path().to_owned(), redis);
    let again =
        tokio::task::spawn_blocking(move || Up::start_with(&path, ports, &["--redis", &url]))
            .await
            .unwrap();
    let status: serde_json::Value = browser
        .http
        .get(format!("{agent}/auth/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["authenticated"], true, "{status}");
    tokio::task::spawn_blocking(move || again.stop())
        .await
        .unwrap();
}

/// An unreachable Redis stops `up` before it serves anything, without its password.
#[test]
fn up_with_an_unreachable_redis_fails_fast_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let output = Command::new(BIN)
        .args([
            "up",
            "--idp-port",
            "0",
            "--mcp-port",
            "0",
            "--app-port",
            "0",
        ])
        .args(["--agent-port", "0", "--data-dir"])
        .arg(dir.path())
        .args(["--redis", "redis://:s3cret@127.0.0.1:1"])
        .env_remove("SECURE_AGENT_REDIS_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(started.elapsed() < Duration::from_secs(8), "{stderr}");
    assert!(stderr.contains("SECURE_AGENT_REDIS_URL"), "{stderr}");
    assert!(!stderr.contains("s3cret") && !stdout.contains("s3cret"));
    assert!(
        !stdout.contains("listening"),
        "nothing was served: {stdout}"
    );
}
