//! AWS Bedrock Converse client (`POST /model/{modelId}/converse` on `bedrock-runtime`), following
//! the Bedrock API Reference's `Converse` operation: `messages[].content[]` blocks keyed by shape
//! (`text`, `toolUse {toolUseId, name, input}`, `toolResult {toolUseId, content[{text}], status}`),
//! `system[{text}]`, `inferenceConfig.maxTokens`, `toolConfig.tools[].toolSpec {name,
//! description, inputSchema.json}`; the answer is `output.message.content` plus `stopReason`.
//! Errors carry their name in `x-amzn-ErrorType` and a `{"message"}` body (Throttling 429,
//! ServiceUnavailable 503, ModelTimeout 408, Validation 400…). Requests are signed with AWS
//! Signature Version 4 (service `bedrock`) by AWS's own `aws-sigv4` crate; the time comes from
//! the injected [`Clock`]. Not streamed: the text reaches `on_text` once, whole.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use protocol::Clock;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use super::transport;
use super::{
    Block, LlmError, Message, Model, ModelInfo, ModelReply, ModelRequest, Role, StopReason,
    TextSink, ToolSpec,
};

/// Default for [`BedrockConfig::timeout`]: the whole answer arrives at once, so allow for a long one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);
/// The SigV4 service name of the Bedrock runtime.
const SERVICE: &str = "bedrock";
/// Largest answer accepted, in bytes.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// How to reach Bedrock.
#[derive(Debug, Clone)]
pub struct BedrockConfig {
    /// The AWS region, e.g. `us-east-1`.
    pub region: String,
    /// The access key id (not secret by itself; it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
    /// A model id, inference profile id or ARN, e.g. `us.anthropic.claude-sonnet-4-…`.
    pub model_id: String,
    /// Replaces `https://bedrock-runtime.{region}.amazonaws.com` (tests, VPC endpoints).
    pub endpoint: Option<Url>,
    /// Longest wait for the whole answer.
    pub timeout: Duration,
}

