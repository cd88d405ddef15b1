//! The whole Cross-App Access flow through real HTTP: alice logs in through the login form with
//! auth code + PKCE, the agent exchanges her ID token for an ID-JAG with private_key_jwt, redeems
//! it at the todo0 authorization server, and the access token verifies against the AS's JWKS
//! fetched over HTTP by the protocol crate's verifier.

use std::sync::Arc;
use std::time::Duration;

use protocol::claims::{AccessTokenClaims, IdJagClaims, IdTokenClaims};
use protocol::oauth::{ErrorCode, TokenType};
use protocol::token_client::{
    CrossAppAccess, CrossAppAccessStep, IdJagRequest, TokenClient, TokenClientError,
};
use protocol::verify::{Expectations, JwtVerifier, RemoteJwks, TypeRule};
use secrecy::ExposeSecret;
use testkit::{Browser, IdpHandle};

pub const RESOURCE: &str = "http://localhost:5002/mcp";

/// Discovers an issuer and builds a verifier over its JWKS, as a resource server would.
pub async fn remote_verifier(issuer: &str) -> JwtVerifier {
    let http = protocol::discovery::http_client().unwrap();
    let jwks = RemoteJwks::discover(http, issuer, Duration::from_secs(30))
        .await
        .unwrap();
    JwtVerifier::new(Arc::new(jwks), protocol::clock::system())
}

#[tokio::test]
async fn alice_reaches_todo0_through_the_id_jag_flow() {
    let idp = IdpHandle::start().await.unwrap();
    let browser = Browser::new();

    // 1. Login: auth code + PKCE through the real form; the RP verifies its ID token.
    let login = idp.login(&browser, "alice").await.unwrap();
    let id_token = login.id_token.expect("openid scope yields an ID token");
    assert!(
        login.refresh_token.is_some(),
        "offline_access yields a refresh token"
    );
    let org = remote_verifier(&idp.issuer).await;
    let id_claims = org
        .verify::<IdTokenClaims>(
            id_token.expose_secret(),
            &Expectations::new(&idp.issuer, "agent0", TypeRule::ANY),
        )
        .await
        .unwrap()
        .claims;
    assert_eq!(id_claims.nonce.as_deref(), Some("n0nce"));
    assert_eq!(id_claims.preferred_username.as_deref(), Some("alice"));
    assert_eq!(id_claims.email.as_deref(), Some("alice@example.com"));
    assert!(id_claims.sid.is_some() && id_claims.auth_time.is_some());

    // 2. Token exchange at the org AS, authenticated as the agent with private_key_jwt.
    let jag = idp
        .id_jag(
            &id_token,
            TokenType::IdToken,
            RESOURCE,
            "mcp:connect mcp:tools:read",
        )
        .await
        .unwrap();
    assert_eq!(jag.token_type, "N_A");
    assert_eq!(jag.expires_in, Some(300));
    assert_eq!(jag.scope.as_deref(), Some("mcp:connect mcp:tools:read"));
    let jag_claims = org
        .verify::<IdJagClaims>(
            jag.access_token.expose_secret(),
            &Expectations::new(&idp.issuer, idp.todo0_issuer(), TypeRule::ID_JAG),
        )
        .await
        .unwrap()
        .claims;
    assert_eq!(jag_claims.sub, id_claims.sub);
    assert_eq!(jag_claims.client_id, "agent0-agent");
    assert_eq!(jag_claims.resource.as_deref(), Some(RESOURCE));
    assert_eq!(jag_claims.email.as_deref(), Some("alice@example.com"));

    // 3. JWT bearer redemption at the todo0 AS.
    let access = idp.redeem(&jag.access_token).await.unwrap();
    assert_eq!(access.token_type, "Bearer");
    assert!(
        access.refresh_token.is_none(),
        "no refresh token for an ID-JAG grant"
    );
    assert_eq!(access.scope.as_deref(), Some("mcp:connect mcp:tools:read"));

    // 4. The access token verifies against the todo0 AS's JWKS, as the MCP server will do it.
    let todo0 = remote_verifier(&idp.todo0_issuer()).await;
    let claims = todo0
        .verify::<AccessTokenClaims>(
            access.access_token.expose_secret(),
            &Expectations::new(idp.todo0_issuer(), RESOURCE, TypeRule::ACCESS_TOKEN),
        )
        .await
        .unwrap()
        .claims;
    assert_eq!(claims.user_id(), id_claims.sub);
    assert_eq!(claims.client(), Some("agent0-agent"));
    assert_eq!(claims.act.map(|a| a.sub).as_deref(), Some("agent0-agent"));
    assert_eq!(
        claims.scp,
        Some(vec!["mcp:connect".to_owned(), "mcp:tools:read".to_owned()])
    );
    assert_eq!(claims.scope.as_deref(), Some("mcp:connect mcp:tools:read"));
    idp.stop().await.unwrap();
}

