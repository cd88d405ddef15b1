//! `secure-agent bench agent`: agent0's own cost per chat turn, with the offline model (so no
//! LLM time) and warm token caches. idp0, todo0's MCP server and agent0 run in this process on
//! loopback ports; each worker is a person logged in through idp0's form with their own session
//! and conversation, posting `POST /api/chat` in a closed loop. A turn is request in to reply
//! out: session lookup, conversation read, `tools/list` (cached), the model step, the MCP
//! `tools/call` over HTTP to todo0, the second model step, the durable turn write. The token
//! broker's exchange counter must not move while measuring: a warm turn makes no IdP round trip.

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent0::config::AuthStrategy;
use agent0::conversations::SqliteConversations;
use agent0::mcp::McpServer;
use agent0::tokens::IdJagTarget;
use anyhow::{Context, bail};
use protocol::assertion::ClientAssertionSigner;
use protocol::keys::SigningKey;
use protocol::token_client::ClientAuth;
use protocol::{Clock, Scopes};
use serde_json::{Value, json};
use tokio::task::JoinSet;

/// The target: p50 per turn, in milliseconds.
const TARGET_P50_MS: f64 = 5.0;
const PASSWORD: &str = "bench-password-not-secret";

#[derive(clap::Args)]
pub(crate) struct AgentBenchArgs {
    /// Concurrent people per run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 32])]
    concurrency: Vec<usize>,
    /// What each person says every turn.
    #[arg(long, default_value = "list my todos")]
    message: String,
    /// Measured time per run, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = super::parse_duration)]
    duration: Duration,
    /// Also run each concurrency paced: every person sends one message per this interval (an
    /// open loop, as people chat), latency counted from when the message was due. 0 disables.
    #[arg(long, default_value = "100ms", value_parser = super::parse_duration)]
    pace: Duration,
    /// Unmeasured turns before each run's measurement (warms the token caches and sessions).
    #[arg(long, default_value = "1s", value_parser = super::parse_duration)]
    warmup: Duration,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

struct Person {
    http: reqwest::Client,
    csrf: String,
}

pub(crate) async fn run(args: AgentBenchArgs) -> anyhow::Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers, e.g. 1,32");
    }
    let people = args.concurrency.iter().copied().max().unwrap_or(1);
    let temp = tempfile::Builder::new()
        .prefix("secure-agent-bench-agent-")
        .tempdir()?;
    let dir = temp.path().to_owned();
    let clock = protocol::clock::system();

    let agent_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let agent_base = format!("http://{}", agent_listener.local_addr()?);
    let mcp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mcp_url = format!("http://{}/mcp", mcp_listener.local_addr()?);
    let idp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = format!("http://{}", idp_listener.local_addr()?);
    configure_idp(&dir, &agent_base, &mcp_url, people)?;

    let opened = devstack::open_idp(&dir, None, issuer.clone(), clock.clone(), None).await?;
    tokio::spawn(idp0::serve(
        idp_listener,
        opened.idp.clone(),
        std::future::pending(),
    ));
    let todo_issuer = format!("{issuer}/oauth2/{}", devstack::TODO0_SERVER);

    let store = todo0::store::open(&format!("sqlite://{}", dir.join("todo0.db").display())).await?;
    let jwks = protocol::verify::RemoteJwks::discover(
        protocol::discovery::http_client().context("building the HTTP client")?,
        &todo_issuer,
        Duration::from_secs(30),
    )
    .await?;
    let mcp = todo0::mcp::router(
        &todo0::mcp::McpConfig::new(todo_issuer.clone(), &mcp_url),
        Arc::new(jwks),
        store,
        clock.clone(),
    );
    tokio::spawn(async move { httpserve::serve(mcp_listener, mcp, std::future::pending()).await });

    let state = agent0::AppState::new(
        agent_config(&dir, &issuer, &agent_base, &mcp_url, &todo_issuer, clock).await?,
    )
    .await?;
    let app = agent0::router(state.clone());
    tokio::spawn(
        async move { httpserve::serve(agent_listener, app, std::future::pending()).await },
    );

    eprintln!("bench: logging in {people} people through idp0's form");
    let mut logged_in = Vec::with_capacity(people);
    for i in 0..people {
        logged_in.push(Arc::new(login(&agent_base, &user(i)).await?));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut results = Vec::new();
    if !args.json {
        println!(
            "agent0 chat-turn benchmark (offline model, {:?} per turn; {} measured after {} warm-up; {cpus} CPUs)",
            args.message,
            super::format_duration(args.duration),
            super::format_duration(args.warmup)
        );
        println!(
            "people  load                 turns  turns/s   p50 ms   p95 ms   p99 ms   max ms  IdP trips  target p50<{TARGET_P50_MS}ms"
        );
    }
    let mut runs: Vec<(usize, Option<Duration>)> = Vec::new();
    for &concurrency in &args.concurrency {
        runs.push((concurrency, None));
        if !args.pace.is_zero() {
            runs.push((concurrency, Some(args.pace)));
        }
    }
    for (concurrency, pace) in runs {
        let people = &logged_in[..concurrency];
        run_for(&agent_base, people, &args.message, args.warmup, pace).await?;
        let before = state.agent().hub().broker().exchange_count();
        let (latencies, window) =
            run_for(&agent_base, people, &args.message, args.duration, pace).await?;
        let trips = state.agent().hub().broker().exchange_count() - before;
        let q = |q: f64| super::quantile_ms(&latencies, q);
        let per_s = latencies.len() as f64 / window.as_secs_f64();
        let met = q(0.5) < TARGET_P50_MS && trips == 0;
        let load = match pace {
            None => "closed loop".to_owned(),
            Some(pace) => format!("1 msg/{} each", super::format_duration(pace)),
        };
        if args.json {
            results.push(json!({
                "concurrency": concurrency, "load": load, "turns": latencies.len(), "turns_per_s": per_s,
                "p50_ms": q(0.5), "p95_ms": q(0.95), "p99_ms": q(0.99), "max_ms": q(1.0),
                "idp_round_trips": trips, "target_met": met,
            }));
        } else {
            println!(
                "{concurrency:>6}  {load:<18} {:>7} {per_s:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {trips:>10}  {}",
                latencies.len(),
                q(0.5),
                q(0.95),
                q(0.99),
                q(1.0),
                if met { "PASS" } else { "MISS" }
            );
        }
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"runs": results}))?
        );
    }
    Ok(())
}

