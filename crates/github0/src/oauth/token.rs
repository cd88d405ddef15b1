//! `POST /login/oauth/access_token`, as GitHub answers it: parameters form-encoded or JSON;
//! the client authenticated by `client_id` + `client_secret` in the body (or HTTP Basic);
//! `Accept: application/json` → JSON, anything else → form-encoded; errors are HTTP 200 with
//! `error`, `error_description`, `error_uri`. A code is single use (a replay revokes what it
//! issued), ten minutes, bound to its app and `redirect_uri`, and its PKCE challenge. A refresh
//! token is single use: refreshing rotates it and revokes the previous access token.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use protocol::constant_time::is_equal;
use secrecy::{ExposeSecret, SecretString};

use super::error_uri;
use crate::store::{CodeTaken, TokenGrant};
use crate::tokens::{TokenKind, digest, new_opaque, new_token, s256};
use crate::{App, Github0};

/// A token request, read as flat strings.
#[derive(Default)]
struct RawRequest {
    grant_type: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    code: Option<SecretString>,
    redirect_uri: Option<String>,
    code_verifier: Option<SecretString>,
    refresh_token: Option<SecretString>,
}

/// What is asked.
enum Grant {
    Code {
        code: SecretString,
        redirect_uri: Option<String>,
        code_verifier: Option<SecretString>,
    },
    Refresh {
        refresh_token: SecretString,
    },
}

/// A refusal, in GitHub's names.
#[derive(Debug, Clone, Copy)]
enum TokenError {
    IncorrectClientCredentials,
    RedirectUriMismatch,
    BadVerificationCode,
    PkceMismatch,
    BadRefreshToken,
    UnsupportedGrantType,
    Unavailable,
}

impl TokenError {
    fn parts(self) -> (&'static str, &'static str) {
        match self {
            TokenError::IncorrectClientCredentials => (
                "incorrect_client_credentials",
                "The client_id and/or client_secret passed are incorrect.",
            ),
            TokenError::RedirectUriMismatch => (
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            ),
            TokenError::BadVerificationCode => (
                "bad_verification_code",
                "The code passed is incorrect or expired.",
            ),
            TokenError::PkceMismatch => (
                "bad_verification_code",
                "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.",
            ),
            TokenError::BadRefreshToken => (
                "bad_refresh_token",
                "The refresh token passed is incorrect or expired.",
            ),
            TokenError::UnsupportedGrantType => (
                "unsupported_grant_type",
                "The grant type is not supported: use authorization_code (the default) or refresh_token.",
            ),
            TokenError::Unavailable => (
                "temporarily_unavailable",
                "The sandbox could not answer just now; try again.",
            ),
        }
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> RawRequest {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let mut fields: HashMap<String, String> = HashMap::new();
    if is_json {
        if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body) {
            for (k, v) in object {
                if let serde_json::Value::String(s) = v {
                    fields.insert(k, s);
                }
            }
        }
    } else {
        for (k, v) in url::form_urlencoded::parse(body) {
            // A repeated parameter is ambiguous: it counts as absent.
            if fields.insert(k.to_string(), v.to_string()).is_some() {
                fields.insert(k.to_string(), String::new());
            }
        }
    }
    let mut take = |k: &str| fields.remove(k).filter(|v| !v.is_empty());
    RawRequest {
        grant_type: take("grant_type"),
        client_id: take("client_id"),
        client_secret: take("client_secret").map(SecretString::from),
        code: take("code").map(SecretString::from),
        redirect_uri: take("redirect_uri"),
        code_verifier: take("code_verifier").map(SecretString::from),
        refresh_token: take("refresh_token").map(SecretString::from),
    }
}

impl TryFrom<RawRequest> for Grant {
    type Error = TokenError;

    fn try_from(raw: RawRequest) -> Result<Self, TokenError> {
        match raw.grant_type.as_deref() {
            None | Some("authorization_code") => Ok(Grant::Code {
                code: raw.code.ok_or(TokenError::BadVerificationCode)?,
                redirect_uri: raw.redirect_uri,
                code_verifier: raw.code_verifier,
            }),
            Some("refresh_token") => Ok(Grant::Refresh {
                refresh_token: raw.refresh_token.ok_or(TokenError::BadRefreshToken)?,
            }),
            Some(_) => Err(TokenError::UnsupportedGrantType),
        }
    }
}

/// The client from the body, or HTTP Basic.
fn client<'a>(
    github0: &'a Github0,
    headers: &HeaderMap,
    raw: &mut RawRequest,
) -> Result<&'a App, TokenError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| {
            base64::engine::general_purpose::STANDARD
                .decode(v.trim())
                .ok()
        })
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
    let (id, secret) = match (raw.client_id.take(), raw.client_secret.take(), basic) {
        (Some(id), Some(secret), _) => (id, secret),
        (_, _, Some((id, secret))) => (id, SecretString::from(secret)),
        _ => return Err(TokenError::IncorrectClientCredentials),
    };
    let app = github0
        .app(&id)
        .ok_or(TokenError::IncorrectClientCredentials)?;
    if is_equal(digest(secret.expose_secret()), &app.client_secret_sha256) {
        Ok(app)
    } else {
        Err(TokenError::IncorrectClientCredentials)
    }
}