#[tokio::test]
async fn granted_scope_is_requested_intersected_with_policy() {
    let idp = IdpHandle::start().await.unwrap();
    let login = idp.login(&Browser::new(), "bob").await.unwrap();
    // Step-up: the union of the granted and the challenged scopes.
    let access = idp
        .cross_app_access(
            login.id_token.as_ref().unwrap(),
            RESOURCE,
            "mcp:connect mcp:tools:read mcp:tools:delete",
        )
        .await
        .unwrap()
        .access;
    assert_eq!(
        access.scope.as_deref(),
        Some("mcp:connect mcp:tools:delete mcp:tools:read")
    );
}

/// `TokenClient::exchange_for_access_token`, the one home of both steps that agent0, the CLI and
/// testkit call: the access token and the ID-JAG's claims on success, and a failure names the
/// step that failed with the server's OAuth error code.
#[tokio::test]
async fn one_call_runs_both_steps_and_names_the_step_that_failed() {
    let idp = IdpHandle::start().await.unwrap();
    let id_token = idp
        .login(&Browser::new(), "alice")
        .await
        .unwrap()
        .id_token
        .unwrap();
    let grant = idp
        .cross_app_access(&id_token, RESOURCE, "mcp:connect mcp:tools:read")
        .await
        .unwrap();
    let claims = &grant.id_jag_claims;
    assert_eq!(claims.iss, idp.issuer);
    assert_eq!(claims.sub, idp0::config::user_id_for("alice"));
    assert_eq!(claims.client_id, "agent0-agent");
    assert!(claims.aud.is_only(&idp.todo0_issuer()));
    assert_eq!(claims.resource.as_deref(), Some(RESOURCE));
    assert_eq!(claims.scope.as_deref(), Some("mcp:connect mcp:tools:read"));
    assert_eq!(grant.id_jag.token_type, "N_A");
    assert_eq!(grant.access.token_type, "Bearer");
    assert_eq!(
        grant.access.scope.as_deref(),
        Some("mcp:connect mcp:tools:read")
    );
    let access = remote_verifier(&idp.todo0_issuer())
        .await
        .verify::<AccessTokenClaims>(
            grant.access.access_token.expose_secret(),
            &Expectations::new(idp.todo0_issuer(), RESOURCE, TypeRule::ACCESS_TOKEN),
        )
        .await
        .unwrap()
        .claims;
    assert_eq!(access.user_id(), claims.sub);

    // Step 1 refused: the IdP does not take the subject token.
    let refused = idp
        .cross_app_access(&"not-a-jwt".to_owned().into(), RESOURCE, "mcp:connect")
        .await
        .unwrap_err();
    assert_eq!(refused.step, CrossAppAccessStep::IdJag);
    assert_eq!(refused.error_code(), Some(&ErrorCode::InvalidGrant));

    // Step 2 refused: the ID-JAG is good but redeemed where the jwt-bearer grant is not offered.
    let client = TokenClient::new().unwrap();
    let (org_token, audience) = (idp.org_token_endpoint(), idp.todo0_issuer());
    let at = |resource_token_endpoint| CrossAppAccess {
        org_token_endpoint: &org_token,
        resource_token_endpoint,
        request: IdJagRequest {
            subject_token: &id_token,
            subject_token_type: TokenType::IdToken,
            audience: &audience,
            resource: Some(RESOURCE),
            scope: Some("mcp:connect"),
        },
    };
    let refused = client
        .exchange_for_access_token(&idp.agent_auth(), &at(&org_token))
        .await
        .unwrap_err();
    assert_eq!(refused.step, CrossAppAccessStep::AccessToken, "{refused:?}");
    assert_eq!(refused.error_code(), Some(&ErrorCode::UnsupportedGrantType));
    assert!(refused.to_string().contains("step 2"), "{refused}");

    // Step 2 unreachable: a transport failure, still step 2.
    let unreachable = client
        .exchange_for_access_token(&idp.agent_auth(), &at("http://127.0.0.1:9/token"))
        .await
        .unwrap_err();
    assert_eq!(unreachable.step, CrossAppAccessStep::AccessToken);
    assert!(
        matches!(unreachable.source, TokenClientError::Http { .. }),
        "{unreachable:?}"
    );
    idp.stop().await.unwrap();
}