fn user(i: usize) -> String {
    format!("bench-{i:03}")
}

/// The development configuration, plus `people` bench users, for the servers' real addresses.
fn configure_idp(
    dir: &std::path::Path,
    agent_base: &str,
    mcp_url: &str,
    people: usize,
) -> anyhow::Result<()> {
    let topology = devstack::Topology {
        agent: agent_base.to_owned(),
        mcp_resource: mcp_url.to_owned(),
        ..Default::default()
    };
    devstack::ensure(dir, Some(&topology))?;
    let path = dir.join(devstack::CONFIG_FILE);
    let text = std::fs::read_to_string(&path)?;
    let mut config: toml::Table = toml::from_str(&text)?;
    let hash = idp0::password::hash(PASSWORD).map_err(|e| anyhow::anyhow!("hashing: {e}"))?;
    let users = config
        .get_mut("users")
        .and_then(toml::Value::as_array_mut)
        .context("the dev config has no users")?;
    for i in 0..people {
        let mut entry = toml::Table::new();
        entry.insert("username".into(), user(i).into());
        entry.insert("name".into(), format!("Bench Person {i}").into());
        entry.insert("email".into(), format!("{}@example.com", user(i)).into());
        entry.insert("password_hash".into(), hash.clone().into());
        users.push(entry.into());
    }
    std::fs::write(&path, toml::to_string(&config)?)?;
    Ok(())
}

