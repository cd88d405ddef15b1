//! `secure-agent bench agent`: agent0's own cost per chat turn, with the offline model (so no
//! LLM time) and warm token caches. idp0, todo0's MCP server and agent0 run in this process on
//! loopback ports; each worker is a person logged in through idp0's form with their own session
//! and conversation, posting `POST /api/chat` in a closed loop. A turn is request in to reply
//! out: session lookup, conversation read, `tools/list` (cached), the model step, the MCP
//! `tools/call` over HTTP to todo0, the second model step, the durable turn write. The token
//! broker's exchange counter must not move while measuring: a warm turn makes no IdP round trip.
//!
//! With `--database postgres://…` and `--redis redis://…` the same runs are repeated on the
//! shared engines ([`replicas`]): PostgreSQL with in-process caches, PostgreSQL + Redis, and
//! PostgreSQL + Redis with `--replicas N` replicas, each request of a person going to the next
//! replica (round robin on the client side, as a load balancer would spread it). Each run also
//! reports this process's CPU time per turn and the other processes' (the Redis and PostgreSQL
//! servers), so Redis's cost per turn is the difference between the first two.
//!
//! With `--github` ([`github`]) the turn reads GitHub instead (`show me PR 1 in acme/widgets`):
//! github0, the offline GitHub sandbox, also runs here, agent0 has the brokered `application`
//! connection (GitHub REST with the ISV token idp0's vault brokers, configured from the same
//! `OAUTH_STS_RESOURCE`, `GITHUB_API_URL` and `GITHUB_WEB_URL` as `up`'s agent0), and each
//! person consents once, over HTTP, before anything is measured. The exchange counter counts the
//! brokered exchanges too, so a warm GitHub turn must make no IdP round trip either: the ISV
//! token is cached.
//!
//! With `--reference` ([`reference`]) a minimal chat endpoint (agent0's session lookup and a
//! fixed reply) runs the same people and loads first, and each agent0 run is also given as a
//! share of its turns/s. The people send from the light load client ([`chat`]).

use std::sync::Arc;
use std::time::Duration;

use agent0::config::AuthStrategy;
use agent0::conversations::ConversationStore;
use agent0::mcp::McpServer;
use agent0::tokens::IdJagTarget;
use anyhow::{Context, bail};
use protocol::assertion::ClientAssertionSigner;
use protocol::keys::SigningKey;
use protocol::token_client::ClientAuth;
use protocol::{Clock, Scopes};
use serde_json::{Value, json};

use chat::{Chatter, Load, run_for};
use replicas::{Deployment, Setup};

mod chat;
mod github;
mod redis_info;
mod reference;
mod replicas;

/// The target: p50 per turn, in milliseconds (the todo turn; a GitHub turn's target is
/// no IdP round trip).
const TARGET_P50_MS: f64 = 5.0;
const PASSWORD: &str = "bench-password-not-secret";

#[derive(clap::Args)]
pub(crate) struct AgentBenchArgs {
    /// Concurrent people per run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 32])]
    concurrency: Vec<usize>,
    /// What each person says every turn [default: `list my todos`; with --github,
    /// `show me PR 1 in acme/widgets`].
    #[arg(long)]
    message: Option<String>,
    /// A GitHub turn: github0 (the offline GitHub sandbox) runs here too, agent0 reaches it
    /// through the brokered `application` connection, and each person consents once before the
    /// runs (the exchange at agent0, idp0's and github0's consent pages, over HTTP).
    #[arg(long)]
    github: bool,
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
    /// agent0 replicas in the last run on the shared engines (needs --database and --redis).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// PostgreSQL for conversations (`postgres://USER@HOST:5432/DATABASE`): the runs are then
    /// repeated on the shared engines. Conversations go to a fresh schema, dropped afterwards,
    /// unless the URL chooses a `search_path`. Env: AGENT_DATABASE_URL.
    #[arg(long, value_name = "URL", env = "AGENT_DATABASE_URL")]
    database: Option<String>,
    /// Redis for sessions, token caches and leases (`redis://HOST:6379`), with --database. The
    /// keys get a fresh prefix, and the people log out at the end. Env: AGENT_REDIS_URL.
    #[arg(long, value_name = "URL", env = "AGENT_REDIS_URL")]
    redis: Option<String>,
    /// Keep each person on the replica they logged in through, as a balancer with sticky
    /// sessions would, instead of sending each request to the next replica.
    #[arg(long)]
    sticky: bool,
    /// Also measure a minimal chat endpoint (agent0's session lookup, a fixed reply; threads
    /// bench-ref) with the same client, people and loads; each agent0 run is then also given as
    /// a share of it (`vs ref`).
    #[arg(long)]
    reference: bool,
    /// Print the results as JSON.
    #[arg(long)]
    json: bool,
}

