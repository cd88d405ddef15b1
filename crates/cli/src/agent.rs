//! `secure-agent agent`: agent0, the agent web app (ARCHITECTURE §1, §7). Settings use the
//! sample's names (flag > environment > `--env-file`s > `<data-dir>/agent0.env`, which idp0
//! writes): the login client (`OKTA_*`), the agent identity (`AI_AGENT_ID` + private key file +
//! kid, for `private_key_jwt`), the todo0 MCP server and its authorization server (`MCP_*`),
//! `DISABLED_CONNECTIONS`, and the model (`ANTHROPIC_*`, `AWS_*` + `BEDROCK_MODEL_ID`,
//! `OPENAI_*`, else the offline model). More MCP servers come from `--config` (TOML).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use agent0::connections::parse_disabled;
use agent0::conversations::SqliteConversations;
use agent0::mcp::{McpAuth, McpServer};
use agent0::tokens::IdJagTarget;
use anyhow::{Context, bail};
use protocol::assertion::ClientAssertionSigner;
use protocol::token_client::ClientAuth;
use protocol::{Clock, Scopes, SystemClock};
use serde::Deserialize;

use crate::ServiceArgs;
use crate::settings::Settings;

/// The cookie key file generated in the data directory when `SESSION_SECRET` is not set.
const SESSION_KEY_FILE: &str = "agent0-session.key";
/// What the agent asks for first (least privilege).
const DEFAULT_SCOPES: &str = "mcp:connect mcp:tools:read";

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
    /// again when theirs expires. Env: AGENT_NO_REFRESH.
    #[arg(long)]
    no_refresh: bool,
    #[command(flatten)]
    tls: crate::tls::ServeTls,
}

/// `--config`: more MCP servers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    mcp_servers: Vec<ServerEntry>,
}

/// One `[[mcp_servers]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerEntry {
    name: String,
    label: Option<String>,
    url: String,
    /// `id-jag` (default) or `none`.
    #[serde(default = "default_auth")]
    auth: String,
    resource: Option<String>,
    authorization_server: Option<String>,
    token_endpoint: Option<String>,
    scopes: Option<String>,
    /// Tools of this server that run without the person's confirmation.
    #[serde(default)]
    auto_approve: Vec<String>,
    /// Whether tool results that refuse the token (as Okta's TypeScript sample's MCP server
    /// answers) step up like an HTTP 403. Default: off (on for the `MCP_SERVER_URL` connection).
    #[serde(default)]
    in_band_refusals: bool,
}

fn default_auth() -> String {
    "id-jag".into()
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
        idp0::devconfig::AGENT0_ENV,
    )?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let oidc = crate::web::oidc_settings(&settings, &args.login)?;
    let session_key = crate::web::session_key(&settings, &args.service.data_dir, SESSION_KEY_FILE)?;
    let agent_id = settings.require(None, "AI_AGENT_ID", "AI_AGENT_ID")?;
    let agent_auth = agent_auth(&settings, &agent_id, clock.clone())?;
    let disabled = match settings.get(None, "DISABLED_CONNECTIONS") {
        Some(value) => {
            parse_disabled(&value).map_err(|e| anyhow::anyhow!("DISABLED_CONNECTIONS: {e}"))?
        }
        None => BTreeSet::new(),
    };
    let (authorization_server, mut servers) = todo0_server(&settings, args)?;
    if let Some(path) = &args.config {
        servers.extend(file_servers(path)?);
    }
    if let Some(list) = settings.get(
        args.auto_approve_tools.as_deref(),
        "AGENT_AUTO_APPROVE_TOOLS",
    ) {
        apply_auto_approve(&mut servers, &list)?;
    }
    let mut names = BTreeSet::new();
    for server in &servers {
        if !names.insert(server.name.clone()) {
            bail!(
                "two MCP servers are named {:?}; names must be unique",
                server.name
            );
        }
    }
    let model = agent0::llm::select::from_settings(&|name| settings.get(None, name), clock.clone())
        .map_err(|e| anyhow::anyhow!(e))?;
    let max_steps = match args.max_steps {
        Some(steps) => steps,
        None => settings
            .get(None, "AGENT_MAX_STEPS")
            .map(|s| {
                s.parse::<usize>()
                    .with_context(|| format!("AGENT_MAX_STEPS {s:?} is not a number"))
            })
            .transpose()?
            .unwrap_or(agent0::agent::DEFAULT_MAX_STEPS),
    };
    if max_steps == 0 {
        bail!("--max-steps must be at least 1");
    }
    let port = match args.port {
        Some(port) => port,
        None => settings
            .get(None, "PORT")
            .map(|p| {
                p.parse::<u16>()
                    .with_context(|| format!("PORT {p:?} is not a port"))
            })
            .transpose()?
            .unwrap_or(3000),
    };
    idp0::fsutil::create_private_dir(&args.service.data_dir)?;
    let db = args.service.data_dir.join("agent0.db");
    let store = SqliteConversations::open(&db)
        .await
        .with_context(|| format!("opening {}", db.display()))?;
    let no_refresh = args.no_refresh || settings.get(None, "AGENT_NO_REFRESH").is_some();
    let redirect_uri = oidc.redirect_uri.clone();
    let model_info = model.info();
    let server_lines: Vec<String> = servers
        .iter()
        .map(|s| format!("  MCP server:      {} ({})", s.url, s.name))
        .collect();
    let config = agent0::AgentConfig {
        oidc,
        offline_access: !no_refresh,
        session_key,
        agent_id: agent_id.clone(),
        agent_auth,
        authorization_server,
        mcp_servers: servers,
        disabled,
        model,
        store: Arc::new(store),
        max_steps,
        clock,
    };
    let state = agent0::AppState::new(config).await?;
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
        "agent0 listening on {bound}\n  open:            {public}\n  agent:           {agent_id}\n  model:           {} · {}\n{}",
        model_info.provider,
        model_info.model,
        server_lines.join("\n")
    );
    Ok((state, listener, banner))
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

