//! The guard's direct answer to a plain `tools/call` on a ready session.
//!
//! rmcp serves a stateful POST by handing the message to the session's worker task, which runs
//! the tool and sends the reply back over a channel as a Server-Sent Events stream: two task
//! hand-offs, a second parse of the body, and SSE framing per call — a quarter of todo0's CPU
//! per `tools/call` under load (README, "Performance"). The guard has already parsed the body,
//! verified the token, checked the scopes and the session's owner, so for the commonest request
//! it calls the tool itself and answers with one JSON object (`Content-Type: application/json`),
//! which MCP's Streamable HTTP transport allows for any request ("the server MUST either return
//! `Content-Type: text/event-stream` … or `Content-Type: application/json`"; clients support
//! both).
//!
//! Only a request of exactly this shape takes the direct path; everything else goes to rmcp
//! unchanged, which answers as before (SSE, or its refusal):
//!
//! * `{"jsonrpc":"2.0","id":…,"method":"tools/call","params":{"name":…,"arguments":{…}}}` and no
//!   other member (no task, no other metadata): nothing that needs the session's worker. The one
//!   metadata allowed is `_meta.progressToken`, which rmcp's client (agent0's) puts on every
//!   request: it lets the server send progress notifications, which MCP leaves optional
//!   ("MAY"), and todo0's tools send none, on either path;
//! * `Accept` lists `application/json` and `text/event-stream` plainly (rmcp's `406` otherwise);
//! * `Host` is plainly one rmcp allows (DNS-rebinding protection: the same host, and the same
//!   port where the allowed entry names one) and there is no `Origin`: rmcp judges any other
//!   `Host` or `Origin` (and refuses what it must, `403`);
//! * `MCP-Protocol-Version` absent or one of the session-based versions (2024-11-05 … 2025-11-25),
//!   so none of the newer per-request header rules apply;
//! * the session is the caller's and initialized (`notifications/initialized` accepted), or the
//!   server is stateless (no session header);
//! * the tool exists.

use std::borrow::Cow;
use std::sync::Arc;

use axum::http::uri::Authority;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rmcp::model::{
    JsonObject, ProgressToken, ProtocolVersion, RequestId, ServerJsonRpcMessage, ServerResult,
};
use serde::Deserialize;

use super::tools::TodoTools;

/// A `tools/call` request with nothing else in it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolCall<'a> {
    #[serde(borrow)]
    jsonrpc: Cow<'a, str>,
    id: RequestId,
    #[serde(borrow)]
    method: Cow<'a, str>,
    #[serde(borrow)]
    params: CallParams<'a>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(default)]
    arguments: Option<JsonObject>,
    /// Only a progress token (a string or an integer) may be here.
    #[serde(rename = "_meta", default)]
    _meta: Option<ProgressOnly>,
}

/// Request metadata with nothing but `progressToken` in it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProgressOnly {
    #[serde(rename = "progressToken")]
    _progress_token: ProgressToken,
}

impl<'a> ToolCall<'a> {
    /// The call, when `body` is exactly a plain `tools/call` request.
    pub(crate) fn read(body: &'a [u8]) -> Option<Self> {
        let call: Self = serde_json::from_slice(body).ok()?;
        (call.jsonrpc == "2.0" && call.method == "tools/call").then_some(call)
    }

    /// The tool's name.
    pub(crate) fn tool(&self) -> &str {
        &self.params.name
    }

    /// The request id and the arguments (an empty object when absent, as rmcp passes them).
    pub(crate) fn into_parts(self) -> (RequestId, JsonObject) {
        (self.id, self.params.arguments.unwrap_or_default())
    }
}

/// What the guard needs to answer requests itself.
#[derive(Clone)]
pub(crate) struct Direct {
    /// The tools calls are answered with.
    pub(crate) tools: TodoTools,
    /// The server keeps no sessions.
    pub(crate) stateless: bool,
    /// The `Host`s rmcp accepts (any, when empty).
    pub(crate) hosts: Arc<[String]>,
}

impl Direct {
    /// Whether the request's headers allow the direct path (see the module documentation).
    pub(crate) fn headers_allow(&self, headers: &HeaderMap) -> bool {
        headers_allow(headers, &self.hosts)
    }
}

fn headers_allow(headers: &HeaderMap, hosts: &[String]) -> bool {
    plain_accept(headers)
        && session_based_version(headers)
        && plainly_allowed_host(headers, hosts)
        && !headers.contains_key(header::ORIGIN)
}

