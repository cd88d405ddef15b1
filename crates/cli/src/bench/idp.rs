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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::body::Bytes;
use clap::ValueEnum;
use devstack::{AGENT_ID, AGENT_INITIAL_SCOPES, TODO0_MCP_RESOURCE};
use idp0::store::{AuthCode, Grant};
use idp0::tokens::IdJagInput;
use protocol::assertion::{ASSERTION_LIFETIME_SECONDS, ClientAssertionSigner};
use protocol::keys::SigningKey;
use protocol::oauth::{GrantType, TokenType};
use protocol::{Clock, Scopes};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::reference::{self, InProcess};
use super::server;

/// Threads whose CPU is idp0's: its runtime and its SQLite connections.
const IDP_THREADS: [&str; 2] = ["bench-idp", "sqlx-sqlite"];
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

/// What the client needs to build requests: the agent's signer, a person's ID token, and the
/// org's keys to sign ID-JAGs as idp0 would have issued them; agent0's web client and the
/// current cell's pool of pre-built requests.
struct Requests {
    agent: ClientAssertionSigner,
    idp: idp0::Idp,
    user: Arc<idp0::config::User>,
    login: Login,
    org_endpoint: String,
    todo0_issuer: String,
    todo0_endpoint: String,
    clock: Arc<dyn Clock>,
    pool: std::sync::RwLock<Arc<RequestPool>>,
}

/// One cell's pre-built request bodies, each sent once (a client assertion's `jti`, an ID-JAG
/// and an authorization code are single-use).
#[derive(Default)]
struct RequestPool {
    bodies: Vec<Bytes>,
    next: AtomicUsize,
}

impl RequestPool {
    /// The next unsent body; `None` when the pool is used up.
    fn take(&self) -> Option<Bytes> {
        self.bodies
            .get(self.next.fetch_add(1, Ordering::Relaxed))
            .cloned()
    }
}

/// agent0's web client and alice's login through idp0's form.
struct Login {
    client_id: String,
    client_secret: SecretString,
    redirect_uri: String,
    id_token: SecretString,
    /// The login's claims: `sub`, `sid`, `auth_time`.
    claims: Value,
    /// One PKCE pair for every pooled code.
    code_challenge: String,
    code_verifier: String,
}

impl Requests {
    /// The endpoint `workload` posts to.
    fn endpoint(&self, workload: Workload) -> &str {
        match workload {
            Workload::JwtBearer => &self.todo0_endpoint,
            Workload::Exchange | Workload::Code | Workload::Sts => &self.org_endpoint,
        }
    }

