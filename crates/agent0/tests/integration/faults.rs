//! J4: failures are clear and nothing is lost. A scripted model (the `Model` seam) overloads,
//! refuses, invents a tool; an MCP server is unreachable; idp0 stops mid-session. Each time the
//! chat answers with a clear message, the conversation goes on, and no todo is created twice or
//! lost.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use agent0::config::AuthStrategy;
use agent0::llm::{
    Block, LlmError, Message, Model, ModelInfo, ModelReply, ModelRequest, StopReason, TextSink,
};
use agent0::mcp::McpServer;
use async_trait::async_trait;
use serde_json::json;
use todo0::domain::{Filter, Owner};

use super::harness::AgentStack;

/// Answers from a script, recording what it was asked.
#[derive(Default)]
pub struct Scripted {
    replies: Mutex<VecDeque<Result<ModelReply, LlmError>>>,
    /// The messages of each request.
    pub requests: Mutex<Vec<Vec<Message>>>,
    /// The tool names offered in each request.
    pub tools: Mutex<Vec<Vec<String>>>,
    /// The system prompt of each request.
    pub systems: Mutex<Vec<String>>,
}

impl Scripted {
    pub fn push(&self, reply: Result<ModelReply, LlmError>) {
        self.replies.lock().unwrap().push_back(reply);
    }

    pub fn text(text: &str) -> Result<ModelReply, LlmError> {
        Ok(ModelReply {
            content: vec![Block::Text { text: text.into() }],
            stop_reason: StopReason::EndTurn,
        })
    }

    pub fn tool(name: &str, input: serde_json::Value) -> Result<ModelReply, LlmError> {
        Ok(ModelReply {
            content: vec![Block::ToolUse {
                id: format!("call-{name}"),
                name: name.into(),
                input,
            }],
            stop_reason: StopReason::ToolUse,
        })
    }
}

#[async_trait]
impl Model for Scripted {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            provider: "scripted".into(),
            model: "test".into(),
        }
    }

    async fn respond(
        &self,
        request: ModelRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ModelReply, LlmError> {
        self.requests
            .lock()
            .unwrap()
            .push(request.messages.to_vec());
        self.tools
            .lock()
            .unwrap()
            .push(request.tools.iter().map(|t| t.name.clone()).collect());
        self.systems.lock().unwrap().push(request.system.to_owned());
        let reply = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| Scripted::text("(script exhausted)"));
        if let Ok(reply) = &reply {
            for block in &reply.content {
                if let Block::Text { text } = block {
                    on_text(text);
                }
            }
        }
        reply
    }
}

#[tokio::test]
async fn model_failures_and_invented_tools_are_reported_and_the_conversation_goes_on() {
    let model = Arc::new(Scripted::default());
    let stack = AgentStack::start_with(model.clone(), |_| {}).await;
    let alice = stack.login("alice").await;

    // Overloaded once (retried), then a tool that does not exist, then an answer.
    model.push(Err(LlmError::Overloaded));
    model.push(Scripted::tool("launch-rockets", json!({})));
    model.push(Scripted::text("I can't do that."));
    let reply = alice.chat_approved("launch the rockets").await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["tool"], "launch-rockets");
    assert_eq!(chip["isError"], true);
    let result = chip["result"].as_str().unwrap();
    assert!(
        result.contains("no tool named") && result.contains("get-todos"),
        "{result}"
    );
    assert_eq!(reply["message"], "I can't do that.");
    {
        let requests = model.requests.lock().unwrap();
        assert_eq!(requests.len(), 3, "one retry, then two steps");
        let last = requests.last().unwrap();
        let fed_back = last.last().unwrap();
        assert!(matches!(
            &fed_back.content[0],
            Block::ToolResult { tool_use_id, is_error: true, .. } if tool_use_id == "call-launch-rockets"
        ));
    }

    // Refused: not retried, said plainly, and the turn is kept.
    model.push(Err(LlmError::Refused {
        status: 400,
        message: "bad request".into(),
    }));
    let reply = alice.chat_approved("hello?").await;
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.starts_with("I couldn't finish that") && message.contains("refused"),
        "{message}"
    );

    // Rate limited on every attempt: given up after the retries, clearly.
    for _ in 0..3 {
        model.push(Err(LlmError::RateLimited {
            retry_after: Some(std::time::Duration::from_millis(10)),
        }));
    }
    let reply = alice.chat_approved("still there?").await;
    assert!(
        reply["message"].as_str().unwrap().contains("rate limiting"),
        "{reply}"
    );

    // A tool call with arguments that are not an object is the model's error, not ours.
    model.push(Scripted::tool("get-todos", json!("everything")));
    model.push(Scripted::text("Sorry."));
    let reply = alice.chat_approved("list").await;
    assert_eq!(reply["toolResults"][0]["isError"], true);

    // And then it simply works again; all four turns are in the conversation, in order.
    model.push(Scripted::text("Back to normal."));
    let reply = alice.chat_approved("ok").await;
    assert_eq!(reply["message"], "Back to normal.");
    let (_, conversation) = alice.get("/api/conversations/current").await;
    let texts: Vec<&str> = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        ["launch the rockets", "hello?", "still there?", "list", "ok"]
    );
}

