//! todo0's web app and REST API (ARCHITECTURE §1, §5.1, §6), `secure-agent todo-app` on :5001:
//! OIDC login against any issuer by discovery ([`oidc`]), sessions in an encrypted cookie that
//! logout ends server-side ([`session`]), server-rendered pages with CSRF-checked forms, and a JSON REST API over the
//! same store as the MCP server, authenticated by that cookie or by an access token checked by
//! the MCP server's own guard ([`crate::mcp::auth::Guard`]). `GET /openapi.json` describes the
//! API.
//!
//! | route | |
//! |---|---|
//! | `GET /` | the todo list (`?show=open`, `?show=done`), or "Log in" |
//! | `GET /login`, `GET /callback`, `POST /logout` | the login flow |
//! | `GET /session` | the signed-in user and CSRF token |
//! | `GET, POST /todos`; `GET, PATCH, DELETE /todos/{id}` | the REST API |
//! | `POST /todos/{id}/complete`, `POST /todos/{id}/delete` | toggle, delete (also the forms) |
//! | `GET /openapi.json`, `GET /health` | |
//! | `GET /assets/todo0.css`, `GET /favicon.ico` | the stylesheet; no icon |

mod api;
mod assets;
mod error;
mod extract;
mod html;
mod layers;
mod openapi;
mod pages;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderValue;
use axum::routing::{get, post};
use protocol::Clock;
use protocol::verify::{Expectations, JwtVerifier, KeyResolver, TypeRule};

pub use api::{ListQuery, NewTodo, NoInput, SessionInfo, SessionUser, TodoPatch};
pub use error::{ErrorBody, WebError};
pub use extract::{CSRF_FIELD, CSRF_HEADER};
pub use weblogin::{OidcSettings, OidcSetupError, SessionKey, SessionSecretError};

use crate::mcp::auth::Guard;
use crate::mcp::scopes::ScopePolicy;
use crate::store::TodoStore;

/// The largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How the web app is set up.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// The OIDC client registration (`OKTA_*`).
    pub oidc: OidcSettings,
    /// The cookie key (`SESSION_SECRET`, or a generated key file).
    pub session_key: SessionKey,
    /// Issuer of accepted access tokens (`MCP_OKTA_ISSUER`, as for the MCP server).
    pub api_issuer: String,
    /// Their required audience (`MCP_EXPECTED_AUDIENCE`, as for the MCP server).
    pub api_audience: String,
    /// The largest request body.
    pub max_body_bytes: usize,
    /// How revoked access tokens are detected on the REST API; `None`: accepted until they
    /// expire.
    pub revocation: Option<crate::mcp::RevocationConfig>,
    /// Which scopes allow deleting (as for the MCP server; enforced and in `/openapi.json`).
    pub scope_policy: ScopePolicy,
}

impl WebConfig {
    /// A configuration with the default body limit.
    pub fn new(
        oidc: OidcSettings,
        session_key: SessionKey,
        api_issuer: impl Into<String>,
        api_audience: impl Into<String>,
    ) -> Self {
        Self {
            oidc,
            session_key,
            api_issuer: api_issuer.into(),
            api_audience: api_audience.into(),
            max_body_bytes: MAX_BODY_BYTES,
            revocation: None,
            scope_policy: ScopePolicy::default(),
        }
    }

    /// Whether cookies get `Secure`: when the app is reached over https.
    pub fn is_https(&self) -> bool {
        self.oidc.redirect_uri.starts_with("https://")
    }
}

/// Everything the handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Arc<dyn TodoStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) oidc: Arc<weblogin::RelyingParty>,
    pub(crate) guard: Guard,
    pub(crate) cookies: session::Cookies,
    pub(crate) max_body_bytes: usize,
    pub(crate) csp: HeaderValue,
    pub(crate) openapi: Arc<serde_json::Value>,
    pub(crate) scope_policy: ScopePolicy,
}

/// Discovers the identity provider and builds the app. `keys` resolves the access tokens'
/// signing keys (the MCP server's issuer's JWKS).
pub async fn router(
    config: WebConfig,
    keys: Arc<dyn KeyResolver>,
    store: Arc<dyn TodoStore>,
    clock: Arc<dyn Clock>,
) -> Result<Router, OidcSetupError> {
    let https = config.is_https();
    let oidc = weblogin::RelyingParty::discover(config.oidc).await?;
    let guard = Guard::new(
        JwtVerifier::new(keys, clock.clone()),
        Expectations::new(
            &config.api_issuer,
            &config.api_audience,
            TypeRule::ACCESS_TOKEN,
        ),
        crate::mcp::metadata::metadata_url(&config.api_audience),
        clock.clone(),
        config.max_body_bytes,
    );
    if let Some(revocation) = config.revocation {
        guard.check_revocation(revocation);
    }
    tracing::info!(scope_policy = %config.scope_policy, "REST API scope policy");
    let state = AppState {
        store,
        clock,
        csp: layers::content_security_policy(oidc.end_session_origin().as_deref()),
        oidc: Arc::new(oidc),
        guard,
        cookies: session::Cookies::new(&config.session_key, https),
        max_body_bytes: config.max_body_bytes,
        openapi: Arc::new(openapi::document(config.scope_policy)),
        scope_policy: config.scope_policy,
    };
    Ok(routes(state))
}

fn routes(state: AppState) -> Router {
    let router = Router::new()
        .route("/", get(pages::get_index))
        .route("/login", get(pages::get_login))
        .route("/callback", get(pages::get_callback))
        .route("/logout", post(pages::post_logout))
        .route("/session", get(api::get_session))
        .route("/todos", get(api::get_todos).post(api::post_todo))
        .route(
            "/todos/{id}",
            get(api::get_todo)
                .patch(api::patch_todo)
                .delete(api::delete_todo),
        )
        .route("/todos/{id}/complete", post(api::post_todo_complete))
        .route("/todos/{id}/delete", post(api::delete_todo))
        .route(html::STYLESHEET_PATH, get(assets::get_stylesheet))
        .route("/favicon.ico", get(assets::get_favicon))
        .route("/openapi.json", get(get_openapi))
        .route("/health", get(api::get_health))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(axum::middleware::from_fn(layers::finish));
    layers::security_headers(router, state.csp.clone()).with_state(state)
}

/// `GET /openapi.json`.
async fn get_openapi(State(app): State<AppState>) -> axum::Json<serde_json::Value> {
    axum::Json(app.openapi.as_ref().clone())
}