    /// One request's form body: a fresh client assertion (for `jwt-bearer` also a fresh
    /// ID-JAG); for `code`, the code's redemption (authenticated with agent0's client secret
    /// over HTTP Basic instead).
    fn body(&self, workload: Workload, code: Option<&str>) -> anyhow::Result<Bytes> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        let endpoint = match workload {
            Workload::Code => {
                form.extend_pairs([
                    ("grant_type", "authorization_code"),
                    ("code", code.context("a code redemption needs a code")?),
                    ("redirect_uri", &self.login.redirect_uri),
                    ("code_verifier", &self.login.code_verifier),
                ]);
                return Ok(Bytes::from(form.finish()));
            }
            Workload::Exchange => {
                form.extend_pairs([
                    ("grant_type", GrantType::TokenExchange.as_str()),
                    ("requested_token_type", TokenType::IdJag.as_str()),
                    ("subject_token", self.login.id_token.expose_secret()),
                    ("subject_token_type", TokenType::IdToken.as_str()),
                    ("audience", self.todo0_issuer.as_str()),
                    ("resource", TODO0_MCP_RESOURCE),
                    ("scope", AGENT_INITIAL_SCOPES),
                ]);
                &self.org_endpoint
            }
            Workload::Sts => {
                form.extend_pairs([
                    ("grant_type", GrantType::TokenExchange.as_str()),
                    ("requested_token_type", TokenType::OktaOauthSts.as_str()),
                    ("subject_token", self.login.id_token.expose_secret()),
                    ("subject_token_type", TokenType::IdToken.as_str()),
                    ("resource", STS_RESOURCE),
                ]);
                &self.org_endpoint
            }
            Workload::JwtBearer => {
                let scope = Scopes::parse(AGENT_INITIAL_SCOPES)?;
                let jag = idp0::tokens::id_jag(
                    &self.idp.org,
                    &IdJagInput {
                        user: &self.user,
                        audience: &self.todo0_issuer,
                        client_id: AGENT_ID,
                        resource: Some(TODO0_MCP_RESOURCE),
                        scope: &scope,
                        auth_time: Some(self.clock.now()),
                        lifetime: self.idp.directory().config.id_jag_lifetime,
                    },
                    self.clock.now(),
                )
                .map_err(|e| anyhow::anyhow!("signing an ID-JAG: {e}"))?;
                form.extend_pairs([
                    ("grant_type", GrantType::JwtBearer.as_str()),
                    ("assertion", jag.token.expose_secret()),
                ]);
                &self.todo0_endpoint
            }
        };
        for (name, value) in self.agent.form_fields(endpoint)? {
            form.append_pair(name, value.expose_secret());
        }
        Ok(Bytes::from(form.finish()))
    }

    fn pool(&self) -> Arc<RequestPool> {
        match self.pool.read() {
            Ok(pool) => pool.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Builds `count` requests for `workload` and makes them the pool: for `code`, fresh codes
    /// written through idp0's store first; the signing is spread over every CPU.
    async fn refill(self: &Arc<Self>, workload: Workload, count: usize) -> anyhow::Result<()> {
        let codes = if workload == Workload::Code {
            self.write_codes(count).await?
        } else {
            Vec::new()
        };
        let this = self.clone();
        let bodies = tokio::task::spawn_blocking(move || {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let chunk = count.div_ceil(threads).max(1);
            std::thread::scope(|scope| {
                let parts: Vec<_> = (0..count)
                    .step_by(chunk)
                    .map(|start| {
                        let (this, codes) = (&this, &codes);
                        scope.spawn(move || {
                            (start..(start + chunk).min(count))
                                .map(|i| this.body(workload, codes.get(i).map(String::as_str)))
                                .collect::<anyhow::Result<Vec<_>>>()
                        })
                    })
                    .collect();
                parts
                    .into_iter()
                    .try_fold(Vec::with_capacity(count), |mut all, part| {
                        all.extend(
                            part.join()
                                .map_err(|_| anyhow::anyhow!("building requests panicked"))??,
                        );
                        anyhow::Ok(all)
                    })
            })
        })
        .await??;
        let pool = Arc::new(RequestPool {
            bodies,
            next: AtomicUsize::new(0),
        });
        match self.pool.write() {
            Ok(mut current) => *current = pool,
            Err(poisoned) => *poisoned.into_inner() = pool,
        }
        Ok(())
    }

    /// Writes `count` fresh codes for alice's session through idp0's store, as `/authorize`
    /// writes them.
    async fn write_codes(&self, count: usize) -> anyhow::Result<Vec<String>> {
        let claim = |name: &str| self.login.claims.get(name).cloned().unwrap_or_default();
        let (sub, sid) = (claim("sub"), claim("sid"));
        let (Some(sub), Some(sid), Some(auth_time)) =
            (sub.as_str(), sid.as_str(), claim("auth_time").as_i64())
        else {
            bail!("the login's ID token has no sub, sid or auth_time");
        };
        let now = self.clock.now();
        let mut codes = Vec::with_capacity(count);
        for _ in 0..count {
            let code = idp0::tokens::new_secret();
            let record = AuthCode {
                grant: Grant {
                    server: self.idp.org.store_id().to_owned(),
                    client_id: self.login.client_id.clone(),
                    user_id: sub.to_owned(),
                    scope: LOGIN_SCOPE.to_owned(),
                    nonce: None,
                    auth_time,
                    sid: Some(sid.to_owned()),
                    family: idp0::tokens::new_id(),
                },
                redirect_uri: self.login.redirect_uri.clone(),
                code_challenge: self.login.code_challenge.clone(),
                // Long enough for any run (`/authorize` gives 120 s: a pool outlives that).
                expires_at: now + 3600,
                used: false,
            };
            self.idp
                .store
                .create_code(&idp0::store::secret_hash(&code), &record)
                .await
                .map_err(|e| anyhow::anyhow!("writing an authorization code: {e}"))?;
            codes.push(code);
        }
        Ok(codes)
    }
}

/// The scopes of agent0's login.
const LOGIN_SCOPE: &str = "openid profile email offline_access";

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
    let http = protocol::trust::client_builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(usize::MAX)
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the HTTP client")?;

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
                &http,
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
                    &http,
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

/// The agent's signing key, as `devstack` wrote it for agent0.
/// Gives the development configuration's agent a brokered connection (for `sts`).
fn add_brokered_connection(dir: &std::path::Path) -> anyhow::Result<()> {
    devstack::ensure(dir, None)?;
    let path = dir.join(devstack::CONFIG_FILE);
    let mut file: idp0::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&path)?)?;
    let agent = file
        .agents
        .first_mut()
        .context("the development configuration has no agent")?;
    agent
        .brokered_connections
        .push(idp0::config::BrokeredConnectionEntry {
            kind: idp0::config::BrokeredKind::Application,
            name: "Bench app".into(),
            resource: STS_RESOURCE.into(),
            authorize_url: "http://127.0.0.1:9/authorize".into(),
            token_url: "http://127.0.0.1:9/token".into(),
            revocation_url: None,
            revocation: Default::default(),
            client_id: "bench".into(),
            client_secret: Some("bench-secret".into()),
            client_secret_env: None,
            scopes: vec!["repo".into()],
        });
    std::fs::write(&path, toml::to_string(&file)?)?;
    Ok(())
}

