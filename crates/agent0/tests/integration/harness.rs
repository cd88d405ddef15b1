//! agent0 with everything it talks to, on 127.0.0.1:0: idp0 (its `agent0` client registered for
//! this agent's real address), todo0's MCP server and web app on one store (`testkit::Stack`),
//! and agent0 itself with a chosen model, configured as `secure-agent agent` configures it from
//! the `agent0.env` idp0 writes. [`Person`] is a browser profile logged in through idp0's form.

use std::sync::Arc;

use agent0::config::AuthStrategy;
use agent0::conversations::{ConversationStore, SqliteConversations};
use agent0::llm::Model;
use agent0::llm::offline::OfflineModel;
use agent0::mcp::McpServer;
use agent0::tokens::IdJagTarget;
use protocol::Scopes;
use protocol::assertion::ClientAssertionSigner;
use protocol::token_client::ClientAuth;
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use testkit::{Browser, Stack, location};
use weblogin::{OidcSettings, SessionKey};

/// The running stack.
pub struct AgentStack {
    /// idp0 + todo0 MCP server.
    pub stack: Stack,
    /// agent0's base URL.
    pub base: String,
    /// The todo0 web app's base URL.
    pub todo_app: String,
    /// agent0's state (to inspect the token broker).
    pub app: agent0::AppState,
    /// The conversations database file.
    pub db: std::path::PathBuf,
    model: Arc<dyn Model>,
    server: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )>,
    _data: tempfile::TempDir,
}

impl AgentStack {
    /// With the offline model.
    pub async fn start() -> Self {
        Self::start_with(Arc::new(OfflineModel::new()), |_| {}).await
    }

    /// With `model`, after `adjust` has seen the configuration.
    pub async fn start_with(
        model: Arc<dyn Model>,
        adjust: impl FnOnce(&mut agent0::AgentConfig),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stack = Stack::start_for_agent(&base).await.unwrap();
        let todo_app = stack.start_web_app().await.unwrap();
        let data = tempfile::tempdir().unwrap();
        let db = data.path().join("agent0.db");
        let mut config = config(&stack, &base, model.clone()).await;
        config.store = Arc::new(SqliteConversations::open(&db).await.unwrap());
        adjust(&mut config);
        let app = agent0::AppState::new(config).await.unwrap();
        let server = Some(serve(listener, &app));
        Self {
            stack,
            base,
            todo_app,
            app,
            db,
            model,
            server,
            _data: data,
        }
    }

    /// Stops agent0 and starts a new one on the same address and database (sessions are lost,
    /// as in a real restart; conversations are not).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start_again().await;
    }

    /// Stops agent0 (its address refuses connections until [`Self::start_again`]).
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.server.take() {
            let _ = stop.send(());
            task.await.unwrap().unwrap();
        }
    }

    /// Starts a new agent0 on the stopped one's address and database (sessions are lost).
    pub async fn start_again(&mut self) {
        let store = Arc::new(SqliteConversations::open(&self.db).await.unwrap());
        self.start_again_with(store).await;
    }

    /// Starts a new agent0 (a new instance: sessions are lost) on the stopped one's address,
    /// keeping conversations in `store`.
    pub async fn start_again_with(&mut self, store: Arc<dyn ConversationStore>) {
        let address = self.base.trim_start_matches("http://").to_owned();
        let listener = tokio::net::TcpListener::bind(address).await.unwrap();
        let mut config = config(&self.stack, &self.base, self.model.clone()).await;
        config.store = store;
        self.app = agent0::AppState::new(config).await.unwrap();
        self.server = Some(serve(listener, &self.app));
    }

    /// `path` on agent0.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Logs `user` in through idp0's login form, as a browser would.
    pub async fn login(&self, user: &str) -> Person {
        login_at(&self.stack, &self.base, user).await
    }
}

/// Logs `user` in at the agent0 on `base` (served for `stack`) through idp0's login form.
pub async fn login_at(stack: &Stack, base: &str, user: &str) -> Person {
    let browser = Browser::new();
    let start = browser
        .http
        .get(format!("{base}/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = location(&start).unwrap();
    let password = stack.idp.password(user);
    let done = browser
        .log_in_to(
            authorize.as_str(),
            (user, &password),
            &format!("{base}/callback"),
        )
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER, "callback");
    assert_eq!(done.headers()[LOCATION], "/");
    let mut person = Person {
        browser,
        base: base.to_owned(),
        csrf: String::new(),
    };
    let status = person.get("/auth/status").await.1;
    assert_eq!(status["authenticated"], true, "{status}");
    person.csrf = status["csrf"].as_str().unwrap().to_owned();
    person
}

pub fn serve(
    listener: tokio::net::TcpListener,
    app: &agent0::AppState,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let router = agent0::router(app.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
    });
    (stop, task)
}

