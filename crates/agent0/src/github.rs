//! The `application` connection's tools (OKTA.md §2–3, ARCHITECTURE §7): GitHub's REST API
//! called with the ISV token brokered by the org authorization server, offered to the model like
//! MCP tools — `github_comment_on_pr` (the sample's name: a PR URL and a body),
//! `github_get_pull_request` and `github_list_pull_requests`.
//!
//! Every argument is checked before any network call (the exchange included): a PR URL must be on
//! the configured GitHub web origin (anything else could make the agent reach another host with
//! the person's token), names must be GitHub's characters, a comment at most
//! [`MAX_COMMENT_CHARS`]. Requests carry GitHub's headers; the HTTP client never follows a
//! redirect and gives up after [`TIMEOUT`]. GitHub's answers are trimmed to what the model
//! needs.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{Tool, ToolAnnotations};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use crate::config::GithubApplication;

/// The sample's tool name.
pub const COMMENT_TOOL: &str = "github_comment_on_pr";
/// Gets one pull request.
pub const GET_TOOL: &str = "github_get_pull_request";
/// Lists a repository's open pull requests.
pub const LIST_TOOL: &str = "github_list_pull_requests";
/// GitHub's limit on a comment body, in characters.
pub const MAX_COMMENT_CHARS: usize = 65_536;
/// How long one GitHub request may take.
pub const TIMEOUT: Duration = Duration::from_secs(15);
/// The REST API version sent.
const API_VERSION: &str = "2022-11-28";
/// Largest GitHub answer read, in bytes.
const MAX_RESPONSE_BYTES: usize = 2 * 1024 * 1024;
/// Pull requests listed at most.
const PER_PAGE: u32 = 30;

/// A checked call, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GithubCall {
    /// `POST /repos/{owner}/{repo}/issues/{number}/comments`.
    Comment {
        /// Owner.
        owner: String,
        /// Repository.
        repo: String,
        /// Pull request number.
        number: u64,
        /// The body.
        body: String,
    },
    /// `GET /repos/{owner}/{repo}/pulls/{number}`.
    Get {
        /// Owner.
        owner: String,
        /// Repository.
        repo: String,
        /// Pull request number.
        number: u64,
    },
    /// `GET /repos/{owner}/{repo}/pulls?state=open`.
    List {
        /// Owner.
        owner: String,
        /// Repository.
        repo: String,
    },
}

/// Why a GitHub call did not give a result.
#[derive(Debug, thiserror::Error)]
pub enum GithubError {
    /// The arguments were refused before any network call (the text is for the model).
    #[error("{0}")]
    Invalid(String),
    /// GitHub refused the token (401): it is dropped and exchanged again once.
    #[error("GitHub refused the token")]
    Unauthorized,
    /// GitHub answered with an error (the text is for the model).
    #[error("{0}")]
    Answered(String),
    /// GitHub could not be reached.
    #[error("GitHub could not be reached: {0}")]
    Unavailable(String),
}

/// GitHub's REST API for the application connection.
pub struct GithubRest {
    app: GithubApplication,
    http: reqwest::Client,
}

impl GithubRest {
    /// A client for `app`, failing rather than falling back to one that follows redirects or
    /// waits forever.
    pub fn new(app: GithubApplication) -> Result<Arc<Self>, reqwest::Error> {
        let http = protocol::trust::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(Arc::new(Self { app, http }))
    }

    /// The connection.
    pub fn app(&self) -> &GithubApplication {
        &self.app
    }