impl BedrockConfig {
    /// `model_id` in `region` with long-term credentials and [`DEFAULT_TIMEOUT`].
    pub fn new(
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
        model_id: impl Into<String>,
    ) -> Self {
        Self {
            region: region.into(),
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
            model_id: model_id.into(),
            endpoint: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// A model behind Bedrock's Converse API.
pub struct BedrockModel {
    http: reqwest::Client,
    url: Url,
    region: String,
    access_key_id: String,
    secret_access_key: SecretString,
    session_token: Option<SecretString>,
    model_id: String,
    timeout: Duration,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for BedrockModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BedrockModel")
            .field("url", &self.url.as_str())
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("model_id", &self.model_id)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl BedrockModel {
    /// A client for `config`, signing with the time `clock` reads.
    pub fn new(config: BedrockConfig, clock: Arc<dyn Clock>) -> Result<Self, LlmError> {
        let region_ok = !config.region.is_empty()
            && config
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !region_ok {
            return Err(LlmError::Invalid(format!(
                "not an AWS region: {:?}",
                config.region
            )));
        }
        if config.model_id.is_empty() {
            return Err(LlmError::Invalid("the Bedrock model id is empty".into()));
        }
        let base = match config.endpoint {
            Some(endpoint) => endpoint,
            None => Url::parse(&format!(
                "https://bedrock-runtime.{}.amazonaws.com",
                config.region
            ))
            .map_err(|e| LlmError::Invalid(format!("bad Bedrock endpoint: {e}")))?,
        };
        let path = format!("model/{}/converse", encode_path_segment(&config.model_id));
        Ok(Self {
            http: transport::client(config.timeout)?,
            url: transport::endpoint(&base, &path)?,
            region: config.region,
            access_key_id: config.access_key_id,
            secret_access_key: config.secret_access_key,
            session_token: config.session_token,
            model_id: config.model_id,
            timeout: config.timeout,
            clock,
        })
    }

    fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(self.clock.now()).unwrap_or(0))
    }

    /// `message` without our credentials in it.
    fn clean(&self, message: &str) -> String {
        let message = transport::clean_message(message, self.secret_access_key.expose_secret());
        match &self.session_token {
            Some(token) => transport::clean_message(&message, token.expose_secret()),
            None => message,
        }
    }
}

#[async_trait]
impl Model for BedrockModel {
    fn info(&self) -> ModelInfo {
        ModelInfo {
            provider: "bedrock".into(),
            model: self.model_id.clone(),
        }
    }

    async fn respond(
        &self,
        request: ModelRequest<'_>,
        on_text: TextSink<'_>,
    ) -> Result<ModelReply, LlmError> {
        let body = serde_json::to_vec(&ConverseRequest::new(&request))
            .map_err(|e| LlmError::Invalid(format!("could not encode the request: {e}")))?;
        let keys = SigningKeys {
            access_key_id: &self.access_key_id,
            secret_access_key: self.secret_access_key.expose_secret(),
            session_token: self.session_token.as_ref().map(|t| t.expose_secret()),
        };
        let scope = SigningScope {
            region: &self.region,
            service: SERVICE,
            time: self.now(),
        };
        let signed = sign_headers(
            "POST",
            self.url.as_str(),
            &[("content-type", "application/json")],
            &body,
            &keys,
            &scope,
        )?;
        let mut builder = self
            .http
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json")
            .body(body);
        for (name, value) in signed {
            let mut value = HeaderValue::from_str(&value)
                .map_err(|_| LlmError::Invalid(format!("unusable signed header {name}")))?;
            value.set_sensitive(name != "x-amz-date");
            builder = builder.header(name, value);
        }
        let response = transport::send(builder, self.timeout).await?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let retry_after = transport::retry_after(response.headers());
            let error_type = error_type(response.headers());
            let body = transport::read_error_body(response, self.timeout).await;
            let message = self.clean(&error_message(&body));
            return Err(error_from_status(
                status,
                error_type.as_deref(),
                retry_after,
                message,
            ));
        }
        let body = transport::read_body(response, MAX_RESPONSE_BYTES, self.timeout).await?;
        let reply = parse_response(&body)?;
        let text: String = reply
            .content
            .iter()
            .filter_map(|b| match b {
                Block::Text { text } => Some(text.as_str()),
                _ => None,
            })
            .collect();
        if !text.is_empty() {
            on_text(&text);
        }
        Ok(reply)
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so ids such as
/// `…-v1:0` or inference-profile ARNs stay one path segment.
fn encode_path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Signing

/// The credentials a request is signed with.
struct SigningKeys<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    session_token: Option<&'a str>,
}

/// Where and when a signature is valid.
struct SigningScope<'a> {
    region: &'a str,
    service: &'a str,
    time: SystemTime,
}

/// The headers to add for a SigV4 signature (`x-amz-date`, `authorization`, and
/// `x-amz-security-token` with temporary credentials) over `method url`, the `headers` that will
/// be sent and the exact `body`. The `host` header is signed as the URL gives it.
fn sign_headers(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    keys: &SigningKeys<'_>,
    scope: &SigningScope<'_>,
) -> Result<Vec<(&'static str, String)>, LlmError> {
    let failed =
        |e: &dyn fmt::Display| LlmError::Invalid(format!("could not sign the request: {e}"));
    let identity = Credentials::new(
        keys.access_key_id,
        keys.secret_access_key,
        keys.session_token.map(str::to_owned),
        None,
        "agent0",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(scope.region)
        .name(scope.service)
        .time(scope.time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| failed(&e))?
        .into_parts();
    let (headers, _query) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_owned()))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Request

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConverseRequest<'a> {
    messages: Vec<ConverseMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<TextBlock<'a>>,
    inference_config: InferenceConfig,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig<'a>>,
}

#[derive(Debug, Serialize)]
struct ConverseMessage<'a> {
    role: &'static str,
    content: Vec<ContentBlock<'a>>,
}

