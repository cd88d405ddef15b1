//! The REST API: endpoints, GitHub's headers and error bodies, the budget, and seeding.

use super::harness::*;

async fn get(sandbox: &Sandbox, token: &str, path: &str) -> reqwest::Response {
    sandbox
        .api()
        .get(sandbox.url(&format!("/api/v3{path}")))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/vnd.github+json")
        .header("x-github-api-version", "2022-11-28")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn pull_requests_and_comments_in_githubs_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let tokens = sandbox
        .tokens_for("alice", ALICE_PASSWORD, "repo read:user")
        .await;
    let token = tokens["access_token"].as_str().unwrap();

    let list = get(&sandbox, token, "/repos/acme/widgets/pulls?state=open").await;
    assert_eq!(list.status(), 200);
    for header in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "x-ratelimit-used",
        "x-ratelimit-resource",
        "x-github-request-id",
        "x-github-api-version-selected",
    ] {
        assert!(list.headers().contains_key(header), "{header}");
    }
    assert_eq!(list.headers()["x-ratelimit-limit"], "5000");
    assert_eq!(list.headers()["x-ratelimit-remaining"], "4999");
    assert_eq!(list.headers()["x-oauth-scopes"], "repo, read:user");
    let pulls: Vec<serde_json::Value> = list.json().await.unwrap();
    let numbers: Vec<i64> = pulls
        .iter()
        .map(|p| p["number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [2, 1], "open ones, newest first");
    let all: Vec<serde_json::Value> = get(
        &sandbox,
        token,
        "/repos/acme/widgets/pulls?state=all&direction=asc",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(all.len(), 3);

    let pr: serde_json::Value = get(&sandbox, token, "/repos/acme/widgets/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pr["number"], 1);
    assert_eq!(pr["state"], "open");
    assert_eq!(pr["user"]["login"], "mona");
    assert_eq!(pr["html_url"], sandbox.url("/acme/widgets/pull/1"));
    assert_eq!(pr["url"], sandbox.url("/api/v3/repos/acme/widgets/pulls/1"));
    assert_eq!(pr["base"]["repo"]["full_name"], "acme/widgets");
    assert_eq!(pr["merged"], false);
    assert_eq!(pr["comments"], 0);

    let missing = get(&sandbox, token, "/repos/acme/widgets/pulls/999").await;
    assert_eq!(missing.status(), 404);
    let body: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(body["message"], "Not Found");
    assert_eq!(body["status"], "404");
    assert!(
        body["documentation_url"]
            .as_str()
            .unwrap()
            .starts_with("https://docs.github.com/")
    );
    assert_eq!(
        get(&sandbox, token, "/repos/acme/nothing/pulls")
            .await
            .status(),
        404
    );

    let created = sandbox
        .api()
        .post(sandbox.url("/api/v3/repos/acme/widgets/issues/1/comments"))
        .bearer_auth(token)
        .json(&serde_json::json!({"body": "LGTM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let comment: serde_json::Value = created.json().await.unwrap();
    assert_eq!(comment["body"], "LGTM");
    assert_eq!(comment["user"]["login"], "alice");
    let id = comment["id"].as_i64().unwrap();
    assert_eq!(
        comment["html_url"],
        sandbox.url(&format!("/acme/widgets/pull/1#issuecomment-{id}"))
    );
    assert!(comment["created_at"].as_str().unwrap().ends_with('Z'));

    let comments: Vec<serde_json::Value> =
        get(&sandbox, token, "/repos/acme/widgets/issues/1/comments")
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["id"], id);
    let pr: serde_json::Value = get(&sandbox, token, "/repos/acme/widgets/pulls/1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pr["comments"], 1);
    // The comment's html_url is a sandbox page showing it.
    let page = reqwest::get(comment["html_url"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("sandbox")
            && page.contains("LGTM")
            && page.contains("Add widget size validation")
    );

    let too_long = sandbox
        .api()
        .post(sandbox.url("/api/v3/repos/acme/widgets/issues/1/comments"))
        .bearer_auth(token)
        .json(&serde_json::json!({"body": "x".repeat(65_537)}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_long.status(), 422);
    let body: serde_json::Value = too_long.json().await.unwrap();
    assert_eq!(body["message"], "Validation Failed");
    assert_eq!(body["errors"][0]["resource"], "IssueComment");
    assert_eq!(body["status"], "422");
    let on_missing = sandbox
        .api()
        .post(sandbox.url("/api/v3/repos/acme/widgets/issues/999/comments"))
        .bearer_auth(token)
        .json(&serde_json::json!({"body": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(on_missing.status(), 404);
    let comments: Vec<serde_json::Value> =
        get(&sandbox, token, "/repos/acme/widgets/issues/1/comments")
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(comments.len(), 1, "refused comments leave nothing behind");
}

#[tokio::test]
async fn writing_needs_the_repo_scope() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let tokens = sandbox.tokens_for("bob", BOB_PASSWORD, "read:user").await;
    let response = sandbox
        .api()
        .post(sandbox.url("/api/v3/repos/acme/widgets/issues/1/comments"))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .json(&serde_json::json!({"body": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn user_agent_and_credentials_are_required() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start(dir.path()).await;
    let tokens = sandbox.tokens_for("alice", ALICE_PASSWORD, "repo").await;
    let token = tokens["access_token"].as_str().unwrap();
    let no_agent = reqwest::Client::new()
        .get(sandbox.url("/api/v3/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(no_agent.status(), 403);
    assert!(no_agent.text().await.unwrap().contains("User-Agent"));

    let anonymous = sandbox
        .api()
        .get(sandbox.url("/api/v3/user"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous.json::<serde_json::Value>().await.unwrap()["message"],
        "Requires authentication"
    );
    for bad in [
        "ghu_notarealtoken",
        "garbage",
        tokens["refresh_token"].as_str().unwrap(),
    ] {
        let response = get(&sandbox, bad, "/user").await;
        assert_eq!(response.status(), 401, "{bad}");
        assert_eq!(
            response.json::<serde_json::Value>().await.unwrap()["message"],
            "Bad credentials"
        );
    }
    // `token` as the scheme works as on GitHub.
    let with_token_scheme = sandbox
        .api()
        .get(sandbox.url("/api/v3/user"))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_token_scheme.status(), 200);
    assert_eq!(
        with_token_scheme.json::<serde_json::Value>().await.unwrap()["login"],
        "alice"
    );
}

#[tokio::test]
async fn the_hourly_budget_runs_out_with_githubs_headers() {
    let dir = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::start_with(dir.path(), |c| c.rate_limit_per_hour = 3).await;
    let tokens = sandbox.tokens_for("alice", ALICE_PASSWORD, "repo").await;
    let token = tokens["access_token"].as_str().unwrap();
    for remaining in ["2", "1", "0"] {
        let response = get(&sandbox, token, "/user").await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-ratelimit-remaining"], remaining);
    }
    let spent = get(&sandbox, token, "/user").await;
    assert_eq!(spent.status(), 403);
    assert_eq!(spent.headers()["x-ratelimit-remaining"], "0");
    assert_eq!(spent.headers()["x-ratelimit-used"], "3");
    let retry: i64 = spent.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry), "{retry}");
    let body: serde_json::Value = spent.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("API rate limit exceeded")
    );
    // A new hour, a new budget.
    sandbox.clock.advance(3600);
    let renewed = get(&sandbox, token, "/user").await;
    // The access token lives 8 hours: still valid after one.
    assert_eq!(renewed.status(), 200);
    assert_eq!(renewed.headers()["x-ratelimit-remaining"], "2");
}

#[tokio::test]
async fn the_seed_is_there_once_after_two_starts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let _first = Sandbox::start(dir.path()).await;
    }
    let sandbox = Sandbox::start(dir.path()).await;
    let tokens = sandbox.tokens_for("alice", ALICE_PASSWORD, "repo").await;
    let token = tokens["access_token"].as_str().unwrap();
    let all: Vec<serde_json::Value> = get(&sandbox, token, "/repos/acme/widgets/pulls?state=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let gadgets: Vec<serde_json::Value> = get(&sandbox, token, "/repos/acme/gadgets/pulls")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(gadgets.len(), 1);
    let repo: serde_json::Value = get(&sandbox, token, "/repos/acme/widgets")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(repo["full_name"], "acme/widgets");
    assert_eq!(repo["owner"]["type"], "Organization");
    // alice keeps her numeric id across starts.
    let me: serde_json::Value = get(&sandbox, token, "/user").await.json().await.unwrap();
    let account = sandbox
        .github0
        .store()
        .account_by_login("alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(me["id"], account.id);
}