/// The todo0 MCP server from the sample's `MCP_*` settings (none when `MCP_SERVER_URL` is unset).
#[allow(clippy::type_complexity)]
fn todo0_server(
    settings: &Settings,
    args: &AgentArgs,
) -> anyhow::Result<(Option<(String, String)>, Vec<McpServer>)> {
    let Some(url) = settings.get(args.mcp_server_url.as_deref(), "MCP_SERVER_URL") else {
        return Ok((None, Vec::new()));
    };
    let entry = ServerEntry {
        name: "todo0".into(),
        label: Some("Todo0 MCP Server".into()),
        resource: settings.get(None, "MCP_RESOURCE_INDICATOR"),
        authorization_server: settings.get(None, "MCP_AUTHORIZATION_SERVER"),
        token_endpoint: settings.get(None, "MCP_AUTHORIZATION_SERVER_TOKEN_ENDPOINT"),
        scopes: settings.get(None, "AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST"),
        url,
        auth: "id-jag".into(),
        auto_approve: Vec::new(),
        // The connection the sample's env files describe: the sample's MCP server refuses a
        // missing scope inside the tool result.
        in_band_refusals: true,
    };
    let server = server_from(entry, "MCP_")?;
    let authorization_server = match &server.auth {
        McpAuth::IdJag { target, .. } => {
            Some((target.as_issuer.clone(), target.as_token_endpoint.clone()))
        }
        McpAuth::None => None,
    };
    Ok((authorization_server, vec![server]))
}

fn file_servers(path: &Path) -> anyhow::Result<Vec<McpServer>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: FileConfig = toml::from_str(&text)
        .with_context(|| format!("{} is not a valid agent0 config", path.display()))?;
    config
        .mcp_servers
        .into_iter()
        .map(|entry| server_from(entry, "[[mcp_servers]]"))
        .collect()
}

/// Adds `list` (`<connection>:<tool>`, comma-separated) to the servers' `auto_approve`.
fn apply_auto_approve(servers: &mut [McpServer], list: &str) -> anyhow::Result<()> {
    for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((connection, tool)) = item
            .split_once(':')
            .filter(|(c, t)| !c.is_empty() && !t.is_empty())
        else {
            bail!(
                "AGENT_AUTO_APPROVE_TOOLS: {item:?} is not <connection>:<tool>, e.g. todo0:toggle-todo"
            );
        };
        let Some(server) = servers.iter_mut().find(|s| s.name == connection) else {
            bail!(
                "AGENT_AUTO_APPROVE_TOOLS: {item:?} names no configured MCP server {connection:?}"
            );
        };
        if !server.auto_approve.iter().any(|t| t == tool) {
            server.auto_approve.push(tool.to_owned());
        }
    }
    Ok(())
}

