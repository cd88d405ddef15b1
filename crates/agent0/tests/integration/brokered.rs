//! Brokered consent (issue 8, OKTA.md §1–3) over real HTTP on 127.0.0.1:0: agent0 with idp0 for
//! logins, a stand-in org authorization server answering the `oauth-sts` exchange
//! (`interaction_required` until the test consents for a person, then `200`; `access_denied`
//! once denied) and a stand-in GitHub REST API that records every request. The model is
//! scripted, so each test knows exactly which tool calls are asked for.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent0::config::{Brokered, GithubApplication};
use agent0::connections::ConnectionKind;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use agent0::config::AuthStrategy;
use agent0::mcp::McpServer;

use super::faults::Scripted;
use super::harness::stand_in;
use super::harness::{AgentStack, Person};

const RESOURCE: &str = "orn:okta:idp:00o1:client-auth-settings:cas1";
const RESOURCE_MCP: &str = "https://api.githubcopilot.com/mcp";
const PR: &str = "https://github.com/acme/widgets/pull/1";

#[derive(Default)]
struct World {
    /// Every exchange: (person, the form).
    exchanges: Vec<(String, HashMap<String, String>)>,
    consented: HashSet<String>,
    denied: HashSet<String>,
    /// ISV token → person.
    tokens: HashMap<String, String>,
    issued: usize,
    /// Every GitHub request: (method and path, person or "?").
    github: Vec<(String, String)>,
    /// (person, body) of each comment created.
    comments: Vec<(String, String)>,
}

/// The stand-in org AS and GitHub.
#[derive(Clone, Default)]
struct StandIn(Arc<Mutex<World>>);

impl StandIn {
    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }

    fn exchanges_for(&self, person: &str) -> usize {
        self.world()
            .exchanges
            .iter()
            .filter(|(p, _)| p == person)
            .count()
    }

    /// Revokes every token at "GitHub" (it answers 401 to them).
    fn revoke_all(&self) {
        self.world().tokens.clear();
    }

    async fn wait_for_exchange(&self, person: &str) {
        for _ in 0..200 {
            if self.exchanges_for(person) > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no exchange for {person}");
    }
}

/// The `sub` claim of an unverified JWT (the stand-in only tells people apart).
fn subject_of(jwt: &str) -> String {
    let payload = jwt.split('.').nth(1).unwrap_or_default();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = 0u32;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in payload.bytes() {
        let Some(v) = alphabet.iter().position(|a| *a == c) else {
            continue;
        };
        bits = (bits << 6) | v as u32;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    let claims: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    claims["preferred_username"]
        .as_str()
        .or(claims["email"].as_str())
        .or(claims["sub"].as_str())
        .unwrap_or("?")
        .split('@')
        .next()
        .unwrap_or("?")
        .to_owned()
}

fn oauth_error(body: Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("cache-control", "no-store")],
        Json(body),
    )
        .into_response()
}

async fn post_token(
    State(s): State<StandIn>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let person = subject_of(form.get("subject_token").map_or("", String::as_str));
    let mut world = s.world();
    world.exchanges.push((person.clone(), form.clone()));
    if ![Some(RESOURCE), Some(RESOURCE_MCP)].contains(&form.get("resource").map(String::as_str)) {
        return oauth_error(
            json!({"error": "invalid_target", "error_description": "Resource mismatch"}),
        );
    }
    if world.denied.contains(&person) {
        return oauth_error(json!({"error": "access_denied"}));
    }
    if !world.consented.contains(&person) {
        return oauth_error(json!({
            "error": "interaction_required",
            "error_description": "The user must authenticate with the authorization server for the request to proceed",
            "interaction_uri": format!("https://org.example/sts/interact/{person}"),
            "interval": 1,
            "expires_in": 60,
        }));
    }
    world.issued += 1;
    let token = format!("gho_standin_{person}_{}", world.issued);
    world.tokens.insert(token.clone(), person);
    Json(json!({
        "access_token": token,
        "issued_token_type": "urn:okta:params:oauth:token-type:oauth-sts",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "repo read:user",
    }))
    .into_response()
}

