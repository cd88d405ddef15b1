//! Interoperability with third-party clients over real HTTP: the `openidconnect` crate as a relying
//! party (discovery, auth code + PKCE, ID token and userinfo), and rmcp's enterprise-managed
//! authorization client running both ID-JAG steps (RFC 8693 exchange at the org AS, RFC 7523
//! redemption at todo0) with `private_key_jwt` client assertions signed by our protocol crate.

use std::sync::Arc;

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use protocol::assertion::ClientAssertionSigner;
use protocol::claims::AccessTokenClaims;
use protocol::oauth::ErrorCode;
use protocol::token_client::{TokenClient, TokenClientError};
use protocol::verify::{Expectations, TypeRule};
use rmcp::transport::auth::default_oauth_http_client;
use rmcp::transport::auth::enterprise::{
    EmaAuthorizationServer, EmaClientAssertion, EmaClientAssertionProvider,
    EmaClientAuthentication, EmaError, EmaExchangeRequest, EmaExchangeStage,
};
use secrecy::{ExposeSecret, SecretString};
use testkit::{Browser, IdpHandle};

use super::flow::{RESOURCE, remote_verifier};

const REDIRECT: &str = "http://localhost:3000/callback";

/// openidconnect's async HTTP client over our reqwest, never following redirects (OIDC RPs must
/// not follow redirects from the token endpoint).
async fn send(
    http: reqwest::Client,
    request: openidconnect::HttpRequest,
) -> Result<openidconnect::HttpResponse, reqwest::Error> {
    let response = http.execute(request.try_into()?).await?;
    let mut builder = openidconnect::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder.body(body).unwrap())
}

