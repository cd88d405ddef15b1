//! The OpenID Connect relying party (ARCHITECTURE §5.1; OIDC Core §3.1, RFC 7636, RP-Initiated
//! Logout 1.0) on the `openidconnect` crate: discovery from the issuer, authorization code with
//! PKCE S256, `state` and `nonce`, scopes `openid profile email`, and ID token verification
//! (signature via the discovered JWKS, `iss`, `aud`, `exp`, `nonce`). When a signature does not
//! verify, the metadata and keys are fetched again once, so a key rotation at the IdP needs no
//! restart. HTTP goes through a small reqwest adapter that never follows redirects and bounds
//! every body.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use openidconnect::core::{CoreClient, CoreResponseType};
use openidconnect::{
    AsyncHttpClient, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet, EndpointNotSet, EndpointSet,
    HttpRequest, HttpResponse, IssuerUrl, LogoutRequest, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, PostLogoutRedirectUrl, ProviderMetadataWithLogout, RedirectUrl,
    RequestTokenError, Scope, TokenResponse,
};
use protocol::UnixTime;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::error::WebError;
use super::session::{LOGIN_LIFETIME, PendingLogin};

/// Responses from the identity provider larger than this are refused.
const MAX_RESPONSE_BYTES: usize = protocol::discovery::MAX_DOCUMENT_BYTES;

/// The client registration at the identity provider (the sample's `OKTA_*` settings).
#[derive(Clone)]
pub struct OidcSettings {
    /// The issuer (`OKTA_DOMAIN` as a URL): discovery starts here.
    pub issuer: String,
    /// `OKTA_CLIENT_ID`.
    pub client_id: String,
    /// `OKTA_CLIENT_SECRET` (sent with `client_secret_basic`).
    pub client_secret: SecretString,
    /// `OKTA_REDIRECT_URI`: this app's `/callback` as registered at the IdP.
    pub redirect_uri: String,
    /// Where the IdP sends the browser after logout (registered at the IdP).
    pub post_logout_redirect_uri: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("post_logout_redirect_uri", &self.post_logout_redirect_uri)
            .finish_non_exhaustive()
    }
}

/// Why the relying party could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OidcSetupError {
    /// A setting is not usable.
    #[error("{name} {value:?} is not valid: {message}")]
    Setting {
        /// The setting's name.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// Discovery failed.
    #[error("discovering the identity provider {issuer} failed (is it running?): {message}")]
    Discovery {
        /// The issuer.
        issuer: String,
        /// What went wrong.
        message: String,
    },
}

/// The ID token's subject and a display name.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) subject: String,
    pub(crate) name: String,
}

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

struct Discovered {
    client: OidcClient,
    end_session: Option<EndSessionUrl>,
}

/// The relying party.
pub(crate) struct RelyingParty {
    settings: OidcSettings,
    http: OidcHttp,
    current: RwLock<Arc<Discovered>>,
}

