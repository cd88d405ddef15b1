//! The stand-ins of the brokered-consent tests ([`super::brokered`]): an org authorization
//! server answering the `oauth-sts` exchange (`interaction_required` until the test consents for
//! a person, then `200`; `access_denied` once denied), GitHub's REST API and its MCP server
//! (`get_me` only, whatever GitHub declares), each recording what it was asked, and agent0
//! configured to use them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent0::config::{AuthStrategy, Brokered, GithubApplication};
use agent0::connections::ConnectionKind;
use agent0::mcp::McpServer;
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::faults::Scripted;
use super::harness::{AgentStack, Person, stand_in};

pub(super) const RESOURCE: &str = "orn:okta:idp:00o1:client-auth-settings:cas1";
pub(super) const RESOURCE_MCP: &str = "https://api.githubcopilot.com/mcp";
pub(super) const PR: &str = "https://github.com/acme/widgets/pull/1";

#[derive(Default)]
pub(super) struct World {
    /// Every exchange: (person, the form).
    pub(super) exchanges: Vec<(String, HashMap<String, String>)>,
    pub(super) consented: HashSet<String>,
    pub(super) denied: HashSet<String>,
    /// As idp0 (the draft's polling semantics): once a link is out for (person, resource),
    /// later exchanges answer `interaction_pending` without it until consent.
    pub(super) pending_after_link: bool,
    /// The (person, resource) pairs a link was handed out for.
    pub(super) links: HashSet<(String, String)>,
    /// ISV token → person.
    pub(super) tokens: HashMap<String, String>,
    pub(super) issued: usize,
    /// Every GitHub request: (method and path, person or "?").
    pub(super) github: Vec<(String, String)>,
    /// (person, body) of each comment created.
    pub(super) comments: Vec<(String, String)>,
    /// As idp0's vault: person → the ISV token the exchange hands back while it has not expired
    /// there, even after GitHub stopped accepting it, until it is revoked at the org AS.
    pub(super) vault: HashMap<String, String>,
    /// Every request to the org AS's revocation endpoint: (exchanges made before it, the form).
    pub(super) revocations: Vec<(usize, HashMap<String, String>)>,
    /// The org AS's base URL.
    pub(super) org: String,
}

/// The stand-in org AS and GitHub.
#[derive(Clone, Default)]
pub(super) struct StandIn(Arc<Mutex<World>>);

impl StandIn {
    pub(super) fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.0.lock().unwrap()
    }

    pub(super) fn exchanges_for(&self, person: &str) -> usize {
        self.world()
            .exchanges
            .iter()
            .filter(|(p, _)| p == person)
            .count()
    }

    /// Revokes every token at "GitHub" (it answers 401 to them).
    pub(super) fn revoke_all(&self) {
        self.world().tokens.clear();
    }

    /// `person` revokes the app at GitHub, as the real IdP sees it: GitHub refuses their
    /// token, the exchange hands the same token back (still valid by its expiry) until it is
    /// revoked with `token_type_hint=oauth_sts`, and then the refused refresh asks for consent.
    /// Returns the token.
    pub(super) fn revoke_at_github(&self, person: &str) -> String {
        let mut world = self.world();
        let token = world
            .tokens
            .iter()
            .find(|(_, p)| *p == person)
            .map(|(t, _)| t.clone())
            .expect("a token of theirs");
        world.tokens.clear();
        world.vault.insert(person.to_owned(), token.clone());
        world.consented.remove(person);
        token
    }

    pub(super) async fn wait_for_exchange(&self, person: &str) {
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
pub(super) fn subject_of(jwt: &str) -> String {
    let claims = claims_of(jwt);
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

/// The claims of an unverified JWT.
pub(super) fn claims_of(jwt: &str) -> Value {
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
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

pub(super) fn oauth_error(body: Value) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("cache-control", "no-store")],
        Json(body),
    )
        .into_response()
}

