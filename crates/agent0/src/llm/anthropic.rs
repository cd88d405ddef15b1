//! Anthropic Messages API client: `POST {base}/v1/messages` with `anthropic-version: 2023-06-01`
//! and `stream: true`, read as server-sent events in the order Anthropic's "Streaming messages"
//! reference gives (`message_start`, per block `content_block_start` / `content_block_delta`
//! (`text_delta`, `input_json_delta`) / `content_block_stop`, `message_delta` carrying
//! `stop_reason`, `message_stop`, with `ping` and `error` anywhere). HTTP failures are mapped
//! as its "Errors" reference describes them: 429 `rate_limit_error` (with `retry-after`),
//! 529 `overloaded_error`, other 4xx `{"type":"error","error":{"type","message"}}`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::transport;
use super::{
    Block, LlmError, Message, Model, ModelInfo, ModelReply, ModelRequest, Role, StopReason,
    TextSink, ToolSpec,
};

/// The model used when none is configured: the Sonnet alias Anthropic's model list documents
/// whose default request runs without extended thinking, so every reply block fits [`Block`].
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-6";
/// Anthropic's API origin.
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The `anthropic-version` header this client speaks.
pub const API_VERSION: &str = "2023-06-01";
/// Default for [`AnthropicConfig::timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How to reach Anthropic.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// The API key, sent as `x-api-key`.
    pub api_key: SecretString,
    /// The model id or alias, e.g. [`DEFAULT_MODEL`].
    pub model: String,
    /// The API origin (a path prefix is kept, for gateways); `/v1/messages` is appended.
    pub base_url: Url,
    /// Longest wait for the answer to start, and between two pieces of a streamed answer.
    pub timeout: Duration,
}

impl AnthropicConfig {
    /// The defaults ([`DEFAULT_MODEL`], [`DEFAULT_BASE_URL`], [`DEFAULT_TIMEOUT`]) with `api_key`.
    pub fn new(api_key: SecretString) -> Self {
        Self {
            api_key,
            model: DEFAULT_MODEL.to_owned(),
            base_url: Url::parse(DEFAULT_BASE_URL).expect("DEFAULT_BASE_URL is a valid URL"),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A Claude model behind the Messages API.
pub struct AnthropicModel {
    http: reqwest::Client,
    endpoint: Url,
    api_key: SecretString,
    /// `api_key` as a header value marked sensitive, so the HTTP stack never prints it.
    key_header: HeaderValue,
    model: String,
    timeout: Duration,
}

impl fmt::Debug for AnthropicModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicModel")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.model)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AnthropicModel {
    /// A client for `config`; fails on an unusable base URL or API key.
    pub fn new(config: AnthropicConfig) -> Result<Self, LlmError> {
        let endpoint = transport::endpoint(&config.base_url, "v1/messages")?;
        let mut key_header = HeaderValue::from_str(config.api_key.expose_secret())
            .map_err(|_| LlmError::Invalid("the Anthropic API key is not a valid header".into()))?;
        key_header.set_sensitive(true);
        Ok(Self {
            http: transport::client(config.timeout)?,
            endpoint,
            api_key: config.api_key,
            key_header,
            model: config.model,
            timeout: config.timeout,
        })
    }
}

#[async_trait]
impl Model for AnthropicModel {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            provider: "anthropic".into(),
            model: self.model.clone(),
        }
    }

    async fn respond(
        &self,
        request: ModelRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ModelReply, LlmError> {
        let body = serde_json::to_vec(&WireRequest::new(&self.model, &request))
            .map_err(|e| LlmError::Invalid(format!("could not encode the request: {e}")))?;
        let builder = self
            .http
            .post(self.endpoint.clone())
            .header("x-api-key", self.key_header.clone())
            .header("anthropic-version", API_VERSION)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "text/event-stream")
            .body(body);
        let secret = self.api_key.expose_secret();
        transport::stream_reply::<Assembler>(
            builder,
            self.timeout,
            secret,
            error_from_status,
            on_text,
        )
        .await
    }
}

