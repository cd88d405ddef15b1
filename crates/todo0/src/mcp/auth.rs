//! The MCP endpoint's guard (MCP authorization spec 2025-11-25; RFC 6750 §3; RFC 9728 §5.1):
//! every request needs a valid access token for this resource with `mcp:connect`; a
//! `tools/call` also needs its tool's scope under the configured [`ScopePolicy`]. Scopes are
//! checked here, before rmcp sees the request, so a missing scope is a real `403` with an
//! `insufficient_scope` challenge naming every scope the call needs. The caller's identity
//! travels to the tools in the request's extensions; the token itself goes no further.
//!
//! Verified tokens are cached until they expire and checked for revocation in the background
//! ([`super::revocation`]). A request naming an MCP session is refused (`403`) unless the caller
//! owns it ([`super::sessions`]); a POST that is not JSON, or not one JSON-RPC message, gets a
//! JSON-RPC error body ([`super::jsonrpc`]). A plain `tools/call` on a ready session is answered
//! here, without rmcp's session worker ([`super::direct`]), and so is a plain handshake
//! ([`super::handshake`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::claims::AccessTokenClaims;
use protocol::verify::{Expectations, JwtError, JwtVerifier};
use protocol::www_authenticate::Challenge;
use protocol::{Clock, Scopes};
use rmcp::model::ServerResult;
use sha2::{Digest, Sha256};

use super::direct::{self, Direct, ToolCall};
use super::revocation::{self, RevocationConfig, TokenCache};
use super::scopes::{Requirement, ScopePolicy};
use super::sessions::{OwnedSessions, Refusal, RequestScope, SCOPE, Visit};
use super::tools::{Output, TodoTools};
use super::{handshake, jsonrpc, scopes};
use crate::domain::Owner;

/// Who is calling, as established from a verified access token.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Whose todos: `uid`, else `sub`.
    pub owner: Owner,
    /// The client (agent) the token was issued to.
    pub client_id: Option<String>,
    /// Granted scopes.
    pub scopes: Scopes,
}

/// Why a bearer token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum TokenRefusal {
    /// It does not verify.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The authorization server revoked it (found by the revocation sweep).
    #[error("token revoked")]
    Revoked,
}

/// Token checks shared by all requests.
#[derive(Clone)]
pub struct Guard(Arc<GuardInner>);

struct GuardInner {
    verifier: JwtVerifier,
    expect: Expectations,
    resource_metadata: String,
    clock: Arc<dyn Clock>,
    max_body: usize,
    /// Verified and revoked tokens; the revocation sweep holds it weakly.
    tokens: Arc<TokenCache>,
    /// The MCP sessions and their owners (none for the web app's guard).
    sessions: Option<Arc<OwnedSessions>>,
    /// Which scopes each call needs (the web app's handlers authorise for themselves).
    scope_policy: ScopePolicy,
    /// What requests the guard answers itself need (none for the web app's guard).
    direct: Option<Direct>,
}

const SESSION_HEADER: &str = "mcp-session-id";
/// What a client refused for too many sessions is told to wait, in seconds.
const SESSION_RETRY_AFTER: &str = "60";

impl Guard {
    /// A guard for `expect` (issuer, audience = this resource, access-token type).
    pub fn new(
        verifier: JwtVerifier,
        expect: Expectations,
        resource_metadata: String,
        clock: Arc<dyn Clock>,
        max_body: usize,
    ) -> Self {
        Self(Arc::new(GuardInner {
            verifier,
            expect,
            resource_metadata,
            clock,
            max_body,
            tokens: Arc::new(TokenCache::new()),
            sessions: None,
            scope_policy: ScopePolicy::default(),
            direct: None,
        }))
    }

    /// This guard with `change` applied to its settings.
    fn rebuilt(self, change: impl FnOnce(GuardInner) -> GuardInner) -> Self {
        let inner = Arc::try_unwrap(self.0).unwrap_or_else(|shared| GuardInner {
            verifier: shared.verifier.clone(),
            expect: shared.expect.clone(),
            resource_metadata: shared.resource_metadata.clone(),
            clock: shared.clock.clone(),
            max_body: shared.max_body,
            tokens: shared.tokens.clone(),
            sessions: shared.sessions.clone(),
            scope_policy: shared.scope_policy,
            direct: shared.direct.clone(),
        });
        Self(Arc::new(change(inner)))
    }

    /// This guard, also enforcing session ownership for `sessions`.
    pub fn with_sessions(self, sessions: Arc<OwnedSessions>) -> Self {
        self.rebuilt(|inner| GuardInner {
            sessions: Some(sessions),
            ..inner
        })
    }

    /// This guard, requiring the scopes `policy` says each JSON-RPC call needs.
    pub fn with_scope_policy(self, policy: ScopePolicy) -> Self {
        self.rebuilt(|inner| GuardInner {
            scope_policy: policy,
            ..inner
        })
    }

