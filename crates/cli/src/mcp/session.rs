//! One MCP session over Streamable HTTP with rmcp: connect with a bearer token, run one
//! operation, close (deleting the session). A `401`/`403` challenge is not an ordinary error
//! here: rmcp 3.11 surfaces the `WWW-Authenticate` value (`ClientInitializeError::auth_challenge`
//! during the handshake, `ServiceError::auth_challenge` afterwards), and it is parsed into a
//! [`Failure`] the caller can act on (step up, or explain).

use std::time::Duration;

use protocol::Scopes;
use protocol::step_up::{Challenge, classify_challenge};
use rmcp::ServiceExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, Implementation, Tool,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use secrecy::{ExposeSecret, SecretString};

/// What to do once connected.
pub(super) enum Op {
    /// `tools/list`, all pages.
    ListTools,
    /// `tools/call`.
    Call(Box<CallToolRequestParams>),
}

/// The operation's result.
pub(super) enum Outcome {
    /// The tools.
    Tools(Vec<Tool>),
    /// The tool's result (which may itself be an error result).
    Called(CallToolResult),
}

/// Why an attempt failed.
pub(super) enum Failure {
    /// `error="insufficient_scope"` (RFC 6750 §3.1): the challenge's `scope`, and its description.
    InsufficientScope {
        scope: Option<Scopes>,
        description: String,
    },
    /// Any other challenge (no token, `invalid_token`, …).
    Unauthorized { description: String },
    /// Anything else.
    Other(anyhow::Error),
}

/// Connects to `server` with `token`, runs `op`, and closes the session.
pub(super) async fn attempt(
    server: &str,
    token: Option<&SecretString>,
    op: &Op,
    timeout: Duration,
) -> Result<Outcome, Failure> {
    match tokio::time::timeout(timeout, run(server, token, op)).await {
        Ok(result) => result,
        Err(_) => Err(Failure::Other(anyhow::anyhow!(
            "{server} did not answer within {} s",
            timeout.as_secs()
        ))),
    }
}

async fn run(server: &str, token: Option<&SecretString>, op: &Op) -> Result<Outcome, Failure> {
    let mut config = StreamableHttpClientTransportConfig::with_uri(server);
    if let Some(token) = token {
        config = config.auth_header(token.expose_secret());
    }
    // The project's client (not rmcp's default): it trusts `--ca-file` and the local CA, and
    // never follows a redirect with the bearer token.
    let http = protocol::trust::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| Failure::Other(anyhow::anyhow!("building the HTTP client: {e}")))?;
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let info = ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("secure-agent", env!("CARGO_PKG_VERSION")),
    );
    let client = match info.serve(transport).await {
        Ok(client) => client,
        Err(e) => {
            return Err(match e.auth_challenge() {
                Some(challenge) => classify(challenge),
                None => Failure::Other(anyhow::anyhow!("connecting to {server}: {e}")),
            });
        }
    };
    let result = match op {
        Op::ListTools => client.list_all_tools().await.map(Outcome::Tools),
        Op::Call(params) => client
            .call_tool((**params).clone())
            .await
            .map(Outcome::Called),
    };
    let _ = client.cancel().await;
    result.map_err(|e| {
        if let Some(challenge) = e.auth_challenge() {
            return classify(challenge);
        }
        let what = match op {
            Op::ListTools => "tools/list".to_owned(),
            Op::Call(params) => format!("tools/call {}", params.name),
        };
        match e {
            rmcp::ServiceError::McpError(error) => Failure::Other(anyhow::anyhow!(
                "{what}: the server answered with an error: {} (JSON-RPC code {})",
                error.message,
                error.code.0
            )),
            e => Failure::Other(anyhow::anyhow!("{what} at {server}: {e}")),
        }
    })
}

/// Sorts a `WWW-Authenticate` value into step-up or refusal.
pub(super) fn classify(header: &str) -> Failure {
    match classify_challenge(header) {
        Challenge::InsufficientScope { scope, description } => {
            Failure::InsufficientScope { scope, description }
        }
        Challenge::Refused { description } => Failure::Unauthorized { description },
    }
}
