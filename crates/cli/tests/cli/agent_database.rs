//! `secure-agent agent --database URL` (env `AGENT_DATABASE_URL`): conversations on PostgreSQL
//! chosen by URL; an unreachable database is refused at start, before binding, naming the URL
//! without its password and the fix. The same for `--redis URL` (env `AGENT_REDIS_URL`):
//! sessions, token caches and exchange leases on Redis (127.0.0.1:6379 required).
//!
//! PostgreSQL is required: `AGENT0_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; the test uses a fresh schema, dropped afterwards.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent0::conversations::PostgresConversations;
use testkit::IdpHandle;

use super::BIN;

fn pg_url() -> String {
    std::env::var("AGENT0_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// `secure-agent agent` on idp0's data directory (its `agent0.env`), on a free port.
fn agent(data_dir: &std::path::Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(["agent", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .env_remove("AGENT_DATABASE_URL")
        .env_remove("AGENT_REDIS_URL")
        .env_remove("PORT")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("BEDROCK_MODEL_ID");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_keeps_conversations_where_its_database_url_says() {
    let idp = IdpHandle::start().await.unwrap();
    let data = idp.data_dir.clone();

    // Unreachable, by flag and by environment: refused fast, before listening, with the fix.
    let unreachable = "postgres://agent:s3cret@127.0.0.1:1/agent?sslmode=require";
    for by_env in [false, true] {
        let mut command = agent(&data);
        if by_env {
            command.env("AGENT_DATABASE_URL", unreachable);
        } else {
            command.args(["--database", unreachable]);
        }
        let started = Instant::now();
        let output = command.output().unwrap();
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(!output.status.success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stdout.contains("listening"), "{stdout}");
        assert!(
            stderr.contains(
                "cannot open the conversation database \
                 postgres://agent:***@127.0.0.1:1/agent?sslmode=require"
            ),
            "{stderr}"
        );
        assert!(stderr.contains("start PostgreSQL"), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }

    // Reachable: a fresh schema named by the URL's own options; the banner shows where
    // conversations live, and no SQLite file appears.
    let schema = format!("t_{}", uuid_like());
    PostgresConversations::connect_in_schema(&pg_url(), &schema)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is required for this test (start it, or set \
                 AGENT0_TEST_DATABASE_URL): {e}",
                pg_url()
            )
        });
    let separator = if pg_url().contains('?') { '&' } else { '?' };
    let url = format!("{}{separator}options=-c%20search_path%3D{schema}", pg_url());
    let data_for_agent = data.clone();
    let banner = tokio::task::spawn_blocking(move || {
        let mut child = agent(&data_for_agent)
            .args(["--database", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut banner = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let done = line.contains("conversations:");
            banner.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        banner.join("\n")
    })
    .await
    .unwrap();
    let _ = PostgresConversations::drop_schema(&pg_url(), &schema).await;
    assert!(banner.contains("agent0 listening on"), "{banner}");
    assert!(
        banner.contains(&format!("conversations:   {}", pg_url())),
        "{banner}"
    );
    assert!(!data.join("agent0.db").exists(), "no SQLite file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_keeps_sessions_in_the_redis_its_url_names() {
    let idp = IdpHandle::start().await.unwrap();
    let data = idp.data_dir.clone();

    // Unreachable, by flag and by environment: refused fast, before listening, with the fix.
    let unreachable = "redis://:s3cret@127.0.0.1:1/0";
    for by_env in [false, true] {
        let mut command = agent(&data);
        if by_env {
            command.env("AGENT_REDIS_URL", unreachable);
        } else {
            command.args(["--redis", unreachable]);
        }
        let started = Instant::now();
        let output = command.output().unwrap();
        assert!(started.elapsed() < Duration::from_secs(15));
        assert!(!output.status.success());
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stdout.contains("listening"), "{stdout}");
        assert!(
            stderr.contains("Redis at redis://:***@127.0.0.1:1/0 is unavailable"),
            "{stderr}"
        );
        assert!(stderr.contains("start Redis there"), "{stderr}");
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }

    // Reachable: the banner says where sessions live.
    let data_for_agent = data.clone();
    let banner = tokio::task::spawn_blocking(move || {
        let mut child = agent(&data_for_agent)
            .args(["--redis", "redis://127.0.0.1:6379"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut banner = Vec::new();
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let done = line.contains("sessions:");
            banner.push(line);
            if done {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        banner.join("\n")
    })
    .await
    .unwrap();
    assert!(banner.contains("agent0 listening on"), "{banner}");
    assert!(
        banner.contains("sessions:        redis redis://127.0.0.1:6379"),
        "Redis 127.0.0.1:6379 is required for this test: {banner}"
    );
}

/// A schema-safe random suffix (lower-case hex): std's per-process random hash keys.
fn uuid_like() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new();
    format!(
        "{:016x}{:x}",
        random.hash_one(std::process::id()),
        std::process::id()
    )
}