/// A person logged in through agent0: their browser (cookies; for logging out and consenting)
/// and what the load client presents every turn.
struct Person {
    http: reqwest::Client,
    csrf: String,
    chat: Chatter,
}

impl AgentBenchArgs {
    /// What each person says: `--message`, else the default for the turn measured.
    fn message(&self) -> &str {
        match &self.message {
            Some(message) => message,
            None if self.github => "show me PR 1 in acme/widgets",
            None => "list my todos",
        }
    }
}

pub(crate) async fn run(args: AgentBenchArgs) -> anyhow::Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers, e.g. 1,32");
    }
    let people = args.concurrency.iter().copied().max().unwrap_or(1);
    let (setups, shared) = replicas::setups(
        args.replicas,
        args.database.as_deref(),
        args.redis.as_deref(),
    )?;
    let temp = tempfile::Builder::new()
        .prefix("secure-agent-bench-agent-")
        .tempdir()?;
    let dir = temp.path().to_owned();
    let clock = protocol::clock::system();

    // Held, never served: the front door's address (see `Stack::front`); replicas get their own.
    let front_door = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let agent_base = format!("http://{}", front_door.local_addr()?);
    let mcp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let mcp_url = format!("http://{}/mcp", mcp_listener.local_addr()?);
    let idp_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let issuer = format!("http://{}", idp_listener.local_addr()?);
    let sandbox = match args.github {
        true => Some(github::Sandbox::bind().await?),
        false => None,
    };
    let github_base = sandbox.as_ref().map(|s| s.base.as_str());
    configure_idp(&dir, &agent_base, &mcp_url, github_base, people)?;

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

    devstack::write_env_files(&dir, &issuer)?;
    // agent0's brokered connections as `up`'s agent0 reads them from the env file just written.
    let brokered = match sandbox {
        Some(sandbox) => {
            sandbox
                .start(
                    &dir,
                    (0..people).map(user).collect(),
                    PASSWORD,
                    clock.clone(),
                )
                .await?;
            let env = agent_env(&dir)?;
            let brokered = agent0::config::brokered(&|name| env.get(name).cloned())
                .map_err(|e| anyhow::anyhow!("agent0.env: {e}"))?;
            if brokered.application.is_none() {
                bail!("agent0.env names no GitHub application connection (OAUTH_STS_RESOURCE)");
            }
            brokered
        }
        None => Default::default(),
    };
    let stack = Stack {
        dir: dir.clone(),
        issuer,
        front: agent_base,
        mcp_url,
        todo_issuer,
        clock,
        session_key: weblogin::SessionKey::from_secret(&weblogin::SessionKey::generate_secret())?,
        brokered,
    };

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !args.json {
        let github = match args.github {
            true => ", GitHub through idp0's token vault to github0",
            false => "",
        };
        println!(
            "agent0 chat-turn benchmark (offline model, {:?} per turn{github}; {} measured after {} warm-up; {cpus} CPUs)",
            args.message(),
            super::format_duration(args.duration),
            super::format_duration(args.warmup)
        );
        println!(
            "us/turn: this process's CPU per turn (load client, idp0, todo0, every agent0 replica); other us: all other processes' (Redis, PostgreSQL, anything else running)"
        );
        if args.reference {
            println!(
                "reference: agent0's session lookup (private cookie, in-process store, CSRF) and a fixed reply per turn, same HTTP stack, threads bench-ref of this process; vs ref: turns/s / the reference's"
            );
        }
        println!("{}", Row::header(args.github));
    }
    let mut runs: Vec<(usize, Option<Duration>)> = Vec::new();
    for &concurrency in &args.concurrency {
        runs.push((concurrency, None));
        if !args.pace.is_zero() {
            runs.push((concurrency, Some(args.pace)));
        }
    }
    let mut rows = Vec::new();
    let references = match args.reference {
        true => measure_reference(&args, &runs, people, stack.clock.clone()).await?,
        false => Vec::new(),
    };
    for (index, &setup) in setups.iter().enumerate() {
        let deployment = Deployment::start(&stack, setup, shared.as_ref(), index).await?;
        eprintln!(
            "bench: {} at {}; {}",
            setup.label(),
            deployment.bases.join(", "),
            deployment.description
        );
        eprintln!("bench: logging in {people} people through idp0's form");
        let mut logged_in = Vec::with_capacity(people);
        for i in 0..people {
            let base = &deployment.bases[i % deployment.bases.len()];
            logged_in.push(Arc::new(login(base, &user(i)).await?));
        }
        if let Some(app) = &stack.brokered.application {
            let mut walked = 0;
            for (i, person) in logged_in.iter().enumerate() {
                let base = &deployment.bases[i % deployment.bases.len()];
                walked += usize::from(
                    github::consent(base, person, &user(i), PASSWORD, &app.resource).await?,
                );
            }
            eprintln!(
                "bench: {people} people hold a GitHub token ({walked} walked the consent at idp0 and github0)"
            );
        }
        for &(concurrency, pace) in &runs {
            let people: Vec<Chatter> = logged_in[..concurrency]
                .iter()
                .map(|p| p.chat.clone())
                .collect();
            let redis = shared.as_ref().map(|s| s.redis.as_str());
            let exchanges = || deployment.exchanges();
            let target = (
                &deployment.bases[..],
                Some(setup),
                &exchanges as &dyn Fn() -> _,
            );
            let mut row = measure(target, &people, &args, pace, redis).await?;
            row.ratio = references
                .iter()
                .find(|r| r.concurrency == concurrency && r.pace == pace)
                .map(|r| row.per_s() / r.per_s());
            if !args.json {
                println!("{}", row.line());
            }
            rows.push(row);
        }
        for (i, person) in logged_in.iter().enumerate() {
            let base = &deployment.bases[i % deployment.bases.len()];
            if let Err(e) = logout(base, person).await {
                eprintln!("bench: logging {} out: {e:#}", user(i));
            }
        }
        deployment.stop().await;
    }
    rows.splice(0..0, references);
    let costs = redis_costs(&rows);
    if args.json {
        let report = json!({
            "cpus": cpus,
            "message": args.message(),
            "github": args.github,
            "sticky": args.sticky,
            "runs": rows.iter().map(Row::json).collect::<Vec<_>>(),
            "redis_cost_per_turn": costs,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for cost in &costs {
            println!(
                "Redis instead of in-process caches (postgres+redis x1 less postgres+in-process x1), {} people, {}: p50 {:+.2} ms, this process {:+.0} us CPU, other processes {:+.0} us CPU per turn; the Redis server {:.0} us CPU (less its idle rate) and {:.1} commands per turn",
                cost["concurrency"],
                cost["load"].as_str().unwrap_or_default(),
                cost["p50_ms"].as_f64().unwrap_or_default(),
                cost["cpu_us"].as_f64().unwrap_or_default(),
                cost["other_cpu_us"].as_f64().unwrap_or_default(),
                cost["redis_cpu_us"].as_f64().unwrap_or(f64::NAN),
                cost["redis_commands"].as_f64().unwrap_or(f64::NAN),
            );
        }
    }
    Ok(())
}

/// The reference's row for each run, on its own runtime with sessions of its own.
async fn measure_reference(
    args: &AgentBenchArgs,
    runs: &[(usize, Option<Duration>)],
    people: usize,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Vec<Row>> {
    let (app, chatters) = reference::router(people, clock).await?;
    let server = super::reference::InProcess::start("bench-ref", move |listener| async move {
        Ok(httpserve::serve(listener, app, std::future::pending()).await?)
    })?;
    eprintln!(
        "bench: reference chat endpoint at {}/api/chat (in this process, threads bench-ref)",
        server.base
    );
    let bases = [server.base.clone()];
    let mut rows = Vec::with_capacity(runs.len());
    for &(concurrency, pace) in runs {
        let target = (&bases[..], None, &Vec::new as &dyn Fn() -> _);
        let row = measure(target, &chatters[..concurrency], args, pace, None).await?;
        if !args.json {
            println!("{}", row.line());
        }
        rows.push(row);
    }
    Ok(rows)
}

/// What every replica of every deployment is configured from.
struct Stack {
    dir: std::path::PathBuf,
    issuer: String,
    /// The address people use (as a load balancer's would be): idp0 knows it as agent0's
    /// redirect URI; the bench delivers each callback to the replica the login started on.
    front: String,
    mcp_url: String,
    todo_issuer: String,
    clock: Arc<dyn Clock>,
    /// One cookie key for every replica, as replicas behind a load balancer share it.
    session_key: weblogin::SessionKey,
    /// The brokered connections (with `--github`, the application connection to github0).
    brokered: agent0::config::Brokered,
}

/// One measured run: a setup (`None`: the reference), a number of people, closed loop or paced.
struct Row {
    setup: Option<Setup>,
    /// A GitHub turn (`--github`), whose target is no IdP round trip alone.
    github: bool,
    concurrency: usize,
    pace: Option<Duration>,
    /// Sorted turn latencies, in nanoseconds.
    latencies: Vec<u64>,
    window: Duration,
    /// Exchanges (IdP round trips) during the measurement, all replicas together.
    trips: u64,
    /// Exchanges per replica since the deployment started (warm-up included).
    exchanges: Vec<u64>,
    /// CPU seconds used during the measurement by this process and by all others.
    cpu: Option<f64>,
    other_cpu: Option<f64>,
    /// The Redis server's CPU seconds and commands during the measurement (with --redis).
    redis: Option<(f64, u64)>,
    /// Turns/s as a share of the reference's at the same people and load (with --reference).
    ratio: Option<f64>,
}

impl Row {
    fn header(github: bool) -> String {
        let target = match github {
            true => "target 0 IdP trips".to_owned(),
            false => format!("target p50<{TARGET_P50_MS}ms"),
        };
        format!(
            "{:<24} people  load                 turns  turns/s   p50 ms   p95 ms   p99 ms   max ms  IdP trips  exchanges  us/turn  other us  redis cmd  redis us  vs ref  {target}",
            "setup"
        )
    }

    /// The setup's label, or `reference`.
    fn label(&self) -> String {
        self.setup
            .map_or_else(|| "reference".to_owned(), Setup::label)
    }

    fn q(&self, q: f64) -> f64 {
        super::quantile_ms(&self.latencies, q)
    }

    fn per_s(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }

    fn is_met(&self) -> bool {
        (self.github || self.q(0.5) < TARGET_P50_MS) && self.trips == 0
    }

    fn load(&self) -> String {
        match self.pace {
            None => "closed loop".to_owned(),
            Some(pace) => format!("1 msg/{} each", super::format_duration(pace)),
        }
    }

    /// CPU seconds per turn, in microseconds.
    fn per_turn_us(&self, seconds: Option<f64>) -> Option<f64> {
        let turns = self.latencies.len() as f64;
        seconds.filter(|_| turns > 0.0).map(|s| s / turns * 1e6)
    }

    /// Redis commands per turn.
    fn redis_commands(&self) -> Option<f64> {
        let turns = self.latencies.len() as f64;
        self.redis
            .filter(|_| turns > 0.0)
            .map(|(_, commands)| commands as f64 / turns)
    }

    fn exchanges(&self) -> String {
        let each: Vec<String> = self.exchanges.iter().map(u64::to_string).collect();
        each.join("+")
    }

    fn line(&self) -> String {
        let us = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"));
        format!(
            "{:<24} {:>6}  {:<18} {:>7} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10} {:>10} {:>8} {:>9} {:>10} {:>9} {:>7}  {}",
            self.label(),
            self.concurrency,
            self.load(),
            self.latencies.len(),
            self.per_s(),
            self.q(0.5),
            self.q(0.95),
            self.q(0.99),
            self.q(1.0),
            self.trips,
            self.exchanges(),
            us(self.per_turn_us(self.cpu)),
            us(self.per_turn_us(self.other_cpu)),
            self.redis_commands()
                .map_or_else(|| "-".to_owned(), |n| format!("{n:.1}")),
            us(self.per_turn_us(self.redis.map(|(cpu, _)| cpu))),
            self.ratio
                .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}")),
            match (self.setup, self.is_met()) {
                (None, _) => "-",
                (Some(_), true) => "PASS",
                (Some(_), false) => "MISS",
            }
        )
    }

    fn json(&self) -> Value {
        json!({
            "setup": self.label(),
            "conversations": self.setup.map(|s| s.engines.conversations()),
            "sessions": self.setup.map(|s| s.engines.sessions()),
            "replicas": self.setup.map(|s| s.replicas),
            "concurrency": self.concurrency, "load": self.load(), "turns": self.latencies.len(),
            "turns_per_s": self.per_s(), "p50_ms": self.q(0.5), "p95_ms": self.q(0.95),
            "p99_ms": self.q(0.99), "max_ms": self.q(1.0), "idp_round_trips": self.trips,
            "exchanges_per_replica": self.exchanges,
            "cpu_us_per_turn": self.per_turn_us(self.cpu),
            "other_cpu_us_per_turn": self.per_turn_us(self.other_cpu),
            "redis_commands_per_turn": self.redis_commands(),
            "redis_cpu_us_per_turn": self.per_turn_us(self.redis.map(|(cpu, _)| cpu)),
            "ratio_to_reference": self.ratio,
            "target_met": self.setup.map(|_| self.is_met()),
        })
    }
}

/// Warms up, then measures one run of `people` against `bases` (a deployment's replicas with
/// their `setup`, or the reference with `None`); `exchanges` reads the IdP exchange counters.
async fn measure(
    (bases, setup, exchanges): (&[String], Option<Setup>, &dyn Fn() -> Vec<u64>),
    people: &[Chatter],
    args: &AgentBenchArgs,
    pace: Option<Duration>,
    redis: Option<&str>,
) -> anyhow::Result<Row> {
    let load = Load {
        message: args.message(),
        pace,
        sticky: args.sticky,
        tool_needed: args.github,
    };
    run_for(bases, people, &load, args.warmup).await?;
    let before: u64 = exchanges().iter().sum();
    let cpu = || {
        (
            super::server::own_cpu_seconds(),
            super::server::system_busy_seconds(),
        )
    };
    let redis_counters = async || match redis {
        Some(url) => redis_info::read(url).await,
        None => None,
    };
    let redis0 = redis_counters().await;
    let (own0, all0) = cpu();
    let (latencies, window) = run_for(bases, people, &load, args.duration).await?;
    let (own1, all1) = cpu();
    let redis1 = redis_counters().await;
    let exchanges = exchanges();
    let own = own1.zip(own0).map(|(b, a)| b - a);
    let all = all1.zip(all0).map(|(b, a)| b - a);
    Ok(Row {
        setup,
        github: args.github,
        concurrency: people.len(),
        pace,
        latencies,
        window,
        trips: exchanges.iter().sum::<u64>() - before,
        exchanges,
        cpu: own,
        other_cpu: all.zip(own).map(|(all, own)| (all - own).max(0.0)),
        redis: redis1
            .zip(redis0)
            .map(|(b, a)| (b.cpu - a.cpu, b.commands.saturating_sub(a.commands))),
        ratio: None,
    })
}

/// The Redis server's CPU per turn in `redis` less its idle rate (serverCron, other clients)
/// as measured during `local`, in microseconds.
fn redis_net_cpu(redis: &Row, local: &Row) -> Option<f64> {
    let (busy, _) = redis.redis?;
    let (idle, _) = local.redis?;
    let idle_rate = idle / local.window.as_secs_f64();
    redis.per_turn_us(Some(busy - idle_rate * redis.window.as_secs_f64()))
}

/// For each closed-loop concurrency measured both on PostgreSQL with in-process caches and on
/// PostgreSQL + Redis with one replica: what Redis adds per turn (p50, CPU here and elsewhere).
fn redis_costs(rows: &[Row]) -> Vec<Value> {
    let find = |engines, concurrency| {
        rows.iter().find(|r| {
            r.setup
                .is_some_and(|s| s.engines == engines && s.replicas == 1)
                && r.concurrency == concurrency
                && r.pace.is_none()
        })
    };
    let diff = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
    rows.iter()
        .filter(|r| {
            r.setup
                .is_some_and(|s| s.engines == replicas::Engines::Shared && s.replicas == 1)
        })
        .filter(|r| r.pace.is_none())
        .filter_map(|redis| {
            let local = find(replicas::Engines::Postgres, redis.concurrency)?;
            Some(json!({
                "concurrency": redis.concurrency,
                "load": redis.load(),
                "p50_ms": redis.q(0.5) - local.q(0.5),
                "cpu_us": diff(redis.per_turn_us(redis.cpu), local.per_turn_us(local.cpu)),
                "other_cpu_us": diff(
                    redis.per_turn_us(redis.other_cpu),
                    local.per_turn_us(local.other_cpu)
                ),
                "redis_cpu_us": redis_net_cpu(redis, local),
                "redis_commands": redis.redis_commands(),
            }))
        })
        .collect()
}

fn user(i: usize) -> String {
    format!("bench-{i:03}")
}

/// The development configuration, plus `people` bench users, for the servers' real addresses.
fn configure_idp(
    dir: &std::path::Path,
    agent_base: &str,
    mcp_url: &str,
    github: Option<&str>,
    people: usize,
) -> anyhow::Result<()> {
    let mut topology = devstack::Topology {
        agent: agent_base.to_owned(),
        mcp_resource: mcp_url.to_owned(),
        ..Default::default()
    };
    if let Some(github) = github {
        topology.github = github.to_owned();
    }
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

/// One replica's configuration: the stack's, with `store` for its conversations.
fn agent_config(
    stack: &Stack,
    store: Arc<dyn ConversationStore>,
) -> anyhow::Result<agent0::AgentConfig> {
    let Stack {
        dir,
        issuer,
        front,
        mcp_url,
        todo_issuer,
        clock,
        session_key,
        brokered,
    } = stack;
    let env = agent_env(dir)?;
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
            redirect_uri: format!("{front}/callback"),
            post_logout_redirect_uri: format!("{front}/"),
        },
        offline_access: true,
        session_key: session_key.clone(),
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
            declared_tools: None,
        }],
        brokered: brokered.clone(),
        disabled: Default::default(),
        model: Arc::new(agent0::llm::offline::OfflineModel::new()),
        store,
        max_steps: agent0::agent::DEFAULT_MAX_STEPS,
        clock: clock.clone(),
    })
}

