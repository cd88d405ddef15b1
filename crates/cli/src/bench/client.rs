//! The benchmarks' load client: [`Link`], one keep-alive HTTP/1.1 connection that sends
//! pre-built requests (`bench idp`'s token requests, `bench agent`'s chat turns), and on it
//! [`Session`], raw MCP JSON-RPC as an agent's MCP SDK sends it (Streamable HTTP, protocol
//! 2025-11-25). A session is `initialize` +
//! `notifications/initialized` (keeping the `Mcp-Session-Id` the server assigns, if any); each
//! `tools/call` is one POST whose reply is JSON or an SSE stream; `DELETE` ends the session.
//!
//! It is built to cost the machine as little as possible, so that the server under test gets
//! the cores: hyper's low-level HTTP/1.1 client (`client::conn::http1`), one connection per
//! worker (or session) with `TCP_NODELAY` and no pool, redirects, cookies, decompression or
//! proxy. The connection's dispatcher is polled by the task that uses the link, not by a task
//! of its own, so a request costs no wake-up across tasks; the reply is read into a reused
//! buffer. A call's headers are built once per session and its body once
//! per tool ([`CallTemplate`]): per call only the JSON-RPC id is written, into a buffer that is
//! reclaimed once the previous body has been sent, and the reply is read into a reused buffer.
//! Ids are unique within a session, as MCP requires (basic protocol, "Requests"). Replies are
//! decoded without allocating, only as far as needed to tell success from a JSON-RPC error or a
//! tool error (`isError`) and to read `structuredContent.count`.

use std::fmt::Write as _;
use std::future::{Future, poll_fn};
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Builder, Connection, SendRequest};
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::net::TcpStream;

const PROTOCOL_VERSION: &str = "2025-11-25";
const SESSION_HEADER: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_HEADER: HeaderName = HeaderName::from_static("mcp-protocol-version");
/// The longest a request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Where `{id}` appears in a [`CallTemplate`]'s arguments, the call's JSON-RPC id is written.
const ID_MARK: &str = "{id}";

/// An MCP endpoint (`http://HOST:PORT/PATH`): where to connect and what to ask for.
#[derive(Clone)]
pub(crate) struct Endpoint {
    addr: SocketAddr,
    host: HeaderValue,
    path: Uri,
}

/// One keep-alive connection to an endpoint, opened on first use and again after the server
/// closes it (before a request is sent, so nothing is sent twice).
pub(crate) struct Link {
    endpoint: Endpoint,
    conn: Option<Conn>,
    /// The last reply's body.
    reply: Vec<u8>,
}

/// One user's MCP session on its own connection (in stateless mode: no id, just the token).
pub(crate) struct Session {
    link: Link,
    /// Every POST's headers: host, content type, accept, protocol version, token, session id.
    headers: HeaderMap,
    /// The next JSON-RPC id (`initialize` is 0).
    next_id: u64,
    /// Request bodies are written here and split off; the space comes back once hyper has
    /// written and dropped the previous one.
    body: BytesMut,
}

/// An HTTP/1.1 connection's dispatcher: the future that reads and writes its socket.
type Dispatcher = Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// A connection's request sender and its dispatcher, which the session's task polls itself
/// ([`drive`]); `driver` is `None` once the connection has ended.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    driver: Option<Dispatcher>,
}

/// A `tools/call` request body with its JSON-RPC id left open, built once: the bytes between
/// the places where the id goes (the request's `id`, and every `{id}` in the arguments).
pub(crate) struct CallTemplate {
    parts: Vec<Bytes>,
    len: usize,
}

/// What a successful tool call returned, as far as the benchmark checks it.
pub(crate) struct CallOk {
    /// `structuredContent.count` (`get-todos`).
    pub(crate) count: Option<usize>,
}

/// The parts of a JSON-RPC response the benchmark looks at; everything else is skipped
/// without being stored.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    id: Option<u64>,
    #[serde(default)]
    result: Option<CallResult>,
    #[serde(default)]
    error: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct CallResult {
    #[serde(rename = "isError", default)]
    is_error: Option<bool>,
    #[serde(rename = "structuredContent", default)]
    structured: Option<Structured>,
}

