//! A fake LLM API for the provider tests: a server on 127.0.0.1:0 that records every request
//! and answers from a script — streams cut at arbitrary byte boundaries (optionally pausing until
//! the test releases them), plain responses with any status, or no answer at all.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use agent0::llm::{LlmError, Message, Model, ModelReply, ModelRequest, ToolSpec};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_stream::wrappers::ReceiverStream;
use url::Url;

/// One scripted answer.
pub enum Reply {
    /// 200 `text/event-stream`, sent as `chunks`; before chunk `pause_before` (if any) the
    /// server waits until the test calls `release`.
    Stream {
        chunks: Vec<Bytes>,
        pause_before: Option<usize>,
    },
    /// Any status with headers and a body.
    Plain {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: String,
    },
    /// Accept the request and never answer.
    Never,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
pub struct Fake {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub script: Arc<Mutex<VecDeque<Reply>>>,
    pub release: Arc<Notify>,
    content_type: &'static str,
}

async fn answer(State(fake): State<Fake>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let body = serde_json::from_slice(&body).expect("the client sends JSON");
    fake.received
        .lock()
        .unwrap()
        .push(Received { uri, headers, body });
    let reply = fake.script.lock().unwrap().pop_front();
    match reply.expect("a scripted reply for every request") {
        Reply::Stream {
            chunks,
            pause_before,
        } => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
            let release = fake.release.clone();
            tokio::spawn(async move {
                for (i, chunk) in chunks.into_iter().enumerate() {
                    if pause_before == Some(i) {
                        release.notified().await;
                    }
                    if tx.send(Ok(chunk)).await.is_err() {
                        return;
                    }
                }
            });
            Response::builder()
                .header("content-type", fake.content_type)
                .body(Body::from_stream(ReceiverStream::new(rx)))
                .unwrap()
        }
        Reply::Plain {
            status,
            headers,
            body,
        } => {
            let mut response = Response::builder().status(status);
            for (name, value) in headers {
                response = response.header(name, value);
            }
            response.body(Body::from(body)).unwrap()
        }
        Reply::Never => std::future::pending().await,
    }
}

/// A fake answering POST `route` with `content_type` streams; its base URL is the origin plus
/// `base_path`.
pub async fn start(
    route: &str,
    base_path: &str,
    content_type: &'static str,
    script: Vec<Reply>,
) -> (Url, Fake) {
    let fake = Fake {
        received: Arc::default(),
        script: Arc::new(Mutex::new(script.into())),
        release: Arc::new(Notify::new()),
        content_type,
    };
    let app = axum::Router::new()
        .route(route, axum::routing::post(answer))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let url = Url::parse(&format!("http://{address}{base_path}")).unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, fake)
}

/// The one tool the provider tests offer.
pub fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "list_todos".into(),
        description: "Lists the person's todos".into(),
        input_schema: std::sync::Arc::new(
            serde_json::from_value(
                json!({"type": "object", "properties": {"limit": {"type": "integer"}}}),
            )
            .unwrap(),
        ),
    }]
}

/// Calls `respond` with [`tools`], collecting what reached `on_text`.
pub async fn ask(
    model: &dyn Model,
    messages: &[Message],
    max_tokens: u32,
) -> (Result<ModelReply, LlmError>, Vec<String>) {
    let seen = Mutex::new(Vec::new());
    let tools = tools();
    let reply = model
        .respond(
            ModelRequest {
                system: "You manage todos.",
                messages,
                tools: &tools,
                max_tokens,
            },
            &|text: &str| seen.lock().unwrap().push(text.to_owned()),
        )
        .await;
    (reply, seen.into_inner().unwrap())
}
