//! The remote MCP endpoint at `/mcp` (Streamable HTTP, stateless: every POST stands alone,
//! answers are JSON), with GitHub's tool names, descriptions, annotations and input schemas
//! ([`protocol::github::MCP_TOOLS_JSON`], from the public github/github-mcp-server tool snapshots,
//! shared with agent0, which offers them before a person has a GitHub token):
//! `get_me`, `list_pull_requests`, `pull_request_read` (`method` `get` and `get_comments`; the
//! others are a tool error naming what is supported) and `add_issue_comment` (a `body`;
//! reactions are a tool error). Results are JSON text content shaped as that server's minimal
//! types (`MinimalUser`, `MinimalPullRequest`, `MinimalResponse`).
//!
//! Bearer tokens are the same `ghu_`/`gho_` access tokens as the REST API's; none or an invalid
//! one is `401` with `WWW-Authenticate: Bearer … resource_metadata="…"` (RFC 9728). Each tool
//! call counts against the token's hourly budget, as the REST calls it stands for would.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};

use crate::Github0;
use crate::api::json::timestamp;
use crate::api::rest::pull_query;
use crate::service::{Principal, ServiceError};
use crate::store::Account;
use crate::store::repos::{Pull, Repo};

/// The tool definitions, as github/github-mcp-server publishes them.
pub static TOOLS: LazyLock<Vec<Tool>> =
    LazyLock::new(|| serde_json::from_str(protocol::github::MCP_TOOLS_JSON).unwrap_or_default());

/// The well-known path of the MCP endpoint's protected resource metadata.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/mcp";

pub(crate) fn router(github0: Github0) -> Router<Github0> {
    let mut config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true);
    let mut hosts = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    if let Some(host) = github0.config().public_url.host_str() {
        hosts.push(host.to_owned());
        if let Some(port) = github0.config().public_url.port() {
            hosts.push(format!("{host}:{port}"));
        }
    }
    config = config.with_allowed_hosts(hosts);
    let tools = GithubTools {
        github0: github0.clone(),
    };
    let service = StreamableHttpService::new(
        move || Ok(tools.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let mcp = Router::new()
        .nest_service("/mcp", service)
        .layer(from_fn_with_state(github0, require_token));
    Router::new()
        .route(METADATA_PATH, get(get_metadata))
        .route("/.well-known/oauth-protected-resource", get(get_metadata))
        .merge(mcp)
}

/// RFC 9728 metadata: this resource, github0's OAuth as its authorization server.
async fn get_metadata(State(github0): State<Github0>) -> Response {
    let base = github0.config().web_base();
    axum::Json(json!({
        "resource": github0.config().mcp_url(),
        "authorization_servers": [format!("{base}/login/oauth")],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["repo", "public_repo", "read:user", "user", "read:org"],
        "resource_name": "github0 sandbox MCP server",
    }))
    .into_response()
}

/// A live access token, or `401` with the challenge.
async fn require_token(
    State(github0): State<Github0>,
    mut request: Request,
    next: Next,
) -> Response {
    let metadata = format!("{}{METADATA_PATH}", github0.config().web_base());
    let challenge = |error: Option<&str>| {
        let value = match error {
            Some(description) => format!(
                "Bearer error=\"invalid_token\", error_description=\"{description}\", resource_metadata=\"{metadata}\""
            ),
            None => format!(
                "Bearer error=\"invalid_request\", error_description=\"No access token was provided in this request\", resource_metadata=\"{metadata}\""
            ),
        };
        let mut response =
            (StatusCode::UNAUTHORIZED, "bad request: unauthorized\n").into_response();
        if let Ok(value) = HeaderValue::from_str(&value) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(token) = crate::api::bearer(request.headers()) else {
        return challenge(None);
    };
    match github0.principal(token).await {
        Ok(Some(principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(None) => challenge(Some("The access token is invalid, expired or revoked")),
        Err(e) => {
            tracing::error!(error = %e, "github0 store failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again shortly\n").into_response()
        }
    }
}

/// The tool server (one per request in stateless mode; cheap to clone).
#[derive(Clone)]
pub struct GithubTools {
    github0: Github0,
}

fn text(value: &Value) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(value.to_string())])
}

fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn required_str<'a>(args: &'a JsonObject, name: &str) -> Result<&'a str, String> {
    match args.get(name) {
        None | Some(Value::Null) => Err(format!("missing required parameter: {name}")),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_)) => Err(format!("missing required parameter: {name}")),
        Some(_) => Err(format!("parameter {name} is not of type string")),
    }
}