#[tokio::test]
async fn a_second_app_logs_in_without_a_password() {
    let idp = IdpHandle::start().await.unwrap();
    let browser = Browser::new();
    idp.login(&browser, "alice").await.unwrap();
    let pkce = testkit::Pkce::new();
    let url = idp.authorize_url(
        "todo0",
        "http://localhost:5001/callback",
        "openid profile",
        &pkce,
        "s2",
        "n2",
    );
    // No credentials: the SSO cookie must be enough.
    let code = browser.authorize(&url, None).await.unwrap();
    assert_eq!(code.iss.as_deref(), Some(idp.issuer.as_str()));
    let tokens = TokenClient::new()
        .unwrap()
        .request(
            &idp.org_token_endpoint(),
            &idp.web_client_auth("todo0"),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code.code),
                ("redirect_uri", "http://localhost:5001/callback"),
                ("code_verifier", pkce.verifier.expose_secret()),
            ],
        )
        .await
        .unwrap();
    let claims =
        protocol::verify::decode_unverified(tokens.id_token.unwrap().expose_secret()).unwrap();
    assert_eq!(claims["aud"], "todo0");
    assert_eq!(claims["preferred_username"], "alice");
}

#[tokio::test]
async fn a_refresh_token_can_be_the_subject_token() {
    let idp = IdpHandle::start().await.unwrap();
    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let jag = idp
        .id_jag(
            login.refresh_token.as_ref().unwrap(),
            TokenType::RefreshToken,
            RESOURCE,
            "mcp:connect",
        )
        .await
        .unwrap();
    let claims = protocol::verify::decode_unverified(jag.access_token.expose_secret()).unwrap();
    assert_eq!(claims["sub"], idp0::config::user_id_for("alice"));
    assert_eq!(claims["scope"], "mcp:connect");
}

/// `secure-agent login`'s client: a native app on an ephemeral loopback port (RFC 8252 §7.3) gets
/// a code on any port, redeems it as a public client with the same redirect URI, and the agent
/// may exchange its ID token; another host or path is refused as a page, never redirected to,
/// and a web client registered on one port gets no such leniency.
#[tokio::test]
async fn a_native_client_redirects_to_any_loopback_port_and_only_there() {
    let idp = IdpHandle::start().await.unwrap();
    let cli = devstack::CLI_CLIENT;
    let scope = "openid profile email offline_access";
    for port in [1024_u16, 49_153, 65_535] {
        let redirect = format!("http://127.0.0.1:{port}/callback");
        let pkce = testkit::Pkce::new();
        let url = idp.authorize_url(cli, &redirect, scope, &pkce, "s", "n");
        let code = Browser::new()
            .authorize(&url, Some(("alice", &idp.password("alice"))))
            .await
            .unwrap();
        let tokens = TokenClient::new()
            .unwrap()
            .request(
                &idp.org_token_endpoint(),
                &protocol::token_client::ClientAuth::None {
                    client_id: cli.into(),
                },
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code.code),
                    ("redirect_uri", &redirect),
                    ("code_verifier", pkce.verifier.expose_secret()),
                ],
            )
            .await
            .unwrap();
        let id_token = tokens.id_token.unwrap();
        let claims = protocol::verify::decode_unverified(id_token.expose_secret()).unwrap();
        assert_eq!(claims["aud"], cli);
        // The agent is linked to the CLI: its ID token is exchangeable for an ID-JAG.
        idp.id_jag(&id_token, TokenType::IdToken, RESOURCE, "mcp:connect")
            .await
            .unwrap();
    }

    // agent0 is a web client registered at http://localhost:3000/callback: exact match only.
    for (client, redirect) in [
        (cli, "http://127.0.0.1:8080/other"),
        (cli, "http://localhost:8080/callback"),
        (cli, "http://evil.example:8080/callback"),
        (cli, "http://127.0.0.1.evil.example:8080/callback"),
        ("agent0", "http://localhost:3001/callback"),
        ("agent0", "http://127.0.0.1:3000/callback"),
    ] {
        let pkce = testkit::Pkce::new();
        let url = idp.authorize_url(client, redirect, scope, &pkce, "s", "n");
        let response = Browser::new().http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400, "{client} {redirect}");
        assert!(response.headers().get("location").is_none());
    }
}

