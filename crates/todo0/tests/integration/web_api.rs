//! The REST API half of the web app's tests: access tokens from the real Cross-App Access
//! flow with the MCP scopes (statuses, challenges, bodies checked against `/openapi.json`), the
//! same rows through the MCP server, user isolation, and invalid titles.

use base64::Engine;
use reqwest::StatusCode;
use reqwest::header::WWW_AUTHENTICATE;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use todo0::domain::Filter;

use super::{ALL, App, Mcp, call, conforms};
#[tokio::test]
async fn the_rest_api_takes_access_tokens_with_the_mcp_scopes_and_matches_its_openapi_document() {
    let app = App::start().await;
    let document: Value = reqwest::get(app.at("/openapi.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let all = app.stack.mcp_token("alice", ALL).await.unwrap();
    let all = all.expose_secret();
    let read_only = app
        .stack
        .mcp_token("alice", "mcp:connect mcp:tools:read")
        .await
        .unwrap();
    let read_only = read_only.expose_secret();
    let no_delete = app
        .stack
        .mcp_token("alice", "mcp:connect mcp:tools:read mcp:tools:manage")
        .await
        .unwrap();
    let no_delete = no_delete.expose_secret();
    use reqwest::Method as M;
    let todos = app.at("/todos");

    // Authentication and scope failures, with RFC 6750 challenges.
    let anonymous = reqwest::get(&todos).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(
        anonymous.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let body: Value = anonymous.json().await.unwrap();
    conforms(&document, "/todos", "get", StatusCode::UNAUTHORIZED, &body);
    let (status, challenge, body) = call(M::GET, &todos, "not-a-jwt", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.unwrap().contains("error=\"invalid_token\""));
    assert_eq!(body["error"], "invalid_token");
    let (status, challenge, body) =
        call(M::POST, &todos, read_only, Some(json!({"title": "x"}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(
        challenge.contains("scope=\"mcp:tools:manage\""),
        "{challenge}"
    );
    conforms(&document, "/todos", "post", status, &body);

    // Create, read, list with filters.
    let (status, _, created) = call(
        M::POST,
        &todos,
        all,
        Some(json!({"title": "  Café ☕ run "})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    conforms(&document, "/todos", "post", status, &created);
    assert_eq!(created["title"], "Café ☕ run");
    let id = created["id"].as_i64().unwrap();
    let one = app.at(&format!("/todos/{id}"));
    let (status, _, listed) = call(M::GET, &todos, read_only, None).await;
    assert_eq!(status, StatusCode::OK);
    conforms(&document, "/todos", "get", status, &listed);
    assert_eq!(listed, json!([created]));
    let (_, _, filtered) = call(M::GET, &format!("{todos}?completed=true"), read_only, None).await;
    assert_eq!(filtered, json!([]));
    let (_, _, searched) = call(M::GET, &format!("{todos}?search=CAF"), read_only, None).await;
    assert_eq!(searched.as_array().unwrap().len(), 1);
    let (status, _, _) = call(M::GET, &format!("{todos}?completed=maybe"), read_only, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, got) = call(M::GET, &one, read_only, None).await;
    assert_eq!(status, StatusCode::OK);
    conforms(&document, "/todos/{id}", "get", status, &got);

    // Change: PATCH and the toggle.
    let (status, _, _) = call(M::PATCH, &one, read_only, Some(json!({"completed": true}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, patched) = call(
        M::PATCH,
        &one,
        all,
        Some(json!({"title": "Coffee", "completed": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    conforms(&document, "/todos/{id}", "patch", status, &patched);
    assert_eq!(
        (patched["title"].as_str(), patched["completed"].as_bool()),
        (Some("Coffee"), Some(true))
    );
    for bad in [
        json!({}),
        json!({"title": ""}),
        json!({"done": true}),
        json!({"completed": "yes"}),
    ] {
        let (status, _, body) = call(M::PATCH, &one, all, Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        conforms(&document, "/todos/{id}", "patch", status, &body);
    }
    let toggle = format!("{one}/complete");
    let (status, _, toggled) = call(M::POST, &toggle, no_delete, None).await;
    assert_eq!(status, StatusCode::OK);
    conforms(&document, "/todos/{id}/complete", "post", status, &toggled);
    assert_eq!(toggled["completed"], false);
    assert_eq!(
        call(M::POST, &toggle, read_only, None).await.0,
        StatusCode::FORBIDDEN
    );

    // Bodies: media type and size.
    let text = reqwest::Client::new()
        .post(&todos)
        .bearer_auth(all)
        .header("content-type", "text/plain")
        .body("title=x")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({"title": "x".repeat(70 * 1024)});
    let (status, _, body) = call(M::POST, &todos, all, Some(huge)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    conforms(&document, "/todos", "post", status, &body);

    // Delete: needs mcp:tools:delete, either verb.
    let (status, challenge, _) = call(M::DELETE, &one, no_delete, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.unwrap().contains("scope=\"mcp:tools:delete\""));
    assert_eq!(
        call(M::DELETE, &one, all, None).await.0,
        StatusCode::NO_CONTENT
    );
    let (status, _, missing) = call(M::GET, &one, all, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    conforms(&document, "/todos/{id}", "get", status, &missing);
    assert_eq!(
        call(M::DELETE, &one, all, None).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, _, second) = call(M::POST, &todos, all, Some(json!({"title": "two"}))).await;
    let by_post = app.at(&format!("/todos/{}/delete", second["id"]));
    assert_eq!(
        call(M::POST, &by_post, no_delete, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        call(M::POST, &by_post, all, None).await.0,
        StatusCode::NO_CONTENT
    );
    for path in ["/todos/abc", "/todos/0", "/todos/-1"] {
        assert_eq!(
            call(M::GET, &app.at(path), all, None).await.0,
            StatusCode::NOT_FOUND
        );
    }

    // Every documented operation exists: without credentials each answers 401, never 404/405.
    let paths = document["paths"].as_object().unwrap();
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let url = app.at(&path.replace("{id}", "1"));
            let method = M::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = reqwest::Client::new()
                .request(method.clone(), url)
                .send()
                .await
                .unwrap();
            assert_eq!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
        }
    }
}

#[tokio::test]
async fn the_web_app_and_the_mcp_server_show_the_same_todos() {
    let app = App::start().await;
    let alice = app.login("alice").await;
    let token = app.stack.mcp_token("alice", ALL).await.unwrap();
    let token = token.expose_secret();

    // The web owner (ID token `sub`) is the MCP owner (access token `uid`, else `sub`).
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let session = alice.session().await;
    assert_eq!(claims["uid"], session["user"]["id"]);

    alice
        .submit(
            "/todos",
            &[("csrf_token", &alice.csrf), ("title", "from the web")],
        )
        .await;
    let mcp = Mcp::attach(&app.stack.mcp_url);
    let listed = mcp.call(token, "get-todos", json!({})).await;
    assert_eq!(listed.structured()["todos"][0]["title"], "from the web");

    let created = mcp
        .call(token, "create-todo", json!({"title": "from the agent"}))
        .await;
    let id = created.structured()["todo"]["id"].as_i64().unwrap();
    assert!(alice.page().await.contains("from the agent"));
    alice
        .submit(
            &format!("/todos/{id}/complete"),
            &[("csrf_token", &alice.csrf)],
        )
        .await;
    let done = mcp
        .call(token, "get-todos", json!({"completed": true}))
        .await;
    assert_eq!(done.structured()["todos"][0]["title"], "from the agent");
}

#[tokio::test]
async fn users_cannot_see_or_change_each_others_todos() {
    let app = App::start().await;
    let alice = app.login("alice").await;
    let bob = app.login("bob").await;
    alice
        .submit(
            "/todos",
            &[("csrf_token", &alice.csrf), ("title", "alice's secret")],
        )
        .await;
    let alice_owner = alice.owner().await;
    let id = app
        .stack
        .store
        .list(&alice_owner, &Filter::default())
        .await
        .unwrap()[0]
        .id;
    assert_ne!(alice_owner, bob.owner().await);
    assert!(!bob.page().await.contains("alice's secret"));

    // Bob's form on Alice's id: 404, exactly like a missing id; nothing changes.
    let foreign = bob
        .submit(&format!("/todos/{id}/delete"), &[("csrf_token", &bob.csrf)])
        .await;
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    // Alice's CSRF token is no good with Bob's session.
    let crossed = bob
        .submit(
            &format!("/todos/{id}/complete"),
            &[("csrf_token", &alice.csrf)],
        )
        .await;
    assert_eq!(crossed.status(), StatusCode::FORBIDDEN);

    let token = app.stack.mcp_token("bob", ALL).await.unwrap();
    let token = token.expose_secret();
    let (foreign_status, _, foreign) = call(
        reqwest::Method::GET,
        &app.at(&format!("/todos/{id}")),
        token,
        None,
    )
    .await;
    let (missing_status, _, missing) =
        call(reqwest::Method::GET, &app.at("/todos/987654"), token, None).await;
    assert_eq!(
        (foreign_status, missing_status),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    assert_eq!(foreign["error"], missing["error"]);
    let patch = json!({"title": "mine now"});
    let (status, _, _) = call(
        reqwest::Method::PATCH,
        &app.at(&format!("/todos/{id}")),
        token,
        Some(patch),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, _, bobs) = call(reqwest::Method::GET, &app.at("/todos"), token, None).await;
    assert_eq!(bobs, json!([]));
    let todo = app.stack.store.get(&alice_owner, id).await.unwrap();
    assert_eq!(
        (todo.title.as_str(), todo.completed),
        ("alice's secret", false)
    );
}

#[tokio::test]
async fn invalid_titles_get_a_clear_400_and_change_nothing() {
    let app = App::start().await;
    let alice = app.login("alice").await;
    let owner = alice.owner().await;

    let blank = alice
        .submit("/todos", &[("csrf_token", &alice.csrf), ("title", "   ")])
        .await;
    assert_eq!(blank.status(), StatusCode::BAD_REQUEST);
    let page = blank.text().await.unwrap();
    assert!(page.contains("title must not be empty"), "{page}");
    assert!(page.contains("href=\"/\""), "a way back");

    let token = app.stack.mcp_token("alice", ALL).await.unwrap();
    let token = token.expose_secret();
    for (title, message) in [
        (
            json!("x".repeat(501)),
            "title is 501 characters; the limit is 500",
        ),
        (
            json!("tab\tok but bell\u{7} is not"),
            "must not contain control characters",
        ),
        (json!(""), "must not be empty"),
        (json!(42), "invalid request body"),
    ] {
        let (status, _, body) = call(
            reqwest::Method::POST,
            &app.at("/todos"),
            token,
            Some(json!({"title": title})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "invalid_request");
        assert!(
            body["message"].as_str().unwrap().contains(message),
            "{body}"
        );
    }
    assert!(
        app.stack
            .store
            .list(&owner, &Filter::default())
            .await
            .unwrap()
            .is_empty()
    );
}
