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
use todo0::mcp::scopes::UnknownScopePolicy;
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
    /// Which scopes allow deleting todos: `least-privilege` (`mcp:tools:delete`) or
    /// `sample-compatible` (also `mcp:tools:manage`, as in Okta's TypeScript sample).
    /// Env: TODO_SCOPE_POLICY. Default: least-privilege.
    #[arg(long)]
    scope_policy: Option<todo0::mcp::ScopePolicy>,
    #[command(flatten)]
    tls: crate::tls::ServeTls,
}

#[derive(clap::Args)]
pub(crate) struct TodoMcpArgs {
    #[command(flatten)]
    common: TodoCommonArgs,
    /// Port to listen on (0 picks a free one). Env: MCP_PORT.
    #[arg(long)]
    port: Option<u16>,
    /// Serve without MCP sessions, for several replicas behind a load balancer: no request
    /// depends on anything an earlier one left in a replica's memory, so any request may land on
    /// any replica (the todos are in the shared --database). Each request is checked on its own
    /// exactly as with sessions: the token (signature, issuer, audience, expiry, revocation), the
    /// tool's scope, and whose todos from the token. Clients see no `Mcp-Session-Id`; answers are
    /// `application/json`; GET (a standalone SSE stream) and DELETE (ending a session) are
    /// answered `405 Method Not Allowed` with `Allow: POST`, as the Streamable HTTP transport
    /// allows. The session limits below do not apply. Without it, replicas need a balancer that
    /// sends each client back to the same replica. Env: MCP_STATELESS=true (or 1 / yes / on).
    #[arg(long)]
    stateless: bool,
    /// Extra accepted `Host` values (DNS-rebinding protection; loopback is always accepted).
    #[arg(long = "allowed-host")]
    allowed_hosts: Vec<String>,
    /// Accepted browser `Origin`s (requests without Origin always pass).
    #[arg(long = "allowed-origin")]
    allowed_origins: Vec<String>,
    /// This server's client at the authorization server, for introspecting tokens (revocation
    /// checks). Env: OKTA_CLIENT_ID; its secret only ever from OKTA_CLIENT_SECRET (environment or
    /// env file), never a flag. Without both, revoked tokens are accepted until they expire.
    #[arg(long)]
    client_id: Option<String>,
    /// How often tokens used since the last check are introspected, e.g. `15s`, `500ms`.
    /// Env: MCP_REVOCATION_CHECK_INTERVAL. Default: 15s.
    #[arg(long, value_parser = parse_duration)]
    revocation_check_interval: Option<Duration>,
    /// A session with no request for this long ends, e.g. `30m`. Env: MCP_SESSION_IDLE_TIMEOUT.
    /// Default: 30m.
    #[arg(long, value_parser = parse_duration)]
    session_idle_timeout: Option<Duration>,
    /// Open MCP sessions one person may hold. Env: MCP_MAX_SESSIONS_PER_USER. Default: 64.
    #[arg(long)]
    max_sessions_per_user: Option<usize>,
    /// Open MCP sessions in all. Env: MCP_MAX_SESSIONS. Default: 10000.
    #[arg(long)]
    max_sessions: Option<usize>,
}

/// `true`/`1`/`yes`/`on` or `false`/`0`/`no`/`off`, in any case; empty is `false`.
fn parse_switch(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(format!(
            "{text:?} is neither true nor false (1/0, yes/no and on/off work too)"
        )),
    }
}

/// `250ms`, `15s`, `30m`, `1h`, or a plain number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 15s, 30m or 1h"))?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        _ => return Err(format!("{text:?}: the unit must be ms, s, m or h")),
    };
    if duration.is_zero() {
        return Err("the duration must be more than zero".into());
    }
    Ok(duration)
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
    scope_policy: todo0::mcp::ScopePolicy,
}

