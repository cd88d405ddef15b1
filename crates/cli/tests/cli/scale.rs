//! Running at scale (issue 10, journey J6): two replicas each of `secure-agent idp`,
//! `secure-agent todo-mcp --stateless` and `secure-agent agent`, every replica its own process
//! on one PostgreSQL database and one Redis, each service behind its own round-robin proxy
//! ([`testkit::proxy::RoundRobin`], which balances every request, not every connection). The
//! services only know the proxies' addresses: idp0's issuer, the redirect URIs and the MCP
//! resource all name a proxy, never a replica.
//!
//! What the replicas share, as the README's "Running at scale" says: idp0's data directory
//! (configuration, signing keys, admin token: copied to the second replica), the agent's key and
//! settings (`agent0.env` from idp0), the cookie key (`SESSION_SECRET`), the database and Redis.
//!
//! PostgreSQL is required (`SECURE_AGENT_TEST_DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; a fresh database per test, dropped at the end) and
//! Redis too (`SECURE_AGENT_TEST_REDIS_URL`, default `redis://127.0.0.1:6379`), where the agent0
//! replicas keep their keys under a prefix of this test's own (`--redis-prefix`).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dbconn::testing::TestDatabase;
use sqlx::Connection;
use testkit::Browser;
use testkit::proxy::RoundRobin;

use super::BIN;
use super::up::{chat, log_in_to_agent0, post_json};

/// One service process; SIGKILLed on drop.
struct Replica {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Replica {
    /// Spawns `command` with its log in `log` and waits until its banner names its address (the
    /// first word after `marker`, e.g. `127.0.0.1:PORT` or `http://127.0.0.1:PORT/mcp`).
    fn spawn(mut command: Command, log: PathBuf, marker: &str) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} stopped before saying {marker:?}:\n{}\n{}",
                    log.display(),
                    seen.join("\n"),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            };
            if let Some(at) = line.find(marker) {
                let word = line[at + marker.len()..].split_whitespace().next();
                let addr = word
                    .map(|w| w.trim_start_matches("http://"))
                    .map(|w| w.split('/').next().unwrap_or(w));
                break addr.and_then(|a| a.parse().ok()).unwrap();
            }
            seen.push(line);
        };
        // Keep reading, so its stdout never breaks.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, addr, log }
    }

    /// SIGKILL: no graceful anything, as when a machine dies.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `secure-agent ARGS` with nothing from the caller's environment but `PATH`, so a developer's
/// own settings (an API key, a port, a database URL) cannot change what is tested.
fn secure_agent(args: &[&str]) -> Command {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("RUST_LOG", "warn");
    command
}

/// Copies the directory `from` to `to` (files keep their permissions).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::set_permissions(to, std::fs::metadata(from).unwrap().permissions()).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The whole deployment: three proxies and two replicas behind each.
struct Deployment {
    idp: RoundRobin,
    mcp: RoundRobin,
    agent: RoundRobin,
    /// idp0's data directory (the first replica's): `demo-users.txt`, the env files.
    idp_dir: PathBuf,
    /// `[idp A, idp B, mcp A, mcp B, agent A, agent B]`.
    replicas: Vec<Replica>,
}

