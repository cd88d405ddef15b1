//! github0: an offline GitHub sandbox, clearly labelled as one on every page. It speaks GitHub's
//! wire format for what the demo uses (design/OKTA.md §3), all on one listener:
//!
//! * the OAuth web flow at its root — `GET /login/oauth/authorize` (sign-in page for its own
//!   people, then a consent page; PKCE S256), `POST /login/oauth/access_token` (form or JSON,
//!   answers JSON with `Accept: application/json`, form-encoded otherwise; errors as HTTP 200
//!   bodies), expiring `ghu_` access tokens with rotating `ghr_` refresh tokens (or `gho_` for a
//!   classic OAuth app);
//! * the REST API under `/api/v3` (as GitHub Enterprise Server): `GET /user`, pull requests,
//!   issue comments, and the OAuth app revocation endpoints `DELETE /applications/{client_id}/token`
//!   and `…/grant`; GitHub's headers, error bodies and an hourly budget per token;
//! * a remote MCP endpoint at `/mcp` (Streamable HTTP, stateless) with GitHub's tool names and
//!   input schemas: `get_me`, `list_pull_requests`, `pull_request_read`, `add_issue_comment`.
//!
//! Build a [`Config`], [`Github0::open`] it, and serve [`Github0::router`] (or call [`serve`]).

#![recursion_limit = "256"]

pub mod api;
pub mod config;
pub mod mcp;
pub mod oauth;
mod pages;
mod password;
pub mod service;
pub mod store;
pub mod tokens;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::HeaderValue;
use axum::routing::get;
use protocol::Clock;

pub use config::{App, Config, ConfigError, ConfigFile, User};
use store::Store;

/// The sandbox: its configuration, store and clock. Cheap to clone.
#[derive(Clone)]
pub struct Github0 {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    apps: HashMap<String, App>,
    store: Store,
    clock: Arc<dyn Clock>,
    passwords: password::Gate,
}

impl std::fmt::Debug for Github0 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Github0")
            .field("public_url", &self.inner.config.public_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Github0 {
    /// Opens the database (migrating it), seeds the repositories if missing, and creates or
    /// updates the configured people (a changed password is re-hashed; an unchanged one keeps its
    /// hash).
    pub async fn open(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        config::validate(&config)?;
        if let Some(parent) = config.database.parent()
            && !parent.as_os_str().is_empty()
        {
            httpserve::fsutil::create_private_dir(parent)?;
        }
        let store = Store::open(&config.database).await?;
        let now = clock.now();
        store.seed(now).await?;
        store.purge(now).await?;
        for user in &config.users {
            let account = store
                .ensure_account(&user.login, "User", &user.name, now)
                .await?;
            let password = user.password.clone();
            let current = account.password_hash.clone();
            let hash = tokio::task::spawn_blocking(move || {
                password::keep_or_hash(&password, current.as_deref())
            })
            .await??;
            store.set_person(account.id, &user.name, &hash).await?;
        }
        let apps = config
            .apps
            .iter()
            .map(|app| (app.client_id.clone(), app.clone()))
            .collect();
        tracing::info!(
            public_url = %config.public_url,
            apps = config.apps.len(),
            people = config.users.len(),
            "github0 sandbox ready"
        );
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                apps,
                store,
                clock,
                passwords: password::Gate::new(),
            }),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The store (tests and diagnostics).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn app(&self, client_id: &str) -> Option<&App> {
        self.inner.apps.get(client_id)
    }

    pub(crate) fn now(&self) -> protocol::UnixTime {
        self.inner.clock.now()
    }

    pub(crate) fn passwords(&self) -> &password::Gate {
        &self.inner.passwords
    }

    /// Every route: the web pages and OAuth endpoints, `/api/v3`, `/mcp` and its protected
    /// resource metadata, `/health`.
    pub fn router(&self) -> Router {
        let web = httpserve::headers::security_headers(
            oauth::router().merge(pages::router()),
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
            ),
            httpserve::headers::SAME_ORIGIN,
        )
        .layer(httpserve::headers::no_store());
        let store = self.inner.store.clone();
        Router::new()
            .merge(web)
            .nest("/api/v3", api::router(self.clone()))
            .merge(mcp::router(self.clone()))
            .route(
                "/health",
                get(move || {
                    let store = store.clone();
                    async move {
                        match store.ping().await {
                            Ok(()) => (http::StatusCode::OK, "ok"),
                            Err(_) => (http::StatusCode::SERVICE_UNAVAILABLE, "store unavailable"),
                        }
                    }
                }),
            )
            .with_state(self.clone())
    }
}

/// Serves `github0` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: impl Into<httpserve::Listener>,
    github0: &Github0,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    httpserve::serve(listener, github0.router(), shutdown).await
}
