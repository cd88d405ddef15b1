//! The OpenAI-compatible provider against a fake `/v1/chat/completions` on 127.0.0.1:0 that
//! streams `data:` chunks ending in `data: [DONE]` as OpenAI (and Ollama, vLLM, llama.cpp) do,
//! records every request, and answers from a script.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use agent0::llm::openai::{OpenAiConfig, OpenAiModel};
use agent0::llm::{Block, LlmError, Message, Model, ModelReply, ModelRequest, Role, StopReason};
use axum::body::Bytes;
use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

use super::fake_llm::{self, Fake, Reply};

const KEY: &str = "sk-proj-test-key-9876543210";

/// The fake `/v1/chat/completions`.
async fn start(script: Vec<Reply>) -> (Url, Fake) {
    fake_llm::start("/v1/chat/completions", "/v1", "text/event-stream", script).await
}

fn model(base_url: Url, key: Option<&str>, timeout: Duration) -> OpenAiModel {
    let mut config = OpenAiConfig::new(base_url, "llama3.2");
    config.api_key = key.map(SecretString::from);
    config.timeout = timeout;
    OpenAiModel::new(config).unwrap()
}

/// A `chat.completion.chunk` with one choice.
fn chunk(delta: Value, finish_reason: Option<&str>) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": "llama3.2", "system_fingerprint": "fp_ollama",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]})
}

/// The whole stream as the server frames it, cut every `size` bytes.
fn chopped(chunks: &[Value], size: usize) -> Vec<Bytes> {
    let mut text: String = chunks.iter().map(|c| format!("data: {c}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    text.as_bytes()
        .chunks(size)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn text_stream(pieces: &[&str]) -> Vec<Value> {
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
    for piece in pieces {
        chunks.push(chunk(json!({"content": piece}), None));
    }
    chunks.push(chunk(json!({}), Some("stop")));
    chunks
}

/// Asks `model` with the shared tools.
async fn ask(
    model: &OpenAiModel,
    messages: &[Message],
) -> (Result<ModelReply, LlmError>, Vec<String>) {
    fake_llm::ask(model, messages, 512).await
}

#[tokio::test]
async fn llm_openai_tool_loop_round_trip() {
    let first = vec![
        chunk(json!({"role": "assistant", "content": ""}), None),
        chunk(json!({"content": "Let me"}), None),
        chunk(json!({"content": " look."}), None),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_abc", "type": "function",
                "function": {"name": "list_todos", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"lim"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "it\": 3}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
    ];
    let (url, fake) = start(vec![
        Reply::Stream {
            chunks: chopped(&first, 9),
            pause_before: None,
        },
        Reply::Stream {
            chunks: chopped(&text_stream(&["You need", " milk."]), 6),
            pause_before: None,
        },
    ])
    .await;
    let model = model(url, Some(KEY), Duration::from_secs(10));

    let mut messages = vec![Message::user_text("What is on my list?")];
    let (reply, texts) = ask(&model, &messages).await;
    let reply = reply.unwrap();
    assert_eq!(texts, ["Let me", " look."]);
    assert_eq!(reply.stop_reason, StopReason::ToolUse);
    assert_eq!(
        reply.content,
        [
            Block::Text {
                text: "Let me look.".into()
            },
            Block::ToolUse {
                id: "call_abc".into(),
                name: "list_todos".into(),
                input: json!({"limit": 3}),
            }
        ]
    );

    messages.push(Message {
        role: Role::Assistant,
        content: reply.content,
    });
    messages.push(Message {
        role: Role::User,
        content: vec![Block::ToolResult {
            tool_use_id: "call_abc".into(),
            content: "[\"milk\"]".into(),
            is_error: false,
        }],
    });
    let (reply, texts) = ask(&model, &messages).await;
    let reply = reply.unwrap();
    assert_eq!(texts, ["You need", " milk."]);
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    assert_eq!(
        reply.content,
        [Block::Text {
            text: "You need milk.".into()
        }]
    );

    let received = fake.received.lock().unwrap();
    assert_eq!(received.len(), 2);
    for request in received.iter() {
        assert_eq!(request.uri.path(), "/v1/chat/completions");
        assert_eq!(request.headers["authorization"], format!("Bearer {KEY}"));
        assert_eq!(request.headers["content-type"], "application/json");
    }
    assert_eq!(
        received[0].body,
        json!({
            "model": "llama3.2",
            "max_tokens": 512,
            "stream": true,
            "messages": [
                {"role": "system", "content": "You manage todos."},
                {"role": "user", "content": "What is on my list?"}
            ],
            "tools": [{"type": "function", "function": {
                "name": "list_todos", "description": "Lists the person's todos",
                "parameters": {"type": "object", "properties": {"limit": {"type": "integer"}}}}}]
        })
    );
    // The second request replays the call (arguments as a JSON string) and answers it by id.
    let sent = received[1].body["messages"].as_array().unwrap();
    assert_eq!(sent.len(), 4);
    assert_eq!(
        sent[2],
        json!({"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "call_abc", "type": "function",
             "function": {"name": "list_todos", "arguments": "{\"limit\":3}"}}]})
    );
    assert_eq!(
        sent[3],
        json!({"role": "tool", "tool_call_id": "call_abc", "content": "[\"milk\"]"})
    );
}

#[tokio::test]
async fn llm_openai_without_a_key_sends_no_authorization_and_streams_live() {
    let chunks: Vec<Bytes> = text_stream(&["Hel", "lo"])
        .iter()
        .map(|c| Bytes::from(format!("data: {c}\n\n")))
        .chain([Bytes::from_static(b"data: [DONE]\n\n")])
        .collect();
    // Everything after the first text piece waits until the client has shown it.
    let (url, fake) = start(vec![Reply::Stream {
        chunks,
        pause_before: Some(2),
    }])
    .await;
    let model = model(url, None, Duration::from_secs(10));
    let seen = Mutex::new(Vec::new());
    let release = fake.release.clone();
    let on_text = |text: &str| {
        seen.lock().unwrap().push(text.to_owned());
        release.notify_one();
    };
    let messages = [Message::user_text("Say hello")];
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        model.respond(
            ModelRequest {
                system: "",
                messages: &messages,
                tools: &[],
                max_tokens: 50,
            },
            &on_text,
        ),
    )
    .await
    .expect("the first piece was delivered before the stream ended")
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["Hel", "lo"]);
    assert_eq!(
        reply.content,
        [Block::Text {
            text: "Hello".into()
        }]
    );
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    let received = fake.received.lock().unwrap();
    assert!(received[0].headers.get("authorization").is_none());
    assert_eq!(
        received[0].body["messages"],
        json!([{"role": "user", "content": "Say hello"}])
    );
    assert!(received[0].body.get("tools").is_none());
}