#[derive(Deserialize)]
struct Structured {
    #[serde(default)]
    count: Option<usize>,
}

/// A failed reply's details, decoded only to describe the failure.
#[derive(Deserialize)]
struct Failure {
    #[serde(default)]
    result: Option<FailedResult>,
    #[serde(default)]
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct FailedResult {
    #[serde(default)]
    content: Vec<Content>,
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

impl Endpoint {
    /// The endpoint at `url`, which must be `http://` (the benchmark's servers are on loopback).
    pub(crate) fn new(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
        if uri.scheme_str() != Some("http") {
            bail!("{url}: the benchmark client speaks plain http:// only");
        }
        let authority = uri.authority().context("the URL has no host")?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = (authority.host(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {}", authority.host()))?
            .next()
            .with_context(|| format!("{} has no address", authority.host()))?;
        let host = HeaderValue::from_str(authority.as_str())?;
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).parse()?;
        Ok(Self { addr, host, path })
    }

    /// The `Host` header for it.
    pub(crate) fn host(&self) -> &HeaderValue {
        &self.host
    }

    /// Opens a session for `token` on a new connection: `initialize`, then
    /// `notifications/initialized`.
    pub(crate) async fn open(&self, token: &str) -> anyhow::Result<Session> {
        let mut authorization = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the token is not a valid header value")?;
        authorization.set_sensitive(true);
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(HOST, self.host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(PROTOCOL_HEADER, HeaderValue::from_static(PROTOCOL_VERSION));
        headers.insert(AUTHORIZATION, authorization);
        let mut session = Session {
            link: Link::new(self.clone()),
            headers,
            next_id: 1,
            body: BytesMut::with_capacity(4096),
        };

        let init = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "secure-agent-bench", "version": env!("CARGO_PKG_VERSION")}
            }
        });
        let (status, id) = session
            .post(Bytes::from(init.to_string()))
            .await
            .map_err(|e| anyhow::anyhow!("initialize: {e}"))?;
        if status != StatusCode::OK {
            bail!("initialize: HTTP {status}: {}", session.link.reply_text());
        }
        match find_reply(session.link.reply()) {
            Some((
                Reply {
                    id: Some(0),
                    result: Some(_),
                    ..
                },
                _,
            )) => {}
            _ => bail!(
                "initialize: unexpected reply: {}",
                session.link.reply_text()
            ),
        }
        if let Some(id) = id {
            session.headers.insert(SESSION_HEADER, id);
        }

        let done = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let (status, _) = session
            .post(Bytes::from_static(done.as_bytes()))
            .await
            .map_err(|e| anyhow::anyhow!("notifications/initialized: {e}"))?;
        if !(status == StatusCode::ACCEPTED || status == StatusCode::OK) {
            bail!(
                "notifications/initialized: HTTP {status}: {}",
                session.link.reply_text()
            );
        }
        Ok(session)
    }
}

impl Session {
    /// One `tools/call` with the next id; `Err` describes a failure (transport, HTTP status,
    /// JSON-RPC error, a reply to another id, or a tool error).
    pub(crate) async fn call(&mut self, call: &CallTemplate) -> Result<CallOk, String> {
        let id = self.next_id;
        self.next_id += 1;
        call.write(id, &mut self.body);
        let body = self.body.split().freeze();
        let (status, _) = self.post(body).await?;
        if status != StatusCode::OK {
            return Err(format!(
                "HTTP {status}: {}",
                truncate(&self.link.reply_text())
            ));
        }
        let Some((reply, json)) = find_reply(self.link.reply()) else {
            return Err(format!(
                "no JSON-RPC response in the reply: {}",
                truncate(&self.link.reply_text())
            ));
        };
        if reply.error.is_some() {
            let error = serde_json::from_slice::<Failure>(json)
                .ok()
                .and_then(|f| f.error)
                .map_or_else(
                    || "unreadable".to_owned(),
                    |e| format!("{}: {}", e.code, truncate(&e.message)),
                );
            return Err(format!("JSON-RPC error {error}"));
        }
        if reply.id != Some(id) {
            return Err(format!(
                "the reply is for id {:?}, the request was {id}",
                reply.id
            ));
        }
        match reply.result {
            Some(CallResult {
                is_error: Some(true),
                ..
            }) => {
                let text = serde_json::from_slice::<Failure>(json)
                    .ok()
                    .and_then(|f| f.result)
                    .and_then(|r| r.content.into_iter().find_map(|c| c.text))
                    .unwrap_or_default();
                Err(format!("tool error: {}", truncate(&text)))
            }
            Some(result) => Ok(CallOk {
                count: result.structured.and_then(|s| s.count),
            }),
            None => Err(format!(
                "the reply has neither result nor error: {}",
                truncate(&self.link.reply_text())
            )),
        }
    }

