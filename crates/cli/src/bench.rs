//! `secure-agent bench mcp`: a load benchmark of todo0's MCP server over real HTTP
//! (`bench agent`, agent0's cost per chat turn, is in [`agent`]).
//!
//! idp0 runs in this process (the server discovers it and fetches its JWKS at start); the server
//! under test runs as a child process (`secure-agent todo-mcp`), so its peak RSS and CPU time are
//! its own. Workers hold genuine access tokens of the todo0 authorization server (signed with its
//! current key, with the claims idp0 issues to the agent), one user and one MCP session each, and
//! call a tool in a closed loop over keep-alive HTTP/1.1 with a light hyper client ([`client`]:
//! one connection per session, request bytes built once), whose own CPU share is reported per
//! cell. Every reply is checked; any failed call makes the command fail. Targets are reported as
//! PASS/MISS, not enforced.
//!
//! `--reference` also measures a minimal server on the same HTTP stack ([`reference`]) with the
//! same client, tokens and concurrency, and reports todo0's calls/s as a share of it.
//! `bench idp` measures idp0's token endpoint the same way ([`idp`]).

mod agent;
mod client;
mod idp;
mod reference;
mod report;
mod server;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use secrecy::ExposeSecret;
use serde_json::json;
use tokio::task::JoinSet;

use client::{CallTemplate, Endpoint, Session};
use report::{
    cell_json, format_duration, parse_duration, pass_miss, quantile_ms, redact, round2, round3,
    table_header, table_row,
};
use server::{ChildServer, SpawnOptions};

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Load-test todo0's MCP server (tools/call get-todos and create-todo) over real HTTP.
    Mcp(McpBenchArgs),
    /// agent0's cost per chat turn (offline model, warm caches) at several concurrencies.
    Agent(agent::AgentBenchArgs),
    /// Load-test idp0's token endpoint (ID-JAG exchange, JWT-bearer redemption) over real HTTP.
    Idp(idp::IdpBenchArgs),
}

#[derive(Args)]
pub(crate) struct McpBenchArgs {
    /// Data directory for idp0 and the server (configuration, keys, todo0.db). Default: a fresh
    /// temporary directory, removed afterwards. An existing idp0 development configuration is
    /// reused (idp0 rewrites its dotenv files for this run's issuer).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Concurrent workers per run, comma-separated; each has its own user and MCP session.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 64])]
    concurrency: Vec<usize>,
    /// Tools to drive, in this order, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["get-todos", "create-todo"])]
    tools: Vec<Tool>,
    /// Measured time per (tool, concurrency) cell, e.g. 5s, 500ms, 1m.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured load before each cell's measurement.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    warmup: Duration,
    /// Todos each get-todos user owns (created before the runs; topped up in a reused data dir).
    #[arg(long, default_value_t = 10)]
    seed: usize,
    /// Run the server in stateless mode (`todo-mcp --stateless`: JSON responses, no sessions).
    #[arg(long)]
    stateless: bool,
    /// The server's database URL (`todo-mcp --database`). Default: SQLite in the data directory.
    #[arg(long)]
    database: Option<String>,
    /// Also measure a minimal reference server (one RS256 verification and a fixed JSON-RPC reply
    /// per request, same HTTP stack, in this process) and report todo0's share of its calls/s.
    #[arg(long)]
    reference: bool,
    /// Print the results as JSON on standard output (progress goes to standard error).
    #[arg(long)]
    json: bool,
}

/// The server a cell measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Subject {
    /// todo0's MCP server (the child process).
    Todo0,
    /// The minimal reference server ([`reference::mcp_router`]), in this process.
    Reference,
}

impl Subject {
    fn name(self) -> &'static str {
        match self {
            Self::Todo0 => "todo0",
            Self::Reference => "reference",
        }
    }
}

/// Where a cell's server runs, for its CPU and memory figures.
enum Measured<'a> {
    Child(&'a ChildServer),
    InProcess(&'a reference::InProcess),
}

impl Measured<'_> {
    /// (server CPU, this process's CPU less the server's): both in seconds so far.
    fn cpu_seconds(&self) -> (Option<f64>, Option<f64>) {
        match self {
            Self::Child(child) => (child.cpu_seconds(), server::own_cpu_seconds()),
            Self::InProcess(server) => {
                let ours = server.cpu_seconds();
                let all = server::own_cpu_seconds();
                (ours, all.zip(ours).map(|(all, ours)| all - ours))
            }
        }
    }

    fn memory(&self) -> Option<server::Memory> {
        match self {
            Self::Child(child) => child.memory().ok(),
            Self::InProcess(_) => None,
        }
    }
}

