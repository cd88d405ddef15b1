//! Refusals inside a tool result. Okta's TypeScript sample MCP server (its
//! `packages/todo0/src/mcp-server.ts`) checks scopes in the tool itself and answers `200` with an
//! error result instead of the `403` + `WWW-Authenticate` of the MCP authorization spec
//! (2025-11-25, ARCHITECTURE §5.5):
//! - newer versions: one text block holding
//!   `{"error":"insufficient_scope","error_description":"…","required_scopes":["…"],
//!   "www_authenticate":"Bearer error=\"insufficient_scope\", scope=\"…\""}` (some add `scope`, a
//!   space-separated string), with `isError: true`;
//! - older versions, for a missing scope as well as a bad token:
//!   `{"error":"Unauthorized","message":"Invalid or expired token"}`.
//!
//! Such a result is sorted into the same [`Failure`] an HTTP challenge becomes, so the step-up
//! and the fresh-token retry run with the same limits. Parsing is strict: only an error result
//! that *is* the refusal counts (the whole structured content, or the only content block), and a
//! scope that is not a valid scope token (RFC 6749 §3.3) makes the refusal name none.

use protocol::Scopes;
use rmcp::model::CallToolResult;
use serde_json::{Map, Value};

use super::{Challenge, Failure, classify_challenge};

/// The sample's words for a token it does not accept.
const INVALID_OR_EXPIRED: &str = "Invalid or expired token";
/// The most of a server's `error_description` kept (it goes to the log and the chip's detail).
const MAX_DESCRIPTION: usize = 200;

/// What `result` says about the token, when it is an in-band refusal.
pub(super) fn classify_result(result: &CallToolResult) -> Option<Failure> {
    if result.is_error != Some(true) {
        return None;
    }
    if let Some(Value::Object(body)) = &result.structured_content
        && let Some(failure) = classify_object(body)
    {
        return Some(failure);
    }
    let [only] = result.content.as_slice() else {
        return None;
    };
    let text = only.as_text()?.text.trim();
    if text.trim_end_matches('.') == INVALID_OR_EXPIRED {
        return Some(Failure::Unauthorized(INVALID_OR_EXPIRED.to_owned()));
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(body)) => classify_object(&body),
        _ => None,
    }
}

fn classify_object(body: &Map<String, Value>) -> Option<Failure> {
    match body.get("error").and_then(Value::as_str)? {
        "insufficient_scope" => {
            let description = match body.get("error_description").and_then(Value::as_str) {
                Some(text) => format!("insufficient_scope: {}", shorten(text)),
                None => "insufficient_scope".to_owned(),
            };
            Some(Failure::InsufficientScope(needed_scopes(body), description))
        }
        "Unauthorized"
            if body.get("message").and_then(Value::as_str) == Some(INVALID_OR_EXPIRED) =>
        {
            Some(Failure::Unauthorized(INVALID_OR_EXPIRED.to_owned()))
        }
        _ => None,
    }
}

/// Every scope the refusal names (`required_scopes`, `scope`, `www_authenticate`), or none when
/// it names none or any of them is malformed.
fn needed_scopes(body: &Map<String, Value>) -> Option<Scopes> {
    let mut needed = Scopes::empty();
    match body.get("required_scopes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            for item in list {
                needed = needed.union(&single_scope(item.as_str()?)?);
            }
        }
        Some(_) => return None,
    }
    match body.get("scope") {
        None | Some(Value::Null) => {}
        Some(Value::String(scope)) => needed = needed.union(&Scopes::parse(scope).ok()?),
        Some(_) => return None,
    }
    match body.get("www_authenticate") {
        None | Some(Value::Null) => {}
        Some(Value::String(header)) => match classify_challenge(header) {
            Challenge::InsufficientScope { scope, .. } => {
                if let Some(scope) = scope {
                    needed = needed.union(&scope);
                }
            }
            // A challenge that says something else contradicts the refusal around it.
            Challenge::Refused { .. } => return None,
        },
        Some(_) => return None,
    }
    Some(needed).filter(|s| !s.is_empty())
}

