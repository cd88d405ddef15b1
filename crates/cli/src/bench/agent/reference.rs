//! `bench agent --reference`: the least a chat endpoint must do per turn, on the same HTTP stack
//! (axum on [`httpserve::serve`]) and threads of its own: agent0's own session lookup — the
//! private cookie decrypted ([`Cookies::session_id`], AES-256-GCM), the session read from
//! agent0's in-process store ([`MemorySessionStore`]), the CSRF header compared in constant
//! time — the JSON body read, and a fixed reply of a turn's shape with one tool result. No
//! model, no conversation store, no MCP call: a turn's calls/s as a share of this one's is how
//! much of the machine agent0's own work leaves.

use std::sync::Arc;

use agent0::session::{Cookies, MemorySessionStore, SESSION_COOKIE, Session, SessionStore};
use agent0::tokens::Principal;
use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use protocol::Clock;
use serde::Deserialize;

use super::chat::Chatter;

/// What the reference answers every turn: the shape of agent0's `POST /api/chat` reply to
/// "list my todos" with the offline model.
const REPLY: &str = r#"{"conversationId":"reference","message":"You have 10 todos.","toolResults":[{"tool":"get-todos","arguments":{},"result":{"count":10,"todos":[]},"isError":false}],"confirmation":null}"#;

struct ChatState {
    cookies: Cookies,
    sessions: MemorySessionStore,
}

/// The body agent0 reads.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatRequest {
    #[allow(dead_code)]
    message: String,
}

/// The reference on `/api/chat`, with a session for each of `people`: their cookies and CSRF
/// tokens.
pub(super) async fn router(
    people: usize,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<(Router, Vec<Chatter>)> {
    let key = weblogin::SessionKey::from_secret(&weblogin::SessionKey::generate_secret())?;
    let cookies = Cookies::new(&key, false);
    let sessions = MemorySessionStore::new(agent0::session::SESSION_CAPACITY, clock.clone());
    let now = clock.now();
    let mut chatters = Vec::with_capacity(people);
    for i in 0..people {
        let session = Session {
            id: weblogin::random_token(),
            principal: Principal {
                subject: format!("reference-{i}"),
                name: format!("Reference {i}"),
                email: None,
                id_token: String::new().into(),
            },
            claims: serde_json::json!({"sub": format!("reference-{i}")}),
            id_token_expires_at: now + 3600,
            refresh_token: None,
            csrf: weblogin::random_token(),
            expires_at: now + 3600,
        };
        sessions.create(&session).await?;
        let jar = cookies.with_session(cookies.jar(&HeaderMap::new()), &session.id);
        let response = (jar, ()).into_response();
        let cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
            .and_then(|v| v.split(';').next())
            .context("no session cookie")?;
        chatters.push(Chatter::new(
            HeaderValue::from_str(cookie)?,
            HeaderValue::from_str(&session.csrf)?,
        ));
    }
    let state = Arc::new(ChatState { cookies, sessions });
    Ok((
        Router::new()
            .route("/api/chat", post(post_chat))
            .with_state(state),
        chatters,
    ))
}

async fn post_chat(
    State(state): State<Arc<ChatState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(id) = state.cookies.session_id(&headers) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(Some(session)) = state.sessions.find(&id).await else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let presented = headers
        .get(agent0::http::CSRF_HEADER)
        .and_then(|v| v.to_str().ok());
    if !presented.is_some_and(|p| protocol::constant_time::is_equal(p, &session.csrf)) {
        return StatusCode::FORBIDDEN.into_response();
    }
    if serde_json::from_slice::<ChatRequest>(&body).is_err() {
        return StatusCode::BAD_REQUEST.into_response();
    }
    ([(CONTENT_TYPE, "application/json")], REPLY).into_response()
}
