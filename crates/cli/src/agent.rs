//! `secure-agent agent`: agent0, the agent web app (ARCHITECTURE §1, §7). Settings use the
//! sample's names (flag > environment > `--env-file`s > `<data-dir>/agent0.env`, which idp0
//! writes): the login client (`OKTA_*`), the agent identity (`AI_AGENT_ID` + private key file +
//! kid, for `private_key_jwt`), the todo0 MCP server and its authorization server (`MCP_*`),
//! `DISABLED_CONNECTIONS`, and the model (`ANTHROPIC_*`, `AWS_*` + `BEDROCK_MODEL_ID`,
//! `OPENAI_*`, else the offline model). More MCP servers come from `--config` (TOML); agent0's
//! own settings (`PORT`, `AGENT_MAX_STEPS`, `AGENT_NO_REFRESH`, `DISABLED_CONNECTIONS`, the
//! database and Redis URLs) and its connections are parsed and validated by `agent0::config`:
//! this command only parses flags and hands the settings over.

use std::path::PathBuf;
use std::sync::Arc;

use agent0::config::ConfigFile;
use agent0::conversations::StoreError;
use anyhow::{Context, bail};
use protocol::assertion::ClientAssertionSigner;
use protocol::token_client::ClientAuth;
use protocol::{Clock, SystemClock};

use crate::ServiceArgs;
use crate::settings::Settings;

/// The cookie key file generated in the data directory when `SESSION_SECRET` is not set.
const SESSION_KEY_FILE: &str = "agent0-session.key";

#[derive(clap::Args)]
pub(crate) struct AgentArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Port to listen on (0 picks a free one). Env: PORT. Default: 3000.
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind.
    #[arg(long, env = "AGENT_BIND", default_value = "127.0.0.1")]
    bind: String,
    /// dotenv files with the sample's variable names (repeatable). Default: <data-dir>/agent0.env.
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    #[command(flatten)]
    login: crate::web::LoginArgs,
    /// The todo0 MCP endpoint. Env: MCP_SERVER_URL.
    #[arg(long, value_name = "URL")]
    mcp_server_url: Option<String>,
    /// A TOML file with more MCP servers (`[[mcp_servers]]`; see config/agent0.example.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Where conversations are kept: `sqlite://PATH` (or a plain path), or
    /// `postgres://USER:PASSWORD@HOST:5432/DATABASE[?sslmode=require]` for several replicas on
    /// one database. Env: AGENT_DATABASE_URL. Default: <data-dir>/agent0.db.
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Keep sessions, access-token caches and the exchange leases in Redis, shared by every
    /// agent0 replica: `redis://[:PASSWORD@]HOST:6379[/DB]`. Env: AGENT_REDIS_URL. Default: in
    /// this process (no Redis needed).
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// The start of every Redis key and channel this agent0 uses: the same on the replicas of
    /// one deployment, another one for each deployment (or test run) sharing that Redis.
    /// Env: AGENT_REDIS_PREFIX. Default: `agent0:`.
    #[arg(long, value_name = "PREFIX")]
    redis_prefix: Option<String>,
    /// Model calls per chat turn. Env: AGENT_MAX_STEPS.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Tools that run without the person's confirmation, as comma-separated
    /// `<connection>:<tool>` (e.g. `todo0:toggle-todo`). By default a tool call waits for the
    /// person when the tool is destructive or needs a scope they have not approved in the
    /// conversation. Env: AGENT_AUTO_APPROVE_TOOLS.
    #[arg(long, value_name = "LIST")]
    auto_approve_tools: Option<String>,
    /// Do not ask for `offline_access`: ID tokens are then not renewed, and the person logs in
    /// again when theirs expires. Env: AGENT_NO_REFRESH=true (or 1 / yes / on).
    #[arg(long)]
    no_refresh: bool,
    #[command(flatten)]
    tls: crate::tls::ServeTls,
}

pub(crate) async fn run(args: AgentArgs) -> anyhow::Result<()> {
    run_on(args, None, crate::shutdown_signal()).await
}

/// Serves agent0 on `listener` when `up` already bound its port, until `shutdown`; then ends
/// its MCP sessions at the servers.
pub(crate) async fn run_on(
    args: AgentArgs,
    listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (state, listener, banner) = prepare(&args, listener).await?;
    println!("{banner}");
    httpserve::serve(listener, agent0::router(state.clone()), shutdown).await?;
    state
        .agent()
        .hub()
        .close_all(std::time::Duration::from_secs(3))
        .await;
    println!("agent0 stopped");
    Ok(())
}