    /// The tools, as the model sees them.
    pub fn tools() -> Vec<Tool> {
        let repo_props = json!({
            "owner": {"type": "string", "description": "The repository owner, e.g. acme"},
            "repo": {"type": "string", "description": "The repository name, e.g. widgets"},
        });
        let mut get_props = repo_props.clone();
        get_props["pull_number"] = json!({"type": "integer", "minimum": 1});
        vec![
            Tool::new(
                COMMENT_TOOL,
                "Comment on a GitHub pull request as the person (their GitHub account, by their \
                 consent). Give the pull request's URL and the comment.",
                schema(
                    json!({
                        "pr_url": {"type": "string", "description": "e.g. https://github.com/acme/widgets/pull/1"},
                        "body": {"type": "string", "maxLength": MAX_COMMENT_CHARS},
                    }),
                    &["pr_url", "body"],
                ),
            )
            .with_annotations(ToolAnnotations::from_raw(
                None,
                Some(false),
                Some(false),
                Some(false),
                Some(true),
            )),
            Tool::new(
                GET_TOOL,
                "Get one GitHub pull request (title, state, author, description, links).",
                schema(get_props, &["owner", "repo", "pull_number"]),
            )
            .with_annotations(ToolAnnotations::new().read_only(true)),
            Tool::new(
                LIST_TOOL,
                "List the open pull requests of a GitHub repository.",
                schema(repo_props, &["owner", "repo"]),
            )
            .with_annotations(ToolAnnotations::new().read_only(true)),
        ]
    }