/// `token` as a one-scope set, when it is exactly one valid scope token.
fn single_scope(token: &str) -> Option<Scopes> {
    let scopes = Scopes::parse(token).ok()?;
    (scopes.iter().eq([token])).then_some(scopes)
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(MAX_DESCRIPTION) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn result(value: Value) -> CallToolResult {
        serde_json::from_value(value).unwrap()
    }

    fn text_error(text: &str) -> CallToolResult {
        result(json!({"content": [{"type": "text", "text": text}], "isError": true}))
    }

    fn scopes(value: &str) -> Option<Scopes> {
        Some(Scopes::parse(value).unwrap())
    }

    fn step_up(failure: Option<Failure>) -> Option<Option<Scopes>> {
        match failure {
            Some(Failure::InsufficientScope(scope, _)) => Some(scope),
            _ => None,
        }
    }

    #[test]
    fn the_newer_samples_refusal_names_the_scopes_it_needs() {
        let body = json!({
            "error": "insufficient_scope",
            "error_description": "Missing required scopes: mcp:tools:manage",
            "required_scopes": ["mcp:tools:manage"],
            "www_authenticate": "Bearer error=\"insufficient_scope\", scope=\"mcp:tools:manage\"",
        });
        let failure = classify_result(&text_error(&body.to_string()));
        let Some(Failure::InsufficientScope(scope, description)) = failure else {
            panic!("not a step-up");
        };
        assert_eq!(scope, scopes("mcp:tools:manage"));
        assert_eq!(
            description,
            "insufficient_scope: Missing required scopes: mcp:tools:manage"
        );

        // Any one of the three fields is enough; together they are united.
        for (body, expected) in [
            (
                json!({"error": "insufficient_scope", "required_scopes": ["a:b", "c"]}),
                "a:b c",
            ),
            (
                json!({"error": "insufficient_scope", "scope": "mcp:connect mcp:tools:manage"}),
                "mcp:connect mcp:tools:manage",
            ),
            (
                json!({"error": "insufficient_scope", "www_authenticate": "Bearer error=\"insufficient_scope\", scope=\"x y\", resource_metadata=\"http://h/.well-known/oauth-protected-resource/mcp\""}),
                "x y",
            ),
            (
                json!({"error": "insufficient_scope", "required_scopes": ["d"], "scope": "a b", "www_authenticate": "Bearer error=\"insufficient_scope\", scope=\"c\""}),
                "a b c d",
            ),
        ] {
            assert_eq!(
                step_up(classify_result(&text_error(&body.to_string()))),
                Some(scopes(expected)),
                "{body}"
            );
        }

        // In structured content too.
        let structured = result(json!({
            "content": [],
            "structuredContent": {"error": "insufficient_scope", "scope": "mcp:tools:delete"},
            "isError": true,
        }));
        assert_eq!(
            step_up(classify_result(&structured)),
            Some(scopes("mcp:tools:delete"))
        );
    }

    #[test]
    fn malformed_scopes_make_the_refusal_name_none() {
        for body in [
            json!({"error": "insufficient_scope"}),
            json!({"error": "insufficient_scope", "required_scopes": []}),
            json!({"error": "insufficient_scope", "required_scopes": "mcp:tools:manage"}),
            json!({"error": "insufficient_scope", "required_scopes": ["mcp:tools:manage", 7]}),
            json!({"error": "insufficient_scope", "required_scopes": ["two scopes"]}),
            json!({"error": "insufficient_scope", "required_scopes": ["quote\"d"]}),
            json!({"error": "insufficient_scope", "required_scopes": ["ok"], "scope": "bad\\scope"}),
            json!({"error": "insufficient_scope", "scope": ["a"]}),
            json!({"error": "insufficient_scope", "scope": "ok", "www_authenticate": "Bearer error=\"invalid_token\""}),
            json!({"error": "insufficient_scope", "scope": "ok", "www_authenticate": "not a challenge"}),
            json!({"error": "insufficient_scope", "scope": "ok", "www_authenticate": 3}),
        ] {
            assert_eq!(
                step_up(classify_result(&text_error(&body.to_string()))),
                Some(None),
                "{body}"
            );
        }
    }

    #[test]
    fn only_an_error_result_that_is_the_refusal_counts() {
        let refusal = json!({"error": "insufficient_scope", "scope": "mcp:tools:manage"});
        let not_refusals = [
            // Not marked as an error.
            result(json!({"content": [{"type": "text", "text": refusal.to_string()}]})),
            result(
                json!({"content": [{"type": "text", "text": refusal.to_string()}], "isError": false}),
            ),
            // Merely mentions the words.
            text_error("insufficient_scope: mcp:tools:manage"),
            text_error(&format!("The server said {refusal}")),
            text_error(r#"{"error": "Not Found", "message": "insufficient_scope"}"#),
            text_error(r#"{"error": {"code": "insufficient_scope"}}"#),
            text_error(r#"["insufficient_scope"]"#),
            text_error("Your invalid or expired token list has 3 items"),
            text_error(r#"{"error": "Not Found", "message": "Invalid or expired token"}"#),
            // One of several blocks.
            result(json!({
                "content": [
                    {"type": "text", "text": refusal.to_string()},
                    {"type": "text", "text": "and more"},
                ],
                "isError": true,
            })),
        ];
        for result in not_refusals {
            assert!(classify_result(&result).is_none(), "{result:?}");
        }
    }

    #[test]
    fn the_older_samples_invalid_token_is_a_refusal() {
        for text in [
            r#"{"error":"Unauthorized","message":"Invalid or expired token"}"#,
            "Invalid or expired token",
            "Invalid or expired token.",
        ] {
            assert!(
                matches!(
                    classify_result(&text_error(text)),
                    Some(Failure::Unauthorized(_))
                ),
                "{text}"
            );
        }
        // An RFC 6750-looking body is what any tool relaying an upstream API's 401 returns: it
        // says nothing about this connection's token.
        let relayed = r#"{"error":"invalid_token","error_description":"expired"}"#;
        assert!(classify_result(&text_error(relayed)).is_none());
    }

    #[test]
    fn long_descriptions_are_cut() {
        let long = "x".repeat(500);
        let body = json!({"error": "insufficient_scope", "error_description": long, "scope": "a"});
        let Some(Failure::InsufficientScope(_, description)) =
            classify_result(&text_error(&body.to_string()))
        else {
            panic!("not a step-up");
        };
        assert!(description.chars().count() < 250, "{description}");
    }
}
