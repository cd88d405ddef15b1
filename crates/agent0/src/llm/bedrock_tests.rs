//! Unit tests of the Bedrock client (see `bedrock.rs`): AWS's published SigV4 test-suite vectors,
//! the Converse body for a tool conversation, and a round trip against a local fake Bedrock that
//! checks, on its side, that the signature covers exactly what arrived on the wire.

use std::sync::Mutex;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap as AxumHeaders, StatusCode, Uri};
use axum::response::IntoResponse;
use protocol::FixedClock;
use serde_json::json;

use super::*;

/// 2015-08-30T12:36:00Z, the time of the AWS SigV4 test suite.
const SUITE_TIME: i64 = 1_440_938_160;

const SUITE_KEYS: SigningKeys<'static> = SigningKeys {
    access_key_id: "AKIDEXAMPLE",
    secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    session_token: None,
};

fn suite_scope() -> SigningScope<'static> {
    SigningScope {
        region: "us-east-1",
        service: "service",
        time: UNIX_EPOCH + Duration::from_secs(SUITE_TIME as u64),
    }
}

fn header<'a>(signed: &'a [(&'static str, String)], name: &str) -> &'a str {
    signed
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {signed:?}"))
}

/// aws-sig-v4-test-suite `get-vanilla`.
#[test]
fn sigv4_get_vanilla() {
    let signed = sign_headers(
        "GET",
        "https://example.amazonaws.com/",
        &[],
        b"",
        &SUITE_KEYS,
        &suite_scope(),
    )
    .unwrap();
    assert_eq!(header(&signed, "x-amz-date"), "20150830T123600Z");
    assert_eq!(
        header(&signed, "authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=host;x-amz-date, \
         Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
    );
}

/// aws-sig-v4-test-suite `post-vanilla`.
#[test]
fn sigv4_post_vanilla() {
    let signed = sign_headers(
        "POST",
        "https://example.amazonaws.com/",
        &[],
        b"",
        &SUITE_KEYS,
        &suite_scope(),
    )
    .unwrap();
    assert!(
        header(&signed, "authorization").ends_with(
            "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        )
    );
}

/// aws-sig-v4-test-suite `post-x-www-form-urlencoded`: a signed content type and a hashed body.
#[test]
fn sigv4_post_with_body() {
    let signed = sign_headers(
        "POST",
        "https://example.amazonaws.com/",
        &[("content-type", "application/x-www-form-urlencoded")],
        b"Param1=value1",
        &SUITE_KEYS,
        &suite_scope(),
    )
    .unwrap();
    assert_eq!(
        header(&signed, "authorization"),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, \
         Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
    );
}

#[test]
fn sigv4_signs_the_session_token() {
    let keys = SigningKeys {
        session_token: Some("the-token"),
        ..SUITE_KEYS
    };
    let signed = sign_headers(
        "POST",
        "https://example.amazonaws.com/",
        &[],
        b"",
        &keys,
        &suite_scope(),
    )
    .unwrap();
    assert_eq!(header(&signed, "x-amz-security-token"), "the-token");
    assert!(
        header(&signed, "authorization")
            .contains("SignedHeaders=host;x-amz-date;x-amz-security-token,")
    );
}

fn tool_conversation() -> (Vec<Message>, Vec<ToolSpec>) {
    let messages = vec![
        Message::user_text("What is on my list?"),
        Message {
            role: Role::Assistant,
            content: vec![
                Block::Text {
                    text: "Let me look.".into(),
                },
                Block::ToolUse {
                    id: "tooluse_1".into(),
                    name: "list_todos".into(),
                    input: json!({"limit": 5}),
                },
            ],
        },
        Message {
            role: Role::User,
            content: vec![Block::ToolResult {
                tool_use_id: "tooluse_1".into(),
                content: "[\"milk\"]".into(),
                is_error: false,
            }],
        },
    ];
    let tools = vec![ToolSpec {
        name: "list_todos".into(),
        description: "Lists todos".into(),
        input_schema: std::sync::Arc::new(
            serde_json::from_value(
                json!({"type": "object", "properties": {"limit": {"type": "integer"}}}),
            )
            .unwrap(),
        ),
    }];
    (messages, tools)
}

#[test]
fn converse_body_for_a_two_step_tool_conversation() {
    let (messages, tools) = tool_conversation();
    let request = ModelRequest {
        system: "Be brief.",
        messages: &messages,
        tools: &tools,
        max_tokens: 300,
    };
    let body = serde_json::to_value(ConverseRequest::new(&request)).unwrap();
    assert_eq!(
        body,
        json!({
            "messages": [
                {"role": "user", "content": [{"text": "What is on my list?"}]},
                {"role": "assistant", "content": [
                    {"text": "Let me look."},
                    {"toolUse": {"toolUseId": "tooluse_1", "name": "list_todos",
                                 "input": {"limit": 5}}}]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "tooluse_1",
                                    "content": [{"text": "[\"milk\"]"}],
                                    "status": "success"}}]}
            ],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 300},
            "toolConfig": {"tools": [{"toolSpec": {
                "name": "list_todos",
                "description": "Lists todos",
                "inputSchema": {"json": {"type": "object",
                    "properties": {"limit": {"type": "integer"}}}}}}]}
        })
    );
}

