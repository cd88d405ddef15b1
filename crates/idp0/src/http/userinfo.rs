//! UserInfo (OIDC Core §5.3) with bearer-token errors per RFC 6750 §3.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::claims::AccessTokenClaims;
use protocol::verify::{Expectations, TypeRule};
use protocol::www_authenticate::Challenge;

use super::Server;
use crate::state::Idp;

/// `GET|POST …/v1/userinfo`.
pub(super) async fn get_userinfo(
    State(idp): State<Idp>,
    Server(server): Server,
    headers: HeaderMap,
) -> Response {
    let Some(token) = bearer(&headers) else {
        return challenge(
            StatusCode::UNAUTHORIZED,
            Challenge::bearer().with_param("realm", "idp0"),
        );
    };
    let expect = Expectations::new(&server.issuer, server.audience(), TypeRule::ACCESS_TOKEN);
    let claims = match idp
        .verifier_for(&server)
        .verify::<AccessTokenClaims>(token, &expect)
        .await
    {
        Ok(verified) => verified.claims,
        Err(e) => return invalid_token(&e.to_string()),
    };
    match idp
        .store
        .is_access_token_revoked(claims.jti.as_deref().unwrap_or_default())
        .await
    {
        Ok(false) => {}
        Ok(true) => return invalid_token("token revoked"),
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
    let scopes = claims.scopes();
    if !scopes.contains("openid") {
        let c = Challenge::bearer()
            .with_param("error", "insufficient_scope")
            .with_param("scope", "openid");
        return challenge(StatusCode::FORBIDDEN, c);
    }
    let Some(user) = claims.uid.as_deref().and_then(|uid| idp.user(uid)) else {
        return invalid_token("token has no user");
    };
    let mut body = serde_json::json!({"sub": user.id});
    if scopes.contains("profile") {
        body["name"] = user.name.clone().into();
        body["preferred_username"] = user.username.clone().into();
    }
    if scopes.contains("email") {
        body["email"] = user.email.clone().into();
        body["email_verified"] = true.into();
    }
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    protocol::bearer::parse_authorization(value)
}

fn invalid_token(description: &str) -> Response {
    let c = Challenge::bearer()
        .with_param("error", "invalid_token")
        .with_param("error_description", description);
    challenge(StatusCode::UNAUTHORIZED, c)
}

fn challenge(status: StatusCode, challenge: Challenge) -> Response {
    let value = challenge
        .to_header_value()
        .ok()
        .and_then(|v| HeaderValue::from_str(&v).ok())
        .unwrap_or_else(|| HeaderValue::from_static("Bearer"));
    (status, [(header::WWW_AUTHENTICATE, value)]).into_response()
}