// ---------------------------------------------------------------------------------------------
// Request

#[derive(Debug, Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    system: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    stream: bool,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<WireBlock<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
        is_error: bool,
    },
}

#[derive(Debug, Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: &'a serde_json::Map<String, Value>,
}

impl<'a> WireRequest<'a> {
    fn new(model: &'a str, request: &ModelRequest<'a>) -> Self {
        Self {
            model,
            max_tokens: request.max_tokens,
            system: request.system,
            messages: request.messages.iter().map(WireMessage::from).collect(),
            tools: request.tools.iter().map(WireTool::from).collect(),
            stream: true,
        }
    }
}

impl<'a> From<&'a Message> for WireMessage<'a> {
    fn from(message: &'a Message) -> Self {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let content = message
            .content
            .iter()
            .filter_map(|block| match block {
                // The API rejects empty text blocks; they carry nothing anyway.
                Block::Text { text } if text.is_empty() => None,
                Block::Text { text } => Some(WireBlock::Text { text }),
                Block::ToolUse { id, name, input } => Some(WireBlock::ToolUse { id, name, input }),
                Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => Some(WireBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error: *is_error,
                }),
            })
            .collect();
        Self { role, content }
    }
}

impl<'a> From<&'a ToolSpec> for WireTool<'a> {
    fn from(tool: &'a ToolSpec) -> Self {
        Self {
            name: &tool.name,
            description: &tool.description,
            input_schema: &*tool.input_schema,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Streamed answer

/// One SSE event's `data`, tagged by `type` (which always equals the SSE event name).
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart,
    ContentBlockStart {
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop,
    MessageDelta {
        delta: MessageDelta,
    },
    MessageStop,
    Ping,
    Error {
        error: ApiError,
    },
    /// Anthropic may add event types; the streaming reference asks clients to ignore them.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    /// `thinking`, `redacted_thinking`, server tools…: not part of our conversation model.
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    /// `thinking_delta`, `signature_delta`, `citations_delta`…
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ApiError {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Option<ErrorDetails>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorDetails {
    #[serde(default)]
    error_code: Option<String>,
}

#[derive(Debug)]
enum PartialBlock {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        start_input: Value,
        json: String,
    },
    Ignored,
}

/// Builds the reply from the stream's events.
#[derive(Debug, Default)]
struct Assembler {
    blocks: BTreeMap<usize, PartialBlock>,
    stop_reason: Option<String>,
    stopped: bool,
}

impl transport::StreamAssembler for Assembler {
    /// Applies one event; `true` once `message_stop` arrived.
    fn apply(&mut self, data: &str, on_text: TextSink<'_>, secret: &str) -> Result<bool, LlmError> {
        let event: StreamEvent = serde_json::from_str(data)
            .map_err(|e| LlmError::Invalid(format!("unreadable stream event: {e}")))?;
        match event {
            StreamEvent::ContentBlockStart {
                index,
                content_block,
            } => {
                let block = match content_block {
                    StartBlock::Text { text } => {
                        if !text.is_empty() {
                            on_text(&text);
                        }
                        PartialBlock::Text(text)
                    }
                    StartBlock::ToolUse { id, name, input } => PartialBlock::ToolUse {
                        id,
                        name,
                        start_input: input,
                        json: String::new(),
                    },
                    StartBlock::Other => PartialBlock::Ignored,
                };
                if self.blocks.insert(index, block).is_some() {
                    return Err(LlmError::Invalid(format!(
                        "content block {index} started twice"
                    )));
                }
            }
            StreamEvent::ContentBlockDelta { index, delta } => {
                let block = self.blocks.get_mut(&index).ok_or_else(|| {
                    LlmError::Invalid(format!("delta for content block {index} before its start"))
                })?;
                match (block, delta) {
                    (PartialBlock::Text(text), Delta::Text { text: piece }) => {
                        if !piece.is_empty() {
                            on_text(&piece);
                        }
                        text.push_str(&piece);
                    }
                    (PartialBlock::ToolUse { json, .. }, Delta::InputJson { partial_json }) => {
                        json.push_str(&partial_json);
                    }
                    (_, Delta::Other) | (PartialBlock::Ignored, _) => {}
                    (_, _) => {
                        return Err(LlmError::Invalid(format!(
                            "delta of the wrong kind for content block {index}"
                        )));
                    }
                }
            }
            StreamEvent::MessageDelta { delta } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
            }
            StreamEvent::MessageStop => {
                self.stopped = true;
                return Ok(true);
            }
            StreamEvent::Error { error } => return Err(stream_error(&error, secret)),
            StreamEvent::MessageStart
            | StreamEvent::ContentBlockStop
            | StreamEvent::Ping
            | StreamEvent::Unknown => {}
        }
        Ok(false)
    }

    fn finish(self) -> Result<ModelReply, LlmError> {
        if !self.stopped {
            return Err(LlmError::Invalid(
                "the event stream ended before message_stop".into(),
            ));
        }
        let stop_reason = match self.stop_reason.as_deref() {
            Some("end_turn") => StopReason::EndTurn,
            Some("tool_use") => StopReason::ToolUse,
            Some("max_tokens") => StopReason::MaxTokens,
            Some(_) => StopReason::Other,
            None => return Err(LlmError::Invalid("the answer has no stop_reason".into())),
        };
        let mut content = Vec::with_capacity(self.blocks.len());
        for (index, block) in self.blocks {
            match block {
                PartialBlock::Text(text) if text.is_empty() => {}
                PartialBlock::Text(text) => content.push(Block::Text { text }),
                PartialBlock::ToolUse {
                    id,
                    name,
                    start_input,
                    json,
                } => {
                    let input = if json.trim().is_empty() {
                        match start_input {
                            Value::Null => Value::Object(serde_json::Map::new()),
                            other => other,
                        }
                    } else {
                        serde_json::from_str(&json).map_err(|e| {
                            LlmError::Invalid(format!(
                                "tool input of block {index} is not JSON: {e}"
                            ))
                        })?
                    };
                    content.push(Block::ToolUse { id, name, input });
                }
                PartialBlock::Ignored => {}
            }
        }
        Ok(ModelReply {
            content,
            stop_reason,
        })
    }
}

/// An `error` event inside a 200 stream.
fn stream_error(error: &ApiError, secret: &str) -> LlmError {
    let message = transport::clean_message(&error.message, secret);
    match error.kind.as_str() {
        "overloaded_error" => LlmError::Overloaded,
        "rate_limit_error" => LlmError::RateLimited { retry_after: None },
        "api_error" | "timeout_error" => {
            LlmError::Unreachable(format!("the provider failed mid-answer: {message}"))
        }
        kind => LlmError::Invalid(format!("the provider reported {kind}: {message}")),
    }
}

/// A non-2xx answer.
fn error_from_status(
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
    secret: &str,
) -> LlmError {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: ApiError,
    }
    let error = serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.error)
        .unwrap_or_default();
    let message = if error.message.is_empty() {
        transport::clean_message(&String::from_utf8_lossy(body), secret)
    } else {
        transport::clean_message(&error.message, secret)
    };
    let spend_limit = error.details.as_ref().and_then(|d| d.error_code.as_deref())
        == Some("enforced_spend_limit_reached");
    match status {
        // A spent monthly budget is a 429 too, but waiting minutes will not help.
        429 if spend_limit => LlmError::Refused { status, message },
        429 => LlmError::RateLimited { retry_after },
        503 | 529 => LlmError::Overloaded,
        500..=599 => LlmError::Unreachable(format!("the provider failed ({status}): {message}")),
        400..=499 => LlmError::Refused { status, message },
        _ => LlmError::Invalid(format!("unexpected HTTP status {status}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "anthropic_tests.rs"]
mod tests;
