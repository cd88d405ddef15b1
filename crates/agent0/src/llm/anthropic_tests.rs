//! Unit tests of the Anthropic wire mapping and stream assembly (see `anthropic.rs`).

use std::sync::Mutex;

use rstest::rstest;
use serde_json::json;

use super::*;
use crate::llm::transport::StreamAssembler;

fn two_step_conversation() -> Vec<Message> {
    vec![
        Message::user_text("What is on my list?"),
        Message {
            role: Role::Assistant,
            content: vec![
                Block::Text {
                    text: "Let me look.".into(),
                },
                Block::ToolUse {
                    id: "toolu_01".into(),
                    name: "list_todos".into(),
                    input: json!({"limit": 5}),
                },
            ],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: "toolu_01".into(),
                content: "[\"milk\"]".into(),
                is_error: false,
            }],
        },
    ]
}

#[test]
fn request_body_pairs_tool_use_and_result() {
    let messages = two_step_conversation();
    let tools = [ToolSpec {
        name: "list_todos".into(),
        description: "Lists todos".into(),
        input_schema: std::sync::Arc::new(
            serde_json::from_value(json!({"type": "object"})).unwrap(),
        ),
    }];
    let request = ModelRequest {
        system: "Be brief.",
        messages: &messages,
        tools: &tools,
        max_tokens: 512,
    };
    let body = serde_json::to_value(WireRequest::new("claude-x", &request)).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "claude-x",
            "max_tokens": 512,
            "system": "Be brief.",
            "stream": true,
            "tools": [{"name": "list_todos", "description": "Lists todos",
                       "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "What is on my list?"}]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_01", "name": "list_todos",
                     "input": {"limit": 5}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01",
                     "content": "[\"milk\"]", "is_error": false}]}
            ]
        })
    );
}

#[test]
fn empty_system_tools_and_text_are_left_out() {
    let messages = [Message {
        role: Role::User,
        content: vec![
            Block::Text { text: "".into() },
            Block::Text { text: "hi".into() },
        ],
    }];
    let request = ModelRequest {
        system: "",
        messages: &messages,
        tools: &[],
        max_tokens: 1,
    };
    let body = serde_json::to_value(WireRequest::new("m", &request)).unwrap();
    assert!(body.get("system").is_none());
    assert!(body.get("tools").is_none());
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"type": "text", "text": "hi"}])
    );
}

fn assemble(events: &[Value]) -> (Result<ModelReply, LlmError>, Vec<String>) {
    let seen = Mutex::new(Vec::new());
    let sink = |t: &str| seen.lock().unwrap().push(t.to_owned());
    let mut assembler = Assembler::default();
    for event in events {
        match assembler.apply(&event.to_string(), &sink, "sk-secret") {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return (Err(e), seen.into_inner().unwrap()),
        }
    }
    (assembler.finish(), seen.into_inner().unwrap())
}

#[test]
fn assembles_text_and_tool_use_from_deltas() {
    let (reply, texts) = assemble(&[
        json!({"type": "message_start", "message": {"id": "msg_1", "content": []}}),
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "text_delta", "text": "Checking"}}),
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "text_delta", "text": " now."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block":
               {"type": "tool_use", "id": "toolu_9", "name": "list_todos", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1,
               "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 1,
               "delta": {"type": "input_json_delta", "partial_json": "{\"limit\": "}}),
        json!({"type": "content_block_delta", "index": 1,
               "delta": {"type": "input_json_delta", "partial_json": "5}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "some_future_event"}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
               "usage": {"output_tokens": 9}}),
        json!({"type": "message_stop"}),
    ]);
    assert_eq!(texts, ["Checking", " now."]);
    assert_eq!(
        reply.unwrap(),
        ModelReply {
            content: vec![
                Block::Text {
                    text: "Checking now.".into()
                },
                Block::ToolUse {
                    id: "toolu_9".into(),
                    name: "list_todos".into(),
                    input: json!({"limit": 5}),
                },
            ],
            stop_reason: StopReason::ToolUse,
        }
    );
}