/// Makes the development configuration's authorization servers (org and todo0) sign with `alg`.
fn sign_with(dir: &std::path::Path, alg: &str) -> anyhow::Result<()> {
    devstack::ensure(dir, None)?;
    let path = dir.join(devstack::CONFIG_FILE);
    let mut file: idp0::config::ConfigFile = toml::from_str(&std::fs::read_to_string(&path)?)?;
    file.signing_alg = Some(alg.to_owned());
    for server in &mut file.authorization_servers {
        server.signing_alg = Some(alg.to_owned());
    }
    std::fs::write(&path, toml::to_string(&file)?)?;
    Ok(())
}

/// alice's consent for the `sts` connection, in the vault as the callback would store it.
async fn seed_consent(idp: &idp0::Idp, user: &idp0::config::User) -> anyhow::Result<()> {
    let Some(agent) = idp.client(AGENT_ID) else {
        return Ok(());
    };
    let Some(connection) = agent.brokered_connection(STS_RESOURCE).cloned() else {
        return Ok(());
    };
    let tokens = idp0::sts::isv::IsvTokens {
        access_token: SecretString::from(idp0::tokens::new_secret()),
        refresh_token: None,
        expires_in: Some(30 * 86_400),
        scope: Some("repo".into()),
    };
    let entry = idp0::sts::sealed_entry(idp, &user.id, &agent, &connection, &tokens, None)?;
    idp.store.upsert_vault_entry(&entry).await?;
    Ok(())
}

fn agent_key(dir: &std::path::Path) -> anyhow::Result<SigningKey> {
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
    Ok(SigningKey::from_pem(
        &pem,
        Some(var("AI_AGENT_PRIVATE_KEY_KID")?),
    )?)
}

