//! The MCP server's behaviour beyond scopes: tool metadata, bad input as tool errors, user
//! isolation, token refusals with RFC 6750 / RFC 9728 challenges, session binding, stateless
//! mode, protected resource metadata, and the real Cross-App Access flow through idp0.

use protocol::claims::{AccessTokenClaims, Audience};
use protocol::keys::{KeyKind, SigningKey};
use rstest::rstest;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::harness::{Backend, ISSUER, Server, call};

const ALL: &str = "mcp:connect mcp:tools:read mcp:tools:manage mcp:tools:delete";

#[tokio::test]
async fn tools_list_shows_every_tool_with_schemas_and_scopes() {
    let server = Server::start(Backend::Sqlite, false).await;
    // tools/list needs only mcp:connect: every tool is listed whatever the token may call.
    let token = server.token("alice", "mcp:connect");
    let session = server.initialize(&token).await;
    let reply = server
        .rpc(
            Some(&token),
            session.as_deref(),
            &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await;
    let tools = reply.json["result"]["tools"].as_array().unwrap().clone();
    let mut names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "create-todo",
            "delete-todo",
            "get-todos",
            "toggle-todo",
            "update-todo"
        ]
    );
    for tool in &tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert_eq!(tool["outputSchema"]["type"], "object", "{tool}");
        assert!(tool["description"].as_str().unwrap().len() > 10);
        let scopes = tool["_meta"]["requiredScopes"].as_array().unwrap();
        assert_eq!(scopes[0], "mcp:connect");
        let name = tool["name"].as_str().unwrap();
        assert_eq!(
            Some(scopes[1].as_str().unwrap()),
            todo0::mcp::ScopePolicy::default()
                .tool_need(name)
                .map(|need| need.preferred())
        );
    }
    let create = tools.iter().find(|t| t["name"] == "create-todo").unwrap();
    assert_eq!(create["inputSchema"]["required"], json!(["title"]));
}

#[rstest]
#[case::missing_argument("create-todo", json!({}), "invalid arguments")]
#[case::wrong_type("toggle-todo", json!({"id": "one"}), "invalid arguments")]
#[case::unknown_argument("create-todo", json!({"title": "x", "priority": 1}), "invalid arguments")]
#[case::empty_title("create-todo", json!({"title": "   "}), "must not be empty")]
#[case::oversized_title("create-todo", json!({"title": "x".repeat(501)}), "the limit is 500")]
#[case::negative_id("delete-todo", json!({"id": -3}), "not found")]
#[case::huge_id("toggle-todo", json!({"id": 9_223_372_036_854_775_807_i64}), "not found")]
#[case::id_beyond_i64("toggle-todo", json!({"id": 18_446_744_073_709_551_615_u64}), "invalid arguments")]
#[case::missing_todo("update-todo", json!({"id": 4242, "title": "x"}), "not found")]
#[case::update_without_changes("update-todo", json!({"id": 1}), "give a new title")]
#[tokio::test]
async fn bad_input_is_a_tool_error_and_changes_nothing(
    #[case] tool: &str,
    #[case] arguments: Value,
    #[case] message: &str,
) {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    server
        .call(&token, "create-todo", json!({"title": "keep me"}))
        .await;
    let reply = server.call(&token, tool, arguments).await;
    assert_eq!(reply.status, 200);
    assert!(reply.is_tool_error(), "{}", reply.text);
    let text = reply.json["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains(message), "{text}");
    let list = server.call(&token, "get-todos", json!({})).await;
    assert_eq!(list.structured()["todos"][0]["title"], "keep me");
    assert_eq!(list.structured()["count"], 1);
}

#[tokio::test]
async fn unknown_tools_and_malformed_json_rpc_are_protocol_errors() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    let session = server.initialize(&token).await;
    let unknown = server
        .rpc(
            Some(&token),
            session.as_deref(),
            &call("drop-everything", json!({})),
        )
        .await;
    assert!(unknown.json["error"]["code"].is_i64(), "{}", unknown.text);
    let malformed = server
        .rpc(
            Some(&token),
            session.as_deref(),
            &json!({"jsonrpc": "2.0", "id": 3}),
        )
        .await;
    assert!(
        malformed.status >= 400 || malformed.json["error"].is_object(),
        "{}",
        malformed.text
    );
}

