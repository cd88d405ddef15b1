//! Brokered consent (issue 8, OKTA.md §1–3) over real HTTP on 127.0.0.1:0: agent0 with idp0 for
//! logins, a stand-in org authorization server answering the `oauth-sts` exchange
//! (`interaction_required` until the test consents for a person, then `200`; `access_denied`
//! once denied) and a stand-in GitHub REST API that records every request. The model is
//! scripted, so each test knows exactly which tool calls are asked for.

use std::sync::Arc;
use std::time::Duration;

use agent0::connections::ConnectionKind;
use axum::http::StatusCode;
use serde_json::json;

use super::brokered_stand_in::{
    Mcp, PR, RESOURCE, RESOURCE_MCP, Setup, StandIn, comment_call, events_of, start, start_with,
    start_with_model, stream,
};
use super::faults::Scripted;

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

#[tokio::test]
async fn github_mcp_uses_the_persons_brokered_token_and_waits_for_consent_like_rest() {
    let Setup {
        stack,
        model,
        standin,
    } = start_with(&[], Mcp::Declared).await;
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

/// The GitHub tools GitHub declares, as offered before anyone has listed the server.
const GITHUB_DECLARED: [&str; 4] = protocol::github::MCP_TOOL_NAMES;

#[tokio::test]
async fn a_fresh_agent_offers_githubs_declared_mcp_tools_with_no_exchange_and_asks_consent_only_at_a_call()
 {
    let Setup {
        stack,
        model,
        standin,
    } = start_with(&[], Mcp::Declared).await;
    let broker = stack.app.agent().hub().broker().clone();
    let alice = Arc::new(stack.login("alice").await);

    // An unrelated first turn: todo0 only. No card, no brokered exchange, yet GitHub's tools
    // are offered as GitHub declares them.
    model.push(Scripted::tool("get-todos", json!({})));
    model.push(Scripted::text("Here are your todos."));
    let events = alice.chat_stream("list my todos").await;
    assert!(
        events_of(&events, "consent_required").is_empty(),
        "{events:?}"
    );
    assert!(events_of(&events, "error").is_empty(), "{events:?}");
    let done = events_of(&events, "tool_done");
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["connection"], "todo0");
    assert_eq!(done[0]["isError"], false, "{:?}", done[0]);
    assert_eq!(broker.brokered_exchange_count(), 0);
    assert!(standin.world().exchanges.is_empty());
    let offered = model.tools.lock().unwrap()[0].clone();
    for name in GITHUB_DECLARED {
        assert!(offered.contains(&name.to_owned()), "{name}: {offered:?}");
    }

    // More turns: still no exchange, no card.
    for _ in 0..3 {
        model.push(Scripted::text("ok"));
        let events = alice.chat_stream("hello").await;
        assert!(
            events_of(&events, "consent_required").is_empty(),
            "{events:?}"
        );
    }
    assert_eq!(broker.brokered_exchange_count(), 0);
    assert!(standin.world().exchanges.is_empty());

    // A GitHub MCP call needs alice's token: the waiting card, then the call resumes by itself.
    model.push(Scripted::tool("get_me", json!({})));
    model.push(Scripted::text("You are alice."));
    let turn = stream(&alice, "who am I on GitHub?");
    standin.wait_for_exchange("alice").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        standin.world().github.is_empty(),
        "nothing ran before consent"
    );
    standin.world().consented.insert("alice".into());
    let events = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .unwrap()
        .unwrap();
    let cards = events_of(&events, "consent_required");
    assert_eq!(cards.len(), 1, "{events:?}");
    assert_eq!(cards[0]["connection"], "github-mcp");
    assert_eq!(cards[0]["waiting"], true);
    let done = events_of(&events, "tool_done");
    assert_eq!(done[0]["isError"], false, "{:?}", done[0]);
    assert!(
        done[0]["result"].as_str().unwrap().contains("\"alice\""),
        "{:?}",
        done[0]
    );
    assert_eq!(
        standin.world().github,
        vec![("MCP get_me".to_owned(), "alice".to_owned())]
    );

    // With her token, the next turn lists the server's tools for real (the stand-in offers
    // get_me only), and that listing replaces the declared one for whoever has no token yet.
    model.push(Scripted::text("ok"));
    let events = alice.chat_stream("hello").await;
    assert!(
        events_of(&events, "consent_required").is_empty(),
        "{events:?}"
    );
    let offered = model.tools.lock().unwrap().last().unwrap().clone();
    assert!(offered.contains(&"get_me".to_owned()), "{offered:?}");
    assert!(
        !offered.contains(&"list_pull_requests".to_owned()),
        "{offered:?}"
    );
    let bob = stack.login("bob").await;
    let exchanges = broker.brokered_exchange_count();
    model.push(Scripted::text("ok"));
    let events = bob.chat_stream("list my todos").await;
    assert!(
        events_of(&events, "consent_required").is_empty(),
        "{events:?}"
    );
    let offered = model.tools.lock().unwrap().last().unwrap().clone();
    assert!(offered.contains(&"get_me".to_owned()), "{offered:?}");
    assert!(
        !offered.contains(&"list_pull_requests".to_owned()),
        "{offered:?}"
    );
    assert_eq!(broker.brokered_exchange_count(), exchanges, "none for bob");
    assert_eq!(standin.exchanges_for("bob"), 0);
}

