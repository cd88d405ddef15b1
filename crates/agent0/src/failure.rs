//! What a person is told when something fails (STYLE: "errors that show internals to people").
//! Each error class becomes one short sentence that says what is wrong and what to do; the
//! technical text (`Display`, with its type names and error chains) goes to the log and, for a
//! tool call, to the chip's expandable detail — never into the chat.

use crate::agent::AgentError;
use crate::conversations::StoreError;
use crate::llm::LlmError;
use crate::mcp::McpError;
use crate::tokens::TokenError;

/// The sentence for an MCP failure on the connection the person knows as `label`.
pub fn mcp(error: &McpError, label: &str) -> String {
    match error {
        McpError::Unavailable { .. } => {
            format!("{label} is not answering; try again in a moment.")
        }
        McpError::Failed { .. } => format!(
            "{label} could not do that right now; try again, or ask your administrator if it keeps happening."
        ),
        McpError::Unauthorized { .. } => format!(
            "{label} did not accept the agent's access; log out and in again, and ask your administrator if it keeps happening."
        ),
        McpError::Scope { .. } => format!(
            "{label} needs a permission the agent could not get; ask your administrator to grant it."
        ),
        McpError::Token(token) => self::token(token, label),
    }
}

/// The sentence for a failure to get an access token for `label`.
pub fn token(error: &TokenError, label: &str) -> String {
    match error {
        TokenError::InteractionRequired { .. } => {
            format!("{label} needs your consent first; follow the link to give it.")
        }
        TokenError::ConsentPending { .. } => {
            format!(
                "{label} is still waiting for your consent; finish it in the window that opened."
            )
        }
        TokenError::ConsentDenied { .. } => {
            format!("Consent to {label} was denied, so the agent did not use it.")
        }
        TokenError::ConsentExpired { .. } => {
            format!("The consent link for {label} expired; ask again to get a new one.")
        }
        TokenError::LoginExpired => "Your login has expired; log in again.".to_owned(),
        TokenError::Refused(_) => format!(
            "Access to {label} was refused by its authorization server; ask your administrator."
        ),
        TokenError::Unavailable(_) => format!(
            "The sign-in service that {label} relies on is not answering; try again in a moment."
        ),
    }
}

/// What the model provider's failure means for the person, as a clause for "I couldn't finish
/// that: …".
pub fn model(error: &LlmError) -> &'static str {
    match error {
        LlmError::RateLimited { .. } => {
            "the model provider is rate limiting requests; try again in a minute"
        }
        LlmError::Overloaded => "the model provider is overloaded; try again in a moment",
        LlmError::Timeout => "the model provider did not answer in time; try again in a moment",
        LlmError::Unreachable(_) => {
            "the model provider cannot be reached; check the network connection or try again in a moment"
        }
        LlmError::Refused { .. } => {
            "the model provider refused the request; ask your administrator to check the model settings"
        }
        LlmError::Invalid(_) => {
            "the model provider's answer could not be read; try again, or ask your administrator"
        }
    }
}

/// The sentence for a turn that could not run at all.
pub fn turn(error: &AgentError) -> String {
    match error {
        // Already written for the person ("the message is empty").
        AgentError::InvalidMessage(text) => text.clone(),
        AgentError::LoginExpired => "Your login has expired; log in again.".to_owned(),
        AgentError::Store(StoreError::NotFound) => {
            "That conversation no longer exists; start a new one.".to_owned()
        }
        AgentError::Store(
            StoreError::Database(_) | StoreError::Unavailable(_) | StoreError::Incompatible(_),
        ) => "Your conversation could not be saved or read; try again in a moment.".to_owned(),
    }
}

/// Whether a text shows internals a person should never read (type paths, HTTP client chains).
pub fn shows_internals(text: &str) -> bool {
    [
        "rmcp::",
        "reqwest",
        "Transport",
        "error sending request",
        "hyper",
        "::",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_reads_as_one_sentence_without_internals() {
        let transport = "Transport [rmcp::transport::worker::WorkerTransport<rmcp::transport::streamable_http_client::StreamableHttpClientWorker<reqwest::Client>>] error: error sending request for url (http://127.0.0.1:9/mcp)";
        let mcp_errors = [
            McpError::Unavailable {
                server: "todo0".into(),
                message: transport.into(),
            },
            McpError::Failed {
                server: "todo0".into(),
                message: "Internal error (JSON-RPC code -32603)".into(),
            },
            McpError::Unauthorized {
                server: "todo0".into(),
                description: "invalid_token".into(),
            },
            McpError::Scope {
                server: "todo0".into(),
                message: "still wants todos.write".into(),
            },
            McpError::Token(TokenError::Unavailable(transport.into())),
            McpError::Token(TokenError::Refused("invalid_client".into())),
            McpError::Token(TokenError::LoginExpired),
        ];
        for e in &mcp_errors {
            let sentence = mcp(e, "todo0");
            assert!(!shows_internals(&sentence), "{sentence}");
            assert!(
                sentence.ends_with('.') && sentence.matches(". ").count() == 0,
                "{sentence}"
            );
        }
        assert_eq!(
            mcp(&mcp_errors[0], "todo0"),
            "todo0 is not answering; try again in a moment."
        );
        let model_errors = [
            LlmError::RateLimited { retry_after: None },
            LlmError::Overloaded,
            LlmError::Timeout,
            LlmError::Unreachable(
                "error sending request: dns error: failed to lookup address information".into(),
            ),
            LlmError::Refused {
                status: 400,
                message: "bad request".into(),
            },
            LlmError::Invalid("expected value at line 1".into()),
        ];
        for e in &model_errors {
            assert!(!shows_internals(model(e)), "{}", model(e));
        }
        assert!(shows_internals(transport));
        assert_eq!(
            turn(&AgentError::Store(StoreError::Database(
                "sqlx::Error: pool timed out".into()
            ))),
            "Your conversation could not be saved or read; try again in a moment."
        );
        assert_eq!(
            turn(&AgentError::Store(StoreError::Unavailable(
                "database connection failed: Connection refused (os error 111)".into()
            ))),
            "Your conversation could not be saved or read; try again in a moment."
        );
    }
}
