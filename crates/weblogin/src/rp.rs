//! The OpenID Connect relying party (ARCHITECTURE §5.1; OIDC Core §3.1, RFC 7636, RP-Initiated
//! Logout 1.0) on the `openidconnect` crate: discovery from the issuer, authorization code with
//! PKCE S256, `state` and `nonce`, scopes `openid profile email`, and ID token verification
//! (signature via the discovered JWKS, `iss`, `aud`, `exp`, `nonce`). The ID token's `alg` must
//! be one the discovery metadata lists in `id_token_signing_alg_values_supported` (RS256, ES256,
//! …), and asymmetric: `none` and HMAC are refused even when listed. When a signature does not
//! verify, the metadata and keys are fetched again once, so a key rotation at the IdP needs no
//! restart. An IdP whose discovery metadata advertises RFC 9207's
//! `authorization_response_iss_parameter_supported` must send `iss` in its authorization
//! responses (checked in [`crate::CallbackParams::code_for`]). HTTP goes through a small reqwest adapter that never follows redirects and bounds
//! every body. Refresh (OIDC Core §12) verifies the new ID token the same way, without a nonce.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use std::str::FromStr;

use openidconnect::JwsSigningAlgorithm;
use openidconnect::core::{
    CoreAuthDisplay, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGrantType, CoreIdToken, CoreJsonWebKey, CoreJsonWebKeyType,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreTokenResponse,
};
use openidconnect::{
    AdditionalProviderMetadata, AsyncHttpClient, AuthenticationFlow, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndSessionUrl, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, HttpRequest, HttpResponse, IssuerUrl, LogoutProviderMetadata,
    LogoutRequest, Nonce, NonceVerifier, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    PostLogoutRedirectUrl, ProviderMetadata, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardErrorResponse, TokenResponse,
};
use protocol::UnixTime;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{LOGIN_LIFETIME, PendingLogin};

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
pub struct Identity {
    /// `sub`.
    pub subject: String,
    /// `name`, else `preferred_username`, else `email`, else `sub`.
    pub name: String,
    /// `email`, when present.
    pub email: Option<String>,
}

/// What a login or a refresh yields (no `Debug`: it holds tokens).
pub struct LoginTokens {
    /// Who logged in.
    pub identity: Identity,
    /// The verified ID token (for Cross-App Access and `id_token_hint`).
    pub id_token: SecretString,
    /// The ID token's claims, for display.
    pub claims: serde_json::Value,
    /// The ID token's `exp`.
    pub id_token_expires_at: UnixTime,
    /// A refresh token, when the IdP issued one (`offline_access`).
    pub refresh_token: Option<SecretString>,
}

/// Why a login or refresh failed. The text is for the person; no token is in it.
#[derive(Debug, thiserror::Error)]
pub enum RpError {
    /// The IdP refused, or its answer is not acceptable.
    #[error("{0}")]
    Refused(String),
    /// The IdP could not be reached.
    #[error("the identity provider is unavailable")]
    Unavailable,
}

type OidcClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointMaybeSet,
>;

/// RFC 9207 §3: whether the IdP puts `iss` in every authorization response.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
struct IssParameterMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_response_iss_parameter_supported: Option<bool>,
}

impl AdditionalProviderMetadata for IssParameterMetadata {}

/// Discovery metadata with RP-Initiated Logout's and RFC 9207's fields.
type Metadata = ProviderMetadata<
    LogoutProviderMetadata<IssParameterMetadata>,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

struct Discovered {
    client: OidcClient,
    end_session: Option<EndSessionUrl>,
    /// The IdP advertises `authorization_response_iss_parameter_supported: true`, so a
    /// response without `iss` is refused (RFC 9207 §2.4).
    requires_iss: bool,
    /// The algorithms an ID token may be signed with: the asymmetric ones the IdP lists.
    id_token_algs: Vec<CoreJwsSigningAlgorithm>,
}

/// The relying party.
pub struct RelyingParty {
    settings: OidcSettings,
    http: OidcHttp,
    current: RwLock<Arc<Discovered>>,
}

