//! OpenAI-compatible Chat Completions client (`POST {base}/chat/completions`), the dialect Ollama,
//! vLLM and llama.cpp's server also speak. Follows OpenAI's "Chat Completions" reference:
//! `messages` with `system`/`user`/`assistant` (`tool_calls`: `{id, type: "function", function:
//! {name, arguments}}`, `arguments` a JSON *string*) and `tool` (`tool_call_id`) roles, `tools` as
//! `{type: "function", function: {name, description, parameters}}`, and `stream: true`: SSE
//! `data:` chunks whose `choices[0].delta` carries `content` and `tool_calls` fragments keyed by
//! `index`, closed by `finish_reason` and `data: [DONE]`. Errors are `{"error": {"message", "type",
//! "code"}}` (Ollama also sends `{"error": "text"}`).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::transport;
use super::{
    Block, LlmError, Message, Model, ModelInfo, ModelReply, ModelRequest, Role, StopReason,
    TextSink, ToolSpec,
};

/// Default for [`OpenAiConfig::timeout`]: local models can be slow to start answering.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How to reach an OpenAI-compatible server.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API base, ending before `/chat/completions`: `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` (Ollama), `http://localhost:8000/v1` (vLLM)…
    pub base_url: Url,
    /// Sent as `Authorization: Bearer …` when set; local servers usually need none.
    pub api_key: Option<SecretString>,
    /// The model name as the server knows it.
    pub model: String,
    /// Longest wait for the answer to start, and between two pieces of a streamed answer.
    pub timeout: Duration,
}

impl OpenAiConfig {
    /// `model` at `base_url`, without a key, with [`DEFAULT_TIMEOUT`].
    pub fn new(base_url: Url, model: impl Into<String>) -> Self {
        Self {
            base_url,
            api_key: None,
            model: model.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A model behind an OpenAI-compatible Chat Completions endpoint.
pub struct OpenAiModel {
    http: reqwest::Client,
    endpoint: Url,
    api_key: Option<SecretString>,
    /// `Bearer <key>`, marked sensitive so the HTTP stack never prints it.
    auth_header: Option<HeaderValue>,
    model: String,
    timeout: Duration,
}

impl fmt::Debug for OpenAiModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiModel")
            .field("endpoint", &self.endpoint.as_str())
            .field("model", &self.model)
            .field("has_api_key", &self.api_key.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl OpenAiModel {
    /// A client for `config`; fails on an unusable base URL or API key.
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let endpoint = transport::endpoint(&config.base_url, "chat/completions")?;
        let auth_header = match &config.api_key {
            None => None,
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                    .map_err(|_| {
                    LlmError::Invalid("the API key is not a valid header".into())
                })?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        Ok(Self {
            http: transport::client(config.timeout)?,
            endpoint,
            api_key: config.api_key,
            auth_header,
            model: config.model,
            timeout: config.timeout,
        })
    }
}

#[async_trait]
impl Model for OpenAiModel {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            provider: "openai".into(),
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
        let mut builder = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "text/event-stream")
            .body(body);
        if let Some(auth) = &self.auth_header {
            builder = builder.header(AUTHORIZATION, auth.clone());
        }
        let secret = self.api_key.as_ref().map_or("", |k| k.expose_secret());
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
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    /// The field every compatible server reads (OpenAI's own newest models prefer
    /// `max_completion_tokens`, which local servers do not all accept).
    max_tokens: u32,
    stream: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: String,
    },
    Assistant {
        /// `null` when the turn is only tool calls, as the reference allows.
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: Cow<'a, str>,
    },
}

#[derive(Debug, Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    /// The arguments as a JSON text, not an object.
    arguments: String,
}

#[derive(Debug, Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Map<String, Value>,
}

impl<'a> WireRequest<'a> {
    fn new(model: &'a str, request: &ModelRequest<'a>) -> Self {
        let mut messages = Vec::with_capacity(request.messages.len() + 1);
        if !request.system.is_empty() {
            messages.push(WireMessage::System {
                content: request.system,
            });
        }
        for message in request.messages {
            push_message(&mut messages, message);
        }
        Self {
            model,
            messages,
            tools: request.tools.iter().map(WireTool::from).collect(),
            max_tokens: request.max_tokens,
            stream: true,
        }
    }
}

/// One of our messages as one or more chat messages: each tool result becomes its own `tool`
/// message, placed first so it directly follows the assistant turn that asked for it.
fn push_message<'a>(out: &mut Vec<WireMessage<'a>>, message: &'a Message) {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match block {
            Block::Text { text: piece } => text.push_str(piece),
            Block::ToolUse { id, name, input } => tool_calls.push(WireToolCall {
                id,
                kind: "function",
                function: WireFunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => out.push(WireMessage::Tool {
                tool_call_id: tool_use_id,
                // The format has no error flag; say it in the text the model reads.
                content: if *is_error {
                    Cow::Owned(format!("Error: {content}"))
                } else {
                    Cow::Borrowed(content)
                },
            }),
        }
    }
    match message.role {
        Role::Assistant => {
            if !text.is_empty() || !tool_calls.is_empty() {
                out.push(WireMessage::Assistant {
                    content: (!text.is_empty()).then_some(text),
                    tool_calls,
                });
            }
        }
        Role::User => {
            if !text.is_empty() {
                out.push(WireMessage::User { content: text });
            }
        }
    }
}