fn required_number(args: &JsonObject, name: &str) -> Result<i64, String> {
    match args.get(name) {
        None | Some(Value::Null) => Err(format!("missing required parameter: {name}")),
        Some(value) => value
            .as_f64()
            .filter(|n| n.fract() == 0.0 && *n >= 1.0 && *n <= 9.0e15)
            .map(|n| n as i64)
            .ok_or_else(|| format!("parameter {name} is not a valid number")),
    }
}

fn optional_str<'a>(args: &'a JsonObject, name: &str) -> Option<&'a str> {
    args.get(name).and_then(Value::as_str)
}

fn optional_number(args: &JsonObject, name: &str, default: i64, max: i64) -> i64 {
    args.get(name)
        .and_then(Value::as_f64)
        .filter(|n| n.fract() == 0.0 && *n >= 1.0)
        .map_or(default, |n| (n as i64).min(max))
}

fn minimal_user(github0: &Github0, account: &Account) -> Value {
    let web = github0.config().web_base();
    json!({
        "login": account.login,
        "id": account.id,
        "profile_url": format!("{web}/{}", account.login),
        "avatar_url": format!("{web}/avatars/u/{}?v=4", account.id),
    })
}

fn minimal_pull(github0: &Github0, repo: &Repo, p: &Pull) -> Value {
    let full_name = format!("{}/{}", repo.owner.login, repo.name);
    let mut value = json!({
        "number": p.number,
        "title": p.title,
        "body": p.body,
        "state": p.state,
        "draft": false,
        "merged": false,
        "mergeable_state": if p.state == "open" { "clean" } else { "unknown" },
        "html_url": format!("{}/{full_name}/pull/{}", github0.config().web_base(), p.number),
        "user": minimal_user(github0, &p.author),
        "head": {"ref": p.head_ref, "sha": p.head_sha, "repo": {"full_name": full_name, "description": repo.description}},
        "base": {"ref": p.base_ref, "sha": p.base_sha, "repo": {"full_name": full_name, "description": repo.description}},
        "additions": p.additions,
        "deletions": p.deletions,
        "changed_files": p.changed_files,
        "commits": p.commits,
        "comments": p.comments,
        "created_at": timestamp(p.created_at),
        "updated_at": timestamp(p.updated_at),
    });
    if let Some(closed) = p.closed_at {
        value["closed_at"] = json!(timestamp(closed));
    }
    value
}

fn failed(what: &str, error: ServiceError) -> String {
    match error {
        ServiceError::NotFound => format!("failed to {what}: 404 Not Found"),
        ServiceError::BodyMissing => format!("failed to {what}: 422 body is missing"),
        ServiceError::BodyTooLong => {
            format!(
                "failed to {what}: 422 Validation Failed: Body is too long (maximum is 65536 characters)"
            )
        }
        ServiceError::InsufficientScope => {
            format!(
                "failed to {what}: 403 Resource not accessible by integration (the token needs the repo or public_repo scope)"
            )
        }
        ServiceError::Store(e) => {
            tracing::error!(error = %e, "github0 store failed");
            format!("failed to {what}: the sandbox is unavailable; try again")
        }
    }
}

