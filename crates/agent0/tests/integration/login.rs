//! Login and logout at the edges: RFC 9207 `iss` in the authorization response (idp0 advertises
//! `authorization_response_iss_parameter_supported`, so a response without `iss` is refused),
//! and RP-initiated logout as a server-side 303 whose body never carries the ID token.

use reqwest::StatusCode;
use serde_json::Value;
use testkit::{Browser, location};

use super::harness::AgentStack;

/// Starts a login at agent0 and logs `user` in at idp0: the browser and the code response.
async fn authorized(stack: &AgentStack, user: &str) -> (Browser, testkit::CodeResponse) {
    let browser = Browser::new();
    let start = browser
        .http
        .get(stack.at("/auth/login"))
        .send()
        .await
        .unwrap();
    let authorize = location(&start).unwrap();
    let password = stack.stack.idp.password(user);
    let code = browser
        .authorize(authorize.as_str(), Some((user, &password)))
        .await
        .unwrap();
    (browser, code)
}

async fn callback(
    stack: &AgentStack,
    browser: &Browser,
    code: &testkit::CodeResponse,
    iss: Option<&str>,
) -> reqwest::Response {
    let mut url = url::Url::parse(&stack.at("/callback")).unwrap();
    url.query_pairs_mut()
        .append_pair("code", &code.code)
        .append_pair("state", code.state.as_deref().unwrap());
    if let Some(iss) = iss {
        url.query_pairs_mut().append_pair("iss", iss);
    }
    browser.http.get(url).send().await.unwrap()
}

#[tokio::test]
async fn a_callback_without_iss_is_refused_when_the_idp_advertises_rfc_9207() {
    let stack = AgentStack::start().await;

    // idp0 sends iss (and says so in its metadata); a response stripped of it is refused.
    let (browser, code) = authorized(&stack, "alice").await;
    assert_eq!(code.iss.as_deref(), Some(stack.stack.idp.issuer.as_str()));
    let response = callback(&stack, &browser, &code, None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "login_failed");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("does not say which identity provider"),
        "{body}"
    );
    let status: Value = browser
        .http
        .get(stack.at("/auth/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["authenticated"], false);

    // Another issuer is refused too.
    let (browser, code) = authorized(&stack, "alice").await;
    let response = callback(&stack, &browser, &code, Some("http://evil.example")).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // The right one logs in.
    let (browser, code) = authorized(&stack, "alice").await;
    let response = callback(&stack, &browser, &code, code.iss.as_deref()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn logout_redirects_to_the_idp_without_the_id_token_in_any_body() {
    let stack = AgentStack::start().await;
    let alice = stack.login("alice").await;

    // The page may send its logout form to the IdP (CSP form-action covers the redirect).
    let page = alice.browser.http.get(stack.at("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    let idp_origin = url::Url::parse(&stack.stack.idp.issuer)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert!(
        csp.contains(&format!("form-action 'self' {idp_origin}")),
        "{csp}"
    );

    // Before: the IdP session signs alice in silently.
    let start = alice
        .browser
        .http
        .get(stack.at("/auth/login"))
        .send()
        .await
        .unwrap();
    alice
        .browser
        .authorize(location(&start).unwrap().as_str(), None)
        .await
        .expect("single sign-on before logout");

    // A form without the session's CSRF token is refused and changes nothing.
    let refused = alice
        .browser
        .http
        .post(stack.at("/auth/logout"))
        .form(&[("csrf", "not-the-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let (_, status) = alice.get("/auth/status").await;
    assert_eq!(status["authenticated"], true);

    // The page's form: a 303 straight to the IdP's end-session endpoint; no body has a JWT.
    let response = alice
        .browser
        .http
        .post(stack.at("/auth/logout"))
        .form(&[("csrf", alice.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let end_session = location(&response).unwrap();
    assert!(
        end_session.as_str().starts_with(&stack.stack.idp.issuer),
        "{end_session}"
    );
    assert!(
        end_session
            .query_pairs()
            .any(|(name, _)| name == "id_token_hint"),
        "RP-Initiated Logout names the session with id_token_hint"
    );
    let body = response.text().await.unwrap();
    assert!(!body.contains("eyJ"), "{body}");
    let (_, status) = alice.get("/auth/status").await;
    assert_eq!(status["authenticated"], false);
    assert!(!status.to_string().contains("eyJ"));

    // Following it ends the IdP session: the next login shows idp0's form again.
    let ended = alice.browser.http.get(end_session).send().await.unwrap();
    assert!(
        ended.status().is_redirection() || ended.status().is_success(),
        "{}",
        ended.status()
    );
    let start = alice
        .browser
        .http
        .get(stack.at("/auth/login"))
        .send()
        .await
        .unwrap();
    let error = alice
        .browser
        .authorize(location(&start).unwrap().as_str(), None)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("login form shown"), "{error}");
}

/// The security headers, set by tower-http layers: the four every app sends plus
/// `Cross-Origin-Opener-Policy`, once each on every response (a 404 included), and `no-store` on
/// the session's routes (`/auth/…`, `/api/…`) whatever they answer.
#[tokio::test]
async fn every_response_carries_the_security_headers_once() {
    let stack = AgentStack::start().await;
    let stranger = Browser::new();
    let mut responses = Vec::new();
    for path in [
        "/",
        "/assets/app.js",
        "/health",
        "/no/such/page",
        "/auth/login",
        "/auth/status",
        "/api/me/claims",
        "/api/conversations",
    ] {
        responses.push(stranger.http.get(stack.at(path)).send().await.unwrap());
    }
    let csp = responses[0].headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self';"),
        "{csp}"
    );
    for response in &responses {
        let at = format!("{} {}", response.status(), response.url());
        for (name, value) in [
            ("content-security-policy", csp.as_str()),
            ("x-content-type-options", "nosniff"),
            ("x-frame-options", "DENY"),
            ("referrer-policy", "no-referrer"),
            ("cross-origin-opener-policy", "same-origin"),
        ] {
            let values: Vec<_> = response.headers().get_all(name).iter().collect();
            assert_eq!(values, [value], "{name} on {at}");
        }
        let path = response.url().path();
        if path.starts_with("/auth/") || path.starts_with("/api/") {
            assert_eq!(response.headers()["cache-control"], "no-store", "{at}");
        }
    }
    assert_eq!(
        responses[1].headers()["cache-control"],
        "no-cache",
        "app.js keeps its own"
    );
    assert_eq!(
        responses[0].headers()["cache-control"],
        "no-store",
        "the page sets its own"
    );
}
