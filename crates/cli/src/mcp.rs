//! `secure-agent mcp tools|call`: a command-line client for any protected MCP server
//! (Streamable HTTP), authorized per the MCP authorization spec (2025-11-25) with Cross-App
//! Access (ARCHITECTURE §5.3, §5.5):
//!
//! 1. `initialize` without a token; the `401` challenge points to the protected resource
//!    metadata (RFC 9728), whose `resource` must be this server and whose first authorization
//!    server is discovered (RFC 8414);
//! 2. the user's ID token becomes an ID-JAG at the IdP and an access token at that authorization
//!    server, for the challenge's scope only (least privilege);
//! 3. rmcp connects with the token and lists or calls tools; a `403 insufficient_scope` is met by
//!    requesting the union of the granted and the challenged scopes (a new ID-JAG each time, at
//!    most two step-ups per command, as [`protocol::step_up`] decides) and retrying, with
//!    `stepped up to: <scopes>` on stderr.
//!
//! The ID token is `--id-token`, else the one `secure-agent login` cached for the issuer.
//! `--bearer` skips all of that and sends the given token. Tokens are never printed.

mod credentials;
mod discovery;
mod session;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use protocol::Scopes;
use protocol::step_up::{GiveUp, StepUp};
use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use serde_json::{Value, json};

use self::credentials::{AuthArgs, Credentials, TokenSource};
use self::discovery::Probe;
use self::session::{Failure, Op, Outcome};
use crate::ServiceArgs;
use crate::settings::Settings;

#[derive(Subcommand)]
pub(crate) enum McpCommand {
    /// List the server's tools (name, description, required scopes) as JSON.
    Tools(ToolsArgs),
    /// Call a tool and print its result (structuredContent, else content) as JSON.
    Call(CallArgs),
}

#[derive(clap::Args)]
pub(crate) struct ToolsArgs {
    #[command(flatten)]
    connect: ConnectArgs,
}

#[derive(clap::Args)]
pub(crate) struct CallArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// The tool's name.
    tool: String,
    /// The arguments, a JSON object.
    #[arg(default_value = "{}")]
    arguments: String,
}

#[derive(clap::Args)]
pub(crate) struct ConnectArgs {
    #[command(flatten)]
    service: ServiceArgs,
    /// The MCP endpoint (Streamable HTTP), e.g. http://localhost:5002/mcp. Env: MCP_SERVER_URL.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// dotenv files with the sample's variable names (repeatable). Default: <data-dir>/agent0.env.
    #[arg(long = "env-file")]
    env_files: Vec<PathBuf>,
    /// Give up on one connection attempt after this many seconds.
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    timeout: u64,
    #[command(flatten)]
    auth: AuthArgs,
}