impl RelyingParty {
    /// Discovers the issuer and builds the client.
    pub async fn discover(settings: OidcSettings) -> Result<Self, OidcSetupError> {
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
        let http = OidcHttp(protocol::discovery::http_client().map_err(|e| {
            OidcSetupError::Discovery {
                issuer: settings.issuer.clone(),
                message: format!("building the HTTP client: {e}"),
            }
        })?);
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

    /// The authorization URL (scopes `openid profile email` plus `extra_scopes`) and what the
    /// callback will need to finish the login.
    pub fn begin(&self, now: UnixTime, extra_scopes: &[&str]) -> (Url, PendingLogin) {
        let current = self.current();
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = current
            .client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()));
        for scope in extra_scopes {
            request = request.add_scope(Scope::new((*scope).to_owned()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let pending = PendingLogin {
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            verifier: verifier.secret().clone(),
            exp: now + LOGIN_LIFETIME,
            requires_iss: current.requires_iss,
        };
        (url, pending)
    }

    /// The IdP's token endpoint, as discovered (where the agent exchanges ID tokens).
    pub fn token_endpoint(&self) -> String {
        self.current().client.token_uri().url().to_string()
    }

    /// The issuer this app logs in with.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Redeems `code` and verifies the ID token against the pending login's nonce.
    pub async fn finish(
        &self,
        code: String,
        pending: PendingLogin,
    ) -> Result<LoginTokens, RpError> {
        let current = self.current();
        let tokens = current
            .client
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(e, "code"))?;
        let nonce = Nonce::new(pending.nonce);
        self.verify(current, &tokens, &nonce).await
    }

    /// Redeems a refresh token for a fresh ID token (verified like a login's, except that a
    /// refreshed ID token carries no nonce). A rotated refresh token replaces the old one.
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<LoginTokens, RpError> {
        let current = self.current();
        let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
        let tokens = current
            .client
            .exchange_refresh_token(&token)
            .request_async(&self.http)
            .await
            .map_err(|e| token_error(e, "refresh token"))?;
        let mut refreshed = self.verify(current, &tokens, AnyNonce).await?;
        if refreshed.refresh_token.is_none() {
            refreshed.refresh_token = Some(refresh_token.clone());
        }
        Ok(refreshed)
    }

    async fn verify(
        &self,
        current: Arc<Discovered>,
        tokens: &CoreTokenResponse,
        nonce: impl NonceVerifier + Copy,
    ) -> Result<LoginTokens, RpError> {
        let id_token = tokens
            .id_token()
            .ok_or_else(|| RpError::Refused("the identity provider sent no ID token".into()))?;
        let login = |discovered: &Discovered| {
            let verifier = discovered
                .client
                .id_token_verifier()
                .set_allowed_algs(discovered.id_token_algs.iter().cloned());
            id_token.claims(&verifier, nonce).map(|claims| LoginTokens {
                identity: Identity {
                    subject: claims.subject().as_str().to_owned(),
                    name: claims
                        .name()
                        .and_then(|n| n.get(None))
                        .map(|n| n.as_str().to_owned())
                        .or_else(|| claims.preferred_username().map(|u| u.as_str().to_owned()))
                        .or_else(|| claims.email().map(|e| e.as_str().to_owned()))
                        .unwrap_or_else(|| claims.subject().as_str().to_owned()),
                    email: claims.email().map(|e| e.as_str().to_owned()),
                },
                id_token: SecretString::from(id_token.to_string()),
                claims: protocol::verify::decode_unverified(&id_token.to_string())
                    .unwrap_or_default(),
                id_token_expires_at: claims.expiration().timestamp(),
                refresh_token: tokens
                    .refresh_token()
                    .map(|t| SecretString::from(t.secret().clone())),
            })
        };
        let refused = |e: ClaimsVerificationError| {
            tracing::info!(error = %e, "ID token refused");
            RpError::Refused(format!("the ID token is not valid: {e}"))
        };
        match login(&current) {
            Ok(tokens) => Ok(tokens),
            Err(ClaimsVerificationError::SignatureVerification(_)) => {
                // Perhaps the IdP rotated its keys: fetch them again, once.
                let fresh = Arc::new(discover(&self.settings, &self.http).await.map_err(|e| {
                    tracing::warn!(error = %e, "rediscovery failed");
                    RpError::Unavailable
                })?);
                if let Ok(mut slot) = self.current.write() {
                    *slot = fresh.clone();
                }
                login(&fresh).map_err(refused)
            }
            Err(e) => Err(refused(e)),
        }
    }

    /// The IdP's end-session URL for RP-initiated logout, if it has one, with `id_token_hint`
    /// when the ID token is at hand.
    pub fn logout_url(&self, id_token_hint: Option<&SecretString>) -> Option<Url> {
        let end_session = self.current().end_session.clone()?;
        let mut request = LogoutRequest::from(end_session)
            .set_client_id(ClientId::new(self.settings.client_id.clone()));
        if let Some(hint) =
            id_token_hint.and_then(|t| CoreIdToken::from_str(t.expose_secret()).ok())
        {
            request = request.set_id_token_hint(&hint);
        }
        if let Ok(uri) = PostLogoutRedirectUrl::new(self.settings.post_logout_redirect_uri.clone())
        {
            request = request.set_post_logout_redirect_uri(uri);
        }
        Some(request.http_get_url())
    }

    /// The origin of the end-session endpoint (the logout form is redirected there).
    pub fn end_session_origin(&self) -> Option<String> {
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
    let metadata = Metadata::discover_async(issuer, http)
        .await
        .map_err(|e| failed(error_chain(&e)))?;
    let end_session = metadata.additional_metadata().end_session_endpoint.clone();
    let requires_iss = metadata
        .additional_metadata()
        .additional_metadata
        .authorization_response_iss_parameter_supported
        == Some(true);
    let id_token_algs = asymmetric(metadata.id_token_signing_alg_values_supported());
    if id_token_algs.is_empty() {
        return Err(failed(
            "the metadata's id_token_signing_alg_values_supported lists no asymmetric algorithm \
             (such as RS256 or ES256)"
                .into(),
        ));
    }
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
        requires_iss,
        id_token_algs,
    })
}