    /// This guard, answering a plain `tools/call` itself with `tools` ([`direct`]); `stateless`:
    /// the server keeps no sessions; `hosts`: the `Host`s rmcp accepts (any, when empty).
    pub fn with_direct_tools(self, tools: TodoTools, stateless: bool, hosts: &[String]) -> Self {
        self.rebuilt(|inner| GuardInner {
            direct: Some(Direct {
                tools,
                stateless,
                hosts: hosts.into(),
            }),
            ..inner
        })
    }

    /// Starts the background revocation sweep over this guard's verified tokens (see
    /// [`revocation`]); it stops when the guard is dropped.
    pub fn check_revocation(&self, config: RevocationConfig) {
        revocation::spawn_sweep(Arc::downgrade(&self.0.tokens), config, self.0.clock.clone());
    }

    /// Runs one revocation sweep now (tests).
    pub async fn sweep_revocations(&self, config: &RevocationConfig) -> revocation::SweepReport {
        revocation::sweep(&self.0.tokens, config, self.0.clock.now()).await
    }

    /// Verified tokens held (tests and diagnostics).
    pub fn cached_tokens(&self) -> u64 {
        self.0.tokens.len()
    }

    /// Verifies a bearer token and derives the caller. A warm call is a hash and two cache
    /// lookups, with no network I/O.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, TokenRefusal> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if self.0.tokens.is_denied(&key) {
            return Err(TokenRefusal::Revoked);
        }
        let now = self.0.clock.now();
        if let Some(verified) = self.0.tokens.get(&key)
            && now <= verified.exp + self.0.expect.leeway
        {
            verified.mark_used();
            return Ok(verified.caller.clone());
        }
        let claims = self
            .0
            .verifier
            .verify::<AccessTokenClaims>(token, &self.0.expect)
            .await?
            .claims;
        let owner = Owner::new(claims.user_id()).map_err(|_| JwtError::Claim("sub"))?;
        let caller = Caller {
            owner,
            client_id: claims.client().map(str::to_owned),
            scopes: claims.scopes(),
        };
        let left = claims
            .exp
            .saturating_add(self.0.expect.leeway)
            .saturating_sub(now);
        let ttl = Duration::from_secs(u64::try_from(left).unwrap_or(0));
        self.0
            .tokens
            .insert(key, token, caller.clone(), claims.exp, ttl);
        Ok(caller)
    }

    fn challenge(
        &self,
        status: StatusCode,
        error: Option<(&str, &str)>,
        scope: &Scopes,
    ) -> Response {
        let mut challenge = Challenge::bearer();
        if let Some((code, description)) = error {
            challenge = challenge
                .with_param("error", code)
                .with_param("error_description", description);
        }
        let challenge = challenge
            .with_param("scope", scope.to_string())
            .with_param("resource_metadata", self.0.resource_metadata.clone());
        let value = challenge
            .to_header_value()
            .ok()
            .and_then(|v| HeaderValue::from_str(&v).ok())
            .unwrap_or_else(|| HeaderValue::from_static("Bearer"));
        let body = serde_json::json!({"error": error.map_or("unauthorized", |(code, _)| code)});
        (
            status,
            [(header::WWW_AUTHENTICATE, value)],
            axum::Json(body),
        )
            .into_response()
    }
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    protocol::bearer::parse_authorization(value)
}

