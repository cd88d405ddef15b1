//! agent0's HTTP surface: the embedded UI, login (`/auth/*`, the OIDC callback), the chat API
//! (`/api/chat`, its SSE variant `/api/chat/stream`, `/api/chat/confirm[/stream]` for the
//! person's decision on a tool call that waits for it, conversations), the connections panel's
//! `/api/connections/status`, the ID token claims viewer, and `/health`. State-changing
//! requests need the session's CSRF token in `X-CSRF-Token` (and JSON bodies, which browsers
//! cannot send cross-site without a preflight).

mod assets;
mod auth;
mod chat;
mod conversations;
pub mod error;
mod oauth_sts;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use httpserve::headers;
use protocol::Clock;
use protocol::token_client::ClientAuth;
use tower_http::set_header::SetResponseHeaderLayer;
use weblogin::{OidcSettings, OidcSetupError, RelyingParty, SessionKey};

use self::error::{ApiError, ErrorReport};
use crate::agent::Agent;
use crate::connections::{AuthorizationServerInfo, ConnectionKind};
use crate::conversations::ConversationStore;
use crate::llm::Model;
use crate::mcp::{McpHub, McpServer, McpSetupError};
use crate::session::{Cookies, Session, Sessions};
use crate::shared::SharedState;
use crate::tokens::TokenBroker;

/// The OIDC callback route: the redirect URI registered at the IdP must end in it.
pub const CALLBACK_PATH: &str = "/callback";
/// The CSRF header.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The largest request body, in bytes (a message is at most 8000 characters).
const MAX_BODY_BYTES: usize = 64 * 1024;
/// The Content-Security-Policy of every response: scripts and styles from the app only. Forms
/// post to the app itself, and the logout form is redirected on to the IdP's end-session
/// endpoint, whose origin is added (browsers apply `form-action` to redirects too).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn content_security_policy(end_session_origin: Option<&str>) -> HeaderValue {
    end_session_origin
        .and_then(|origin| {
            HeaderValue::from_str(&CSP.replace(
                "form-action 'self'",
                &format!("form-action 'self' {origin}"),
            ))
            .ok()
        })
        .unwrap_or_else(|| HeaderValue::from_static(CSP))
}

/// Everything agent0 needs to run.
pub struct AgentConfig {
    /// The login client (`OKTA_*`).
    pub oidc: OidcSettings,
    /// Ask for `offline_access` at login, so ID tokens can be renewed without a new login.
    pub offline_access: bool,
    /// Encrypts the cookies.
    pub session_key: SessionKey,
    /// The agent's client id (`AI_AGENT_ID`).
    pub agent_id: String,
    /// How the agent authenticates at token endpoints (`private_key_jwt` normally).
    pub agent_auth: ClientAuth,
    /// The resource authorization server, when any MCP server uses `id-jag`.
    pub authorization_server: Option<(String, String)>,
    /// The MCP servers.
    pub mcp_servers: Vec<McpServer>,
    /// The brokered-consent settings: the application connection (GitHub REST) and where
    /// brokered exchanges go.
    pub brokered: crate::config::Brokered,
    /// Kinds turned off (`DISABLED_CONNECTIONS`).
    pub disabled: BTreeSet<ConnectionKind>,
    /// The model.
    pub model: Arc<dyn Model>,
    /// Where conversations are kept.
    pub store: Arc<dyn ConversationStore>,
    /// Model calls per turn.
    pub max_steps: usize,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("oidc", &self.oidc)
            .field("agent_id", &self.agent_id)
            .field("mcp_servers", &self.mcp_servers)
            .field("disabled", &self.disabled)
            .field("model", &self.model.info())
            .finish_non_exhaustive()
    }
}