#[tokio::test]
async fn an_unreachable_mcp_server_is_reported_while_the_others_keep_working() {
    let stack = AgentStack::start_with(
        Arc::new(agent0::llm::offline::OfflineModel::new()),
        |config| {
            config.mcp_servers.push(McpServer {
                name: "ghost".into(),
                label: "Ghost MCP Server".into(),
                url: "http://127.0.0.1:9/mcp".into(),
                auth: AuthStrategy::None,
                auto_approve: Vec::new(),
                in_band_refusals: false,
                declared_tools: None,
            });
        },
    )
    .await;
    let alice = stack.login("alice").await;
    let events = alice.chat_stream("list my todos").await;
    let error = events
        .iter()
        .find(|(name, _)| name == "error")
        .map(|(_, data)| data["message"].as_str().unwrap().to_owned())
        .expect("an error event");
    assert_eq!(
        error, "Ghost MCP Server is not answering; try again in a moment.",
        "one sentence for people; the transport's error chain goes to the log"
    );
    assert_eq!(events.iter().filter(|(name, _)| name == "error").count(), 1);
    let (_, done) = events.iter().find(|(name, _)| name == "done").unwrap();
    assert_eq!(done["toolResults"][0]["tool"], "get-todos");
    assert_eq!(done["toolResults"][0]["isError"], false);
    let (_, panel) = alice.get("/api/connections/status").await;
    let ghost = panel["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ghost")
        .unwrap()
        .clone();
    assert_eq!(ghost["state"], "unreachable", "{ghost}");
    assert!(ghost["lastFailureAt"].is_string(), "{ghost}");
    assert!(ghost["lastSuccessAt"].is_null(), "{ghost}");
}

#[tokio::test]
async fn with_idp0_down_warm_tokens_keep_working_and_new_ones_fail_clearly() {
    let mut stack = AgentStack::start().await;
    let alice = stack.login("alice").await;
    let (_, status) = alice.get("/auth/status").await;
    let owner = Owner::new(status["user"]["sub"].as_str().unwrap().to_owned()).unwrap();
    alice.chat_approved("list my todos").await;

    stack.stack.idp.halt().await.unwrap();
    let reply = alice.chat_approved("list my todos").await;
    assert_eq!(
        reply["toolResults"][0]["isError"], false,
        "a warm token needs no IdP"
    );

    // Adding needs a step-up, which needs the IdP: a clear failure, nothing created.
    let reply = alice.chat_approved("add \"while the IdP is down\"").await;
    let chip = &reply["toolResults"][0];
    assert_eq!(chip["isError"], true);
    assert_eq!(
        chip["result"],
        "The sign-in service that Todo0 MCP Server relies on is not answering; try again in a moment.",
        "{chip}"
    );
    assert!(
        chip["detail"]
            .as_str()
            .unwrap()
            .contains("could not be reached"),
        "the detail is in the chip: {chip}"
    );
    let todos = stack
        .stack
        .store
        .list(&owner, &Filter::default())
        .await
        .unwrap();
    assert!(todos.is_empty(), "nothing half-done");
    let (_, status) = alice.get("/auth/status").await;
    assert_eq!(
        status["authenticated"], true,
        "the session survives an IdP outage"
    );
}

