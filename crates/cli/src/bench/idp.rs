//! `secure-agent bench idp`: idp0's token endpoint over real HTTP on loopback. idp0 runs in this
//! process on its own runtime (threads `bench-idp`, plus its SQLite workers), with the
//! development configuration in a fresh directory; the load client is the agent
//! (`private_key_jwt`, a fresh client assertion per request, as `TokenClient` sends it) posting
//! in a closed loop over keep-alive HTTP/1.1. Each cell's requests are built before it starts
//! (`--requests`, signatures spread over every CPU), so the client's own signing does not take
//! the server's CPU during the measurement. Nothing is skipped: client authentication with the
//! jti replay cache, the grant's policy, token signing and the audit line of every grant.
//!
//! * `exchange`: RFC 8693 exchange of a person's ID token for an ID-JAG at the org AS.
//! * `jwt-bearer`: redemption of an ID-JAG (RFC 7523) at the todo0 AS; an ID-JAG is single-use,
//!   so the client signs a new one (with the org's key) for every request.
//! * `code`: agent0's login, an authorization code redeemed at the org AS (`client_secret_basic`,
//!   PKCE) for ID, access and refresh tokens. Codes are single-use: before each cell a pool of
//!   them is written through idp0's store for alice's SSO session (a real login through idp0's
//!   form), as `/authorize` writes them.
//!
//! * `sts`: the brokered ("OAuth STS") exchange of the same ID token for a third-party token at
//!   the org AS, warm: alice's consent is already in the vault (sealed with AES-256-GCM), so each
//!   request is the subject-token and client checks plus one vault read and decryption; the
//!   third-party app itself is never called.
//!
//! The ID token the exchange sends comes from that login too. `--reference` also runs a minimal
//! token endpoint (one RS256 verification, one RS256 signature) with the same client and
//! requests.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use clap::ValueEnum;
use devstack::AGENT_ID;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{HeaderMap, Method};
use protocol::assertion::ASSERTION_LIFETIME_SECONDS;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::client::{Endpoint, Link};
use super::reference::{self, InProcess};
use super::server;

mod requests;

use requests::{Requests, add_brokered_connection, agent_key, requests, sign_with};

/// Threads whose CPU is idp0's: its runtime, its sqlx SQLite connections and its group commit.
const IDP_THREADS: [&str; 3] = [
    "bench-idp",
    "sqlx-sqlite",
    idp0::store::SqliteStore::WRITER_THREAD,
];
const REFERENCE_THREADS: [&str; 1] = ["bench-ref"];

#[derive(clap::Args)]
pub(crate) struct IdpBenchArgs {
    /// Concurrent workers per run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 64])]
    concurrency: Vec<usize>,
    /// Workloads, in this order, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["exchange", "jwt-bearer", "code"])]
    workloads: Vec<Workload>,
    /// Requests built before each cell, one per request, warm-up included: client assertions
    /// and ID-JAGs signed, authorization codes written through idp0's store. The load client
    /// then only sends bytes, so its CPU is not taken from the server's two cores by signing. A
    /// cell that uses them all ends early, with a note.
    #[arg(long, alias = "codes", default_value_t = 20_000)]
    requests: usize,
    /// Measured time per (workload, concurrency) cell, e.g. 5s.
    #[arg(long, default_value = "5s", value_parser = super::parse_duration)]
    duration: Duration,
    /// Unmeasured load before each cell's measurement.
    #[arg(long, default_value = "1s", value_parser = super::parse_duration)]
    warmup: Duration,
    /// Also measure a minimal token endpoint (one RS256 verification + one RS256 signature per
    /// request, same HTTP stack, in this process) and report idp0's share of its calls/s.
    #[arg(long)]
    reference: bool,
    /// The algorithm idp0's authorization servers (org and todo0) sign with: their
    /// `signing_alg` in the generated idp0.toml.
    #[arg(long, default_value = "rs256", value_parser = ["rs256", "es256"], ignore_case = true)]
    alg: String,
    /// Print the results as JSON on standard output.
    #[arg(long)]
    json: bool,
}

