//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–3, §6): ends the SSO session and
//! redirects only to an exactly registered `post_logout_redirect_uri`.
//!
//! * A valid `id_token_hint` naming the browser's current session (its `sub`, and its `sid` when
//!   the hint has one) logs out at once: relying parties (agent0, todo0) rely on this.
//! * Otherwise, while a session is live (no hint, or a hint of another person or session), the OP
//!   asks first (§6: "the OP SHOULD ask the End-User whether to log out"): a page with a POST form
//!   whose anti-CSRF token is a MAC of this session's cookie ([`crate::csrf`]). A cross-site GET
//!   ends nothing, and a hint never ends any session but the browser's own.
//! * Without a live session there is nothing to end: the redirect, or the signed-out page.

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use protocol::claims::IdTokenClaims;
use protocol::verify::{Expectations, TypeRule};
use serde::Deserialize;

use super::authorize::{SESSION_COOKIE, current_session};
use super::{Server, html_response};
use crate::csrf::is_foreign_post;
use crate::html;
use crate::server::AuthServer;
use crate::state::Idp;
use crate::store::{SsoSession, secret_hash};

/// Logout parameters (a GET query, or a POST form: RP-Initiated Logout §2 allows both), and the
/// confirmation form's fields.
#[derive(Deserialize)]
pub(super) struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
    /// Present only on the confirmation form.
    csrf: Option<String>,
}

/// An ID token used as a hint may have expired long ago; its signature and issuer still count.
const HINT_LEEWAY: i64 = 30 * 24 * 3600;
/// What the confirmation form's anti-CSRF token is for.
const LOGOUT_CSRF_PURPOSE: &str = "logout";

/// `GET …/v1/logout`.
pub(super) async fn get_logout(
    State(idp): State<Idp>,
    Server(server): Server,
    jar: CookieJar,
    Query(params): Query<LogoutParams>,
) -> Response {
    logout(&idp, &server, jar, params).await
}

/// `POST …/v1/logout`: a logout request sent as a form, or the confirmation.
pub(super) async fn post_logout(
    State(idp): State<Idp>,
    Server(server): Server,
    headers: HeaderMap,
    jar: CookieJar,
    Form(params): Form<LogoutParams>,
) -> Response {
    match params.csrf.clone() {
        Some(csrf) => confirmed(&idp, &headers, jar, params, &csrf).await,
        None => logout(&idp, &server, jar, params).await,
    }
}

fn refuse(message: &str) -> Response {
    html_response(
        StatusCode::BAD_REQUEST,
        html::error("Cannot sign out", message),
    )
}

/// The `post_logout_redirect_uri` is not registered for the client.
struct Unregistered;

impl Unregistered {
    fn into_response(self) -> Response {
        refuse("The post_logout_redirect_uri is not registered for this application.")
    }
}

/// The client and its registered `post_logout_redirect_uri`, exactly matched.
fn checked_redirect(
    idp: &Idp,
    client_id: Option<&str>,
    uri: Option<&String>,
) -> Result<Option<String>, Unregistered> {
    let Some(uri) = uri else { return Ok(None) };
    let registered = client_id
        .and_then(|id| idp.client(id))
        .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
    if !registered {
        return Err(Unregistered);
    }
    Ok(Some(uri.clone()))
}

