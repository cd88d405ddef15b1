//! Past conversations (the list, reopening one, continuing it) and their export as Markdown and
//! JSON: only ever the person's own, newest first, and never a token in a download.

use std::sync::Arc;

use agent0::llm::{LlmError, Message, Model, ModelInfo, ModelReply, ModelRequest, Role, TextSink};
use reqwest::StatusCode;
use reqwest::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::{Value, json};

use super::faults::Scripted;
use super::harness::{AgentStack, Person};

async fn export(person: &Person, base: &str, id: &str, format: &str) -> reqwest::Response {
    person
        .browser
        .http
        .get(format!(
            "{base}/api/conversations/{id}/export?format={format}"
        ))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_conversations_are_listed_reopened_continued_and_exported_only_for_their_owner() {
    let stack = AgentStack::start().await;
    let alice = stack.login("alice").await;

    // Two conversations: the first with two turns (a write and a list), then a new one.
    let first = alice.chat_approved("add a todo \"write the report\"").await;
    let first_id = first["conversationId"].as_str().unwrap().to_owned();
    alice.chat("list my todos").await;
    let (status, created) = alice.post("/api/conversations", &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let second_id = created["conversationId"].as_str().unwrap().to_owned();
    alice.chat("list my todos").await;

    let (status, list) = alice.get("/api/conversations").await;
    assert_eq!(status, StatusCode::OK);
    let list = list["conversations"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["id"], second_id.as_str(), "newest first");
    assert_eq!(list[0]["title"], "list my todos");
    assert_eq!(list[0]["turns"], 1);
    assert_eq!(list[1]["id"], first_id.as_str());
    assert_eq!(list[1]["title"], "add a todo \"write the report\"");
    assert_eq!(list[1]["turns"], 2);
    assert!(list[1]["updatedAt"].as_i64().unwrap() > 0);

    // Reopened, it reads as the page shows it; a message naming it continues it.
    let (status, opened) = alice.get(&format!("/api/conversations/{first_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(opened["conversationId"], first_id.as_str());
    let messages = opened["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4);
    assert_eq!(messages[0]["text"], "add a todo \"write the report\"");
    assert_eq!(messages[1]["toolResults"][0]["tool"], "create-todo");
    let (status, reply) = alice
        .post(
            "/api/chat",
            &json!({"message": "list my todos", "conversationId": first_id}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["conversationId"], first_id.as_str());
    let (_, list) = alice.get("/api/conversations").await;
    assert_eq!(list["conversations"][0]["id"], first_id.as_str());
    assert_eq!(list["conversations"][0]["turns"], 3);

    // Markdown: a download, never cached, with the messages and tool results, no token.
    let response = export(&alice, &stack.base, &first_id, "md").await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers[CACHE_CONTROL], "no-store");
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let disposition = headers[CONTENT_DISPOSITION].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"agent0-conversation-")
            && disposition.ends_with(".md\""),
        "{disposition}"
    );
    let markdown = response.text().await.unwrap();
    assert!(
        markdown.starts_with("# add a todo \"write the report\"\n"),
        "{markdown}"
    );
    assert!(markdown.contains("## You\n\nlist my todos"));
    assert!(markdown.contains("**Tool call** `create-todo` on `todo0`"));
    assert!(markdown.contains("write the report"));
    assert!(
        !markdown.contains("eyJ"),
        "no JWT in the export: {markdown}"
    );

    // JSON: the same turns, machine-readable.
    let response = export(&alice, &stack.base, &first_id, "json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    assert!(
        response.headers()[CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .ends_with(".json\"")
    );
    let text = response.text().await.unwrap();
    assert!(!text.contains("eyJ"), "no JWT in the export");
    let exported: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(exported["conversationId"], first_id.as_str());
    let turns = exported["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 3);
    assert_eq!(turns[0]["toolResults"][0]["tool"], "create-todo");
    assert_eq!(turns[2]["toolResults"][0]["tool"], "get-todos");
    assert!(turns[0].get("messages").is_none());

    // An unknown format is a 400.
    let response = export(&alice, &stack.base, &first_id, "xml").await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // Someone else: an empty list, and alice's conversation does not exist for them.
    let bob = stack.login("bob").await;
    let (status, list) = bob.get("/api/conversations").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["conversations"], json!([]));
    let (status, _) = bob.get(&format!("/api/conversations/{first_id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for format in ["md", "json"] {
        let response = export(&bob, &stack.base, &first_id, format).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.headers().get(CONTENT_DISPOSITION).is_none());
    }
    // Alice's conversation is warm on this replica (her turn just ran): still not bob's.
    for path in ["/api/chat", "/api/chat/stream"] {
        let message = json!({"message": "list my todos", "conversationId": first_id});
        let (status, _) = bob.post(path, &message).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // Nobody logged in: 401.
    let anonymous = reqwest::Client::new();
    for path in [
        "/api/conversations".to_owned(),
        format!("/api/conversations/{first_id}"),
        format!("/api/conversations/{first_id}/export?format=md"),
    ] {
        let response = anonymous
            .get(format!("{}{path}", stack.base))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

/// The model's view of `request`: each message as `role: text`.
fn transcript(request: &[Message]) -> Vec<String> {
    request
        .iter()
        .map(|m| {
            let role = if m.role == Role::User {
                "user"
            } else {
                "model"
            };
            format!("{role}: {}", m.text())
        })
        .collect()
}

#[tokio::test]
async fn the_model_is_sent_each_earlier_turn_once_from_memory_or_after_a_restart_from_the_store() {
    let model = Arc::new(Scripted::default());
    let mut stack = AgentStack::start_with(model.clone(), |_| {}).await;
    let alice = stack.login("alice").await;
    let mut expected = Vec::new();
    let mut conversation = None;
    for (said, answered) in [("one", "1"), ("two", "2"), ("three", "3")] {
        model.push(Scripted::text(answered));
        let reply = alice.chat(said).await;
        conversation.get_or_insert(reply["conversationId"].as_str().unwrap().to_owned());
        assert_eq!(reply["conversationId"], conversation.as_deref().unwrap());
        expected.push(format!("user: {said}"));
        let sent = transcript(model.requests.lock().unwrap().last().unwrap());
        assert_eq!(
            sent, expected,
            "turn {said}: each earlier turn once, in order"
        );
        expected.push(format!("model: {answered}"));
    }

    // A restarted agent0 holds nothing in memory: the history comes from the store, the same.
    stack.restart().await;
    let alice = stack.login("alice").await;
    model.push(Scripted::text("4"));
    let conversation = conversation.unwrap();
    let (status, reply) = alice
        .post(
            "/api/chat",
            &json!({"message": "four", "conversationId": conversation}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    expected.push("user: four".to_owned());
    let sent = transcript(model.requests.lock().unwrap().last().unwrap());
    assert_eq!(sent, expected);
    expected.push("model: 4".to_owned());

    // And warm again after it.
    model.push(Scripted::text("5"));
    alice.chat("five").await;
    expected.push("user: five".to_owned());
    let sent = transcript(model.requests.lock().unwrap().last().unwrap());
    assert_eq!(sent, expected);
}

/// Answers like [`Scripted`]; while held, a request waits until [`Held::release`].
#[derive(Default)]
struct Held {
    inner: Scripted,
    gate: tokio::sync::Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
}

#[async_trait::async_trait]
impl Model for Held {
    fn info(&self) -> ModelInfo {
        self.inner.info()
    }

    async fn respond(
        &self,
        request: ModelRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ModelReply, LlmError> {
        let waiting = self.gate.lock().await.take();
        let reply = self.inner.respond(request, on_text).await;
        if let Some(release) = waiting {
            let _ = release.await;
        }
        reply
    }
}

/// Two turns of one conversation at once (two tabs): the second chooses the conversation and
/// reads its turn count while the first runs, then waits for it. Each is stored once, the
/// second's model sees the first, and so does every later turn, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_turns_of_one_conversation_at_once_each_see_the_other_once() {
    let model = Arc::new(Held::default());
    let stack = AgentStack::start_with(model.clone(), |_| {}).await;
    let alice = stack.login("alice").await;
    model.inner.push(Scripted::text("1"));
    alice.chat("one").await;

    let (release, gate) = tokio::sync::oneshot::channel();
    *model.gate.lock().await = Some(gate);
    model.inner.push(Scripted::text("2"));
    model.inner.push(Scripted::text("3"));
    let requests = || model.inner.requests.lock().unwrap().len();
    let second = async {
        // "two" is at the model; "three" then chooses the conversation and queues behind it.
        while requests() < 2 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let reply = alice.chat("three");
        let release = async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            let _ = release.send(());
        };
        tokio::join!(reply, release).0
    };
    let (two, three) = tokio::join!(alice.chat("two"), second);
    assert_eq!(two["conversationId"], three["conversationId"]);
    let mut expected = vec![
        "user: one",
        "model: 1",
        "user: two",
        "model: 2",
        "user: three",
    ];
    let sent = transcript(model.inner.requests.lock().unwrap().last().unwrap());
    assert_eq!(sent, expected);

    model.inner.push(Scripted::text("4"));
    alice.chat("four").await;
    expected.extend(["model: 3", "user: four"]);
    let sent = transcript(model.inner.requests.lock().unwrap().last().unwrap());
    assert_eq!(sent, expected);
}