impl GithubTools {
    async fn run(
        &self,
        who: &Principal,
        name: &str,
        args: &JsonObject,
    ) -> Result<CallToolResult, String> {
        let github0 = &self.github0;
        match name {
            "get_me" => {
                let a = &who.account;
                let mut user = minimal_user(github0, a);
                user["details"] = json!({
                    "name": a.name,
                    "public_repos": 0,
                    "public_gists": 0,
                    "followers": 0,
                    "following": 0,
                    "created_at": timestamp(a.created_at),
                    "updated_at": timestamp(a.created_at),
                    "private_gists": 0,
                    "total_private_repos": 0,
                    "owned_private_repos": 0,
                });
                Ok(text(&user))
            }
            "list_pull_requests" => {
                let owner = required_str(args, "owner")?;
                let repo = required_str(args, "repo")?;
                let query = pull_query(
                    optional_str(args, "state"),
                    optional_str(args, "sort"),
                    optional_str(args, "direction"),
                    optional_number(args, "perPage", 30, 100),
                    optional_number(args, "page", 1, 100_000),
                );
                let (repo, pulls) = github0
                    .list_pulls(owner, repo, query)
                    .await
                    .map_err(|e| failed("list pull requests", e))?;
                let list: Vec<Value> = pulls
                    .iter()
                    .map(|p| minimal_pull(github0, &repo, p))
                    .collect();
                Ok(text(&Value::Array(list)))
            }
            "pull_request_read" => {
                let method = required_str(args, "method")?;
                let owner = required_str(args, "owner")?;
                let repo = required_str(args, "repo")?;
                let number = required_number(args, "pullNumber")?;
                match method {
                    "get" => {
                        let (repo, pull) = github0
                            .get_pull(owner, repo, number)
                            .await
                            .map_err(|e| failed("get pull request", e))?;
                        Ok(text(&minimal_pull(github0, &repo, &pull)))
                    }
                    "get_comments" => {
                        let (_, comments) = github0
                            .list_comments(
                                owner,
                                repo,
                                number,
                                optional_number(args, "perPage", 30, 100),
                                optional_number(args, "page", 1, 100_000),
                            )
                            .await
                            .map_err(|e| failed("get pull request comments", e))?;
                        let list: Vec<Value> = comments
                            .iter()
                            .map(|c| {
                                json!({
                                    "id": c.id,
                                    "body": c.body,
                                    "user": minimal_user(github0, &c.author),
                                    "created_at": timestamp(c.created_at),
                                    "updated_at": timestamp(c.updated_at),
                                })
                            })
                            .collect();
                        Ok(text(&Value::Array(list)))
                    }
                    other => Err(format!(
                        "unknown method: {other} (the github0 sandbox supports get and get_comments)"
                    )),
                }
            }
            "add_issue_comment" => {
                let owner = required_str(args, "owner")?;
                let repo = required_str(args, "repo")?;
                let number = required_number(args, "issue_number")?;
                if args.get("reaction").is_some_and(|r| !r.is_null()) {
                    return Err(
                        "reactions are not supported by the github0 sandbox; send a body".into(),
                    );
                }
                let body = required_str(args, "body")?;
                let (repo_row, comment) = github0
                    .add_comment(who, owner, repo, number, body)
                    .await
                    .map_err(|e| failed("create comment", e))?;
                let full_name = format!("{}/{}", repo_row.owner.login, repo_row.name);
                Ok(text(&json!({
                    "id": comment.id.to_string(),
                    "url": format!(
                        "{}/{full_name}/pull/{}#issuecomment-{}",
                        github0.config().web_base(),
                        comment.number,
                        comment.id
                    ),
                })))
            }
            other => Err(format!("unknown tool: {other}")),
        }
    }
}

impl ServerHandler for GithubTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("github-mcp-server", env!("CARGO_PKG_VERSION")))
            .with_instructions("The github0 sandbox: an offline stand-in for GitHub's MCP server with get_me, list_pull_requests, pull_request_read and add_issue_comment.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(TOOLS.clone()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        if !TOOLS.iter().any(|t| t.name == request.name) {
            return Err(ErrorData::invalid_params(
                format!("unknown tool: {}", request.name),
                None,
            ));
        }
        let who = context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .cloned()
            .ok_or_else(|| {
                ErrorData::internal_error("unauthenticated request reached a tool", None)
            })?;
        let github0 = &self.github0;
        let limit = github0.config().rate_limit_per_hour;
        match github0
            .store()
            .count_request(&who.token_hash, github0.now(), limit)
            .await
        {
            Ok(window) if window.used > i64::from(limit) => {
                return Ok(tool_error(format!(
                    "API rate limit exceeded for user ID {}: try again after the hour's window resets",
                    who.account.id
                ))
                .into());
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "github0 store failed");
                return Ok(tool_error("the sandbox is unavailable; try again").into());
            }
        }
        let args = request.arguments.unwrap_or_default();
        let result = self
            .run(&who, &request.name, &args)
            .await
            .unwrap_or_else(tool_error);
        tracing::info!(target: "github0::audit", login = %who.account.login, tool = %request.name, error = result.is_error.unwrap_or(false), "mcp tool call");
        Ok(result.into())
    }
}
