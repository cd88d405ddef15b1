//! The OAuth web flow as a browser walks it, and the token endpoint's answers.

use super::harness::*;

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn user_status(sandbox: &Sandbox, token: &str) -> (u16, serde_json::Value) {
    let response = sandbox
        .api()
        .get(sandbox.url("/api/v3/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn the_web_flow_with_pkce_issues_expiring_github_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let browser = sandbox.browser();
    let callback = sandbox
        .authorize(
            &browser,
            "alice",
            ALICE_PASSWORD,
            &sandbox.authorize_url("repo read:user", "st-1", Some(CHALLENGE)),
            "allow",
        )
        .await;
    assert!(callback.as_str().starts_with(CALLBACK), "{callback}");
    assert_eq!(param(&callback, "state").as_deref(), Some("st-1"));
    let code = param(&callback, "code").unwrap();
    assert_eq!(code.len(), 20);

    let tokens = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ])
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert!(access.starts_with("ghu_") && access.len() == 40, "{access}");
    assert!(
        refresh.starts_with("ghr_") && refresh.len() >= 76,
        "{refresh}"
    );
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["scope"], "repo,read:user");
    assert_eq!(tokens["expires_in"], 8 * 3600);
    assert_eq!(tokens["refresh_token_expires_in"], 15_811_200);

    let (status, user) = user_status(&sandbox, access).await;
    assert_eq!(status, 200);
    assert_eq!(user["login"], "alice");
    assert!(user["id"].as_i64().unwrap() > 0);

    // The replayed code is refused and what it issued is revoked.
    let again = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(again["error"], "bad_verification_code", "{again}");
    assert!(
        again["error_uri"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.github.com/")
    );
    assert_eq!(user_status(&sandbox, access).await.0, 401);

    // Signed in already and the scopes granted: straight back with a new code, no pages.
    let second = browser
        .get(sandbox.authorize_url("repo", "st-2", None))
        .send()
        .await
        .unwrap();
    assert!(second.status().is_redirection());
    let location = sandbox.location(&second);
    assert!(
        location.starts_with(CALLBACK) && location.contains("state=st-2"),
        "{location}"
    );
}

#[tokio::test]
async fn pkce_wrong_or_missing_verifier_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    for verifier in [
        Some("a-wrong-verifier-a-wrong-verifier-a-wrong-verifier"),
        None,
    ] {
        let callback = sandbox
            .authorize(
                &sandbox.browser(),
                "alice",
                ALICE_PASSWORD,
                &sandbox.authorize_url("repo", "st", Some(CHALLENGE)),
                "allow",
            )
            .await;
        let code = param(&callback, "code").unwrap();
        let mut params = vec![
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", code.as_str()),
        ];
        if let Some(v) = verifier {
            params.push(("code_verifier", v));
        }
        let answer = sandbox.token(&params).await;
        assert_eq!(answer["error"], "bad_verification_code", "{answer}");
        assert!(answer.get("access_token").is_none());
    }
}