/// Whether `Host` names one of `allowed` (rmcp's rule: the same host, case and IPv6 brackets
/// aside, and the same port where the entry names one; any host when `allowed` is empty).
fn plainly_allowed_host(headers: &HeaderMap, allowed: &[String]) -> bool {
    let mut values = headers.get_all(header::HOST).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Some((host, port)) = value.to_str().ok().and_then(authority) else {
        return false;
    };
    allowed.is_empty()
        || allowed.iter().filter_map(|entry| allowed_entry(entry)).any(
            |(allowed_host, allowed_port)| {
                allowed_host == host && allowed_port.is_none_or(|p| Some(p) == port)
            },
        )
}

/// The host (lower case, without IPv6 brackets) and port of an authority (`host[:port]`).
fn authority(value: &str) -> Option<(String, Option<u16>)> {
    let authority = Authority::try_from(value.trim()).ok()?;
    Some((bare_host(authority.host()), authority.port_u16()))
}

/// An allowed-hosts entry read as rmcp reads it: an authority, else a host alone (`::1`).
fn allowed_entry(entry: &str) -> Option<(String, Option<u16>)> {
    let entry = entry.trim();
    match authority(entry) {
        Some(parsed) => Some(parsed),
        None if entry.is_empty() => None,
        None => Some((bare_host(entry), None)),
    }
}

fn bare_host(host: &str) -> String {
    host.trim_matches(['[', ']']).to_ascii_lowercase()
}

fn plain_accept(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let (mut json, mut sse) = (false, false);
    for entry in value.split(',').map(str::trim) {
        json |= entry.eq_ignore_ascii_case("application/json");
        sse |= entry.eq_ignore_ascii_case("text/event-stream");
    }
    json && sse
}

fn session_based_version(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all("mcp-protocol-version").iter();
    match (values.next(), values.next()) {
        (None, _) => true,
        (Some(value), None) => [
            ProtocolVersion::V_2025_11_25,
            ProtocolVersion::V_2025_06_18,
            ProtocolVersion::V_2025_03_26,
            ProtocolVersion::V_2024_11_05,
        ]
        .iter()
        .any(|known| value.as_bytes() == known.as_str().as_bytes()),
        _ => false,
    }
}

/// The JSON-RPC response carrying `result`, as one JSON object, in the shape rmcp gives a peer
/// of a session-based version (no `resultType`, object-only structured content).
pub(crate) fn reply(id: RequestId, mut result: ServerResult) -> Response {
    result.strip_result_type_for_legacy_peer();
    result.strip_non_object_output_for_legacy_peer();
    let message = ServerJsonRpcMessage::response(result, id);
    match serde_json::to_vec(&message) {
        Ok(body) => json_response(body),
        Err(e) => encoding_failed(&e),
    }
}

