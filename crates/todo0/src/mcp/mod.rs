//! todo0's MCP server: rmcp Streamable HTTP at `/mcp`, guarded by [`auth`], with protected
//! resource metadata (RFC 9728) at the well-known URLs. Sessions carry their owner and end when
//! idle, within per-person and server-wide caps ([`sessions`]); revoked tokens are found by
//! introspection in the background when the server has client credentials ([`revocation`]).
//!
//! In stateless mode ([`McpConfig::stateless`], for replicas behind a load balancer) rmcp opens
//! no session: each POST is served on its own behind the same guard (token, revocation, scopes,
//! owner), GET and DELETE are answered `405` (`Allow: POST`), and the session table stays empty.

pub mod auth;
mod direct;
mod handshake;
pub mod jsonrpc;
pub mod metadata;
pub mod revocation;
pub mod scopes;
pub mod sessions;
pub mod tools;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use protocol::Clock;
use protocol::metadata::PROTECTED_RESOURCE_WELL_KNOWN;
use protocol::verify::{Expectations, JwtVerifier, KeyResolver, TypeRule};
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

pub use revocation::{RevocationConfig, SweepReport};
pub use scopes::ScopePolicy;
pub use sessions::{OwnedSessions, SessionLimits};

use crate::store::TodoStore;

/// How the MCP server is set up.
#[derive(Debug, Clone)]
pub struct McpConfig {
    /// The authorization server's issuer (`MCP_OKTA_ISSUER`).
    pub issuer: String,
    /// This resource's identifier, the tokens' required `aud` (`MCP_EXPECTED_AUDIENCE`).
    pub resource: String,
    /// Hosts accepted in `Host` (DNS-rebinding protection); empty keeps rmcp's loopback default.
    pub allowed_hosts: Vec<String>,
    /// Origins accepted in `Origin`; requests without `Origin` (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
    /// Stateless mode: no MCP sessions, JSON responses; for several replicas behind a balancer.
    pub stateless: bool,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Session idle time and caps.
    pub sessions: SessionLimits,
    /// How revoked tokens are detected; `None`: they are accepted until they expire.
    pub revocation: Option<RevocationConfig>,
    /// Which scopes allow deleting (enforced, and advertised in `tools/list` and the metadata).
    pub scope_policy: ScopePolicy,
}

impl McpConfig {
    /// Defaults for `issuer` and `resource`.
    pub fn new(issuer: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            resource: resource.into(),
            allowed_hosts: vec![],
            allowed_origins: vec![],
            stateless: false,
            max_body_bytes: 1024 * 1024,
            sessions: SessionLimits::default(),
            revocation: None,
            scope_policy: ScopePolicy::default(),
        }
    }
}

/// The MCP server, with handles on its state for tests and diagnostics.
pub struct Mcp {
    /// `/mcp`, the protected resource metadata, and `/health`.
    pub router: Router,
    /// The open sessions and their owners.
    pub sessions: Arc<OwnedSessions>,
    /// The token guard (and its verified-token cache).
    pub guard: auth::Guard,
}

/// The MCP router: `/mcp`, the protected resource metadata, and `/health`.
pub fn router(
    config: &McpConfig,
    keys: Arc<dyn KeyResolver>,
    store: Arc<dyn TodoStore>,
    clock: Arc<dyn Clock>,
) -> Router {
    build(config, keys, store, clock).router
}

/// The MCP server; starts the revocation sweep when `config.revocation` is set.
pub fn build(
    config: &McpConfig,
    keys: Arc<dyn KeyResolver>,
    store: Arc<dyn TodoStore>,
    clock: Arc<dyn Clock>,
) -> Mcp {
    let prm_url = metadata::metadata_url(&config.resource);
    let expect = Expectations::new(&config.issuer, &config.resource, TypeRule::ACCESS_TOKEN);
    let guard = auth::Guard::new(
        JwtVerifier::new(keys, clock.clone()),
        expect,
        prm_url.clone(),
        clock.clone(),
        config.max_body_bytes,
    );
    let sessions = OwnedSessions::new(config.sessions);
    let tools = tools::TodoTools::new(store.clone(), clock, config.scope_policy);
    let mut server_config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(!config.stateless)
        .with_json_response(config.stateless)
        .enforce_origin_validation();
    server_config.sse_keep_alive = Some(Duration::from_secs(15));
    server_config.max_request_body_bytes = config.max_body_bytes;
    if !config.allowed_hosts.is_empty() {
        server_config = server_config.with_allowed_hosts(config.allowed_hosts.clone());
    }
    server_config.allowed_origins = config.allowed_origins.clone();
    if !config.stateless {
        // Where rmcp finds a parked session's `initialize` to restore it (sessions.rs, "Parking").
        server_config.session_store = Some(sessions.clone());
    }
    let guard = guard
        .with_sessions(sessions.clone())
        .with_scope_policy(config.scope_policy)
        .with_direct_tools(
            tools.clone(),
            config.stateless,
            &server_config.allowed_hosts,
        );
    tracing::info!(scope_policy = %config.scope_policy, delete_todo_accepts = %config.scope_policy.need(scopes::Action::Delete), "scope policy");
    match &config.revocation {
        Some(revocation) => {
            tracing::info!(
                interval_ms = u64::try_from(revocation.interval.as_millis()).unwrap_or(u64::MAX),
                client_id = %revocation.client_id,
                "revoked access tokens are detected by introspection"
            );
            guard.check_revocation(revocation.clone());
        }
        None => tracing::warn!(
            "no client credentials: access tokens revoked at the authorization server are accepted until they expire"
        ),
    }

    let service =
        StreamableHttpService::new(move || Ok(tools.clone()), sessions.clone(), server_config);

    let document = metadata::document(&config.resource, &config.issuer, config.scope_policy);
    let well_known = {
        let document = document.clone();
        get(move || {
            let document = document.clone();
            async move { axum::Json(document) }
        })
    };
    let path = url::Url::parse(&config.resource)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_else(|_| "/mcp".into());
    let mcp = Router::new()
        .nest_service(if path.is_empty() { "/mcp" } else { &path }, service)
        .layer(axum::middleware::from_fn_with_state(
            guard.clone(),
            auth::require_token,
        ));
    // Served at the resource's own metadata URL (RFC 9728 §3.1) and at the root form, which some
    // clients try; a resource without a path has one URL for both (routing it twice panics).
    let own_path = url::Url::parse(&prm_url)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| PROTECTED_RESOURCE_WELL_KNOWN.to_owned());
    let mut router = Router::new().route(PROTECTED_RESOURCE_WELL_KNOWN, well_known.clone());
    if own_path != PROTECTED_RESOURCE_WELL_KNOWN {
        router = router.route(&own_path, well_known);
    }
    let router = router
        .route(
            "/health",
            get(move || {
                let store = store.clone();
                async move {
                    match store.ping().await {
                        Ok(()) => (http::StatusCode::OK, "ok"),
                        Err(_) => (
                            http::StatusCode::SERVICE_UNAVAILABLE,
                            "todo store unavailable",
                        ),
                    }
                }
            }),
        )
        .merge(mcp);
    Mcp {
        router,
        sessions,
        guard,
    }
}
