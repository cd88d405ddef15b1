//! Login and the person's view of it (ARCHITECTURE §5.1): `/auth/login` starts OIDC
//! authorization code + PKCE S256 + `state` + `nonce` (+ `offline_access` when enabled), the
//! callback checks `state` and RFC 9207 `iss`, verifies the ID token and creates a fresh
//! server-side session; `/auth/logout` ends it here (dropping its tokens and MCP sessions) and
//! redirects (303) to RP-initiated logout at the IdP (`id_token_hint` only in that `Location`). `/auth/status` and
//! `/api/me/claims` tell the page who is logged in — never a token.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use weblogin::CallbackParams;

use super::error::ApiError;
use super::{AppState, CSRF_HEADER};
use crate::session::{LOGIN_COOKIE, SESSION_COOKIE};

/// `GET /auth/login`.
pub(crate) async fn get_login(State(app): State<AppState>, headers: HeaderMap) -> Response {
    let extra: &[&str] = if app.offline_access {
        &["offline_access"]
    } else {
        &[]
    };
    let (jar, url) =
        app.cookies
            .inner()
            .start_login(&app.rp, &headers, LOGIN_COOKIE, app.clock.now(), extra);
    (jar, Redirect::to(url.as_str())).into_response()
}

/// The OIDC callback (`OKTA_REDIRECT_URI`'s path).
pub(crate) async fn get_callback(
    State(app): State<AppState>,
    headers: HeaderMap,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Response {
    // The pending login is used up whatever happens next.
    let jar = app.cookies.without(app.cookies.jar(&headers), LOGIN_COOKIE);
    match complete_login(&app, &headers, params).await {
        Ok(session_id) => {
            // A login replaces whatever session this browser had.
            if let Some(old) = app.cookies.session_id(&headers) {
                app.sessions.remove_or_log(&old).await;
            }
            let jar = app.cookies.with_session(jar, &session_id);
            (jar, Redirect::to("/")).into_response()
        }
        Err(error) => (jar, error).into_response(),
    }
}

async fn complete_login(
    app: &AppState,
    headers: &HeaderMap,
    params: Result<Query<CallbackParams>, QueryRejection>,
) -> Result<String, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::Login(e.body_text()))?;
    let tokens = app
        .cookies
        .inner()
        .finish_login(&app.rp, headers, LOGIN_COOKIE, app.clock.now(), params)
        .await
        .map_err(|e| match e {
            weblogin::RpError::Refused(message) => ApiError::Login(message),
            weblogin::RpError::Unavailable => ApiError::Unavailable("the identity provider"),
        })?;
    let session = app.sessions.create(tokens).await?;
    tracing::info!(user = %session.principal.subject, "login");
    Ok(session.id.clone())
}

/// `POST /auth/logout` (the page's form with a `csrf` field, or the `X-CSRF-Token` header): ends
/// the session here, then `303` straight on to the IdP's end-session endpoint. The ID token
/// (`id_token_hint`) travels only in that `Location`, as RP-Initiated Logout 1.0 §2 has it;
/// no response body, JSON or page ever carries it.
pub(crate) async fn post_logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let target = match app.require_session(&headers).await {
        Ok(session) => {
            let from_form = form_field(&body, "csrf");
            let presented = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .or(from_form.as_deref());
            if !presented.is_some_and(|p| protocol::constant_time::is_equal(p, &session.csrf)) {
                return Err(ApiError::Csrf);
            }
            app.sessions.remove(&session.id).await?;
            // Cards and turns waiting for consent end, on every replica.
            app.agent
                .confirmations()
                .forget_session(&session.id, &session.principal.subject);
            app.agent
                .hub()
                .forget_person(&session.principal.subject)
                .await;
            tracing::info!(user = %session.principal.subject, "logout");
            app.rp
                .logout_url(Some(&session.principal.id_token))
                .map_or_else(|| "/".to_owned(), String::from)
        }
        // An expired session has nothing left to end here, and its CSRF token cannot be
        // checked any more: the IdP session is left alone.
        Err(ApiError::LoginExpired | ApiError::Unauthenticated) => "/".to_owned(),
        Err(e) => return Err(e),
    };
    let jar = app
        .cookies
        .without(app.cookies.jar(&headers), SESSION_COOKIE);
    Ok((jar, Redirect::to(&target)).into_response())
}

/// The one value of `name` in a form body (none when absent or repeated).
fn form_field(body: &[u8], name: &str) -> Option<String> {
    let mut values = url::form_urlencoded::parse(body)
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned());
    let value = values.next()?;
    values.next().is_none().then_some(value)
}

/// `GET /auth/status`.
pub(crate) async fn get_status(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let model = app.agent.model().info();
    Ok(match app.session(&headers).await? {
        Some(session) => Json(json!({
            "authenticated": true,
            "user": {
                "sub": session.principal.subject,
                "name": session.principal.name,
                "email": session.principal.email,
            },
            "csrf": session.csrf,
            "model": model,
        })),
        None => Json(json!({
            "authenticated": false,
            "user": null,
            "csrf": null,
            "model": model,
        })),
    })
}

/// `GET /api/me/claims`: the ID token's claims (not the token).
pub(crate) async fn get_claims(
    State(app): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let session = app.require_session(&headers).await?;
    Ok(Json(json!({"claims": session.claims})))
}