#[tokio::test]
async fn an_undeclared_brokered_server_shows_one_card_and_costs_no_idp_round_trip_per_turn() {
    let Setup {
        stack,
        model,
        standin,
    } = start_with(&[], Mcp::Undeclared).await;
    let alice = stack.login("alice").await;

    // The first turn must list the server, which needs alice's consent: one card, not waiting,
    // naming the resource the page exchanges before it continues the request.
    model.push(Scripted::text("ok"));
    let events = alice.chat_stream("hello").await;
    let cards = events_of(&events, "consent_required");
    assert_eq!(cards.len(), 1, "{events:?}");
    assert_eq!(cards[0]["connection"], "github-mcp");
    assert_eq!(cards[0]["waiting"], false);
    assert_eq!(cards[0]["resource"], RESOURCE_MCP);
    assert_eq!(standin.exchanges_for("alice"), 1);

    // Later turns while she has not consented: no card, no error, no IdP round trip, and the
    // server's tools are not offered (nobody knows them).
    for _ in 0..4 {
        model.push(Scripted::text("ok"));
        let events = alice.chat_stream("hello").await;
        assert!(
            events_of(&events, "consent_required").is_empty(),
            "{events:?}"
        );
        assert!(events_of(&events, "error").is_empty(), "{events:?}");
    }
    assert_eq!(standin.exchanges_for("alice"), 1);
    let offered = model.tools.lock().unwrap().last().unwrap().clone();
    assert!(!offered.contains(&"get_me".to_owned()), "{offered:?}");

    // bob: his own card once; logging out forgets that he was asked, so after his next login
    // the first turn asks (once) again.
    let mut bob = stack.login("bob").await;
    let mut cards_for_bob = Vec::new();
    for turn in 0..5 {
        if turn == 3 {
            bob.post("/auth/logout", &json!({})).await;
            bob = stack.login("bob").await;
        }
        model.push(Scripted::text("ok"));
        let events = bob.chat_stream("hello").await;
        cards_for_bob.push(events_of(&events, "consent_required").len());
    }
    assert_eq!(cards_for_bob, [1, 0, 0, 1, 0]);
    assert_eq!(standin.exchanges_for("bob"), 2);

    // alice consents; the page exchanges before continuing (as app.js does), and the next turn
    // lists the server with her token.
    standin.world().consented.insert("alice".into());
    let (_, body) = alice
        .post(
            "/api/oauth-sts/exchange",
            &json!({"resource": RESOURCE_MCP}),
        )
        .await;
    assert_eq!(body, json!({"status": "success"}));
    model.push(Scripted::tool("get_me", json!({})));
    model.push(Scripted::text("ok"));
    let events = alice.chat_stream("who am I on GitHub?").await;
    assert!(
        events_of(&events, "consent_required").is_empty(),
        "{events:?}"
    );
    let done = events_of(&events, "tool_done");
    assert_eq!(done[0]["isError"], false, "{:?}", done[0]);
    assert!(done[0]["result"].as_str().unwrap().contains("\"alice\""));
    assert_eq!(standin.exchanges_for("alice"), 2);

    // Now the server's tools are known from alice's listing: bob is offered them with no
    // exchange, and his call asks his consent and waits as usual.
    model.push(Scripted::text("ok"));
    let events = bob.chat_stream("hello").await;
    assert!(
        events_of(&events, "consent_required").is_empty(),
        "{events:?}"
    );
    let offered = model.tools.lock().unwrap().last().unwrap().clone();
    assert!(offered.contains(&"get_me".to_owned()), "{offered:?}");
    assert_eq!(standin.exchanges_for("bob"), 2);
}

#[tokio::test]
async fn a_call_that_meets_interaction_pending_shows_the_link_handed_out_before_and_resumes() {
    let Setup {
        stack,
        model,
        standin,
    } = start_with(&[], Mcp::Declared).await;
    standin.world().pending_after_link = true;
    let alice = Arc::new(stack.login("alice").await);
    // The link goes out to an exchange the chat did not show (here the sample's endpoint; a
    // tool listing's exchange is the other case).
    let (_, body) = alice
        .post(
            "/api/oauth-sts/exchange",
            &json!({"resource": RESOURCE_MCP}),
        )
        .await;
    assert_eq!(body["status"], "interaction_required");
    // The call's own exchange answers only `interaction_pending`: the card shows the link
    // handed out before, waits, and the call resumes after consent.
    model.push(Scripted::tool("get_me", json!({})));
    model.push(Scripted::text("ok"));
    let turn = stream(&alice, "who am I on GitHub?");
    for _ in 0..200 {
        if standin.exchanges_for("alice") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    standin.world().consented.insert("alice".into());
    let events = tokio::time::timeout(Duration::from_secs(20), turn)
        .await
        .unwrap()
        .unwrap();
    let cards = events_of(&events, "consent_required");
    assert_eq!(cards.len(), 1, "{events:?}");
    assert_eq!(
        cards[0]["interactionUri"],
        "https://org.example/sts/interact/alice"
    );
    assert_eq!(cards[0]["waiting"], true);
    let done = events_of(&events, "tool_done");
    assert_eq!(done[0]["isError"], false, "{:?}", done[0]);
    assert!(done[0]["result"].as_str().unwrap().contains("\"alice\""));
}
