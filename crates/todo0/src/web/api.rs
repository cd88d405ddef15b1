//! The JSON REST API over the same store as the MCP tools (ARCHITECTURE §6). Each handler
//! authorises on its first line with the scopes the matching MCP tool needs under the configured
//! [`ScopePolicy`](crate::mcp::ScopePolicy) (§5.6): reads need `mcp:tools:read`, creating,
//! changing and toggling need `mcp:tools:manage`, deleting needs `mcp:tools:delete` (or, under
//! `sample-compatible`, `mcp:tools:manage` instead). The routes that take a body also serve the page's HTML forms, answering
//! those with `303 See Other` back to `/` (see [`Via`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::WebError;
use super::extract::{Command, Principal, SignedIn, TodoId, Via};
use crate::domain::{Filter, Owner, Title, Todo, TodoChange};
use crate::mcp::scopes::Action;

/// `GET /todos` query parameters: the same filter as the `get-todos` tool's input.
pub use crate::mcp::tools::GetTodosArgs as ListQuery;

/// `POST /todos` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTodo {
    /// The title; trimmed, 1–500 characters, no control characters.
    pub title: String,
}

/// `PATCH /todos/{id}` body: at least one of the fields.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TodoPatch {
    /// A new title; trimmed, 1–500 characters.
    #[serde(default)]
    pub title: Option<String>,
    /// Mark done (`true`) or not done (`false`).
    #[serde(default)]
    pub completed: Option<bool>,
}

/// The body of the routes that take none (it may be empty or `{}`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// `GET /session`: who is signed in, and the CSRF token for cookie-authenticated changes.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionInfo {
    /// The signed-in person.
    pub user: SessionUser,
    /// Send as `X-CSRF-Token` with every change made with the session cookie.
    pub csrf_token: String,
    /// When the session ends, RFC 3339 UTC.
    pub expires_at: String,
}

/// A signed-in person.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SessionUser {
    /// The user id (the ID token's `sub`; the owner of the todos).
    pub id: String,
    /// A display name.
    pub name: String,
}

fn audit(principal: &Principal, owner: &Owner, action: &str, id: i64) {
    let client = match principal {
        Principal::Session { .. } => "todo0-web",
        Principal::Bearer(caller) => caller.client_id.as_deref().unwrap_or("-"),
    };
    tracing::info!(target: "todo0::audit", user = owner.as_str(), client, action, id, "todo changed");
}

/// `GET /session`.
pub(crate) async fn get_session(SignedIn(session): SignedIn) -> Json<SessionInfo> {
    Json(SessionInfo {
        user: SessionUser {
            id: session.uid.clone(),
            name: session.name.clone(),
        },
        csrf_token: session.csrf.clone(),
        expires_at: crate::domain::rfc3339(session.exp),
    })
}

/// `GET /todos`.
pub(crate) async fn get_todos(
    State(app): State<AppState>,
    principal: Principal,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Vec<Todo>>, WebError> {
    let owner = principal.authorize(app.scope_policy.need(Action::Read))?;
    let Query(query) = query.map_err(|e| WebError::Invalid(e.body_text()))?;
    let filter = Filter {
        completed: query.completed,
        text: query.search.filter(|s| !s.trim().is_empty()),
    };
    Ok(Json(app.store.list(owner, &filter).await?))
}

/// `POST /todos` (JSON `{"title"}`, or the page's form): `201` with the todo.
pub(crate) async fn post_todo(
    State(app): State<AppState>,
    command: Command<NewTodo>,
) -> Result<Response, WebError> {
    let owner = command.authorize(app.scope_policy.need(Action::Manage))?;
    let title = Title::parse(&command.input.title)?;
    let todo = app.store.create(owner, &title, app.clock.now()).await?;
    audit(&command.principal, owner, "create", todo.id);
    let mut response = command.via.respond(StatusCode::CREATED, &todo);
    if command.via == Via::Api
        && let Ok(location) = format!("/todos/{}", todo.id).parse()
    {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// `GET /todos/{id}`.
pub(crate) async fn get_todo(
    State(app): State<AppState>,
    principal: Principal,
    TodoId(id): TodoId,
) -> Result<Json<Todo>, WebError> {
    let owner = principal.authorize(app.scope_policy.need(Action::Read))?;
    Ok(Json(app.store.get(owner, id).await?))
}

/// `PATCH /todos/{id}`: a new title and/or completion, validated first, written at once.
pub(crate) async fn patch_todo(
    State(app): State<AppState>,
    TodoId(id): TodoId,
    command: Command<TodoPatch>,
) -> Result<Response, WebError> {
    let owner = command.authorize(app.scope_policy.need(Action::Manage))?;
    let change = TodoChange::parse(command.input.title.as_deref(), command.input.completed)?;
    let todo = app
        .store
        .update(owner, id, &change, app.clock.now())
        .await?;
    audit(&command.principal, owner, "update", id);
    Ok(command.via.respond(StatusCode::OK, &todo))
}

/// `POST /todos/{id}/complete`: flips done / not done.
pub(crate) async fn post_todo_complete(
    State(app): State<AppState>,
    TodoId(id): TodoId,
    command: Command<NoInput>,
) -> Result<Response, WebError> {
    let owner = command.authorize(app.scope_policy.need(Action::Manage))?;
    let todo = app
        .store
        .set_completed(owner, id, None, app.clock.now())
        .await?;
    audit(&command.principal, owner, "toggle", id);
    Ok(command.via.respond(StatusCode::OK, &todo))
}

/// `DELETE /todos/{id}` and `POST /todos/{id}/delete`: `204`.
pub(crate) async fn delete_todo(
    State(app): State<AppState>,
    TodoId(id): TodoId,
    command: Command<NoInput>,
) -> Result<Response, WebError> {
    let owner = command.authorize(app.scope_policy.need(Action::Delete))?;
    app.store.delete(owner, id).await?;
    audit(&command.principal, owner, "delete", id);
    Ok(command.via.respond_empty())
}

/// `GET /health`: whether the store answers.
pub(crate) async fn get_health(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok").into_response(),
        Err(e) => WebError::from(e).into_response(),
    }
}