    /// Checks `tool`'s arguments (no network).
    pub fn prepare(
        &self,
        tool: &str,
        args: &Map<String, Value>,
    ) -> Result<GithubCall, GithubError> {
        match tool {
            COMMENT_TOOL => {
                let url = text(args, "pr_url")?;
                let (owner, repo, number) = self.parse_pr_url(url)?;
                let body = text(args, "body")?;
                if body.trim().is_empty() {
                    return Err(GithubError::Invalid("The comment is empty.".into()));
                }
                let chars = body.chars().count();
                if chars > MAX_COMMENT_CHARS {
                    return Err(GithubError::Invalid(format!(
                        "The comment has {chars} characters; GitHub accepts at most \
                         {MAX_COMMENT_CHARS}. Shorten it."
                    )));
                }
                Ok(GithubCall::Comment {
                    owner,
                    repo,
                    number,
                    body: body.to_owned(),
                })
            }
            GET_TOOL => {
                let number = args
                    .get("pull_number")
                    .and_then(|n| n.as_u64().or_else(|| n.as_str()?.parse().ok()))
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        GithubError::Invalid("pull_number must be a positive number.".into())
                    })?;
                Ok(GithubCall::Get {
                    owner: name(args, "owner")?,
                    repo: name(args, "repo")?,
                    number,
                })
            }
            LIST_TOOL => Ok(GithubCall::List {
                owner: name(args, "owner")?,
                repo: name(args, "repo")?,
            }),
            other => Err(GithubError::Invalid(format!(
                "There is no GitHub tool named {other:?}."
            ))),
        }
    }

    /// `(owner, repo, number)` of a pull request URL on the configured web origin.
    pub fn parse_pr_url(&self, text: &str) -> Result<(String, String, u64), GithubError> {
        let refused = |why: &str| {
            GithubError::Invalid(format!(
                "{why}: give a pull request URL like {}/OWNER/REPO/pull/NUMBER.",
                self.app.web_url.as_str().trim_end_matches('/')
            ))
        };
        let url = url::Url::parse(text.trim()).map_err(|_| refused("That is not a URL"))?;
        let web = &self.app.web_url;
        let same_origin = url.scheme() == web.scheme()
            && url.host_str() == web.host_str()
            && url.port_or_known_default() == web.port_or_known_default()
            && url.username().is_empty()
            && url.password().is_none();
        if !same_origin {
            return Err(refused(&format!(
                "Only pull requests on {} can be used",
                web.host_str().unwrap_or("GitHub")
            )));
        }
        let segments: Vec<&str> = url
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        // GitHub Enterprise may serve under a path prefix: the URL ends in owner/repo/pull/n.
        let prefix: Vec<&str> = web
            .path_segments()
            .map(|s| s.filter(|p| !p.is_empty()).collect())
            .unwrap_or_default();
        let Some(rest) = segments.strip_prefix(prefix.as_slice()) else {
            return Err(refused("That URL is not a pull request"));
        };
        match rest {
            [owner, repo, "pull", number, ..] => {
                let number = number
                    .parse::<u64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| refused("That URL has no pull request number"))?;
                Ok((is_name(owner)?, is_name(repo)?, number))
            }
            _ => Err(refused("That URL is not a pull request")),
        }
    }

    /// Sends `call` with `token`.
    pub async fn send(
        &self,
        call: &GithubCall,
        token: &SecretString,
    ) -> Result<Value, GithubError> {
        let base = &self.app.api_url;
        let request = match call {
            GithubCall::Comment {
                owner,
                repo,
                number,
                body,
            } => self
                .http
                .post(format!(
                    "{base}/repos/{owner}/{repo}/issues/{number}/comments"
                ))
                .json(&json!({ "body": body })),
            GithubCall::Get {
                owner,
                repo,
                number,
            } => self
                .http
                .get(format!("{base}/repos/{owner}/{repo}/pulls/{number}")),
            GithubCall::List { owner, repo } => self.http.get(format!(
                "{base}/repos/{owner}/{repo}/pulls?state=open&per_page={PER_PAGE}"
            )),
        };
        let response = request
            .bearer_auth(token.expose_secret())
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", API_VERSION)
            .header(
                reqwest::header::USER_AGENT,
                concat!("secure-agent-agent0/", env!("CARGO_PKG_VERSION")),
            )
            .send()
            .await
            .map_err(|e| GithubError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| GithubError::Unavailable(e.without_url().to_string()))?;
        if bytes.len() > MAX_RESPONSE_BYTES {
            return Err(GithubError::Answered(
                "GitHub's answer was too large.".into(),
            ));
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let message = body
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .chars()
            .take(300)
            .collect::<String>();
        match status.as_u16() {
            200..=299 => Ok(summarise(call, &body)),
            401 => Err(GithubError::Unauthorized),
            404 => Err(GithubError::Answered(match call {
                GithubCall::List { owner, repo } => {
                    format!("There is no repository {owner}/{repo} (or the person cannot see it).")
                }
                GithubCall::Get {
                    owner,
                    repo,
                    number,
                }
                | GithubCall::Comment {
                    owner,
                    repo,
                    number,
                    ..
                } => format!(
                    "There is no such pull request: {owner}/{repo}#{number} does not exist (or \
                     the person cannot see it)."
                ),
            })),
            403 | 429 => Err(GithubError::Answered(format!(
                "GitHub refused the request (HTTP {}: {message}); it may be rate limiting, try \
                 again later.",
                status.as_u16()
            ))),
            code @ 400..=499 => Err(GithubError::Answered(format!(
                "GitHub refused the request (HTTP {code}: {message})."
            ))),
            code => Err(GithubError::Unavailable(format!(
                "GitHub answered HTTP {code}"
            ))),
        }
    }
}

fn schema(properties: Value, required: &[&str]) -> Map<String, Value> {
    let mut schema = Map::new();
    schema.insert("type".into(), "object".into());
    schema.insert("properties".into(), properties);
    schema.insert("required".into(), json!(required));
    schema.insert("additionalProperties".into(), false.into());
    schema
}

fn text<'a>(args: &'a Map<String, Value>, key: &str) -> Result<&'a str, GithubError> {
    args.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| GithubError::Invalid(format!("{key} is missing (a string).")))
}

/// Whether `value` is a GitHub owner or repository name (so it cannot change the API path).
fn is_name(value: &str) -> Result<String, GithubError> {
    let ok = !value.is_empty()
        && value.len() <= 100
        && value != "."
        && value != ".."
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(GithubError::Invalid(format!(
            "{value:?} is not a GitHub owner or repository name."
        )))
    }
}