/// The person behind the request's bearer token, after checking GitHub's headers.
fn github_person(s: &StandIn, headers: &HeaderMap, what: String) -> Result<String, Box<Response>> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert_eq!(header("accept"), "application/vnd.github+json");
    assert_eq!(header("x-github-api-version"), "2022-11-28");
    assert!(!header("user-agent").is_empty());
    let token = header("authorization")
        .strip_prefix("Bearer ")
        .unwrap_or("");
    let mut world = s.world();
    let person = world.tokens.get(token).cloned();
    world
        .github
        .push((what, person.clone().unwrap_or("?".into())));
    person.ok_or_else(|| {
        Box::new(
            (
                StatusCode::UNAUTHORIZED,
                Json(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})),
            )
                .into_response(),
        )
    })
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

fn pull(number: u64) -> Value {
    json!({"number": number, "title": "Add widgets", "state": "open", "user": {"login": "octo"},
           "html_url": format!("https://github.com/acme/widgets/pull/{number}"), "body": "Widgets!",
           "draft": false, "merged": false, "created_at": "2026-12-01T00:00:00Z"})
}

async fn post_comment(
    State(s): State<StandIn>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let person = match github_person(&s, &headers, format!("POST {owner}/{repo}#{number}")) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    if (owner.as_str(), repo.as_str(), number) != ("acme", "widgets", 1) {
        return not_found();
    }
    let text = body["body"].as_str().unwrap_or_default().to_owned();
    let mut world = s.world();
    world.comments.push((person.clone(), text.clone()));
    let id = world.comments.len();
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "html_url": format!("https://github.com/acme/widgets/pull/1#issuecomment-{id}"),
                    "body": text, "user": {"login": person}, "created_at": "2026-12-05T00:00:00Z"})),
    )
        .into_response()
}