/// agent0's env file, as idp0's development configuration writes it.
fn agent_env(dir: &std::path::Path) -> anyhow::Result<std::collections::HashMap<String, String>> {
    Ok(devstack::read_env_file(&dir.join(devstack::AGENT0_ENV))?
        .into_iter()
        .collect())
}

/// Logs `username` in through `/auth/login` on the replica at `agent_base`, idp0's form and the
/// callback (delivered to that replica, whatever the front door's address in it).
async fn login(agent_base: &str, username: &str) -> anyhow::Result<Person> {
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = protocol::trust::client_builder()
        .cookie_provider(jar.clone())
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
    let mut fields = devstack::login_form::hidden_fields(&page);
    fields.push(("username".into(), username.into()));
    fields.push(("password".into(), PASSWORD.into()));
    let action = devstack::login_form::form_action(&authorize, &page)?;
    let submitted = http.post(action).form(&fields).send().await?;
    let callback = url::Url::parse(&location(&submitted)?)?;
    let callback = format!(
        "{agent_base}{}?{}",
        callback.path(),
        callback.query().unwrap_or_default()
    );
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
    // Cookies are per host, not per port: replicas on other ports get the same one.
    let cookie = reqwest::cookie::CookieStore::cookies(&*jar, &agent_base.parse()?)
        .context("no session cookie after login")?;
    let chat = Chatter::new(cookie, reqwest::header::HeaderValue::from_str(&csrf)?);
    Ok(Person { http, csrf, chat })
}

/// Ends `person`'s session (in Redis: the session and the person's tokens go).
async fn logout(agent_base: &str, person: &Person) -> anyhow::Result<()> {
    let response = person
        .http
        .post(format!("{agent_base}/auth/logout"))
        .header("x-csrf-token", &person.csrf)
        .send()
        .await?;
    if !response.status().is_redirection() {
        bail!("HTTP {}", response.status());
    }
    Ok(())
}