/// The `alg` in a compact JWS's header.
fn header_alg(token: &secrecy::SecretString) -> String {
    jsonwebtoken::decode_header(token.expose_secret())
        .map(|h| format!("{:?}", h.alg))
        .unwrap()
}

/// An authorization server whose `signing_alg` changes to ES256 signs with a new P-256 key from
/// its next start; the RSA key that signed before stays in its JWKS as `previous`, so the tokens
/// it issued verify until they expire; discovery names the algorithm now used; and the whole
/// Cross-App Access flow runs on ES256 tokens verified through the JWKS over HTTP.
#[tokio::test]
async fn an_authorization_server_switched_to_es256_signs_with_p256_and_keeps_its_rsa_key() {
    let dir = tempfile::tempdir().unwrap();
    let idp = IdpHandle::start_in(dir.path(), protocol::clock::system())
        .await
        .unwrap();
    let old_issuer = idp.issuer.clone();
    let before = idp.login(&Browser::new(), "alice").await.unwrap();
    let rs256_id_token = before.id_token.unwrap();
    assert_eq!(header_alg(&rs256_id_token), "RS256");
    idp.stop().await.unwrap();

    testkit::set_signing_alg(dir.path(), None, "ES256").unwrap();
    let idp = IdpHandle::start_in(dir.path(), protocol::clock::system())
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for issuer in [idp.issuer.clone(), idp.todo0_issuer()] {
        let metadata: serde_json::Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            metadata["id_token_signing_alg_values_supported"],
            serde_json::json!(["ES256"]),
            "{issuer}"
        );
        let jwks: serde_json::Value = http
            .get(metadata["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut algs: Vec<_> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                format!(
                    "{}/{}",
                    k["kty"].as_str().unwrap(),
                    k["alg"].as_str().unwrap()
                )
            })
            .collect();
        algs.sort();
        assert_eq!(
            algs,
            ["EC/ES256", "EC/ES256", "RSA/RS256"],
            "current and next are P-256, the RSA key is previous: {issuer}"
        );
    }

    // The ID token the RSA key signed before the switch still verifies with the org's JWKS.
    let org = remote_verifier(&idp.issuer).await;
    let before_switch = org
        .verify::<IdTokenClaims>(
            rs256_id_token.expose_secret(),
            &Expectations::new(&old_issuer, "agent0", TypeRule::ANY),
        )
        .await
        .unwrap();
    assert_eq!(format!("{:?}", before_switch.alg), "RS256");

    // A new login, the ID-JAG and the access token are ES256, and verify through the JWKS.
    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let id_token = login.id_token.unwrap();
    let grant = idp
        .cross_app_access(&id_token, RESOURCE, "mcp:connect mcp:tools:read")
        .await
        .unwrap();
    for token in [
        &id_token,
        &grant.id_jag.access_token,
        &grant.access.access_token,
    ] {
        assert_eq!(header_alg(token), "ES256");
    }
    let id_claims = org
        .verify::<IdTokenClaims>(
            id_token.expose_secret(),
            &Expectations::new(&idp.issuer, "agent0", TypeRule::ANY),
        )
        .await
        .unwrap();
    let jag = org
        .verify::<IdJagClaims>(
            grant.id_jag.access_token.expose_secret(),
            &Expectations::new(&idp.issuer, idp.todo0_issuer(), TypeRule::ID_JAG),
        )
        .await
        .unwrap();
    let todo0 = remote_verifier(&idp.todo0_issuer()).await;
    let access = todo0
        .verify::<AccessTokenClaims>(
            grant.access.access_token.expose_secret(),
            &Expectations::new(idp.todo0_issuer(), RESOURCE, TypeRule::ACCESS_TOKEN),
        )
        .await
        .unwrap();
    assert_eq!(jag.claims.sub, id_claims.claims.sub);
    assert_eq!(access.claims.user_id(), id_claims.claims.sub);
    assert_eq!(
        access.kid,
        jsonwebtoken::decode_header(grant.access.access_token.expose_secret())
            .unwrap()
            .kid
            .unwrap()
    );
    idp.stop().await.unwrap();
}