#[tokio::test]
async fn openidconnect_relying_party_logs_in() {
    let idp = IdpHandle::start().await.unwrap();
    let reqwest = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let http = |request| send(reqwest.clone(), request);

    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(idp.issuer.clone()).unwrap(), &http)
            .await
            .unwrap();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("agent0".into()),
        Some(ClientSecret::new(
            idp.client_secret("agent0").expose_secret().to_owned(),
        )),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("openid".into()))
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let code = Browser::new()
        .authorize(url.as_str(), Some(("alice", &idp.password("alice"))))
        .await
        .unwrap();
    assert_eq!(code.state.as_deref(), Some(csrf.secret().as_str()));
    assert_eq!(code.iss.as_deref(), Some(idp.issuer.as_str()));

    let tokens = client
        .exchange_code(AuthorizationCode::new(code.code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .unwrap();
    let id_token = tokens.id_token().expect("openid scope yields an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .unwrap();
    assert_eq!(claims.issuer().as_str(), idp.issuer);
    assert_eq!(
        claims.preferred_username().map(|u| u.as_str()),
        Some("alice")
    );
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    let name = claims.name().and_then(|n| n.get(None)).map(|n| n.as_str());
    assert_eq!(name, Some("Alice Example"));

    let userinfo: openidconnect::core::CoreUserInfoClaims = client
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .unwrap();
    assert_eq!(
        userinfo.email().map(|e| e.as_str()),
        Some("alice@example.com")
    );
    idp.stop().await.unwrap();
}

/// Signs a fresh `private_key_jwt` assertion for each token request, `aud` = its token endpoint.
struct AgentAssertions(ClientAssertionSigner);

#[async_trait::async_trait]
impl EmaClientAssertionProvider for AgentAssertions {
    async fn create_assertion(
        &self,
        server: &EmaAuthorizationServer,
    ) -> Result<EmaClientAssertion, Box<dyn std::error::Error + Send + Sync>> {
        let jwt = self.0.sign(&server.token_endpoint)?;
        Ok(EmaClientAssertion::new(jwt.expose_secret().to_owned()))
    }
}

/// rmcp's view of the two servers, both with the agent identity and `private_key_jwt`.
fn ema_servers(idp: &IdpHandle) -> (EmaAuthorizationServer, EmaAuthorizationServer) {
    let signer =
        ClientAssertionSigner::new("agent0-agent", idp.agent_key(), protocol::clock::system());
    let auth = || EmaClientAuthentication::JwtAssertion(Arc::new(AgentAssertions(signer.clone())));
    let org = EmaAuthorizationServer::new(&idp.issuer, idp.org_token_endpoint(), "agent0-agent")
        .with_client_authentication(auth());
    let todo0 = EmaAuthorizationServer::new(
        idp.todo0_issuer(),
        idp.todo0_token_endpoint(),
        "agent0-agent",
    )
    .with_client_authentication(auth());
    (org, todo0)
}

async fn alice_id_token(idp: &IdpHandle) -> SecretString {
    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    login.id_token.expect("openid scope yields an ID token")
}

#[tokio::test]
async fn rmcp_enterprise_managed_client_runs_both_id_jag_steps() {
    let idp = IdpHandle::start().await.unwrap();
    let id_token = alice_id_token(&idp).await;
    let http = default_oauth_http_client().unwrap();

    let (org, todo0) = ema_servers(&idp);
    let token =
        EmaExchangeRequest::new_with_id_token(org, todo0, RESOURCE, id_token.expose_secret())
            .with_scopes(["mcp:connect", "mcp:tools:read"])
            .exchange(&http, &http)
            .await
            .unwrap();
    let mut scopes: Vec<&str> = token.scopes.iter().map(String::as_str).collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["mcp:connect", "mcp:tools:read"]);
    assert_eq!(token.expires_in.map(|d| d.as_secs()), Some(3600));

    let claims = remote_verifier(&idp.todo0_issuer())
        .await
        .verify::<AccessTokenClaims>(
            token.access_token.secret(),
            &Expectations::new(idp.todo0_issuer(), RESOURCE, TypeRule::ACCESS_TOKEN),
        )
        .await
        .unwrap()
        .claims;
    assert!(claims.aud.is_only(RESOURCE));
    assert_eq!(claims.client(), Some("agent0-agent"));
    assert_eq!(claims.act.map(|a| a.sub).as_deref(), Some("agent0-agent"));

    // A scope todo0 does not define: RFC 6749 §5.2 `invalid_scope` (HTTP 400) from the org AS,
    // which rmcp must surface as a rejection at the IdP stage.
    let (org, todo0) = ema_servers(&idp);
    let refused =
        EmaExchangeRequest::new_with_id_token(org, todo0, RESOURCE, id_token.expose_secret())
            .with_scopes(["mcp:unknown"])
            .exchange(&http, &http)
            .await
            .unwrap_err();
    assert_eq!(
        refused,
        EmaError::OAuthRejected {
            stage: EmaExchangeStage::IdentityProvider,
            status: 400,
            code: "invalid_scope",
        }
    );
    idp.stop().await.unwrap();
}

#[tokio::test]
async fn rmcp_id_jag_is_redeemed_only_once() {
    let idp = IdpHandle::start().await.unwrap();
    let id_token = alice_id_token(&idp).await;
    let http = default_oauth_http_client().unwrap();

    let (org, todo0) = ema_servers(&idp);
    let jag = EmaExchangeRequest::new_with_id_token(org, todo0, RESOURCE, id_token.expose_secret())
        .with_scopes(["mcp:connect"])
        .exchange_id_jag(&http)
        .await
        .unwrap();
    let scopes: Vec<&str> = jag.scopes().iter().map(String::as_str).collect();
    assert_eq!(scopes, ["mcp:connect"]);
    let assertion = SecretString::from(jag.assertion().secret().clone());

    let client = TokenClient::new().unwrap();
    let endpoint = idp.todo0_token_endpoint();
    let first = client
        .redeem_id_jag(&endpoint, &idp.agent_auth(), &assertion)
        .await
        .unwrap();
    assert_eq!(first.scope.as_deref(), Some("mcp:connect"));
    // Replaying the same ID-JAG (same `jti`) is refused: RFC 7523 §3 / ID-JAG §4.4 `invalid_grant`.
    match client
        .redeem_id_jag(&endpoint, &idp.agent_auth(), &assertion)
        .await
    {
        Err(TokenClientError::OAuth { status, error, .. }) => {
            assert_eq!(status, 400);
            assert_eq!(error.error, ErrorCode::InvalidGrant);
        }
        other => panic!("a replayed ID-JAG must be invalid_grant, got {other:?}"),
    }
    idp.stop().await.unwrap();
}
