//! The Anthropic provider against a fake Messages API on 127.0.0.1:0 that streams server-sent
//! events as Anthropic documents them, records every request, and answers from a script.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use agent0::llm::anthropic::{API_VERSION, AnthropicConfig, AnthropicModel};
use agent0::llm::{Block, LlmError, Message, Model, ModelReply, ModelRequest, Role, StopReason};
use axum::body::Bytes;
use secrecy::SecretString;
use serde_json::{Value, json};
use url::Url;

use super::fake_llm::{self, Fake, Reply};

const KEY: &str = "sk-ant-api03-test-key-0123456789";

/// The fake Messages API.
async fn start(script: Vec<Reply>) -> (Url, Fake) {
    fake_llm::start(
        "/v1/messages",
        "",
        "text/event-stream; charset=utf-8",
        script,
    )
    .await
}

fn model(base_url: Url, timeout: Duration) -> AnthropicModel {
    let mut config = AnthropicConfig::new(SecretString::from(KEY));
    config.base_url = base_url;
    config.model = "claude-test".into();
    config.timeout = timeout;
    AnthropicModel::new(config).unwrap()
}

/// One SSE event the way Anthropic frames it: the `type` repeated as the event name.
fn event(data: Value) -> String {
    format!(
        "event: {}\ndata: {data}\n\n",
        data["type"].as_str().unwrap()
    )
}

/// The events of a whole stream, cut every `size` bytes regardless of event or line boundaries.
fn chopped(events: &[Value], size: usize) -> Vec<Bytes> {
    let text: String = events.iter().cloned().map(event).collect();
    text.as_bytes()
        .chunks(size)
        .map(Bytes::copy_from_slice)
        .collect()
}

fn message_start() -> Value {
    json!({"type": "message_start", "message": {"id": "msg_01", "type": "message",
        "role": "assistant", "content": [], "model": "claude-test", "stop_reason": null,
        "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}})
}

fn text_block(index: usize, pieces: &[&str]) -> Vec<Value> {
    let mut events = vec![json!({"type": "content_block_start", "index": index,
        "content_block": {"type": "text", "text": ""}})];
    for piece in pieces {
        events.push(json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": piece}}));
    }
    events.push(json!({"type": "content_block_stop", "index": index}));
    events
}

fn end(stop_reason: &str) -> Vec<Value> {
    vec![
        json!({"type": "message_delta", "delta": {"stop_reason": stop_reason,
            "stop_sequence": null}, "usage": {"output_tokens": 15}}),
        json!({"type": "message_stop"}),
    ]
}

/// Asks `model` with the shared tools.
async fn ask(
    model: &AnthropicModel,
    messages: &[Message],
) -> (Result<ModelReply, LlmError>, Vec<String>) {
    fake_llm::ask(model, messages, 1024).await
}

#[tokio::test]
async fn llm_anthropic_tool_loop_round_trip() {
    let mut first = vec![message_start()];
    first.extend(text_block(0, &["I'll check", " your list."]));
    first.extend([
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use",
            "id": "toolu_01A", "name": "list_todos", "input": {}}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{\"li"}}),
        json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "mit\": 3"}}),
        json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "}"}}),
        json!({"type": "content_block_stop", "index": 1}),
    ]);
    first.extend(end("tool_use"));
    let mut second = vec![message_start()];
    second.extend(text_block(0, &["You need", " milk."]));
    second.extend(end("end_turn"));
    let (url, fake) = start(vec![
        Reply::Stream {
            chunks: chopped(&first, 7),
            pause_before: None,
        },
        Reply::Stream {
            chunks: chopped(&second, 5),
            pause_before: None,
        },
    ])
    .await;
    let model = model(url, Duration::from_secs(10));

    let mut messages = vec![Message::user_text("What is on my list?")];
    let (reply, texts) = ask(&model, &messages).await;
    let reply = reply.unwrap();
    assert_eq!(texts, ["I'll check", " your list."]);
    assert_eq!(reply.stop_reason, StopReason::ToolUse);
    let tool_use = Block::ToolUse {
        id: "toolu_01A".into(),
        name: "list_todos".into(),
        input: json!({"limit": 3}),
    };
    assert_eq!(
        reply.content,
        [
            Block::Text {
                text: "I'll check your list.".into()
            },
            tool_use.clone()
        ]
    );

    messages.push(Message {
        role: Role::Assistant,
        content: reply.content,
    });
    messages.push(Message {
        role: Role::User,
        content: vec![Block::ToolResult {
            tool_use_id: "toolu_01A".into(),
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
        assert_eq!(request.uri.path(), "/v1/messages");
        assert_eq!(request.headers["x-api-key"], KEY);
        assert_eq!(request.headers["anthropic-version"], API_VERSION);
        assert_eq!(API_VERSION, "2023-06-01");
        assert_eq!(request.headers["content-type"], "application/json");
        assert!(request.headers.get("authorization").is_none());
    }
    assert_eq!(
        received[0].body,
        json!({
            "model": "claude-test",
            "max_tokens": 1024,
            "system": "You manage todos.",
            "stream": true,
            "messages": [{"role": "user",
                          "content": [{"type": "text", "text": "What is on my list?"}]}],
            "tools": [{"name": "list_todos", "description": "Lists the person's todos",
                       "input_schema": {"type": "object",
                                        "properties": {"limit": {"type": "integer"}}}}]
        })
    );
    // The second request replays the tool call and answers it, paired by id.
    let sent = &received[1].body["messages"];
    assert_eq!(sent.as_array().unwrap().len(), 3);
    assert_eq!(
        sent[1],
        json!({"role": "assistant", "content": [
            {"type": "text", "text": "I'll check your list."},
            {"type": "tool_use", "id": "toolu_01A", "name": "list_todos",
             "input": {"limit": 3}}]})
    );
    assert_eq!(
        sent[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "[\"milk\"]",
             "is_error": false}]})
    );
}