impl RelyingParty {
    /// Discovers the issuer and builds the client.
    pub(crate) async fn discover(settings: OidcSettings) -> Result<Self, OidcSetupError> {
        let setting =
            |name: &'static str, value: &str, e: &dyn std::fmt::Display| OidcSetupError::Setting {
                name,
                value: value.to_owned(),
                message: e.to_string(),
            };
        RedirectUrl::new(settings.redirect_uri.clone())
            .map_err(|e| setting("OKTA_REDIRECT_URI", &settings.redirect_uri, &e))?;
        PostLogoutRedirectUrl::new(settings.post_logout_redirect_uri.clone()).map_err(|e| {
            setting(
                "post_logout_redirect_uri",
                &settings.post_logout_redirect_uri,
                &e,
            )
        })?;
        let http = OidcHttp(protocol::discovery::http_client());
        let discovered = discover(&settings, &http).await?;
        Ok(Self {
            settings,
            http,
            current: RwLock::new(Arc::new(discovered)),
        })
    }

    fn current(&self) -> Arc<Discovered> {
        match self.current.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The authorization URL and what the callback will need to finish the login.
    pub(crate) fn begin(&self, now: UnixTime) -> (Url, PendingLogin) {
        let current = self.current();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = current
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            exp: now + LOGIN_LIFETIME,
        };
        (url, pending)
    }

    /// The issuer this app logs in with.
    pub(crate) fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Redeems `code` and verifies the ID token against the pending login's nonce.
    pub(crate) async fn finish(
        &self,
        code: String,
        pending: PendingLogin,
    ) -> Result<Identity, WebError> {
        let current = self.current();
        let tokens = current
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(refusal) => WebError::Login(format!(
                    "the identity provider refused the code ({})",
                    refusal.error()
                )),
                RequestTokenError::Request(e) => {
                    tracing::warn!(error = %e, "token endpoint unreachable");
                    WebError::Unavailable("the identity provider")
                }
                RequestTokenError::Parse(e, _) => {
                    WebError::Login(format!("the token response is not valid: {e}"))
                }
                RequestTokenError::Other(e) => WebError::Login(e),
            })?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| WebError::Login("the identity provider sent no ID token".into()))?;
        let nonce = Nonce::new(pending.nonce);
        let identity = |client: &OidcClient| {
            id_token
                .claims(&client.id_token_verifier(), &nonce)
                .map(|claims| Identity {
                    subject: claims.subject().as_str().to_owned(),
                    name: claims
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_owned())
                        .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
                        .or_else(|| claims.email().map(|e| e.as_str().to_owned()))
                        .unwrap_or_else(|| claims.subject().as_str().to_owned()),
                })
        };
        let refused = |e: ClaimsVerificationError| {
            tracing::info!(error = %e, "ID token refused");
            WebError::Login(format!("the ID token is not valid: {e}"))
        };
        match identity(&current.client) {
            Ok(identity) => Ok(identity),
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                // Perhaps the IdP rotated its keys: fetch them again, once.
                let fresh = Arc::new(discover(&self.settings, &self.http).await.map_err(|e| {
                    tracing::warn!(error = %e, "rediscovery failed");
                    WebError::Unavailable("the identity provider")
                })?);
                if let Ok(mut slot) = self.current.write() {
                    *slot = fresh.clone();
                }
                identity(&fresh.client).map_err(refused)
            }
            Err(e) => Err(refused(e)),
        }
    }

    /// The IdP's end-session URL for RP-initiated logout, if it has one.
    pub(crate) fn logout_url(&self) -> Option<Url> {
        let end_session = self.current().end_session.clone()?;
        let mut request = LogoutRequest::from(end_session)
            .set_client_id(ClientId::new(self.settings.client_id.clone()));
        if let Ok(uri) = PostLogoutRedirectUrl::new(self.settings.post_logout_redirect_uri.clone())
        {
            request = request.set_post_logout_redirect_uri(uri);
        }
        Some(request.http_get_url())
    }

    /// The origin of the end-session endpoint (the logout form is redirected there).
    pub(crate) fn end_session_origin(&self) -> Option<String> {
        self.current()
            .end_session
            .as_ref()
            .map(|e| e.url().origin().ascii_serialization())
    }
}

async fn discover(settings: &OidcSettings, http: &OidcHttp) -> Result<Discovered, OidcSetupError> {
    let failed = |message: String| OidcSetupError::Discovery {
        issuer: settings.issuer.clone(),
        message,
    };
    let issuer = IssuerUrl::new(settings.issuer.clone()).map_err(|e| failed(e.to_string()))?;
    let metadata = ProviderMetadataWithLogout::discover_async(issuer, http)
        .await
        .map_err(|e| failed(error_chain(&e)))?;
    let end_session = metadata.additional_metadata().end_session_endpoint.clone();
    let token_url = metadata
        .token_endpoint()
        .cloned()
        .ok_or_else(|| failed("the metadata has no token_endpoint".into()))?;
    let redirect = RedirectUrl::new(settings.redirect_uri.clone())
        .map_err(|e| failed(format!("OKTA_REDIRECT_URI: {e}")))?;
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(settings.client_id.clone()),
        Some(ClientSecret::new(
            settings.client_secret.expose_secret().to_owned(),
        )),
    )
    .set_redirect_uri(redirect)
    .set_token_uri(token_url);
    Ok(Discovered {
        client,
        end_session,
    })
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Why a request to the identity provider failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Transport failure.
    #[error(transparent)]
    Request(#[from] reqwest::Error),
    /// An oversized response.
    #[error("the response is larger than {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// The response could not be passed on.
    #[error("invalid response: {0}")]
    Invalid(String),
}

/// `openidconnect`'s HTTP client over reqwest: no redirects (an OIDC relying party must not
/// follow them from the token endpoint), bounded time and body size.
#[derive(Clone)]
pub(crate) struct OidcHttp(reqwest::Client);

impl<'c> AsyncHttpClient<'c> for OidcHttp {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut response = self.0.execute(request.try_into()?).await?;
            let mut builder = openidconnect::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                builder = builder.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            builder
                .body(body)
                .map_err(|e| HttpError::Invalid(e.to_string()))
        })
    }
}