    /// Ends the session (`DELETE` with its id; a no-op without one) and closes the connection.
    pub(crate) async fn close(mut self) {
        let Some(id) = self.headers.get(&SESSION_HEADER).cloned() else {
            return;
        };
        let mut headers = HeaderMap::with_capacity(4);
        for name in [HOST, AUTHORIZATION, PROTOCOL_HEADER] {
            if let Some(value) = self.headers.get(&name) {
                headers.insert(name, value.clone());
            }
        }
        headers.insert(SESSION_HEADER, id);
        let _ = self.link.send(Method::DELETE, headers, Bytes::new()).await;
    }

    /// POSTs `body` with the session's headers; the reply's body is left in the link.
    /// Returns the status and the `Mcp-Session-Id` header, if any.
    async fn post(&mut self, body: Bytes) -> Result<(StatusCode, Option<HeaderValue>), String> {
        let headers = self.headers.clone();
        let (status, mut headers) = self.link.send(Method::POST, headers, body).await?;
        Ok((status, headers.remove(&SESSION_HEADER)))
    }
}

impl Link {
    /// A link to `endpoint`; it connects on its first request.
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
            conn: None,
            reply: Vec::with_capacity(4096),
        }
    }

    /// Sends a request to the endpoint's path and reads the whole reply ([`Self::reply`]);
    /// returns its status and headers. `Err` describes a transport failure or a timeout (the
    /// connection is then dropped: the next request opens a new one).
    pub(crate) async fn send(
        &mut self,
        method: Method,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<(StatusCode, HeaderMap), String> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = self.endpoint.path.clone();
        *request.headers_mut() = headers;
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                // The connection's state is unknown: the next request opens a new one.
                self.conn = None;
                Err(e)
            }
            Err(_) => {
                self.conn = None;
                Err(format!(
                    "no reply within {} s",
                    REQUEST_TIMEOUT.as_secs_f64()
                ))
            }
        }
    }

    /// Sends `request` on the session's connection (opening a new one if there is none or the
    /// server has closed it: the request is not sent yet, so nothing is repeated) and reads the
    /// whole reply into `self.reply`.
    async fn exchange(
        &mut self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, HeaderMap), String> {
        let reusable = match self.conn.as_mut() {
            Some(Conn { sender, driver }) if driver.is_some() && !sender.is_closed() => {
                matches!(drive(driver, sender.ready()).await, Ok(Ok(())))
            }
            _ => false,
        };
        if !reusable {
            self.conn = None;
            let mut conn = connect(self.endpoint.addr).await?;
            drive(&mut conn.driver, conn.sender.ready())
                .await?
                .map_err(|e| describe("the new connection is not usable", &e))?;
            self.conn = Some(conn);
        }
        let Some(Conn { sender, driver }) = self.conn.as_mut() else {
            return Err("no connection".to_owned());
        };
        let response = drive(driver, sender.send_request(request))
            .await?
            .map_err(|e| describe("request failed", &e))?;
        let (parts, mut body) = response.into_parts();
        self.reply.clear();
        while let Some(frame) = drive(driver, body.frame()).await? {
            let frame = frame.map_err(|e| describe("reading the reply failed", &e))?;
            if let Ok(data) = frame.into_data() {
                self.reply.extend_from_slice(&data);
            }
        }
        Ok((parts.status, parts.headers))
    }

    /// The last reply's body.
    pub(crate) fn reply(&self) -> &[u8] {
        &self.reply
    }

    /// The last reply's body as text (for error messages).
    pub(crate) fn reply_text(&self) -> String {
        String::from_utf8_lossy(&self.reply).into_owned()
    }
}

