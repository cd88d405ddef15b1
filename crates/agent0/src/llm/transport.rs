//! The HTTP plumbing the providers share: a client that never follows redirects (a key must not
//! travel to another origin), timeouts for the start of an answer and between stream chunks,
//! bounded bodies, `retry-after`, server-sent events, error messages cleaned of our secrets, and
//! [`stream_reply`], one streamed model call from request to assembled reply.

use std::error::Error as _;
use std::pin::Pin;
use std::time::Duration;

use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use url::Url;

use super::{LlmError, ModelReply, TextSink};

/// Largest error body read, in bytes; the rest is dropped.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Longest provider message kept in an error, in characters.
const MAX_MESSAGE_CHARS: usize = 500;

/// SSE events of one response, each a `Result`.
pub(super) type SseEvents = Pin<Box<dyn Stream<Item = Result<Event, LlmError>> + Send>>;

/// An HTTP client that follows no redirects (an API key must not travel to another origin).
pub(super) fn client(timeout: Duration) -> Result<reqwest::Client, LlmError> {
    protocol::trust::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout)
        .build()
        .map_err(|e| LlmError::Unreachable(format!("could not build an HTTP client: {e}")))
}

/// `base` with `path` appended below its own path.
pub(super) fn endpoint(base: &Url, path: &str) -> Result<Url, LlmError> {
    if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
        return Err(LlmError::Invalid(format!(
            "the provider base URL must be http(s): {base}"
        )));
    }
    let joined = format!("{}/{}", base.as_str().trim_end_matches('/'), path);
    Url::parse(&joined).map_err(|e| LlmError::Invalid(format!("bad provider URL {joined}: {e}")))
}

/// Sends, waiting at most `timeout` for the response head.
pub(super) async fn send(
    request: reqwest::RequestBuilder,
    timeout: Duration,
) -> Result<reqwest::Response, LlmError> {
    match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => Err(LlmError::Timeout),
        Ok(Err(e)) => Err(from_reqwest(e)),
        Ok(Ok(response)) => Ok(response),
    }
}

/// A transport failure, without the URL and with its causes.
pub(super) fn from_reqwest(error: reqwest::Error) -> LlmError {
    if error.is_timeout() {
        return LlmError::Timeout;
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_decode() {
        LlmError::Invalid(text)
    } else {
        LlmError::Unreachable(text)
    }
}

/// `Retry-After` in its delay-seconds form (the providers do not send the HTTP-date form).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    value
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// Up to [`MAX_ERROR_BODY`] bytes of an error response; whatever arrived if it stalls.
pub(super) async fn read_error_body(mut response: reqwest::Response, timeout: Duration) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(timeout, response.chunk()).await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

/// The whole body, failing past `limit` bytes or when a piece takes longer than `timeout`.
pub(super) async fn read_body(
    mut response: reqwest::Response,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>, LlmError> {
    let mut body = Vec::new();
    loop {
        let chunk = tokio::time::timeout(timeout, response.chunk())
            .await
            .map_err(|_| LlmError::Timeout)?
            .map_err(from_reqwest)?;
        let Some(chunk) = chunk else {
            return Ok(body);
        };
        if body.len() + chunk.len() > limit {
            return Err(LlmError::Invalid(format!(
                "the answer is larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
}

/// Fails unless the response is `text/event-stream`.
pub(super) fn require_event_stream(headers: &HeaderMap) -> Result<(), LlmError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
    {
        Ok(())
    } else {
        Err(LlmError::Invalid(format!(
            "expected an event stream, got content-type {content_type:?}"
        )))
    }
}

/// The response's SSE events, failing once more than `limit` bytes arrived.
pub(super) fn sse_events(response: reqwest::Response, limit: usize) -> SseEvents {
    let mut seen = 0usize;
    let bytes = response.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(from_reqwest)?;
        seen = seen.saturating_add(chunk.len());
        if seen > limit {
            return Err(LlmError::Invalid(format!(
                "the answer is larger than {limit} bytes"
            )));
        }
        Ok(chunk)
    });
    Box::pin(bytes.eventsource().map(|event| {
        event.map_err(|e| match e {
            EventStreamError::Transport(e) => e,
            EventStreamError::Utf8(_) => LlmError::Invalid("the event stream is not UTF-8".into()),
            EventStreamError::Parser(_) => {
                LlmError::Invalid("the event stream could not be parsed".into())
            }
        })
    }))
}

/// The next event, or `None` at the end; [`LlmError::Timeout`] when none comes in `idle`.
pub(super) async fn next_event(
    events: &mut SseEvents,
    idle: Duration,
) -> Result<Option<Event>, LlmError> {
    match tokio::time::timeout(idle, events.next()).await {
        Err(_) => Err(LlmError::Timeout),
        Ok(None) => Ok(None),
        Ok(Some(event)) => event.map(Some),
    }
}

/// A provider's message made safe to show: `secret` removed, control characters dropped,
/// length bounded.
pub(super) fn clean_message(message: &str, secret: &str) -> String {
    let scrubbed = if secret.is_empty() {
        message.to_owned()
    } else {
        message.replace(secret, "[redacted]")
    };
    let mut out: String = scrubbed
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    if scrubbed.chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    let out = out.trim().to_owned();
    if out.is_empty() {
        "(no message)".to_owned()
    } else {
        out
    }
}

/// Largest streamed answer read, in bytes.
pub(super) const MAX_STREAM_BYTES: usize = 16 * 1024 * 1024;

/// Builds a reply from a provider's stream of events.
pub(super) trait StreamAssembler: Default {
    /// Takes one event's data (calling `on_text` for new text); `true` once the stream is done.
    fn apply(&mut self, data: &str, on_text: TextSink<'_>, secret: &str) -> Result<bool, LlmError>;
    /// The assembled reply.
    fn finish(self) -> Result<ModelReply, LlmError>;
}

/// How a provider reads a non-2xx answer: status, `retry-after`, body, and the secret to keep
/// out of the message.
pub(super) type StatusError = fn(u16, Option<Duration>, &[u8], &str) -> LlmError;

/// One streamed model call: sends `request`, maps an HTTP failure with `on_status`, then reads
/// the event stream into an `A` (each wait bounded by `timeout`).
pub(super) async fn stream_reply<A: StreamAssembler>(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    secret: &str,
    on_status: StatusError,
    on_text: TextSink<'_>,
) -> Result<ModelReply, LlmError> {
    let response = send(request, timeout).await?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = retry_after(response.headers());
        let body = read_error_body(response, timeout).await;
        return Err(on_status(status.as_u16(), retry_after, &body, secret));
    }
    require_event_stream(response.headers())?;
    let mut events = sse_events(response, MAX_STREAM_BYTES);
    let mut reply = A::default();
    while let Some(event) = next_event(&mut events, timeout).await? {
        if reply.apply(&event.data, on_text, secret)? {
            break;
        }
    }
    reply.finish()
}