/// A tool the benchmark drives.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Tool {
    /// `get-todos` with no filter: a read of the caller's list.
    GetTodos,
    /// `create-todo`: one durable insert.
    CreateTodo,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Self::GetTodos => "get-todos",
            Self::CreateTodo => "create-todo",
        }
    }

    /// Worker `index`'s user for this tool: readers and writers are separate users, so the
    /// readers' lists keep their seeded size however many todos the writers create.
    fn user(self, index: usize) -> String {
        match self {
            Self::GetTodos => format!("bench-reader-{index:03}"),
            Self::CreateTodo => format!("bench-writer-{index:03}"),
        }
    }
}

/// The issue's targets on a 2-core machine.
const TARGET_CONCURRENCY: usize = 64;
const TARGET_READS_PER_S: f64 = 15_000.0;
const TARGET_READ_P99_MS: f64 = 15.0;
const TARGET_WRITES_PER_S: f64 = 2_000.0;
const TARGET_RSS_MB: f64 = 40.0;
const MB: f64 = 1024.0 * 1024.0;
/// How the load client's CPU share is measured, for the reports.
const BENCH_CPU_METHOD: &str = "this process's utime+stime (/proc/self/stat) less the in-process servers' threads (/proc/self/task/*/stat, by thread name)";
/// Other processes' CPU (in cores) above which the results are flagged as noisy.
const NOISY_OTHER_CPU: f64 = 0.2;

/// One (tool, concurrency) cell's figures.
struct Cell {
    subject: Subject,
    tool: Tool,
    concurrency: usize,
    /// Calls started inside the measured window.
    calls: u64,
    /// Failed calls, warm-up included.
    errors: u64,
    first_error: Option<String>,
    window: Duration,
    /// Sorted latencies of the measured calls, in nanoseconds.
    latencies: Vec<u64>,
    /// CPU used during the window, in cores: the server, this process, everything else.
    server_cpu: Option<f64>,
    bench_cpu: Option<f64>,
    other_cpu: Option<f64>,
    rss_after: Option<u64>,
    /// The private part of `rss_after` (`RssAnon`).
    private_after: Option<u64>,
    /// calls/s as a share of the reference's in the same (tool, concurrency) cell.
    ratio: Option<f64>,
}

impl Cell {
    fn calls_per_s(&self) -> f64 {
        self.calls as f64 / self.window.as_secs_f64()
    }

    /// The `q` quantile (nearest rank), in milliseconds.
    fn quantile_ms(&self, q: f64) -> f64 {
        quantile_ms(&self.latencies, q)
    }

    /// Server CPU time per measured call, in microseconds.
    fn server_us_per_call(&self) -> Option<f64> {
        let calls = self.calls as f64;
        self.server_cpu
            .filter(|_| calls > 0.0)
            .map(|cores| cores * self.window.as_secs_f64() / calls * 1e6)
    }

    fn max_ms(&self) -> f64 {
        self.latencies.last().map_or(0.0, |n| *n as f64 / 1e6)
    }

    fn mean_ms(&self) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        self.latencies.iter().map(|n| *n as f64).sum::<f64>() / self.latencies.len() as f64 / 1e6
    }

    /// The issue's target for this cell, if one applies: (goal, met).
    fn target(&self, database_in_memory: bool) -> Option<(String, Option<bool>)> {
        if self.concurrency != TARGET_CONCURRENCY || self.subject == Subject::Reference {
            return None;
        }
        Some(match self.tool {
            Tool::GetTodos => (
                format!(">= {TARGET_READS_PER_S:.0}/s, p99 < {TARGET_READ_P99_MS:.0} ms"),
                Some(
                    self.calls_per_s() >= TARGET_READS_PER_S
                        && self.quantile_ms(0.99) < TARGET_READ_P99_MS,
                ),
            ),
            Tool::CreateTodo if database_in_memory => (
                format!(">= {TARGET_WRITES_PER_S:.0} durable writes/s (n/a: database on tmpfs)"),
                None,
            ),
            Tool::CreateTodo => (
                format!(">= {TARGET_WRITES_PER_S:.0} durable writes/s"),
                Some(self.calls_per_s() >= TARGET_WRITES_PER_S),
            ),
        })
    }
}

