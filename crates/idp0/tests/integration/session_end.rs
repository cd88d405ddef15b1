//! What ends a person's authority, through real HTTP: a replayed code or a logout stops their ID
//! token from being exchanged for an ID-JAG; introspection answers only the token's own client and
//! the issuing server's resource clients; logout without a hint of the current session asks first.

use std::collections::HashMap;

use protocol::oauth::TokenType;
use protocol::token_client::TokenClient;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use testkit::{Browser, IdpHandle, Pkce, hidden_fields, location};

use super::flow::RESOURCE;

const CALLBACK: &str = "http://localhost:3000/callback";
const SCOPE: &str = "mcp:connect mcp:tools:read";

/// Logs `user` in through `browser` and redeems the code: (code, tokens).
async fn login_with_code(
    idp: &IdpHandle,
    browser: &Browser,
    user: &str,
) -> (String, Pkce, protocol::oauth::TokenResponse) {
    let pkce = Pkce::new();
    let url = idp.authorize_url("agent0", CALLBACK, "openid offline_access", &pkce, "s", "n");
    let code = browser
        .authorize(&url, Some((user, &idp.password(user))))
        .await
        .unwrap()
        .code;
    let tokens = redeem(idp, &code, &pkce).await.unwrap();
    (code, pkce, tokens)
}

/// The authorization-code redemption of `lifecycle`, with this file's callback and `pkce`.
async fn redeem(
    idp: &IdpHandle,
    code: &str,
    pkce: &Pkce,
) -> Result<protocol::oauth::TokenResponse, String> {
    super::lifecycle::redeem(idp, code, pkce.verifier.expose_secret(), CALLBACK).await
}

/// Step 1 of Cross-App Access: `Ok` or the error text.
async fn exchange(idp: &IdpHandle, subject: &SecretString, kind: TokenType) -> Result<(), String> {
    idp.id_jag(subject, kind, RESOURCE, SCOPE)
        .await
        .map(|_| ())
        .map_err(|e| format!("{e:#}"))
}

fn is_invalid_grant(result: &Result<(), String>) -> bool {
    result.as_ref().is_err_and(|e| e.contains("invalid_grant"))
}

async fn is_signed_in(idp: &IdpHandle, browser: &Browser) -> bool {
    let mut url =
        url::Url::parse(&idp.authorize_url("agent0", CALLBACK, "openid", &Pkce::new(), "s", "n"))
            .unwrap();
    url.query_pairs_mut().append_pair("prompt", "none");
    let response = browser.http.get(url.as_str()).send().await.unwrap();
    let params: HashMap<String, String> = location(&response)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    params.contains_key("code")
}

#[tokio::test]
async fn a_replayed_code_stops_its_id_token_and_refresh_token_from_exchanging() {
    let idp = IdpHandle::start().await.unwrap();
    let (code, pkce, tokens) = login_with_code(&idp, &Browser::new(), "alice").await;
    let id_token = tokens.id_token.unwrap();
    let refresh = tokens.refresh_token.unwrap();
    assert_eq!(exchange(&idp, &id_token, TokenType::IdToken).await, Ok(()));
    assert_eq!(
        exchange(&idp, &refresh, TokenType::RefreshToken).await,
        Ok(())
    );

    let replay = redeem(&idp, &code, &pkce).await;
    assert!(replay.unwrap_err().contains("invalid_grant"));

    let by_id_token = exchange(&idp, &id_token, TokenType::IdToken).await;
    assert!(is_invalid_grant(&by_id_token), "{by_id_token:?}");
    let by_refresh = exchange(&idp, &refresh, TokenType::RefreshToken).await;
    assert!(is_invalid_grant(&by_refresh), "{by_refresh:?}");
}

