//! How an MCP failure is classified (a challenge: step up or refused; a transport failure: was
//! the request surely never sent?), why a call stopped stepping up, and a tool result as the
//! model and the chips see it.

use protocol::Scopes;
use rmcp::model::CallToolResult;
use serde_json::Value;

use super::{Failure, McpError, ToolOutcome};
use protocol::step_up::{Challenge, GiveUp, classify_challenge};

pub(super) fn classify_service_error(e: &rmcp::ServiceError) -> Failure {
    if let Some(challenge) = e.auth_challenge() {
        return classify(challenge);
    }
    match e {
        rmcp::ServiceError::McpError(error) => Failure::Fatal(McpError::Failed {
            server: "the MCP server".into(),
            message: format!("{} (JSON-RPC code {})", error.message, error.code.0),
        }),
        other => Failure::Broken {
            message: other.to_string(),
            unsent: surely_unsent(other),
        },
    }
}

/// Whether a request that failed with `e` surely never ran at the server: the connection was
/// refused (nothing was sent), or the server answered that it no longer knows the session.
pub(super) fn surely_unsent(e: &rmcp::ServiceError) -> bool {
    use rmcp::transport::streamable_http_client::StreamableHttpError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        if let Some(StreamableHttpError::<reqwest::Error>::SessionExpired) = error.downcast_ref() {
            return true;
        }
        if let Some(http) = error.downcast_ref::<reqwest::Error>()
            && http.is_connect()
        {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        source = error.source();
    }
    false
}

/// Why a call stopped stepping up, in agent0's words (`description`: the challenge's).
pub(super) fn give_up_message(reason: &GiveUp, granted: &Scopes, description: &str) -> String {
    match reason {
        GiveUp::NamesNoScope => format!("insufficient scope, naming none ({description})"),
        GiveUp::AlreadyGranted { needed } => {
            format!("wants {needed} although the token has {granted} ({description})")
        }
        GiveUp::LimitReached { needed, limit } => {
            format!("still wants {needed} after {limit} step-ups (token has {granted})")
        }
    }
}

pub(super) fn classify(header: &str) -> Failure {
    match classify_challenge(header) {
        Challenge::InsufficientScope { scope, description } => {
            Failure::InsufficientScope(scope, description)
        }
        Challenge::Refused { description } => Failure::Unauthorized(description),
    }
}

/// A tool result as the model and the chips see it.
pub(super) fn outcome(result: CallToolResult, step_up: Option<(Scopes, Scopes)>) -> ToolOutcome {
    let is_error = result.is_error == Some(true);
    let value = match result.structured_content {
        Some(structured) if !is_error => structured,
        _ => {
            let texts: Vec<Value> = result
                .content
                .iter()
                .filter_map(|block| serde_json::to_value(block).ok())
                .map(|block| match block.get("text").and_then(Value::as_str) {
                    Some(text) => Value::String(text.to_owned()),
                    None => block,
                })
                .collect();
            match <[Value; 1]>::try_from(texts) {
                Ok([one]) => one,
                Err(many) => Value::Array(many),
            }
        }
    };
    ToolOutcome {
        result: value,
        is_error,
        step_up,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mcp::MAX_STEP_UPS;

    #[test]
    fn challenges_become_step_up_or_refusal_failures() {
        let header = r#"Bearer error="insufficient_scope", error_description="needs delete", scope="mcp:connect mcp:tools:delete""#;
        assert!(matches!(
            classify(header),
            Failure::InsufficientScope(Some(scope), description)
                if scope == Scopes::parse("mcp:connect mcp:tools:delete").unwrap()
                    && description == "insufficient_scope: needs delete"
        ));
        assert!(matches!(
            classify(r#"Bearer error="invalid_token""#),
            Failure::Unauthorized(_)
        ));
    }

    #[test]
    fn give_up_reasons_keep_agent0s_wording() {
        let granted = Scopes::parse("mcp:connect mcp:tools:read").unwrap();
        let needed = Scopes::parse("mcp:tools:delete").unwrap();
        assert_eq!(
            give_up_message(&GiveUp::NamesNoScope, &granted, "insufficient_scope"),
            "insufficient scope, naming none (insufficient_scope)"
        );
        assert_eq!(
            give_up_message(
                &GiveUp::AlreadyGranted {
                    needed: needed.clone()
                },
                &granted,
                "d"
            ),
            "wants mcp:tools:delete although the token has mcp:connect mcp:tools:read (d)"
        );
        assert_eq!(
            give_up_message(
                &GiveUp::LimitReached {
                    needed,
                    limit: MAX_STEP_UPS
                },
                &granted,
                "d"
            ),
            "still wants mcp:tools:delete after 2 step-ups (token has mcp:connect mcp:tools:read)"
        );
    }
}