impl Deployment {
    /// Starts everything under `dir`, on `database` and `redis`. Blocking: spawns processes and
    /// reads their banners (call it from `spawn_blocking`).
    fn start(dir: &Path, database: &str, redis: &str, proxies: [RoundRobin; 3]) -> Self {
        let [idp, mcp, agent] = proxies;
        // idp0's configuration names the proxies: agent0's redirect and logout URIs and the MCP
        // resource (what `up` writes for the ports it serves on). todo0's web app is not part of
        // this deployment; its client keeps the default URIs.
        let idp_dir = dir.join("idp-a");
        std::fs::create_dir_all(&idp_dir).unwrap();
        let topology = devstack::Topology::localhost(agent.port(), 5001, mcp.port());
        devstack::ensure(&idp_dir, Some(&topology)).unwrap();

        let issuer = idp.url();
        let idp_replica = |data: &Path, name: &str| {
            let data = data.display().to_string();
            let command = secure_agent(&[
                "idp",
                "--port",
                "0",
                "--data-dir",
                &data,
                "--issuer",
                &issuer,
                "--database",
                database,
            ]);
            Replica::spawn(command, dir.join(format!("{name}.log")), "listening on:")
        };
        // Each replica joins its proxy as soon as it listens: the next ones start through it.
        let mut replicas = vec![idp_replica(&idp_dir, "idp-a")];
        idp.add(replicas[0].addr);
        // The second replica gets a copy of the first one's data directory after the first
        // start made the signing keys and the admin token: the files every replica must share.
        let idp_b_dir = dir.join("idp-b");
        copy_dir(&idp_dir, &idp_b_dir);
        replicas.push(idp_replica(&idp_b_dir, "idp-b"));
        idp.add(replicas[1].addr);

        let todo_env = idp_dir.join(devstack::TODO0_ENV).display().to_string();
        for name in ["mcp-a", "mcp-b"] {
            let data = dir.join(name).display().to_string();
            let command = secure_agent(&[
                "todo-mcp",
                "--port",
                "0",
                "--data-dir",
                &data,
                "--env-file",
                &todo_env,
                "--database",
                database,
                "--stateless",
            ]);
            let replica = Replica::spawn(command, dir.join(format!("{name}.log")), "MCP endpoint:");
            mcp.add(replica.addr);
            replicas.push(replica);
        }

        let redis_prefix = format!("{}:", dbconn::testing::fresh_name());
        // One cookie key for every agent0 replica: a session cookie set by one is read by all.
        let session_secret = format!(
            "{}{}",
            dbconn::testing::fresh_name(),
            dbconn::testing::fresh_name()
        );
        let agent_env = idp_dir.join(devstack::AGENT0_ENV).display().to_string();
        for name in ["agent-a", "agent-b"] {
            let data = dir.join(name).display().to_string();
            let mut command = secure_agent(&[
                "agent",
                "--port",
                "0",
                "--data-dir",
                &data,
                "--env-file",
                &agent_env,
                "--database",
                database,
                "--redis",
                redis,
                "--redis-prefix",
                &redis_prefix,
            ]);
            command.env("SESSION_SECRET", &session_secret);
            let replica = Replica::spawn(
                command,
                dir.join(format!("{name}.log")),
                "agent0 listening on",
            );
            agent.add(replica.addr);
            replicas.push(replica);
        }
        Self {
            idp,
            mcp,
            agent,
            idp_dir,
            replicas,
        }
    }

    fn proxies(&self) -> [(&'static str, &RoundRobin); 3] {
        [
            ("idp0", &self.idp),
            ("todo0 MCP", &self.mcp),
            ("agent0", &self.agent),
        ]
    }

    /// Every replica's log, for a failure message.
    fn logs(&self) -> String {
        self.replicas
            .iter()
            .map(|r| {
                format!(
                    "--- {}\n{}",
                    r.log.display(),
                    std::fs::read_to_string(&r.log).unwrap_or_default()
                )
            })
            .collect()
    }
}

/// A person chatting through the agent0 proxy in a conversation of their own.
struct Chatter {
    who: &'static str,
    browser: Browser,
    csrf: String,
    conversation: String,
}

impl Chatter {
    async fn log_in(agent: &str, who: &'static str, password: &str) -> Self {
        let browser = Browser::new();
        let csrf = log_in_to_agent0(&browser, agent, who, password).await;
        let created = post_json(
            &browser,
            &format!("{agent}/api/conversations"),
            &csrf,
            &serde_json::json!({}),
        )
        .await;
        let conversation = created["conversationId"].as_str().unwrap().to_owned();
        Self {
            who,
            browser,
            csrf,
            conversation,
        }
    }

