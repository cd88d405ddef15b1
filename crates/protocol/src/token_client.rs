//! A small OAuth token-endpoint client for the two Cross-App Access steps and plain grants:
//! RFC 8693 token exchange for an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant §4.3)
//! and the RFC 7523 JWT bearer grant that redeems it (§4.4), with `private_key_jwt`,
//! `client_secret_basic` or `client_secret_post` client authentication. Redirects are never
//! followed, responses are size-bounded, and errors keep the server's RFC 6749 §5.2 body.
//! [`TokenClient::exchange_for_access_token`] runs both Cross-App Access steps: every caller
//! that needs an access token by Cross-App Access uses it.

use std::time::Duration;

use base64::Engine;
use secrecy::{ExposeSecret, SecretString};

use crate::assertion::ClientAssertionSigner;
use crate::oauth::{ErrorResponse, GrantType, TokenResponse, TokenType};

mod cross_app_access;

pub use cross_app_access::{
    CrossAppAccess, CrossAppAccessError, CrossAppAccessGrant, CrossAppAccessStep,
};

/// How the client authenticates.
#[derive(Debug, Clone)]
pub enum ClientAuth {
    /// RFC 7523 client assertion.
    PrivateKeyJwt(ClientAssertionSigner),
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    SecretBasic {
        /// Client id.
        client_id: String,
        /// Secret.
        secret: SecretString,
    },
    /// Id and secret in the body.
    SecretPost {
        /// Client id.
        client_id: String,
        /// Secret.
        secret: SecretString,
    },
    /// A public client.
    None {
        /// Client id.
        client_id: String,
    },
}

/// Why a token request failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenClientError {
    /// Transport failure.
    #[error("token request to {endpoint} failed: {message}")]
    Http {
        /// The endpoint.
        endpoint: String,
        /// What went wrong.
        message: String,
    },
    /// The server refused with an OAuth error.
    #[error("{endpoint} answered HTTP {status}: {} ({})", .error.error, .error.error_description.as_deref().unwrap_or("no description"))]
    OAuth {
        /// The endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// The error body.
        error: ErrorResponse,
    },
    /// The response was not what the protocol requires.
    #[error("{endpoint} returned an invalid response: {message}")]
    Invalid {
        /// The endpoint.
        endpoint: String,
        /// What was wrong.
        message: String,
    },
    /// The client assertion could not be signed.
    #[error("signing the client assertion failed: {0}")]
    Signing(String),
}