fn server_from(entry: ServerEntry, origin: &str) -> anyhow::Result<McpServer> {
    let name = entry.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        bail!("{origin}: MCP server name {name:?} must be non-empty ASCII letters, digits, - or _");
    }
    let url = url::Url::parse(&entry.url).with_context(|| {
        format!(
            "{origin}: MCP server {name}: url {:?} is not a URL",
            entry.url
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!("{origin}: MCP server {name}: url must be http or https");
    }
    let auth = match entry.auth.as_str() {
        "none" => McpAuth::None,
        "id-jag" => {
            let as_issuer = entry.authorization_server.with_context(|| {
                format!("{origin}: MCP server {name} uses id-jag and needs its authorization server issuer (MCP_AUTHORIZATION_SERVER / authorization_server)")
            })?;
            let as_token_endpoint = entry
                .token_endpoint
                .unwrap_or_else(|| format!("{}/v1/token", as_issuer.trim_end_matches('/')));
            let scopes = entry.scopes.unwrap_or_else(|| DEFAULT_SCOPES.to_owned());
            McpAuth::IdJag {
                target: IdJagTarget {
                    connection: name.clone(),
                    as_issuer,
                    as_token_endpoint,
                    resource: entry.resource.unwrap_or_else(|| url.to_string()),
                },
                initial_scopes: Scopes::parse(&scopes)
                    .map_err(|e| anyhow::anyhow!("{origin}: MCP server {name}: scopes: {e}"))?,
            }
        }
        other => bail!("{origin}: MCP server {name}: auth {other:?} is not id-jag or none"),
    };
    Ok(McpServer {
        label: entry.label.unwrap_or_else(|| name.clone()),
        name,
        url: entry.url,
        auth,
        auto_approve: entry.auto_approve,
        in_band_refusals: entry.in_band_refusals,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Vec<McpServer>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent0.toml");
        std::fs::write(&path, text).unwrap();
        file_servers(&path)
    }

    #[test]
    fn the_example_config_loads() {
        let example = include_str!("../../../config/agent0.example.toml");
        let servers = parse(example).unwrap();
        assert_eq!(servers.len(), 1);
        let McpAuth::IdJag {
            target,
            initial_scopes,
        } = &servers[0].auth
        else {
            panic!("id-jag expected");
        };
        assert_eq!(target.connection, "notes");
        assert_eq!(target.resource, "https://notes.example.com/mcp");
        assert_eq!(initial_scopes.to_string(), "mcp:connect mcp:tools:read");
    }

    #[test]
    fn bad_server_entries_name_the_problem() {
        for (text, expected) in [
            (
                "[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\ncolour = 1\n",
                "unknown field",
            ),
            (
                "[[mcp_servers]]\nname = \"a b\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n",
                "must be non-empty ASCII",
            ),
            (
                "[[mcp_servers]]\nname = \"x\"\nurl = \"ftp://h/mcp\"\nauth = \"none\"\n",
                "http or https",
            ),
            (
                "[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\n",
                "authorization server issuer",
            ),
            (
                "[[mcp_servers]]\nname = \"x\"\nurl = \"http://h/mcp\"\nauth = \"magic\"\n",
                "not id-jag or none",
            ),
        ] {
            let error = format!("{:#}", parse(text).unwrap_err());
            assert!(error.contains(expected), "{text}: {error}");
        }
        let open =
            parse("[[mcp_servers]]\nname = \"open\"\nurl = \"http://h/mcp\"\nauth = \"none\"\n")
                .unwrap();
        assert!(matches!(open[0].auth, McpAuth::None));
        assert_eq!(open[0].label, "open");
    }

    #[test]
    fn auto_approve_comes_from_the_file_and_the_setting() {
        let mut servers = parse(
            "[[mcp_servers]]\nname = \"open\"\nurl = \"http://h/mcp\"\nauth = \"none\"\nauto_approve = [\"get-notes\"]\n",
        )
        .unwrap();
        assert_eq!(servers[0].auto_approve, ["get-notes"]);
        apply_auto_approve(&mut servers, "open:delete-note, open:get-notes").unwrap();
        assert_eq!(servers[0].auto_approve, ["get-notes", "delete-note"]);
        for (list, expected) in [
            ("todo0:delete-todo", "names no configured MCP server"),
            ("delete-todo", "is not <connection>:<tool>"),
            ("open:", "is not <connection>:<tool>"),
        ] {
            let error = apply_auto_approve(&mut servers, list)
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{list}: {error}");
        }
    }
}
