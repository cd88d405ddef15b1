//! The third-party (ISV) side of brokered consent: idp0 as an OAuth client of the ISV
//! (RFC 6749 §4.1.3 code redemption with PKCE, §6 refresh, RFC 7009 revocation), with
//! `client_secret_post` and `Accept: application/json`.
//!
//! GitHub's quirks are accepted (OKTA.md §3): errors may come back as HTTP 200 with an `error`
//! member, and a response without `Accept: application/json` is form-encoded — both shapes are
//! read. Nothing here logs or returns a token, code, verifier or secret.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::config::{BrokeredConnection, RevocationStyle};

/// How long one call to the ISV may take.
pub const ISV_TIMEOUT: Duration = Duration::from_secs(10);

/// The `User-Agent` idp0 sends to ISVs; GitHub's REST API (where its grant revocation lives)
/// answers 403 to a request without one.
pub const USER_AGENT: &str = concat!("idp0/", env!("CARGO_PKG_VERSION"));

/// An HTTP client for ISVs: no redirects, bounded time, a `User-Agent`. Fails closed (STYLE).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(protocol::trust::client_builder()
        .user_agent(USER_AGENT)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(ISV_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .build()?)
}

/// Tokens the ISV issued.
pub struct IsvTokens {
    /// Access token.
    pub access_token: SecretString,
    /// Refresh token, when the ISV issues expiring tokens.
    pub refresh_token: Option<SecretString>,
    /// Seconds until the access token expires, when said.
    pub expires_in: Option<i64>,
    /// Granted scope, when said (GitHub separates with commas).
    pub scope: Option<String>,
}

/// Why the ISV did not issue tokens.
#[derive(Debug, thiserror::Error)]
pub enum IsvError {
    /// The ISV answered with an OAuth error (the grant is no good): its code only.
    #[error("the app refused: {0}")]
    Rejected(String),
    /// The ISV could not be reached or failed (5xx, timeout, unreadable answer).
    #[error("the app could not be reached: {0}")]
    Unavailable(String),
}

/// Redeems an authorization code (RFC 6749 §4.1.3 + RFC 7636 §4.5).
pub async fn redeem_code(
    http: &reqwest::Client,
    connection: &BrokeredConnection,
    code: &str,
    redirect_uri: &str,
    verifier: &SecretString,
) -> Result<IsvTokens, IsvError> {
    token_request(
        http,
        connection,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier.expose_secret()),
        ],
    )
    .await
}

/// Refreshes (RFC 6749 §6).
pub async fn refresh(
    http: &reqwest::Client,
    connection: &BrokeredConnection,
    refresh_token: &SecretString,
) -> Result<IsvTokens, IsvError> {
    token_request(
        http,
        connection,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ],
    )
    .await
}

/// What a GitHub-style revocation removes at the ISV (RFC 7009 revocation is per token always).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// This token (and, at GitHub, what was issued with it): `DELETE …/applications/{id}/token`.
    Token,
    /// The person's whole authorization of the app, every token:
    /// `DELETE …/applications/{id}/grant`.
    Grant,
}

impl Extent {
    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Grant => "grant",
        }
    }
}

/// Revokes a token at the ISV's revocation endpoint, RFC 7009 §2.1 or GitHub's OAuth app API
/// (the connection's `revocation`); `Ok(false)` when the connection has none. GitHub revokes
/// with an access token only, so `hint` is ignored there, and `extent` picks `…/token` (that
/// token only) or `…/grant` (every token of the person for the app); RFC 7009 ignores `extent`.
pub async fn revoke(
    http: &reqwest::Client,
    connection: &BrokeredConnection,
    token: &SecretString,
    hint: &str,
    extent: Extent,
) -> Result<bool, IsvError> {
    let Some(url) = &connection.revocation_url else {
        return Ok(false);
    };
    let request = match connection.revocation {
        RevocationStyle::Rfc7009 => http.post(url.clone()).form(&[
            ("token", token.expose_secret()),
            ("token_type_hint", hint),
            ("client_id", connection.client_id.as_str()),
            ("client_secret", connection.client_secret.expose_secret()),
        ]),
        // GitHub: DELETE /applications/{client_id}/grant or …/token, Basic client_id:secret, the
        // access token in a JSON body; 204 when done, 404 when the token is already gone, 422
        // when the request does not validate.
        RevocationStyle::Github => {
            let target = match extent {
                Extent::Grant => url.clone(),
                // Checked when the configuration loads; a hand-built connection may lack it.
                Extent::Token => connection.github_token_url().ok_or_else(|| {
                    IsvError::Rejected("revocation_url is not …/applications/{id}/grant".into())
                })?,
            };
            http.delete(target)
                .basic_auth(
                    &connection.client_id,
                    Some(connection.client_secret.expose_secret()),
                )
                .json(&serde_json::json!({ "access_token": token.expose_secret() }))
        }
    };
    let response = request
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| IsvError::Unavailable(describe(&e)))?;
    let status = response.status();
    let gone = connection.revocation == RevocationStyle::Github
        && status == reqwest::StatusCode::NOT_FOUND;
    if status.is_success() || gone {
        Ok(true)
    } else if status.is_server_error() {
        Err(IsvError::Unavailable(format!("HTTP {}", status.as_u16())))
    } else {
        Err(IsvError::Rejected(format!("HTTP {}", status.as_u16())))
    }
}