#[test]
fn tool_use_without_input_deltas_gets_an_empty_object() {
    let (reply, _) = assemble(&[
        json!({"type": "content_block_start", "index": 0, "content_block":
               {"type": "tool_use", "id": "t", "name": "now", "input": {}}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
        json!({"type": "message_stop"}),
    ]);
    let reply = reply.unwrap();
    assert_eq!(
        reply.content[0],
        Block::ToolUse {
            id: "t".into(),
            name: "now".into(),
            input: json!({}),
        }
    );
}

#[test]
fn thinking_blocks_are_skipped_and_not_streamed_as_text() {
    let (reply, texts) = assemble(&[
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "signature_delta", "signature": "abc"}}),
        json!({"type": "content_block_start", "index": 1,
               "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1,
               "delta": {"type": "text_delta", "text": "Hi"}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
        json!({"type": "message_stop"}),
    ]);
    assert_eq!(texts, ["Hi"]);
    let reply = reply.unwrap();
    assert_eq!(reply.content, [Block::Text { text: "Hi".into() }]);
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
}

#[rstest]
#[case::overloaded("overloaded_error", "Overloaded")]
#[case::rate_limited("rate_limit_error", "RateLimited")]
#[case::internal("api_error", "Unreachable")]
#[case::other("invalid_request_error", "Invalid")]
fn stream_error_events_are_mapped(#[case] kind: &str, #[case] expected: &str) {
    let (reply, _) = assemble(&[
        json!({"type": "message_start", "message": {}}),
        json!({"type": "error", "error": {"type": kind, "message": "bad sk-secret"}}),
    ]);
    let error = reply.unwrap_err();
    assert!(format!("{error:?}").starts_with(expected), "{error:?}");
    assert!(!error.to_string().contains("sk-secret"));
}

#[rstest]
#[case::not_json(json!("not json"))]
#[case::delta_before_start(json!({"type": "content_block_delta", "index": 3,
    "delta": {"type": "text_delta", "text": "x"}}))]
fn malformed_events_are_invalid(#[case] event: Value) {
    let (reply, _) = assemble(&[event]);
    assert!(matches!(reply, Err(LlmError::Invalid(_))), "{reply:?}");
}

#[test]
fn a_stream_without_message_stop_is_invalid() {
    let (reply, _) = assemble(&[json!({"type": "message_delta",
                                      "delta": {"stop_reason": "end_turn"}})]);
    assert!(matches!(reply, Err(LlmError::Invalid(_))));
}

#[test]
fn broken_tool_json_is_invalid() {
    let (reply, _) = assemble(&[
        json!({"type": "content_block_start", "index": 0, "content_block":
               {"type": "tool_use", "id": "t", "name": "n", "input": {}}}),
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "input_json_delta", "partial_json": "{\"a\": "}}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
        json!({"type": "message_stop"}),
    ]);
    assert!(matches!(reply, Err(LlmError::Invalid(_))));
}

#[test]
fn http_errors_are_mapped() {
    let body = |kind: &str, message: &str| {
        json!({"type": "error", "error": {"type": kind, "message": message}}).to_string()
    };
    let rate = error_from_status(429, Some(Duration::from_secs(7)), b"{}", "k");
    assert!(matches!(
        rate,
        LlmError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(7)
    ));
    let spent = json!({"type": "error", "error": {"type": "rate_limit_error",
        "message": "spend limit", "details": {"error_code": "enforced_spend_limit_reached"}}});
    assert!(matches!(
        error_from_status(429, None, spent.to_string().as_bytes(), "k"),
        LlmError::Refused { status: 429, .. }
    ));
    for status in [503, 529] {
        assert!(matches!(
            error_from_status(status, None, b"", "k"),
            LlmError::Overloaded
        ));
    }
    assert!(matches!(
        error_from_status(500, None, b"", "k"),
        LlmError::Unreachable(_)
    ));
    let refused = error_from_status(
        401,
        None,
        body("authentication_error", "invalid x-api-key sk-ant-123").as_bytes(),
        "sk-ant-123",
    );
    match refused {
        LlmError::Refused { status, message } => {
            assert_eq!(status, 401);
            assert_eq!(message, "invalid x-api-key [redacted]");
        }
        other => panic!("{other:?}"),
    }
    let raw = error_from_status(404, None, b"<html>\nnot found</html>", "k");
    assert!(matches!(raw, LlmError::Refused { ref message, .. }
        if message == "<html> not found</html>"));
}

#[test]
fn messages_are_bounded() {
    let long = "x".repeat(2000);
    let cleaned = transport::clean_message(&long, "");
    assert_eq!(cleaned.chars().count(), 501);
    assert_eq!(transport::clean_message("  ", "k"), "(no message)");
}

#[test]
fn endpoint_keeps_a_gateway_prefix() {
    let base = Url::parse("https://gw.example/anthropic/").unwrap();
    assert_eq!(
        transport::endpoint(&base, "v1/messages").unwrap().as_str(),
        "https://gw.example/anthropic/v1/messages"
    );
    let ftp = Url::parse("ftp://x.example").unwrap();
    assert!(transport::endpoint(&ftp, "v1/messages").is_err());
}

#[test]
fn debug_output_hides_the_key() {
    let config = AnthropicConfig::new(SecretString::from("sk-ant-hidden"));
    assert!(!format!("{config:?}").contains("sk-ant-hidden"));
    let model = AnthropicModel::new(config).unwrap();
    assert!(!format!("{model:?}").contains("sk-ant-hidden"));
}