async fn get_pull(
    State(s): State<StandIn>,
    Path((owner, repo, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = github_person(&s, &headers, format!("GET {owner}/{repo}#{number}")) {
        return *r;
    }
    if (owner.as_str(), repo.as_str(), number) != ("acme", "widgets", 1) {
        return not_found();
    }
    Json(pull(1)).into_response()
}

async fn get_pulls(
    State(s): State<StandIn>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = github_person(&s, &headers, format!("GET {owner}/{repo} pulls")) {
        return *r;
    }
    Json(json!([pull(1), pull(2)])).into_response()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

struct Setup {
    stack: AgentStack,
    model: Arc<Scripted>,
    standin: StandIn,
}

async fn start(disabled: &[ConnectionKind]) -> Setup {
    start_with(disabled, false).await
}

/// With `mcp`, also the GitHub MCP server (auth `oauth-sts`) at the stand-in's `/mcp`.
async fn start_with(disabled: &[ConnectionKind], mcp: bool) -> Setup {
    let model = Arc::new(Scripted::default());
    let (stack, standin) = start_full(StandIn::default(), disabled, mcp, model.clone()).await;
    Setup {
        stack,
        model,
        standin,
    }
}

/// With the GitHub MCP server and `model`.
async fn start_with_model(standin: StandIn, model: Arc<dyn agent0::llm::Model>) -> Setup {
    let (stack, standin) = start_full(standin, &[], true, model).await;
    Setup {
        stack,
        model: Arc::new(Scripted::default()),
        standin,
    }
}

async fn start_full(
    standin: StandIn,
    disabled: &[ConnectionKind],
    mcp: bool,
    model: Arc<dyn agent0::llm::Model>,
) -> (AgentStack, StandIn) {
    let org = serve(
        Router::new()
            .route("/oauth2/v1/token", post(post_token))
            .with_state(standin.clone()),
    )
    .await;
    let github = serve(
        Router::new()
            .route(
                "/repos/{owner}/{repo}/issues/{number}/comments",
                post(post_comment),
            )
            .route("/repos/{owner}/{repo}/pulls/{number}", get(get_pull))
            .route("/repos/{owner}/{repo}/pulls", get(get_pulls))
            .route("/mcp", post(post_mcp).delete(|| async { StatusCode::OK }))
            .with_state(standin.clone()),
    )
    .await;
    let disabled: Vec<ConnectionKind> = disabled.to_vec();
    let stack = AgentStack::start_with(model, move |config| {
        config.brokered = Brokered {
            application: Some(GithubApplication {
                name: "github".into(),
                label: "GitHub (Application)".into(),
                resource: RESOURCE.into(),
                api_url: github.clone(),
                web_url: url::Url::parse("https://github.com").unwrap(),
                okta_id: Some("cas1".into()),
            }),
            token_endpoint: Some(format!("{org}/oauth2/v1/token")),
        };
        config.disabled = disabled.into_iter().collect();
        if mcp {
            config.mcp_servers.push(McpServer {
                name: "github-mcp".into(),
                label: "GitHub MCP Server".into(),
                url: format!("{github}/mcp"),
                auth: AuthStrategy::OauthSts {
                    resource: RESOURCE_MCP.into(),
                    okta_id: Some("ems1".into()),
                },
                auto_approve: Vec::new(),
                in_band_refusals: false,
            });
        }
    })
    .await;
    (stack, standin)
}

fn comment_call(url: &str, body: &str) -> Result<agent0::llm::ModelReply, agent0::llm::LlmError> {
    Scripted::tool("github_comment_on_pr", json!({"pr_url": url, "body": body}))
}

fn events_of<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(e, _)| e == name)
        .map(|(_, d)| d)
        .collect()
}

/// Streams `message` in the background; returns the events once the turn ends.
fn stream(
    person: &Arc<Person>,
    message: &'static str,
) -> tokio::task::JoinHandle<Vec<(String, Value)>> {
    let person = person.clone();
    tokio::spawn(async move { person.chat_stream(message).await })
}

#[tokio::test]
async fn consent_card_then_the_pending_call_resumes_by_itself_once_and_later_calls_need_no_consent()
{
    let logs = super::logs::capture();
    let Setup {
        stack,
        model,
        standin,
    } = start(&[]).await;
    let alice = Arc::new(stack.login("alice").await);
    model.push(comment_call(PR, "LGTM"));
    model.push(Scripted::text("Commented."));
    let turn = stream(
        &alice,
        "comment \"LGTM\" on https://github.com/acme/widgets/pull/1",
    );
    standin.wait_for_exchange("alice").await;
    // Waiting for consent: nothing reached GitHub, the model was asked once.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(standin.world().github.is_empty());
    assert_eq!(model.requests.lock().unwrap().len(), 1);
    standin.world().consented.insert("alice".into());
    let events = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .unwrap()
        .unwrap();

    let cards = events_of(&events, "consent_required");
    assert_eq!(cards.len(), 1, "{events:?}");
    assert_eq!(cards[0]["connection"], "github");
    assert_eq!(
        cards[0]["interactionUri"],
        "https://org.example/sts/interact/alice"
    );
    assert_eq!(cards[0]["waiting"], true);
    let done = events_of(&events, "tool_done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["isError"], false, "{:?}", done[0]);
    assert_eq!(done[0]["result"]["user"], "alice");
    assert!(
        events_of(&events, "done")[0]["message"]
            .as_str()
            .unwrap()
            .contains("Commented.")
    );
    assert_eq!(
        standin.world().comments,
        vec![("alice".to_owned(), "LGTM".to_owned())]
    );
    // The model was asked twice: for the call, then with its result — never the message again.
    let requests = model.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    let person_messages = |msgs: &[agent0::llm::Message]| {
        serde_json::to_string(msgs)
            .unwrap()
            .matches("comment \\\"LGTM\\\"")
            .count()
    };
    assert_eq!(person_messages(&requests[1]), 1);

    // The exchange's wire format.
    let (_, form) = standin.world().exchanges.last().cloned().unwrap();
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(
        form["requested_token_type"],
        "urn:okta:params:oauth:token-type:oauth-sts"
    );
    assert_eq!(
        form["subject_token_type"],
        "urn:ietf:params:oauth:token-type:id_token"
    );
    assert_eq!(form["resource"], RESOURCE);
    assert_eq!(
        form["client_assertion_type"],
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    );
    assert!(form.contains_key("client_assertion"));

    // Again: no consent, no new exchange (cached), one more comment.
    let exchanges = standin.exchanges_for("alice");
    model.push(comment_call(PR, "Still LGTM"));
    model.push(Scripted::text("Done again."));
    let events = alice
        .chat_stream("comment \"Still LGTM\" on https://github.com/acme/widgets/pull/1")
        .await;
    assert!(events_of(&events, "consent_required").is_empty());
    assert_eq!(standin.exchanges_for("alice"), exchanges);
    assert_eq!(standin.world().comments.len(), 2);

    // The panel shows the application LIVE with its identifiers; the sample's endpoints agree.
    let (_, status) = alice.get("/api/connections/status").await;
    let card = status["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "github")
        .unwrap()
        .clone();
    assert_eq!(card["kind"], "application");
    assert_eq!(card["state"], "live", "{card}");
    assert_eq!(card["identifiers"]["Resource indicator"], RESOURCE);
    assert_eq!(card["identifiers"]["Okta id"], "cas1");
    let (code, body) = alice
        .get(&format!("/api/oauth-sts/status?resource={RESOURCE}"))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body,
        json!({"configured": true, "connected": true, "resource": RESOURCE})
    );
    let (_, body) = alice
        .post("/api/oauth-sts/exchange", &json!({"resource": RESOURCE}))
        .await;
    assert_eq!(body, json!({"status": "success"}));

    // No ISV token in any event or answer.
    let seen = format!("{events:?}{status}{body}");
    assert!(!seen.contains("gho_standin"), "{seen}");

    // Logout drops the ISV token: the next exchange is a new one.
    alice.post("/auth/logout", &json!({})).await;
    let alice = stack.login("alice").await;
    let (_, body) = alice
        .get(&format!("/api/oauth-sts/status?resource={RESOURCE}"))
        .await;
    assert_eq!(body["connected"], false, "{body}");

    // No ISV token and no ID token in any log line.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("ISV token obtained by brokered consent"));
    assert!(!text.contains("gho_standin"), "an ISV token was logged");
    for (_, form) in standin.world().exchanges.iter() {
        assert!(
            !text.contains(&form["subject_token"]),
            "an ID token was logged"
        );
    }
}

#[tokio::test]
async fn a_new_message_ends_the_wait_and_nothing_is_posted() {
    let Setup {
        stack,
        model,
        standin,
    } = start(&[]).await;
    let alice = Arc::new(stack.login("alice").await);
    model.push(comment_call(PR, "LGTM"));
    model.push(Scripted::text("should not be asked"));
    let turn = stream(
        &alice,
        "comment \"LGTM\" on https://github.com/acme/widgets/pull/1",
    );
    standin.wait_for_exchange("alice").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(stack.app.agent().consent_waits().len(), 1);
    let (_, current) = alice.get("/api/conversations/current").await;
    let conversation = current["conversationId"].as_str().unwrap().to_owned();
    // The next message in the conversation ends the wait: the first turn stops, then it runs.
    let (code, reply) = alice
        .post(
            "/api/chat",
            &json!({"message": "never mind", "conversationId": conversation}),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{reply}");
    let events = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .unwrap()
        .unwrap();
    let done = events_of(&events, "done");
    let message = done[0]["message"].as_str().unwrap();
    assert!(message.contains("You sent a new message"), "{message}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("should not be asked"),
        "the model was not asked again in the stopped turn: {reply}"
    );
    standin.world().consented.insert("alice".into());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(standin.world().comments.is_empty());
    assert!(stack.app.agent().consent_waits().is_empty());
}

#[tokio::test]
async fn denied_consent_is_a_clear_message_nothing_is_posted_and_bob_never_uses_alices_token() {
    let Setup {
        stack,
        model,
        standin,
    } = start(&[]).await;
    standin.world().consented.insert("alice".into());
    let alice = stack.login("alice").await;
    model.push(comment_call(PR, "from alice"));
    model.push(Scripted::text("ok"));
    alice.chat("comment").await;
    assert_eq!(standin.world().comments.len(), 1);

    let bob = Arc::new(stack.login("bob").await);
    model.push(comment_call(PR, "from bob"));
    model.push(Scripted::text("should not be asked"));
    let turn = stream(
        &bob,
        "comment \"from bob\" on https://github.com/acme/widgets/pull/1",
    );
    standin.wait_for_exchange("bob").await;
    standin.world().denied.insert("bob".into());
    let events = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events_of(&events, "consent_required").len(), 1);
    let done = events_of(&events, "done");
    let message = done[0]["message"].as_str().unwrap();
    assert!(message.contains("Consent was denied"), "{message}");
    assert_eq!(done[0]["toolResults"][0]["isError"], true);
    // Nothing posted for bob; every GitHub request carried its own person's token.
    {
        let world = standin.world();
        assert_eq!(world.comments.len(), 1);
        assert!(
            world.github.iter().all(|(_, p)| p == "alice"),
            "{:?}",
            world.github
        );
    }
    // The model was not asked again after the denial (the script's text is still queued).
    assert_eq!(model.requests.lock().unwrap().len(), 3);
    // The conversation goes on.
    model.push(Scripted::text("Hello again."));
    let reply = bob.chat("hello").await;
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("should not be asked")
    );
}

#[tokio::test]
async fn bad_pr_urls_and_long_bodies_are_refused_before_any_request_404_is_clear_and_401_re_exchanges_once()
 {
    let Setup {
        stack,
        model,
        standin,
    } = start(&[]).await;
    let alice = stack.login("alice").await;
    for (url, body, expected) in [
        (
            "https://evil.example/acme/widgets/pull/1",
            "x".to_owned(),
            "Only pull requests on github.com",
        ),
        (
            "http://169.254.169.254/acme/widgets/pull/1",
            "x".to_owned(),
            "Only pull requests on github.com",
        ),
        (PR, "x".repeat(65_537), "at most 65536"),
    ] {
        model.push(comment_call(url, &body));
        model.push(Scripted::text("ok"));
        let reply = alice.chat("comment").await;
        let chip = &reply["toolResults"][0];
        assert_eq!(chip["isError"], true);
        assert!(
            chip["result"].as_str().unwrap().contains(expected),
            "{chip}"
        );
    }
    assert_eq!(standin.world().exchanges.len(), 0, "not even the exchange");
    assert!(standin.world().github.is_empty());

    standin.world().consented.insert("alice".into());
    model.push(Scripted::tool(
        "github_get_pull_request",
        json!({"owner": "acme", "repo": "widgets", "pull_number": 999}),
    ));
    model.push(Scripted::text("ok"));
    let reply = alice.chat("show me PR 999 in acme/widgets").await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["isError"], true);
    assert!(
        chip["result"]
            .as_str()
            .unwrap()
            .contains("no such pull request"),
        "{chip}"
    );

    model.push(Scripted::tool(
        "github_list_pull_requests",
        json!({"owner": "acme", "repo": "widgets"}),
    ));
    model.push(Scripted::text("ok"));
    let reply = alice.chat("list open pull requests in acme/widgets").await;
    assert_eq!(
        reply["toolResults"][0]["result"]["pull_requests"][1]["number"],
        2
    );

    // GitHub stops accepting the token: it is dropped and exchanged once more.
    let before = standin.exchanges_for("alice");
    standin.revoke_all();
    model.push(Scripted::tool(
        "github_get_pull_request",
        json!({"owner": "acme", "repo": "widgets", "pull_number": 1}),
    ));
    model.push(Scripted::text("ok"));
    let reply = alice.chat("show me PR 1 in acme/widgets").await;
    assert_eq!(reply["toolResults"][0]["isError"], false, "{reply}");
    assert_eq!(reply["toolResults"][0]["result"]["title"], "Add widgets");
    assert_eq!(standin.exchanges_for("alice"), before + 1);
}