/// agent0's configuration for `stack`, from the `agent0.env` idp0 wrote (as the CLI reads it),
/// pointed at the servers' real addresses.
pub async fn config(stack: &Stack, base: &str, model: Arc<dyn Model>) -> agent0::AgentConfig {
    let env = stack.idp.env(devstack::AGENT0_ENV);
    let clock = protocol::clock::system();
    let agent_id = env["AI_AGENT_ID"].clone();
    agent0::AgentConfig {
        oidc: OidcSettings {
            issuer: stack.idp.issuer.clone(),
            client_id: env["OKTA_CLIENT_ID"].clone(),
            client_secret: env["OKTA_CLIENT_SECRET"].clone().into(),
            redirect_uri: format!("{base}/callback"),
            post_logout_redirect_uri: format!("{base}/"),
        },
        offline_access: true,
        session_key: SessionKey::from_secret(&SessionKey::generate_secret()).unwrap(),
        agent_auth: ClientAuth::PrivateKeyJwt(ClientAssertionSigner::new(
            agent_id.clone(),
            stack.idp.agent_key(),
            clock.clone(),
        )),
        agent_id,
        authorization_server: Some((stack.idp.todo0_issuer(), stack.idp.todo0_token_endpoint())),
        mcp_servers: vec![McpServer {
            name: "todo0".into(),
            label: "Todo0 MCP Server".into(),
            url: stack.mcp_url.clone(),
            auth: AuthStrategy::IdJag {
                target: IdJagTarget {
                    connection: "todo0".into(),
                    as_issuer: stack.idp.todo0_issuer(),
                    as_token_endpoint: stack.idp.todo0_token_endpoint(),
                    resource: stack.mcp_url.clone(),
                },
                initial_scopes: Scopes::parse(&env["AI_AGENT_TODO_MCP_SERVER_SCOPES_TO_REQUEST"])
                    .unwrap(),
            },
            auto_approve: Vec::new(),
            in_band_refusals: true,
            declared_tools: None,
        }],
        brokered: Default::default(),
        disabled: Default::default(),
        model,
        store: Arc::new(SqliteConversations::temporary().await.unwrap()),
        max_steps: agent0::agent::DEFAULT_MAX_STEPS,
        clock,
    }
}

/// A logged-in browser profile.
pub struct Person {
    /// Its HTTP client (cookies kept, no redirects followed).
    pub browser: Browser,
    /// The agent0 it talks to (another replica's, to land there).
    pub base: String,
    /// The session's CSRF token.
    pub csrf: String,
}

impl Person {
    /// `GET path` → status and JSON body.
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .browser
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST path` with a JSON body and the CSRF header.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let response = self
            .browser
            .http
            .post(format!("{}{path}", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// One chat turn through `POST /api/chat`; panics unless it is a 200.
    pub async fn chat(&self, message: &str) -> Value {
        let (status, body) = self.post("/api/chat", &json!({"message": message})).await;
        assert_eq!(status, StatusCode::OK, "{message}: {body}");
        body
    }

    /// One chat turn through `POST /api/chat`, approving every tool call it pauses at (as a
    /// person clicking Approve on each card would); the final reply.
    pub async fn chat_approved(&self, message: &str) -> Value {
        let mut reply = self.chat(message).await;
        while reply["confirmation"].is_object() {
            let (status, next) = self.decide(&reply["confirmation"], "approve").await;
            assert_eq!(status, StatusCode::OK, "{message}: {next}");
            reply = next;
        }
        reply
    }

    /// `POST /api/chat/confirm` with `decision` (`approve` or `deny`) on `confirmation`.
    pub async fn decide(&self, confirmation: &Value, decision: &str) -> (StatusCode, Value) {
        self.post(
            "/api/chat/confirm",
            &json!({
                "id": confirmation["id"],
                "conversationId": confirmation["conversationId"],
                "decision": decision,
            }),
        )
        .await
    }

    /// `POST /api/chat/confirm/stream`: the rest of the turn's events, in order.
    pub async fn decide_stream(
        &self,
        confirmation: &Value,
        decision: &str,
    ) -> Vec<(String, Value)> {
        let response = self
            .browser
            .http
            .post(format!("{}/api/chat/confirm/stream", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&json!({
                "id": confirmation["id"],
                "conversationId": confirmation["conversationId"],
                "decision": decision,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        parse_sse(&response.text().await.unwrap())
    }

    /// One chat turn through `POST /api/chat/stream`: the events, in order.
    pub async fn chat_stream(&self, message: &str) -> Vec<(String, Value)> {
        let response = self
            .browser
            .http
            .post(format!("{}/api/chat/stream", self.base))
            .header("x-csrf-token", &self.csrf)
            .json(&json!({"message": message}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        parse_sse(&response.text().await.unwrap())
    }
}

/// Parses a `text/event-stream` body into (event, JSON data) pairs (comments skipped).
pub fn parse_sse(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|block| {
            let mut event = None;
            let mut data = String::new();
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event = Some(name.trim().to_owned());
                } else if let Some(chunk) = line.strip_prefix("data:") {
                    data.push_str(chunk.strip_prefix(' ').unwrap_or(chunk));
                }
            }
            Some((event?, serde_json::from_str(&data).unwrap_or(Value::Null)))
        })
        .collect()
}

/// JSON-RPC answers of the stand-in MCP servers (a few lines of the wire, not an MCP server).
pub mod stand_in {
    use axum::Json;
    use axum::response::{IntoResponse, Response};
    use serde_json::{Value, json};

    /// `initialize`'s answer, opening the session `session`.
    pub fn initialized(id: Value, request: &Value, name: &str, session: String) -> Response {
        let reply = json!({
            "jsonrpc": "2.0",
            "id": id,
            "result": {
                "protocolVersion": request["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": name, "version": "1.0.0"},
            },
        });
        ([("mcp-session-id", session)], Json(reply)).into_response()
    }

    /// A result.
    pub fn result(id: Value, result: Value) -> Response {
        Json(json!({"jsonrpc": "2.0", "id": id, "result": result})).into_response()
    }

    /// `-32601 Method not found`.
    pub fn method_not_found(id: Value) -> Response {
        let reply = json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {"code": -32601, "message": "Method not found"},
        });
        Json(reply).into_response()
    }
}