pub(crate) async fn run(command: McpCommand) -> anyhow::Result<()> {
    match command {
        McpCommand::Tools(args) => {
            let Outcome::Tools(tools) = execute(&args.connect, Op::ListTools).await? else {
                bail!("internal error: tools/list returned something else");
            };
            println!("{}", serde_json::to_string_pretty(&tool_list(&tools))?);
            Ok(())
        }
        McpCommand::Call(args) => {
            let arguments = match serde_json::from_str::<Value>(&args.arguments)
                .context("the tool arguments are not JSON")?
            {
                Value::Object(arguments) => arguments,
                _ => bail!("the tool arguments must be a JSON object"),
            };
            let params = CallToolRequestParams::new(args.tool.clone()).with_arguments(arguments);
            let Outcome::Called(result) =
                execute(&args.connect, Op::Call(Box::new(params))).await?
            else {
                bail!("internal error: tools/call returned something else");
            };
            if result.is_error == Some(true) {
                bail!("tool {} failed: {}", args.tool, error_text(&result));
            }
            let output = match result.structured_content {
                Some(structured) => structured,
                None => serde_json::to_value(&result.content)?,
            };
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
    }
}

/// Resolves settings and credentials, then runs `op` with whatever authorization it takes.
async fn execute(args: &ConnectArgs, op: Op) -> anyhow::Result<Outcome> {
    let settings = Settings::load(
        &args.env_files,
        &args.service.data_dir,
        devstack::AGENT0_ENV,
    )?;
    let server = settings.require(args.server.as_deref(), "--server", "MCP_SERVER_URL")?;
    let server_url =
        url::Url::parse(&server).with_context(|| format!("--server {server:?} is not a URL"))?;
    if !matches!(server_url.scheme(), "http" | "https") {
        bail!("--server must be an http or https URL");
    }
    let timeout = Duration::from_secs(args.timeout.max(1));
    let credentials = args.auth.credentials(&settings)?;
    if let Credentials::Bearer(token) = credentials {
        return match session::attempt(&server, Some(&token), &op, timeout).await {
            Ok(outcome) => Ok(outcome),
            Err(Failure::InsufficientScope { scope, description }) => bail!(
                "{server} refused the --bearer token: insufficient scope; the request needs {} \
                 ({description}). A fixed bearer token cannot be stepped up: pass one with those \
                 scopes, or use Cross-App Access (--id-token) so the client can request them",
                scope.map_or_else(|| "a scope it did not name".to_owned(), |s| s.to_string())
            ),
            Err(Failure::Unauthorized { description }) => {
                bail!("{server} refused the --bearer token ({description})")
            }
            Err(Failure::Other(e)) => Err(e),
        };
    }

    let http = protocol::discovery::http_client().context("building the HTTP client")?;
    let protection = match discovery::probe(&http, &server_url).await? {
        Probe::Open => {
            tracing::info!("{server} asks for no authorization; connecting without a token");
            return session::attempt(&server, None, &op, timeout)
                .await
                .map_err(|failure| match failure {
                    Failure::Other(e) => e,
                    Failure::InsufficientScope { description, .. }
                    | Failure::Unauthorized { description } => anyhow::anyhow!(
                        "{server} answered initialize without a token but then refused: {description}"
                    ),
                });
        }
        Probe::Protected(protection) => *protection,
    };
    let id_token = match credentials {
        Credentials::IdToken(id_token) => id_token,
        // No token given: the one `secure-agent login` cached for the issuer.
        Credentials::None | Credentials::Bearer(_) => args
            .auth
            .cached_id_token(&settings, &args.service.data_dir)
            .await
            .with_context(|| {
                format!(
                    "{server} requires authorization (scope {:?}); --bearer (or \
                     MCP_BEARER_TOKEN) sends an access token as is",
                    protection.scope.to_string()
                )
            })?,
    };
    let initial = protection.scope.union(&args.auth.extra_scopes()?);
    let source = args
        .auth
        .token_source(&settings, &http, id_token, protection)
        .await?;
    with_step_up(&server, &source, initial, &op, timeout).await
}

/// Runs `op` with tokens from `source`, stepping up on `insufficient_scope`.
async fn with_step_up(
    server: &str,
    source: &TokenSource,
    initial: Scopes,
    op: &Op,
    timeout: Duration,
) -> anyhow::Result<Outcome> {
    let (mut token, mut granted) = source.mint(&initial).await?;
    let mut step_up = StepUp::new();
    loop {
        let (needed, description) = match session::attempt(server, Some(&token), op, timeout).await
        {
            Ok(outcome) => return Ok(outcome),
            Err(Failure::Other(e)) => return Err(e),
            Err(Failure::Unauthorized { description }) => bail!(
                "{server} refused the access token from {} ({description})",
                source.protection.as_issuer
            ),
            Err(Failure::InsufficientScope { scope, description }) => (scope, description),
        };
        let wanted = match step_up.next(&granted, needed.as_ref()) {
            Ok(wanted) => wanted,
            Err(GiveUp::NamesNoScope) => bail!(
                "{server}: insufficient scope, but the challenge names no scope ({description})"
            ),
            Err(GiveUp::AlreadyGranted { needed }) => bail!(
                "{server} wants {needed} although the token has {granted} ({description}); \
                 not stepping up"
            ),
            Err(GiveUp::LimitReached { needed, limit }) => {
                bail!("{server} still wants {needed} after {limit} step-ups (token has {granted})")
            }
        };
        (token, granted) = source
            .mint(&wanted)
            .await
            .with_context(|| format!("stepping up to {wanted}"))?;
        eprintln!("stepped up to: {granted}");
        if let Some(needed) = needed.filter(|needed| !granted.contains_all(needed)) {
            bail!(
                "the authorization server {} granted only {granted}; the request needs {needed}",
                source.protection.as_issuer
            );
        }
    }
}

/// `tools/list` as printed: name, title, description and `_meta.requiredScopes` when present.
fn tool_list(tools: &[Tool]) -> Value {
    let list: Vec<Value> = tools
        .iter()
        .map(|tool| {
            let mut entry = json!({"name": tool.name, "description": tool.description});
            if let Some(title) = &tool.title {
                entry["title"] = title.clone().into();
            }
            if let Some(scopes) = tool.meta.as_ref().and_then(|m| m.get("requiredScopes")) {
                entry["requiredScopes"] = scopes.clone();
            }
            entry
        })
        .collect();
    Value::Array(list)
}

/// The text of an error result's content (other content as JSON).
fn error_text(result: &CallToolResult) -> String {
    let parts: Vec<String> = result
        .content
        .iter()
        .filter_map(|block| serde_json::to_value(block).ok())
        .map(|block| match block.get("text").and_then(Value::as_str) {
            Some(text) => text.to_owned(),
            None => block.to_string(),
        })
        .collect();
    if parts.is_empty() {
        "(no error text)".to_owned()
    } else {
        parts.join("\n")
    }
}