impl Common {
    fn resolve(args: &TodoCommonArgs) -> anyhow::Result<Self> {
        let settings =
            Settings::load(&args.env_files, &args.service.data_dir, devstack::TODO0_ENV)?;
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
        let scope_policy = setting(
            &settings,
            args.scope_policy,
            "TODO_SCOPE_POLICY",
            |text: &str| text.parse().map_err(|e: UnknownScopePolicy| e.to_string()),
        )?
        .unwrap_or_default();
        Ok(Self {
            settings,
            issuer,
            resource,
            database,
            scope_policy,
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
        let store = todo0::store::open(&self.database).await.with_context(|| {
            format!(
                "opening the todo store {} (check --database / TODO_DATABASE_URL)",
                dbconn::redact_url(&self.database)
            )
        })?;
        let http = protocol::discovery::http_client().context("building the HTTP client")?;
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
    run_mcp_on(args, None, crate::shutdown_signal()).await
}

/// Serves todo0's MCP server on `listener` when `up` already bound its port, until `shutdown`.
pub(crate) async fn run_mcp_on(
    args: TodoMcpArgs,
    listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let common = Common::resolve(&args.common)?;
    let port = common.port(args.port, &["MCP_PORT"], 5002)?;
    let stateless = args.stateless
        || setting(&common.settings, None, "MCP_STATELESS", parse_switch)?.unwrap_or(false);
    let (store, jwks) = common.connect(&args.common).await?;

    let mut config = todo0::mcp::McpConfig::new(&common.issuer, &common.resource);
    config.sessions = session_limits(&common.settings, &args)?;
    config.revocation = revocation(&common, &args).await?;
    config.stateless = stateless;
    config.scope_policy = common.scope_policy;
    config.allowed_origins = args.allowed_origins;
    if !args.allowed_hosts.is_empty() {
        config.allowed_hosts = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(str::to_owned)
            .chain(args.allowed_hosts)
            .collect();
    }
    let checks_revocation = config.revocation.as_ref().map(|r| r.interval);
    let app = todo0::mcp::router(&config, Arc::new(jwks), store, protocol::clock::system());
    let listener = match listener {
        Some(listener) => listener,
        None => common.listen(&args.common.bind, port).await?,
    };
    let tls = &args.common.tls;
    let resource = url::Url::parse(&common.resource)
        .with_context(|| format!("the resource {:?} is not a URL", common.resource))?;
    crate::tls::check_public_url(tls, &resource, "the resource (MCP_EXPECTED_AUDIENCE)")?;
    let listener = tls.listener(&args.common.service.data_dir, listener)?;
    let local = listener.local_addr()?;
    println!("todo0 MCP server is running");
    println!(
        "  MCP endpoint:      {}://{local}/mcp   (resource {})",
        tls.scheme(),
        common.resource
    );
    println!("  accepts tokens of: {}", common.issuer);
    match checks_revocation {
        Some(interval) => println!(
            "  revoked tokens:    refused within {} of their next use (introspection)",
            show_duration(interval)
        ),
        None => println!(
            "  revoked tokens:    NOT checked (no OKTA_CLIENT_ID/OKTA_CLIENT_SECRET): accepted until they expire"
        ),
    }
    if stateless {
        println!("  sessions:          none (stateless: any replica may answer any request)");
    }
    println!(
        "  store:             {}",
        dbconn::redact_url(&common.database)
    );
    httpserve::serve(listener, app, shutdown).await?;
    println!("todo0 MCP server stopped");
    Ok(())
}

fn show_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

fn setting<T>(
    settings: &Settings,
    flag: Option<T>,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> anyhow::Result<Option<T>> {
    match flag {
        Some(value) => Ok(Some(value)),
        None => settings
            .get(None, name)
            .map(|v| parse(&v).map_err(|e| anyhow::anyhow!("{name}: {e}")))
            .transpose(),
    }
}

fn session_limits(
    settings: &Settings,
    args: &TodoMcpArgs,
) -> anyhow::Result<todo0::mcp::SessionLimits> {
    let count = |text: &str| {
        text.parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{text:?} is not a positive number"))
    };
    let defaults = todo0::mcp::SessionLimits::default();
    Ok(todo0::mcp::SessionLimits {
        idle: setting(
            settings,
            args.session_idle_timeout,
            "MCP_SESSION_IDLE_TIMEOUT",
            parse_duration,
        )?
        .unwrap_or(defaults.idle),
        per_owner: setting(
            settings,
            args.max_sessions_per_user,
            "MCP_MAX_SESSIONS_PER_USER",
            count,
        )?
        .unwrap_or(defaults.per_owner),
        total: setting(settings, args.max_sessions, "MCP_MAX_SESSIONS", count)?
            .unwrap_or(defaults.total),
        park_after: defaults.park_after,
    })
}

/// The revocation checks, when this server has client credentials: the introspection endpoint
/// from the authorization server's metadata (RFC 8414), which must exist then.
async fn revocation(
    common: &Common,
    args: &TodoMcpArgs,
) -> anyhow::Result<Option<todo0::mcp::RevocationConfig>> {
    let settings = &common.settings;
    let client_id = settings.get(args.client_id.as_deref(), "OKTA_CLIENT_ID");
    let secret = settings.get(None, "OKTA_CLIENT_SECRET");
    let (client_id, secret) = match (client_id, secret) {
        (Some(id), Some(secret)) => (id, secret),
        (None, None) => return Ok(None),
        (Some(_), None) => anyhow::bail!(
            "OKTA_CLIENT_ID is set but OKTA_CLIENT_SECRET is not (set both to check revoked tokens, or neither)"
        ),
        (None, Some(_)) => anyhow::bail!(
            "OKTA_CLIENT_SECRET is set but OKTA_CLIENT_ID is not (set both to check revoked tokens, or neither)"
        ),
    };
    let endpoint = introspection_endpoint(common).await?.with_context(|| {
        format!(
            "{} publishes no introspection_endpoint, so revoked tokens cannot be checked",
            common.issuer
        )
    })?;
    Ok(Some(introspection(
        settings,
        endpoint,
        client_id,
        secrecy::SecretString::from(secret),
        args.revocation_check_interval,
    )?))
}

async fn introspection_endpoint(common: &Common) -> anyhow::Result<Option<String>> {
    let http = protocol::discovery::http_client().context("building the HTTP client")?;
    let metadata = protocol::discovery::discover(&http, &common.issuer)
        .await
        .with_context(|| format!("discovering the authorization server {}", common.issuer))?;
    Ok(metadata.introspection_endpoint)
}

fn introspection(
    settings: &Settings,
    endpoint: String,
    client_id: String,
    secret: secrecy::SecretString,
    interval: Option<Duration>,
) -> anyhow::Result<todo0::mcp::RevocationConfig> {
    let mut config = todo0::mcp::RevocationConfig::new(endpoint, client_id, secret)
        .context("building the introspection HTTP client")?;
    if let Some(interval) = setting(
        settings,
        interval,
        "MCP_REVOCATION_CHECK_INTERVAL",
        parse_duration,
    )? {
        config.interval = interval;
    }
    Ok(config)
}

pub(crate) async fn run_app(args: TodoAppArgs) -> anyhow::Result<()> {
    run_app_on(args, None, crate::shutdown_signal()).await
}

/// Serves todo0's web app on `listener` when `up` already bound its port, until `shutdown`.
pub(crate) async fn run_app_on(
    args: TodoAppArgs,
    listener: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
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
    let revocation = match introspection_endpoint(&common).await? {
        Some(endpoint) => Some(introspection(
            &common.settings,
            endpoint,
            oidc.client_id.clone(),
            oidc.client_secret.clone(),
            None,
        )?),
        None => {
            tracing::warn!(issuer = %common.issuer, "no introspection_endpoint: revoked access tokens are accepted by the REST API until they expire");
            None
        }
    };
    let mut config = WebConfig::new(oidc, session_key, &common.issuer, &common.resource);
    config.revocation = revocation;
    config.scope_policy = common.scope_policy;
    let app = todo0::web::router(config, Arc::new(jwks), store, protocol::clock::system())
        .await
        .context("setting up the login (OKTA_DOMAIN)")?;
    let listener = match listener {
        Some(listener) => listener,
        None => common.listen(&args.common.bind, port).await?,
    };
    let listener = args
        .common
        .tls
        .listener(&args.common.service.data_dir, listener)?;
    let local = listener.local_addr()?;
    let public = url::Url::parse(&redirect_uri)?.join("/")?;
    crate::tls::check_public_url(&args.common.tls, &public, "OKTA_REDIRECT_URI")?;
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
    println!(
        "  store:             {}",
        dbconn::redact_url(&common.database)
    );
    httpserve::serve(listener, app, shutdown).await?;
    println!("todo0 web app stopped");
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("15s").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("15").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 days").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn switches_read_the_usual_spellings_and_refuse_others() {
        for on in ["true", "1", "yes", "on", "TRUE", " On "] {
            assert_eq!(parse_switch(on), Ok(true), "{on}");
        }
        for off in ["false", "0", "no", "off", "False", ""] {
            assert_eq!(parse_switch(off), Ok(false), "{off}");
        }
        let error = parse_switch("stateless").unwrap_err();
        assert!(error.contains("neither true nor false"), "{error}");
    }

    #[derive(clap::Parser)]
    struct McpCommand {
        #[command(flatten)]
        args: TodoMcpArgs,
    }

    #[test]
    fn the_scope_policy_flag_takes_the_two_policies_and_names_them_when_wrong() {
        use clap::Parser;
        use todo0::mcp::ScopePolicy;
        let parsed =
            McpCommand::try_parse_from(["todo-mcp", "--scope-policy", "sample-compatible"])
                .unwrap();
        assert_eq!(
            parsed.args.common.scope_policy,
            Some(ScopePolicy::SampleCompatible)
        );
        let parsed = McpCommand::try_parse_from(["todo-mcp"]).unwrap();
        assert_eq!(parsed.args.common.scope_policy, None, "default comes later");
        let error = McpCommand::try_parse_from(["todo-mcp", "--scope-policy", "manage"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("least-privilege") && error.contains("sample-compatible"),
            "{error}"
        );
    }
}