async fn agent_config(
    dir: &std::path::Path,
    issuer: &str,
    agent_base: &str,
    mcp_url: &str,
    todo_issuer: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<agent0::AgentConfig> {
    devstack::write_env_files(dir, issuer)?;
    let env: std::collections::HashMap<String, String> =
        devstack::read_env_file(&dir.join(devstack::AGENT0_ENV))?
            .into_iter()
            .collect();
    let var = |name: &str| {
        env.get(name)
            .cloned()
            .with_context(|| format!("agent0.env has no {name}"))
    };
    let pem = std::fs::read_to_string(var("AI_AGENT_PRIVATE_KEY_FILE")?)?;
    let key = SigningKey::from_pem(&pem, Some(var("AI_AGENT_PRIVATE_KEY_KID")?))?;
    let agent_id = var("AI_AGENT_ID")?;
    let token_endpoint = format!("{todo_issuer}/v1/token");
    Ok(agent0::AgentConfig {
        oidc: weblogin::OidcSettings {
            issuer: issuer.to_owned(),
            client_id: var("OKTA_CLIENT_ID")?,
            client_secret: var("OKTA_CLIENT_SECRET")?.into(),
            redirect_uri: format!("{agent_base}/callback"),
            post_logout_redirect_uri: format!("{agent_base}/"),
        },
        offline_access: true,
        session_key: weblogin::SessionKey::from_secret(&weblogin::SessionKey::generate_secret())?,
        agent_auth: ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
            agent_id.clone(),
            Arc::new(key),
            clock.clone(),
        )),
        agent_id,
        authorization_server: Some((todo_issuer.to_owned(), token_endpoint.clone())),
        mcp_servers: vec![McpServer {
            name: "todo0".into(),
            label: "Todo0 MCP Server".into(),
            url: mcp_url.to_owned(),
            auth: AuthStrategy::IdJag {
                target: IdJagTarget {
                    connection: "todo0".into(),
                    as_issuer: todo_issuer.to_owned(),
                    as_token_endpoint: token_endpoint,
                    resource: mcp_url.to_owned(),
                },
                initial_scopes: Scopes::parse("mcp:connect mcp:tools:read")?,
            },
            auto_approve: Vec::new(),
            in_band_refusals: true,
        }],
        disabled: Default::default(),
        model: Arc::new(agent0::llm::offline::OfflineModel::new()),
        store: Arc::new(SqliteConversations::open(&dir.join("agent0.db")).await?),
        max_steps: agent0::agent::DEFAULT_MAX_STEPS,
        clock,
    })
}

/// Logs `username` in through `/auth/login`, idp0's form and the callback.
async fn login(agent_base: &str, username: &str) -> anyhow::Result<Person> {
    let http = protocol::trust::client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .tcp_nodelay(true)
        .build()?;
    let location = |response: &reqwest::Response| -> anyhow::Result<String> {
        let value = response
            .headers()
            .get(reqwest::header::LOCATION)
            .with_context(|| format!("expected a redirect, got {}", response.status()))?
            .to_str()?;
        Ok(response.url().join(value)?.to_string())
    };
    let start = http.get(format!("{agent_base}/auth/login")).send().await?;
    let authorize = location(&start)?;
    let page = http.get(&authorize).send().await?.text().await?;
    let mut fields = idp0::login_form::hidden_fields(&page);
    fields.push(("username".into(), username.into()));
    fields.push(("password".into(), PASSWORD.into()));
    let action = idp0::login_form::form_action(&authorize, &page)?;
    let submitted = http.post(action).form(&fields).send().await?;
    let callback = location(&submitted)?;
    let done = http.get(callback).send().await?;
    if !done.status().is_redirection() {
        bail!("login of {username} failed: {}", done.text().await?);
    }
    let status: Value = http
        .get(format!("{agent_base}/auth/status"))
        .send()
        .await?
        .json()
        .await?;
    let csrf = status["csrf"]
        .as_str()
        .context("no session after login")?
        .to_owned();
    Ok(Person { http, csrf })
}

/// Every person chats for `duration`, back to back (closed loop) or one message per `pace`
/// (staggered, latency counted from when each message was due); the sorted latencies (ns) and
/// the window.
async fn run_for(
    agent_base: &str,
    people: &[Arc<Person>],
    message: &str,
    duration: Duration,
    pace: Option<Duration>,
) -> anyhow::Result<(Vec<u64>, Duration)> {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    let count = people.len() as u32;
    for (index, person) in people.iter().enumerate() {
        let person = person.clone();
        let offset = pace.map(|p| p * index as u32 / count);
        let url = format!("{agent_base}/api/chat");
        let body = json!({"message": message});
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut due = start + offset.unwrap_or_default();
            while due < deadline {
                if pace.is_some() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let began = if pace.is_some() { due } else { Instant::now() };
                let response = person
                    .http
                    .post(&url)
                    .header("x-csrf-token", &person.csrf)
                    .json(&body)
                    .send()
                    .await?;
                let status = response.status();
                let reply: Value = response.json().await?;
                let elapsed = began.elapsed();
                let failed = reply["toolResults"]
                    .as_array()
                    .is_none_or(|results| results.iter().any(|r| r["isError"] != false));
                if !status.is_success() || failed {
                    bail!("a turn failed (HTTP {status}): {reply}");
                }
                latencies.push(elapsed.as_nanos() as u64);
                due = match pace {
                    Some(pace) => due + pace,
                    None => Instant::now(),
                };
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    let window = start.elapsed();
    all.sort_unstable();
    Ok((all, window))
}
