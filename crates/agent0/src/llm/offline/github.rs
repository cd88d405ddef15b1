//! The offline model's GitHub requests (journey J3): `comment "LGTM" on <PR URL>`, `show me PR 1
//! in acme/widgets`, `list open pull requests in acme/widgets`, `who am I on GitHub?` and close
//! paraphrases. Each is one tool call — the application connection's REST tools, else the GitHub
//! MCP server's (`add_issue_comment`, `pull_request_read`, `list_pull_requests`, `get_me`) —
//! then a sentence about its result.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

use super::{Block, Message, ModelReply, Role, ToolSpec, error_message, md, namespace_of};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Ask {
    Comment {
        url: String,
        owner: String,
        repo: String,
        number: u64,
        body: String,
    },
    Get {
        owner: String,
        repo: String,
        number: u64,
    },
    List {
        owner: String,
        repo: String,
    },
    WhoAmI,
}

fn re(pattern: &str) -> Regex {
    #[allow(clippy::unwrap_used)] // fixed patterns, covered by the tests
    Regex::new(pattern).unwrap()
}

static PR_URL: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\bhttps?://[^\s/]+(?:/[^\s/]+)*?/([\w.-]+)/([\w.-]+)/pull/(\d+)\S*"));
static QUOTED: LazyLock<Regex> = LazyLock::new(|| re(r#""([^"]+)"|“([^”]+)”|'([^']+)'"#));
static PR_IN: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)\b(?:pr|pull request|pull)\s*#?(\d+)\s+(?:in|of|from|on|for)\s+([\w.-]+)/([\w.-]+)")
});
static REPO_HASH: LazyLock<Regex> = LazyLock::new(|| re(r"\b([\w.-]+)/([\w.-]+)#(\d+)\b"));
static LIST: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:list|show|what are|which|get)\b.*\b(?:pull requests|prs|pulls)\b.*?\b(?:in|of|for|from|on)\s+([\w.-]+)/([\w.-]+)",
    )
});
static WHO: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\bwho am i\b.*\bgithub\b|\bgithub\b.*\bwho am i\b|\bmy github (?:user(?:name)?|login|account|identity)\b",
    )
});

/// The GitHub request in `text`, if it is one.
pub(super) fn parse(text: &str) -> Option<Ask> {
    let text = text.trim();
    if text.to_lowercase().contains("comment")
        && let Some(url) = PR_URL.captures(text)
    {
        let rest = text.replace(&url[0], " ");
        let body = QUOTED.captures(&rest).and_then(|q| {
            q.iter()
                .skip(1)
                .flatten()
                .next()
                .map(|m| m.as_str().to_owned())
        })?;
        return Some(Ask::Comment {
            url: url[0].trim_end_matches(['.', ',', ')']).to_owned(),
            owner: url[1].to_owned(),
            repo: url[2].to_owned(),
            number: url[3].parse().ok()?,
            body,
        });
    }
    if WHO.is_match(text) {
        return Some(Ask::WhoAmI);
    }
    if let Some(c) = PR_IN.captures(text) {
        return Some(Ask::Get {
            owner: c[2].to_owned(),
            repo: c[3].trim_end_matches(['.', '?']).to_owned(),
            number: c[1].parse().ok()?,
        });
    }
    if let Some(c) = LIST.captures(text) {
        return Some(Ask::List {
            owner: c[1].to_owned(),
            repo: c[2].trim_end_matches(['.', '?']).to_owned(),
        });
    }
    if let Some(c) = REPO_HASH.captures(text) {
        return Some(Ask::Get {
            owner: c[1].to_owned(),
            repo: c[2].to_owned(),
            number: c[3].parse().ok()?,
        });
    }
    None
}

/// The offered name of `bare` (exact, else namespaced).
fn offered<'a>(tools: &'a [ToolSpec], bare: &str) -> Option<&'a str> {
    tools
        .iter()
        .find(|t| t.name == bare)
        .or_else(|| tools.iter().find(|t| namespace_of(&t.name, bare).is_some()))
        .map(|t| t.name.as_str())
}

/// The tool call for `ask`: the REST tool when offered, else the GitHub MCP server's.
fn call(ask: &Ask, tools: &[ToolSpec]) -> Option<(String, Value)> {
    let pick = |rest: &str, rest_input: Value, mcp: &str, mcp_input: Value| {
        offered(tools, rest)
            .map(|n| (n.to_owned(), rest_input))
            .or_else(|| offered(tools, mcp).map(|n| (n.to_owned(), mcp_input)))
    };
    match ask {
        Ask::Comment {
            url,
            owner,
            repo,
            number,
            body,
        } => pick(
            "github_comment_on_pr",
            json!({"pr_url": url, "body": body}),
            "add_issue_comment",
            json!({"owner": owner, "repo": repo, "issue_number": number, "body": body}),
        ),
        Ask::Get {
            owner,
            repo,
            number,
        } => pick(
            "github_get_pull_request",
            json!({"owner": owner, "repo": repo, "pull_number": number}),
            "pull_request_read",
            json!({"method": "get", "owner": owner, "repo": repo, "pullNumber": number}),
        ),
        Ask::List { owner, repo } => pick(
            "github_list_pull_requests",
            json!({"owner": owner, "repo": repo}),
            "list_pull_requests",
            json!({"owner": owner, "repo": repo, "state": "open"}),
        ),
        Ask::WhoAmI => offered(tools, "get_me").map(|n| (n.to_owned(), json!({}))),
    }
}