#[tokio::test]
async fn llm_anthropic_text_reaches_on_text_while_the_stream_is_open() {
    let mut events = vec![message_start()];
    events.extend(text_block(0, &["Hel", "lo", " there"]));
    events.extend(end("end_turn"));
    let chunks: Vec<Bytes> = events
        .iter()
        .cloned()
        .map(|e| Bytes::from(event(e)))
        .collect();
    // The server holds back everything after the first text delta until the client has shown
    // it: a client that buffered the whole answer would wait forever.
    let (url, fake) = start(vec![Reply::Stream {
        chunks,
        pause_before: Some(3),
    }])
    .await;
    let model = model(url, Duration::from_secs(10));
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
    .expect("the first delta was delivered before the stream ended")
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["Hel", "lo", " there"]);
    assert_eq!(
        reply.content,
        [Block::Text {
            text: "Hello there".into()
        }]
    );
    let received = fake.received.lock().unwrap();
    assert!(received[0].body.get("system").is_none());
    assert!(received[0].body.get("tools").is_none());
}

#[tokio::test]
async fn llm_anthropic_429_is_rate_limited_with_retry_after() {
    let (url, _fake) = start(vec![Reply::Plain {
        status: 429,
        headers: vec![("retry-after", "17"), ("content-type", "application/json")],
        body: json!({"type": "error", "error": {"type": "rate_limit_error",
            "message": "Number of request tokens has exceeded your per-minute rate limit"}})
        .to_string(),
    }])
    .await;
    let (reply, _) = ask(
        &model(url, Duration::from_secs(5)),
        &[Message::user_text("hi")],
    )
    .await;
    match reply {
        Err(error @ LlmError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Some(Duration::from_secs(17)));
            assert!(error.is_retryable());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn llm_anthropic_overload_is_overloaded() {
    let mut midway = vec![message_start()];
    midway.extend(text_block(0, &["Partial"]));
    midway.push(json!({"type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"}}));
    let (url, _fake) = start(vec![
        Reply::Plain {
            status: 529,
            headers: vec![("content-type", "application/json")],
            body: json!({"type": "error",
                "error": {"type": "overloaded_error", "message": "Overloaded"}})
            .to_string(),
        },
        Reply::Plain {
            status: 503,
            headers: vec![],
            body: "upstream unavailable".into(),
        },
        Reply::Stream {
            chunks: chopped(&midway, 11),
            pause_before: None,
        },
    ])
    .await;
    let model = model(url, Duration::from_secs(5));
    for _ in 0..3 {
        let (reply, _) = ask(&model, &[Message::user_text("hi")]).await;
        assert!(matches!(reply, Err(LlmError::Overloaded)), "{reply:?}");
    }
}

#[tokio::test]
async fn llm_anthropic_400_is_refused_without_the_key() {
    let (url, fake) = start(vec![Reply::Plain {
        status: 400,
        headers: vec![("content-type", "application/json")],
        // A hostile or careless server echoing our key back must not get it into our errors.
        body: json!({"type": "error", "error": {"type": "invalid_request_error",
            "message": format!("max_tokens: too large for key {KEY}")},
            "request_id": "req_011"})
        .to_string(),
    }])
    .await;
    let (reply, _) = ask(
        &model(url, Duration::from_secs(5)),
        &[Message::user_text("hi")],
    )
    .await;
    let error = reply.unwrap_err();
    match &error {
        LlmError::Refused { status, message } => {
            assert_eq!(*status, 400);
            assert!(message.starts_with("max_tokens: too large"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!error.is_retryable());
    assert!(!error.to_string().contains(KEY));
    assert!(!format!("{error:?}").contains(KEY));
    assert_eq!(fake.received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn llm_anthropic_garbage_is_invalid() {
    let (url, _fake) = start(vec![
        Reply::Plain {
            status: 200,
            headers: vec![("content-type", "text/event-stream")],
            body: "event: message_start\ndata: {this is not json\n\n".into(),
        },
        Reply::Plain {
            status: 200,
            headers: vec![("content-type", "text/event-stream")],
            body: "<html>hello</html>\n\n".into(),
        },
        Reply::Plain {
            status: 200,
            headers: vec![("content-type", "text/html")],
            body: "<html>a captive portal</html>".into(),
        },
    ])
    .await;
    let model = model(url, Duration::from_secs(5));
    for _ in 0..3 {
        let (reply, _) = ask(&model, &[Message::user_text("hi")]).await;
        assert!(matches!(reply, Err(LlmError::Invalid(_))), "{reply:?}");
    }
}

#[tokio::test]
async fn llm_anthropic_silent_server_times_out() {
    let mut events = vec![message_start()];
    events.extend(text_block(0, &["Hel", "lo"]));
    let chunks: Vec<Bytes> = events
        .iter()
        .cloned()
        .map(|e| Bytes::from(event(e)))
        .collect();
    let (url, _fake) = start(vec![
        Reply::Never,
        // Starts, then stalls for good (nobody releases it).
        Reply::Stream {
            chunks,
            pause_before: Some(3),
        },
    ])
    .await;
    let model = model(url, Duration::from_millis(300));
    for _ in 0..2 {
        let started = Instant::now();
        let (reply, _) = ask(&model, &[Message::user_text("hi")]).await;
        assert!(matches!(reply, Err(LlmError::Timeout)), "{reply:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

#[tokio::test]
async fn llm_anthropic_closed_port_is_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let (reply, _) = ask(
        &model(url, Duration::from_secs(5)),
        &[Message::user_text("hi")],
    )
    .await;
    match reply {
        Err(LlmError::Unreachable(message)) => assert!(!message.contains(KEY)),
        other => panic!("{other:?}"),
    }
}
