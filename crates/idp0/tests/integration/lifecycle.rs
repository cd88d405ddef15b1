//! Token and session lifecycles through real HTTP: code reuse revokes, PKCE, refresh rotation and
//! reuse detection, restart persistence, logout, introspection and revocation, and the
//! authorization endpoint's refusals.

use std::collections::HashMap;

use protocol::token_client::{ClientAuth, TokenClient};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use testkit::{Browser, IdpHandle, Pkce, location};

const CALLBACK: &str = "http://localhost:3000/callback";

async fn code_for(idp: &IdpHandle, browser: &Browser, pkce: &Pkce, scope: &str) -> String {
    let url = idp.authorize_url("agent0", CALLBACK, scope, pkce, "s", "n");
    browser
        .authorize(&url, Some(("alice", &idp.password("alice"))))
        .await
        .unwrap()
        .code
}

pub(crate) async fn redeem(
    idp: &IdpHandle,
    code: &str,
    verifier: &str,
    redirect: &str,
) -> Result<protocol::oauth::TokenResponse, String> {
    TokenClient::new()
        .map_err(|e| e.to_string())?
        .request(
            &idp.org_token_endpoint(),
            &idp.web_client_auth("agent0"),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ],
        )
        .await
        .map_err(|e| e.to_string())
}

async fn refresh(
    idp: &IdpHandle,
    token: &SecretString,
) -> Result<protocol::oauth::TokenResponse, String> {
    TokenClient::new()
        .map_err(|e| e.to_string())?
        .request(
            &idp.org_token_endpoint(),
            &idp.web_client_auth("agent0"),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.expose_secret()),
            ],
        )
        .await
        .map_err(|e| e.to_string())
}

async fn introspect(auth: &ClientAuth, endpoint: &str, token: &str) -> Value {
    let http = reqwest::Client::new();
    let mut request = http.post(endpoint).form(&[("token", token)]);
    if let ClientAuth::SecretBasic { client_id, secret } = auth {
        request = request.basic_auth(client_id, Some(secret.expose_secret()));
    }
    request.send().await.unwrap().json().await.unwrap()
}

fn org_introspect(idp: &IdpHandle) -> String {
    format!("{}/oauth2/v1/introspect", idp.issuer)
}

#[tokio::test]
async fn a_reused_code_fails_and_revokes_what_it_issued() {
    let idp = IdpHandle::start().await.unwrap();
    let pkce = Pkce::new();
    let code = code_for(&idp, &Browser::new(), &pkce, "openid offline_access").await;
    let first = redeem(&idp, &code, pkce.verifier.expose_secret(), CALLBACK)
        .await
        .unwrap();
    let auth = idp.web_client_auth("agent0");
    let active = introspect(
        &auth,
        &org_introspect(&idp),
        first.access_token.expose_secret(),
    )
    .await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], "agent0");

    let second = redeem(&idp, &code, pkce.verifier.expose_secret(), CALLBACK)
        .await
        .unwrap_err();
    assert!(second.contains("invalid_grant"), "{second}");
    let revoked = introspect(
        &auth,
        &org_introspect(&idp),
        first.access_token.expose_secret(),
    )
    .await;
    assert_eq!(
        revoked["active"], false,
        "the first access token is revoked"
    );
    let refreshed = refresh(&idp, first.refresh_token.as_ref().unwrap())
        .await
        .unwrap_err();
    assert!(
        refreshed.contains("invalid_grant"),
        "the refresh token is revoked too: {refreshed}"
    );
}