/// The reply to a GitHub request, given what followed it (`after`).
pub(super) fn reply(ask: &Ask, after: &[Message], tools: &[ToolSpec]) -> ModelReply {
    let result = after.iter().filter(|m| m.role == Role::User).find_map(|m| {
        m.content.iter().find_map(|b| match b {
            Block::ToolResult {
                content, is_error, ..
            } => Some((
                crate::agent::unwrap_tool_result(content).to_owned(),
                *is_error,
            )),
            _ => None,
        })
    });
    if let Some((content, is_error)) = result {
        return super::text_reply(summary(ask, &content, is_error));
    }
    match call(ask, tools) {
        Some((name, input)) => ModelReply {
            content: vec![Block::ToolUse {
                id: format!("offline-gh-{}", after.len() + 1),
                name,
                input,
            }],
            stop_reason: super::StopReason::ToolUse,
        },
        None => super::text_reply(
            "I can't reach GitHub right now: no GitHub connection is set up or switched on."
                .to_owned(),
        ),
    }
}

fn parsed(content: &str) -> Value {
    let value: Value = serde_json::from_str(content).unwrap_or(Value::Null);
    // An MCP text block may hold the JSON as a string.
    match &value {
        Value::String(s) => serde_json::from_str(s).unwrap_or(value),
        _ => value,
    }
}

fn pull_line(p: &Value) -> String {
    format!(
        "**#{} {}** ({}) by {}{}",
        p["number"],
        md(p["title"].as_str().unwrap_or("untitled")),
        p["state"].as_str().unwrap_or("unknown"),
        md(p["user"]
            .as_str()
            .or(p["user"]["login"].as_str())
            .unwrap_or("someone")),
        p["html_url"]
            .as_str()
            .map(|u| format!(" — {u}"))
            .unwrap_or_default()
    )
}

fn summary(ask: &Ask, content: &str, is_error: bool) -> String {
    if is_error {
        return format!("I couldn't do that on GitHub: {}.", error_message(content));
    }
    let value = parsed(content);
    match ask {
        Ask::Comment {
            owner,
            repo,
            number,
            ..
        } => format!(
            "Commented on {owner}/{repo}#{number}{}.",
            value["html_url"]
                .as_str()
                .map(|u| format!(": {u}"))
                .unwrap_or_default()
        ),
        Ask::Get { .. } => pull_line(&value),
        Ask::List { owner, repo } => {
            let pulls = value["pull_requests"]
                .as_array()
                .or(value.as_array())
                .cloned()
                .unwrap_or_default();
            if pulls.is_empty() {
                format!("{owner}/{repo} has no open pull requests.")
            } else {
                let lines: Vec<String> = pulls
                    .iter()
                    .map(|p| format!("- {}", pull_line(p)))
                    .collect();
                format!(
                    "Open pull requests in {owner}/{repo}:\n{}",
                    lines.join("\n")
                )
            }
        }
        Ask::WhoAmI => match value["login"].as_str() {
            Some(login) => format!("On GitHub you are **{}**.", md(login)),
            None => "GitHub answered, but without a login.".to_owned(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn j3_prompts_and_paraphrases_are_read() {
        let comment = Ask::Comment {
            url: "https://github.com/acme/widgets/pull/1".into(),
            owner: "acme".into(),
            repo: "widgets".into(),
            number: 1,
            body: "LGTM".into(),
        };
        for text in [
            "comment \"LGTM\" on https://github.com/acme/widgets/pull/1",
            "please add a comment “LGTM” to https://github.com/acme/widgets/pull/1",
            "post 'LGTM' as a comment on https://github.com/acme/widgets/pull/1.",
        ] {
            assert_eq!(parse(text), Some(comment.clone()), "{text}");
        }
        let get = Ask::Get {
            owner: "acme".into(),
            repo: "widgets".into(),
            number: 1,
        };
        for text in [
            "show me PR 1 in acme/widgets",
            "get pull request #1 from acme/widgets?",
            "what is acme/widgets#1",
        ] {
            assert_eq!(parse(text), Some(get.clone()), "{text}");
        }
        let list = Ask::List {
            owner: "acme".into(),
            repo: "widgets".into(),
        };
        for text in [
            "list open pull requests in acme/widgets",
            "which PRs are open in acme/widgets?",
            "show the open pull requests of acme/widgets",
        ] {
            assert_eq!(parse(text), Some(list.clone()), "{text}");
        }
        for text in ["who am I on GitHub?", "What is my GitHub username"] {
            assert_eq!(parse(text), Some(Ask::WhoAmI), "{text}");
        }
        for text in ["list my todos", "add \"review PR 1\"", "comment on things"] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