/// The JSON-RPC response to a `tools/call` whose structured content is `json` (a compact JSON
/// object): written directly, the same members [`reply`] gives for
/// `CallToolResult::structured` (the content as a text block and as `structuredContent`,
/// `isError: false`), with `json` serialized once rather than built, printed and serialized
/// again as a `serde_json::Value`.
pub(crate) fn reply_structured(id: &RequestId, json: &str) -> Response {
    let mut body = Vec::with_capacity(2 * json.len() + 128);
    body.extend_from_slice(br#"{"jsonrpc":"2.0","id":"#);
    let written = serde_json::to_writer(&mut body, id).and_then(|()| {
        body.extend_from_slice(br#","result":{"content":[{"type":"text","text":"#);
        serde_json::to_writer(&mut body, json)
    });
    if let Err(e) = written {
        return encoding_failed(&e);
    }
    body.extend_from_slice(br#"}],"structuredContent":"#);
    body.extend_from_slice(json.as_bytes());
    body.extend_from_slice(br#","isError":false}}"#);
    json_response(body)
}

fn encoding_failed(e: &serde_json::Error) -> Response {
    tracing::error!(error = %e, "could not encode a result");
    super::jsonrpc::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        -32603,
        "could not encode the result",
    )
}

fn json_response(body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The written reply to a structured result means exactly what rmcp's encoding of the same
    /// result (the tool router's path) means, text block included, for any title and either kind
    /// of id, whatever order serde_json keeps an object's members in; and its text block is its
    /// structured content.
    #[tokio::test]
    async fn a_structured_reply_is_what_rmcps_encoding_gives() {
        use crate::domain::Todo;
        use crate::mcp::tools::{Output, TodoList};
        let titles = [
            "plain",
            "quotes \" and \\ backslash",
            "control \u{1} \n \t",
            "</script><!--",
            "ünïcödé ✓ 😀",
            "",
        ];
        let todos: Vec<Todo> = titles
            .iter()
            .enumerate()
            .map(|(i, title)| Todo {
                id: i64::try_from(i).unwrap() + 1,
                title: (*title).to_owned(),
                completed: i % 2 == 0,
                created_at: "2026-12-06T20:00:00Z".into(),
                updated_at: "2026-12-06T20:00:01Z".into(),
            })
            .collect();
        let list = TodoList {
            count: todos.len(),
            todos,
        };
        let json = serde_json::to_string(&list).unwrap();
        for id in [RequestId::Number(7), RequestId::String("a\"b".into())] {
            let ours = body_json(reply_structured(&id, &json)).await;
            let routed = Output::Structured(json.clone()).into_result();
            let theirs = body_json(reply(id, ServerResult::CallToolResult(routed))).await;
            assert_eq!(ours, theirs);
            let text = ours["result"]["content"][0]["text"].as_str().unwrap();
            assert_eq!(text, json);
            let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(parsed, ours["result"]["structuredContent"]);
            assert_eq!(parsed, serde_json::to_value(&list).unwrap());
        }
    }

    async fn body_json(response: Response) -> serde_json::Value {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn only_a_plain_tools_call_is_read() {
        let call = ToolCall::read(
            br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get-todos","arguments":{"completed":true}}}"#,
        )
        .unwrap();
        assert_eq!(call.tool(), "get-todos");
        let (id, args) = call.into_parts();
        assert_eq!(id, RequestId::Number(7));
        assert_eq!(args.get("completed"), Some(&serde_json::json!(true)));
        let bare = ToolCall::read(
            br#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"get-todos"}}"#,
        )
        .unwrap();
        assert!(bare.into_parts().1.is_empty());
        // rmcp's client sends a progress token with every request.
        for progress in [r#"1"#, r#""p-1""#] {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"get-todos","arguments":{{}},"_meta":{{"progressToken":{progress}}}}}}}"#
            );
            assert_eq!(ToolCall::read(body.as_bytes()).unwrap().tool(), "get-todos");
        }
        for other in [
            // Anything rmcp must see: other metadata, tasks, other methods, batches, bad versions.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","_meta":{"progressToken":1,"other":1}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","_meta":{"progressToken":null}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","_meta":{"progressToken":{}}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","_meta":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","task":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"get-todos"}}"#,
            r#"{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"get-todos"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"},"extra":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos","arguments":[]}}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-todos"}}]"#,
        ] {
            assert!(ToolCall::read(other.as_bytes()).is_none(), "{other}");
        }
    }

    #[test]
    fn only_plain_headers_of_a_session_based_version_allow_it() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(*name, HeaderValue::from_static(value));
            }
            map
        };
        // rmcp's default list.
        let loopback = [
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let allow =
            |pairs: &[(&'static str, &'static str)]| headers_allow(&headers(pairs), &loopback);
        let both = ("accept", "application/json, text/event-stream");
        let host = ("host", "127.0.0.1:5002");
        assert!(allow(&[both, host]));
        assert!(allow(&[both, host, ("mcp-protocol-version", "2025-11-25")]));
        for host in ["localhost", "LOCALHOST:1", "[::1]:5002"] {
            assert!(allow(&[both, ("host", host)]), "{host}");
        }
        let pinned = ["todo.example:8443".to_owned()];
        assert!(headers_allow(
            &headers(&[both, ("host", "todo.example:8443")]),
            &pinned
        ));
        assert!(!headers_allow(
            &headers(&[both, ("host", "todo.example")]),
            &pinned
        ));
        assert!(!headers_allow(
            &headers(&[both, ("host", "todo.example:8080")]),
            &pinned
        ));
        assert!(headers_allow(
            &headers(&[both, ("host", "anything.example")]),
            &[]
        ));
        for refused in [
            // What rmcp judges: another or no `Host`, two of them, any `Origin`.
            vec![both, ("host", "evil.example")],
            vec![both, ("host", "127.0.0.1.evil.example")],
            vec![both],
            vec![both, host, ("host", "localhost")],
            vec![both, host, ("origin", "http://127.0.0.1:5002")],
            vec![host, ("accept", "application/json")],
            vec![host, ("accept", "application/json;q=0, text/event-stream")],
            vec![
                host,
                ("accept", "application/json"),
                ("accept", "text/event-stream"),
            ],
            vec![both, host, ("mcp-protocol-version", "2026-07-28")],
            vec![both, host, ("mcp-protocol-version", "1999-01-01")],
        ] {
            assert!(!allow(&refused), "{refused:?}");
        }
    }
}