#[tokio::test]
async fn a_wrong_verifier_or_redirect_leaves_the_code_redeemable() {
    let idp = IdpHandle::start().await.unwrap();
    let pkce = Pkce::new();
    let code = code_for(&idp, &Browser::new(), &pkce, "openid").await;
    let wrong = Pkce::new();
    let err = redeem(&idp, &code, wrong.verifier.expose_secret(), CALLBACK)
        .await
        .unwrap_err();
    assert!(
        err.contains("invalid_grant") && err.contains("code_verifier"),
        "{err}"
    );
    let err = redeem(
        &idp,
        &code,
        pkce.verifier.expose_secret(),
        "http://localhost:3000/other",
    )
    .await
    .unwrap_err();
    assert!(
        err.contains("invalid_grant") && err.contains("redirect_uri"),
        "{err}"
    );
    assert!(
        redeem(&idp, &code, pkce.verifier.expose_secret(), CALLBACK)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let idp = IdpHandle::start().await.unwrap();
    let tokens = idp.login(&Browser::new(), "alice").await.unwrap();
    let first = tokens.refresh_token.unwrap();
    let second = refresh(&idp, &first).await.unwrap();
    assert!(
        second.id_token.is_some(),
        "a refresh returns a fresh ID token"
    );
    let second_refresh = second.refresh_token.unwrap();
    assert_ne!(
        second_refresh.expose_secret(),
        first.expose_secret(),
        "rotation"
    );
    // Reusing the first one: refused, and the whole family dies.
    assert!(
        refresh(&idp, &first)
            .await
            .unwrap_err()
            .contains("invalid_grant")
    );
    assert!(
        refresh(&idp, &second_refresh)
            .await
            .unwrap_err()
            .contains("invalid_grant")
    );
}

#[tokio::test]
async fn a_restart_keeps_sessions_and_refresh_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let clock = protocol::clock::system();
    let idp = IdpHandle::start_in(dir.path(), clock.clone())
        .await
        .unwrap();
    let browser = Browser::new();
    let tokens = idp.login(&browser, "alice").await.unwrap();
    let password = idp.password("alice");
    let old_issuer = idp.issuer.clone();
    idp.stop().await.unwrap();

    let idp = IdpHandle::start_in(dir.path(), clock).await.unwrap();
    assert_eq!(
        idp.password("alice"),
        password,
        "the development configuration is reused"
    );
    // The refresh token still works after the restart...
    let refreshed = refresh(&idp, tokens.refresh_token.as_ref().unwrap())
        .await
        .unwrap();
    assert!(refreshed.access_token.expose_secret().len() > 20);
    // ...and the SSO session too (cookies are per host, not per port, so the browser sends it).
    assert_ne!(old_issuer, idp.issuer);
    let pkce = Pkce::new();
    let url = idp.authorize_url("agent0", CALLBACK, "openid", &pkce, "s", "n");
    let code = browser.authorize(&url, None).await;
    assert!(code.is_ok(), "still logged in after a restart: {code:?}");
}