async fn token_request(
    http: &reqwest::Client,
    connection: &BrokeredConnection,
    params: &[(&str, &str)],
) -> Result<IsvTokens, IsvError> {
    let mut form: Vec<(&str, &str)> = params.to_vec();
    form.push(("client_id", &connection.client_id));
    form.push(("client_secret", connection.client_secret.expose_secret()));
    let response = http
        .post(connection.token_url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&form)
        .send()
        .await
        .map_err(|e| IsvError::Unavailable(describe(&e)))?;
    let status = response.status();
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let body = response
        .bytes()
        .await
        .map_err(|e| IsvError::Unavailable(describe(&e)))?;
    if status.is_server_error() {
        return Err(IsvError::Unavailable(format!("HTTP {}", status.as_u16())));
    }
    let fields = read_fields(&body, is_json);
    if let Some(error) = fields.get("error") {
        return Err(IsvError::Rejected(short(error)));
    }
    if !status.is_success() {
        return Err(IsvError::Rejected(format!("HTTP {}", status.as_u16())));
    }
    let access_token = fields
        .get("access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| IsvError::Unavailable("the answer carries no access_token".into()))?;
    Ok(IsvTokens {
        access_token: SecretString::from(access_token.clone()),
        refresh_token: fields
            .get("refresh_token")
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.clone())),
        expires_in: fields.get("expires_in").and_then(|v| v.parse().ok()),
        scope: fields.get("scope").map(|s| s.replace(',', " ")),
    })
}

/// The answer's top-level members as strings (JSON numbers included), JSON or form-encoded.
fn read_fields(body: &[u8], is_json: bool) -> HashMap<String, String> {
    let json = if is_json || body.first() == Some(&b'{') {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body).ok()
    } else {
        None
    };
    match json {
        Some(map) => map
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                serde_json::Value::Number(n) => Some((k, n.to_string())),
                _ => None,
            })
            .collect(),
        None => url::form_urlencoded::parse(body).into_owned().collect(),
    }
}