/// Whether a POST body is declared as JSON (`application/json`, any parameters).
fn is_json_content_type(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

/// axum middleware in front of the MCP service.
pub async fn require_token(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let connect: Scopes = [scopes::CONNECT].into_iter().collect();
    let Some(token) = bearer(&request) else {
        return guard.challenge(StatusCode::UNAUTHORIZED, None, &connect);
    };
    let caller = match guard.authenticate(token).await {
        Ok(caller) => caller,
        Err(TokenRefusal::Jwt(JwtError::KeysUnavailable(e))) => {
            tracing::error!(error = %e, "cannot fetch the authorization server's keys");
            return keys_unavailable();
        }
        Err(e) => {
            tracing::info!(error = %e, "access token refused");
            return guard.challenge(
                StatusCode::UNAUTHORIZED,
                Some(("invalid_token", &e.to_string())),
                &connect,
            );
        }
    };

    if request.method() == Method::POST && !is_json_content_type(&request) {
        // MCP Streamable HTTP: a POST carries one JSON-RPC message as `application/json`.
        return jsonrpc::error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            jsonrpc::INVALID_REQUEST,
            "Content-Type must be application/json",
        );
    }
    let (mut parts, body) = request.into_parts();
    let bytes = if parts.method == Method::POST {
        match axum::body::to_bytes(body, guard.0.max_body).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return jsonrpc::error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    jsonrpc::INVALID_REQUEST,
                    "request body too large",
                );
            }
        }
    } else {
        axum::body::Bytes::new()
    };
    // A plain `tools/call` is read once, cheaply; anything else is checked in full.
    let call = if parts.method == Method::POST {
        ToolCall::read(&bytes)
    } else {
        None
    };
    let messages = match (&call, parts.method == Method::POST) {
        (Some(call), _) => vec![("tools/call".to_owned(), Some(call.tool().to_owned()))],
        (None, true) => match jsonrpc::read(&bytes) {
            Ok(messages) => messages,
            Err(bad) => return bad.into_response(),
        },
        (None, false) => vec![],
    };
    let policy = guard.0.scope_policy;
    let mut required = Requirement::connect();
    for (method, tool) in &messages {
        required = required.and(policy.required(method, tool.as_deref()));
    }
    if !required.is_met_by(&caller.scopes) {
        let needed = required.challenge(&caller.scopes);
        tracing::info!(client_id = caller.client_id.as_deref().unwrap_or("-"), needed = %needed, %policy, "insufficient scope");
        let description = format!("this call needs {needed}");
        return guard.challenge(
            StatusCode::FORBIDDEN,
            Some(("insufficient_scope", &description)),
            &needed,
        );
    }

    let session = parts
        .headers
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut ready = false;
    if let Some(sessions) = &guard.0.sessions
        && let Some(session) = &session
    {
        match sessions.visit(session, &caller.owner) {
            Visit::Foreign => {
                tracing::warn!(
                    client_id = caller.client_id.as_deref().unwrap_or("-"),
                    "session used with another user's token"
                );
                return jsonrpc::error(
                    StatusCode::FORBIDDEN,
                    jsonrpc::INVALID_REQUEST,
                    "this session belongs to another user",
                );
            }
            Visit::Own { ready: initialized } => ready = initialized,
            Visit::Unknown => {}
        }
    }
    if let (Some(direct), Some(sessions), [(method, None)]) =
        (&guard.0.direct, &guard.0.sessions, messages.as_slice())
        && (method == "initialize" || method == "notifications/initialized")
        && let Some(answer) = handshake::answer(
            direct,
            sessions,
            &caller.owner,
            &parts.headers,
            session.as_deref(),
            &bytes,
        )
    {
        return answer;
    }
    if let (Some(call), Some(direct)) = (call, &guard.0.direct)
        && (if direct.stateless {
            session.is_none()
        } else {
            ready
        })
        && direct.headers_allow(&parts.headers)
        && direct.tools.has_tool(call.tool())
    {
        let tool = call.tool().to_owned();
        let (id, args) = call.into_parts();
        match direct.tools.call(&caller, &tool, args).await {
            Some(Output::Structured(json)) => return direct::reply_structured(&id, &json),
            Some(Output::Error(result)) => {
                return direct::reply(id, ServerResult::CallToolResult(result));
            }
            None => {}
        }
    }
    let initialized = messages
        .iter()
        .any(|(method, _)| method == "notifications/initialized");
    let scope = RequestScope::new(caller.owner.clone());
    parts.extensions.insert(caller);
    // The session keeps (or gets back) its rmcp worker while rmcp serves this request.
    let entered = match (&guard.0.sessions, &session) {
        (Some(sessions), Some(session)) => sessions.enter(session).await,
        _ => None,
    };
    let response = SCOPE
        .scope(
            scope.clone(),
            next.run(Request::from_parts(parts, Body::from(bytes))),
        )
        .await;
    drop(entered);
    if initialized
        && response.status() == StatusCode::ACCEPTED
        && let (Some(sessions), Some(session)) = (&guard.0.sessions, &session)
    {
        sessions.mark_ready(session);
        // Its handshake is done: until the client asks rmcp for something, the session needs no
        // worker (the tool calls are answered here).
        sessions.park(session, Duration::ZERO).await;
    }
    match scope.refusal() {
        None => jsonrpc::json_refusals(response).await,
        Some(refusal) => session_refused(refusal),
    }
}

/// How long a client should wait before retrying when the authorization server's keys could
/// not be fetched.
const KEYS_RETRY_AFTER: &str = "30";

/// The answer when the token cannot be checked because the authorization server's keys could not
/// be fetched: like every `/mcp` answer, a JSON-RPC error (the cause is in the log).
fn keys_unavailable() -> Response {
    let mut response = jsonrpc::error(
        StatusCode::SERVICE_UNAVAILABLE,
        jsonrpc::SERVER_BUSY,
        "the server cannot check access tokens right now (its authorization server's keys are unavailable): try again shortly",
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(KEYS_RETRY_AFTER),
    );
    response
}

/// The answer to an `initialize` refused by a session limit.
pub(super) fn session_refused(refusal: Refusal) -> Response {
    let (status, message) = match refusal {
        Refusal::OwnerLimit(limit) => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "you have {limit} open MCP sessions, the most allowed: end one (HTTP DELETE with its Mcp-Session-Id) or wait for an idle one to expire"
            ),
        ),
        Refusal::ServerFull(limit) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server holds its maximum of {limit} MCP sessions: try again later"),
        ),
    };
    tracing::warn!(?refusal, "new MCP session refused");
    let mut response = jsonrpc::error(status, jsonrpc::SERVER_BUSY, &message);
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(SESSION_RETRY_AFTER),
    );
    response
}