#[tokio::test]
async fn wrong_secret_and_redirect_mismatch_are_refused_in_githubs_words() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let browser = sandbox.browser();
    let callback = sandbox
        .authorize(
            &browser,
            "alice",
            ALICE_PASSWORD,
            &sandbox.authorize_url("repo", "s", None),
            "allow",
        )
        .await;
    let code = param(&callback, "code").unwrap();
    let wrong = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", "nope"),
            ("code", &code),
        ])
        .await;
    assert_eq!(wrong["error"], "incorrect_client_credentials");
    assert_eq!(
        wrong["error_description"],
        "The client_id and/or client_secret passed are incorrect."
    );
    // The refused attempt did not use the code up.
    let mismatch = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
            (
                "redirect_uri",
                "http://127.0.0.1:9/oauth2/v1/sts/callback/other",
            ),
        ])
        .await;
    assert_eq!(mismatch["error"], "redirect_uri_mismatch", "{mismatch}");

    // At the authorize endpoint, a foreign redirect_uri goes back to the registered callback.
    let mut url = url::Url::parse(&sandbox.url("/login/oauth/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", "http://evil.example/cb")
        .append_pair("state", "s9");
    let answer = browser.get(url.as_str()).send().await.unwrap();
    let location = url::Url::parse(&sandbox.location(&answer)).unwrap();
    assert!(location.as_str().starts_with(CALLBACK), "{location}");
    assert_eq!(
        param(&location, "error").as_deref(),
        Some("redirect_uri_mismatch")
    );
    assert_eq!(param(&location, "state").as_deref(), Some("s9"));

    // An unknown app gets a page, not a redirect.
    let unknown = browser
        .get(sandbox.url("/login/oauth/authorize?client_id=nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(unknown.text().await.unwrap().contains("sandbox"));
}

#[tokio::test]
async fn deny_redirects_with_access_denied_and_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let callback = sandbox
        .authorize(
            &sandbox.browser(),
            "bob",
            BOB_PASSWORD,
            &sandbox.authorize_url("repo", "st-d", None),
            "deny",
        )
        .await;
    assert_eq!(param(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&callback, "state").as_deref(), Some("st-d"));
    assert!(param(&callback, "error_description").is_some());
    assert!(param(&callback, "code").is_none());
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_another_session_cannot_answer_the_consent() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let alice = sandbox.browser();
    let first = alice
        .get(sandbox.authorize_url("repo", "s", None))
        .send()
        .await
        .unwrap();
    let login_page = sandbox.location(&first);
    let refused = sandbox
        .sign_in(&alice, &login_page, "alice", "not-her-password")
        .await;
    assert_eq!(refused.status(), 401);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("Incorrect username or password.")
    );
    let unknown = sandbox.sign_in(&alice, &login_page, "nobody", "x").await;
    assert_eq!(unknown.status(), 401);
    // Seeded authors have no password and cannot sign in.
    assert_eq!(
        sandbox
            .sign_in(&alice, &login_page, "mona", "")
            .await
            .status(),
        401
    );

    let consent = sandbox
        .sign_in(&alice, &login_page, "alice", ALICE_PASSWORD)
        .await;
    let html = consent.text().await.unwrap();
    let request = hidden(&html, "authorize_request");
    // Bob, signed in on his own browser, posts alice's pending request: refused.
    let bob = sandbox.browser();
    let bob_first = bob
        .get(sandbox.authorize_url("repo", "b", None))
        .send()
        .await
        .unwrap();
    let bob_login = sandbox.location(&bob_first);
    sandbox.sign_in(&bob, &bob_login, "bob", BOB_PASSWORD).await;
    let stolen = bob
        .post(sandbox.url("/login/oauth/authorize"))
        .form(&[
            ("authorize_request", request.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(stolen.status(), 400);
    // Alice's own answer still works, once.
    let mine = alice
        .post(sandbox.url("/login/oauth/authorize"))
        .form(&[
            ("authorize_request", request.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert!(sandbox.location(&mine).contains("code="));
    let twice = alice
        .post(sandbox.url("/login/oauth/authorize"))
        .form(&[
            ("authorize_request", request.as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 400);
}

#[tokio::test]
async fn without_accept_json_the_answer_is_form_encoded() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let callback = sandbox
        .authorize(
            &sandbox.browser(),
            "alice",
            ALICE_PASSWORD,
            &sandbox.authorize_url("repo", "s", None),
            "allow",
        )
        .await;
    let code = param(&callback, "code").unwrap();
    let response = sandbox
        .api()
        .post(sandbox.url("/login/oauth/access_token"))
        .json(&serde_json::json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    );
    let text = response.text().await.unwrap();
    let fields: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(text.as_bytes())
            .into_owned()
            .collect();
    assert!(fields["access_token"].starts_with("ghu_"));
    assert_eq!(fields["token_type"], "bearer");
    assert_eq!(fields["scope"], "repo");
    let error = sandbox
        .api()
        .post(sandbox.url("/login/oauth/access_token"))
        .form(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", "0000"),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(error.starts_with("error=bad_verification_code&"), "{error}");
}

#[tokio::test]
async fn refresh_rotates_and_the_old_refresh_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let first = sandbox.tokens_for("alice", ALICE_PASSWORD, "repo").await;
    let refresh = |token: String| {
        let sandbox = &sandbox;
        async move {
            sandbox
                .token(&[
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                ])
                .await
        }
    };
    let second = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    let new_access = second["access_token"].as_str().unwrap();
    assert!(new_access.starts_with("ghu_"));
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["scope"], "repo");
    assert_eq!(user_status(&sandbox, new_access).await.0, 200);
    assert_eq!(
        user_status(&sandbox, first["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
    let reused = refresh(first["refresh_token"].as_str().unwrap().to_owned()).await;
    assert_eq!(reused["error"], "bad_refresh_token", "{reused}");
    // The rotated one still works.
    let third = refresh(second["refresh_token"].as_str().unwrap().to_owned()).await;
    assert!(third["access_token"].as_str().unwrap().starts_with("ghu_"));
}

#[tokio::test]
async fn a_short_lifetime_token_expires_to_401_and_refresh_brings_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start_with(dir.path(), |c| {
        c.token_lifetime = std::time::Duration::from_secs(60);
    })
    .await;
    let tokens = sandbox.tokens_for("bob", BOB_PASSWORD, "repo").await;
    assert_eq!(tokens["expires_in"], 60);
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(user_status(&sandbox, access).await.0, 200);
    sandbox.clock.advance(61);
    let (status, body) = user_status(&sandbox, access).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Bad credentials");
    let renewed = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(
        user_status(&sandbox, renewed["access_token"].as_str().unwrap())
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn the_app_revokes_a_token_or_the_whole_grant() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let browser = sandbox.browser();
    let callback = sandbox
        .authorize(
            &browser,
            "alice",
            ALICE_PASSWORD,
            &sandbox.authorize_url("repo", "s", None),
            "allow",
        )
        .await;
    let code = param(&callback, "code").unwrap();
    let tokens = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("code", &code),
        ])
        .await;
    let access = tokens["access_token"].as_str().unwrap();
    let delete = |path: &str, secret: &str, token: &str| {
        sandbox
            .api()
            .delete(sandbox.url(&format!("/api/v3/applications/{CLIENT_ID}/{path}")))
            .basic_auth(CLIENT_ID, Some(secret))
            .json(&serde_json::json!({"access_token": token}))
            .send()
    };
    assert_eq!(
        delete("grant", "wrong", access).await.unwrap().status(),
        404
    );
    assert_eq!(user_status(&sandbox, access).await.0, 200);
    assert_eq!(
        delete("grant", CLIENT_SECRET, access)
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(user_status(&sandbox, access).await.0, 401);
    let refreshed = sandbox
        .token(&[
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(refreshed["error"], "bad_refresh_token");
    // The grant is gone: the next authorization shows the consent page again.
    let again = browser
        .get(sandbox.authorize_url("repo", "s2", None))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert!(again.text().await.unwrap().contains("Authorize"));

    let other = sandbox.tokens_for("bob", BOB_PASSWORD, "repo").await;
    let token = other["access_token"].as_str().unwrap();
    assert_eq!(
        delete("token", CLIENT_SECRET, token)
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(user_status(&sandbox, token).await.0, 401);
}

#[tokio::test]
async fn deleting_an_app_token_revokes_it_and_its_refresh_token_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let refresh = |token: &str| {
        let sandbox = &sandbox;
        let token = token.to_owned();
        async move {
            sandbox
                .token(&[
                    ("client_id", CLIENT_ID),
                    ("client_secret", CLIENT_SECRET),
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                ])
                .await
        }
    };
    let delete = |secret: &str, body: serde_json::Value| {
        sandbox
            .api()
            .delete(sandbox.url(&format!("/api/v3/applications/{CLIENT_ID}/token")))
            .basic_auth(CLIENT_ID, Some(secret))
            .json(&body)
            .send()
    };
    let status = |response: reqwest::Response| response.status().as_u16();
    // alice authorizes the one app twice (as idp0 does for two connections through one app),
    // bob once.
    let first = sandbox.tokens_for("alice", ALICE_PASSWORD, "repo").await;
    let second = sandbox.tokens_for("alice", ALICE_PASSWORD, "repo").await;
    let bobs = sandbox.tokens_for("bob", BOB_PASSWORD, "repo").await;
    let access = |t: &serde_json::Value| t["access_token"].as_str().unwrap().to_owned();
    let refresh_of = |t: &serde_json::Value| t["refresh_token"].as_str().unwrap().to_owned();

    // Wrong app credentials: 404, nothing revoked.
    let wrong = delete("wrong", serde_json::json!({"access_token": access(&first)}));
    assert_eq!(status(wrong.await.unwrap()), 404);
    assert_eq!(user_status(&sandbox, &access(&first)).await.0, 200);

    let done = delete(
        CLIENT_SECRET,
        serde_json::json!({"access_token": access(&first)}),
    );
    assert_eq!(status(done.await.unwrap()), 204);
    // That token is revoked, and the refresh token issued with it cannot bring it back.
    assert_eq!(user_status(&sandbox, &access(&first)).await.0, 401);
    let refused = refresh(&refresh_of(&first)).await;
    assert_eq!(refused["error"], "bad_refresh_token", "{refused}");
    // alice's other authorization and bob's keep working, refresh included.
    assert_eq!(user_status(&sandbox, &access(&second)).await.0, 200);
    assert_eq!(user_status(&sandbox, &access(&bobs)).await.0, 200);
    let renewed = refresh(&refresh_of(&second)).await;
    assert_eq!(user_status(&sandbox, &access(&renewed)).await.0, 200);
    let bob_renewed = refresh(&refresh_of(&bobs)).await;
    assert!(bob_renewed["access_token"].is_string(), "{bob_renewed}");

    // Already gone: 404. A refresh token is not an access token: 404, and it stays usable.
    // No access_token: 422, GitHub's validation failure.
    let again = delete(
        CLIENT_SECRET,
        serde_json::json!({"access_token": access(&first)}),
    );
    assert_eq!(status(again.await.unwrap()), 404);
    let not_access = delete(
        CLIENT_SECRET,
        serde_json::json!({"access_token": refresh_of(&renewed)}),
    );
    assert_eq!(status(not_access.await.unwrap()), 404);
    let missing = delete(CLIENT_SECRET, serde_json::json!({}));
    assert_eq!(status(missing.await.unwrap()), 422);
    let last = refresh(&refresh_of(&renewed)).await;
    assert_eq!(user_status(&sandbox, &access(&last)).await.0, 200);

    // The grant stays: signing in to authorize again skips the consent page.
    let browser = sandbox.browser();
    let start = browser
        .get(sandbox.authorize_url("repo", "s3", None))
        .send()
        .await
        .unwrap();
    let login = sandbox.location(&start);
    let after = sandbox
        .sign_in(&browser, &login, "alice", ALICE_PASSWORD)
        .await;
    assert!(after.status().is_redirection(), "{}", after.status());
    assert!(sandbox.location(&after).starts_with(CALLBACK));
}
