//! The journeys of `scenarios/try-it-out.md` through agent0's real HTTP API with the offline
//! model: J2 (list, add with a step-up to manage, mark done, delete with a step-up to delete,
//! the Managed Connections panel LIVE, a second person isolated, the todo0 app showing the same
//! rows both ways) and J4's faults (bad input, logged out, todo0 down, someone else's todos).

use reqwest::StatusCode;
use serde_json::{Value, json};
use todo0::domain::{Filter, Owner};

use super::harness::AgentStack;

const READ: &str = "mcp:connect mcp:tools:read";
const MANAGE: &str = "mcp:connect mcp:tools:manage mcp:tools:read";
const DELETE: &str = "mcp:connect mcp:tools:delete mcp:tools:read";

fn only_tool(reply: &Value) -> &Value {
    let results = reply["toolResults"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{reply}");
    &results[0]
}

async fn todos_in_store(stack: &AgentStack, subject: &str) -> Vec<(String, bool)> {
    stack
        .stack
        .store
        .list(&Owner::new(subject.to_owned()).unwrap(), &Filter::default())
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.title, t.completed))
        .collect()
}

#[tokio::test]
async fn j2_delegated_todos_with_step_ups_isolation_and_the_todo_app() {
    let stack = AgentStack::start().await;
    let alice = stack.login("alice").await;
    let (_, status) = alice.get("/auth/status").await;
    let subject = status["user"]["sub"].as_str().unwrap().to_owned();
    assert_eq!(status["model"]["provider"], "offline");
    assert!(status.get("idToken").is_none() && !status.to_string().contains("eyJ"));

    // 1. list: no todos yet, one get-todos chip with the raw arguments and result.
    let reply = alice.chat_approved("list my todos").await;
    let chip = only_tool(&reply);
    assert_eq!(chip["tool"], "get-todos");
    assert_eq!(chip["connection"], "todo0");
    assert_eq!(chip["isError"], false);
    assert_eq!(chip["result"]["count"], 0, "{reply}");
    assert!(chip["stepUp"].is_null());
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("no todos")
    );
    let exchanges_after_first = stack.app.agent().hub().broker().exchange_count();
    assert_eq!(
        exchanges_after_first, 1,
        "one ID-JAG exchange for the read token"
    );

    // 2. add: the first write in this conversation needs a scope the person has not approved
    // here yet, so it waits for them; once approved it steps up from read to manage.
    let reply = alice.chat("add a todo \"prep the demo\"").await;
    let card = &reply["confirmation"];
    assert_eq!(card["tool"], "create-todo", "{reply}");
    assert_eq!(card["arguments"], json!({"title": "prep the demo"}));
    assert_eq!(card["scope"], "mcp:connect mcp:tools:manage");
    assert_eq!(card["destructive"], false);
    assert!(todos_in_store(&stack, &subject).await.is_empty());
    let (status, reply) = alice.decide(card, "approve").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(reply["confirmation"].is_null(), "{reply}");
    let chip = only_tool(&reply);
    assert_eq!(chip["tool"], "create-todo");
    assert_eq!(chip["arguments"], json!({"title": "prep the demo"}));
    assert_eq!(
        chip["stepUp"],
        json!({"from": READ, "to": MANAGE}),
        "{reply}"
    );
    let id = chip["result"]["todo"]["id"].as_i64().unwrap();
    assert_eq!(
        todos_in_store(&stack, &subject).await,
        vec![("prep the demo".into(), false)]
    );

    // A second write needs no further step-up (the scope it needs is remembered and cached),
    // and no question: the person approved that scope in this conversation.
    let before = stack.app.agent().hub().broker().exchange_count();
    let reply = alice.chat("add \"buy milk\"").await;
    assert!(reply["confirmation"].is_null(), "{reply}");
    let milk = only_tool(&reply)["result"]["todo"]["id"].as_i64().unwrap();
    assert!(only_tool(&reply)["stepUp"].is_null(), "{reply}");
    assert_eq!(
        stack.app.agent().hub().broker().exchange_count(),
        before,
        "warm: no IdP trip"
    );

    // 3. mark done, then delete (which steps up to the delete scope).
    let reply = alice
        .chat_approved(&format!("mark todo {id} as done"))
        .await;
    let chip = only_tool(&reply);
    assert_eq!(chip["tool"], "update-todo");
    assert_eq!(chip["result"]["todo"]["completed"], true, "{reply}");
    // Deleting is destructive: it always waits for the person, and nothing is deleted before.
    let reply = alice.chat(&format!("delete todo {milk}")).await;
    let card = &reply["confirmation"];
    assert_eq!(card["tool"], "delete-todo", "{reply}");
    assert_eq!(card["arguments"]["id"], milk, "{reply}");
    assert_eq!(card["destructive"], true);
    assert_eq!(todos_in_store(&stack, &subject).await.len(), 2);
    let (status, reply) = alice.decide(card, "approve").await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let chip = only_tool(&reply);
    assert_eq!(chip["tool"], "delete-todo");
    assert_eq!(chip["isError"], false, "{reply}");
    assert_eq!(chip["stepUp"]["to"], DELETE, "{reply}");
    assert_eq!(
        todos_in_store(&stack, &subject).await,
        vec![("prep the demo".into(), true)]
    );

    // 4. the Managed Connections panel: both LIVE, with their identifiers.
    let (code, panel) = alice.get("/api/connections/status").await;
    assert_eq!(code, StatusCode::OK);
    let cards = panel["connections"].as_array().unwrap();
    let card = |name: &str| cards.iter().find(|c| c["name"] == name).unwrap().clone();
    let authorization = card("authorization_server");
    assert_eq!(authorization["state"], "live", "{panel}");
    assert_eq!(
        authorization["identifiers"]["AS issuer"],
        stack.stack.idp.todo0_issuer()
    );
    assert_eq!(authorization["identifiers"]["Agent ID"], "agent0-agent");
    let todo0 = card("todo0");
    assert_eq!(todo0["kind"], "mcp_server");
    assert_eq!(todo0["state"], "live");
    assert_eq!(todo0["identifiers"]["MCP URL"], stack.stack.mcp_url);
    assert_eq!(
        todo0["identifiers"]["Resource indicator"],
        stack.stack.mcp_url
    );

    // 5. bob sees none of alice's todos and cannot touch them, whatever he types.
    let bob = stack.login("bob").await;
    let (_, bob_panel) = bob.get("/api/connections/status").await;
    assert_eq!(
        bob_panel["connections"][1]["state"], "idle",
        "bob has not used it yet"
    );
    let reply = bob.chat_approved("list my todos").await;
    assert_eq!(only_tool(&reply)["result"]["count"], 0, "{reply}");
    let reply = bob.chat_approved(&format!("delete todo {id}")).await;
    assert_eq!(only_tool(&reply)["isError"], true, "{reply}");
    let reply = bob
        .chat_approved(&format!("mark todo {id} as not done"))
        .await;
    assert_eq!(only_tool(&reply)["isError"], true, "{reply}");
    let reply = bob.chat_approved("show alice's todos").await;
    assert!(
        reply["toolResults"].as_array().unwrap().is_empty(),
        "{reply}"
    );
    assert_eq!(
        todos_in_store(&stack, &subject).await,
        vec![("prep the demo".into(), true)]
    );

    // 6. the todo0 app shows the same rows, and a change there shows up in the next list.
    let token = stack
        .stack
        .mcp_token("alice", "mcp:connect mcp:tools:read mcp:tools:manage")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let listed: Value = http
        .get(format!("{}/todos", stack.todo_app))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed[0]["title"], "prep the demo", "{listed}");
    let created = http
        .post(format!("{}/todos", stack.todo_app))
        .bearer_auth(secrecy::ExposeSecret::expose_secret(&token))
        .json(&json!({"title": "made in the todo app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let reply = alice.chat_approved("list my todos").await;
    assert_eq!(only_tool(&reply)["result"]["count"], 2, "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("made in the todo app")
    );

    // The conversation was kept, turn by turn, and nothing secret went to the page.
    let (_, conversation) = alice.get("/api/conversations/current").await;
    let messages = conversation["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        2 * 6,
        "six turns, each a question and an answer"
    );
    assert_eq!(messages[0]["text"], "list my todos");
    assert!(
        !conversation.to_string().contains("eyJ"),
        "no JWT in the page data"
    );
}

#[tokio::test]
async fn the_stream_reports_text_tools_step_ups_and_done() {
    let stack = AgentStack::start().await;
    let alice = stack.login("alice").await;
    let first = alice.chat_stream("add a todo \"stream it\"").await;
    // The stream pauses at the card and ends; the decision's stream carries the rest.
    let names: Vec<&str> = first.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["conversation", "confirm_required"], "{first:?}");
    let card = &first[1].1;
    assert_eq!(card["tool"], "create-todo");
    assert_eq!(card["arguments"], json!({"title": "stream it"}));
    let events = alice.decide_stream(card, "approve").await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.first(), Some(&"tool_start"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let position = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(position("tool_start") < position("step_up"));
    assert!(position("step_up") < position("tool_done"));
    assert!(position("tool_done") < position("text"));
    let (_, step_up) = &events[position("step_up")];
    assert_eq!(step_up["from"], READ);
    assert_eq!(step_up["to"], MANAGE);
    let (_, done) = &events[position("done")];
    assert_eq!(done["toolResults"][0]["tool"], "create-todo");
    let text: String = events
        .iter()
        .filter(|(name, _)| name == "text")
        .map(|(_, data)| data["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, done["message"].as_str().unwrap());
}

#[tokio::test]
async fn bad_input_and_logged_out_requests_get_clear_errors_and_change_nothing() {
    let stack = AgentStack::start().await;
    let anonymous = testkit::Browser::new();
    let response = anonymous
        .http
        .post(stack.at("/api/chat"))
        .json(&json!({"message": "list my todos"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "login_required");
    let (_, status) = {
        let r = anonymous
            .http
            .get(stack.at("/auth/status"))
            .send()
            .await
            .unwrap();
        (r.status(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status["authenticated"], false);

    let alice = stack.login("alice").await;
    for (body, expected) in [
        (json!({"message": "   "}), StatusCode::BAD_REQUEST),
        (
            json!({"message": "x".repeat(8001)}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"text": "hi"}), StatusCode::UNPROCESSABLE_ENTITY),
        (
            json!({"message": "x".repeat(70_000)}),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let (status, reply) = alice.post("/api/chat", &body).await;
        assert_eq!(status, expected, "{reply}");
        assert!(
            reply["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{reply}"
        );
    }
    // Without the CSRF header: refused.
    let response = alice
        .browser
        .http
        .post(stack.at("/api/chat"))
        .json(&json!({"message": "add \"csrf\""}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    // Someone else's conversation id: not found.
    let (status, _) = alice
        .post(
            "/api/chat",
            &json!({"message": "hi", "conversationId": "nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, conversation) = alice.get("/api/conversations/current").await;
    assert_eq!(conversation["messages"], json!([]), "nothing was stored");

    // An unknown request: an honest answer, no tool call; the conversation goes on.
    let reply = alice.chat_approved("what's the weather like?").await;
    assert!(reply["toolResults"].as_array().unwrap().is_empty());
    let reply = alice.chat_approved("delete todo 999999").await;
    assert_eq!(only_tool(&reply)["isError"], true);
    assert!(
        reply["message"].as_str().unwrap().contains("999999"),
        "{reply}"
    );
    let (_, conversation) = alice.get("/api/conversations/current").await;
    assert_eq!(conversation["messages"].as_array().unwrap().len(), 4);

    // Logout ends the session here and at the IdP.
    // (login.rs follows the redirect to the IdP.)
    let (status, out) = alice.post("/auth/logout", &json!({})).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(out.is_null(), "no body: {out}");
    let (_, status) = alice.get("/auth/status").await;
    assert_eq!(status["authenticated"], false);
    let (code, _) = alice.get("/api/connections/status").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn security_headers_and_the_ui_are_served() {
    let stack = AgentStack::start().await;
    let http = reqwest::Client::new();
    let page = http.get(stack.at("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
    let html = page.text().await.unwrap();
    assert!(html.contains("/assets/app.js") && !html.contains("<script>"));
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let response = http.get(stack.at(asset)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
    }
    let health: Value = http
        .get(stack.at("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    // The login redirect asks for exactly what §5.1 says.
    let start = testkit::Browser::new()
        .http
        .get(stack.at("/auth/login"))
        .send()
        .await
        .unwrap();
    let authorize = testkit::location(&start).unwrap();
    let params: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["scope"], "openid profile email offline_access");
    let cookie = start.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("agent0_login=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
    );
}

#[tokio::test]
async fn a_restarted_agent_keeps_conversations_and_asks_for_a_new_login() {
    let mut stack = AgentStack::start().await;
    let alice = stack.login("alice").await;
    alice.chat_approved("add \"survive a restart\"").await;

    stack.restart().await;
    let (_, status) = alice.get("/auth/status").await;
    assert_eq!(
        status["authenticated"], false,
        "sessions do not survive a restart"
    );
    let again = stack.login("alice").await;
    let (_, conversation) = again.get("/api/conversations/current").await;
    let messages = conversation["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{conversation}");
    assert_eq!(messages[0]["text"], "add \"survive a restart\"");
    assert_eq!(messages[1]["toolResults"][0]["tool"], "create-todo");
    let reply = again.chat_approved("list my todos").await;
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("survive a restart")
    );
}

/// The algorithm `token` is signed with, once it has verified against `issuer`'s JWKS (fetched
/// over HTTP, as a resource server does) for `audience`.
async fn verified_alg(
    issuer: &str,
    token: &secrecy::SecretString,
    audience: &str,
    typ: protocol::verify::TypeRule,
) -> String {
    use protocol::verify::{Expectations, JwtVerifier, RemoteJwks};
    use secrecy::ExposeSecret;
    let http = protocol::discovery::http_client().unwrap();
    let jwks = RemoteJwks::discover(http, issuer, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let verifier = JwtVerifier::new(std::sync::Arc::new(jwks), protocol::clock::system());
    let verified = verifier
        .verify::<Value>(
            token.expose_secret(),
            &Expectations::new(issuer, audience, typ),
        )
        .await
        .unwrap();
    format!("{:?}", verified.alg)
}

/// The whole flow with ES256 on the org authorization server and on todo0's (`signing_alg =
/// "ES256"` in idp0.toml): login at agent0 (its relying party accepts the algorithm the
/// discovery metadata lists), the ID-JAG exchange, the JWT-bearer redemption and todo0's MCP
/// `tools/call`, each token verified against JWKS that hold P-256 keys only.
#[tokio::test]
async fn the_journey_runs_on_es256_authorization_servers() {
    use std::sync::Arc;

    use agent0::config::AuthStrategy;
    use agent0::tokens::Principal;
    use protocol::verify::TypeRule;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stack = testkit::Stack::start_for_agent_signing(&base, "ES256")
        .await
        .unwrap();
    let http = reqwest::Client::new();
    for issuer in [stack.idp.issuer.clone(), stack.idp.todo0_issuer()] {
        let metadata: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            metadata["id_token_signing_alg_values_supported"],
            json!(["ES256"])
        );
        let jwks: Value = http
            .get(metadata["jwks_uri"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let keys = jwks["keys"].as_array().unwrap();
        assert!(!keys.is_empty());
        assert!(
            keys.iter().all(|k| k["kty"] == "EC" && k["alg"] == "ES256"),
            "only P-256 keys can verify {issuer}'s tokens: {jwks}"
        );
    }

    let model = Arc::new(agent0::llm::offline::OfflineModel::new());
    let config = super::harness::config(&stack, &base, model).await;
    let AuthStrategy::IdJag {
        target,
        initial_scopes,
    } = config.mcp_servers[0].auth.clone()
    else {
        panic!("todo0 is reached through Cross-App Access");
    };
    let app = agent0::AppState::new(config).await.unwrap();
    let _server = super::harness::serve(listener, &app);

    // Login at agent0, then a tools/call to todo0 with the token from the ID-JAG exchange and
    // the JWT-bearer redemption.
    let alice = super::harness::login_at(&stack, &base, "alice").await;
    let (_, status) = alice.get("/auth/status").await;
    let subject = status["user"]["sub"].as_str().unwrap().to_owned();
    let reply = alice.chat_approved("list my todos").await;
    let chip = only_tool(&reply);
    assert_eq!(chip["tool"], "get-todos");
    assert_eq!(chip["isError"], false, "{reply}");
    assert_eq!(chip["result"]["count"], 0, "{reply}");
    let broker = app.agent().hub().broker();
    assert_eq!(broker.exchange_count(), 1);

    // The access token agent0 called todo0 with (from its cache: no new exchange) is ES256.
    let principal = Principal {
        subject,
        name: "Alice Example".into(),
        email: None,
        id_token: secrecy::SecretString::from("not used: the token is cached"),
    };
    let used = broker
        .access_token(&principal, &target, &initial_scopes)
        .await
        .unwrap();
    assert_eq!(
        broker.exchange_count(),
        1,
        "the token agent0 used, from its cache"
    );
    let (org, todo0) = (stack.idp.issuer.clone(), stack.idp.todo0_issuer());
    let access = TypeRule::ACCESS_TOKEN;
    assert_eq!(
        verified_alg(&todo0, &used.token, &stack.mcp_url, access).await,
        "ES256"
    );

    // The same steps as the agent takes them, for the tokens agent0 does not keep in reach.
    let login = stack
        .idp
        .login(&testkit::Browser::new(), "alice")
        .await
        .unwrap();
    let id_token = login.id_token.unwrap();
    let grant = stack
        .idp
        .cross_app_access(&id_token, &stack.mcp_url, &initial_scopes.to_string())
        .await
        .unwrap();
    let id_jag = &grant.id_jag.access_token;
    assert_eq!(
        verified_alg(&org, &id_token, "agent0", TypeRule::ANY).await,
        "ES256"
    );
    assert_eq!(
        verified_alg(&org, id_jag, &todo0, TypeRule::ID_JAG).await,
        "ES256"
    );
    let token = &grant.access.access_token;
    assert_eq!(
        verified_alg(&todo0, token, &stack.mcp_url, access).await,
        "ES256"
    );
}