/// An error code as shown in logs and pages: short, and only a code's characters.
fn short(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// A transport error without its URL (which is configuration, but keep logs plain).
fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        "transport error".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form_and_github_style_answers_are_read() {
        let json = read_fields(br#"{"access_token":"a","expires_in":28800}"#, true);
        assert_eq!(json["access_token"], "a");
        assert_eq!(json["expires_in"], "28800");
        let form = read_fields(b"access_token=b&scope=repo%2Cuser&token_type=bearer", false);
        assert_eq!(form["access_token"], "b");
        assert_eq!(form["scope"], "repo,user");
        let error = read_fields(
            br#"{"error":"bad_verification_code","error_description":"x"}"#,
            true,
        );
        assert_eq!(short(&error["error"]), "bad_verification_code");
        assert_eq!(short("<script>"), "script");
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod revocation_tests {
    use std::sync::{Arc, Mutex};

    use axum::http::HeaderMap;

    use super::*;
    use crate::config::BrokeredKind;

    type Seen = Arc<Mutex<Vec<(String, String, Option<String>, String, String)>>>;

    /// A stand-in ISV recording each revocation: method, path, Authorization, body, User-Agent.
    async fn isv(status: u16) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let record = seen.clone();
        let app = axum::Router::new().fallback(
            move |method: axum::http::Method,
                  uri: axum::http::Uri,
                  headers: HeaderMap,
                  body: String| {
                let record = record.clone();
                async move {
                    let auth = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let agent = headers
                        .get("user-agent")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    record.lock().unwrap().push((
                        method.to_string(),
                        uri.path().to_owned(),
                        auth,
                        body,
                        agent,
                    ));
                    axum::http::StatusCode::from_u16(status).unwrap()
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, seen)
    }

    fn connection(revocation_url: &str, revocation: RevocationStyle) -> BrokeredConnection {
        BrokeredConnection {
            kind: BrokeredKind::Application,
            name: "GitHub".into(),
            resource: "https://api.github.com".into(),
            authorize_url: url::Url::parse("https://github.com/login/oauth/authorize").unwrap(),
            token_url: url::Url::parse("https://github.com/login/oauth/access_token").unwrap(),
            revocation_url: Some(url::Url::parse(revocation_url).unwrap()),
            revocation,
            client_id: "Iv1.abc".into(),
            client_secret: SecretString::from("s3cret"),
            scope: "repo read:user".into(),
        }
    }

    #[tokio::test]
    async fn github_style_deletes_the_grant_with_basic_auth_and_a_json_body() {
        let (base, seen) = isv(204).await;
        let c = connection(
            &format!("{base}/api/v3/applications/Iv1.abc/grant"),
            RevocationStyle::Github,
        );
        let http = http_client().unwrap();
        let token = SecretString::from("ghu_abc");
        assert!(
            revoke(&http, &c, &token, "access_token", Extent::Grant)
                .await
                .unwrap()
        );
        let (method, path, auth, body, _) = seen.lock().unwrap()[0].clone();
        assert_eq!(method, "DELETE");
        assert!(
            seen.lock().unwrap()[0].4.starts_with("idp0/"),
            "a User-Agent"
        );
        assert_eq!(path, "/api/v3/applications/Iv1.abc/grant");
        // base64("Iv1.abc:s3cret")
        assert_eq!(auth.as_deref(), Some("Basic SXYxLmFiYzpzM2NyZXQ="));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, serde_json::json!({"access_token": "ghu_abc"}));
        // A grant already gone (404) is done; a 500 is the app failing.
        let (gone, _) = isv(404).await;
        let c = connection(
            &format!("{gone}/applications/Iv1.abc/grant"),
            RevocationStyle::Github,
        );
        for extent in [Extent::Grant, Extent::Token] {
            assert!(
                revoke(&http, &c, &token, "access_token", extent)
                    .await
                    .unwrap()
            );
        }
        let (down, _) = isv(500).await;
        let c = connection(
            &format!("{down}/applications/Iv1.abc/grant"),
            RevocationStyle::Github,
        );
        assert!(matches!(
            revoke(&http, &c, &token, "access_token", Extent::Grant).await,
            Err(IsvError::Unavailable(_))
        ));
    }

    #[tokio::test]
    async fn github_style_deletes_one_token_at_the_grant_urls_token_sibling() {
        let (base, seen) = isv(204).await;
        let c = connection(
            &format!("{base}/api/v3/applications/Iv1.abc/grant"),
            RevocationStyle::Github,
        );
        let http = http_client().unwrap();
        let token = SecretString::from("ghu_one");
        assert!(
            revoke(&http, &c, &token, "access_token", Extent::Token)
                .await
                .unwrap()
        );
        let (method, path, auth, body, _) = seen.lock().unwrap()[0].clone();
        assert_eq!(method, "DELETE");
        assert_eq!(path, "/api/v3/applications/Iv1.abc/token");
        assert_eq!(auth.as_deref(), Some("Basic SXYxLmFiYzpzM2NyZXQ="));
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body, serde_json::json!({"access_token": "ghu_one"}));
        // 422 (validation failed) is a refusal, not "already gone".
        let (invalid, _) = isv(422).await;
        let c = connection(
            &format!("{invalid}/applications/Iv1.abc/grant"),
            RevocationStyle::Github,
        );
        assert!(matches!(
            revoke(&http, &c, &token, "access_token", Extent::Token).await,
            Err(IsvError::Rejected(_))
        ));
        // A hand-built connection whose URL is not a grant URL has no token sibling: refused
        // before any call.
        let (other, seen) = isv(204).await;
        let c = connection(&format!("{other}/revoke"), RevocationStyle::Github);
        assert!(matches!(
            revoke(&http, &c, &token, "access_token", Extent::Token).await,
            Err(IsvError::Rejected(_))
        ));
        assert!(seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn rfc7009_style_posts_a_form() {
        let (base, seen) = isv(200).await;
        let c = connection(&format!("{base}/revoke"), RevocationStyle::Rfc7009);
        let http = http_client().unwrap();
        let token = SecretString::from("rt-1");
        assert!(
            revoke(&http, &c, &token, "refresh_token", Extent::Grant)
                .await
                .unwrap()
        );
        let (method, path, auth, body, _) = seen.lock().unwrap()[0].clone();
        assert_eq!(
            (method.as_str(), path.as_str(), auth),
            ("POST", "/revoke", None)
        );
        assert!(body.contains("token=rt-1") && body.contains("token_type_hint=refresh_token"));
    }
}