/// The longest cell (warm-up included) whose pre-built requests are all still valid when sent:
/// a client assertion lives [`ASSERTION_LIFETIME_SECONDS`], and building the pool takes time.
const MAX_CELL: Duration = Duration::from_secs(40);

/// A token-endpoint workload.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// ID token → ID-JAG at the org authorization server (RFC 8693).
    Exchange,
    /// ID-JAG → access token at the todo0 authorization server (RFC 7523).
    JwtBearer,
    /// Authorization code → ID, access and refresh tokens at the org authorization server.
    Code,
    /// ID token → a third-party token from idp0's vault (brokered consent, warm).
    Sts,
}

/// The brokered connection the `sts` workload exchanges for (its app is never called).
const STS_RESOURCE: &str = "https://api.github.example";

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Self::Exchange => "exchange",
            Self::JwtBearer => "jwt-bearer",
            Self::Code => "code",
            Self::Sts => "sts",
        }
    }
}

/// One measured cell.
struct Cell {
    server: &'static str,
    workload: Workload,
    concurrency: usize,
    latencies: Vec<u64>,
    window: Duration,
    server_cpu: Option<f64>,
    client_cpu: Option<f64>,
    /// Every other process's CPU (this machine's busy time less this process's).
    other_cpu: Option<f64>,
    ratio: Option<f64>,
}

impl Cell {
    fn calls_per_s(&self) -> f64 {
        self.latencies.len() as f64 / self.window.as_secs_f64()
    }
}