#[tokio::test]
async fn titles_keep_unicode_and_sql_looking_text_verbatim() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    for title in ["  Café ☕ — 東京  ", "'); DROP TABLE todos; --"] {
        let reply = server
            .call(&token, "create-todo", json!({"title": title}))
            .await;
        assert_eq!(reply.structured()["todo"]["title"], title.trim());
    }
    let search = server
        .call(&token, "get-todos", json!({"search": "café"}))
        .await;
    assert_eq!(
        search.structured()["count"],
        1,
        "search is case-insensitive"
    );
    let search = server
        .call(&token, "get-todos", json!({"search": "DROP"}))
        .await;
    assert_eq!(search.structured()["count"], 1);
}

#[tokio::test]
async fn users_are_isolated_and_a_foreign_id_looks_missing() {
    let server = Server::start(Backend::Sqlite, false).await;
    let alice = server.token("alice", ALL);
    let bob = server.token("bob", ALL);
    let created = server
        .call(&alice, "create-todo", json!({"title": "alice's secret"}))
        .await;
    let id = created.structured()["todo"]["id"].as_i64().unwrap();
    assert_eq!(
        server.call(&bob, "get-todos", json!({})).await.structured()["count"],
        0
    );
    for (tool, args) in [
        ("toggle-todo", json!({"id": id})),
        ("update-todo", json!({"id": id, "title": "mine"})),
        ("delete-todo", json!({"id": id})),
    ] {
        let theirs = server.call(&bob, tool, args).await;
        let mut other = args_for_missing(tool);
        other["id"] = json!(999_999);
        let missing = server.call(&bob, tool, other).await;
        assert!(theirs.is_tool_error());
        let text = |r: &super::harness::Reply| {
            r.json["result"]["content"][0]["text"]
                .as_str()
                .unwrap()
                .replace(&id.to_string(), "N")
                .replace("999999", "N")
        };
        assert_eq!(
            text(&theirs),
            text(&missing),
            "{tool}: a foreign id behaves like a missing one"
        );
    }
    let still = server.call(&alice, "get-todos", json!({})).await;
    assert_eq!(still.structured()["todos"][0]["title"], "alice's secret");
    assert_eq!(still.structured()["todos"][0]["completed"], false);
}

fn args_for_missing(tool: &str) -> Value {
    if tool == "update-todo" {
        json!({"title": "mine"})
    } else {
        json!({})
    }
}

/// Tokens a resource server must refuse, each with a named case.
#[rstest]
#[case::expired(|s: &Server| claims(s, |c| c.exp = c.iat - 3600))]
#[case::wrong_audience(|s: &Server| claims(s, |c| c.aud = Audience::One("http://localhost:9999/mcp".into())))]
#[case::wrong_issuer(|s: &Server| claims(s, |c| c.iss = "https://evil.example".into()))]
#[case::unknown_kid(|s: &Server| { let stranger = SigningKey::generate(KeyKind::Rsa).unwrap(); stranger.sign("at+jwt", &base_claims(s)).unwrap() })]
#[case::alg_none(|s: &Server| { use base64::Engine; let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string()); format!("{}.{}.", e(json!({"alg": "none", "kid": s.key.kid()})), e(serde_json::to_value(base_claims(s)).unwrap())) })]
#[case::an_id_jag_instead_of_an_access_token(|s: &Server| s.key.sign("oauth-id-jag+jwt", &base_claims(s)).unwrap())]
#[case::garbage(|_: &Server| "not-a-token".to_owned())]
#[tokio::test]
async fn invalid_tokens_get_a_401_challenge(#[case] token: fn(&Server) -> String) {
    let server = Server::start(Backend::Sqlite, false).await;
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let reply = server.rpc(Some(&token(&server)), None, &init).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    let challenge = reply.challenge();
    assert_eq!(challenge.error(), Some("invalid_token"));
    assert_eq!(challenge.scope(), Some("mcp:connect"));
    assert!(
        challenge
            .resource_metadata()
            .unwrap()
            .ends_with("/.well-known/oauth-protected-resource/mcp")
    );
    // And with no token at all: a challenge without an error code (RFC 6750 §3.1).
    let none = server.rpc(None, None, &init).await;
    assert_eq!(none.status, 401);
    assert_eq!(none.challenge().error(), None);
    assert_eq!(none.challenge().scope(), Some("mcp:connect"));
}