/// A content block: exactly one of its keys is set.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
enum ContentBlock<'a> {
    Text(&'a str),
    ToolUse(ToolUse<'a>),
    ToolResult(ToolResult<'a>),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolUse<'a> {
    tool_use_id: &'a str,
    name: &'a str,
    input: &'a Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolResult<'a> {
    tool_use_id: &'a str,
    content: Vec<TextBlock<'a>>,
    status: &'static str,
}

#[derive(Debug, Serialize)]
struct TextBlock<'a> {
    text: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InferenceConfig {
    max_tokens: u32,
}

#[derive(Debug, Serialize)]
struct ToolConfig<'a> {
    tools: Vec<Tool<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    tool_spec: ToolSpecification<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ToolSpecification<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: InputSchema<'a>,
}

#[derive(Debug, Serialize)]
struct InputSchema<'a> {
    json: &'a serde_json::Map<String, Value>,
}

impl<'a> ConverseRequest<'a> {
    fn new(request: &ModelRequest<'a>) -> Self {
        Self {
            messages: request.messages.iter().map(ConverseMessage::from).collect(),
            system: if request.system.is_empty() {
                Vec::new()
            } else {
                vec![TextBlock {
                    text: request.system,
                }]
            },
            inference_config: InferenceConfig {
                max_tokens: request.max_tokens,
            },
            tool_config: (!request.tools.is_empty()).then(|| ToolConfig {
                tools: request.tools.iter().map(Tool::from).collect(),
            }),
        }
    }
}

impl<'a> From<&'a Message> for ConverseMessage<'a> {
    fn from(message: &'a Message) -> Self {
        let role = match message.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let content = message
            .content
            .iter()
            .filter_map(|block| match block {
                // Converse rejects blank text blocks.
                Block::Text { text } if text.trim().is_empty() => None,
                Block::Text { text } => Some(ContentBlock::Text(text)),
                Block::ToolUse { id, name, input } => Some(ContentBlock::ToolUse(ToolUse {
                    tool_use_id: id,
                    name,
                    input,
                })),
                Block::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                } => Some(ContentBlock::ToolResult(ToolResult {
                    tool_use_id,
                    content: vec![TextBlock {
                        text: if content.trim().is_empty() {
                            "(no output)"
                        } else {
                            content
                        },
                    }],
                    status: if *is_error { "error" } else { "success" },
                })),
            })
            .collect();
        Self { role, content }
    }
}

impl<'a> From<&'a ToolSpec> for Tool<'a> {
    fn from(tool: &'a ToolSpec) -> Self {
        Self {
            tool_spec: ToolSpecification {
                name: &tool.name,
                description: &tool.description,
                input_schema: InputSchema {
                    json: &tool.input_schema,
                },
            },
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Response

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConverseResponse {
    output: ConverseOutput,
    stop_reason: String,
}

#[derive(Debug, Deserialize)]
struct ConverseOutput {
    message: OutputMessage,
}

#[derive(Debug, Deserialize)]
struct OutputMessage {
    #[serde(default)]
    content: Vec<OutputBlock>,
}

/// A content block of the answer; other kinds (`reasoningContent`, …) are skipped.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputBlock {
    text: Option<String>,
    tool_use: Option<OutputToolUse>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OutputToolUse {
    tool_use_id: String,
    name: String,
    #[serde(default)]
    input: Value,
}

fn parse_response(body: &[u8]) -> Result<ModelReply, LlmError> {
    let response: ConverseResponse = serde_json::from_slice(body)
        .map_err(|e| LlmError::Invalid(format!("unreadable Converse answer: {e}")))?;
    let mut content = Vec::new();
    for block in response.output.message.content {
        if let Some(text) = block.text.filter(|t| !t.is_empty()) {
            content.push(Block::Text { text });
        }
        if let Some(tool) = block.tool_use {
            content.push(Block::ToolUse {
                id: tool.tool_use_id,
                name: tool.name,
                input: match tool.input {
                    Value::Null => Value::Object(serde_json::Map::new()),
                    input => input,
                },
            });
        }
    }
    let stop_reason = match response.stop_reason.as_str() {
        "end_turn" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        _ => StopReason::Other,
    };
    Ok(ModelReply {
        content,
        stop_reason,
    })
}

/// The error's name from `x-amzn-ErrorType` (`ThrottlingException:http://…` → `ThrottlingException`).
fn error_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("x-amzn-errortype")?.to_str().ok()?;
    let name = value.split(':').next()?.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The `message` (or `Message`) of an error body, else the body itself.
fn error_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(alias = "Message")]
        message: String,
    }
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned())
}

/// A non-2xx answer, by error name first (it is more precise than the status), then status.
fn error_from_status(
    status: u16,
    error_type: Option<&str>,
    retry_after: Option<Duration>,
    message: String,
) -> LlmError {
    match (error_type, status) {
        (Some("ThrottlingException"), _) => LlmError::RateLimited { retry_after },
        (Some("ServiceUnavailableException" | "ModelNotReadyException"), _) | (_, 503) => {
            LlmError::Overloaded
        }
        (_, 429) => LlmError::RateLimited { retry_after },
        (Some("ModelTimeoutException"), _) | (_, 408) => LlmError::Timeout,
        (Some("InternalServerException" | "ModelErrorException"), _) | (_, 500..=599) => {
            LlmError::Unreachable(format!("Bedrock failed ({status}): {message}"))
        }
        (kind, 400..=499) => LlmError::Refused {
            status,
            message: match kind {
                Some(kind) => format!("{kind}: {message}"),
                None => message,
            },
        },
        _ => LlmError::Invalid(format!("unexpected HTTP status {status}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
#[path = "bedrock_tests.rs"]
mod tests;
