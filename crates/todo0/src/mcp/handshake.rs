//! The guard's answer to a session's handshake (MCP lifecycle, "Initialization"; Streamable
//! HTTP transport, "Session Management").
//!
//! rmcp answers `initialize` by starting the session's worker (a worker task, a service task
//! and their channels: about 110 KB) and keeps it at least until the client's
//! `notifications/initialized`, a round trip later: 256 clients opening sessions at once held
//! about 28 MB for that moment, although the session is parked as soon as its handshake is done
//! (sessions.rs, "Parking"). So the guard answers both messages itself, and the session starts
//! parked: rmcp gives it a worker, replaying this same `initialize`, only when a request needs
//! one.
//!
//! The answer is rmcp's own: the handler's negotiation ([`ServerHandler::negotiate_initialize`]:
//! its `get_info`, with the protocol version agreed as rmcp agrees it), in the shape rmcp gives
//! a session-based peer, under a session id made as rmcp makes them; sent as one JSON object
//! (`application/json`), which the transport allows for any request. Only a request of exactly
//! this shape takes this path; rmcp answers everything else as before:
//!
//! * `initialize` without a session, naming a session-based `protocolVersion` (2024-11-05 …
//!   2025-11-25), with no `MCP-Protocol-Version` header or the same version in it, no
//!   `Mcp-Method` header, and the plain headers of [`super::direct`] (`Accept`, `Host`, no
//!   `Origin`), on a server that keeps sessions; the session limits apply as for rmcp's;
//! * `notifications/initialized` for the caller's session opened this way and not yet ready:
//!   `202 Accepted`, as rmcp answers a notification.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rmcp::ServerHandler;
use rmcp::model::{
    ClientJsonRpcMessage, ClientNotification, ClientRequest, InitializeRequestParams,
    JsonRpcMessage, JsonRpcNotification, JsonRpcRequest, ProtocolVersion, RequestId, ServerResult,
};
use rmcp::transport::common::server_side_http::session_id;
use rmcp::transport::streamable_http_server::session::SessionState;

use super::direct::{self, Direct};
use super::sessions::OwnedSessions;
use crate::domain::Owner;

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";

/// The two messages of the handshake.
enum Handshake {
    Initialize(RequestId, Box<InitializeRequestParams>),
    Initialized,
}

impl Handshake {
    /// The message, when `body` is one of the two (read as rmcp reads it).
    fn read(body: &[u8]) -> Option<Self> {
        match serde_json::from_slice::<ClientJsonRpcMessage>(body).ok()? {
            JsonRpcMessage::Request(JsonRpcRequest {
                id,
                request: ClientRequest::InitializeRequest(init),
                ..
            }) => Some(Self::Initialize(id, Box::new(init.params))),
            JsonRpcMessage::Notification(JsonRpcNotification {
                notification: ClientNotification::InitializedNotification(_),
                ..
            }) => Some(Self::Initialized),
            _ => None,
        }
    }
}

/// The answer to a handshake message of `owner` in `body` (`session`: the request's session
/// id); `None` leaves the request to rmcp.
pub(crate) fn answer(
    direct: &Direct,
    sessions: &OwnedSessions,
    owner: &Owner,
    headers: &HeaderMap,
    session: Option<&str>,
    body: &[u8],
) -> Option<Response> {
    if direct.stateless || !direct.headers_allow(headers) || headers.contains_key(METHOD_HEADER) {
        return None;
    }
    match (Handshake::read(body)?, session) {
        (Handshake::Initialize(id, params), None) => {
            initialize(direct, sessions, owner, headers, id, *params)
        }
        (Handshake::Initialized, Some(session)) => sessions
            .ready_if_parked(session)
            .then(|| StatusCode::ACCEPTED.into_response()),
        _ => None,
    }
}

fn initialize(
    direct: &Direct,
    sessions: &OwnedSessions,
    owner: &Owner,
    headers: &HeaderMap,
    id: RequestId,
    params: InitializeRequestParams,
) -> Option<Response> {
    let version = &params.protocol_version;
    let session_based =
        version.has_initialize() && ProtocolVersion::KNOWN_VERSIONS.contains(version);
    let header_agrees = headers
        .get(VERSION_HEADER)
        .is_none_or(|header| header.as_bytes() == version.as_str().as_bytes());
    if !session_based || !header_agrees {
        return None;
    }
    let result = direct.tools.negotiate_initialize(&params).ok()?;
    let session = session_id();
    let header = HeaderValue::from_str(&session).ok()?;
    if let Err(refusal) = sessions.open_parked(&session, owner, SessionState::new(params)) {
        return Some(super::auth::session_refused(refusal));
    }
    let mut response = direct::reply(id, ServerResult::InitializeResult(result));
    response.headers_mut().insert(SESSION_HEADER, header);
    Some(response)
}