#[tokio::test]
async fn a_logout_at_the_idp_stops_the_sessions_id_tokens_from_exchanging() {
    let idp = IdpHandle::start().await.unwrap();
    let browser = Browser::new();
    let (_, _, tokens) = login_with_code(&idp, &browser, "alice").await;
    let id_token = tokens.id_token.unwrap();
    // A second ID token of the same session, minted by a refresh, carries the same sid.
    let refreshed = TokenClient::new()
        .unwrap()
        .request(
            &idp.org_token_endpoint(),
            &idp.web_client_auth("agent0"),
            &[
                ("grant_type", "refresh_token"),
                (
                    "refresh_token",
                    tokens.refresh_token.as_ref().unwrap().expose_secret(),
                ),
            ],
        )
        .await
        .unwrap()
        .id_token
        .unwrap();
    assert_eq!(exchange(&idp, &id_token, TokenType::IdToken).await, Ok(()));
    assert_eq!(exchange(&idp, &refreshed, TokenType::IdToken).await, Ok(()));

    let logout = browser
        .http
        .get(format!("{}/oauth2/v1/logout", idp.issuer))
        .query(&[
            ("id_token_hint", id_token.expose_secret()),
            ("post_logout_redirect_uri", "http://localhost:3000/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&logout).unwrap().as_str(),
        "http://localhost:3000/"
    );
    for token in [&id_token, &refreshed] {
        let after = exchange(&idp, token, TokenType::IdToken).await;
        assert!(is_invalid_grant(&after), "{after:?}");
    }
    // Another person's session is untouched.
    let (_, _, bobs) = login_with_code(&idp, &Browser::new(), "bob").await;
    assert_eq!(
        exchange(&idp, bobs.id_token.as_ref().unwrap(), TokenType::IdToken).await,
        Ok(())
    );
}

async fn introspect(endpoint: &str, client: &str, secret: &SecretString, token: &str) -> Value {
    reqwest::Client::new()
        .post(endpoint)
        .basic_auth(client, Some(secret.expose_secret()))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn introspection_answers_only_the_tokens_client_or_the_servers_resource_clients() {
    let idp = IdpHandle::start().await.unwrap();
    let login = idp.login(&Browser::new(), "alice").await.unwrap();
    let mcp = idp
        .cross_app_access(login.id_token.as_ref().unwrap(), RESOURCE, SCOPE)
        .await
        .unwrap()
        .access;
    let org_endpoint = format!("{}/oauth2/v1/introspect", idp.issuer);
    let todo0_endpoint = format!("{}/v1/introspect", idp.todo0_issuer());
    let (agent0, todo0) = (idp.client_secret("agent0"), idp.client_secret("todo0"));
    let mcp_token = mcp.access_token.expose_secret();
    let org_token = login.access_token.expose_secret();
    let refresh = login.refresh_token.as_ref().unwrap().expose_secret();

    // (endpoint, caller, secret, token, active?)
    let cases: [(&str, &str, &SecretString, &str, bool); 7] = [
        // todo0 is registered as the todo0 AS's resource client (devstack resource_clients).
        (&todo0_endpoint, "todo0", &todo0, mcp_token, true),
        // agent0 is neither the MCP token's client (agent0-agent) nor a resource client.
        (&todo0_endpoint, "agent0", &agent0, mcp_token, false),
        // The org AS has no resource clients: only the token's own client sees it.
        (&org_endpoint, "agent0", &agent0, org_token, true),
        (&org_endpoint, "todo0", &todo0, org_token, false),
        (&org_endpoint, "agent0", &agent0, refresh, true),
        (&org_endpoint, "todo0", &todo0, refresh, false),
        // A token of another server is not this server's.
        (&todo0_endpoint, "todo0", &todo0, org_token, false),
    ];
    for (endpoint, client, secret, token, active) in cases {
        let body = introspect(endpoint, client, secret, token).await;
        if active {
            assert_eq!(body["active"], true, "{client} at {endpoint}: {body}");
        } else {
            assert_eq!(
                body,
                serde_json::json!({"active": false}),
                "{client} at {endpoint}: nothing but active=false"
            );
        }
    }
    let seen = introspect(&todo0_endpoint, "todo0", &todo0, mcp_token).await;
    assert_eq!(seen["client_id"], "agent0-agent");
    assert_eq!(seen["scope"], SCOPE);
}

/// Opens the logout endpoint in `browser` with `query`.
async fn get_logout(
    idp: &IdpHandle,
    browser: &Browser,
    query: &[(&str, &str)],
) -> reqwest::Response {
    browser
        .http
        .get(format!("{}/oauth2/v1/logout", idp.issuer))
        .query(query)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_logout_without_a_hint_asks_first_and_logs_out_on_confirmation() {
    let idp = IdpHandle::start().await.unwrap();
    let browser = Browser::new();
    idp.login(&browser, "alice").await.unwrap();

    // A cross-site GET without a hint ends nothing; it shows a POST form.
    let page = get_logout(
        &idp,
        &browser,
        &[
            ("client_id", "agent0"),
            ("post_logout_redirect_uri", "http://localhost:3000/"),
            ("state", "st"),
        ],
    )
    .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("method=\"post\""), "{html}");
    assert!(
        is_signed_in(&idp, &browser).await,
        "a GET alone ends nothing"
    );

    // Forged confirmations are refused and end nothing.
    let fields = hidden_fields(&html);
    let logout = format!("{}/oauth2/v1/logout", idp.issuer);
    let forged: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                if k == "csrf" {
                    "1.AAAA".into()
                } else {
                    v.clone()
                },
            )
        })
        .collect();
    let refused = browser
        .http
        .post(&logout)
        .form(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let cross_origin = browser
        .http
        .post(&logout)
        .header("origin", "http://localhost:9999")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_origin.status(), 403);
    let other_browser = Browser::new();
    idp.login(&other_browser, "bob").await.unwrap();
    let elsewhere = other_browser
        .http
        .post(&logout)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status(),
        403,
        "the token is bound to alice's session"
    );
    assert!(is_signed_in(&idp, &browser).await);
    assert!(is_signed_in(&idp, &other_browser).await);

    // The person confirms: signed out, and sent to the registered URI with the state.
    let confirmed = browser
        .http
        .post(&logout)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&confirmed).unwrap().as_str(),
        "http://localhost:3000/?state=st"
    );
    assert!(!is_signed_in(&idp, &browser).await);
    assert!(is_signed_in(&idp, &other_browser).await, "bob is untouched");
}

