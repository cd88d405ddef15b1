//! What a turn tells the chat as it runs, how it ends, and why it could not run: also what a
//! replica relays of a turn resumed for another (`crate::shared::relay`), hence `Deserialize`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::confirm::ConfirmationRequest;
use crate::conversations::{StoreError, ToolResultView};

/// What happens during a turn, as the chat streams it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", content = "data", rename_all = "snake_case")]
pub enum AgentEvent {
    /// The conversation this turn belongs to.
    Conversation {
        /// Its id.
        #[serde(rename = "conversationId")]
        conversation_id: String,
    },
    /// Model text as it arrives.
    Text {
        /// The new text.
        delta: String,
    },
    /// A tool call starts.
    ToolStart {
        /// The call's id.
        id: String,
        /// The tool.
        tool: String,
        /// The connection.
        connection: String,
        /// Its arguments.
        arguments: Value,
    },
    /// A tool call needed more scope and got it.
    StepUp {
        /// The call's id.
        id: String,
        /// The tool.
        tool: String,
        /// Scopes before.
        from: String,
        /// Scopes after.
        to: String,
    },
    /// A tool call finished.
    ToolDone(ToolResultView),
    /// A tool call waits for the person's decision; the turn is paused until then.
    ConfirmRequired(ConfirmationRequest),
    /// A connection needs the person's consent.
    ConsentRequired {
        /// The connection.
        connection: String,
        /// Where to consent.
        #[serde(rename = "interactionUri")]
        interaction_uri: String,
        /// Whether the turn waits for the consent and then resumes the call by itself (the page
        /// then never re-sends the message).
        #[serde(default)]
        waiting: bool,
        /// The connection's resource indicator, on a card that does not wait (a brokered MCP
        /// server whose tools could not be listed without consent): before it re-sends the
        /// message, the page runs `POST /api/oauth-sts/exchange` with it, so agent0 learns the
        /// consent was given (it remembers that it was not, to spare the IdP a round trip at
        /// every turn).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resource: Option<String>,
    },
    /// Something went wrong; the turn goes on if it can.
    Error {
        /// For the person.
        message: String,
    },
    /// The turn is over.
    Done {
        /// The reply.
        message: String,
        /// All tool calls.
        #[serde(rename = "toolResults")]
        tool_results: Vec<ToolResultView>,
    },
}

/// Why a turn could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Empty or too long.
    #[error("{0}")]
    InvalidMessage(String),
    /// The person must log in again.
    #[error("your login has expired; log in again")]
    LoginExpired,
    /// The conversation store failed or the conversation is not theirs.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A finished turn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TurnSummary {
    /// The conversation.
    pub conversation_id: String,
    /// The reply.
    pub message: String,
    /// The tool calls.
    pub tool_results: Vec<ToolResultView>,
}
