//! The chat API: `POST /api/chat` (the sample's shape: `{"message"}` in, `{"message",
//! "toolResults": [{tool, arguments, result, …}], "confirmation"}` out), `POST /api/chat/stream`
//! (the same turn as server-sent events: conversation, text, tool_start, step_up, tool_done,
//! confirm_required, consent_required, error, done), `POST /api/chat/confirm[/stream]` (the
//! person approves or denies the tool call a turn paused at, and the turn goes on),
//! conversations, and the connections' status. A turn runs to completion and is stored even if
//! the browser goes away mid-stream.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::AppState;
use super::error::ApiError;
use crate::agent::{AgentError, AgentEvent, Chosen, TurnSummary, validate_message};
use crate::confirm::{ConfirmError, Decision, Owner, Sink};
use crate::connections;
use crate::conversations::Latest;
use crate::session::Session;
use crate::shared::relay::RelayError;

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

/// The person's decision on a paused tool call.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ConfirmRequest {
    /// The confirmation's id (from `confirm_required`).
    id: String,
    /// The conversation it belongs to.
    conversation_id: String,
    /// `approve` or `deny`.
    decision: DecisionField,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DecisionField {
    Approve,
    Deny,
}

impl From<DecisionField> for Decision {
    fn from(field: DecisionField) -> Self {
        match field {
            DecisionField::Approve => Self::Approve,
            DecisionField::Deny => Self::Deny,
        }
    }
}

/// Refuses an empty or oversized message with a 400 before any work starts.
fn validate(request: &ChatRequest) -> Result<(), ApiError> {
    validate_message(&request.message)?;
    Ok(())
}

type Finished = oneshot::Receiver<Result<TurnSummary, AgentError>>;

/// Starts a turn in its own task (it completes even if the browser goes away): its events, and
/// its end (dropped unanswered when the turn pauses for a confirmation).
fn spawn_turn(
    app: &AppState,
    session: Arc<Session>,
    conversation: Chosen,
    message: String,
) -> (mpsc::UnboundedReceiver<AgentEvent>, Finished) {
    let (events, receiver) = mpsc::unbounded_channel();
    let (finished, end) = oneshot::channel();
    let app = app.clone();
    tokio::spawn(async move {
        let sink = Sink {
            events,
            finished: Some(finished),
        };
        // Boxed: the turn's future is several KB, and a spawned task's future is moved into
        // its task cell (more than once); only the box's pointer moves then.
        Box::pin(app.agent.run_turn(
            &session.principal,
            &session.id,
            Some(conversation),
            &message,
            sink,
        ))
        .await;
    });
    (receiver, end)
}

/// Resumes the paused turn of confirmation `request.id` with the person's decision: here, or
/// (when replicas share Redis) on the replica where it paused, streaming its rest through here.
async fn resume_turn(
    app: &AppState,
    session: &Session,
    request: &ConfirmRequest,
) -> Result<(mpsc::UnboundedReceiver<AgentEvent>, Finished), ApiError> {
    let (events, receiver) = mpsc::unbounded_channel();
    let (finished, end) = oneshot::channel();
    let owner = Owner {
        subject: &session.principal.subject,
        session: &session.id,
        conversation: &request.conversation_id,
    };
    let sink = Sink {
        events,
        finished: Some(finished),
    };
    let decision = request.decision.into();
    let confirmations = app.agent.confirmations();
    match (
        &app.relay,
        confirmations.decide(&request.id, &owner, decision, sink),
    ) {
        (_, Ok(())) => Ok((receiver, end)),
        (Some(relay), Err(ConfirmError::NotFound)) => {
            let (events, receiver) = mpsc::unbounded_channel();
            let (finished, end) = oneshot::channel();
            let sink = Sink {
                events,
                finished: Some(finished),
            };
            match relay.decide(&request.id, &owner, decision, sink).await {
                Ok(()) => Ok((receiver, end)),
                Err(RelayError::Confirmation(e)) => Err(e.into()),
                Err(RelayError::Unavailable(e)) => Err(e.into()),
            }
        }
        (_, Err(e)) => Err(e.into()),
    }
}

