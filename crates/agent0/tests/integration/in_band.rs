//! In-band refusals (issue 14): a stand-in for Okta's TypeScript sample MCP server, which checks a
//! tool's scope inside the tool and answers `200` with an error *result* instead of a `403`
//! challenge. It speaks Streamable HTTP (JSON responses) on 127.0.0.1:0, verifies each bearer
//! token for real (idp0's todo0 authorization server, JWKS over HTTP), and records the scopes
//! and `jti` of the token every `tools/call` carried. agent0's `McpHub` gets its tokens from
//! idp0 by Cross-App Access, as in production.

use std::sync::{Arc, Mutex};

use agent0::config::AuthStrategy;
use agent0::mcp::{MAX_STEP_UPS, McpError, McpHub, McpServer};
use agent0::tokens::{IdJagTarget, Principal, TokenBroker};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use protocol::Scopes;
use protocol::claims::AccessTokenClaims;
use protocol::verify::{Expectations, JwtVerifier, RemoteJwks, TypeRule};
use serde_json::{Value, json};
use testkit::{Browser, IdpHandle};

/// What the stand-in answers to the `n`th `tools/call` (from 0) made with a token holding
/// `scopes`: a `CallToolResult` as JSON.
type Answer = Arc<dyn Fn(usize, &Scopes) -> Value + Send + Sync>;

/// A `tools/call` the stand-in received.
#[derive(Debug, Clone)]
struct Call {
    scopes: Scopes,
    jti: String,
}

#[derive(Clone)]
struct StandIn {
    verifier: JwtVerifier,
    expect: Expectations,
    answer: Answer,
    calls: Arc<Mutex<Vec<Call>>>,
}