pub(crate) async fn run(args: IdpBenchArgs) -> anyhow::Result<()> {
    if args.concurrency.is_empty() || args.concurrency.contains(&0) {
        bail!("--concurrency needs positive numbers, e.g. 1,8,64");
    }
    if args.duration.is_zero() || args.workloads.is_empty() {
        bail!("--duration and --workloads must not be empty");
    }
    if args.warmup + args.duration > MAX_CELL {
        bail!(
            "--warmup plus --duration must stay under {}s: the pre-built client assertions are \
             valid {ASSERTION_LIFETIME_SECONDS}s from when they are signed",
            MAX_CELL.as_secs()
        );
    }
    if args.requests == 0 {
        bail!("--requests must be positive");
    }
    let temp = tempfile::Builder::new()
        .prefix("secure-agent-bench-idp-")
        .tempdir()?;
    let dir = temp.path().to_owned();
    let clock = protocol::clock::system();
    if args.workloads.contains(&Workload::Sts) {
        add_brokered_connection(&dir)?;
    }
    let alg = args.alg.to_ascii_uppercase();
    sign_with(&dir, &alg)?;

    let (opened_tx, opened_rx) = tokio::sync::oneshot::channel();
    let idp_server = {
        let (dir, clock) = (dir.clone(), clock.clone());
        InProcess::start("bench-idp", move |listener| async move {
            let issuer = format!("http://{}", listener.local_addr()?);
            let opened = devstack::open_idp(&dir, None, issuer, clock, None).await;
            let idp = match opened {
                Ok(opened) => {
                    let _ = opened_tx.send(Ok((opened.idp.clone(), opened.demo_users)));
                    opened.idp
                }
                Err(e) => {
                    let _ = opened_tx.send(Err(e));
                    return Ok(());
                }
            };
            Ok(idp0::serve(listener, idp, std::future::pending()).await?)
        })?
    };
    let opened = opened_rx.await.context("idp0 did not start")??;
    let requests = Arc::new(requests(&dir, &idp_server.base, opened, clock).await?);
    let reference = if args.reference {
        let audiences = [
            requests.org_endpoint.clone(),
            requests.todo0_endpoint.clone(),
        ];
        let key = agent_key(&dir)?;
        let app = reference::token_router(AGENT_ID, &key, &audiences, requests.clock.now())?;
        Some(InProcess::start("bench-ref", move |listener| async move {
            Ok(httpserve::serve(listener, app, std::future::pending()).await?)
        })?)
    } else {
        None
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if !args.json {
        println!(
            "idp0 token endpoint benchmark ({alg} authorization servers; {} measured per cell after {} warm-up; {cpus} CPUs)",
            super::format_duration(args.duration),
            super::format_duration(args.warmup)
        );
        println!(
            "server, client, other: CPU used in the window by the server's threads, the load client (this process less the servers' threads) and all other processes (100% = one core)"
        );
        if reference.is_some() {
            println!(
                "reference: one RS256 verification (client assertion) + one RS256 signature per request, same HTTP stack; vs ref: idp0 calls/s / reference calls/s"
            );
        }
        println!(
            "{:<9} {:<10} {:>4} {:>8} {:>7} {:>7} {:>7} {:>6} {:>6} {:>6} {:>6}",
            "server",
            "workload",
            "conc",
            "calls/s",
            "p50 ms",
            "p99 ms",
            "max ms",
            "server",
            "client",
            "other",
            "vs ref"
        );
    }
    let mut cells = Vec::new();
    for &workload in &args.workloads {
        for &concurrency in &args.concurrency {
            eprintln!("bench: idp0 {} x {concurrency} …", workload.name());
            let mut cell = run_cell(
                &requests,
                ("idp0", &idp_server.base, &IDP_THREADS),
                workload,
                concurrency,
                (args.warmup, args.duration, args.requests),
            )
            .await?;
            let mut row = vec![];
            if let Some(reference) = &reference {
                eprintln!("bench: reference {} x {concurrency} …", workload.name());
                let baseline = run_cell(
                    &requests,
                    ("reference", &reference.base, &REFERENCE_THREADS),
                    workload,
                    concurrency,
                    (args.warmup, args.duration, args.requests),
                )
                .await?;
                cell.ratio =
                    Some(cell.calls_per_s() / baseline.calls_per_s().max(f64::MIN_POSITIVE));
                row.push(baseline);
            }
            row.insert(0, cell);
            for cell in row {
                if !args.json {
                    print_row(&cell);
                }
                cells.push(cell);
            }
        }
    }
    drop(reference);
    drop(idp_server);
    if args.json {
        let results: Vec<Value> = cells.iter().map(cell_json).collect();
        let report = json!({
            "cpus": cpus,
            "duration_s": args.duration.as_secs_f64(),
            "warmup_s": args.warmup.as_secs_f64(),
            "reference": args.reference,
            "alg": alg,
            "client_cpu_method": super::BENCH_CPU_METHOD,
            "results": results,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

/// CPU seconds so far: the measured server's threads, this process less every server's, and
/// every other process.
fn cpu_sample(threads: &[&str]) -> [Option<f64>; 3] {
    let server = server::threads_cpu_seconds(threads);
    let servers = server::threads_cpu_seconds(&[&IDP_THREADS[..], &REFERENCE_THREADS[..]].concat());
    let all = server::own_cpu_seconds();
    let client = all.zip(servers).map(|(all, servers)| all - servers);
    let other = server::system_busy_seconds()
        .zip(all)
        .map(|(busy, all)| busy - all);
    [server, client, other]
}

async fn run_cell(
    requests: &Arc<Requests>,
    (server, base, threads): (&'static str, &str, &[&str]),
    workload: Workload,
    concurrency: usize,
    (warmup, duration, pooled): (Duration, Duration, usize),
) -> anyhow::Result<Cell> {
    eprintln!("bench: building {pooled} {} requests …", workload.name());
    requests.refill(workload, pooled).await?;
    let measure_start = Instant::now() + warmup;
    let end = measure_start + duration;
    // The real endpoint's path on the measured server (the reference answers any).
    let url = format!(
        "{base}{}",
        url::Url::parse(requests.endpoint(workload))?.path()
    );
    let pool = requests.pool();
    let endpoint = Endpoint::new(&url)?;
    let headers = request_headers(&endpoint, workload, requests);
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (mut link, headers, pool) =
            (Link::new(endpoint.clone()), headers.clone(), pool.clone());
        workers.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let started = Instant::now();
                if started >= end {
                    return Ok((latencies, None));
                }
                let Some(body) = pool.take() else {
                    return Ok((latencies, Some(started)));
                };
                let (status, _) = link
                    .send(Method::POST, headers.clone(), body)
                    .await
                    .map_err(anyhow::Error::msg)?;
                let elapsed = started.elapsed();
                if !status.is_success() || !is_token(link.reply()) {
                    bail!(
                        "{server} {}: HTTP {status}: {}",
                        workload.name(),
                        link.reply_text()
                    );
                }
                if started >= measure_start {
                    latencies.push(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
                }
            }
        });
    }
    tokio::time::sleep_until(measure_start.into()).await;
    let before = cpu_sample(threads);
    tokio::time::sleep_until(end.into()).await;
    let after = cpu_sample(threads);
    let seconds = duration.as_secs_f64();
    let cores = |a: Option<f64>, b: Option<f64>| b.zip(a).map(|(b, a)| (b - a) / seconds);
    let mut latencies = Vec::new();
    let mut ran_out: Option<Instant> = None;
    while let Some(done) = workers.join_next().await {
        let (some, out) = done??;
        latencies.extend(some);
        ran_out = match (ran_out, out) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    let window = match ran_out {
        Some(at) if at <= measure_start => {
            bail!("the {pooled} pre-built requests ran out in the warm-up; raise --requests")
        }
        Some(at) => {
            eprintln!(
                "bench: note: the {pooled} pre-built requests ran out after {:.2}s of {}; raise --requests",
                (at - measure_start).as_secs_f64(),
                super::format_duration(duration)
            );
            at - measure_start
        }
        None => duration,
    };
    latencies.sort_unstable();
    Ok(Cell {
        server,
        workload,
        concurrency,
        latencies,
        window,
        server_cpu: cores(before[0], after[0]),
        client_cpu: cores(before[1], after[1]),
        other_cpu: cores(before[2], after[2]).map(|c| c.max(0.0)),
        ratio: None,
    })
}

/// Every request's headers: a form in, JSON out, and for a code redemption the client's secret
/// (`client_secret_basic`, as agent0's login sends it).
fn request_headers(endpoint: &Endpoint, workload: Workload, requests: &Requests) -> HeaderMap {
    let mut headers = HeaderMap::with_capacity(4);
    headers.insert(HOST, endpoint.host().clone());
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    if workload == Workload::Code {
        let login = &requests.login;
        let credentials = format!(
            "{}:{}",
            login.client_id,
            login.client_secret.expose_secret()
        );
        if let Ok(mut value) =
            HeaderValue::from_str(&format!("Basic {}", BASE64_STANDARD.encode(credentials)))
        {
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
    }
    headers
}

/// Whether a reply is a token response (has an `access_token`).
fn is_token(reply: &[u8]) -> bool {
    serde_json::from_slice::<Value>(reply).is_ok_and(|v| v["access_token"].is_string())
}

fn print_row(cell: &Cell) {
    let percent = |cpu: Option<f64>| cpu.map_or("-".to_owned(), |c| format!("{:.0}%", c * 100.0));
    let q = |q: f64| super::quantile_ms(&cell.latencies, q);
    println!(
        "{:<9} {:<10} {:>4} {:>8.0} {:>7.2} {:>7.2} {:>7.1} {:>6} {:>6} {:>6} {:>6}",
        cell.server,
        cell.workload.name(),
        cell.concurrency,
        cell.calls_per_s(),
        q(0.5),
        q(0.99),
        q(1.0),
        percent(cell.server_cpu),
        percent(cell.client_cpu),
        percent(cell.other_cpu),
        cell.ratio.map_or("-".to_owned(), |r| format!("{r:.2}")),
    );
}

fn cell_json(cell: &Cell) -> Value {
    let q = |q: f64| super::round3(super::quantile_ms(&cell.latencies, q));
    json!({
        "server": cell.server,
        "workload": cell.workload.name(),
        "concurrency": cell.concurrency,
        "calls": cell.latencies.len(),
        "calls_per_s": super::round2(cell.calls_per_s()),
        "p50_ms": q(0.5),
        "p99_ms": q(0.99),
        "max_ms": q(1.0),
        "server_cpu_pct": cell.server_cpu.map(|c| super::round2(c * 100.0)),
        "client_cpu_pct": cell.client_cpu.map(|c| super::round2(c * 100.0)),
        "other_cpu_pct": cell.other_cpu.map(|c| super::round2(c * 100.0)),
        "ratio_to_reference": cell.ratio.map(super::round3),
    })
}