fn name(args: &Map<String, Value>, key: &str) -> Result<String, GithubError> {
    is_name(text(args, key)?)
}

fn pull(p: &Value) -> Value {
    json!({
        "number": p.get("number"),
        "title": p.get("title"),
        "state": p.get("state"),
        "user": p.pointer("/user/login"),
        "html_url": p.get("html_url"),
        "draft": p.get("draft"),
        "created_at": p.get("created_at"),
    })
}

/// What the model reads of GitHub's answer.
fn summarise(call: &GithubCall, body: &Value) -> Value {
    match call {
        GithubCall::Comment { .. } => json!({
            "id": body.get("id"),
            "html_url": body.get("html_url"),
            "body": body.get("body"),
            "user": body.pointer("/user/login"),
            "created_at": body.get("created_at"),
        }),
        GithubCall::Get { .. } => {
            let mut out = pull(body);
            let description: Option<String> = body
                .get("body")
                .and_then(Value::as_str)
                .map(|b| b.chars().take(4000).collect());
            out["body"] = json!(description);
            out["merged"] = body.get("merged").cloned().unwrap_or(Value::Null);
            out
        }
        GithubCall::List { .. } => json!({
            "pull_requests": body.as_array().map(|a| a.iter().map(pull).collect::<Vec<_>>()).unwrap_or_default(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rest(web: &str) -> Arc<GithubRest> {
        GithubRest::new(GithubApplication {
            name: "github".into(),
            label: "GitHub".into(),
            resource: "orn:okta:idp:o:client-auth-settings:c".into(),
            api_url: "https://api.github.com".into(),
            web_url: url::Url::parse(web).unwrap(),
            okta_id: None,
        })
        .unwrap()
    }

    #[test]
    fn pr_urls_must_be_on_the_configured_web_origin() {
        let gh = rest("https://github.com");
        assert_eq!(
            gh.parse_pr_url("https://github.com/acme/widgets/pull/1")
                .unwrap(),
            ("acme".into(), "widgets".into(), 1)
        );
        assert_eq!(
            gh.parse_pr_url("https://github.com/acme/widgets/pull/12/files")
                .unwrap(),
            ("acme".into(), "widgets".into(), 12)
        );
        for bad in [
            "https://evil.example/acme/widgets/pull/1",
            "http://github.com/acme/widgets/pull/1",
            "https://github.com:8443/acme/widgets/pull/1",
            "https://user@github.com/acme/widgets/pull/1",
            "https://github.com.evil.example/acme/widgets/pull/1",
            "https://github.com/acme/widgets/issues/1",
            "https://github.com/acme/widgets/pull/0",
            "https://github.com/acme/wid%2Fgets/pull/1",
            "not a url",
        ] {
            assert!(
                matches!(gh.parse_pr_url(bad), Err(GithubError::Invalid(_))),
                "{bad}"
            );
        }
        let sandbox = rest("http://127.0.0.1:5003");
        assert!(
            sandbox
                .parse_pr_url("http://127.0.0.1:5003/acme/widgets/pull/1")
                .is_ok()
        );
        assert!(
            sandbox
                .parse_pr_url("http://127.0.0.1:5004/acme/widgets/pull/1")
                .is_err()
        );
    }

    #[test]
    fn comments_over_githubs_limit_are_refused() {
        let gh = rest("https://github.com");
        let mut args = Map::new();
        args.insert(
            "pr_url".into(),
            "https://github.com/acme/widgets/pull/1".into(),
        );
        args.insert("body".into(), "x".repeat(MAX_COMMENT_CHARS).into());
        assert!(gh.prepare(COMMENT_TOOL, &args).is_ok());
        args.insert("body".into(), "x".repeat(MAX_COMMENT_CHARS + 1).into());
        assert!(matches!(
            gh.prepare(COMMENT_TOOL, &args),
            Err(GithubError::Invalid(m)) if m.contains("65536")
        ));
    }
}
