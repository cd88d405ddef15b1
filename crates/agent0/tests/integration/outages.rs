//! "What a new user meets" (items 3–5): failures read as one human sentence, said once, with
//! the technical detail only in the chip and the log; the Managed Connections panel says
//! `unreachable` (with its last failure and last success) while an MCP server is down and
//! `live` again after the next success; no page or personal answer is kept by the browser.

use std::sync::Arc;

use agent0::llm::LlmError;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::faults::Scripted;
use super::harness::AgentStack;

/// A TCP forwarder in front of an MCP server that can be switched off (every connection cut,
/// nothing listening) and on again at the same address: a server that stops and restarts.
pub struct Switch {
    /// The address agent0 is given.
    pub url: String,
    address: std::net::SocketAddr,
    target: String,
    task: Option<JoinHandle<()>>,
}

impl Switch {
    /// A forwarder to the MCP endpoint `target_url` (`http://host:port/mcp`); needs a Tokio
    /// runtime but not an `.await`, so it can start inside `AgentStack::start_with`'s closure.
    pub fn start(target_url: &str) -> Self {
        let target = target_url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .to_owned();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(listener).unwrap();
        let address = listener.local_addr().unwrap();
        let mut switch = Self {
            url: format!("http://{address}/mcp"),
            address,
            target,
            task: None,
        };
        switch.task = Some(switch.forward(listener));
        switch
    }