impl<'a> From<&'a ToolSpec> for WireTool<'a> {
    fn from(tool: &'a ToolSpec) -> Self {
        Self {
            kind: "function",
            function: WireFunction {
                name: &tool.name,
                description: &tool.description,
                parameters: &tool.input_schema,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Streamed answer

#[derive(Debug, Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    error: Option<ErrorField>,
}

#[derive(Debug, Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: ChunkDelta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct ChunkDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// `error` as OpenAI (an object) or Ollama (a string) sends it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ErrorField {
    Text(String),
    Object {
        #[serde(default)]
        message: String,
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        code: Option<Value>,
    },
}

impl ErrorField {
    fn message(&self) -> &str {
        match self {
            Self::Text(message) | Self::Object { message, .. } => message,
        }
    }

    /// `type` and `code`, whichever are strings.
    fn labels(&self) -> Vec<&str> {
        match self {
            Self::Text(_) => Vec::new(),
            Self::Object { kind, code, .. } => kind
                .as_deref()
                .into_iter()
                .chain(code.as_ref().and_then(Value::as_str))
                .collect(),
        }
    }
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Builds the reply from the stream's chunks.
#[derive(Debug, Default)]
struct Assembler {
    text: String,
    calls: BTreeMap<usize, PartialCall>,
    finish_reason: Option<String>,
    done: bool,
}

impl transport::StreamAssembler for Assembler {
    /// Applies one `data:` payload; `true` at `[DONE]`.
    fn apply(&mut self, data: &str, on_text: TextSink<'_>, secret: &str) -> Result<bool, LlmError> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(true);
        }
        let chunk: Chunk = serde_json::from_str(data)
            .map_err(|e| LlmError::Invalid(format!("unreadable stream chunk: {e}")))?;
        if let Some(error) = chunk.error {
            let message = transport::clean_message(error.message(), secret);
            return Err(if error.labels().iter().any(|l| l.contains("rate_limit")) {
                LlmError::RateLimited { retry_after: None }
            } else {
                LlmError::Invalid(format!(
                    "the provider reported an error mid-answer: {message}"
                ))
            });
        }
        // We never ask for `n > 1`, so only the first choice exists.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            if let Some(piece) = choice.delta.content.filter(|p| !p.is_empty()) {
                on_text(&piece);
                self.text.push_str(&piece);
            }
            for (position, delta) in choice.delta.tool_calls.into_iter().flatten().enumerate() {
                // Servers that send each call whole (Ollama) may leave out `index`.
                let call = self
                    .calls
                    .entry(delta.index.unwrap_or(position))
                    .or_default();
                if let Some(id) = delta.id.filter(|id| !id.is_empty()) {
                    call.id = id;
                }
                if let Some(function) = delta.function {
                    if let Some(name) = function.name.filter(|n| !n.is_empty()) {
                        call.name = name;
                    }
                    if let Some(arguments) = function.arguments {
                        call.arguments.push_str(&arguments);
                    }
                }
            }
            if choice.finish_reason.is_some() {
                self.finish_reason = choice.finish_reason;
            }
        }
        Ok(false)
    }

    fn finish(self) -> Result<ModelReply, LlmError> {
        if !self.done && self.finish_reason.is_none() {
            return Err(LlmError::Invalid(
                "the event stream ended before a finish_reason or [DONE]".into(),
            ));
        }
        let has_calls = !self.calls.is_empty();
        let stop_reason = match self.finish_reason.as_deref() {
            Some("tool_calls" | "function_call") => StopReason::ToolUse,
            // Some servers (older Ollama) report `stop` for a turn that made tool calls.
            Some("stop") | None if has_calls => StopReason::ToolUse,
            Some("stop") | None => StopReason::EndTurn,
            Some("length") => StopReason::MaxTokens,
            Some(_) => StopReason::Other,
        };
        let mut content = Vec::with_capacity(self.calls.len() + 1);
        if !self.text.is_empty() {
            content.push(Block::Text { text: self.text });
        }
        for (index, call) in self.calls {
            if call.name.is_empty() {
                return Err(LlmError::Invalid(format!("tool call {index} has no name")));
            }
            let input = if call.arguments.trim().is_empty() {
                Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_str(&call.arguments).map_err(|e| {
                    LlmError::Invalid(format!("arguments of tool call {index} are not JSON: {e}"))
                })?
            };
            content.push(Block::ToolUse {
                // A few servers omit ids; the reply must still pair calls with results.
                id: if call.id.is_empty() {
                    format!("call_{index}")
                } else {
                    call.id
                },
                name: call.name,
                input,
            });
        }
        Ok(ModelReply {
            content,
            stop_reason,
        })
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
        error: ErrorField,
    }
    let error = serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .map(|b| b.error);
    let message = match &error {
        Some(error) if !error.message().is_empty() => {
            transport::clean_message(error.message(), secret)
        }
        _ => transport::clean_message(&String::from_utf8_lossy(body), secret),
    };
    // OpenAI's "you have no credit left" is a 429 that waiting does not fix.
    let out_of_quota = error
        .as_ref()
        .is_some_and(|e| e.labels().contains(&"insufficient_quota"));
    match status {
        429 if out_of_quota => LlmError::Refused { status, message },
        429 => LlmError::RateLimited { retry_after },
        503 | 529 => LlmError::Overloaded,
        500..=599 => LlmError::Unreachable(format!("the provider failed ({status}): {message}")),
        400..=499 => LlmError::Refused { status, message },
        _ => LlmError::Invalid(format!("unexpected HTTP status {status}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "openai_tests.rs"]
mod tests;
