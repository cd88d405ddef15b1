//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–3): ends the SSO session and
//! redirects only to an exactly registered `post_logout_redirect_uri`.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum_extra::extract::CookieJar;
use axum_extra::extract::cookie::Cookie;
use protocol::claims::IdTokenClaims;
use protocol::verify::{Expectations, TypeRule};
use serde::Deserialize;

use super::authorize::SESSION_COOKIE;
use super::{Server, html_response};
use crate::html;
use crate::state::Idp;
use crate::store::secret_hash;

/// Logout parameters.
#[derive(Deserialize)]
pub(super) struct LogoutParams {
    id_token_hint: Option<String>,
    post_logout_redirect_uri: Option<String>,
    client_id: Option<String>,
    state: Option<String>,
}

/// An ID token used as a hint may have expired long ago; its signature and issuer still count.
const HINT_LEEWAY: i64 = 30 * 24 * 3600;

/// `GET …/v1/logout`.
pub(super) async fn get_logout(
    State(idp): State<Idp>,
    Server(server): Server,
    jar: CookieJar,
    Query(params): Query<LogoutParams>,
) -> Response {
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
            .verifier_for(&server)
            .verify::<IdTokenClaims>(token, &expect)
            .await
        {
            Ok(verified) => hint = Some(verified.claims),
            Err(_) => {
                return html_response(
                    StatusCode::BAD_REQUEST,
                    html::error("Cannot sign out", "The id_token_hint is not valid."),
                );
            }
        }
    }
    let client_id = match (&hint, &params.client_id) {
        (Some(h), Some(c)) if !h.aud.contains(c) => {
            return html_response(
                StatusCode::BAD_REQUEST,
                html::error(
                    "Cannot sign out",
                    "client_id does not match the id_token_hint.",
                ),
            );
        }
        (Some(h), _) => match &h.aud {
            protocol::claims::Audience::One(a) => Some(a.clone()),
            protocol::claims::Audience::Many(m) => m.first().cloned(),
        },
        (None, c) => c.clone(),
    };
    let redirect = match &params.post_logout_redirect_uri {
        None => None,
        Some(uri) => {
            let registered = client_id
                .as_deref()
                .and_then(|id| idp.client(id))
                .is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
            if !registered {
                return html_response(
                    StatusCode::BAD_REQUEST,
                    html::error(
                        "Cannot sign out",
                        "The post_logout_redirect_uri is not registered for this application.",
                    ),
                );
            }
            Some(uri.clone())
        }
    };

    if let Some(cookie) = jar.get(SESSION_COOKIE) {
        let _ = idp.store.delete_session(&secret_hash(cookie.value())).await;
    }
    if let Some(sid) = hint.as_ref().and_then(|h| h.sid.as_deref()) {
        let _ = idp.store.delete_sessions_by_sid(sid).await;
    }
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    tracing::info!(client_id = client_id.as_deref().unwrap_or("-"), "logout");
    match redirect.and_then(|uri| url::Url::parse(&uri).ok()) {
        Some(mut url) => {
            if let Some(state) = &params.state {
                url.query_pairs_mut().append_pair("state", state);
            }
            (jar, Redirect::to(url.as_str())).into_response()
        }
        None => (jar, html_response(StatusCode::OK, html::signed_out())).into_response(),
    }
}