#[tokio::test]
async fn llm_openai_429_is_rate_limited_with_retry_after() {
    let (url, _fake) = start(vec![Reply::Plain {
        status: 429,
        headers: vec![("retry-after", "9"), ("content-type", "application/json")],
        body: json!({"error": {"message": "Rate limit reached for requests",
            "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
        .to_string(),
    }])
    .await;
    let (reply, _) = ask(
        &model(url, Some(KEY), Duration::from_secs(5)),
        &[Message::user_text("hi")],
    )
    .await;
    assert!(
        matches!(reply, Err(LlmError::RateLimited { retry_after: Some(d) })
            if d == Duration::from_secs(9)),
        "{reply:?}"
    );
}

#[tokio::test]
async fn llm_openai_overload_is_overloaded() {
    let (url, _fake) = start(vec![
        Reply::Plain {
            status: 503,
            headers: vec![("content-type", "application/json")],
            body: json!({"error": {"message": "The engine is currently overloaded",
                "type": "server_error"}})
            .to_string(),
        },
        Reply::Plain {
            status: 529,
            headers: vec![],
            body: String::new(),
        },
    ])
    .await;
    let model = model(url, None, Duration::from_secs(5));
    for _ in 0..2 {
        let (reply, _) = ask(&model, &[Message::user_text("hi")]).await;
        assert!(matches!(reply, Err(LlmError::Overloaded)), "{reply:?}");
    }
}

#[tokio::test]
async fn llm_openai_400_is_refused_without_the_key() {
    let (url, _fake) = start(vec![
        Reply::Plain {
            status: 400,
            headers: vec![("content-type", "application/json")],
            body: json!({"error": {"message": format!("Invalid tools[0] for key {KEY}"),
                "type": "invalid_request_error", "param": "tools", "code": null}})
            .to_string(),
        },
        // Ollama's shape: `error` is a string.
        Reply::Plain {
            status: 404,
            headers: vec![("content-type", "application/json")],
            body: r#"{"error":"model \"llama3.2\" not found, try pulling it first"}"#.into(),
        },
    ])
    .await;
    let model = model(url, Some(KEY), Duration::from_secs(5));
    let (reply, _) = ask(&model, &[Message::user_text("hi")]).await;
    let error = reply.unwrap_err();
    match &error {
        LlmError::Refused { status, message } => {
            assert_eq!(*status, 400);
            assert!(message.starts_with("Invalid tools[0]"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!error.to_string().contains(KEY));
    assert!(!format!("{error:?}").contains(KEY));
    let (reply, _) = ask(&model, &[Message::user_text("hi")]).await;
    assert!(
        matches!(reply, Err(LlmError::Refused { status: 404, ref message })
            if message == "model \"llama3.2\" not found, try pulling it first"),
        "{reply:?}"
    );
}

#[tokio::test]
async fn llm_openai_garbage_is_invalid() {
    let (url, _fake) = start(vec![
        Reply::Plain {
            status: 200,
            headers: vec![("content-type", "text/event-stream")],
            body: "data: {\"choices\": [oops\n\n".into(),
        },
        Reply::Plain {
            status: 200,
            headers: vec![("content-type", "text/event-stream")],
            body: "nothing useful here\n\n".into(),
        },
        Reply::Plain {
            status: 200,
            headers: vec![("content-type", "text/plain")],
            body: "hello".into(),
        },
    ])
    .await;
    let model = model(url, None, Duration::from_secs(5));
    for _ in 0..3 {
        let (reply, _) = ask(&model, &[Message::user_text("hi")]).await;
        assert!(matches!(reply, Err(LlmError::Invalid(_))), "{reply:?}");
    }
}

#[tokio::test]
async fn llm_openai_silent_server_times_out() {
    let chunks: Vec<Bytes> = text_stream(&["Hel", "lo"])
        .iter()
        .map(|c| Bytes::from(format!("data: {c}\n\n")))
        .collect();
    let (url, _fake) = start(vec![
        Reply::Never,
        Reply::Stream {
            chunks,
            pause_before: Some(2),
        },
    ])
    .await;
    let model = model(url, Some(KEY), Duration::from_millis(300));
    for _ in 0..2 {
        let started = Instant::now();
        let (reply, _) = ask(&model, &[Message::user_text("hi")]).await;
        assert!(matches!(reply, Err(LlmError::Timeout)), "{reply:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
