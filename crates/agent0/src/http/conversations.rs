//! The person's past conversations: `GET /api/conversations` (their own, most recently used
//! first, at most [`LISTED`]), `GET /api/conversations/{id}` (one of them, as the page shows
//! it), and `GET /api/conversations/{id}/export?format=md|json` (a download). Someone else's
//! conversation is a 404, never a 403, so ids cannot be probed. An export holds what the page
//! showed — messages, replies, tool calls with their results — and never a token: turns store
//! none, and the model-history messages are left out.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::conversations::{ToolResultView, Turn};

/// Conversations listed at most.
const LISTED: u32 = 50;
/// Turns shown or exported at most.
const SHOWN_TURNS: u32 = 200;

/// The page's messages for `turns`: each turn is the person's message and agent0's answer.
pub(crate) fn page_messages(turns: Vec<Turn>) -> Vec<Value> {
    turns
        .into_iter()
        .flat_map(|turn| {
            [
                json!({"role": "user", "text": turn.user_text, "toolResults": []}),
                json!({"role": "assistant", "text": turn.reply_text, "toolResults": turn.tool_results}),
            ]
        })
        .collect()
}

/// `GET /api/conversations`.
pub(crate) async fn get_conversations(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_session(&headers).await?;
    let list = app
        .agent
        .store()
        .find_conversations(&session.principal.subject, LISTED)
        .await?;
    Ok(Json(json!({"conversations": list})))
}

/// `GET /api/conversations/{id}`: the conversation as the page shows it.
pub(crate) async fn get_conversation(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_session(&headers).await?;
    let turns = app
        .agent
        .store()
        .find_turns(&session.principal.subject, &id, SHOWN_TURNS)
        .await?;
    Ok(Json(
        json!({"conversationId": id, "messages": page_messages(turns)}),
    ))
}

/// The export's format.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Format {
    Md,
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExportQuery {
    format: Format,
}

/// `GET /api/conversations/{id}/export?format=md|json`: a download (`attachment`, `no-store`).
pub(crate) async fn get_conversation_export(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let session = app.require_session(&headers).await?;
    let Query(query) = query.map_err(|_| ApiError::bad_request("format must be md or json"))?;
    let turns = app
        .agent
        .store()
        .find_turns(&session.principal.subject, &id, SHOWN_TURNS)
        .await?;
    let exported_at = app.clock.now();
    let (body, content_type, extension) = match query.format {
        Format::Json => (
            serde_json::to_string_pretty(&export_json(&id, exported_at, &turns))
                .map_err(|e| ApiError::Internal(e.to_string()))?,
            "application/json",
            "json",
        ),
        Format::Md => (
            export_markdown(&id, exported_at, &turns),
            "text/markdown; charset=utf-8",
            "md",
        ),
    };
    // The id is a UUID the store made; anything else would already be a 404.
    let short: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect();
    let disposition = format!("attachment; filename=\"agent0-conversation-{short}.{extension}\"");
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition)
            .map_err(|_| ApiError::Internal("unencodable file name".into()))?,
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn export_json(id: &str, exported_at: protocol::UnixTime, turns: &[Turn]) -> Value {
    let turns: Vec<Value> = turns
        .iter()
        .map(|turn| {
            json!({
                "user": turn.user_text,
                "reply": turn.reply_text,
                "toolResults": turn.tool_results,
            })
        })
        .collect();
    json!({
        "conversationId": id,
        "exportedAt": exported_at,
        "turns": turns,
    })
}

fn export_markdown(id: &str, exported_at: protocol::UnixTime, turns: &[Turn]) -> String {
    let title = turns
        .first()
        .map(|t| t.user_text.lines().next().unwrap_or("").trim().to_owned())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "Conversation".to_owned());
    let mut out = format!(
        "# {title}\n\nExported from agent0 (conversation `{id}`, at Unix time {exported_at}).\n"
    );
    for turn in turns {
        out.push_str("\n## You\n\n");
        out.push_str(turn.user_text.trim_end());
        out.push_str("\n\n## agent0\n\n");
        for call in &turn.tool_results {
            out.push_str(&tool_markdown(call));
        }
        out.push_str(turn.reply_text.trim_end());
        out.push('\n');
    }
    out
}

fn tool_markdown(call: &ToolResultView) -> String {
    let outcome = if call.is_error { "failed" } else { "done" };
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let mut out = format!(
        "**Tool call** `{}` on `{}` ({outcome})",
        call.tool, call.connection
    );
    if let Some(step_up) = &call.step_up {
        out.push_str(&format!(
            ", scope raised from `{}` to `{}`",
            step_up.from, step_up.to
        ));
    }
    out.push_str(&format!(
        "\n\n```json\n{}\n```\n\n```json\n{}\n```\n\n",
        pretty(&call.arguments),
        pretty(&call.result)
    ));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::llm::Message;

    fn turn() -> Turn {
        Turn {
            user_text: "list my todos\nplease".into(),
            reply_text: "You have one todo.".into(),
            messages: vec![Message::user_text("list my todos")],
            // From JSON, as the store reads it.
            tool_results: vec![
                serde_json::from_value(json!({
                    "id": "call-1",
                    "tool": "get-todos",
                    "connection": "todo0",
                    "arguments": {},
                    "result": {"todos": [{"id": 1, "title": "prep"}], "count": 1},
                    "isError": false,
                    "stepUp": {"from": "mcp:connect", "to": "mcp:connect mcp:tools:read"},
                }))
                .unwrap(),
            ],
        }
    }

    #[test]
    fn markdown_has_the_messages_the_calls_and_their_results() {
        let md = export_markdown("abc", 7, &[turn()]);
        assert!(md.starts_with("# list my todos\n"), "{md}");
        assert!(md.contains("## You\n\nlist my todos\nplease\n\n## agent0\n\n**Tool call** `get-todos` on `todo0` (done), scope raised from `mcp:connect` to `mcp:connect mcp:tools:read`"));
        assert!(md.contains("\"count\": 1"));
        assert!(md.ends_with("You have one todo.\n"));
    }

    #[test]
    fn json_has_turns_but_not_the_model_history() {
        let value = export_json("abc", 7, &[turn()]);
        assert_eq!(value["conversationId"], "abc");
        assert_eq!(value["turns"][0]["user"], "list my todos\nplease");
        assert_eq!(value["turns"][0]["toolResults"][0]["tool"], "get-todos");
        assert!(value["turns"][0].get("messages").is_none());
    }
}