/// idp0 whose todo0 AS issues tokens for the stand-in, the stand-in, and a hub for alice.
struct Rig {
    _idp: IdpHandle,
    hub: McpHub,
    server: McpServer,
    alice: Principal,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Rig {
    async fn start(answer: Answer) -> Self {
        Self::start_with(answer, true).await
    }

    /// A rig whose connection steps up on in-band refusals only when `in_band` says so.
    async fn start_with(answer: Answer, in_band: bool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/mcp", listener.local_addr().unwrap());
        let idp = IdpHandle::start_for_resource(&url).await.unwrap();
        let clock = protocol::clock::system();
        let jwks = RemoteJwks::discover(
            protocol::discovery::http_client().unwrap(),
            &idp.todo0_issuer(),
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stand_in = StandIn {
            verifier: JwtVerifier::new(Arc::new(jwks), clock.clone()),
            expect: Expectations::new(idp.todo0_issuer(), &url, TypeRule::ACCESS_TOKEN),
            answer,
            calls: calls.clone(),
        };
        let router = axum::Router::new()
            .route(
                "/mcp",
                post(post_mcp)
                    .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
                    .delete(|| async { StatusCode::OK }),
            )
            .with_state(stand_in);
        tokio::spawn(async move { axum::serve(listener, router).await });

        let login = idp.login(&Browser::new(), "alice").await.unwrap();
        let alice = Principal {
            subject: "alice".into(),
            name: "Alice".into(),
            email: None,
            id_token: login.id_token.unwrap(),
        };
        let env = idp.env(devstack::AGENT0_ENV);
        let server = McpServer {
            name: "sample".into(),
            label: "Sample MCP Server".into(),
            url: url.clone(),
            auth: AuthStrategy::IdJag {
                target: IdJagTarget {
                    connection: "sample".into(),
                    as_issuer: idp.todo0_issuer(),
                    as_token_endpoint: idp.todo0_token_endpoint(),
                    resource: url,
                },
                initial_scopes: Scopes::parse(&env["AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST"])
                    .unwrap(),
            },
            auto_approve: Vec::new(),
            in_band_refusals: in_band,
            declared_tools: None,
        };
        let broker = Arc::new(
            TokenBroker::new(idp.org_token_endpoint(), idp.agent_auth(), clock.clone()).unwrap(),
        );
        let hub = McpHub::new(vec![server.clone()], broker, clock).unwrap();
        Self {
            _idp: idp,
            hub,
            server,
            alice,
            calls,
        }
    }

    async fn create_todo(&self) -> Result<agent0::mcp::ToolOutcome, McpError> {
        let arguments = json!({"title": "buy milk"});
        let Value::Object(arguments) = arguments else {
            unreachable!()
        };
        self.hub
            .call_tool(&self.alice, &self.server, "create-todo", arguments)
            .await
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    fn exchanges(&self) -> u64 {
        self.hub.broker().exchange_count()
    }
}

async fn post_mcp(
    State(stand_in): State<StandIn>,
    headers: HeaderMap,
    Json(message): Json<Value>,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(protocol::bearer::parse_authorization);
    let Some(token) = token else {
        return challenge(r#"Bearer scope="mcp:connect""#);
    };
    let claims = match stand_in
        .verifier
        .verify::<AccessTokenClaims>(token, &stand_in.expect)
        .await
    {
        Ok(verified) => verified.claims,
        Err(_) => return challenge(r#"Bearer error="invalid_token""#),
    };
    let Some(id) = message.get("id").cloned() else {
        // A notification (`notifications/initialized`).
        return StatusCode::ACCEPTED.into_response();
    };
    let result = match message["method"].as_str().unwrap_or_default() {
        "initialize" => {
            return super::harness::stand_in::initialized(
                id,
                &message,
                "Todo Manager",
                "stand-in-session".to_owned(),
            );
        }
        "tools/list" => json!({"tools": [{
            "name": "create-todo",
            "description": "Create a new todo item.",
            "inputSchema": {"type": "object"},
        }]}),
        "tools/call" => {
            let scopes = claims.scopes();
            let n = {
                let mut calls = stand_in.calls.lock().unwrap();
                calls.push(Call {
                    scopes: scopes.clone(),
                    jti: claims.jti.clone().unwrap_or_default(),
                });
                calls.len() - 1
            };
            (stand_in.answer)(n, &scopes)
        }
        _ => return super::harness::stand_in::method_not_found(id),
    };
    super::harness::stand_in::result(id, result)
}

fn challenge(value: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, value)],
    )
        .into_response()
}

/// A text tool result, as the sample writes them.
fn text_result(text: &str, is_error: bool) -> Value {
    json!({"content": [{"type": "text", "text": text}], "isError": is_error})
}

/// The newer sample's refusal for a token lacking `missing`.
fn insufficient_scope(missing: &str, all: &str) -> Value {
    let body = json!({
        "error": "insufficient_scope",
        "error_description": format!("Missing required scopes: {missing}"),
        "required_scopes": [missing],
        "scope": all,
        "www_authenticate": format!(
            "Bearer error=\"insufficient_scope\", scope=\"{all}\", resource_metadata=\"http://127.0.0.1/.well-known/oauth-protected-resource/mcp\""
        ),
    });
    text_result(&body.to_string(), true)
}

/// The older sample's answer to a token it did not accept.
fn invalid_or_expired() -> Value {
    text_result(
        r#"{"error":"Unauthorized","message":"Invalid or expired token"}"#,
        true,
    )
}

fn created() -> Value {
    text_result(
        r#"{"success":true,"todo":{"id":1,"title":"buy milk"},"message":"Todo created successfully"}"#,
        false,
    )
}

fn scopes(value: &str) -> Scopes {
    Scopes::parse(value).unwrap()
}

#[tokio::test]
async fn an_in_band_insufficient_scope_steps_up_once_and_the_call_succeeds() {
    let rig = Rig::start(Arc::new(|_, scopes: &Scopes| {
        if scopes.contains("mcp:tools:manage") {
            created()
        } else {
            insufficient_scope("mcp:tools:manage", "mcp:connect mcp:tools:manage")
        }
    }))
    .await;

    let outcome = rig.create_todo().await.unwrap();
    assert!(!outcome.is_error, "{:?}", outcome.result);
    let result: Value = serde_json::from_str(outcome.result.as_str().unwrap()).unwrap();
    assert_eq!(result["success"], true);
    assert_eq!(result["todo"]["title"], "buy milk");
    let (from, to) = outcome.step_up.expect("the call stepped up");
    assert_eq!(from, scopes("mcp:connect mcp:tools:read"));
    assert_eq!(to, scopes("mcp:connect mcp:tools:manage mcp:tools:read"));

    let calls = rig.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(!calls[0].scopes.contains("mcp:tools:manage"));
    assert_eq!(calls[1].scopes, to, "the second token carried the scope");
    assert_ne!(calls[0].jti, calls[1].jti);
    assert_eq!(rig.exchanges(), 2);

    // Learned: the next call starts with the stepped-up token (cached, no IdP round trip).
    let again = rig.create_todo().await.unwrap();
    assert!(!again.is_error && again.step_up.is_none());
    assert_eq!(rig.calls().len(), 3);
    assert_eq!(rig.exchanges(), 2);
}

#[tokio::test]
async fn in_band_refusals_beyond_the_step_up_limit_end_with_the_normal_failure() {
    // Each answer wants one more scope than the token has: no token ever satisfies it.
    let wanted = ["mcp:tools:manage", "mcp:tools:delete", "mcp:tools:admin"];
    let rig = Rig::start(Arc::new(move |n, _: &Scopes| {
        let missing = wanted[n.min(wanted.len() - 1)];
        insufficient_scope(missing, missing)
    }))
    .await;

    let error = rig.create_todo().await.unwrap_err();
    assert!(matches!(error, McpError::Scope { .. }), "{error}");
    let detail = error.to_string();
    assert!(
        detail.contains("mcp:tools:admin")
            && detail.contains(&format!("after {MAX_STEP_UPS} step-ups")),
        "{detail}"
    );
    assert_eq!(
        agent0::failure::mcp(&error, &rig.server.label),
        "Sample MCP Server needs a permission the agent could not get; ask your administrator to grant it."
    );
    let calls = rig.calls();
    assert_eq!(calls.len(), 1 + MAX_STEP_UPS, "no loop: {calls:?}");
    assert!(calls[2].scopes.contains("mcp:tools:delete"));
    assert_eq!(rig.exchanges(), 3);
    // Refusals that never led to a success teach nothing: the next call starts from the
    // connection's first scopes again.
    let _ = rig.create_todo().await;
    let calls = rig.calls();
    assert_eq!(
        calls[1 + MAX_STEP_UPS].scopes,
        scopes("mcp:connect mcp:tools:read")
    );
}

#[tokio::test]
async fn a_connection_without_in_band_refusals_returns_them_as_the_tools_result() {
    let rig = Rig::start_with(
        Arc::new(|_, _: &Scopes| {
            insufficient_scope("mcp:tools:manage", "mcp:connect mcp:tools:manage")
        }),
        false,
    )
    .await;

    let outcome = rig.create_todo().await.unwrap();
    assert!(outcome.is_error, "{:?}", outcome.result);
    assert!(outcome.step_up.is_none());
    assert_eq!(
        rig.calls().len(),
        1,
        "no step-up, no second run of the tool"
    );
    assert_eq!(rig.exchanges(), 1);
}

#[tokio::test]
async fn a_tool_error_that_only_mentions_insufficient_scope_is_the_tools_result() {
    let text = "insufficient_scope: this todo list is shared read-only (needs mcp:tools:manage)";
    let rig = Rig::start(Arc::new(move |_, _: &Scopes| text_result(text, true))).await;

    let outcome = rig.create_todo().await.unwrap();
    assert!(outcome.is_error);
    assert_eq!(outcome.result, Value::String(text.into()));
    assert!(outcome.step_up.is_none());
    assert_eq!(rig.calls().len(), 1, "no step-up, no retry");
    assert_eq!(rig.exchanges(), 1);
}

#[tokio::test]
async fn invalid_or_expired_token_once_is_retried_with_a_fresh_token() {
    let rig = Rig::start(Arc::new(|n, _: &Scopes| {
        if n == 0 {
            invalid_or_expired()
        } else {
            created()
        }
    }))
    .await;

    let outcome = rig.create_todo().await.unwrap();
    assert!(!outcome.is_error, "{:?}", outcome.result);
    assert!(outcome.step_up.is_none());
    let calls = rig.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_ne!(calls[0].jti, calls[1].jti, "the retry carried a new token");
    assert_eq!(calls[0].scopes, calls[1].scopes);
    assert_eq!(
        rig.exchanges(),
        2,
        "the refused token was dropped and re-exchanged"
    );
}

#[tokio::test]
async fn invalid_or_expired_token_twice_fails_without_a_third_attempt() {
    let rig = Rig::start(Arc::new(|_, _: &Scopes| invalid_or_expired())).await;

    let error = rig.create_todo().await.unwrap_err();
    assert!(matches!(error, McpError::Unauthorized { .. }), "{error}");
    assert!(
        error.to_string().contains("Invalid or expired token"),
        "{error}"
    );
    let calls = rig.calls();
    assert_eq!(calls.len(), 2, "one retry, no third attempt: {calls:?}");
    assert_ne!(calls[0].jti, calls[1].jti);
    assert_eq!(rig.exchanges(), 2);
}