#[tokio::test]
async fn the_sample_endpoints_answer_in_its_shapes() {
    let Setup { stack, standin, .. } = start(&[]).await;
    let alice = stack.login("alice").await;
    let (code, body) = alice
        .post("/api/oauth-sts/exchange", &json!({"resource": RESOURCE}))
        .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["status"], "interaction_required");
    assert_eq!(
        body["interaction_uri"],
        "https://org.example/sts/interact/alice"
    );
    assert!(body["error_description"].is_string());
    let (code, body) = alice
        .post(
            "/api/oauth-sts/exchange",
            &json!({"resource": "https://other"}),
        )
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["status"], "error");
    let (_, body) = alice.get("/api/oauth-sts/status").await;
    assert_eq!(
        body,
        json!({"configured": true, "connected": false, "resource": RESOURCE})
    );
    let (_, body) = alice
        .get("/api/oauth-sts/status?resource=https://other")
        .await;
    assert_eq!(body["configured"], false);
    standin.world().denied.insert("alice".into());
    let (_, body) = alice
        .post("/api/oauth-sts/exchange", &json!({"resource": RESOURCE}))
        .await;
    assert_eq!(body["status"], "error");
    assert!(body["error"].as_str().unwrap().contains("denied"), "{body}");
    // Without the CSRF header: refused.
    let response = alice
        .browser
        .http
        .post(format!("{}/api/oauth-sts/exchange", alice.base))
        .json(&json!({"resource": RESOURCE}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn disabled_application_offers_no_github_tools() {
    let Setup {
        stack,
        model,
        standin,
    } = start(&[ConnectionKind::Application]).await;
    let alice = stack.login("alice").await;
    model.push(Scripted::text("ok"));
    alice.chat("hello").await;
    let tools = model.tools.lock().unwrap()[0].clone();
    assert!(tools.iter().all(|t| !t.starts_with("github_")), "{tools:?}");
    let (_, status) = alice.get("/api/connections/status").await;
    let card = status["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "github")
        .unwrap()
        .clone();
    assert_eq!(card["state"], "disabled");
    let (_, body) = alice
        .post("/api/oauth-sts/exchange", &json!({"resource": RESOURCE}))
        .await;
    assert_eq!(body["status"], "error");
    assert!(standin.world().exchanges.is_empty());
}

/// GitHub's MCP server, as far as `get_me` (Streamable HTTP, JSON answers, bearer tokens).
async fn post_mcp(
    State(s): State<StandIn>,
    headers: HeaderMap,
    Json(message): Json<Value>,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let Some(person) = s.world().tokens.get(token).cloned() else {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer error=\"invalid_token\"")],
        )
            .into_response();
    };
    let Some(id) = message.get("id").cloned() else {
        return StatusCode::ACCEPTED.into_response();
    };
    match message["method"].as_str().unwrap_or_default() {
        "initialize" => stand_in::initialized(id, &message, "github-mcp", format!("s-{person}")),
        "tools/list" => stand_in::result(
            id,
            json!({"tools": [{"name": "get_me", "description": "Get my user profile",
                              "inputSchema": {"type": "object"},
                              "annotations": {"readOnlyHint": true}}]}),
        ),
        "tools/call" => {
            s.world().github.push(("MCP get_me".into(), person.clone()));
            stand_in::result(
                id,
                json!({"content": [{"type": "text", "text": json!({"login": person}).to_string()}]}),
            )
        }
        _ => stand_in::method_not_found(id),
    }
}