#[test]
fn failed_tools_and_empty_parts() {
    let messages = [Message {
        role: Role::User,
        content: vec![
            Block::Text { text: " ".into() },
            Block::ToolResult {
                tool_use_id: "t".into(),
                content: "".into(),
                is_error: true,
            },
        ],
    }];
    let request = ModelRequest {
        system: "",
        messages: &messages,
        tools: &[],
        max_tokens: 1,
    };
    let body = serde_json::to_value(ConverseRequest::new(&request)).unwrap();
    assert!(body.get("system").is_none());
    assert!(body.get("toolConfig").is_none());
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"toolResult": {"toolUseId": "t", "content": [{"text": "(no output)"}],
                               "status": "error"}}])
    );
}

#[test]
fn model_ids_stay_one_path_segment() {
    let config = BedrockConfig::new(
        "us-west-2",
        "AKID",
        SecretString::from("s"),
        "us.anthropic.claude-3-5-sonnet-20241022-v2:0",
    );
    let model = BedrockModel::new(config, FixedClock::at(SUITE_TIME)).unwrap();
    assert_eq!(
        model.url.as_str(),
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/\
         us.anthropic.claude-3-5-sonnet-20241022-v2%3A0/converse"
    );
    assert_eq!(
        encode_path_segment("arn:aws:bedrock:us-east-1:1:inference-profile/x"),
        "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fx"
    );
    let bad = BedrockConfig::new("us-east-1.evil.example/", "A", SecretString::from("s"), "m");
    assert!(BedrockModel::new(bad, FixedClock::at(0)).is_err());
}

#[test]
fn answers_are_parsed() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "hm"}}},
            {"text": "Checking."},
            {"toolUse": {"toolUseId": "tooluse_9", "name": "list_todos", "input": {"limit": 2}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
        "metrics": {"latencyMs": 100}
    });
    let reply = parse_response(body.to_string().as_bytes()).unwrap();
    assert_eq!(reply.stop_reason, StopReason::ToolUse);
    assert_eq!(
        reply.content,
        [
            Block::Text {
                text: "Checking.".into()
            },
            Block::ToolUse {
                id: "tooluse_9".into(),
                name: "list_todos".into(),
                input: json!({"limit": 2}),
            }
        ]
    );
    assert!(matches!(
        parse_response(b"<html>"),
        Err(LlmError::Invalid(_))
    ));
}