fn base_claims(s: &Server) -> AccessTokenClaims {
    let token = s.token("alice", ALL);
    serde_json::from_value(protocol::verify::decode_unverified(&token).unwrap()).unwrap()
}

fn claims(s: &Server, change: impl FnOnce(&mut AccessTokenClaims)) -> String {
    let mut claims = base_claims(s);
    change(&mut claims);
    s.key.sign("at+jwt", &claims).unwrap()
}

#[tokio::test]
async fn a_session_cannot_be_used_with_another_users_token() {
    let server = Server::start(Backend::Sqlite, false).await;
    let alice = server.token("alice", ALL);
    let session = server
        .initialize(&alice)
        .await
        .expect("stateful mode has sessions");
    let bob = server.token("bob", ALL);
    let hijack = server
        .rpc(Some(&bob), Some(&session), &call("get-todos", json!({})))
        .await;
    assert_eq!(hijack.status, 403);
    let own = server
        .rpc(Some(&alice), Some(&session), &call("get-todos", json!({})))
        .await;
    assert_eq!(own.status, 200);
}

/// A plain `tools/call` on a ready session (with or without the progress token rmcp's client
/// adds) is answered by the guard itself as one JSON object; the same call with anything more
/// (here other `_meta`) goes through rmcp's session worker as SSE. All give the same result.
#[tokio::test]
async fn a_plain_tool_call_is_answered_directly_and_the_same_as_through_rmcp() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    let session = server.initialize(&token).await.unwrap();
    let created = server
        .rpc(
            Some(&token),
            Some(&session),
            &call("create-todo", json!({"title": "direct"})),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert_eq!(created.headers["content-type"], "application/json");
    assert_eq!(created.json["id"], 1);
    assert_eq!(created.structured()["todo"]["title"], "direct");

    let direct = server
        .rpc(Some(&token), Some(&session), &call("get-todos", json!({})))
        .await;
    let mut with_progress = call("get-todos", json!({}));
    with_progress["params"]["_meta"] = json!({"progressToken": 5});
    let progress = server
        .rpc(Some(&token), Some(&session), &with_progress)
        .await;
    let mut with_meta = call("get-todos", json!({}));
    with_meta["params"]["_meta"] = json!({"progressToken": "p1", "trace": "x"});
    let routed = server.rpc(Some(&token), Some(&session), &with_meta).await;
    assert_eq!(direct.headers["content-type"], "application/json");
    assert_eq!(progress.headers["content-type"], "application/json");
    assert_eq!(progress.json["result"], direct.json["result"]);
    assert!(
        routed.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "{:?}",
        routed.headers
    );
    assert_eq!(direct.json["result"], routed.json["result"]);
    assert_eq!(direct.structured()["count"], 1);
    assert_eq!(direct.json["result"]["isError"], false);
}