#[tokio::test]
async fn the_model_always_sees_the_stored_history_even_when_written_elsewhere() {
    let model = Arc::new(Scripted::default());
    let stack = AgentStack::start_with(model.clone(), |_| {}).await;
    let alice = stack.login("alice").await;
    let first = alice.chat_approved("one").await;
    let conversation = first["conversationId"].as_str().unwrap().to_owned();
    // Another replica (or process) appends a turn to the same conversation.
    let (_, status) = alice.get("/auth/status").await;
    let subject = status["user"]["sub"].as_str().unwrap();
    let store = stack.app.agent().store().clone();
    let injected = agent0::conversations::Turn {
        user_text: "written elsewhere".into(),
        reply_text: "noted".into(),
        messages: vec![
            Message::user_text("written elsewhere"),
            Message {
                role: agent0::llm::Role::Assistant,
                content: vec![Block::Text {
                    text: "noted".into(),
                }],
            },
        ],
        tool_results: vec![],
    };
    store
        .append(subject, &conversation, &injected, 0)
        .await
        .unwrap();
    alice.chat_approved("two").await;
    let requests = model.requests.lock().unwrap();
    let seen: Vec<String> = requests.last().unwrap().iter().map(Message::text).collect();
    assert_eq!(
        seen,
        [
            "one",
            "(script exhausted)",
            "written elsewhere",
            "noted",
            "two"
        ]
    );
}

/// A turn stored elsewhere that lands *while* a turn runs (another replica's, on the same
/// conversation).
type Landing = (
    Arc<dyn agent0::conversations::ConversationStore>,
    String,
    String,
);

/// Answers like [`Scripted`]; when armed, first stores a turn elsewhere, once.
#[derive(Default)]
struct Interleaved {
    inner: Scripted,
    landing: Mutex<Option<Landing>>,
}

#[async_trait]
impl Model for Interleaved {
    fn info(&self) -> ModelInfo {
        self.inner.info()
    }

    async fn respond(
        &self,
        request: ModelRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ModelReply, LlmError> {
        let landing = self.landing.lock().unwrap().take();
        if let Some((store, owner, conversation)) = landing {
            let elsewhere = agent0::conversations::Turn {
                user_text: "written elsewhere".into(),
                reply_text: "noted".into(),
                messages: vec![Message::user_text("written elsewhere")],
                tool_results: vec![],
            };
            assert_eq!(
                store
                    .append(&owner, &conversation, &elsewhere, 0)
                    .await
                    .unwrap(),
                2
            );
        }
        self.inner.respond(request, on_text).await
    }
}

#[tokio::test]
async fn a_turn_stored_elsewhere_while_one_runs_is_seen_once_and_nothing_twice() {
    let model = Arc::new(Interleaved::default());
    let stack = AgentStack::start_with(model.clone(), |_| {}).await;
    let alice = stack.login("alice").await;
    model.inner.push(Scripted::text("1"));
    let first = alice.chat("one").await;
    let conversation = first["conversationId"].as_str().unwrap().to_owned();
    let (_, status) = alice.get("/auth/status").await;
    let subject = status["user"]["sub"].as_str().unwrap().to_owned();
    let store = stack.app.agent().store().clone();

    // Turn 2 lands elsewhere while "two" runs, so "two" is stored as turn 3.
    *model.landing.lock().unwrap() = Some((store, subject, conversation));
    model.inner.push(Scripted::text("2"));
    alice.chat("two").await;
    model.inner.push(Scripted::text("3"));
    alice.chat("three").await;
    let requests = model.inner.requests.lock().unwrap();
    let seen: Vec<String> = requests.last().unwrap().iter().map(Message::text).collect();
    assert_eq!(
        seen,
        ["one", "1", "written elsewhere", "two", "2", "three"],
        "each stored turn once, in the store's order"
    );
}