pub(super) async fn post_token(
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
    if let Some(token) = world.vault.get(&person) {
        return issued(token);
    }
    if !world.consented.contains(&person) {
        let link = (person.clone(), form["resource"].clone());
        if world.pending_after_link && !world.links.insert(link) {
            return oauth_error(json!({"error": "interaction_pending"}));
        }
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
    issued(&token)
}

fn issued(token: &str) -> Response {
    Json(json!({
        "access_token": token,
        "issued_token_type": "urn:okta:params:oauth:token-type:oauth-sts",
        "token_type": "Bearer",
        "expires_in": 3600,
        "scope": "repo read:user",
    }))
    .into_response()
}

/// The org AS's revocation endpoint (RFC 7009, OKTA.md §1): always 200; a brokered token
/// (`token_type_hint=oauth_sts`) leaves the vault.
pub(super) async fn post_revoke(
    State(s): State<StandIn>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut world = s.world();
    let made = world.exchanges.len();
    world.revocations.push((made, form.clone()));
    if form.get("token_type_hint").map(String::as_str) == Some("oauth_sts") {
        let token = form.get("token").cloned().unwrap_or_default();
        world.vault.retain(|_, t| *t != token);
    }
    (StatusCode::OK, [("cache-control", "no-store")]).into_response()
}

/// The person behind the request's bearer token, after checking GitHub's headers.
pub(super) fn github_person(
    s: &StandIn,
    headers: &HeaderMap,
    what: String,
) -> Result<String, Box<Response>> {
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

pub(super) fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"})),
    )
        .into_response()
}

pub(super) fn pull(number: u64) -> Value {
    json!({"number": number, "title": "Add widgets", "state": "open", "user": {"login": "octo"},
           "html_url": format!("https://github.com/acme/widgets/pull/{number}"), "body": "Widgets!",
           "draft": false, "merged": false, "created_at": "2026-12-01T00:00:00Z"})
}

pub(super) async fn post_comment(
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

pub(super) async fn get_pull(
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

pub(super) async fn get_pulls(
    State(s): State<StandIn>,
    Path((owner, repo)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = github_person(&s, &headers, format!("GET {owner}/{repo} pulls")) {
        return *r;
    }
    Json(json!([pull(1), pull(2)])).into_response()
}

pub(super) async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

pub(super) struct Setup {
    pub(super) stack: AgentStack,
    pub(super) model: Arc<Scripted>,
    pub(super) standin: StandIn,
}

pub(super) async fn start(disabled: &[ConnectionKind]) -> Setup {
    start_with(disabled, Mcp::Absent).await
}

/// Whether the GitHub MCP server (auth `oauth-sts`) at the stand-in's `/mcp` is configured,
/// and with which declared tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mcp {
    /// Not configured.
    Absent,
    /// As `GITHUB_MCP_SERVER_URL` configures it: declaring GitHub's own tools.
    Declared,
    /// As a `[[mcp_servers]]` entry with no `tools_file`: listing needs the person's token.
    Undeclared,
}

/// With `mcp`, also the GitHub MCP server.
pub(super) async fn start_with(disabled: &[ConnectionKind], mcp: Mcp) -> Setup {
    let model = Arc::new(Scripted::default());
    let (stack, standin) = start_full(StandIn::default(), disabled, mcp, model.clone()).await;
    Setup {
        stack,
        model,
        standin,
    }
}

/// With the GitHub MCP server and `model`.
pub(super) async fn start_with_model(
    standin: StandIn,
    model: Arc<dyn agent0::llm::Model>,
) -> Setup {
    let (stack, standin) = start_full(standin, &[], Mcp::Declared, model).await;
    Setup {
        stack,
        model: Arc::new(Scripted::default()),
        standin,
    }
}

pub(super) async fn start_full(
    standin: StandIn,
    disabled: &[ConnectionKind],
    mcp: Mcp,
    model: Arc<dyn agent0::llm::Model>,
) -> (AgentStack, StandIn) {
    let org = serve(
        Router::new()
            .route("/oauth2/v1/token", post(post_token))
            .route("/oauth2/v1/revoke", post(post_revoke))
            .with_state(standin.clone()),
    )
    .await;
    standin.world().org = org.clone();
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
        if mcp != Mcp::Absent {
            let declared_tools =
                (mcp == Mcp::Declared).then(|| agent0::config::github_mcp_tools().unwrap());
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
                declared_tools,
            });
        }
    })
    .await;
    (stack, standin)
}

pub(super) fn comment_call(
    url: &str,
    body: &str,
) -> Result<agent0::llm::ModelReply, agent0::llm::LlmError> {
    Scripted::tool("github_comment_on_pr", json!({"pr_url": url, "body": body}))
}

pub(super) fn events_of<'a>(events: &'a [(String, Value)], name: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|(e, _)| e == name)
        .map(|(_, d)| d)
        .collect()
}

/// Streams `message` in the background; returns the events once the turn ends.
pub(super) fn stream(
    person: &Arc<Person>,
    message: &'static str,
) -> tokio::task::JoinHandle<Vec<(String, Value)>> {
    let person = person.clone();
    tokio::spawn(async move { person.chat_stream(message).await })
}

/// GitHub's MCP server, as far as `get_me` (Streamable HTTP, JSON answers, bearer tokens).
pub(super) async fn post_mcp(
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