/// Why agent0 could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The OpenID Connect settings or discovery.
    #[error(transparent)]
    Oidc(#[from] OidcSetupError),
    /// The MCP client.
    #[error(transparent)]
    Mcp(#[from] McpSetupError),
    /// The token endpoint's HTTP client.
    #[error(transparent)]
    TokenClient(#[from] protocol::token_client::ClientSetupError),
}

/// The shared state of every handler.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// Inside [`AppState`].
pub struct Inner {
    pub(crate) rp: RelyingParty,
    pub(crate) sessions: Sessions,
    pub(crate) shared_state: String,
    /// Resumes turns paused on other replicas (when replicas share Redis).
    pub(crate) relay: Option<Arc<crate::shared::relay::TurnRelay>>,
    pub(crate) cookies: Cookies,
    pub(crate) agent: Agent,
    pub(crate) all_servers: Vec<McpServer>,
    pub(crate) brokered: crate::config::Brokered,
    pub(crate) authorization_server: Option<AuthorizationServerInfo>,
    pub(crate) disabled: BTreeSet<ConnectionKind>,
    pub(crate) offline_access: bool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) csp: HeaderValue,
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Discovers the IdP and assembles the app, its sessions and token caches in process.
    pub async fn new(config: AgentConfig) -> Result<Self, SetupError> {
        let shared = SharedState::in_process(config.clock.clone());
        Self::with_shared_state(config, shared).await
    }

    /// Discovers the IdP and assembles the app, its sessions, token caches and leases in
    /// `shared` (Redis, for several replicas).
    pub async fn with_shared_state(
        config: AgentConfig,
        shared: SharedState,
    ) -> Result<Self, SetupError> {
        let redirect = url::Url::parse(&config.oidc.redirect_uri).ok();
        if redirect.as_ref().map(url::Url::path) != Some(CALLBACK_PATH) {
            return Err(SetupError::Oidc(OidcSetupError::Setting {
                name: "OKTA_REDIRECT_URI",
                value: config.oidc.redirect_uri.clone(),
                message: format!(
                    "it must be an http(s) URL ending in {CALLBACK_PATH}, the route agent0 serves"
                ),
            }));
        }
        let https = config.oidc.redirect_uri.starts_with("https://");
        let rp = RelyingParty::discover(config.oidc).await?;
        let broker = Arc::new(
            TokenBroker::shared(
                rp.token_endpoint(),
                config.agent_auth,
                config.clock.clone(),
                shared.tokens.clone(),
                shared.leases.clone(),
            )?
            .with_sts_token_endpoint(config.brokered.token_endpoint.clone()),
        );
        let enabled: Vec<McpServer> = config
            .mcp_servers
            .iter()
            .filter(|s| crate::connections::is_enabled(s, &config.disabled))
            .cloned()
            .collect();
        let application = config
            .brokered
            .application
            .clone()
            .filter(|_| !config.disabled.contains(&ConnectionKind::Application));
        let hub = Arc::new(
            McpHub::new(enabled, broker, config.clock.clone())?.with_application(application)?,
        );
        let agent = Agent::new(
            config.model,
            hub,
            config.store,
            config.clock.clone(),
            config.max_steps,
        )
        .with_approvals(shared.approvals.clone());
        if let Some(relay) = &shared.relay {
            relay.start(agent.confirmations());
        }
        let authorization_server =
            config
                .authorization_server
                .map(|(issuer, token_endpoint)| AuthorizationServerInfo {
                    issuer,
                    token_endpoint,
                    org_issuer: rp.issuer().to_owned(),
                    agent_id: config.agent_id.clone(),
                });
        let csp = content_security_policy(rp.end_session_origin().as_deref());
        Ok(Self(Arc::new(Inner {
            csp,
            sessions: Sessions::new(
                shared.sessions.clone(),
                shared.leases.clone(),
                config.clock.clone(),
            ),
            shared_state: shared.description,
            relay: shared.relay,
            cookies: Cookies::new(&config.session_key, https),
            rp,
            agent,
            all_servers: config.mcp_servers,
            brokered: config.brokered,
            authorization_server,
            disabled: config.disabled,
            offline_access: config.offline_access,
            clock: config.clock,
        })))
    }

    /// The agent (for benchmarks and tests).
    pub fn agent(&self) -> &Agent {
        &self.agent
    }

    /// The request's live session (an error when the session store cannot be reached).
    pub(crate) async fn session(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<Arc<Session>>, ApiError> {
        let Some(id) = self.cookies.session_id(headers) else {
            return Ok(None);
        };
        Ok(self.sessions.current(&id, &self.rp).await?)
    }

    /// The request's live session, or 401.
    pub(crate) async fn require_session(
        &self,
        headers: &HeaderMap,
    ) -> Result<Arc<Session>, ApiError> {
        // The cookie is decrypted once: a cookie that reads but names no live session has
        // expired; no (readable) cookie is no login.
        let Some(id) = self.cookies.session_id(headers) else {
            return Err(ApiError::Unauthenticated);
        };
        match self.sessions.current(&id, &self.rp).await? {
            Some(session) => Ok(session),
            None => Err(ApiError::LoginExpired),
        }
    }

    /// The live session, after checking the CSRF header.
    pub(crate) async fn require_csrf(&self, headers: &HeaderMap) -> Result<Arc<Session>, ApiError> {
        let session = self.require_session(headers).await?;
        let presented = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if presented.is_some_and(|p| protocol::constant_time::is_equal(p, &session.csrf)) {
            Ok(session)
        } else {
            Err(ApiError::Csrf)
        }
    }
}

/// agent0's router. Security headers are tower-http layers around everything: the app's CSP,
/// `nosniff`, `DENY`, `no-referrer` and `Cross-Origin-Opener-Policy: same-origin` on every
/// response, and `Cache-Control: no-store` on the session's routes (`/auth/…`, `/api/…`).
pub fn router(state: AppState) -> Router {
    let session_routes = Router::new()
        .route("/auth/login", get(auth::get_login))
        .route("/auth/logout", post(auth::post_logout))
        .route("/auth/status", get(auth::get_status))
        .route("/api/me/claims", get(auth::get_claims))
        .route("/api/chat", post(chat::post_chat))
        .route("/api/chat/stream", post(chat::post_chat_stream))
        .route("/api/chat/confirm", post(chat::post_chat_confirm))
        .route(
            "/api/chat/confirm/stream",
            post(chat::post_chat_confirm_stream),
        )
        .route(
            "/api/conversations",
            post(chat::post_conversation).get(conversations::get_conversations),
        )
        .route(
            "/api/conversations/current",
            get(chat::get_current_conversation),
        )
        .route(
            "/api/conversations/{id}",
            get(conversations::get_conversation),
        )
        .route(
            "/api/conversations/{id}/export",
            get(conversations::get_conversation_export),
        )
        .route("/api/connections/status", get(chat::get_connections_status))
        .route("/api/oauth-sts/exchange", post(oauth_sts::post_exchange))
        .route("/api/oauth-sts/status", get(oauth_sts::get_status))
        .layer(headers::no_store());
    let router = Router::new()
        .route("/", get(assets::get_index))
        .route("/index.html", get(assets::get_index))
        .route("/assets/app.js", get(assets::get_app_js))
        .route("/assets/app.css", get(assets::get_app_css))
        .route("/favicon.ico", get(assets::get_favicon))
        .route("/health", get(get_health))
        .route(CALLBACK_PATH, get(auth::get_callback))
        .merge(session_routes)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(finish))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ));
    headers::security_headers(router, state.csp.clone(), headers::NO_REFERRER).with_state(state)
}

/// `GET /health`.
async fn get_health(State(app): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({
        "status": "ok",
        "model": app.agent.model().info(),
        "sessions": app.sessions.count().await,
        "sharedState": app.shared_state,
    }))
}

/// Logs each failure once (never a token: errors carry none).
async fn finish(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if let Some(report) = response.extensions_mut().remove::<ErrorReport>() {
        let status = report.status.as_u16();
        if report.status.is_server_error() {
            tracing::warn!(%method, path, status, detail = %report.detail, "request failed");
        } else {
            tracing::info!(%method, path, status, detail = %report.detail, "request refused");
        }
    }
    response
}