    /// `POST` `body` to `path`; the answer when it is a 200.
    async fn post(
        &self,
        agent: &str,
        path: &str,
        body: serde_json::Value,
    ) -> Option<serde_json::Value> {
        let response = self
            .browser
            .http
            .post(format!("{agent}{path}"))
            .header("x-csrf-token", &self.csrf)
            .json(&body)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// One turn, every confirmation card approved (each decision goes through the proxy, so
    /// usually to the other replica than the one holding the paused turn); `Some((reply, cards))`
    /// when it was acknowledged (HTTP 200 to the end).
    async fn turn(&self, agent: &str, message: &str) -> Option<(serde_json::Value, usize)> {
        let body = serde_json::json!({
            "message": message,
            "conversationId": self.conversation,
        });
        let mut reply = self.post(agent, "/api/chat", body).await?;
        let mut cards = 0;
        while !reply["confirmation"].is_null() && cards < 3 {
            let card = &reply["confirmation"];
            let decision = serde_json::json!({
                "id": card["id"],
                "conversationId": card["conversationId"],
                "decision": "approve",
            });
            cards += 1;
            reply = self.post(agent, "/api/chat/confirm", decision).await?;
        }
        Some((reply, cards))
    }

    /// The conversation as the page reads it back: `(user text, assistant text)` per turn.
    async fn read_back(&self, agent: &str) -> Vec<(String, String)> {
        let page: serde_json::Value = self
            .browser
            .http
            .get(format!("{agent}/api/conversations/{}", self.conversation))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let messages = page["messages"].as_array().unwrap();
        assert_eq!(messages.len() % 2, 0, "{page}");
        messages
            .chunks(2)
            .map(|pair| {
                assert_eq!(pair[0]["role"], "user", "{page}");
                assert_eq!(pair[1]["role"], "assistant", "{page}");
                let text =
                    |v: &serde_json::Value| v["text"].as_str().unwrap_or_default().to_owned();
                (text(&pair[0]), text(&pair[1]))
            })
            .collect()
    }
}

/// The tool chip named `tool` in a reply, which must have run without error.
fn assert_tool_ran(reply: &serde_json::Value, tool: &str) {
    assert!(reply["confirmation"].is_null(), "no card: {reply}");
    let chip = reply["toolResults"]
        .as_array()
        .and_then(|chips| chips.iter().find(|c| c["tool"] == tool))
        .unwrap_or_else(|| panic!("no {tool} chip: {reply}"));
    assert_eq!(chip["isError"], false, "{reply}");
}

/// Whether consecutive entries always differ: each request went to another replica than the
/// one before.
fn alternates(order: &[usize]) -> bool {
    order.windows(2).all(|pair| pair[0] != pair[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_of_each_service_behind_round_robin_proxies_pass_j2_and_survive_a_kill() {
    let started = Instant::now();
    let db = TestDatabase::create("SECURE_AGENT_TEST_DATABASE_URL")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let redis = std::env::var("SECURE_AGENT_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let dir = tempfile::tempdir().unwrap();
    let mut proxies = Vec::new();
    for _ in 0..3 {
        proxies.push(RoundRobin::start(&[]).await.unwrap());
    }
    let proxies: [RoundRobin; 3] = proxies.try_into().ok().unwrap();
    let (path, url) = (dir.path().to_owned(), db.url().to_owned());
    let deployment =
        tokio::task::spawn_blocking(move || Deployment::start(&path, &url, &redis, proxies))
            .await
            .unwrap();
    let agent = deployment.agent.url();
    let alice_password = super::demo_password(&deployment.idp_dir, "alice");
    let bob_password = super::demo_password(&deployment.idp_dir, "bob");
    eprintln!("deployment up in {:?}", started.elapsed());

    // J2 through the proxies, each request on another replica than the one before.
    let before: Vec<usize> = deployment
        .proxies()
        .iter()
        .map(|(_, p)| p.order().len())
        .collect();
    let alice = Chatter::log_in(&agent, "alice", &alice_password).await;
    for (message, tool, asks) in [
        ("list my todos", "get-todos", false),
        ("add a todo \"prep the demo\"", "create-todo", true),
        ("mark todo 1 as done", "update-todo", false),
        ("delete todo 1", "delete-todo", true),
    ] {
        let (reply, cards) = alice
            .turn(&agent, message)
            .await
            .unwrap_or_else(|| panic!("{message:?} failed\n{}", deployment.logs()));
        assert_tool_ran(&reply, tool);
        // The first write and the delete wait for the person; the card, shown by one replica,
        // is approved through the other.
        assert_eq!(cards > 0, asks, "{message:?}: {reply}");
    }
    let reply = chat(&alice.browser, &agent, &alice.csrf, "list my todos").await;
    assert_tool_ran(&reply, "get-todos");
    for ((name, proxy), before) in deployment.proxies().into_iter().zip(before) {
        let order = proxy.order();
        let journey = &order[before..];
        assert!(
            journey.len() >= 2 && alternates(journey),
            "{name}: every request on the other replica than the one before: {journey:?}"
        );
        assert!(
            proxy.counts().iter().all(|n| *n > 0),
            "{name}: {:?}",
            proxy.counts()
        );
        assert_eq!(proxy.failed(), 0, "{name}");
    }
    let turns = alice.read_back(&agent).await;
    assert_eq!(turns.len(), 5, "{turns:?}");
    eprintln!(
        "J2 passed at {:?}: {:?}",
        started.elapsed(),
        deployment.proxies().map(|(n, p)| (n, p.counts()))
    );

    // Three people chat in a loop; one replica of every service is killed mid-load.
    let chatters = [
        Arc::new(alice),
        Arc::new(Chatter::log_in(&agent, "bob", &bob_password).await),
        Arc::new(Chatter::log_in(&agent, "alice", &alice_password).await),
    ];
    let stop = Arc::new(AtomicBool::new(false));
    // Per person: the turns answered 200, and the todos whose creation the answer confirmed.
    let acknowledged = Arc::new(std::sync::Mutex::new(vec![(Vec::new(), Vec::new()); 3]));
    let loops: Vec<_> = chatters
        .iter()
        .enumerate()
        .map(|(index, chatter)| {
            let (chatter, stop, acknowledged, agent) = (
                chatter.clone(),
                stop.clone(),
                acknowledged.clone(),
                agent.clone(),
            );
            tokio::spawn(async move {
                let mut attempts = 0;
                while !stop.load(Ordering::SeqCst) {
                    let title = format!("{} {index} load {attempts}", chatter.who);
                    let message = format!("add a todo \"{title}\"");
                    attempts += 1;
                    if let Some((reply, _)) = chatter.turn(&agent, &message).await {
                        // A tool call that met a dying replica is a turn with an error chip:
                        // acknowledged as a turn, not as a todo.
                        let created = reply["toolResults"].as_array().is_some_and(|chips| {
                            chips
                                .iter()
                                .any(|c| c["tool"] == "create-todo" && c["isError"] == false)
                        });
                        let mut acknowledged = acknowledged.lock().unwrap();
                        acknowledged[index].0.push(message);
                        if created {
                            acknowledged[index].1.push(title);
                        }
                    } else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
                attempts
            })
        })
        .collect();
    let acks = || -> Vec<usize> {
        acknowledged
            .lock()
            .unwrap()
            .iter()
            .map(|(_, todos)| todos.len())
            .collect()
    };
    let wait_for = |least: Vec<usize>, what: &str| {
        let what = what.to_owned();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while acks().iter().zip(&least).any(|(n, least)| n < least) {
                assert!(Instant::now() < deadline, "{what}: {:?}", acks());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    wait_for(vec![2; 3], "turns before the kill").await;
    let mut deployment = deployment;
    for replica in [1, 3, 5] {
        deployment.replicas[replica].kill();
    }
    let at_kill = acks();
    let served_at_kill = deployment.proxies().map(|(_, p)| p.counts()[1]);
    eprintln!(
        "killed B of each at {:?} after {at_kill:?} turns",
        started.elapsed()
    );
    wait_for(
        at_kill.iter().map(|n| n + 3).collect(),
        "new turns through the surviving replicas",
    )
    .await;
    stop.store(true, Ordering::SeqCst);
    let mut attempts = Vec::new();
    for handle in loops {
        attempts.push(handle.await.unwrap());
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!(
        "acknowledged {:?} of {attempts:?} turns; proxies {:?}",
        acknowledged
            .iter()
            .map(|(turns, todos)| (turns.len(), todos.len()))
            .collect::<Vec<_>>(),
        deployment
            .proxies()
            .map(|(n, p)| (n, p.counts(), p.failed()))
    );
    for ((name, proxy), before) in deployment.proxies().into_iter().zip(served_at_kill) {
        assert_eq!(
            proxy.counts()[1],
            before,
            "{name}: nothing reaches the killed replica"
        );
    }

    // Every acknowledged turn is in its conversation, whole; every acknowledged todo exists.
    for (chatter, (messages, _)) in chatters.iter().zip(&acknowledged) {
        let turns = chatter.read_back(&agent).await;
        for (user, assistant) in &turns {
            assert!(
                !assistant.trim().is_empty(),
                "a half-written turn: {user:?}"
            );
        }
        for message in messages {
            assert_eq!(
                turns.iter().filter(|(user, _)| user == message).count(),
                1,
                "{message:?} in {}'s conversation",
                chatter.who
            );
        }
    }
    // Exactly once: a create whose answer was lost when its replica died is not sent again
    // (agent0 repeats only read-only or idempotent calls, or calls that surely never ran).
    let mut conn = sqlx::PgConnection::connect(db.url()).await.unwrap();
    for title in acknowledged.iter().flat_map(|(_, todos)| todos) {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM todo0.todos WHERE title = $1")
            .bind(title)
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            count, 1,
            "an acknowledged todo, lost or made twice: {title:?}"
        );
    }
    conn.close().await.unwrap();

    // And the survivors keep serving: a fresh login and a turn.
    let bob_again = Chatter::log_in(&agent, "bob", &bob_password).await;
    let (reply, _) = bob_again.turn(&agent, "list my todos").await.unwrap();
    assert_tool_ran(&reply, "get-todos");
    eprintln!("done in {:?}", started.elapsed());
}