async fn logout(idp: &Idp, server: &AuthServer, jar: CookieJar, params: LogoutParams) -> Response {
    let mut hint: Option<IdTokenClaims> = None;
    if let Some(token) = &params.id_token_hint {
        let aud = protocol::verify::decode_unverified(token)
            .ok()
            .and_then(|c| serde_json::from_value::<IdTokenClaims>(c).ok())
            .map(|c| c.aud);
        let audience = match aud {
            Some(protocol::claims::Audience::One(a)) => a,
            Some(protocol::claims::Audience::Many(mut many)) if many.len() == 1 => many.remove(0),
            _ => String::new(),
        };
        let mut expect = Expectations::new(&server.issuer, audience, TypeRule::ANY);
        expect.leeway = HINT_LEEWAY;
        match idp
            .verifier_for(server)
            .verify::<IdTokenClaims>(token, &expect)
            .await
        {
            Ok(verified) => hint = Some(verified.claims),
            Err(_) => {
                return refuse("The id_token_hint is not valid.");
            }
        }
    }
    let client_id = match (&hint, &params.client_id) {
        (Some(h), Some(c)) if !h.aud.contains(c) => {
            return refuse("client_id does not match the id_token_hint.");
        }
        (Some(h), _) => match &h.aud {
            protocol::claims::Audience::One(a) => Some(a.clone()),
            protocol::claims::Audience::Many(m) => m.first().cloned(),
        },
        (None, c) => c.clone(),
    };
    let redirect = match checked_redirect(
        idp,
        client_id.as_deref(),
        params.post_logout_redirect_uri.as_ref(),
    ) {
        Ok(redirect) => redirect,
        Err(unregistered) => return unregistered.into_response(),
    };
    let Some(session) = current_session(idp, &jar).await else {
        // Nothing to end here; a stale cookie is cleared.
        let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
        return finish(jar, redirect, params.state.as_deref());
    };
    let is_this_session = hint.as_ref().is_some_and(|h| {
        h.sub == session.user_id && h.sid.as_deref().is_none_or(|sid| sid == session.sid)
    });
    if is_this_session {
        let jar = end_session(idp, jar, &session).await;
        tracing::info!(client_id = client_id.as_deref().unwrap_or("-"), "logout");
        return finish(jar, redirect, params.state.as_deref());
    }
    // No hint, or another person's or session's: ask (the form carries only what was checked).
    let binding = jar
        .get(SESSION_COOKIE)
        .map(|c| secret_hash(c.value()))
        .unwrap_or_default();
    let csrf = idp
        .csrf
        .token(LOGOUT_CSRF_PURPOSE, &binding, idp.clock.now());
    let mut fields = vec![("csrf", csrf.as_str())];
    if let (Some(client_id), Some(uri)) = (client_id.as_deref(), redirect.as_deref()) {
        fields.push(("client_id", client_id));
        fields.push(("post_logout_redirect_uri", uri));
    }
    if let Some(state) = params.state.as_deref() {
        fields.push(("state", state));
    }
    tracing::info!(
        client_id = client_id.as_deref().unwrap_or("-"),
        hint = hint.is_some(),
        "logout needs confirmation"
    );
    html_response(
        StatusCode::OK,
        html::confirm_logout(&server.endpoint("logout"), &fields),
    )
}

/// The person confirmed on the page: the token must be this session's and the post same-origin.
async fn confirmed(
    idp: &Idp,
    headers: &HeaderMap,
    jar: CookieJar,
    params: LogoutParams,
    csrf: &str,
) -> Response {
    let session = current_session(idp, &jar).await;
    let binding = jar.get(SESSION_COOKIE).map(|c| secret_hash(c.value()));
    let valid = !is_foreign_post(headers, idp.issuer())
        && binding.is_some_and(|b| {
            idp.csrf
                .is_valid(LOGOUT_CSRF_PURPOSE, &b, csrf, idp.clock.now())
        });
    let Some(session) = session.filter(|_| valid) else {
        return html_response(
            StatusCode::FORBIDDEN,
            html::error(
                "Cannot sign out",
                "This sign-out form expired or was not sent by idp0. Nothing was changed.",
            ),
        );
    };
    let redirect = match checked_redirect(
        idp,
        params.client_id.as_deref(),
        params.post_logout_redirect_uri.as_ref(),
    ) {
        Ok(redirect) => redirect,
        Err(unregistered) => return unregistered.into_response(),
    };
    let jar = end_session(idp, jar, &session).await;
    tracing::info!(
        client_id = params.client_id.as_deref().unwrap_or("-"),
        "logout confirmed"
    );
    finish(jar, redirect, params.state.as_deref())
}

/// Ends the browser's session (every row of its `sid`) and drops the cookie.
async fn end_session(idp: &Idp, jar: CookieJar, session: &SsoSession) -> CookieJar {
    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        let _ = idp.store.delete_session(&secret_hash(cookie.value())).await;
    }
    let _ = idp.store.delete_sessions_by_sid(&session.sid).await;
    jar.remove(Cookie::build(SESSION_COOKIE).path("/"))
}

fn finish(jar: CookieJar, redirect: Option<String>, state: Option<&str>) -> Response {
    match redirect.and_then(|uri| url::Url::parse(&uri).ok()) {
        Some(mut url) => {
            if let Some(state) = state {
                url.query_pairs_mut().append_pair("state", state);
            }
            (jar, Redirect::to(url.as_str())).into_response()
        }
        None => (jar, html_response(StatusCode::OK, html::signed_out())).into_response(),
    }
}