/// The HTTP client for token requests could not be built with the settings they need (no
/// redirects, a timeout, the trusted CAs). There is no fallback to a default client: one without
/// those settings would follow a redirect with the client's credentials, or wait forever.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client for token requests: {0}")]
pub struct ClientSetupError(#[source] reqwest::Error);

const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// How long a token request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Token endpoint client.
#[derive(Debug, Clone)]
pub struct TokenClient {
    http: reqwest::Client,
}

impl TokenClient {
    /// A client that trusts what [`crate::trust::client_builder`] trusts, never follows
    /// redirects and gives up after 15 s; an error when such a client cannot be built.
    pub fn new() -> Result<Self, ClientSetupError> {
        Self::from_builder(crate::trust::client_builder())
    }

    fn from_builder(builder: reqwest::ClientBuilder) -> Result<Self, ClientSetupError> {
        let http = builder
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .map_err(ClientSetupError)?;
        Ok(Self { http })
    }

    /// POSTs `params` plus client authentication to `endpoint`.
    pub async fn request(
        &self,
        endpoint: &str,
        auth: &ClientAuth,
        params: &[(&str, &str)],
    ) -> Result<TokenResponse, TokenClientError> {
        let body = self.post_form(endpoint, auth, params).await?;
        serde_json::from_slice(body.as_ref()).map_err(|_| TokenClientError::Invalid {
            endpoint: endpoint.to_owned(),
            message: "not a token response".into(),
        })
    }

    /// RFC 7009 §2.1 token revocation: `token` (and `token_type_hint`, when given) with the
    /// same client authentication as at the token endpoint (a client assertion's `aud` is the
    /// revocation endpoint). Success is any 2xx (§2.2: the body is ignored); an error keeps the
    /// server's §2.2.1 / RFC 6749 §5.2 body.
    pub async fn revoke(
        &self,
        endpoint: &str,
        auth: &ClientAuth,
        token: &SecretString,
        token_type_hint: Option<&str>,
    ) -> Result<(), TokenClientError> {
        let mut params = vec![("token", token.expose_secret())];
        params.extend(token_type_hint.map(|hint| ("token_type_hint", hint)));
        self.post_form(endpoint, auth, &params).await.map(drop)
    }

    /// POSTs `params` plus client authentication to `endpoint`: the body of a 2xx answer, or
    /// the OAuth error of any other.
    async fn post_form(
        &self,
        endpoint: &str,
        auth: &ClientAuth,
        params: &[(&str, &str)],
    ) -> Result<impl AsRef<[u8]>, TokenClientError> {
        // The serializer is not `Send`: the body is built in a block, before the first await.
        let (request, body) = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(params.iter().copied());
            let mut request = self
                .http
                .post(endpoint)
                .header(reqwest::header::ACCEPT, "application/json");
            match auth {
                ClientAuth::PrivateKeyJwt(signer) => {
                    let fields = signer
                        .form_fields(endpoint)
                        .map_err(|e| TokenClientError::Signing(e.to_string()))?;
                    for (name, value) in &fields {
                        form.append_pair(name, value.expose_secret());
                    }
                }
                ClientAuth::SecretBasic { client_id, secret } => {
                    let encode = |s: &str| {
                        url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                    };
                    let pair = format!("{}:{}", encode(client_id), encode(secret.expose_secret()));
                    let value = format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    );
                    request = request.header(reqwest::header::AUTHORIZATION, value);
                }
                ClientAuth::SecretPost { client_id, secret } => {
                    form.append_pair("client_id", client_id)
                        .append_pair("client_secret", secret.expose_secret());
                }
                ClientAuth::None { client_id } => {
                    form.append_pair("client_id", client_id);
                }
            }
            (request, form.finish())
        };
        let response = request
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body)
            .send()
            .await
            .map_err(|e| TokenClientError::Http {
                endpoint: endpoint.to_owned(),
                message: e.without_url().to_string(),
            })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| TokenClientError::Http {
            endpoint: endpoint.to_owned(),
            message: e.without_url().to_string(),
        })?;
        let invalid = |message: &str| TokenClientError::Invalid {
            endpoint: endpoint.to_owned(),
            message: message.to_owned(),
        };
        if body.len() > MAX_RESPONSE_BYTES {
            return Err(invalid("response too large"));
        }
        if !status.is_success() {
            let error: ErrorResponse = serde_json::from_slice(&body).map_err(|_| {
                invalid(&format!(
                    "HTTP {} without an OAuth error body",
                    status.as_u16()
                ))
            })?;
            return Err(TokenClientError::OAuth {
                endpoint: endpoint.to_owned(),
                status: status.as_u16(),
                error,
            });
        }
        Ok(body)
    }

    /// Step 1 of Cross-App Access: the user's ID token for an ID-JAG at the IdP's token endpoint.
    pub async fn exchange_for_id_jag(
        &self,
        endpoint: &str,
        auth: &ClientAuth,
        request: &IdJagRequest<'_>,
    ) -> Result<TokenResponse, TokenClientError> {
        let grant = GrantType::TokenExchange.to_string();
        let requested = TokenType::IdJag.to_string();
        let subject_type = request.subject_token_type.to_string();
        let mut params = vec![
            ("grant_type", grant.as_str()),
            ("requested_token_type", requested.as_str()),
            ("subject_token", request.subject_token.expose_secret()),
            ("subject_token_type", subject_type.as_str()),
            ("audience", request.audience),
        ];
        params.extend(request.resource.map(|r| ("resource", r)));
        params.extend(request.scope.map(|s| ("scope", s)));
        let response = self.request(endpoint, auth, &params).await?;
        let is_jag = response.issued_token_type == Some(TokenType::IdJag);
        // The draft says N_A; Okta answers Bearer. Accept both, nothing else.
        let type_ok = response.token_type.eq_ignore_ascii_case("N_A")
            || response.token_type.eq_ignore_ascii_case("Bearer");
        if !is_jag || !type_ok {
            return Err(TokenClientError::Invalid {
                endpoint: endpoint.to_owned(),
                message: "response is not an ID-JAG (issued_token_type / token_type)".into(),
            });
        }
        Ok(response)
    }

    /// Step 2: redeems an ID-JAG with the JWT bearer grant at the resource AS.
    pub async fn redeem_id_jag(
        &self,
        endpoint: &str,
        auth: &ClientAuth,
        id_jag: &SecretString,
    ) -> Result<TokenResponse, TokenClientError> {
        let grant = GrantType::JwtBearer.to_string();
        let response = self
            .request(
                endpoint,
                auth,
                &[
                    ("grant_type", grant.as_str()),
                    ("assertion", id_jag.expose_secret()),
                ],
            )
            .await?;
        if !response.token_type.eq_ignore_ascii_case("Bearer") {
            return Err(TokenClientError::Invalid {
                endpoint: endpoint.to_owned(),
                message: "token_type is not Bearer".into(),
            });
        }
        Ok(response)
    }
}