/// Resolves settings, opens the store, discovers the IdP and binds the port.
pub(crate) async fn prepare(
    args: &AgentArgs,
    listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<(agent0::AppState, httpserve::Listener, String)> {
    let settings = Settings::load(
        &args.env_files,
        &args.service.data_dir,
        devstack::AGENT0_ENV,
    )?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let oidc = crate::web::oidc_settings(&settings, &args.login)?;
    let session_key = crate::web::session_key(&settings, &args.service.data_dir, SESSION_KEY_FILE)?;
    let agent_id = settings.require(None, "AI_AGENT_ID", "AI_AGENT_ID")?;
    let agent_auth = agent_auth(&settings, &agent_id, clock.clone())?;
    // agent0's settings and connections are parsed and validated there; flags win over the
    // settings of the same name.
    let port_flag = args.port.map(|p| p.to_string());
    let steps_flag = args.max_steps.map(|s| s.to_string());
    let agent0::config::ServiceSettings {
        port,
        max_steps,
        offline_access,
        disabled,
        database,
        redis,
        redis_prefix,
    } = agent0::config::service_settings(&|name| {
        let flag = match name {
            "PORT" => port_flag.as_deref(),
            "AGENT_MAX_STEPS" => steps_flag.as_deref(),
            "AGENT_NO_REFRESH" => args.no_refresh.then_some("true"),
            "AGENT_DATABASE_URL" => args.database.as_deref(),
            "AGENT_REDIS_URL" => args.redis.as_deref(),
            "AGENT_REDIS_PREFIX" => args.redis_prefix.as_deref(),
            _ => None,
        };
        settings.get(flag, name)
    })?;
    let file = args.config.as_deref().map(ConfigFile::load).transpose()?;
    let agent0::config::Connections {
        authorization_server,
        mcp_servers: servers,
        brokered,
    } = agent0::config::connections(file.as_ref(), &|name| match name {
        "MCP_SERVER_URL" => settings.get(args.mcp_server_url.as_deref(), name),
        "AGENT_AUTO_APPROVE_TOOLS" => settings.get(args.auto_approve_tools.as_deref(), name),
        _ => settings.get(None, name),
    })?;
    let model = agent0::llm::select::from_settings(&|name| settings.get(None, name), clock.clone())
        .map_err(|e| anyhow::anyhow!(e))?;
    idp0::fsutil::create_private_dir(&args.service.data_dir)?;
    let database = database.unwrap_or_else(|| {
        format!(
            "sqlite://{}",
            args.service.data_dir.join("agent0.db").display()
        )
    });
    let store = agent0::conversations::open(&database)
        .await
        .map_err(|e| anyhow::anyhow!(store_failed(&database, &e)))?;
    let redirect_uri = oidc.redirect_uri.clone();
    let model_info = model.info();
    let server_lines: Vec<String> = servers
        .iter()
        .map(|s| format!("  MCP server:      {} ({})", s.url, s.name))
        .collect();
    let shared = match redis {
        Some(url) => agent0::shared::SharedState::redis(&url, &redis_prefix, clock.clone())
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "{e}; start Redis there, or point --redis / AGENT_REDIS_URL at one that answers \
                 (or leave both unset to keep sessions in this process)"
            )
        })?,
        None => agent0::shared::SharedState::in_process(clock.clone()),
    };
    let shared_state = shared.description.clone();
    let config = agent0::AgentConfig {
        oidc,
        offline_access,
        session_key,
        agent_id: agent_id.clone(),
        agent_auth,
        authorization_server,
        mcp_servers: servers,
        brokered,
        disabled,
        model,
        store,
        max_steps,
        clock,
    };
    let state = agent0::AppState::with_shared_state(config, shared).await?;
    let listener = match listener {
        Some(listener) => listener,
        None => tokio::net::TcpListener::bind((args.bind.as_str(), port))
            .await
            .with_context(|| format!("cannot listen on {}:{port} (use --port)", args.bind))?,
    };
    let listener = args.tls.listener(&args.service.data_dir, listener)?;
    let bound = listener.local_addr()?;
    let public = url::Url::parse(&redirect_uri)?.join("/")?;
    crate::tls::check_public_url(&args.tls, &public, "OKTA_REDIRECT_URI")?;
    let banner = format!(
        "agent0 listening on {bound}\n  open:            {public}\n  agent:           {agent_id}\n  model:           {} · {}\n  conversations:   {}\n  sessions:        {shared_state}\n{}",
        model_info.provider,
        model_info.model,
        dbconn::redact_url(&database),
        server_lines.join("\n")
    );
    Ok((state, listener, banner))
}

/// Why the conversation store did not open, naming the database (never its password) and the fix.
fn store_failed(url: &str, error: &StoreError) -> String {
    let shown = dbconn::redact_url(url);
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let fix = match error {
        // The message already says what to do (a schema from a newer secure-agent).
        StoreError::Incompatible(_) => "",
        StoreError::Unavailable(_) if postgres => {
            "; start PostgreSQL or check the host and port, or point --database / \
             AGENT_DATABASE_URL at one that answers"
        }
        _ if postgres => {
            "; check the user, password, database and sslmode in --database / AGENT_DATABASE_URL"
        }
        _ => "; check that the directory exists and is writable, or pass --database",
    };
    format!("cannot open the conversation database {shown}: {error}{fix}")
}

/// `private_key_jwt` with `AI_AGENT_PRIVATE_KEY_FILE` + `AI_AGENT_PRIVATE_KEY_KID`, or a client
/// secret (`AI_AGENT_CLIENT_SECRET`, sent with client_secret_basic).
fn agent_auth(
    settings: &Settings,
    agent_id: &str,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<ClientAuth> {
    if let Some(key) = settings.agent_key(None, None)? {
        return Ok(ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
            agent_id,
            Arc::new(key),
            clock,
        )));
    }
    if let Some(secret) = settings.get(None, "AI_AGENT_CLIENT_SECRET") {
        return Ok(ClientAuth::SecretBasic {
            client_id: agent_id.to_owned(),
            secret: secret.into(),
        });
    }
    bail!(
        "the agent needs credentials: AI_AGENT_PRIVATE_KEY_FILE and AI_AGENT_PRIVATE_KEY_KID \
         (private_key_jwt), or AI_AGENT_CLIENT_SECRET"
    )
}