#[tokio::test]
async fn logout_ends_the_sso_session_and_redirects_only_where_registered() {
    let idp = IdpHandle::start().await.unwrap();
    let browser = Browser::new();
    let tokens = idp.login(&browser, "alice").await.unwrap();
    let hint = tokens.id_token.unwrap();
    let logout = format!("{}/oauth2/v1/logout", idp.issuer);

    let bad = browser
        .http
        .get(&logout)
        .query(&[
            ("id_token_hint", hint.expose_secret()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "an unregistered redirect is refused");

    let ok = browser
        .http
        .get(&logout)
        .query(&[
            ("id_token_hint", hint.expose_secret()),
            ("post_logout_redirect_uri", "http://localhost:3000/"),
            ("state", "bye"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&ok).unwrap().as_str(),
        "http://localhost:3000/?state=bye"
    );

    let pkce = Pkce::new();
    let url = idp.authorize_url("agent0", CALLBACK, "openid", &pkce, "s", "n");
    let again = browser.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 200, "the login form is shown again");
    assert!(again.text().await.unwrap().contains("name=\"password\""));
}

#[tokio::test]
async fn revoked_tokens_are_inactive_and_other_clients_cannot_revoke_them() {
    let idp = IdpHandle::start().await.unwrap();
    let tokens = idp.login(&Browser::new(), "alice").await.unwrap();
    let access = tokens.access_token.expose_secret().to_owned();
    let revoke = format!("{}/oauth2/v1/revoke", idp.issuer);
    let http = reqwest::Client::new();
    let todo0 = idp.client_secret("todo0");
    let foreign = http
        .post(&revoke)
        .basic_auth("todo0", Some(todo0.expose_secret()))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400);
    let agent0 = idp.client_secret("agent0");
    for _ in 0..2 {
        let ok = http
            .post(&revoke)
            .basic_auth("agent0", Some(agent0.expose_secret()))
            .form(&[("token", &access)])
            .send()
            .await
            .unwrap();
        assert_eq!(ok.status(), 200, "revocation is idempotent");
    }
    let unknown = http
        .post(&revoke)
        .basic_auth("agent0", Some(agent0.expose_secret()))
        .form(&[("token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        200,
        "RFC 7009 §2.2: unknown tokens are not an error"
    );
    let status = introspect(
        &idp.web_client_auth("todo0"),
        &org_introspect(&idp),
        &access,
    )
    .await;
    assert_eq!(status, serde_json::json!({"active": false}));
    let unauthenticated = http
        .post(org_introspect(&idp))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

#[tokio::test]
async fn userinfo_answers_for_a_valid_token_only() {
    let idp = IdpHandle::start().await.unwrap();
    let tokens = idp.login(&Browser::new(), "alice").await.unwrap();
    let userinfo = format!("{}/oauth2/v1/userinfo", idp.issuer);
    let http = reqwest::Client::new();
    let ok: Value = http
        .get(&userinfo)
        .bearer_auth(tokens.access_token.expose_secret())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ok["preferred_username"], "alice");
    assert_eq!(ok["email"], "alice@example.com");
    let bad = http
        .get(&userinfo)
        .bearer_auth("not.a.token")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let challenge = bad.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let parsed = protocol::www_authenticate::parse(&challenge).unwrap();
    assert_eq!(parsed[0].error(), Some("invalid_token"));
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_bad_requests_safely() {
    let idp = IdpHandle::start().await.unwrap();
    let browser = Browser::new();
    let pkce = Pkce::new();
    let base = idp.authorize_url("agent0", CALLBACK, "openid", &pkce, "st", "n");
    let with = |changes: &[(&str, &str)]| {
        let mut url = url::Url::parse(&base).unwrap();
        let mut pairs: HashMap<String, String> = url.query_pairs().into_owned().collect();
        for (k, v) in changes {
            if v.is_empty() {
                pairs.remove(*k);
            } else {
                pairs.insert((*k).into(), (*v).into());
            }
        }
        url.query_pairs_mut().clear().extend_pairs(pairs);
        url.to_string()
    };
    // Unregistered redirect URI or unknown client: a page, never a redirect.
    for url in [
        with(&[("redirect_uri", "https://evil.example/cb")]),
        with(&[("client_id", "nobody")]),
    ] {
        let response = browser.http.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 400);
        assert!(response.headers().get("location").is_none());
    }
    // Errors after the client is trusted go back to it.
    for (changes, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "openid admin")], "invalid_scope"),
        (vec![("prompt", "none")], "login_required"),
    ] {
        let response = browser.http.get(with(&changes)).send().await.unwrap();
        let target = location(&response).unwrap();
        let params: HashMap<String, String> = target.query_pairs().into_owned().collect();
        assert_eq!(
            params.get("error").map(String::as_str),
            Some(error),
            "{changes:?}"
        );
        assert_eq!(params.get("state").map(String::as_str), Some("st"));
        assert_eq!(params.get("iss"), Some(&idp.issuer));
        assert!(target.as_str().starts_with(CALLBACK));
    }
    // A wrong password shows the form again with a message and no session.
    let form = browser
        .http
        .get(&base)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let retry = browser
        .submit_login(&base, &form, "alice", "wrong")
        .await
        .unwrap();
    assert_eq!(retry.status(), 401);
    let form = retry.text().await.unwrap();
    assert!(form.contains("Invalid username or password."));
    // Each rendering of the form carries a fresh anti-CSRF token: use the new form.
    let unknown = browser
        .submit_login(&base, &form, "mallory", "x")
        .await
        .unwrap();
    assert_eq!(
        unknown.status(),
        401,
        "unknown users look the same as wrong passwords"
    );
}

#[tokio::test]
async fn the_login_form_needs_its_csrf_cookie() {
    let idp = IdpHandle::start().await.unwrap();
    let pkce = Pkce::new();
    let url = idp.authorize_url("agent0", CALLBACK, "openid", &pkce, "s", "n");
    let form = Browser::new()
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Another browser (no CSRF cookie) posting the same form is refused.
    let attacker = Browser::new();
    let response = attacker
        .submit_login(&url, &form, "alice", &idp.password("alice"))
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}