pub(crate) async fn post_access_token(
    State(github0): State<Github0>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let mut raw = parse_body(&headers, &body);
    let outcome = match client(&github0, &headers, &mut raw) {
        Err(e) => Err(e),
        Ok(app) => match Grant::try_from(raw) {
            Err(e) => Err(e),
            Ok(grant) => exchange(&github0, app, grant).await,
        },
    };
    let mut fields: Vec<(&str, String)> = match outcome {
        Ok(fields) => fields,
        Err(error) => {
            let (name, description) = error.parts();
            tracing::info!(target: "github0::audit", error = name, "token request refused");
            vec![
                ("error", name.to_owned()),
                ("error_description", description.to_owned()),
                ("error_uri", error_uri(name).to_owned()),
            ]
        }
    };
    let mut response = if json {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .drain(..)
            .map(|(k, v)| {
                let value = match k {
                    "expires_in" | "refresh_token_expires_in" => v
                        .parse::<i64>()
                        .map(serde_json::Value::from)
                        .unwrap_or(serde_json::Value::String(v)),
                    _ => serde_json::Value::String(v),
                };
                (k.to_owned(), value)
            })
            .collect();
        axum::Json(object).into_response()
    } else {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &fields {
            form.append_pair(k, v);
        }
        (
            [(
                header::CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            form.finish(),
        )
            .into_response()
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn exchange(
    github0: &Github0,
    app: &App,
    grant: Grant,
) -> Result<Vec<(&'static str, String)>, TokenError> {
    let store = github0.store();
    let now = github0.now();
    let unavailable = |e: crate::store::StoreError| {
        tracing::error!(error = %e, "github0 store failed");
        TokenError::Unavailable
    };
    let (account_id, scope, family) = match grant {
        Grant::Code {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let code = match store
                .take_code(&digest(code.expose_secret()))
                .await
                .map_err(unavailable)?
            {
                CodeTaken::Fresh(code) => code,
                CodeTaken::Replayed { family } => {
                    tracing::warn!(target: "github0::audit", client_id = %app.client_id, "a used code was presented again; its tokens are revoked");
                    store.revoke_family(&family).await.map_err(unavailable)?;
                    return Err(TokenError::BadVerificationCode);
                }
                CodeTaken::Unknown => return Err(TokenError::BadVerificationCode),
            };
            if code.client_id != app.client_id || code.expires_at <= now {
                return Err(TokenError::BadVerificationCode);
            }
            if redirect_uri.is_some_and(|r| r != code.redirect_uri) {
                return Err(TokenError::RedirectUriMismatch);
            }
            if let Some(challenge) = &code.code_challenge {
                let Some(verifier) = code_verifier else {
                    return Err(TokenError::PkceMismatch);
                };
                if !is_equal(s256(verifier.expose_secret()), challenge) {
                    return Err(TokenError::PkceMismatch);
                }
            }
            (code.account_id, code.scope, code.family)
        }
        Grant::Refresh { refresh_token } => {
            if !app.expiring_tokens {
                return Err(TokenError::BadRefreshToken);
            }
            let old = store
                .take_refresh(&digest(refresh_token.expose_secret()), &app.client_id, now)
                .await
                .map_err(unavailable)?
                .ok_or(TokenError::BadRefreshToken)?;
            // A grant removed since (the person or the app revoked it) ends refreshing too.
            if store
                .grant(old.account_id, &app.client_id)
                .await
                .map_err(unavailable)?
                .is_none()
            {
                return Err(TokenError::BadRefreshToken);
            }
            (old.account_id, old.scope, old.family)
        }
    };
    let config = github0.config();
    let seconds = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let mut fields = Vec::new();
    let scope_out = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    if app.expiring_tokens {
        let access = new_token(TokenKind::UserToServer);
        let refresh = new_token(TokenKind::Refresh);
        let access_life = seconds(config.token_lifetime);
        let refresh_life = seconds(config.refresh_token_lifetime);
        let grant = |expires_at| TokenGrant {
            client_id: app.client_id.clone(),
            account_id,
            scope: scope.clone(),
            family: family.clone(),
            expires_at: Some(expires_at),
        };
        store
            .put_token(&digest(&access), "access", &grant(now + access_life))
            .await
            .map_err(unavailable)?;
        store
            .put_token(&digest(&refresh), "refresh", &grant(now + refresh_life))
            .await
            .map_err(unavailable)?;
        fields.push(("access_token", access));
        fields.push(("expires_in", access_life.to_string()));
        fields.push(("refresh_token", refresh));
        fields.push(("refresh_token_expires_in", refresh_life.to_string()));
    } else {
        let access = new_token(TokenKind::OAuth);
        let grant = TokenGrant {
            client_id: app.client_id.clone(),
            account_id,
            scope: scope.clone(),
            family: if family.is_empty() {
                new_opaque()
            } else {
                family
            },
            expires_at: None,
        };
        store
            .put_token(&digest(&access), "access", &grant)
            .await
            .map_err(unavailable)?;
        fields.push(("access_token", access));
    }
    fields.push(("scope", scope_out));
    fields.push(("token_type", "bearer".to_owned()));
    tracing::info!(target: "github0::audit", client_id = %app.client_id, account_id, "tokens issued");
    Ok(fields)
}