#[tokio::test]
async fn stateless_mode_serves_calls_without_sessions() {
    let server = Server::start(Backend::Sqlite, true).await;
    let token = server.token("alice", ALL);
    let session = server.initialize(&token).await;
    assert!(session.is_none(), "no Mcp-Session-Id in stateless mode");
    let reply = server
        .rpc(
            Some(&token),
            None,
            &call("create-todo", json!({"title": "stateless"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.structured()["todo"]["title"], "stateless");
}

#[tokio::test]
async fn protected_resource_metadata_is_served_at_both_well_known_urls() {
    let server = Server::start(Backend::Sqlite, false).await;
    let origin = server.url.trim_end_matches("/mcp");
    for url in [
        format!("{origin}/.well-known/oauth-protected-resource/mcp"),
        format!("{origin}/.well-known/oauth-protected-resource"),
    ] {
        let doc: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        assert_eq!(doc["resource"], server.resource);
        assert_eq!(doc["authorization_servers"], json!([ISSUER]));
        assert_eq!(doc["bearer_methods_supported"], json!(["header"]));
        assert_eq!(
            doc["scopes_supported"],
            json!([
                "mcp:connect",
                "mcp:tools:read",
                "mcp:tools:manage",
                "mcp:tools:delete"
            ])
        );
    }
}

#[tokio::test]
async fn a_resource_without_a_path_publishes_its_metadata_once_at_the_root() {
    // Its own metadata URL is the root form: routing both used to panic at start.
    let mut resource = String::new();
    let _server = Server::start_with(Backend::Sqlite, |config| {
        config.resource = config.resource.trim_end_matches("/mcp").to_owned();
        resource = config.resource.clone();
    })
    .await;
    let url = format!("{resource}/.well-known/oauth-protected-resource");
    let doc: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(doc["resource"], resource);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let server = Server::start(Backend::Sqlite, false).await;
    let token = server.token("alice", ALL);
    let huge = call("create-todo", json!({"title": "x".repeat(2 * 1024 * 1024)}));
    assert_eq!(server.rpc(Some(&token), None, &huge).await.status, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_the_real_id_jag_flow_step_up_and_stay_isolated() {
    let stack = testkit::Stack::start().await.unwrap();
    let http = reqwest::Client::new();
    let post = |token: String, body: Value| {
        let http = http.clone();
        let url = stack.mcp_url.clone();
        async move {
            let response = http
                .post(&url)
                .header("accept", "application/json, text/event-stream")
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response
                    .headers()
                    .get("www-authenticate")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        }
    };
    // Least privilege first: read only. A write is refused with a challenge naming what it needs.
    let read = stack
        .mcp_token("alice", "mcp:connect mcp:tools:read")
        .await
        .unwrap();
    let (status, challenge) = post(
        read.expose_secret().to_owned(),
        call("create-todo", json!({"title": "prep the demo"})),
    )
    .await;
    assert_eq!(status, 403);
    let parsed = protocol::www_authenticate::parse(&challenge.unwrap()).unwrap();
    let challenge = protocol::www_authenticate::find_bearer(&parsed)
        .unwrap()
        .clone();
    assert_eq!(challenge.error(), Some("insufficient_scope"));
    // Step up: the union of what we had and what the challenge asks for.
    let had: protocol::Scopes = "mcp:connect mcp:tools:read".parse().unwrap();
    let union = had.union(&challenge.scope().unwrap().parse().unwrap());
    let manage = stack.mcp_token("alice", &union.to_string()).await.unwrap();
    let mcp = Server::attach(&stack.mcp_url);
    let created = mcp
        .call(
            manage.expose_secret(),
            "create-todo",
            json!({"title": "prep the demo"}),
        )
        .await;
    assert_eq!(
        created.structured()["todo"]["title"],
        "prep the demo",
        "{}",
        created.text
    );

    let bob = stack
        .mcp_token("bob", "mcp:connect mcp:tools:read")
        .await
        .unwrap();
    let theirs = mcp.call(bob.expose_secret(), "get-todos", json!({})).await;
    assert_eq!(
        theirs.structured()["count"],
        0,
        "bob sees none of alice's todos"
    );
    let mine = mcp.call(read.expose_secret(), "get-todos", json!({})).await;
    assert_eq!(mine.structured()["count"], 1);
}