#[tokio::test]
async fn github_mcp_uses_the_persons_brokered_token_and_waits_for_consent_like_rest() {
    let Setup {
        stack,
        model,
        standin,
    } = start_with(&[], true).await;
    standin.world().consented.insert("alice".into());
    let alice = stack.login("alice").await;
    model.push(Scripted::tool("get_me", json!({})));
    model.push(Scripted::text("ok"));
    let reply = alice.chat("who am I on GitHub?").await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["connection"], "github-mcp", "{reply}");
    assert!(
        chip["result"].as_str().unwrap().contains("\"alice\""),
        "{chip}"
    );
    let (_, status) = alice.get("/api/connections/status").await;
    let card = status["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "github-mcp")
        .unwrap()
        .clone();
    assert_eq!(card["state"], "live", "{card}");
    assert_eq!(card["identifiers"]["Auth"], "oauth-sts");
    assert_eq!(card["identifiers"]["Resource indicator"], RESOURCE_MCP);
    assert_eq!(card["identifiers"]["Okta id"], "ems1");

    // bob has not consented: get_me is still offered (as alice's listing named it), no card
    // at the turn's start; the call asks and waits, then runs with bob's own token.
    let bob = Arc::new(stack.login("bob").await);
    model.push(Scripted::tool("get_me", json!({})));
    model.push(Scripted::text("ok"));
    let turn = stream(&bob, "who am I on GitHub?");
    standin.wait_for_exchange("bob").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    standin.world().consented.insert("bob".into());
    let events = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .unwrap()
        .unwrap();
    let cards = events_of(&events, "consent_required");
    assert_eq!(cards.len(), 1, "{events:?}");
    assert_eq!(cards[0]["connection"], "github-mcp");
    assert_eq!(cards[0]["waiting"], true);
    let done = events_of(&events, "tool_done");
    assert!(
        done[0]["result"].as_str().unwrap().contains("\"bob\""),
        "{:?}",
        done[0]
    );
    assert!(
        model
            .tools
            .lock()
            .unwrap()
            .last()
            .unwrap()
            .contains(&"get_me".to_owned())
    );
    let calls: Vec<(String, String)> = standin.world().github.clone();
    assert_eq!(
        calls,
        vec![
            ("MCP get_me".to_owned(), "alice".to_owned()),
            ("MCP get_me".to_owned(), "bob".to_owned())
        ]
    );
}