#[test]
fn errors_are_mapped_by_name_then_status() {
    let m = || "msg".to_owned();
    let d = Some(Duration::from_secs(2));
    assert!(matches!(
        error_from_status(429, Some("ThrottlingException"), d, m()),
        LlmError::RateLimited {
            retry_after: Some(_)
        }
    ));
    assert!(matches!(
        error_from_status(503, Some("ServiceUnavailableException"), None, m()),
        LlmError::Overloaded
    ));
    assert!(matches!(
        error_from_status(429, Some("ModelNotReadyException"), None, m()),
        LlmError::Overloaded
    ));
    assert!(matches!(
        error_from_status(408, Some("ModelTimeoutException"), None, m()),
        LlmError::Timeout
    ));
    assert!(matches!(
        error_from_status(500, Some("InternalServerException"), None, m()),
        LlmError::Unreachable(_)
    ));
    assert!(matches!(
        error_from_status(400, Some("ValidationException"), None, m()),
        LlmError::Refused { status: 400, ref message } if message == "ValidationException: msg"
    ));
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_static("ThrottlingException:http://internal.amazon.com/coral/x/"),
    );
    assert_eq!(error_type(&headers).as_deref(), Some("ThrottlingException"));
    assert_eq!(error_message(br#"{"Message":"slow down"}"#), "slow down");
}

// --- a round trip against a local fake Bedrock ------------------------------------------------

#[derive(Debug)]
struct Received {
    uri: Uri,
    headers: AxumHeaders,
    body: Bytes,
}

/// A scripted answer: status, headers, body.
type Answer = (StatusCode, Vec<(&'static str, &'static str)>, String);

#[derive(Clone)]
struct Fake {
    received: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

async fn post_converse(
    State(fake): State<Fake>,
    uri: Uri,
    headers: AxumHeaders,
    body: Bytes,
) -> impl IntoResponse {
    fake.received
        .lock()
        .unwrap()
        .push(Received { uri, headers, body });
    let (status, headers, body) = fake.answers.lock().unwrap().remove(0);
    let mut response = (status, body).into_response();
    for (name, value) in headers {
        response
            .headers_mut()
            .insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn start_fake(answers: Vec<Answer>) -> (Url, Fake) {
    let fake = Fake {
        received: Arc::default(),
        answers: Arc::new(Mutex::new(answers)),
    };
    let app = axum::Router::new()
        .route(
            "/model/{model}/converse",
            axum::routing::post(post_converse),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

fn fake_model(endpoint: Url) -> BedrockModel {
    let mut config = BedrockConfig::new(
        "eu-west-3",
        "AKIDTEST",
        SecretString::from("secret/KEY+test"),
        "anthropic.claude-test-v1:0",
    );
    config.session_token = Some(SecretString::from("session-TOKEN"));
    config.endpoint = Some(endpoint);
    config.timeout = Duration::from_secs(5);
    BedrockModel::new(config, FixedClock::at(SUITE_TIME)).unwrap()
}

#[tokio::test]
async fn round_trip_is_signed_over_what_arrives() {
    let answer = json!({
        "output": {"message": {"role": "assistant", "content": [{"text": "You need milk."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2}
    });
    let (endpoint, fake) = start_fake(vec![(
        StatusCode::OK,
        vec![("content-type", "application/json")],
        answer.to_string(),
    )])
    .await;
    let model = fake_model(endpoint);
    let (messages, tools) = tool_conversation();
    let streamed = Mutex::new(Vec::new());
    let reply = model
        .respond(
            ModelRequest {
                system: "Be brief.",
                messages: &messages,
                tools: &tools,
                max_tokens: 100,
            },
            &|t: &str| streamed.lock().unwrap().push(t.to_owned()),
        )
        .await
        .unwrap();
    assert_eq!(
        reply.content,
        [Block::Text {
            text: "You need milk.".into()
        }]
    );
    assert_eq!(reply.stop_reason, StopReason::EndTurn);
    assert_eq!(*streamed.lock().unwrap(), ["You need milk."]);

    let received = fake.received.lock().unwrap();
    let got = &received[0];
    // The model id's `:` travels encoded, so the id stays one path segment.
    assert_eq!(
        got.uri.path(),
        "/model/anthropic.claude-test-v1%3A0/converse"
    );
    let sent: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(
        sent,
        serde_json::to_value(ConverseRequest::new(&ModelRequest {
            system: "Be brief.",
            messages: &messages,
            tools: &tools,
            max_tokens: 100,
        }))
        .unwrap()
    );
    let h = |name: &str| got.headers.get(name).unwrap().to_str().unwrap().to_owned();
    assert_eq!(h("x-amz-date"), "20150830T123600Z");
    assert_eq!(h("x-amz-security-token"), "session-TOKEN");
    let authorization = h("authorization");
    assert!(
        authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDTEST/20150830/eu-west-3/bedrock/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
        ),
        "{authorization}"
    );
    // Re-derive the signature from what the server saw: host, path, content type and body.
    let seen_url = format!("http://{}{}", h("host"), got.uri.path());
    let expected = sign_headers(
        "POST",
        &seen_url,
        &[("content-type", &h("content-type"))],
        &got.body,
        &SigningKeys {
            access_key_id: "AKIDTEST",
            secret_access_key: "secret/KEY+test",
            session_token: Some("session-TOKEN"),
        },
        &SigningScope {
            region: "eu-west-3",
            service: "bedrock",
            time: UNIX_EPOCH + Duration::from_secs(SUITE_TIME as u64),
        },
    )
    .unwrap();
    assert_eq!(header(&expected, "authorization"), authorization);
}

#[tokio::test]
async fn http_errors_from_bedrock() {
    let (endpoint, _fake) = start_fake(vec![
        (
            StatusCode::TOO_MANY_REQUESTS,
            vec![
                (
                    "x-amzn-errortype",
                    "ThrottlingException:http://internal.amazon.com/",
                ),
                ("retry-after", "4"),
            ],
            r#"{"message":"Too many requests, please wait before trying again."}"#.into(),
        ),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![("x-amzn-errortype", "ServiceUnavailableException")],
            r#"{"message":"Service unavailable"}"#.into(),
        ),
        (
            StatusCode::BAD_REQUEST,
            vec![("x-amzn-errortype", "ValidationException")],
            r#"{"message":"The security token session-TOKEN is invalid"}"#.into(),
        ),
        (StatusCode::OK, vec![], "not json".into()),
    ])
    .await;
    let model = fake_model(endpoint);
    let messages = [Message::user_text("hi")];
    let ask = || {
        model.respond(
            ModelRequest {
                system: "",
                messages: &messages,
                tools: &[],
                max_tokens: 10,
            },
            &|_| {},
        )
    };
    assert!(matches!(
        ask().await,
        Err(LlmError::RateLimited { retry_after: Some(d) }) if d == Duration::from_secs(4)
    ));
    assert!(matches!(ask().await, Err(LlmError::Overloaded)));
    match ask().await {
        Err(LlmError::Refused {
            status: 400,
            message,
        }) => {
            assert!(!message.contains("session-TOKEN"), "{message}");
            assert!(message.starts_with("ValidationException: "), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(ask().await, Err(LlmError::Invalid(_))));
}