    fn forward(&self, listener: TcpListener) -> JoinHandle<()> {
        let target = self.target.clone();
        tokio::spawn(async move {
            // Dropping the set (when this task is aborted) cuts every open connection.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = target.clone();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        })
    }

    /// Stops answering: open connections are cut and the port refuses new ones.
    pub async fn off(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    /// Answers again, at the same address.
    pub async fn on(&mut self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.task = Some(self.forward(listener));
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Text a person should never read.
pub fn shows_internals(text: &str) -> bool {
    [
        "rmcp::",
        "reqwest",
        "Transport",
        "error sending request",
        "dns error",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Every string a turn's events put on screen (deltas, error boxes, the reply, chip results).
fn shown_texts(events: &[(String, Value)]) -> Vec<String> {
    let mut texts = Vec::new();
    for (name, data) in events {
        match name.as_str() {
            "error" | "done" => texts.push(data["message"].as_str().unwrap_or("").to_owned()),
            "text" => texts.push(data["delta"].as_str().unwrap_or("").to_owned()),
            "tool_done" => texts.push(data["result"].to_string()),
            _ => {}
        }
    }
    texts
}

/// What is on screen without unfolding a chip: the reply bubble (its streamed text is replaced
/// by the final message) and any error box.
fn visible_texts(events: &[(String, Value)]) -> Vec<String> {
    events
        .iter()
        .filter(|(name, _)| name == "error" || name == "done")
        .map(|(_, data)| data["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn connection(panel: &Value, name: &str) -> Value {
    panel["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap()
        .clone()
}

/// agent0 with todo0's MCP server behind a [`Switch`].
pub async fn stack_with_switch(model: Arc<dyn agent0::llm::Model>) -> (AgentStack, Switch) {
    let mut switch = None;
    let stack = AgentStack::start_with(model, |config| {
        let todo0 = &mut config.mcp_servers[0];
        let forwarder = Switch::start(&todo0.url);
        // The resource indicator (the token's audience) stays todo0's own address.
        todo0.url = forwarder.url.clone();
        switch = Some(forwarder);
    })
    .await;
    (stack, switch.unwrap())
}

#[tokio::test]
async fn a_stopped_mcp_server_is_one_sentence_and_unreachable_until_it_answers_again() {
    let (stack, mut switch) =
        stack_with_switch(Arc::new(agent0::llm::offline::OfflineModel::new())).await;
    let alice = stack.login("alice").await;

    let events = alice.chat_stream("list my todos").await;
    let (_, done) = events.iter().find(|(name, _)| name == "done").unwrap();
    assert_eq!(done["toolResults"][0]["isError"], false, "{done}");
    let (_, panel) = alice.get("/api/connections/status").await;
    let todo0 = connection(&panel, "todo0");
    assert_eq!(todo0["state"], "live", "{todo0}");
    assert!(todo0["lastSuccessAt"].is_string() && todo0["lastFailureAt"].is_null());

    // todo0 stops: the chip says so in one sentence, once; the detail is in the chip only.
    switch.off().await;
    let events = alice.chat_stream("list my todos").await;
    let sentence = "Todo0 MCP Server is not answering; try again in a moment.";
    let (_, done) = events.iter().find(|(name, _)| name == "done").unwrap();
    let chip = &done["toolResults"][0];
    assert_eq!(chip["isError"], true, "{chip}");
    assert_eq!(chip["result"], sentence, "{chip}");
    assert!(
        chip["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{chip}"
    );
    let shown = shown_texts(&events);
    for text in &shown {
        assert!(!shows_internals(text), "internals shown: {text}");
    }
    let tool_done = events.iter().filter(|(n, _)| n == "tool_done").count();
    assert_eq!(tool_done, 1, "one chip");
    // On screen (the chip is folded away): the reply bubble, which says it once, and no box.
    let visible = visible_texts(&events);
    assert_eq!(
        visible
            .iter()
            .map(|t| t.matches("not answering").count())
            .sum::<usize>(),
        1,
        "said once: {visible:?}"
    );
    assert!(
        !events.iter().any(|(n, _)| n == "error"),
        "no second error box"
    );

    let (_, panel) = alice.get("/api/connections/status").await;
    let todo0 = connection(&panel, "todo0");
    assert_eq!(todo0["state"], "unreachable", "{todo0}");
    assert_eq!(todo0["connected"], false);
    let failed = todo0["lastFailureAt"].as_str().unwrap().to_owned();
    let succeeded = todo0["lastSuccessAt"].as_str().unwrap().to_owned();
    assert!(failed >= succeeded, "{failed} {succeeded}");
    assert!(
        failed.ends_with('Z') && failed.contains('T'),
        "RFC 3339: {failed}"
    );

    // todo0 is back: the next success makes it live again.
    switch.on().await;
    let events = alice.chat_stream("list my todos").await;
    let (_, done) = events.iter().find(|(name, _)| name == "done").unwrap();
    assert_eq!(done["toolResults"][0]["isError"], false, "{done}");
    let (_, panel) = alice.get("/api/connections/status").await;
    let todo0 = connection(&panel, "todo0");
    assert_eq!(todo0["state"], "live", "{todo0}");
    assert_eq!(
        todo0["lastFailureAt"],
        failed.as_str(),
        "the last failure is still shown"
    );
}

#[tokio::test]
async fn a_model_outage_is_said_once_as_a_sentence_without_its_error_chain() {
    let model = Arc::new(Scripted::default());
    let stack = AgentStack::start_with(model.clone(), |_| {}).await;
    let alice = stack.login("alice").await;
    let chain = "error sending request for url (https://api.example.invalid/v1/messages): \
                 client error (Connect): dns error: failed to lookup address information";
    for _ in 0..3 {
        model.push(Err(LlmError::Unreachable(chain.into())));
    }
    let events = alice.chat_stream("hello").await;
    let sentence = "I couldn't finish that: the model provider cannot be reached; check the network connection or try again in a moment.";
    let (_, done) = events.iter().find(|(name, _)| name == "done").unwrap();
    assert_eq!(done["message"], sentence);
    let shown = shown_texts(&events);
    for text in &shown {
        assert!(!shows_internals(text), "internals shown: {text}");
    }
    let visible = visible_texts(&events);
    assert_eq!(
        visible
            .iter()
            .map(|t| t.matches("cannot be reached").count())
            .sum::<usize>(),
        1,
        "said once: {visible:?}"
    );
    assert!(
        !events.iter().any(|(n, _)| n == "error"),
        "no second error box"
    );
    // Kept with the conversation, once.
    let (_, conversation) = alice.get("/api/conversations/current").await;
    let replies: Vec<&Value> = conversation["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .collect();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["text"], sentence);
}

#[tokio::test]
async fn no_page_or_personal_answer_is_stored_by_the_browser() {
    let stack = AgentStack::start().await;
    let alice = stack.login("alice").await;
    alice.chat_approved("list my todos").await;
    for path in [
        "/",
        "/index.html",
        "/auth/status",
        "/api/me/claims",
        "/api/conversations/current",
        "/api/connections/status",
    ] {
        let response = alice.browser.http.get(stack.at(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{path} must not be kept for Back or a restored tab"
        );
    }
}
