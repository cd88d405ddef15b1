//! `bench agent`'s people chatting: each person posts `POST /api/chat` with their session cookie
//! and CSRF token on a [`Link`] of their own (one keep-alive connection per person and replica,
//! the request's headers and body built once), and reads the reply as far as the benchmark
//! checks it.

use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use hyper::header::{ACCEPT, CONTENT_TYPE, COOKIE, HOST, HeaderValue};
use hyper::{HeaderMap, Method};
use serde::Deserialize;
use serde::de::IgnoredAny;
use tokio::task::JoinSet;

use crate::bench::client::{Endpoint, Link, truncate};

/// What a person presents every turn: the session cookie and the CSRF token their login gave.
#[derive(Clone)]
pub(super) struct Chatter {
    cookie: HeaderValue,
    csrf: HeaderValue,
}

impl Chatter {
    /// `cookie` is the `Cookie` header's value (`agent0_session=…`).
    pub(super) fn new(mut cookie: HeaderValue, mut csrf: HeaderValue) -> Self {
        cookie.set_sensitive(true);
        csrf.set_sensitive(true);
        Self { cookie, csrf }
    }

    fn headers(&self, endpoint: &Endpoint) -> HeaderMap {
        let mut headers = HeaderMap::with_capacity(6);
        headers.insert(HOST, endpoint.host().clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(COOKIE, self.cookie.clone());
        headers.insert("x-csrf-token", self.csrf.clone());
        headers
    }
}

/// What every person sends, and how.
pub(super) struct Load<'a> {
    pub(super) message: &'a str,
    /// One message per this interval each (open loop), or back to back.
    pub(super) pace: Option<Duration>,
    /// Every request of a person to the replica they logged in through.
    pub(super) sticky: bool,
    /// A turn counts only if a tool ran and nothing waits for a confirmation (the GitHub read).
    pub(super) tool_needed: bool,
}

/// A turn's reply, as far as it is checked: every tool result, and no pending confirmation.
#[derive(Deserialize)]
struct TurnReply {
    #[serde(rename = "toolResults")]
    tool_results: Vec<ToolResult>,
    #[serde(default)]
    confirmation: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct ToolResult {
    #[serde(rename = "isError")]
    is_error: bool,
}

/// Whether `reply` is a completed turn whose tools all succeeded (and, when `tool_needed`, that
/// ran one and waits for no confirmation).
fn turn_succeeded(reply: &[u8], tool_needed: bool) -> bool {
    serde_json::from_slice::<TurnReply>(reply).is_ok_and(|turn| {
        !turn.tool_results.iter().any(|r| r.is_error)
            && (!tool_needed || (!turn.tool_results.is_empty() && turn.confirmation.is_none()))
    })
}

/// Every person chats for `duration`, back to back (closed loop) or one message per `pace`
/// (staggered, latency counted from when each message was due); the sorted latencies (ns) and
/// the window. Each person's requests go to the replicas in turn, starting at their own index
/// (the replica they logged in through), or all to that one when `sticky`.
pub(super) async fn run_for(
    bases: &[String],
    people: &[Chatter],
    load: &Load<'_>,
    duration: Duration,
) -> anyhow::Result<(Vec<u64>, Duration)> {
    let Load {
        message,
        pace,
        sticky,
        tool_needed,
    } = *load;
    let endpoints = bases
        .iter()
        .map(|base| Endpoint::new(&format!("{base}/api/chat")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let body = Bytes::from(serde_json::to_vec(
        &serde_json::json!({ "message": message }),
    )?);
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = JoinSet::new();
    let count = people.len() as u32;
    for (index, person) in people.iter().enumerate() {
        let offset = pace.map(|p| p * index as u32 / count);
        let mut links: Vec<(Link, HeaderMap)> = endpoints
            .iter()
            .map(|endpoint| (Link::new(endpoint.clone()), person.headers(endpoint)))
            .collect();
        let body = body.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut due = start + offset.unwrap_or_default();
            let mut next = index;
            let replicas = links.len();
            while due < deadline {
                let (link, headers) = &mut links[next % replicas];
                next += usize::from(!sticky);
                if pace.is_some() {
                    tokio::time::sleep_until(due.into()).await;
                }
                let began = if pace.is_some() { due } else { Instant::now() };
                let (status, _) = link
                    .send(Method::POST, headers.clone(), body.clone())
                    .await
                    .map_err(anyhow::Error::msg)?;
                let elapsed = began.elapsed();
                if !status.is_success() || !turn_succeeded(link.reply(), tool_needed) {
                    bail!(
                        "a turn failed (HTTP {status}): {}",
                        truncate(&link.reply_text())
                    );
                }
                latencies.push(elapsed.as_nanos() as u64);
                due = match pace {
                    Some(pace) => due + pace,
                    None => Instant::now(),
                };
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    let window = start.elapsed();
    all.sort_unstable();
    Ok((all, window))
}

#[cfg(test)]
mod tests {
    use super::turn_succeeded;

    #[test]
    fn a_turn_counts_only_when_its_tools_succeeded() {
        let ok =
            br#"{"message":"x","toolResults":[{"tool":"t","isError":false}],"confirmation":null}"#;
        assert!(turn_succeeded(ok, false));
        assert!(turn_succeeded(ok, true));
        let no_tool = br#"{"message":"x","toolResults":[]}"#;
        assert!(turn_succeeded(no_tool, false));
        assert!(!turn_succeeded(no_tool, true));
        let paused = br#"{"toolResults":[{"isError":false}],"confirmation":{"id":"c"}}"#;
        assert!(turn_succeeded(paused, false));
        assert!(!turn_succeeded(paused, true));
        for failed in [
            &br#"{"toolResults":[{"isError":true}]}"#[..],
            br#"{"toolResults":[{"tool":"t"}]}"#,
            br#"{"error":"login expired"}"#,
            b"not json",
        ] {
            assert!(!turn_succeeded(failed, false));
        }
    }
}
