//! `secure-agent todo-mcp` (todo0's MCP server) and `secure-agent todo-app` (the todo0 web app
//! and REST API). Both read the same settings — from flags, the environment, or the `todo0.env`
//! idp0 writes in the data directory — and share one store, so `secure-agent idp --data-dir D`,
//! `secure-agent todo-mcp --data-dir D` and `secure-agent todo-app --data-dir D` work together
//! with nothing else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::verify::RemoteJwks;
use todo0::web::WebConfig;

use crate::ServiceArgs;
use crate::settings::Settings;

/// The cookie key file generated in the data directory when `SESSION_SECRET` is not set.
const SESSION_KEY_FILE: &str = "todo0-session.key";

/// Options both todo0 services take.
#[derive(clap::Args)]
pub(crate) struct TodoCommonArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Address to bind.
    #[arg(long, env = "TODO_BIND", default_value = "127.0.0.1")]
    bind: String,
    /// dotenv files with the sample's variable names (repeatable). Default: <data-dir>/todo0.env.
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// The authorization server issuer whose tokens are accepted. Env: MCP_OKTA_ISSUER (or OKTA_ISSUER).
    #[arg(long)]
    issuer: Option<String>,
    /// The MCP server's resource identifier (tokens' `aud`). Env: MCP_EXPECTED_AUDIENCE (or EXPECTED_AUDIENCE).
    #[arg(long)]
    resource: Option<String>,
    /// `sqlite://PATH` or `postgres://…`. Env: TODO_DATABASE_URL. Default: <data-dir>/todo0.db.
    #[arg(long)]
    database: Option<String>,
}

#[derive(clap::Args)]
pub(crate) struct TodoMcpArgs {
    #[command(flatten)]
    common: TodoCommonArgs,
    /// Port to listen on (0 picks a free one). Env: MCP_PORT.
    #[arg(long)]
    port: Option<u16>,
    /// No MCP sessions (JSON responses): for several replicas behind a load balancer.
    #[arg(long, env = "MCP_STATELESS")]
    stateless: bool,
    /// Extra accepted `Host` values (DNS-rebinding protection; loopback is always accepted).
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// Accepted browser `Origin`s (requests without Origin always pass).
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
}

#[derive(clap::Args)]
pub(crate) struct TodoAppArgs {
    #[command(flatten)]
    common: TodoCommonArgs,
    /// Port to listen on (0 picks a free one). Env: TODO_APP_PORT (or the sample's PORT). Default: 5001.
    #[arg(long)]
    port: Option<u16>,
    #[command(flatten)]
    login: crate::web::LoginArgs,
}

/// What both services resolve from their settings before touching anything.
struct Common {
    settings: Settings,
    issuer: String,
    resource: String,
    database: String,
}

impl Common {
    fn resolve(args: &TodoCommonArgs) -> anyhow::Result<Self> {
        let settings = Settings::load(
            &args.env_files,
            &args.service.data_dir,
            idp0::devconfig::TODO0_ENV,
        )?;
        // The sample's `.env.mcp` says MCP_OKTA_ISSUER / MCP_EXPECTED_AUDIENCE; its todo0
        // `.env.app` says OKTA_ISSUER / EXPECTED_AUDIENCE for the same two things.
        let issuer = settings.require_any(
            args.issuer.as_deref(),
            "--issuer",
            &["MCP_OKTA_ISSUER", "OKTA_ISSUER"],
        )?;
        let resource = settings.require_any(
            args.resource.as_deref(),
            "--resource",
            &["MCP_EXPECTED_AUDIENCE", "EXPECTED_AUDIENCE"],
        )?;
        url::Url::parse(&resource).with_context(|| {
            format!("the expected audience {resource:?} (MCP_EXPECTED_AUDIENCE) is not a URL")
        })?;
        let database = settings
            .get(args.database.as_deref(), "TODO_DATABASE_URL")
            .unwrap_or_else(|| {
                format!(
                    "sqlite://{}",
                    args.service.data_dir.join("todo0.db").display()
                )
            });
        Ok(Self {
            settings,
            issuer,
            resource,
            database,
        })
    }

    fn port(&self, flag: Option<u16>, names: &[&str], default: u16) -> anyhow::Result<u16> {
        match flag {
            Some(port) => Ok(port),
            None => self
                .settings
                .get_any(None, names)
                .map(|p| {
                    p.parse::<u16>()
                        .with_context(|| format!("{} {p:?} is not a port", names[0]))
                })
                .transpose()
                .map(|p| p.unwrap_or(default)),
        }
    }