/// The asymmetric algorithms of `listed`: never `none`, and never an HMAC (whose key would be our
/// client secret, which the openidconnect crate accepts for a listed HS* algorithm).
fn asymmetric(listed: &[CoreJwsSigningAlgorithm]) -> Vec<CoreJwsSigningAlgorithm> {
    listed
        .iter()
        .filter(|alg| matches!(alg.key_type(), Some(kty) if kty != CoreJsonWebKeyType::Symmetric))
        .cloned()
        .collect()
}

/// Maps a token endpoint failure; `what` names the grant for the person.
fn token_error(
    e: RequestTokenError<HttpError, StandardErrorResponse<CoreErrorResponseType>>,
    what: &str,
) -> RpError {
    match e {
        RequestTokenError::ServerResponse(refusal) => RpError::Refused(format!(
            "the identity provider refused the {what} ({})",
            refusal.error()
        )),
        RequestTokenError::Request(e) => {
            tracing::warn!(error = %e, "token endpoint unreachable");
            RpError::Unavailable
        }
        RequestTokenError::Parse(e, _) => {
            RpError::Refused(format!("the token response is not valid: {e}"))
        }
        RequestTokenError::Other(e) => RpError::Refused(e),
    }
}

/// A refreshed ID token has no nonce to match (OIDC Core §12.2).
#[derive(Clone, Copy)]
struct AnyNonce;

impl NonceVerifier for AnyNonce {
    fn verify(self, _nonce: Option<&Nonce>) -> Result<(), String> {
        Ok(())
    }
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
struct OidcHttp(reqwest::Client);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_asymmetric_algorithms_are_allowed_for_id_tokens() {
        let listed: Vec<CoreJwsSigningAlgorithm> =
            serde_json::from_str(r#"["HS256", "none", "ES256", "RS256", "HS512", "EdDSA"]"#)
                .unwrap_or_default();
        assert_eq!(listed.len(), 6);
        assert_eq!(
            asymmetric(&listed),
            [
                CoreJwsSigningAlgorithm::EcdsaP256Sha256,
                CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                CoreJwsSigningAlgorithm::EdDsa,
            ]
        );
        assert!(asymmetric(&listed[..2]).is_empty());
    }
}
