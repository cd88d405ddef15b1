//! The benchmarks' yardsticks: minimal servers on the same HTTP stack as the product (axum on
//! [`httpserve::serve`], its default limits) that do only the cryptography a request cannot do
//! without, so a product's calls/s can be read as a share of what this machine allows.
//!
//! * MCP ([`mcp_router`]): one RS256 verification of the bearer token per request (protocol's
//!   [`JwtVerifier`] over the authorization server's discovered, cached JWKS, as todo0 does) and
//!   a fixed JSON-RPC reply (`initialize`, notifications, `tools/call`, `DELETE`).
//! * Token endpoint ([`token_router`]): one RS256 verification of the client assertion (of a
//!   fixed one when the request has none: a code redemption with a client secret) and one RS256
//!   signature of a fixed-claims token per request.
//!
//! Each runs on its own runtime ([`InProcess`]) whose threads carry a name, so its CPU time can
//! be told apart from the load client's in the same process.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use protocol::keys::SigningKey;
use protocol::verify::{Expectations, JwtVerifier, TypeRule};
use serde::{Deserialize, Serialize};

use super::server;

/// A server on its own multi-threaded runtime (as many workers as CPUs, like the product's
/// `Runtime::new()`), threads named `thread_name`; shut down when dropped.
pub(crate) struct InProcess {
    runtime: Option<tokio::runtime::Runtime>,
    thread_name: &'static str,
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
}

impl InProcess {
    /// Binds a loopback port and runs `serve(listener)` on a new runtime.
    pub(crate) fn start<F, Fut>(thread_name: &'static str, serve: F) -> anyhow::Result<Self>
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name(thread_name)
            .build()
            .context("starting a server runtime")?;
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
        listener.set_nonblocking(true)?;
        let base = format!("http://{}", listener.local_addr()?);
        runtime.spawn(async move {
            let result = match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => serve(listener).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = result {
                eprintln!("bench: {thread_name}: {e:#}");
            }
        });
        Ok(Self {
            runtime: Some(runtime),
            thread_name,
            base,
        })
    }

    /// CPU time used so far by this server's threads, in seconds.
    pub(crate) fn cpu_seconds(&self) -> Option<f64> {
        server::threads_cpu_seconds(&[self.thread_name])
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// The MCP reference's state: a verifier and what the token must satisfy.
struct McpState {
    verifier: JwtVerifier,
    expect: Expectations,
}

/// The claims the reference reads (deserialising them is part of any server's verification).
#[derive(Deserialize)]
struct Claims {
    #[allow(dead_code)]
    sub: String,
}

/// A JSON-RPC message, read as far as a minimal server must.
#[derive(Deserialize)]
struct RpcRequest {
    #[serde(default)]
    id: Option<serde_json::Value>,
    method: String,
}

/// The MCP reference on `/mcp`: tokens of `issuer` (keys from its discovery document, fetched
/// once) for `audience`.
pub(crate) async fn mcp_router(issuer: &str, audience: &str) -> anyhow::Result<Router> {
    let jwks = protocol::verify::RemoteJwks::discover(
        protocol::discovery::http_client().context("building the HTTP client")?,
        issuer,
        std::time::Duration::from_secs(30),
    )
    .await
    .context("discovering the authorization server's keys")?;
    let state = Arc::new(McpState {
        verifier: JwtVerifier::new(Arc::new(jwks), protocol::clock::system()),
        expect: Expectations::new(issuer, audience, TypeRule::ACCESS_TOKEN),
    });
    Ok(Router::new()
        .route("/mcp", post(post_mcp).delete(delete_mcp))
        .with_state(state))
}

async fn post_mcp(State(state): State<Arc<McpState>>, headers: HeaderMap, body: Bytes) -> Response {
    if !is_authorized(&state, &headers).await {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let Ok(request) = serde_json::from_slice::<RpcRequest>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let Some(id) = request.id else {
        return StatusCode::ACCEPTED.into_response();
    };
    let id = id.to_string();
    let json = [(CONTENT_TYPE, "application/json")];
    match request.method.as_str() {
        "initialize" => (
            json,
            [("mcp-session-id", "reference")],
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"protocolVersion":"2025-11-25","capabilities":{{"tools":{{}}}},"serverInfo":{{"name":"reference","version":"0"}}}}}}"#
            ),
        )
            .into_response(),
        _ => (
            json,
            format!(
                r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[{{"type":"text","text":"10 todos"}}],"structuredContent":{{"count":10,"todos":[]}}}}}}"#
            ),
        )
            .into_response(),
    }
}

async fn delete_mcp(State(state): State<Arc<McpState>>, headers: HeaderMap) -> StatusCode {
    if is_authorized(&state, &headers).await {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn is_authorized(state: &McpState, headers: &HeaderMap) -> bool {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match token {
        Some(token) => state
            .verifier
            .verify::<Claims>(token, &state.expect)
            .await
            .is_ok(),
        None => false,
    }
}

/// The token-endpoint reference's state.
struct TokenState {
    verifier: JwtVerifier,
    /// Client assertions are for any of the endpoints the benchmark posts to.
    expect: Expectations,
    key: SigningKey,
    /// Verified instead when a request carries no `client_assertion`.
    fixed_assertion: String,
}

#[derive(Deserialize)]
struct AssertionClaims {
    sub: String,
    #[allow(dead_code)]
    jti: String,
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: &'a str,
    iat: i64,
    exp: i64,
}

/// The token-endpoint reference on any path: verifies the form's `client_assertion` (issued by
/// `client_id`, signed by `client_key`, for one of `audiences`), signs a token with a new RSA
/// key of the product's size, answers a fixed-shape token response.
pub(crate) fn token_router(
    client_id: &str,
    client_key: &SigningKey,
    audiences: &[String],
    now: protocol::UnixTime,
) -> anyhow::Result<Router> {
    let mut expect = Expectations::new(client_id, "", TypeRule::ANY);
    expect.audiences = audiences.to_vec();
    let fixed_assertion = client_key.sign(
        "JWT",
        &IssuedClaims {
            iss: client_id,
            sub: client_id,
            aud: audiences.first().map_or("", String::as_str),
            jti: "reference",
            iat: now,
            exp: now + 86_400,
        },
    )?;
    let state = Arc::new(TokenState {
        verifier: JwtVerifier::new(
            Arc::new(protocol::verify::StaticKeys::new(&protocol::keys::jwk_set(
                [client_key],
            ))),
            protocol::clock::system(),
        ),
        expect,
        key: SigningKey::generate(protocol::keys::KeyKind::Rsa)?,
        fixed_assertion,
    });
    Ok(Router::new().fallback(post_token).with_state(state))
}

async fn post_token(State(state): State<Arc<TokenState>>, body: Bytes) -> Response {
    let assertion = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "client_assertion")
        .map(|(_, value)| value);
    let assertion = assertion.unwrap_or(std::borrow::Cow::Borrowed(&state.fixed_assertion));
    let Ok(verified) = state
        .verifier
        .verify::<AssertionClaims>(&assertion, &state.expect)
        .await
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let now = protocol::clock::system().now();
    let claims = IssuedClaims {
        iss: "reference",
        sub: &verified.claims.sub,
        aud: "reference",
        jti: "reference",
        iat: now,
        exp: now + 300,
    };
    match state.key.sign("JWT", &claims) {
        Ok(token) => (
            [(CONTENT_TYPE, "application/json")],
            format!(
                r#"{{"access_token":"{token}","token_type":"Bearer","expires_in":300,"scope":"reference"}}"#
            ),
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