#[tokio::test]
async fn another_persons_id_token_as_hint_ends_no_session() {
    let idp = IdpHandle::start().await.unwrap();
    let alice = Browser::new();
    idp.login(&alice, "alice").await.unwrap();
    let bob = Browser::new();
    let bobs = idp.login(&bob, "bob").await.unwrap();
    let hint = bobs.id_token.unwrap();

    // Bob's ID token, opened in alice's browser: a question, not a logout of anyone.
    let page = get_logout(
        &idp,
        &alice,
        &[
            ("id_token_hint", hint.expose_secret()),
            ("post_logout_redirect_uri", "http://localhost:3000/"),
        ],
    )
    .await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("method=\"post\""));
    assert!(is_signed_in(&idp, &alice).await, "alice is still signed in");
    assert!(is_signed_in(&idp, &bob).await, "bob is still signed in");

    // Alice's own, older ID token of a previous session is not this session either.
    let previous = Browser::new();
    let old = idp
        .login(&previous, "alice")
        .await
        .unwrap()
        .id_token
        .unwrap();
    let page = get_logout(&idp, &alice, &[("id_token_hint", old.expose_secret())]).await;
    assert_eq!(page.status(), 200);
    assert!(is_signed_in(&idp, &alice).await);

    // Without any session in the browser, a hint ends nothing and just redirects.
    let fresh = Browser::new();
    let response = get_logout(
        &idp,
        &fresh,
        &[
            ("id_token_hint", hint.expose_secret()),
            ("post_logout_redirect_uri", "http://localhost:3000/"),
        ],
    )
    .await;
    assert_eq!(
        location(&response).unwrap().as_str(),
        "http://localhost:3000/"
    );
    assert!(
        is_signed_in(&idp, &bob).await,
        "bob's session survives his token being used"
    );

    // Bob's own hint in bob's browser logs out at once (RP-initiated logout as RPs use it).
    let response = get_logout(
        &idp,
        &bob,
        &[
            ("id_token_hint", hint.expose_secret()),
            ("post_logout_redirect_uri", "http://localhost:3000/"),
        ],
    )
    .await;
    assert_eq!(
        location(&response).unwrap().as_str(),
        "http://localhost:3000/"
    );
    assert!(!is_signed_in(&idp, &bob).await);
}
