//! `secure-agent todo-mcp --stateless` as an operator runs it behind a load balancer (issue 10):
//! two processes on one PostgreSQL database, one told by the flag and one by `MCP_STATELESS=1`,
//! both serving the same resource identifier (the balancer's URL). A client initializes on one
//! and is served by either with real tokens from idp0's Cross-App Access flow; neither names a
//! session; GET is answered `405`; a token without the tool's scope is refused by both. And one
//! such process on a SQLite file, killed with `kill -9` while it writes, has lost nothing it
//! answered when the next one opens the file.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use dbconn::testing::TestDatabase;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use testkit::{Browser, IdpHandle};

use super::BIN;

/// What every replica is known by: the balancer's URL, not a replica's own.
const RESOURCE: &str = "http://todo0.test/mcp";

/// A `todo-mcp` child, killed when dropped.
struct Replica {
    child: Child,
    url: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `secure-agent todo-mcp` with `args` (and `env`) and waits for its endpoint line.
fn start(
    data_dir: &std::path::Path,
    database: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Replica {
    let mut command = Command::new(BIN);
    command
        .args([
            "todo-mcp",
            "--port",
            "0",
            "--database",
            database,
            "--data-dir",
        ])
        .arg(data_dir)
        .args(args)
        .env_remove("MCP_STATELESS")
        .env_remove("MCP_PORT")
        .env_remove("TODO_DATABASE_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let marker = "MCP endpoint:      http://";
    let mut url = None;
    let mut banner = vec![];
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(at) = line.find(marker) {
            let rest = &line[at + marker.len()..];
            url = Some(format!(
                "http://{}",
                rest.split_whitespace().next().unwrap()
            ));
        }
        let done = line.contains("store:");
        banner.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || lines.for_each(drop));
    let url = url.unwrap_or_else(|| panic!("todo-mcp {args:?} did not start: {banner:?}"));
    assert!(
        banner.iter().any(|l| l.contains("sessions:          none")),
        "the banner says no sessions are kept: {banner:?}"
    );
    Replica { child, url }
}

async fn rpc(url: &str, token: &str, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-11-25")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

fn call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": tool, "arguments": arguments}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stateless_todo_mcp_processes_on_one_database_serve_any_request() {
    let db = TestDatabase::create("SECURE_AGENT_TEST_DATABASE_URL")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let idp = IdpHandle::start_for_resource(RESOURCE).await.unwrap();
    let (dir, url) = (idp.data_dir.clone(), db.url().to_owned());
    let (a, b) = tokio::task::spawn_blocking(move || {
        let a = start(&dir, &url, &["--stateless"], &[]);
        let b = start(&dir, &url, &[], &[("MCP_STATELESS", "1")]);
        (a, b)
    })
    .await
    .unwrap();

    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let id_token = login.id_token.unwrap();
    let token = |scope: &'static str| {
        let (idp, id_token) = (&idp, &id_token);
        async move {
            let grant = idp
                .cross_app_access(id_token, RESOURCE, scope)
                .await
                .unwrap();
            grant.access.access_token.expose_secret().to_owned()
        }
    };
    let manage = token("mcp:connect mcp:tools:read mcp:tools:manage").await;
    let read = token("mcp:connect mcp:tools:read").await;

    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"}}});
    let (status, headers, _) = rpc(&a.url, &manage, &init).await;
    assert_eq!(status, 200);
    assert!(headers.get("mcp-session-id").is_none());

    let (status, headers, created) = rpc(
        &b.url,
        &manage,
        &call("create-todo", json!({"title": "made on B"})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    assert!(headers.get("mcp-session-id").is_none());
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        created["result"]["structuredContent"]["todo"]["title"],
        "made on B"
    );
    let (status, _, listed) = rpc(&a.url, &read, &call("get-todos", json!({}))).await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed["result"]["structuredContent"]["todos"][0]["title"],
        "made on B"
    );

    for replica in [&a, &b] {
        let (status, headers, _) = rpc(
            &replica.url,
            &read,
            &call("create-todo", json!({"title": "not allowed"})),
        )
        .await;
        assert_eq!(status, 403);
        let challenge = headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("insufficient_scope"), "{challenge}");
        let get = reqwest::Client::new()
            .get(&replica.url)
            .bearer_auth(&read)
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(get.status().as_u16(), 405);
    }
}

/// A write is answered only after its group has committed: `kill -9` of a `todo-mcp` that is
/// busy creating todos (16 clients at once, so writes share groups) loses none of those it
/// answered, and the file opens cleanly for the next process on the same SQLite database. (A
/// killed process leaves the operating system's cache behind, so this checks the order of commit
/// and answer; that the commit reaches the disk, `synchronous = FULL`, is the store's own tests'.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn todos_answered_before_kill_9_are_all_there_after_a_restart() {
    let idp = IdpHandle::start_for_resource(RESOURCE).await.unwrap();
    let files = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", files.path().join("todo0.db").display());
    let (dir, url) = (idp.data_dir.clone(), database.clone());
    let mut first = tokio::task::spawn_blocking(move || start(&dir, &url, &["--stateless"], &[]))
        .await
        .unwrap();

    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let grant = idp
        .cross_app_access(
            &login.id_token.unwrap(),
            RESOURCE,
            "mcp:connect mcp:tools:read mcp:tools:manage",
        )
        .await
        .unwrap();
    let token = grant.access.access_token.expose_secret().to_owned();

    let answered = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(i64, String)>::new()));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..16 {
        let (url, token, answered) = (first.url.clone(), token.clone(), answered.clone());
        clients.spawn(async move {
            for n in 0.. {
                let title = format!("client {client} todo {n}");
                let response = reqwest::Client::new()
                    .post(&url)
                    .bearer_auth(&token)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-11-25")
                    .json(&call("create-todo", json!({ "title": title })))
                    .send()
                    .await;
                // The kill: the connection drops, or the answer is cut short.
                let Ok(response) = response else { return };
                let Ok(body) = response.json::<Value>().await else {
                    return;
                };
                let id = body["result"]["structuredContent"]["todo"]["id"].as_i64();
                let id = id.unwrap_or_else(|| panic!("create-todo answered {body}"));
                answered.lock().unwrap().push((id, title));
            }
        });
    }
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while answered.lock().unwrap().len() < 500 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // `Child::kill` is SIGKILL on Unix: no shutdown, no flush, no destructor runs.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    while let Some(client) = clients.join_next().await {
        client.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(answered.len() >= 100, "only {} writes", answered.len());
    eprintln!("{} todos answered before the kill", answered.len());

    let (dir, url) = (idp.data_dir.clone(), database);
    let second = tokio::task::spawn_blocking(move || start(&dir, &url, &["--stateless"], &[]))
        .await
        .unwrap();
    let (status, _, listed) = rpc(&second.url, &token, &call("get-todos", json!({}))).await;
    assert_eq!(status, 200, "{listed}");
    // By id and title: a write answered but rolled back would leave its id to the next one.
    let stored: std::collections::HashMap<i64, String> =
        listed["result"]["structuredContent"]["todos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|todo| {
                let id = todo["id"].as_i64().unwrap();
                (id, todo["title"].as_str().unwrap().to_owned())
            })
            .collect();
    let lost: Vec<_> = answered
        .iter()
        .filter(|(id, title)| stored.get(id) != Some(title))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} answered todos lost: {lost:?}",
        lost.len(),
        answered.len()
    );
}
