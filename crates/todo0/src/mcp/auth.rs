//! The MCP endpoint's guard (MCP authorization spec 2025-11-25; RFC 6750 §3; RFC 9728 §5.1):
//! every request needs a valid access token for this resource with `mcp:connect`; a
//! `tools/call` also needs its tool's scope. Scopes are checked here, before rmcp sees the
//! request, so a missing scope is a real `403` with an `insufficient_scope` challenge naming
//! every scope the call needs. The caller's identity travels to the tools in the request's
//! extensions; the token itself goes no further.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use protocol::claims::AccessTokenClaims;
use protocol::verify::{Expectations, JwtError, JwtVerifier};
use protocol::www_authenticate::Challenge;
use protocol::{Clock, Scopes};
use sha2::{Digest, Sha256};

use super::scopes;
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

/// Token checks shared by all requests.
#[derive(Clone)]
pub struct Guard(Arc<GuardInner>);

struct GuardInner {
    verifier: JwtVerifier,
    expect: Expectations,
    resource_metadata: String,
    clock: Arc<dyn Clock>,
    max_body: usize,
    verified: Mutex<HashMap<[u8; 32], (Caller, i64)>>,
    sessions: Mutex<HashMap<String, Owner>>,
}

/// Verified tokens are remembered (by SHA-256) until they expire, so a warm call costs a hash
/// instead of a signature check; the map is cleared when it reaches this size.
const VERIFIED_CACHE_LIMIT: usize = 10_000;
/// Session bindings kept at most; the oldest are dropped first (by clearing half at random).
const SESSION_LIMIT: usize = 10_000;
const SESSION_HEADER: &str = "mcp-session-id";

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
            verified: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
        }))
    }

    /// Verifies a bearer token and derives the caller.
    pub async fn authenticate(&self, token: &str) -> Result<Caller, JwtError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = self.0.clock.now();
        let cached = self
            .0
            .verified
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned());
        if let Some((caller, exp)) = cached
            && now <= exp + self.0.expect.leeway
        {
            return Ok(caller);
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
        if let Ok(mut cache) = self.0.verified.lock() {
            if cache.len() >= VERIFIED_CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(key, (caller.clone(), claims.exp));
        }
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

    fn bind_session(&self, session: &str, owner: &Owner) {
        if let Ok(mut sessions) = self.0.sessions.lock() {
            if sessions.len() >= SESSION_LIMIT {
                let drop: Vec<String> = sessions.keys().take(SESSION_LIMIT / 2).cloned().collect();
                for key in drop {
                    sessions.remove(&key);
                }
            }
            sessions.insert(session.to_owned(), owner.clone());
        }
    }

    fn session_owner(&self, session: &str) -> Option<Owner> {
        self.0
            .sessions
            .lock()
            .ok()
            .and_then(|s| s.get(session).cloned())
    }
}

/// The JSON-RPC method and tool name(s) of a request body (a single message or a batch).
fn calls(body: &[u8]) -> Vec<(String, Option<String>)> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return vec![];
    };
    let messages = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    messages
        .iter()
        .filter_map(|m| {
            let method = m.get("method")?.as_str()?.to_owned();
            let tool = m
                .pointer("/params/name")
                .and_then(|n| n.as_str())
                .map(str::to_owned);
            Some((method, tool))
        })
        .collect()
}

fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// axum middleware in front of the MCP service.
pub async fn require_token(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    let connect: Scopes = [scopes::CONNECT].into_iter().collect();
    let Some(token) = bearer(&request) else {
        return guard.challenge(StatusCode::UNAUTHORIZED, None, &connect);
    };
    let caller = match guard.authenticate(token).await {
        Ok(caller) => caller,
        Err(JwtError::KeysUnavailable(e)) => {
            tracing::error!(error = %e, "cannot fetch the authorization server's keys");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "authorization server keys unavailable",
            )
                .into_response();
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

    let (mut parts, body) = request.into_parts();
    let bytes = if parts.method == Method::POST {
        match axum::body::to_bytes(body, guard.0.max_body).await {
            Ok(bytes) => bytes,
            Err(_) => {
                return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
            }
        }
    } else {
        axum::body::Bytes::new()
    };
    let mut needed = connect.clone();
    for (method, tool) in calls(&bytes) {
        needed = needed.union(&scopes::required(&method, tool.as_deref()));
    }
    if !caller.scopes.contains_all(&needed) {
        tracing::info!(client_id = caller.client_id.as_deref().unwrap_or("-"), needed = %needed, "insufficient scope");
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
    if let Some(session) = &session
        && guard
            .session_owner(session)
            .is_some_and(|owner| owner != caller.owner)
    {
        tracing::warn!(
            client_id = caller.client_id.as_deref().unwrap_or("-"),
            "session used with another user's token"
        );
        return (
            StatusCode::FORBIDDEN,
            "this session belongs to another user",
        )
            .into_response();
    }
    let owner = caller.owner.clone();
    parts.extensions.insert(caller);
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    if session.is_none()
        && let Some(new_session) = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
    {
        guard.bind_session(new_session, &owner);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_calls_are_read_from_single_and_batched_bodies() {
        let single = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete-todo","arguments":{"id":1}}}"#;
        assert_eq!(
            calls(single),
            vec![("tools/call".into(), Some("delete-todo".into()))]
        );
        let batch = br#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get-todos"}}]"#;
        assert_eq!(calls(batch).len(), 2);
        assert!(calls(b"not json").is_empty());
    }
}
