//! The pages and the login flow (ARCHITECTURE §5.1): `/` (the todo list with its filter, or
//! "Log in"), `/login` (starts OIDC authorization code + PKCE S256 + `state` + `nonce`),
//! `/callback` (checks `state` and RFC 9207 `iss`, redeems the code, verifies the ID token, sets
//! a fresh session with a fresh CSRF token), and `/logout` (ends the session server-side, clears
//! the cookie and continues with the IdP's RP-initiated logout). The forms on `/` post to the
//! REST routes in [`super::api`].

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use weblogin::CallbackParams;

use super::AppState;
use super::error::WebError;
use super::extract::form_fields;
use super::html::{self, Show};
use super::session::{LOGIN_COOKIE, SESSION_COOKIE, Session};
use crate::domain::{Filter, Owner};

/// `GET /` query: which todos to show (`all` when absent; anything else is refused).
#[derive(Debug, Deserialize)]
pub(crate) struct IndexQuery {
    #[serde(default)]
    show: Show,
}

/// `GET /`: the signed-in person's todos (`?show=open|done|all`), with the counts of all of
/// them, or the "Log in" page.
pub(crate) async fn get_index(
    State(app): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<IndexQuery>, QueryRejection>,
) -> Result<Html<String>, WebError> {
    let Some(session) = app.live_session(&headers).await? else {
        return Ok(Html(html::welcome()));
    };
    let Query(query) = query.map_err(|_| {
        WebError::Invalid("show only all, open or done todos: use the links on the page".into())
    })?;
    let owner = Owner::new(session.uid.clone())?;
    // All of them, once: the counts and the filtered list come from the same read.
    let todos = app.store.list(&owner, &Filter::default()).await?;
    Ok(Html(html::todo_list(
        &session.name,
        &session.csrf,
        &todos,
        query.show,
    )))
}

/// `GET /login`: to the IdP's authorization endpoint, remembering what the callback needs.
pub(crate) async fn get_login(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let (jar, url) =
        app.cookies
            .inner()
            .start_login(&app.oidc, &headers, LOGIN_COOKIE, app.clock.now(), &[]);
    (jar, Redirect::to(url.as_str())).into_response()
}

/// `GET /callback`.
pub(crate) async fn get_callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    // The pending login is used up whatever happens next.
    let jar = app.cookies.without(app.cookies.jar(&headers), LOGIN_COOKIE);
    match complete_login(&app, &headers, params).await {
        Ok(session) => {
            tracing::info!(user = %session.uid, "login");
            let jar = app.cookies.with_session(jar, &session);
            (jar, Redirect::to("/")).into_response()
        }
        Err(error) => (jar, error).into_response(),
    }
}

async fn complete_login(
    app: &AppState,
    headers: &HeaderMap,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Result<Session, WebError> {
    let Query(params) = params.map_err(|e| WebError::Login(e.body_text()))?;
    let now = app.clock.now();
    let tokens = app
        .cookies
        .inner()
        .finish_login(&app.oidc, headers, LOGIN_COOKIE, now, params)
        .await?;
    let mut session = Session::new(tokens.identity.subject, tokens.identity.name, now);
    session.id_token = Some(tokens.id_token);
    Ok(session)
}

/// `POST /logout` (a form with the CSRF field): ends the session here, then at the IdP.
pub(crate) async fn post_logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let session = app.live_session(&headers).await?;
    let target = match &session {
        Some(session) => {
            let (_, csrf) = form_fields(&body);
            if !session.is_csrf_token(csrf.as_deref()) {
                return Err(WebError::Csrf);
            }
            // Ended here first: if that fails the person is told, and stays logged in.
            app.end_session(session).await?;
            tracing::info!(user = %session.uid, "logout");
            app.oidc
                .logout_url(session.id_token.as_ref())
                .map_or_else(|| "/".to_owned(), String::from)
        }
        // Nothing to end here; without a session there is no CSRF token to check either, so
        // the IdP's session is left alone.
        None => "/".to_owned(),
    };
    let jar = app
        .cookies
        .without(app.cookies.jar(&headers), SESSION_COOKIE);
    let jar = app.cookies.without(jar, LOGIN_COOKIE);
    Ok((jar, Redirect::to(&target)).into_response())
}
