//! A turn paused for the person's confirmation on one replica, and the person's next request
//! landing on the other (issue 10; `agent0::shared::relay`): the decision, a new message and a
//! logout through replica B reach the card held by replica A through Redis; the rest of the turn
//! streams back through B; nothing runs twice, and nobody else's decision counts.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::login_at;
use crate::replicas::{Replicas, clean_up, prefix, redis_url, through};

/// Waits (bounded) until replica `app` holds `n` confirmations.
async fn holds(app: &agent0::AppState, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.agent().confirmations().len() != n {
        assert!(
            Instant::now() < deadline,
            "the replica holds {} confirmations, not {n}",
            app.agent().confirmations().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn titles(reply: &Value) -> Vec<String> {
    let result = &reply["toolResults"][0]["result"];
    let text = result
        .as_str()
        .map_or_else(|| result.to_string(), str::to_owned);
    let mut titles: Vec<String> = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("todos").cloned().or(Some(v)))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["title"].as_str().map(str::to_owned))
        .collect();
    titles.sort();
    titles
}

#[tokio::test]
async fn a_card_opened_on_one_replica_is_decided_through_the_other_once() {
    let (url, prefix) = (redis_url(), prefix());
    let replicas = Replicas::start(&url, &prefix).await;
    let mut alice = login_at(&replicas.stack, &replicas.a.base, "alice").await;

    // The first write needs a scope beyond reading: a card, held by A.
    let reply = alice.chat(r#"add a todo "prep the demo""#).await;
    let card = reply["confirmation"].clone();
    assert!(card.is_object(), "{reply}");
    holds(&replicas.a.app, 1).await;
    holds(&replicas.b.app, 0).await;

    // The decision lands on B: A runs the call, and B answers with the finished turn.
    through(&mut alice, &replicas.b);
    let (status, done) = alice.decide(&card, "approve").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["confirmation"].is_null(), "{done}");
    let chips = done["toolResults"].as_array().unwrap();
    let added = chips.iter().find(|c| c["tool"] == "create-todo");
    let added = added.unwrap_or_else(|| panic!("no create-todo chip: {done}"));
    assert_eq!(added["isError"], false, "{done}");
    assert!(!done["message"].as_str().unwrap().is_empty(), "{done}");
    holds(&replicas.a.app, 0).await;

    // Used once, wherever it is presented again.
    let (status, again) = alice.decide(&card, "approve").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{again}");
    assert_eq!(again["error"], "confirmation_not_found");
    through(&mut alice, &replicas.a);
    let (status, _) = alice.decide(&card, "approve").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Exactly one todo was added.
    let listed = alice.chat_approved("list my todos").await;
    assert_eq!(titles(&listed), ["prep the demo"], "{listed}");

    // The approval is shared: the next write in that conversation, through B, asks nothing.
    let (status, next) = alice
        .post(
            "/api/chat",
            &json!({"message": r#"add a todo "second""#, "conversationId": card["conversationId"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert!(next["confirmation"].is_null(), "asked again on B: {next}");
    assert_eq!(next["toolResults"][0]["isError"], false, "{next}");
    through(&mut alice, &replicas.a);
    let (status, next) = alice
        .post(
            "/api/chat",
            &json!({"message": "mark todo 2 as done", "conversationId": card["conversationId"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    assert!(next["confirmation"].is_null(), "asked again on A: {next}");

    // A destructive call paused on A, decided on B as a stream: the rest of the turn's events
    // arrive through B in order, ending with `done`.
    let reply = alice.chat("delete todo 1").await;
    let card = reply["confirmation"].clone();
    assert!(card.is_object(), "{reply}");
    holds(&replicas.a.app, 1).await;
    through(&mut alice, &replicas.b);
    let events = alice.decide_stream(&card, "approve").await;
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    assert!(names.contains(&"tool_done"), "{names:?}");
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let deleted = events.iter().find(|(name, _)| name == "tool_done").unwrap();
    assert_eq!(deleted.1["tool"], "delete-todo", "{events:?}");
    assert_eq!(deleted.1["isError"], false, "{events:?}");
    let listed = alice.chat_approved("list my todos").await;
    assert_eq!(titles(&listed), ["second"], "{listed}");
    clean_up(&url, &prefix).await;
}

#[tokio::test]
async fn someone_elses_decision_through_the_other_replica_counts_for_nothing() {
    let (url, prefix) = (redis_url(), prefix());
    let replicas = Replicas::start(&url, &prefix).await;
    let alice = login_at(&replicas.stack, &replicas.a.base, "alice").await;
    let mut bob = login_at(&replicas.stack, &replicas.a.base, "bob").await;
    let reply = alice.chat(r#"add a todo "alice's""#).await;
    let card = reply["confirmation"].clone();
    assert!(card.is_object(), "{reply}");

    // Bob presents Alice's card (id and conversation) through B: unknown to him, 404, and
    // the card still waits for Alice on A.
    through(&mut bob, &replicas.b);
    let (status, body) = bob.decide(&card, "approve").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    holds(&replicas.a.app, 1).await;
    // A made-up id answers the same, quickly (every replica says it does not hold it).
    let started = Instant::now();
    let made_up = json!({"id": "nope", "conversationId": card["conversationId"]});
    let (status, _) = bob.decide(&made_up, "approve").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(started.elapsed() < Duration::from_secs(3), "not by timeout");

    // Alice's own decision still works.
    let (status, done) = alice.decide(&card, "deny").await;
    assert_eq!(status, StatusCode::OK, "{done}");
    holds(&replicas.a.app, 0).await;
    clean_up(&url, &prefix).await;
}

#[tokio::test]
async fn a_new_message_or_a_logout_through_the_other_replica_ends_the_card() {
    let (url, prefix) = (redis_url(), prefix());
    let replicas = Replicas::start(&url, &prefix).await;
    let mut alice = login_at(&replicas.stack, &replicas.a.base, "alice").await;

    // A card on A; the next message in that conversation goes to B and declines it on A.
    let reply = alice.chat(r#"add a todo "first""#).await;
    let card = reply["confirmation"].clone();
    assert!(card.is_object(), "{reply}");
    holds(&replicas.a.app, 1).await;
    through(&mut alice, &replicas.b);
    let (status, next) = alice
        .post(
            "/api/chat",
            &json!({"message": "list my todos", "conversationId": card["conversationId"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{next}");
    holds(&replicas.a.app, 0).await;
    let (status, _) = alice.decide(&card, "approve").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "superseded cards are gone");

    // Another card on A; logging out through B declines it on A.
    through(&mut alice, &replicas.a);
    let reply = alice.chat(r#"add a todo "second""#).await;
    assert!(reply["confirmation"].is_object(), "{reply}");
    holds(&replicas.a.app, 1).await;
    through(&mut alice, &replicas.b);
    let response = alice
        .browser
        .http
        .post(format!("{}/auth/logout", replicas.b.base))
        .header("x-csrf-token", &alice.csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    holds(&replicas.a.app, 0).await;
    clean_up(&url, &prefix).await;
}

/// The person's words in the model request's messages, in order.
fn said(messages: &[agent0::llm::Message]) -> Vec<String> {
    messages
        .iter()
        .flat_map(|m| &m.content)
        .filter_map(|block| match block {
            agent0::llm::Block::Text { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_conversation_continued_through_either_replica_gives_the_model_every_turn() {
    let (url, prefix) = (redis_url(), prefix());
    let model = std::sync::Arc::new(crate::faults::Scripted::default());
    let replicas = Replicas::start_with(&url, &prefix, None, model.clone()).await;
    let mut alice = login_at(&replicas.stack, &replicas.a.base, "alice").await;
    let mut conversation = Value::Null;
    // Each replica's in-memory history is a turn behind the other's: it reads back only the
    // turns it has not seen, and the model still gets the whole conversation.
    for (i, word) in ["one", "two", "three", "four"].iter().enumerate() {
        let replica = if i % 2 == 0 { &replicas.a } else { &replicas.b };
        through(&mut alice, replica);
        model.push(crate::faults::Scripted::text(&format!("reply {word}")));
        let (status, reply) = alice
            .post(
                "/api/chat",
                &json!({"message": word, "conversationId": conversation}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        conversation = reply["conversationId"].clone();
    }
    let requests = model.requests.lock().unwrap().clone();
    assert_eq!(
        said(requests.last().unwrap()),
        [
            "one",
            "reply one",
            "two",
            "reply two",
            "three",
            "reply three",
            "four"
        ]
    );
    clean_up(&url, &prefix).await;
}
