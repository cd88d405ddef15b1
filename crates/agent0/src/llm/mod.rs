//! The language-model seam: one [`Model`] trait for every provider (Anthropic Messages, AWS
//! Bedrock Converse, OpenAI-compatible chat completions, and the built-in offline model), over a
//! provider-neutral conversation shape modelled on content blocks (text, tool use, tool result),
//! which every provider maps to and from its own wire format.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person (and tool results, which providers expect in a user turn).
    User,
    /// The model.
    Assistant,
}

/// One piece of a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    /// Plain text (Markdown from the model).
    Text {
        /// The text.
        text: String,
    },
    /// The model asks for a tool call.
    ToolUse {
        /// The provider's call id, echoed in the result.
        id: String,
        /// The tool's name as offered to the model.
        name: String,
        /// The arguments (a JSON object).
        input: Value,
    },
    /// A tool call's outcome, sent back to the model.
    ToolResult {
        /// The [`Block::ToolUse`] id it answers.
        tool_use_id: String,
        /// The result as text (usually JSON).
        content: String,
        /// Whether the tool failed.
        is_error: bool,
    },
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// The speaker.
    pub role: Role,
    /// Its blocks, in order.
    pub content: Vec<Block>,
}

impl Message {
    /// A user message with one text block.
    pub fn user_text(text: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: vec![Block::Text { text: text.into() }],
        }
    }

    /// The text blocks joined.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("")
    }
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The name the model must use (unique across connections).
    pub name: String,
    /// What it does.
    pub description: String,
    /// JSON Schema of its arguments (an object schema), shared with the tool list it came from
    /// (offering tools each turn copies no schema).
    pub input_schema: Arc<Map<String, Value>>,
}

/// What the model is asked.
#[derive(Debug, Clone, Copy)]
pub struct ModelRequest<'a> {
    /// The system prompt.
    pub system: &'a str,
    /// The conversation so far, oldest first; never ends with an assistant message.
    pub messages: &'a [Message],
    /// The tools it may call.
    pub tools: &'a [ToolSpec],
    /// Upper bound on the reply's length, in tokens.
    pub max_tokens: u32,
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants the tool calls in its reply run.
    ToolUse,
    /// It hit `max_tokens`.
    MaxTokens,
    /// Anything else the provider reports.
    Other,
}

/// The model's answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelReply {
    /// Text and tool-use blocks, in order.
    pub content: Vec<Block>,
    /// Why it stopped.
    pub stop_reason: StopReason,
}

/// Which model answers, for the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// `anthropic`, `bedrock`, `openai` or `offline`.
    pub provider: String,
    /// The model's id at that provider.
    pub model: String,
}

/// Why a model call failed. Retryable kinds are retried by the agent loop with backoff.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// 429: too many requests.
    #[error("the model provider is rate limiting requests")]
    RateLimited {
        /// The provider's `retry-after`, when given.
        retry_after: Option<Duration>,
    },
    /// 529 / 503: the provider is overloaded.
    #[error("the model provider is overloaded")]
    Overloaded,
    /// No answer in time.
    #[error("the model provider did not answer in time")]
    Timeout,
    /// Could not reach the provider.
    #[error("the model provider could not be reached: {0}")]
    Unreachable(String),
    /// The provider refused the request (4xx other than 429): not retried.
    #[error("the model provider refused the request ({status}): {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The provider's message (never contains our credentials).
        message: String,
    },
    /// The provider answered something we cannot read.
    #[error("the model provider's answer could not be read: {0}")]
    Invalid(String),
}

impl LlmError {
    /// Whether trying again later may help.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Overloaded | Self::Timeout | Self::Unreachable(_)
        )
    }
}

/// Receives text as the model produces it (streaming providers call it per delta; others once).
pub type TextSink<'a> = &'a (dyn Fn(&str) + Send + Sync);

/// A language model that can use tools.
#[async_trait]
pub trait Model: Send + Sync {
    /// Which model this is.
    fn info(&self) -> ModelInfo;

    /// One model call: the reply to `request`, its text also passed to `on_text` as it arrives.
    async fn respond(
        &self,
        request: ModelRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ModelReply, LlmError>;
}

pub mod anthropic;
pub mod bedrock;
pub mod offline;
pub mod openai;
pub mod select;
mod transport;