/// Waits for a turn to end or pause: the JSON answer of `/api/chat` and `/api/chat/confirm`.
async fn answer(
    app: &AppState,
    session: &Session,
    mut receiver: mpsc::UnboundedReceiver<AgentEvent>,
    end: Finished,
) -> Result<Json<Value>, ApiError> {
    let mut text = String::new();
    let mut tool_results = Vec::new();
    let mut confirmation = None;
    while let Some(event) = receiver.recv().await {
        match event {
            AgentEvent::Text { delta } => text.push_str(&delta),
            AgentEvent::ToolDone(view) => tool_results.push(view),
            AgentEvent::ConfirmRequired(request) => confirmation = Some(request),
            _ => {}
        }
    }
    match end.await {
        Ok(Ok(summary)) => Ok(Json(json!({
            "message": summary.message,
            "toolResults": summary.tool_results,
            "conversationId": summary.conversation_id,
            "confirmation": null,
        }))),
        Ok(Err(e)) => {
            if matches!(e, AgentError::LoginExpired) {
                app.sessions.remove_or_log(&session.id).await;
            }
            Err(e.into())
        }
        // The turn paused: what it did so far, and the card.
        Err(_) => match confirmation {
            Some(request) => Ok(Json(json!({
                "message": text,
                "toolResults": tool_results,
                "conversationId": request.conversation_id,
                "confirmation": request,
            }))),
            None => Err(ApiError::Internal(
                "the turn ended without an answer".into(),
            )),
        },
    }
}

/// The events of a turn as server-sent events (the session ends if the login expired).
fn stream(
    app: &AppState,
    session: Arc<Session>,
    receiver: mpsc::UnboundedReceiver<AgentEvent>,
    end: Finished,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let app = app.clone();
    tokio::spawn(async move {
        if let Ok(Err(AgentError::LoginExpired)) = end.await {
            app.sessions.remove_or_log(&session.id).await;
        }
    });
    let stream = UnboundedReceiverStream::new(receiver).map(|event| Ok(to_sse(&event)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// `POST /api/chat`: the turn's reply, or (`"confirmation"`) the tool call it paused at.
pub(crate) async fn post_chat(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ChatRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_csrf(&headers).await?;
    let Json(request) = body?;
    validate(&request)?;
    let conversation = app
        .agent
        .conversation_for(&session.principal, request.conversation_id.as_deref())
        .await?;
    let (receiver, end) = spawn_turn(&app, session.clone(), conversation, request.message);
    answer(&app, &session, receiver, end).await
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
    let (receiver, end) = spawn_turn(&app, session.clone(), conversation, request.message);
    Ok(stream(&app, session, receiver, end))
}

/// `POST /api/chat/confirm`: approves or denies a paused tool call, and answers like
/// `/api/chat` once the turn ends (or pauses again).
pub(crate) async fn post_chat_confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ConfirmRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_csrf(&headers).await?;
    let Json(request) = body?;
    let (receiver, end) = resume_turn(&app, &session, &request).await?;
    answer(&app, &session, receiver, end).await
}

/// `POST /api/chat/confirm/stream`: the same, the rest of the turn as server-sent events.
pub(crate) async fn post_chat_confirm_stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<ConfirmRequest>, JsonRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let session = app.require_csrf(&headers).await?;
    let Json(request) = body?;
    let (receiver, end) = resume_turn(&app, &session, &request).await?;
    Ok(stream(&app, session, receiver, end))
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
    let Some(Latest { id, .. }) = store.find_latest(subject).await? else {
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
        app.brokered.application.as_ref(),
        &app.disabled,
        &session.principal.subject,
    )
    .await;
    Ok(Json(json!({"connections": list})))
}
