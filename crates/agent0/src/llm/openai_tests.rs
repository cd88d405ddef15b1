//! Unit tests of the Chat Completions wire mapping and chunk assembly (see `openai.rs`).

use std::sync::Mutex;

use rstest::rstest;
use serde_json::json;

use super::*;
use crate::llm::transport::StreamAssembler;

#[test]
fn request_body_maps_tool_calls_and_results() {
    let messages = vec![
        Message::user_text("What is on my list?"),
        Message {
            role: Role::Assistant,
            content: vec![Block::ToolUse {
                id: "call_1".into(),
                name: "list_todos".into(),
                input: json!({"limit": 5}),
            }],
        },
        Message {
            role: Role::User,
            content: vec![
                Block::ToolResult {
                    tool_use_id: "call_1".into(),
                    content: "[\"milk\"]".into(),
                    is_error: false,
                },
                Block::ToolResult {
                    tool_use_id: "call_2".into(),
                    content: "boom".into(),
                    is_error: true,
                },
            ],
        },
    ];
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
        max_tokens: 256,
    };
    let body = serde_json::to_value(WireRequest::new("llama3.2", &request)).unwrap();
    assert_eq!(
        body,
        json!({
            "model": "llama3.2",
            "max_tokens": 256,
            "stream": true,
            "tools": [{"type": "function", "function": {"name": "list_todos",
                "description": "Lists todos", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is on my list?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1",
                    "type": "function",
                    "function": {"name": "list_todos", "arguments": "{\"limit\":5}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "[\"milk\"]"},
                {"role": "tool", "tool_call_id": "call_2", "content": "Error: boom"}
            ]
        })
    );
}

#[test]
fn assistant_text_and_empty_parts_are_mapped() {
    let messages = vec![Message {
        role: Role::Assistant,
        content: vec![Block::Text {
            text: "Done.".into(),
        }],
    }];
    let request = ModelRequest {
        system: "",
        messages: &messages,
        tools: &[],
        max_tokens: 1,
    };
    let body = serde_json::to_value(WireRequest::new("m", &request)).unwrap();
    assert!(body.get("tools").is_none());
    assert_eq!(
        body["messages"],
        json!([{"role": "assistant", "content": "Done."}])
    );
}

fn assemble(chunks: &[&str]) -> (Result<ModelReply, LlmError>, Vec<String>) {
    let seen = Mutex::new(Vec::new());
    let sink = |t: &str| seen.lock().unwrap().push(t.to_owned());
    let mut assembler = Assembler::default();
    for chunk in chunks {
        match assembler.apply(chunk, &sink, "sk-secret") {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => return (Err(e), seen.into_inner().unwrap()),
        }
    }
    (assembler.finish(), seen.into_inner().unwrap())
}

#[test]
fn assembles_text_and_tool_calls_by_index() {
    let (reply, texts) = assemble(&[
        r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":"Let me"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"content":" check."},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"list_todos","arguments":""}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"now","arguments":"{}"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"limit\":"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" 5}"}}]},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ]);
    assert_eq!(texts, ["Let me", " check."]);
    assert_eq!(
        reply.unwrap(),
        ModelReply {
            content: vec![
                Block::Text {
                    text: "Let me check.".into()
                },
                Block::ToolUse {
                    id: "call_a".into(),
                    name: "list_todos".into(),
                    input: json!({"limit": 5}),
                },
                Block::ToolUse {
                    id: "call_b".into(),
                    name: "now".into(),
                    input: json!({}),
                },
            ],
            stop_reason: StopReason::ToolUse,
        }
    );
}

#[test]
fn whole_calls_without_index_or_id_and_stop_mean_tool_use() {
    let (reply, _) = assemble(&[
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"function":{"name":"now","arguments":"{\"tz\":\"UTC\"}"}}]},"finish_reason":"stop"}]}"#,
        "[DONE]",
    ]);
    let reply = reply.unwrap();
    assert_eq!(reply.stop_reason, StopReason::ToolUse);
    assert_eq!(
        reply.content,
        [Block::ToolUse {
            id: "call_0".into(),
            name: "now".into(),
            input: json!({"tz": "UTC"}),
        }]
    );
}

#[rstest]
#[case::stop("stop", StopReason::EndTurn)]
#[case::length("length", StopReason::MaxTokens)]
#[case::filter("content_filter", StopReason::Other)]
fn finish_reasons_are_mapped(#[case] reason: &str, #[case] expected: StopReason) {
    let last = format!(r#"{{"choices":[{{"index":0,"delta":{{}},"finish_reason":"{reason}"}}]}}"#);
    let (reply, _) = assemble(&[
        r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
        &last,
    ]);
    assert_eq!(reply.unwrap().stop_reason, expected);
}

#[rstest]
#[case::not_json(&["{nope"])]
#[case::no_end(&[r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#])]
#[case::bad_arguments(&[
    r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"f","arguments":"{oops"}}]}}]}"#,
    "[DONE]",
])]
#[case::mid_stream_error(&[r#"{"error":{"message":"bad sk-secret","type":"server_error"}}"#])]
fn malformed_streams_are_invalid(#[case] chunks: &[&str]) {
    let (reply, _) = assemble(chunks);
    match reply {
        Err(LlmError::Invalid(message)) => assert!(!message.contains("sk-secret")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn http_errors_are_mapped() {
    assert!(matches!(
        error_from_status(429, Some(Duration::from_secs(3)), b"{}", ""),
        LlmError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(3)
    ));
    let quota = json!({"error": {"message": "quota", "type": "insufficient_quota",
        "code": "insufficient_quota"}});
    assert!(matches!(
        error_from_status(429, None, quota.to_string().as_bytes(), ""),
        LlmError::Refused { status: 429, .. }
    ));
    assert!(matches!(
        error_from_status(503, None, b"", ""),
        LlmError::Overloaded
    ));
    assert!(matches!(
        error_from_status(502, None, b"", ""),
        LlmError::Unreachable(_)
    ));
    let openai = json!({"error": {"message": "Incorrect API key provided: sk-abc",
        "type": "invalid_request_error", "code": "invalid_api_key"}});
    match error_from_status(401, None, openai.to_string().as_bytes(), "sk-abc") {
        LlmError::Refused { status, message } => {
            assert_eq!(status, 401);
            assert_eq!(message, "Incorrect API key provided: [redacted]");
        }
        other => panic!("{other:?}"),
    }
    let ollama = br#"{"error":"model \"nope\" not found, try pulling it first"}"#;
    assert!(matches!(
        error_from_status(404, None, ollama, ""),
        LlmError::Refused { status: 404, ref message } if message.starts_with("model \"nope\"")
    ));
}

#[test]
fn debug_output_hides_the_key() {
    let mut config = OpenAiConfig::new(Url::parse("http://localhost:11434/v1").unwrap(), "m");
    config.api_key = Some(SecretString::from("sk-hidden"));
    assert!(!format!("{config:?}").contains("sk-hidden"));
    let model = OpenAiModel::new(config).unwrap();
    assert!(!format!("{model:?}").contains("sk-hidden"));
    assert_eq!(
        model.endpoint.as_str(),
        "http://localhost:11434/v1/chat/completions"
    );
}