/// The parameters of an ID-JAG token exchange.
#[derive(Debug)]
pub struct IdJagRequest<'a> {
    /// The user's ID token (or refresh token).
    pub subject_token: &'a SecretString,
    /// Its type.
    pub subject_token_type: TokenType,
    /// The resource AS issuer.
    pub audience: &'a str,
    /// The resource identifier.
    pub resource: Option<&'a str>,
    /// Space-separated scopes.
    pub scope: Option<&'a str>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::post;

    use super::*;

    #[test]
    fn a_client_that_cannot_be_built_is_an_error_not_a_default_client() {
        // No TLS version left to offer: reqwest refuses to build the client.
        let impossible = reqwest::Client::builder()
            .min_tls_version(reqwest::tls::Version::TLS_1_3)
            .max_tls_version(reqwest::tls::Version::TLS_1_2);
        let error = TokenClient::from_builder(impossible).unwrap_err();
        assert!(error.to_string().contains("cannot build"), "{error}");
    }

    #[tokio::test]
    async fn revocation_sends_the_token_and_hint_and_ignores_the_body() {
        use std::collections::HashMap;
        use std::sync::Mutex;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        let app = Router::new().route(
            "/revoke",
            post(
                move |axum::Form(form): axum::Form<HashMap<String, String>>| async move {
                    let refused = form["token"] == "refused";
                    record.lock().unwrap().push(form);
                    if refused {
                        let body = serde_json::json!({"error": "unsupported_token_type"});
                        (StatusCode::BAD_REQUEST, axum::Json(body)).into_response()
                    } else {
                        // RFC 7009 §2.2: 200, and the body (here none) means nothing.
                        StatusCode::OK.into_response()
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/revoke", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let auth = ClientAuth::SecretPost {
            client_id: "c".into(),
            secret: SecretString::from("s"),
        };
        let client = TokenClient::new().unwrap();
        let token = SecretString::from("gho_x");
        client
            .revoke(&endpoint, &auth, &token, Some("oauth_sts"))
            .await
            .unwrap();
        let refused = client
            .revoke(&endpoint, &auth, &SecretString::from("refused"), None)
            .await;
        assert!(
            matches!(&refused, Err(TokenClientError::OAuth { status: 400, error, .. })
                if error.error.to_string() == "unsupported_token_type"),
            "{refused:?}"
        );
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0]["token"], "gho_x");
        assert_eq!(seen[0]["token_type_hint"], "oauth_sts");
        assert_eq!(seen[0]["client_id"], "c");
        assert!(!seen[1].contains_key("token_type_hint"));
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let followed = Arc::new(AtomicUsize::new(0));
        let counter = followed.clone();
        let app = Router::new()
            .route(
                "/token",
                post(|| async {
                    (
                        StatusCode::TEMPORARY_REDIRECT,
                        [(header::LOCATION, "/elsewhere")],
                    )
                }),
            )
            .route(
                "/elsewhere",
                post(move || {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        axum::Json(serde_json::json!({"access_token": "t", "token_type": "Bearer"}))
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let auth = ClientAuth::SecretPost {
            client_id: "c".into(),
            secret: SecretString::from("s"),
        };
        let result = TokenClient::new()
            .unwrap()
            .request(&endpoint, &auth, &[("grant_type", "client_credentials")])
            .await;
        assert!(
            matches!(result, Err(TokenClientError::Invalid { ref message, .. }) if message.contains("HTTP 307")),
            "{result:?}"
        );
        assert_eq!(followed.load(Ordering::SeqCst), 0);
    }
}