#[tokio::test]
async fn the_offline_model_carries_out_j3s_prompts() {
    let standin = StandIn::default();
    standin.world().consented.insert("alice".into());
    let Setup { stack, standin, .. } =
        start_with_model(standin, Arc::new(agent0::llm::offline::OfflineModel::new())).await;
    let alice = stack.login("alice").await;
    let reply = alice
        .chat("comment \"LGTM\" on https://github.com/acme/widgets/pull/1")
        .await;
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .starts_with("Commented on acme/widgets#1"),
        "{reply}"
    );
    assert_eq!(
        standin.world().comments,
        vec![("alice".to_owned(), "LGTM".to_owned())]
    );
    let reply = alice.chat("show me PR 1 in acme/widgets").await;
    assert!(
        reply["message"].as_str().unwrap().contains("Add widgets"),
        "{reply}"
    );
    let reply = alice.chat("list open pull requests in acme/widgets").await;
    assert!(reply["message"].as_str().unwrap().contains("#2"), "{reply}");
    let reply = alice.chat("who am I on GitHub?").await;
    assert!(
        reply["message"].as_str().unwrap().contains("**alice**"),
        "{reply}"
    );
}

#[tokio::test]
async fn concurrent_requests_for_one_persons_isv_token_make_one_exchange() {
    let Setup { stack, standin, .. } = start(&[]).await;
    standin.world().consented.insert("alice".into());
    let alice = Arc::new(stack.login("alice").await);
    let asks: Vec<_> = (0..8)
        .map(|_| {
            let alice = alice.clone();
            tokio::spawn(async move {
                alice
                    .post("/api/oauth-sts/exchange", &json!({"resource": RESOURCE}))
                    .await
            })
        })
        .collect();
    for ask in asks {
        let (_, body) = ask.await.unwrap();
        assert_eq!(body, json!({"status": "success"}));
    }
    assert_eq!(standin.exchanges_for("alice"), 1);
}