/// A new connection to `addr`: TCP with `TCP_NODELAY` (no delayed-ACK stalls on small
/// requests), HTTP/1.1 keep-alive.
async fn connect(addr: SocketAddr) -> Result<Conn, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("setting TCP_NODELAY: {e}"))?;
    let (sender, connection) = Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| describe("HTTP/1.1 handshake", &e))?;
    Ok(Conn {
        sender,
        driver: Some(Box::pin(connection)),
    })
}

/// Awaits `future` while polling the connection's dispatcher (which does the reading and
/// writing) in the same task: the future first (a ready sender needs no I/O), then the
/// dispatcher, then the future again. If the connection ends while the future is still pending,
/// the connection ended under it.
async fn drive<F: Future>(driver: &mut Option<Dispatcher>, future: F) -> Result<F::Output, String> {
    let mut future = pin!(future);
    poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        let Some(connection) = driver.as_mut() else {
            return Poll::Ready(Err("the connection has ended".to_owned()));
        };
        let ended = connection.as_mut().poll(cx);
        if ended.is_ready() {
            *driver = None;
        }
        // What the dispatcher just did (a response read, a request taken) may complete it.
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(output));
        }
        match ended {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(describe("the connection failed", &e))),
            Poll::Ready(Ok(())) => Poll::Ready(Err("the server closed the connection".to_owned())),
        }
    })
    .await
}

impl CallTemplate {
    /// `tools/call` of `tool` with `arguments` (JSON); every `{id}` in `arguments` becomes the
    /// call's JSON-RPC id (e.g. to give each created item its own title).
    pub(crate) fn new(tool: &str, arguments: &str) -> Self {
        let tool = serde_json::Value::from(tool);
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{ID_MARK},"method":"tools/call","params":{{"name":{tool},"arguments":{arguments}}}}}"#
        );
        let parts: Vec<Bytes> = body
            .split(ID_MARK)
            .map(|part| Bytes::copy_from_slice(part.as_bytes()))
            .collect();
        let len = parts.iter().map(Bytes::len).sum();
        Self { parts, len }
    }

    /// Writes the body for `id` at the end of `out` (allocating only if `out` cannot take back
    /// the space of bodies already sent).
    fn write(&self, id: u64, out: &mut BytesMut) {
        const ID_DIGITS: usize = 20;
        out.reserve(self.len + (self.parts.len() - 1) * ID_DIGITS);
        for (index, part) in self.parts.iter().enumerate() {
            if index > 0 {
                let _ = write!(out, "{id}");
            }
            out.extend_from_slice(part);
        }
    }
}

/// The JSON-RPC response in a reply body and its JSON: the body itself (JSON), or the SSE
/// `data:` line that is a response (priming events are empty; notifications have neither
/// result nor error).
fn find_reply(body: &[u8]) -> Option<(Reply, &[u8])> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first == b'{' {
        return serde_json::from_slice(body).ok().map(|reply| (reply, body));
    }
    body.split(|b| *b == b'\n')
        .filter_map(|line| line.strip_prefix(b"data:"))
        .map(<[u8]>::trim_ascii)
        .filter_map(|data| Some((serde_json::from_slice::<Reply>(data).ok()?, data)))
        .find(|(reply, _)| reply.result.is_some() || reply.error.is_some())
}

/// `context: error: its sources…`.
fn describe(context: &str, error: &hyper::Error) -> String {
    let mut text = format!("{context}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// `text`, cut after 300 characters.
pub(crate) fn truncate(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "client_tests.rs"]
mod tests;
