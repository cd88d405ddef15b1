//! The chat API: `POST /api/chat` (the sample's shape: `{"message"}` in, `{"message",
//! "toolResults": [{tool, arguments, result, …}]}` out), `POST /api/chat/stream` (the same turn
//! as server-sent events: conversation, text, tool_start, step_up, tool_done,
//! consent_required, error, done), conversations, and the connections' status. A turn runs to
//! completion and is stored even if the browser goes away mid-stream.

use std::convert::Infallible;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::AppState;
use super::error::ApiError;
use crate::agent::{AgentError, AgentEvent, validate_message};
use crate::connections;

/// Turns shown when the page loads a conversation.
const SHOWN_TURNS: u32 = 200;

/// A chat request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ChatRequest {
    message: String,
    #[serde(default)]
    conversation_id: Option<String>,
}

/// Refuses an empty or oversized message with a 400 before any work starts.
fn validate(request: &ChatRequest) -> Result<(), ApiError> {
    validate_message(&request.message)?;
    Ok(())
}

/// `POST /api/chat`.
pub(crate) async fn post_chat(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_csrf(&headers).await?;
    let Json(request) = body?;
    validate(&request)?;
    let (events, _ignored) = mpsc::unbounded_channel();
    let summary = app
        .agent
        .run_turn(
            &session.principal,
            request.conversation_id.as_deref(),
            &request.message,
            &events,
        )
        .await
        .inspect_err(|e| {
            if matches!(e, AgentError::LoginExpired) {
                app.sessions.remove(&session.id);
            }
        })?;
    Ok(Json(json!({
        "message": summary.message,
        "toolResults": summary.tool_results,
        "conversationId": summary.conversation_id,
    })))
}

/// `POST /api/chat/stream`.
pub(crate) async fn post_chat_stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let session = app.require_csrf(&headers).await?;
    let Json(request) = body?;
    validate(&request)?;
    // The conversation is checked before the stream starts, so a wrong id is a plain 404.
    let conversation = app
        .agent
        .conversation_for(&session.principal, request.conversation_id.as_deref())
        .await?;
    let (events, receiver) = mpsc::unbounded_channel();
    let turn_app = app.clone();
    tokio::spawn(async move {
        let result = turn_app
            .agent
            .run_turn(
                &session.principal,
                Some(&conversation),
                &request.message,
                &events,
            )
            .await;
        if let Err(e) = result {
            if matches!(e, AgentError::LoginExpired) {
                turn_app.sessions.remove(&session.id);
            }
            tracing::warn!(error = %e, "turn failed");
            let _ = events.send(AgentEvent::Error {
                message: e.to_string(),
            });
        }
    });
    let stream = UnboundedReceiverStream::new(receiver).map(|event| Ok(to_sse(&event)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn to_sse(event: &AgentEvent) -> Event {
    let value = serde_json::to_value(event).unwrap_or(Value::Null);
    let name = value
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("error")
        .to_owned();
    let data = value.get("data").cloned().unwrap_or(Value::Null);
    Event::default()
        .event(name)
        .json_data(data)
        .unwrap_or_else(|_| Event::default().event("error"))
}

/// `POST /api/conversations`: a new, empty conversation.
pub(crate) async fn post_conversation(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_csrf(&headers).await?;
    let id = app
        .agent
        .store()
        .create(&session.principal.subject, app.clock.now())
        .await?;
    Ok(Json(json!({"conversationId": id})))
}

/// `GET /api/conversations/current`: the latest conversation, as the page shows it.
pub(crate) async fn get_current_conversation(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let session = app.require_session(&headers).await?;
    let subject = &session.principal.subject;
    let store = app.agent.store();
    let Some(id) = store.find_latest(subject).await? else {
        return Ok(Json(json!({"conversationId": null, "messages": []})).into_response());
    };
    let turns = store.find_turns(subject, &id, SHOWN_TURNS).await?;
    let messages: Vec<Value> = turns
        .into_iter()
        .flat_map(|turn| {
            [
                json!({"role": "user", "text": turn.user_text, "toolResults": []}),
                json!({"role": "assistant", "text": turn.reply_text, "toolResults": turn.tool_results}),
            ]
        })
        .collect();
    Ok(Json(json!({"conversationId": id, "messages": messages})).into_response())
}

/// `GET /api/connections/status` (ARCHITECTURE §7).
pub(crate) async fn get_connections_status(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_session(&headers).await?;
    let list = connections::status(
        app.agent.hub(),
        app.authorization_server.as_ref(),
        &app.all_servers,
        &app.disabled,
        &session.principal.subject,
    );
    Ok(Json(json!({"connections": list})))
}