pub(crate) async fn run(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Mcp(args) => run_mcp(args).await,
        BenchCommand::Agent(args) => agent::run(args).await,
        BenchCommand::Idp(args) => idp::run(args).await,
    }
}

async fn run_mcp(args: McpBenchArgs) -> anyhow::Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers, e.g. 1,8,64");
    }
    if args.duration.is_zero() {
        bail!("--duration must be positive");
    }
    if args.tools.is_empty() {
        bail!("--tools needs at least one tool");
    }
    let workers = args.concurrency.iter().copied().max().unwrap_or(1);

    // The data directory: given, or a fresh temporary one (dropped, so removed, at the end).
    let (data_dir, _temp) = match &args.data_dir {
        Some(dir) => (dir.clone(), None),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("secure-agent-bench-")
                .tempdir()
                .context("creating a temporary data directory")?;
            (temp.path().to_owned(), Some(temp))
        }
    };
    idp0::fsutil::create_private_dir(&data_dir)?;
    let database_fs = match &args.database {
        None => server::filesystem_type(&data_dir),
        Some(_) => None,
    };
    let database_in_memory = database_fs.as_deref().is_some_and(server::is_memory_fs);

    // idp0, in process.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding idp0 to a loopback port")?;
    let org_issuer = format!("http://{}", listener.local_addr()?);
    let opened = devstack::open_idp(&data_dir, None, org_issuer, protocol::clock::system(), None)
        .await
        .context("opening idp0")?;
    let todo_as = opened
        .idp
        .server(Some(devstack::TODO0_SERVER))
        .with_context(|| {
            format!(
                "the idp0 configuration in {} has no {:?} authorization server",
                data_dir.display(),
                devstack::TODO0_SERVER
            )
        })?;
    let (stop_idp, idp_stopped) = tokio::sync::oneshot::channel::<()>();
    let idp_task = tokio::spawn(idp0::serve(listener, opened.idp.clone(), async move {
        let _ = idp_stopped.await;
    }));
    let issuer = todo_as.issuer.clone();
    let resource = todo_as.audience().to_owned();

    // Tokens for every worker's user, as idp0 issues them to the agent (jwt-bearer redemption).
    let tokens = mint_tokens(&todo_as, &args.tools, workers)?;

    // The server under test.
    let child = ChildServer::spawn(&SpawnOptions {
        data_dir: &data_dir,
        issuer: &issuer,
        resource: &resource,
        database: args.database.as_deref(),
        stateless: args.stateless,
    })
    .await?;
    let database = args
        .database
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("todo0.db").display()));
    let mode = if args.stateless {
        "stateless"
    } else {
        "stateful"
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!(
        "bench: todo0 MCP server pid {} at {} ({mode}), issuer {issuer}, resource {resource}; log {}",
        child.pid(),
        child.url,
        child.log.display()
    );
    eprintln!(
        "bench: database {database}{}; {cpus} CPUs",
        database_fs
            .as_deref()
            .map(|fs| format!(" on {fs}"))
            .unwrap_or_default()
    );
    if database_in_memory {
        eprintln!(
            "bench: warning: the database is on {} (memory), so create-todo is not durable; use --data-dir on a disk",
            database_fs.as_deref().unwrap_or("tmpfs")
        );
    }

    let reference = if args.reference {
        let (issuer, resource) = (issuer.clone(), resource.clone());
        let server = reference::InProcess::start("bench-ref", move |listener| async move {
            let app = reference::mcp_router(&issuer, &resource).await?;
            Ok(httpserve::serve(listener, app, std::future::pending()).await?)
        })?;
        eprintln!(
            "bench: reference server at {}/mcp (in this process, threads bench-ref)",
            server.base
        );
        let endpoint = Arc::new(Endpoint::new(&format!("{}/mcp", server.base))?);
        Some((server, endpoint))
    } else {
        None
    };
    let endpoint = Arc::new(Endpoint::new(&child.url)?);
    if args.tools.contains(&Tool::GetTodos) {
        let (min, max) = seed(&endpoint, &tokens, workers, args.seed).await?;
        eprintln!("bench: get-todos users own {min}..={max} todos each");
    }

    if !args.json {
        println!(
            "todo0 MCP benchmark ({mode}; {} measured per cell after {} warm-up; {cpus} CPUs)",
            format_duration(args.duration),
            format_duration(args.warmup)
        );
        println!(
            "server, bench, other: CPU used in the window by the server, the load client and all other processes (100% = one core); us/call: server CPU per call"
        );
        if reference.is_some() {
            println!(
                "reference: one RS256 verification + a fixed JSON-RPC reply per call, same HTTP stack, threads of this process; vs ref: todo0 calls/s / reference calls/s; the client's CPU is this process's less the reference's threads"
            );
        }
        println!("{}", table_header());
    }
    let mut cells = Vec::new();
    for tool in &args.tools {
        for &concurrency in &args.concurrency {
            eprintln!("bench: {} x {concurrency} …", tool.name());
            let mut cell = run_cell(
                &endpoint,
                Measured::Child(&child),
                (Subject::Todo0, *tool),
                &tokens,
                concurrency,
                (args.warmup, args.duration),
            )
            .await?;
            let mut measured = vec![];
            if let Some((server, endpoint)) = &reference {
                eprintln!("bench: reference {} x {concurrency} …", tool.name());
                let baseline = run_cell(
                    endpoint,
                    Measured::InProcess(server),
                    (Subject::Reference, *tool),
                    &tokens,
                    concurrency,
                    (args.warmup, args.duration),
                )
                .await?;
                cell.ratio =
                    Some(cell.calls_per_s() / baseline.calls_per_s().max(f64::MIN_POSITIVE));
                measured.push(baseline);
            }
            measured.insert(0, cell);
            for cell in measured {
                if !args.json {
                    println!("{}", table_row(&cell, database_in_memory));
                }
                cells.push(cell);
            }
        }
    }

    let memory = child.memory()?;
    if let Err(e) = child.stop().await {
        eprintln!("bench: stopping the server: {e:#}");
    }
    drop(reference);
    let _ = stop_idp.send(());
    if let Ok(Err(e)) = idp_task.await {
        eprintln!("bench: idp0: {e}");
    }

    // What the server held with each cell's sessions open and busy (read as each cell ends),
    // the highest of those; the peak also counts the moments sessions are opened.
    let highest = cells.iter().max_by_key(|c| c.rss_after);
    let open = highest.and_then(|c| c.rss_after);
    let open_mb = open.map(|rss| rss as f64 / MB);
    let open_private_mb = highest
        .and_then(|c| c.private_after)
        .map(|private| private as f64 / MB);
    // The kernel's `VmHWM` misses memory that was given back with `madvise` (as jemalloc
    // does) before it noticed the high point, so a reading taken earlier can exceed it.
    let peak_mb = memory.peak_rss.max(open.unwrap_or(0)) as f64 / MB;
    let rss_pass = peak_mb < TARGET_RSS_MB;
    let open_pass = open_mb.map(|mb| mb < TARGET_RSS_MB);
    let errors: u64 = cells.iter().map(|c| c.errors).sum();
    if args.json {
        let report = json!({
            "mode": mode,
            "cpus": cpus,
            "duration_s": args.duration.as_secs_f64(),
            "warmup_s": args.warmup.as_secs_f64(),
            "seed_todos_per_user": args.seed,
            "reference": args.reference,
            "bench_cpu_method": BENCH_CPU_METHOD,
            "server": {
                "database": redact(&database),
                "database_fs": database_fs,
                "peak_rss_mb": round2(peak_mb),
                "rss_mb": round2(memory.rss as f64 / MB),
                "private_mb": memory.private.map(|private| round2(private as f64 / MB)),
                "sessions_open_rss_mb": open_mb.map(round2),
                "sessions_open_private_mb": open_private_mb.map(round2),
                "rss_target": {"goal": format!("< {TARGET_RSS_MB:.0} MB"), "pass": rss_pass, "sessions_open_pass": open_pass},
            },
            "results": cells.iter().map(|c| cell_json(c, database_in_memory)).collect::<Vec<_>>(),
            "errors": errors,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!();
        println!(
            "server memory: peak RSS (VmHWM, or a higher reading) {peak_mb:.1} MB, current RSS (VmRSS) {:.1} MB, of it private (RssAnon) {}   {} (< {TARGET_RSS_MB:.0} MB)",
            memory.rss as f64 / MB,
            memory.private.map_or("-".to_owned(), |private| format!(
                "{:.1} MB",
                private as f64 / MB
            )),
            pass_miss(Some(rss_pass))
        );
        if let Some(open_mb) = open_mb {
            println!(
                "server memory with each cell's sessions open (RSS as each cell ends, highest): {open_mb:.1} MB, private {}   {} (< {TARGET_RSS_MB:.0} MB)",
                open_private_mb.map_or("-".to_owned(), |mb| format!("{mb:.1} MB")),
                pass_miss(open_pass)
            );
            println!(
                "(the rest of RSS is mapped files, mostly this binary's code: shared with every process running it, and the same at any load)"
            );
        }
        let busiest = cells
            .iter()
            .filter_map(|c| c.other_cpu)
            .fold(0.0_f64, f64::max);
        if busiest > NOISY_OTHER_CPU {
            println!(
                "note: other processes used up to {:.0}% CPU during the runs; the figures understate this server",
                busiest * 100.0
            );
        }
        for cell in cells.iter().filter(|c| c.errors > 0) {
            println!(
                "errors in {} x {}: {} (first: {})",
                cell.tool.name(),
                cell.concurrency,
                cell.errors,
                cell.first_error.as_deref().unwrap_or("-")
            );
        }
    }
    if errors > 0 {
        bail!("{errors} calls failed");
    }
    Ok(())
}

/// One token per (tool's user, worker), signed by the todo0 authorization server's current key
/// with the claims idp0 puts in the agent's access tokens; valid for an hour.
fn mint_tokens(
    server: &idp0::server::AuthServer,
    tools: &[Tool],
    workers: usize,
) -> anyhow::Result<Tokens> {
    let scopes: protocol::Scopes = devstack::TODO0_SCOPES.into_iter().collect();
    let now = protocol::clock::system().now();
    let mint = |user: &str| -> anyhow::Result<String> {
        let minted = idp0::tokens::access_token(
            server,
            &idp0::tokens::AccessTokenInput {
                user_id: Some(user),
                client_id: devstack::AGENT_ID,
                scope: &scopes,
                auth_time: Some(now),
                actor: Some(devstack::AGENT_ID),
                lifetime: 3600,
            },
            now,
        )
        .map_err(|e| anyhow::anyhow!("signing an access token: {e}"))?;
        Ok(minted.token.expose_secret().to_owned())
    };
    let mut tokens = Tokens::default();
    for tool in tools {
        let list = (0..workers)
            .map(|i| mint(&tool.user(i)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        match tool {
            Tool::GetTodos => tokens.readers = list,
            Tool::CreateTodo => tokens.writers = list,
        }
    }
    Ok(tokens)
}

#[derive(Default)]
struct Tokens {
    readers: Vec<String>,
    writers: Vec<String>,
}

impl Tokens {
    fn for_tool(&self, tool: Tool) -> &[String] {
        match tool {
            Tool::GetTodos => &self.readers,
            Tool::CreateTodo => &self.writers,
        }
    }
}

/// Gives every reader `seed` todos (creating only the missing ones); returns the smallest and
/// largest list size.
async fn seed(
    endpoint: &Arc<Endpoint>,
    tokens: &Tokens,
    workers: usize,
    seed: usize,
) -> anyhow::Result<(usize, usize)> {
    let mut tasks = JoinSet::new();
    for (index, token) in tokens.readers.iter().take(workers).enumerate() {
        let endpoint = endpoint.clone();
        let token = token.clone();
        tasks.spawn(async move {
            let mut session = endpoint.open(&token).await?;
            let have = session
                .call(&CallTemplate::new(Tool::GetTodos.name(), "{}"))
                .await
                .map_err(|e| anyhow::anyhow!("seeding: get-todos: {e}"))?
                .count
                .context("seeding: get-todos returned no count")?;
            for n in have..seed {
                let arguments = json!({"title": format!("seeded todo {n} of reader {index}")});
                session
                    .call(&CallTemplate::new(
                        Tool::CreateTodo.name(),
                        &arguments.to_string(),
                    ))
                    .await
                    .map_err(|e| anyhow::anyhow!("seeding: create-todo: {e}"))?;
            }
            session.close().await;
            Ok::<_, anyhow::Error>(have.max(seed))
        });
    }
    let (mut min, mut max) = (usize::MAX, 0);
    while let Some(done) = tasks.join_next().await {
        let count = done??;
        min = min.min(count);
        max = max.max(count);
    }
    Ok((min, max))
}

/// What one worker saw.
#[derive(Default)]
struct WorkerStats {
    latencies: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs `concurrency` closed-loop workers for warm-up + duration; measures calls that start in
/// the measured window.
async fn run_cell(
    endpoint: &Arc<Endpoint>,
    server: Measured<'_>,
    (subject, tool): (Subject, Tool),
    tokens: &Tokens,
    concurrency: usize,
    (warmup, duration): (Duration, Duration),
) -> anyhow::Result<Cell> {
    // Open every worker's session before the clock starts.
    let mut opening = JoinSet::new();
    for (index, token) in tokens.for_tool(tool).iter().take(concurrency).enumerate() {
        let endpoint = endpoint.clone();
        let token = token.clone();
        opening.spawn(async move { (index, endpoint.open(&token).await) });
    }
    let mut sessions: Vec<Option<Session>> = (0..concurrency).map(|_| None).collect();
    while let Some(done) = opening.join_next().await {
        let (index, session) = done?;
        sessions[index] =
            Some(session.with_context(|| format!("opening an MCP session for worker {index}"))?);
    }

    let measure_start = Instant::now() + warmup;
    let end = measure_start + duration;
    let mut workers = JoinSet::new();
    for (index, session) in sessions.into_iter().enumerate() {
        let mut session = session.context("a worker has no session")?;
        workers.spawn(async move {
            let stats = worker(&mut session, tool, index, measure_start, end).await;
            session.close().await;
            stats
        });
    }

    let sample = || {
        let (server, bench) = server.cpu_seconds();
        (server, bench, server::system_busy_seconds())
    };
    tokio::time::sleep_until(measure_start.into()).await;
    let (server0, bench0, system0) = sample();
    tokio::time::sleep_until(end.into()).await;
    let (server1, bench1, system1) = sample();
    let memory_after = server.memory();
    let seconds = duration.as_secs_f64();
    let cores = |a: Option<f64>, b: Option<f64>| b.zip(a).map(|(b, a)| (b - a) / seconds);
    let (server_cpu, bench_cpu) = (cores(server0, server1), cores(bench0, bench1));
    let other_cpu = cores(system0, system1)
        .zip(server_cpu.zip(bench_cpu))
        .map(|(all, (server, bench))| (all - server - bench).max(0.0));

    let mut cell = Cell {
        subject,
        tool,
        concurrency,
        calls: 0,
        errors: 0,
        first_error: None,
        window: duration,
        latencies: Vec::new(),
        server_cpu,
        bench_cpu,
        other_cpu,
        rss_after: memory_after.map(|m| m.rss),
        private_after: memory_after.and_then(|m| m.private),
        ratio: None,
    };
    while let Some(done) = workers.join_next().await {
        let stats = done?;
        cell.latencies.extend(stats.latencies);
        cell.errors += stats.errors;
        if cell.first_error.is_none() {
            cell.first_error = stats.first_error;
        }
    }
    cell.latencies.sort_unstable();
    cell.calls = cell.latencies.len() as u64;
    Ok(cell)
}

/// One closed-loop worker: call, wait for the reply, call again, until `end`. The request is
/// built once ([`CallTemplate`]); a created todo's title carries the call's JSON-RPC id.
async fn worker(
    session: &mut Session,
    tool: Tool,
    index: usize,
    measure_start: Instant,
    end: Instant,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let call = match tool {
        Tool::GetTodos => CallTemplate::new(tool.name(), "{}"),
        Tool::CreateTodo => CallTemplate::new(
            tool.name(),
            &format!(r#"{{"title":"bench todo {{id}} of worker {index}"}}"#),
        ),
    };
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let result = session.call(&call).await.and_then(|ok| match tool {
            Tool::GetTodos if ok.count.is_none() => {
                Err("get-todos returned no structuredContent.count".to_owned())
            }
            _ => Ok(()),
        });
        let elapsed = started.elapsed();
        if started >= measure_start {
            stats
                .latencies
                .push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
        }
        if let Err(e) = result {
            stats.errors += 1;
            if stats.first_error.is_none() {
                stats.first_error = Some(e);
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let cell = Cell {
            subject: Subject::Todo0,
            tool: Tool::GetTodos,
            concurrency: TARGET_CONCURRENCY,
            calls: 100,
            errors: 0,
            first_error: None,
            window: Duration::from_secs(1),
            latencies: (1..=100).map(|ms| ms * 1_000_000).collect(),
            server_cpu: Some(0.5),
            bench_cpu: None,
            other_cpu: None,
            rss_after: None,
            private_after: None,
            ratio: None,
        };
        assert_eq!(cell.quantile_ms(0.5), 50.0);
        assert_eq!(cell.quantile_ms(0.99), 99.0);
        assert_eq!(cell.max_ms(), 100.0);
        assert_eq!(cell.calls_per_s(), 100.0);
        assert_eq!(cell.server_us_per_call(), Some(5000.0));
        assert_eq!(cell.target(false).map(|t| t.1), Some(Some(false)));
    }
}
