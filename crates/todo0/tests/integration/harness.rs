//! A todo0 MCP server on 127.0.0.1:0 with a test authorization server key, over SQLite or a
//! fresh PostgreSQL schema, and a raw JSON-RPC client that exposes HTTP statuses and headers.

use std::sync::Arc;

use dbconn::testing::TestSchema;
use protocol::claims::{AccessTokenClaims, Audience};
use protocol::keys::{KeyKind, SigningKey, jwk_set};
use protocol::verify::StaticKeys;
use protocol::{Clock, Scopes};
use serde_json::{Value, json};
use todo0::store::{PostgresStore, SqliteStore, TodoStore};

pub const ISSUER: &str = "https://idp.test/oauth2/todo0";

/// Which database backs the server.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store, and for PostgreSQL the guard that drops its schema when the test ends. PostgreSQL is
/// required (`TODO0_TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`): an
/// unreachable server fails the test with what to start.
pub async fn store(backend: Backend) -> (Arc<dyn TodoStore>, Option<TestSchema>) {
    match backend {
        Backend::Sqlite => (Arc::new(SqliteStore::temporary().await.unwrap()), None),
        Backend::Postgres => {
            let schema = TestSchema::new("TODO0_TEST_DATABASE_URL");
            let store = match PostgresStore::connect_in_schema(schema.url(), schema.name()).await {
                Ok(store) => store,
                Err(e) => panic!("{}", schema.required(e)),
            };
            (Arc::new(store), Some(schema))
        }
    }
}

/// A running MCP server.
pub struct Server {
    pub client: McpClient,
    pub url: String,
    pub resource: String,
    pub key: SigningKey,
    pub store: Arc<dyn TodoStore>,
    pub clock: Arc<dyn Clock>,
    /// The MCP sessions and their owners.
    pub sessions: Arc<todo0::mcp::OwnedSessions>,
    /// The token guard.
    pub guard: todo0::mcp::auth::Guard,
    _schema: Option<TestSchema>,
}

impl Server {
    pub async fn start(backend: Backend, stateless: bool) -> Self {
        Self::start_with(backend, |config| config.stateless = stateless).await
    }

    /// A server whose configuration `configure` adjusts.
    pub async fn start_with(
        backend: Backend,
        configure: impl FnOnce(&mut todo0::mcp::McpConfig),
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let resource = format!("http://{addr}/mcp");
        let key = SigningKey::generate(KeyKind::Rsa).unwrap();
        let keys = Arc::new(StaticKeys::new(&jwk_set([&key])));
        let (store, schema) = store(backend).await;
        let clock = protocol::clock::system();
        let mut config = todo0::mcp::McpConfig::new(ISSUER, &resource);
        configure(&mut config);
        let mcp = todo0::mcp::build(&config, keys, store.clone(), clock.clone());
        let app = mcp.router;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            client: McpClient {
                url: resource.clone(),
            },
            url: resource.clone(),
            resource,
            key,
            store,
            clock,
            sessions: mcp.sessions,
            guard: mcp.guard,
            _schema: schema,
        }
    }

    /// An access token for `user` with `scopes`, as the todo0 AS would issue it.
    pub fn token(&self, user: &str, scopes: &str) -> String {
        let scopes = Scopes::parse(scopes).unwrap();
        let now = self.clock.now();
        let claims = AccessTokenClaims {
            iss: ISSUER.into(),
            aud: Audience::One(self.resource.clone()),
            sub: user.into(),
            exp: now + 600,
            iat: now,
            jti: Some(uuid::Uuid::new_v4().to_string()),
            uid: Some(user.into()),
            cid: Some("agent0-agent".into()),
            client_id: Some("agent0-agent".into()),
            scp: Some(scopes.to_vec()),
            scope: Some(scopes.to_string()),
            auth_time: None,
            act: None,
        };
        self.key.sign("at+jwt", &claims).unwrap()
    }
}

impl std::ops::Deref for Server {
    type Target = McpClient;
    fn deref(&self) -> &McpClient {
        &self.client
    }
}

impl Server {
    /// A raw client for an MCP endpoint started elsewhere.
    pub fn attach(url: &str) -> McpClient {
        McpClient {
            url: url.to_owned(),
        }
    }
}

/// A raw JSON-RPC client that exposes HTTP statuses and headers.
pub struct McpClient {
    pub url: String,
}

impl McpClient {
    /// POSTs one JSON-RPC message; returns status, headers and the JSON-RPC response (parsed
    /// from JSON or the first SSE `data:` line).
    pub async fn rpc(&self, token: Option<&str>, session: Option<&str>, body: &Value) -> Reply {
        let mut request = reqwest::Client::new()
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).ok().or_else(|| {
            // SSE: the JSON-RPC message is the `data:` line that parses (a priming event is empty).
            text.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .find_map(|d| serde_json::from_str(d.trim()).ok())
        });
        Reply {
            status,
            headers,
            json: json.unwrap_or(Value::Null),
            text,
        }
    }

    /// Opens an MCP session (initialize + initialized) with `token`; `None` in stateless mode.
    pub async fn initialize(&self, token: &str) -> Option<String> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}});
        let reply = self.rpc(Some(token), None, &init).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let session = reply
            .headers
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let ack = self.rpc(Some(token), session.as_deref(), &done).await;
        assert!(ack.status == 202 || ack.status == 200, "{}", ack.text);
        session
    }

    /// Ends session `session` (HTTP DELETE); returns the status.
    pub async fn delete_session(&self, token: &str, session: &str) -> u16 {
        reqwest::Client::new()
            .delete(&self.url)
            .bearer_auth(token)
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-11-25")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// POSTs raw `body` with `content_type`; returns status, headers and the JSON body.
    pub async fn post_raw(&self, token: &str, content_type: &str, body: &str) -> Reply {
        let response = reqwest::Client::new()
            .post(&self.url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", content_type)
            .header("mcp-protocol-version", "2025-11-25")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        Reply {
            status,
            headers,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        }
    }

    /// Calls a tool in a fresh session.
    pub async fn call(&self, token: &str, tool: &str, arguments: Value) -> Reply {
        let session = self.initialize(token).await;
        self.rpc(Some(token), session.as_deref(), &call(tool, arguments))
            .await
    }
}

pub fn call(tool: &str, arguments: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments}})
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Reply {
    /// The parsed `WWW-Authenticate` bearer challenge.
    pub fn challenge(&self) -> protocol::www_authenticate::Challenge {
        let value = self
            .headers
            .get("www-authenticate")
            .expect("a challenge")
            .to_str()
            .unwrap();
        let parsed = protocol::www_authenticate::parse(value).unwrap();
        protocol::www_authenticate::find_bearer(&parsed)
            .unwrap()
            .clone()
    }

    /// The tool result's structured content.
    pub fn structured(&self) -> &Value {
        &self.json["result"]["structuredContent"]
    }

    pub fn is_tool_error(&self) -> bool {
        self.json["result"]["isError"] == true
    }
}
