//! What the MCP endpoint answers before rmcp sees a request: JSON-RPC 2.0 error objects
//! (JSON-RPC 2.0 §5, §5.1) for bodies that are not JSON (`-32700`, HTTP 400) or not one JSON-RPC
//! message (`-32600`, HTTP 400), and for refusals of the HTTP layer (wrong `Content-Type`, too
//! large, session limits), so every answer of `/mcp` is JSON a client can parse.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rmcp::model::ClientJsonRpcMessage;
use serde::Deserialize;
use serde_json::{Value, json};

/// JSON-RPC 2.0 "Parse error".
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0 "Invalid Request".
pub const INVALID_REQUEST: i64 = -32600;
/// An implementation-defined server error: a limit was reached.
pub const SERVER_BUSY: i64 = -32000;

/// An HTTP `status` answer carrying a JSON-RPC error with no request id.
pub fn error(status: StatusCode, code: i64, message: &str) -> Response {
    error_for(status, code, message, Value::Null)
}

fn error_for(status: StatusCode, code: i64, message: &str, id: Value) -> Response {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The most of a plain-text refusal carried over into a JSON-RPC error message.
const MAX_MESSAGE_BYTES: usize = 1024;

/// rmcp answers some refusals (`404` unknown session, `406` wrong `Accept`, `405`) in plain text;
/// they are rewritten as JSON-RPC errors with the same status and message. Anything else passes.
pub async fn json_refusals(response: Response) -> Response {
    let status = response.status();
    let is_plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !status.is_client_error() || !is_plain {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, MAX_MESSAGE_BYTES).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).into_owned(),
        _ => status.canonical_reason().unwrap_or("refused").to_owned(),
    };
    let mut json = error(status, INVALID_REQUEST, text.trim());
    for (name, value) in &parts.headers {
        if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}

/// Why a POST body is not one JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum BadBody {
    /// Not JSON.
    Parse,
    /// An array: MCP 2025-06-18 and later carry one message per POST.
    Batch,
    /// JSON, but not a JSON-RPC message (with its `id`, when it has a usable one).
    Invalid(Value),
}

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        match self {
            Self::Parse => error(StatusCode::BAD_REQUEST, PARSE_ERROR, "Parse error"),
            Self::Batch => error(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "Invalid Request: batches are not supported",
            ),
            Self::Invalid(id) => error_for(
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "Invalid Request",
                id,
            ),
        }
    }
}

/// The JSON-RPC method and tool name of a POST body (none for a response), or why the body is
/// not exactly one JSON-RPC message.
pub fn read(body: &[u8]) -> Result<Vec<(String, Option<String>)>, BadBody> {
    let Ok(value) = serde_json::from_slice::<Value>(body) else {
        return Err(BadBody::Parse);
    };
    if value.is_array() {
        return Err(BadBody::Batch);
    }
    if ClientJsonRpcMessage::deserialize(&value).is_err() {
        let id = match value.get("id") {
            Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
            _ => Value::Null,
        };
        return Err(BadBody::Invalid(id));
    }
    let method = value.get("method").and_then(Value::as_str);
    let tool = value.pointer("/params/name").and_then(Value::as_str);
    Ok(method
        .map(|m| (m.to_owned(), tool.map(str::to_owned)))
        .into_iter()
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_tool_call_is_read_from_the_body() {
        let single = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete-todo","arguments":{"id":1}}}"#;
        assert_eq!(
            read(single).unwrap(),
            vec![("tools/call".into(), Some("delete-todo".into()))]
        );
        let note = br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        assert_eq!(read(note).unwrap().len(), 1);
    }

    #[test]
    fn bodies_that_are_not_one_message_are_refused() {
        assert_eq!(read(b"not json").unwrap_err(), BadBody::Parse);
        assert_eq!(read(b"[]").unwrap_err(), BadBody::Batch);
        assert_eq!(
            read(br#"{"id":1}"#).unwrap_err(),
            BadBody::Invalid(json!(1))
        );
        assert_eq!(BadBody::Parse.into_response().status(), 400);
    }
}