async fn requests(
    dir: &std::path::Path,
    issuer: &str,
    (idp, demo_users): (idp0::Idp, Vec<(String, String)>),
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Requests> {
    devstack::write_env_files(dir, issuer)?;
    let agent = ClientAssertionSigner::new(AGENT_ID, Arc::new(agent_key(dir)?), clock.clone());
    let todo0 = idp
        .server(Some(devstack::TODO0_SERVER))
        .context("the development configuration has no todo0 authorization server")?;
    let user = idp
        .directory()
        .config
        .users
        .get("alice")
        .cloned()
        .context("the development configuration has no alice")?;
    let password = demo_users
        .into_iter()
        .find_map(|(name, password)| (name == "alice").then_some(password))
        .context("no demo password for alice")?;
    let login = login(dir, issuer, &password, clock.now()).await?;
    seed_consent(&idp, &user).await?;
    Ok(Requests {
        agent,
        org_endpoint: idp.org.endpoint("token"),
        todo0_issuer: todo0.issuer.clone(),
        todo0_endpoint: todo0.endpoint("token"),
        user,
        login,
        idp,
        clock,
        pool: Default::default(),
    })
}

/// alice logs in to agent0's client through `/authorize`, idp0's form and the code exchange.
async fn login(
    dir: &std::path::Path,
    issuer: &str,
    password: &str,
    now: protocol::UnixTime,
) -> anyhow::Result<Login> {
    let env: std::collections::HashMap<String, String> =
        devstack::read_env_file(&dir.join(devstack::AGENT0_ENV))?
            .into_iter()
            .collect();
    let var = |name: &str| {
        env.get(name)
            .cloned()
            .with_context(|| format!("agent0.env has no {name}"))
    };
    let settings = weblogin::OidcSettings {
        issuer: issuer.to_owned(),
        client_id: var("OKTA_CLIENT_ID")?,
        client_secret: var("OKTA_CLIENT_SECRET")?.into(),
        redirect_uri: var("OKTA_REDIRECT_URI")?,
        post_logout_redirect_uri: var("OKTA_REDIRECT_URI")?,
    };
    let rp = weblogin::RelyingParty::discover(settings.clone()).await?;
    let browser = protocol::trust::client_builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let (authorize, pending) = rp.begin(now, &["offline_access"]);
    let page = browser.get(authorize.as_str()).send().await?.text().await?;
    let mut fields = devstack::login_form::hidden_fields(&page);
    fields.push(("username".into(), "alice".into()));
    fields.push(("password".into(), password.into()));
    let action = devstack::login_form::form_action(authorize.as_str(), &page)?;
    let submitted = browser.post(action).form(&fields).send().await?;
    let location = submitted
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("the login form answered {}", submitted.status()))?;
    let code = url::Url::parse(location)?
        .query_pairs()
        .find_map(|(name, value)| (name == "code").then(|| value.into_owned()))
        .context("the login redirect has no code")?;
    let tokens = rp.finish(code, pending).await?;
    // A second authorization request's PKCE pair, for the pooled codes.
    let (authorize, pending) = rp.begin(now, &["offline_access"]);
    let code_challenge = authorize
        .query_pairs()
        .find_map(|(name, value)| (name == "code_challenge").then(|| value.into_owned()))
        .context("the authorization URL has no code_challenge")?;
    Ok(Login {
        client_id: settings.client_id,
        client_secret: settings.client_secret,
        redirect_uri: settings.redirect_uri,
        id_token: tokens.id_token,
        claims: tokens.claims,
        code_challenge,
        code_verifier: pending.verifier,
    })
}

/// CPU seconds so far: the measured server's threads, this process less every server's, and
/// every other process.
fn cpu_sample(threads: &[&str]) -> [Option<f64>; 3] {
    let server = server::threads_cpu_seconds(threads);
    let servers =
        server::threads_cpu_seconds(&[IDP_THREADS[0], IDP_THREADS[1], REFERENCE_THREADS[0]]);
    let all = server::own_cpu_seconds();
    let client = all.zip(servers).map(|(all, servers)| all - servers);
    let other = server::system_busy_seconds()
        .zip(all)
        .map(|(busy, all)| busy - all);
    [server, client, other]
}

async fn run_cell(
    http: &reqwest::Client,
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
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let (http, requests, url, pool) =
            (http.clone(), requests.clone(), url.clone(), pool.clone());
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
                let mut post = http
                    .post(&url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .header(reqwest::header::ACCEPT, "application/json");
                if workload == Workload::Code {
                    let login = &requests.login;
                    post = post
                        .basic_auth(&login.client_id, Some(login.client_secret.expose_secret()));
                }
                let response = post.body(body).send().await?;
                let status = response.status();
                let reply = response.bytes().await?;
                let elapsed = started.elapsed();
                if !status.is_success() || !is_token(&reply) {
                    bail!(
                        "{server} {}: HTTP {status}: {}",
                        workload.name(),
                        String::from_utf8_lossy(&reply)
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
