//! The benchmark's MCP client: raw JSON-RPC over keep-alive HTTP/1.1, as an agent's MCP SDK
//! sends it (Streamable HTTP, protocol 2025-11-25). A session is `initialize` +
//! `notifications/initialized`; each `tools/call` is one POST whose reply is JSON or an SSE
//! stream. Replies are decoded only as far as needed to tell success from failure.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;

const PROTOCOL_VERSION: &str = "2025-11-25";
const SESSION_HEADER: &str = "mcp-session-id";

/// The MCP endpoint and a pooled HTTP client for it.
pub(crate) struct Endpoint {
    client: reqwest::Client,
    url: String,
}

/// One user's MCP session (in stateless mode: no id, just the token).
pub(crate) struct Session {
    authorization: HeaderValue,
    id: Option<HeaderValue>,
}

/// The parts of a JSON-RPC response the benchmark looks at.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    result: Option<CallResult>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct CallResult {
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
    #[serde(rename = "structuredContent", default)]
    structured: Option<Structured>,
    #[serde(rename = "content", default)]
    content: Option<Vec<Content>>,
}

#[derive(Deserialize)]
struct Structured {
    #[serde(default)]
    count: Option<usize>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
    message: String,
}

/// What a successful tool call returned, as far as the benchmark checks it.
pub(crate) struct CallOk {
    /// `structuredContent.count` (`get-todos`).
    pub(crate) count: Option<usize>,
}

impl Endpoint {
    /// A client for `url` with a connection pool large enough for every worker.
    pub(crate) fn new(url: &str) -> anyhow::Result<Self> {
        let client = protocol::trust::client_builder()
            .no_proxy()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(300))
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            client,
            url: url.to_owned(),
        })
    }

    /// Opens a session for `token`: `initialize`, then `notifications/initialized`.
    pub(crate) async fn open(&self, token: &str) -> anyhow::Result<Session> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token is not a valid header value")?;
        authorization.set_sensitive(true);
        let mut session = Session {
            authorization,
            id: None,
        };
        let init = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "secure-agent-bench", "version": env!("CARGO_PKG_VERSION")}
            }
        });
        let response = self.post(&session, init.to_string()).await?;
        let status = response.status();
        session.id = response.headers().get(SESSION_HEADER).cloned();
        let body = response.bytes().await?;
        if status != StatusCode::OK {
            bail!(
                "initialize: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        match find_reply(&body) {
            Some(Reply {
                result: Some(_), ..
            }) => {}
            _ => bail!(
                "initialize: unexpected reply: {}",
                String::from_utf8_lossy(&body)
            ),
        }
        let done = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let response = self.post(&session, done.to_owned()).await?;
        let status = response.status();
        if !(status == StatusCode::ACCEPTED || status == StatusCode::OK) {
            bail!(
                "notifications/initialized: HTTP {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(session)
    }

    /// Ends a session (`DELETE` with its id); a no-op without one.
    pub(crate) async fn close(&self, session: &Session) {
        if let Some(id) = &session.id {
            let _ = self
                .client
                .delete(&self.url)
                .header(AUTHORIZATION, session.authorization.clone())
                .header("mcp-protocol-version", PROTOCOL_VERSION)
                .header(SESSION_HEADER, id.clone())
                .send()
                .await;
        }
    }

    /// One `tools/call`; `Err` describes a failure (HTTP status, JSON-RPC error or tool error).
    pub(crate) async fn call(
        &self,
        session: &Session,
        id: u64,
        tool: &str,
        arguments: &str,
    ) -> Result<CallOk, String> {
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"{tool}","arguments":{arguments}}}}}"#
        );
        let response = self
            .post(session, body)
            .await
            .map_err(|e| format!("request failed: {e:#}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("reading the reply failed: {e}"))?;
        if status != StatusCode::OK {
            return Err(format!(
                "HTTP {status}: {}",
                truncate(&String::from_utf8_lossy(&body))
            ));
        }
        match find_reply(&body) {
            Some(Reply {
                error: Some(error), ..
            }) => Err(format!(
                "JSON-RPC error {}: {}",
                error.code,
                truncate(&error.message)
            )),
            Some(Reply {
                result: Some(result),
                ..
            }) => {
                if result.is_error == Some(true) {
                    let text = result
                        .content
                        .and_then(|c| c.into_iter().find_map(|c| c.text))
                        .unwrap_or_default();
                    Err(format!("tool error: {}", truncate(&text)))
                } else {
                    Ok(CallOk {
                        count: result.structured.and_then(|s| s.count),
                    })
                }
            }
            _ => Err(format!(
                "no JSON-RPC response in the reply: {}",
                truncate(&String::from_utf8_lossy(&body))
            )),
        }
    }

    async fn post(&self, session: &Session, body: String) -> reqwest::Result<reqwest::Response> {
        let mut request = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", PROTOCOL_VERSION)
            .header(AUTHORIZATION, session.authorization.clone());
        if let Some(id) = &session.id {
            request = request.header(SESSION_HEADER, id.clone());
        }
        request.body(body).send().await
    }
}

/// The JSON-RPC response in a reply body: the body itself (JSON), or the SSE `data:` line that
/// is a response (priming events are empty; notifications have neither result nor error).
fn find_reply(body: &[u8]) -> Option<Reply> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first == b'{' {
        return serde_json::from_slice(body).ok();
    }
    body.split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .filter_map(|data| serde_json::from_slice::<Reply>(data.trim_ascii()).ok())
        .find(|reply| reply.result.is_some() || reply.error.is_some())
}

fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_found_in_json_and_sse_bodies() {
        let json = br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"structuredContent":{"count":3,"todos":[]}}}"#;
        let reply = find_reply(json).and_then(|r| r.result);
        assert_eq!(
            reply.and_then(|r| r.structured).and_then(|s| s.count),
            Some(3)
        );

        let sse = b"id: 0\nretry: 3000\ndata: \n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"isError\":true,\"content\":[{\"type\":\"text\",\"text\":\"nope\"}]}}\n\n";
        let reply = find_reply(sse).and_then(|r| r.result);
        assert_eq!(reply.and_then(|r| r.is_error), Some(true));

        let error = br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}"#;
        assert!(find_reply(error).is_some_and(|r| r.error.is_some()));
        assert!(find_reply(b"").is_none());
    }
}
