//! `secure-agent todo-mcp`: todo0's MCP server. Settings come from flags, the environment, or
//! the `todo0.env` idp0 writes in the data directory, so `secure-agent idp --data-dir D` and
//! `secure-agent todo-mcp --data-dir D` work together with nothing else.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::verify::RemoteJwks;

use crate::ServiceArgs;
use crate::settings::Settings;

#[derive(clap::Args)]
pub(crate) struct TodoMcpArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// Port to listen on (0 picks a free one). Env: MCP_PORT.
    #[arg(long)]
    port: Option<u16>,
    /// Address to bind.
    #[arg(long, env = "TODO_BIND", default_value = "127.0.0.1")]
    bind: String,
    /// dotenv files with the sample's variable names (repeatable). Default: <data-dir>/todo0.env.
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// The authorization server issuer whose tokens are accepted. Env: MCP_OKTA_ISSUER.
    #[arg(long)]
    issuer: Option<String>,
    /// This server's resource identifier (tokens' `aud`). Env: MCP_EXPECTED_AUDIENCE.
    #[arg(long)]
    resource: Option<String>,
    /// `sqlite://PATH` or `postgres://…`. Env: TODO_DATABASE_URL. Default: <data-dir>/todo0.db.
    #[arg(long)]
    database: Option<String>,
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

pub(crate) async fn run_mcp(args: TodoMcpArgs) -> anyhow::Result<()> {
    let settings = Settings::load(
        &args.env_files,
        &args.service.data_dir,
        idp0::devconfig::TODO0_ENV,
    )?;
    let issuer = settings.require(args.issuer.as_deref(), "--issuer", "MCP_OKTA_ISSUER")?;
    let resource = settings.require(
        args.resource.as_deref(),
        "--resource",
        "MCP_EXPECTED_AUDIENCE",
    )?;
    url::Url::parse(&resource)
        .with_context(|| format!("MCP_EXPECTED_AUDIENCE {resource:?} is not a URL"))?;
    let port = match args.port {
        Some(port) => port,
        None => settings
            .get(None, "MCP_PORT")
            .map(|p| {
                p.parse::<u16>()
                    .with_context(|| format!("MCP_PORT {p:?} is not a port"))
            })
            .transpose()?
            .unwrap_or(5002),
    };
    idp0::fsutil::create_private_dir(&args.service.data_dir)?;
    let database = settings
        .get(args.database.as_deref(), "TODO_DATABASE_URL")
        .unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                args.service.data_dir.join("todo0.db").display()
            )
        });
    let store = todo0::store::open(&database)
        .await
        .context("opening the todo store")?;

    let http = protocol::discovery::http_client();
    let jwks = RemoteJwks::discover(http, &issuer, Duration::from_secs(30))
        .await
        .with_context(|| {
            format!("discovering the authorization server {issuer} (is it running?)")
        })?;
    // Warm the key cache now, so the first request does no network I/O.
    if let Err(e) = jwks.refresh().await {
        tracing::warn!(error = %e, "could not fetch signing keys yet; will retry on the first request");
    }

    let mut config = todo0::mcp::McpConfig::new(&issuer, &resource);
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
    let listener = tokio::net::TcpListener::bind((args.bind.as_str(), port))
        .await
        .with_context(|| format!("cannot listen on {}:{port} (use --port)", args.bind))?;
    let local = listener.local_addr()?;
    println!("todo0 MCP server is running");
    println!("  MCP endpoint:      http://{local}/mcp   (resource {resource})");
    println!("  accepts tokens of: {issuer}");
    println!("  store:             {}", redact_url(&database));
    axum::serve(listener, app)
        .with_graceful_shutdown(crate::shutdown_signal())
        .await?;
    println!("todo0 MCP server stopped");
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