    /// Opens the store and discovers the token issuer's keys (warmed now, so the first request
    /// does no network I/O).
    async fn connect(
        &self,
        args: &TodoCommonArgs,
    ) -> anyhow::Result<(Arc<dyn todo0::store::TodoStore>, RemoteJwks)> {
        idp0::fsutil::create_private_dir(&args.service.data_dir)?;
        let store = todo0::store::open(&self.database)
            .await
            .context("opening the todo store")?;
        let http = protocol::discovery::http_client();
        let jwks = RemoteJwks::discover(http, &self.issuer, Duration::from_secs(30))
            .await
            .with_context(|| {
                format!(
                    "discovering the authorization server {} (is it running?)",
                    self.issuer
                )
            })?;
        if let Err(e) = jwks.refresh().await {
            tracing::warn!(error = %e, "could not fetch signing keys yet; will retry on the first request");
        }
        Ok((store, jwks))
    }

    async fn listen(&self, bind: &str, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
        tokio::net::TcpListener::bind((bind, port))
            .await
            .with_context(|| format!("cannot listen on {bind}:{port} (use --port)"))
    }
}

pub(crate) async fn run_mcp(args: TodoMcpArgs) -> anyhow::Result<()> {
    run_mcp_on(args, None).await
}

/// Serves todo0's MCP server on `listener` when `up` already bound its port.
pub(crate) async fn run_mcp_on(
    args: TodoMcpArgs,
    listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<()> {
    let common = Common::resolve(&args.common)?;
    let port = common.port(args.port, &["MCP_PORT"], 5002)?;
    let (store, jwks) = common.connect(&args.common).await?;

    let mut config = todo0::mcp::McpConfig::new(&common.issuer, &common.resource);
    config.stateless = args.stateless;
    config.allowed_origins = args.allowed_origins;
    if !args.allowed_hosts.is_empty() {
        config.allowed_hosts = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .chain(args.allowed_hosts)
            .collect();
    }
    let app = todo0::mcp::router(&config, Arc::new(jwks), store, protocol::clock::system());
    let listener = match listener {
        Some(listener) => listener,
        None => common.listen(&args.common.bind, port).await?,
    };
    let local = listener.local_addr()?;
    println!("todo0 MCP server is running");
    println!(
        "  MCP endpoint:      http://{local}/mcp   (resource {})",
        common.resource
    );
    println!("  accepts tokens of: {}", common.issuer);
    println!("  store:             {}", redact_url(&common.database));
    httpserve::serve(listener, app, crate::shutdown_signal()).await?;
    println!("todo0 MCP server stopped");
    Ok(())
}

pub(crate) async fn run_app(args: TodoAppArgs) -> anyhow::Result<()> {
    run_app_on(args, None).await
}

/// Serves todo0's web app on `listener` when `up` already bound its port.
pub(crate) async fn run_app_on(
    args: TodoAppArgs,
    listener: Option<tokio::net::TcpListener>,
) -> anyhow::Result<()> {
    let common = Common::resolve(&args.common)?;
    let port = common.port(args.port, &["TODO_APP_PORT", "PORT"], 5001)?;
    let oidc = crate::web::oidc_settings(&common.settings, &args.login)?;
    let session_key = crate::web::session_key(
        &common.settings,
        &args.common.service.data_dir,
        SESSION_KEY_FILE,
    )?;
    let (store, jwks) = common.connect(&args.common).await?;

    let login_issuer = oidc.issuer.clone();
    let redirect_uri = oidc.redirect_uri.clone();
    let config = WebConfig::new(oidc, session_key, &common.issuer, &common.resource);
    let app = todo0::web::router(config, Arc::new(jwks), store, protocol::clock::system())
        .await
        .context("setting up the login (OKTA_DOMAIN)")?;
    let listener = match listener {
        Some(listener) => listener,
        None => common.listen(&args.common.bind, port).await?,
    };
    let local = listener.local_addr()?;
    let public = url::Url::parse(&redirect_uri)?.join("/")?;
    if public.port_or_known_default() != Some(local.port()) {
        tracing::warn!(
            %redirect_uri,
            listening = %local,
            "OKTA_REDIRECT_URI points at another port than this app listens on; logins will not come back here"
        );
    }
    println!("todo0 web app is running");
    println!("  open:              {public}   (listening on {local})");
    println!("  logs in with:      {login_issuer}");
    println!("  REST API:          {public}todos   (OpenAPI: {public}openapi.json)");
    println!(
        "  accepts tokens of: {} for {}",
        common.issuer, common.resource
    );
    println!("  store:             {}", redact_url(&common.database));
    httpserve::serve(listener, app, crate::shutdown_signal()).await?;
    println!("todo0 web app stopped");
    Ok(())
}

/// A database URL without its password, for printing.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
