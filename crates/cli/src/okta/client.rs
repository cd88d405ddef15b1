//! The Okta management API client (OKTA.md §4 "General"): `Authorization: SSWS <API token>`,
//! JSON both ways, no redirects followed, a timeout on every request. A `429` is waited out
//! until `X-Rate-Limit-Reset` (epoch seconds, capped); list endpoints are followed through
//! `Link: <…>; rel="next"`; `202 Accepted` operations are polled at their `Location` until
//! `COMPLETED` or `FAILED` or a deadline; error bodies are shown as Okta writes them
//! (`errorSummary`, the causes' `errorSummary`, `errorCode`). The token is never shown.

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Responses larger than this are refused.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// At most this many 429 answers are waited out for one request.
const MAX_RATE_LIMIT_RETRIES: u32 = 5;
/// The longest single wait for a rate limit to reset.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// The most characters of an error text from the org that are shown.
const MAX_SHOWN_CHARS: usize = 1000;
/// At most this many pages of one list.
const MAX_PAGES: usize = 200;
/// At most this many items of one list (what bootstrap lists is a handful).
const MAX_LIST_ITEMS: usize = 5000;

/// Polling of `202` operations.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Polling {
    pub(crate) interval: Duration,
    pub(crate) deadline: Duration,
}

/// Why a management API call failed.
#[derive(Debug)]
pub(crate) enum ApiError {
    /// The request did not get an answer.
    Transport { what: String, message: String },
    /// Okta answered with an error status.
    Status {
        what: String,
        status: u16,
        summary: String,
    },
    /// The answer was not what Okta documents.
    Invalid { what: String, message: String },
    /// A `202` operation ended `FAILED`.
    OperationFailed { what: String, detail: String },
    /// A `202` operation was still running at the deadline.
    Deadline { what: String, seconds: u64 },
}

impl ApiError {
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            Self::Transport { .. }
            | Self::Invalid { .. }
            | Self::OperationFailed { .. }
            | Self::Deadline { .. } => None,
        }
    }

    pub(crate) fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport { what, message } => write!(f, "{what}: no answer ({message})"),
            Self::Status {
                what,
                status: 401,
                summary,
            } => write!(
                f,
                "{what}: HTTP 401 ({summary}): the API token is wrong, expired or revoked; create \
                 one in the Admin Console (Security > API > Tokens) and set OKTA_API_TOKEN"
            ),
            Self::Status {
                what,
                status: 403,
                summary,
            } => write!(
                f,
                "{what}: HTTP 403 ({summary}): the API token's administrator lacks the permission \
                 (a super administrator's token is needed) or the feature is not enabled for the org"
            ),
            Self::Status {
                what,
                status,
                summary,
            } => write!(f, "{what}: HTTP {status} ({summary})"),
            Self::Invalid { what, message } => write!(f, "{what}: unexpected answer ({message})"),
            Self::OperationFailed { what, detail } => {
                write!(f, "{what}: the operation ended FAILED ({detail})")
            }
            Self::Deadline { what, seconds } => write!(
                f,
                "{what}: the operation had not completed after {seconds} s; run the command again \
                 to continue (--poll-deadline-secs sets the limit)"
            ),
        }
    }
}

impl std::error::Error for ApiError {}

/// An answer with a success status.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) location: Option<String>,
    next: Option<String>,
    pub(crate) body: Value,
}

/// The client of one org.
pub(crate) struct OktaClient {
    http: reqwest::Client,
    org: String,
    token: SecretString,
    polling: Polling,
}

impl OktaClient {
    /// A client for `org` (an origin without a trailing slash). Fails closed when the HTTP
    /// client cannot be built with its settings.
    pub(crate) fn new(org: &str, token: SecretString, polling: Polling) -> anyhow::Result<Self> {
        let http = protocol::trust::client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            http,
            org: org.trim_end_matches('/').to_owned(),
            token,
            polling,
        })
    }

    /// `path_or_url` resolved against the org (as a URL reference, never glued on as text, which
    /// would let `@evil.example/` name another host). The API token goes only to the org: a
    /// `Link` or `Location` naming another origin is refused, never followed.
    fn url(&self, path_or_url: &str, what: &str) -> Result<reqwest::Url, ApiError> {
        let refused = |message: &str| ApiError::Invalid {
            what: what.to_owned(),
            message: message.to_owned(),
        };
        // A `..` segment (also as `%2e%2e` or after a backslash, which URL parsing treats alike)
        // in an id from a state file or an answer would reach another resource of the org.
        let raw_path = path_or_url.split(['?', '#']).next().unwrap_or_default();
        if raw_path.split(['/', '\\']).any(|segment| {
            let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
            decoded == "." || decoded == ".."
        }) {
            return Err(refused("a path with a dot segment is not sent"));
        }
        let base = reqwest::Url::parse(&self.org).map_err(|_| refused("the org is not a URL"))?;
        let url = base
            .join(path_or_url)
            .map_err(|_| refused("a link the org sent is not a URL"))?;
        if url.origin() != base.origin() || !url.username().is_empty() || url.password().is_some() {
            return Err(refused(
                "the org pointed to another origin; the API token is sent to the org only",
            ));
        }
        Ok(url)
    }

    /// Text the org sent, fit to be shown: the API token (which a hostile or broken server
    /// could echo) redacted, control characters (terminal escapes) replaced, and at most
    /// [`MAX_SHOWN_CHARS`] characters.
    fn shown(&self, text: &str) -> String {
        let token = self.token.expose_secret();
        let text = if token.is_empty() {
            text.to_owned()
        } else {
            text.replace(token, "[API token]")
        };
        let mut shown: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_SHOWN_CHARS)
            .collect();
        if text.chars().count() > MAX_SHOWN_CHARS {
            shown.push('…');
        }
        shown
    }

    /// `SSWS <token>`, marked sensitive so no debug output shows it.
    fn authorization(&self) -> Result<header::HeaderValue, ApiError> {
        let mut value =
            header::HeaderValue::from_str(&format!("SSWS {}", self.token.expose_secret()))
                .map_err(|_| ApiError::Invalid {
                    what: "the API token".into(),
                    message: "it holds characters an HTTP header cannot carry".into(),
                })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// One request, with 429s waited out. `what` names it in errors.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Reply, ApiError> {
        let url = self.url(path, what)?;
        let mut retries = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(header::ACCEPT, "application/json")
                .header(header::AUTHORIZATION, self.authorization()?);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await.map_err(|e| ApiError::Transport {
                what: what.to_owned(),
                message: protocol::discovery::with_causes(&e.without_url()),
            })?;
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = read_capped(response, what).await?;
            if status == StatusCode::TOO_MANY_REQUESTS && retries < MAX_RATE_LIMIT_RETRIES {
                retries += 1;
                let wait = rate_limit_wait(&headers, protocol::clock::system().now())
                    .min(self.polling.deadline.max(Duration::from_secs(1)));
                eprintln!(
                    "  rate limited by Okta ({what}); waiting {} s",
                    wait.as_secs_f32().ceil()
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let json: Value = if bytes.is_empty() {
                Value::Null
            } else {
                serde_json::from_slice(&bytes).unwrap_or(Value::Null)
            };
            if !status.is_success() {
                return Err(ApiError::Status {
                    what: what.to_owned(),
                    status: status.as_u16(),
                    summary: self.shown(&error_summary(&json)),
                });
            }
            let text = |name: header::HeaderName| {
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let next = headers
                .get_all(header::LINK)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(next_link);
            return Ok(Reply {
                status,
                location: text(header::LOCATION)
                    .map(|l| self.url(&l, what).map(String::from))
                    .transpose()?,
                next,
                body: json,
            });
        }
    }

    pub(crate) async fn get(&self, path: &str, what: &str) -> Result<Value, ApiError> {
        Ok(self.send(Method::GET, path, None, what).await?.body)
    }

    /// GET that answers `None` for a 404 (the resource is gone).
    pub(crate) async fn find(&self, path: &str, what: &str) -> Result<Option<Value>, ApiError> {
        match self.get(path, what).await {
            Ok(body) => Ok(Some(body)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: &Value,
        what: &str,
    ) -> Result<Reply, ApiError> {
        self.send(Method::POST, path, Some(body), what).await
    }

    /// Every item of a list, following `Link: rel="next"`. A `{data:[…]}` page is read too.
    pub(crate) async fn list(&self, path: &str, what: &str) -> Result<Vec<Value>, ApiError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        let mut seen = std::collections::HashSet::new();
        for _ in 0..MAX_PAGES {
            let Some(page) = next.take() else {
                return Ok(items);
            };
            // A `next` link back to a page already read would loop until MAX_PAGES.
            if !seen.insert(self.url(&page, what)?) {
                return Err(ApiError::Invalid {
                    what: what.to_owned(),
                    message: "the list's next link points back to a page already read".into(),
                });
            }
            let reply = self.send(Method::GET, &page, None, what).await?;
            match reply.body {
                Value::Array(page) => items.extend(page),
                Value::Object(mut object) => match object.remove("data") {
                    Some(Value::Array(page)) => items.extend(page),
                    _ => {
                        return Err(ApiError::Invalid {
                            what: what.to_owned(),
                            message: "not a list".into(),
                        });
                    }
                },
                _ => {
                    return Err(ApiError::Invalid {
                        what: what.to_owned(),
                        message: "not a list".into(),
                    });
                }
            }
            // Bounded in all, not only per page: 200 pages of 4 MiB would be gigabytes as JSON.
            if items.len() > MAX_LIST_ITEMS {
                return Err(ApiError::Invalid {
                    what: what.to_owned(),
                    message: format!("more than {MAX_LIST_ITEMS} items"),
                });
            }
            next = reply.next;
        }
        Err(ApiError::Invalid {
            what: what.to_owned(),
            message: format!("more than {MAX_PAGES} pages"),
        })
    }

    /// Polls a `202` operation at `location` until `COMPLETED` (its body is returned) or
    /// `FAILED`, or the deadline.
    pub(crate) async fn wait_operation(
        &self,
        location: &str,
        what: &str,
    ) -> Result<Value, ApiError> {
        let started = tokio::time::Instant::now();
        loop {
            let operation = self.get(location, what).await?;
            match operation.get("status").and_then(Value::as_str) {
                Some("COMPLETED") => return Ok(operation),
                Some("FAILED") => {
                    return Err(ApiError::OperationFailed {
                        what: what.to_owned(),
                        detail: self.shown(&operation_detail(&operation)),
                    });
                }
                _ => {}
            }
            if started.elapsed() + self.polling.interval > self.polling.deadline {
                return Err(ApiError::Deadline {
                    what: what.to_owned(),
                    seconds: self.polling.deadline.as_secs(),
                });
            }
            tokio::time::sleep(self.polling.interval).await;
        }
    }

    /// A request that may answer `202` + `Location` (then polled) or finish at once.
    pub(crate) async fn send_and_wait(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, ApiError> {
        let reply = self.send(method, path, body, what).await?;
        match (reply.status, reply.location) {
            (StatusCode::ACCEPTED, Some(location)) => self.wait_operation(&location, what).await,
            (StatusCode::ACCEPTED, None) => Err(ApiError::Invalid {
                what: what.to_owned(),
                message: "202 without a Location".into(),
            }),
            _ => Ok(reply.body),
        }
    }
}

/// The response body, refused past [`MAX_BODY_BYTES`] without reading more than that.
async fn read_capped(mut response: reqwest::Response, what: &str) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError::Invalid {
        what: what.to_owned(),
        message: "the response is too large".into(),
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| ApiError::Transport {
        what: what.to_owned(),
        message: protocol::discovery::with_causes(&e.without_url()),
    })? {
        if bytes.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// How long to wait after a 429: until `X-Rate-Limit-Reset` (epoch seconds) plus a second,
/// at least a second, at most [`MAX_RATE_LIMIT_WAIT`].
fn rate_limit_wait(headers: &header::HeaderMap, now: i64) -> Duration {
    let reset = headers
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let seconds = match reset {
        Some(reset) => (reset - now + 1).clamp(1, MAX_RATE_LIMIT_WAIT.as_secs() as i64),
        None => 5,
    };
    Duration::from_secs(seconds.unsigned_abs())
}

/// The URL of a `Link` header's `rel="next"` entry.
fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

/// `errorSummary: cause; cause (errorCode)` from Okta's error body, or a note that there was none.
pub(crate) fn error_summary(body: &Value) -> String {
    let Some(summary) = body.get("errorSummary").and_then(Value::as_str) else {
        return "no Okta error body".into();
    };
    let mut text = summary.to_owned();
    let causes: Vec<&str> = body
        .get("errorCauses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("errorSummary").and_then(Value::as_str))
        .collect();
    if !causes.is_empty() {
        text.push_str(": ");
        text.push_str(&causes.join("; "));
    }
    if let Some(code) = body.get("errorCode").and_then(Value::as_str) {
        text.push_str(&format!(" [{code}]"));
    }
    text
}

fn operation_detail(operation: &Value) -> String {
    let summary = error_summary(operation.get("error").unwrap_or(operation));
    if summary == "no Okta error body" {
        operation
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| "no detail".to_owned(), |id| format!("operation {id}"))
    } else {
        summary
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_is_found_among_others() {
        let value = "<https://o.okta.com/api/v1/trustedOrigins?limit=20>; rel=\"self\", \
                     <https://o.okta.com/api/v1/trustedOrigins?after=abc&limit=20>; rel=\"next\"";
        assert_eq!(
            next_link(value).as_deref(),
            Some("https://o.okta.com/api/v1/trustedOrigins?after=abc&limit=20")
        );
        assert_eq!(next_link("<https://x/self>; rel=\"self\""), None);
    }

    #[test]
    fn links_and_locations_resolve_to_the_org_only() {
        let polling = Polling {
            interval: Duration::from_millis(1),
            deadline: Duration::from_secs(1),
        };
        let client =
            OktaClient::new("https://o.okta.com", SecretString::from("00t"), polling).unwrap();
        let url = |path: &str| client.url(path, "test").map(String::from);
        assert_eq!(
            url("/api/v1/apps?after=x").unwrap(),
            "https://o.okta.com/api/v1/apps?after=x"
        );
        assert_eq!(
            url("https://o.okta.com/api/v1/apps").unwrap(),
            "https://o.okta.com/api/v1/apps"
        );
        for traversal in [
            "/api/v1/apps/0oa1/users/../../../users/00u1",
            "/api/v1/apps/%2E%2E/users/x",
            "/api/v1/apps/x/..\\..\\users",
            "/api/v1/apps/./x",
        ] {
            assert!(url(traversal).is_err(), "{traversal} must be refused");
        }
        // Glued to the org as text, this would have named the host evil.example.
        assert_eq!(
            url("@evil.example/x").unwrap(),
            "https://o.okta.com/@evil.example/x"
        );
        for foreign in [
            "https://evil.example/api/v1/apps",
            "http://o.okta.com/api/v1/apps",
            "https://o.okta.com:8443/x",
            "//evil.example/x",
            "https://u:p@o.okta.com/x",
        ] {
            assert!(url(foreign).is_err(), "{foreign} must be refused");
        }
    }

    #[test]
    fn text_from_the_org_is_shown_without_the_token_or_terminal_escapes() {
        let polling = Polling {
            interval: Duration::from_millis(1),
            deadline: Duration::from_secs(1),
        };
        let client = OktaClient::new(
            "https://o.okta.com",
            SecretString::from("00secret"),
            polling,
        )
        .unwrap();
        assert_eq!(
            client.shown("bad token 00secret\u{1b}[2J"),
            "bad token [API token] [2J"
        );
        assert_eq!(client.shown(&"x".repeat(5000)).chars().count(), 1001);
    }

    #[test]
    fn an_error_body_shows_summary_causes_and_code() {
        let body = serde_json::json!({
            "errorCode": "E0000001",
            "errorSummary": "Api validation failed: name",
            "errorLink": "E0000001",
            "errorId": "oae1",
            "errorCauses": [{"errorSummary": "name: An object with this field already exists."}]
        });
        assert_eq!(
            error_summary(&body),
            "Api validation failed: name: name: An object with this field already exists. [E0000001]"
        );
        assert_eq!(error_summary(&Value::Null), "no Okta error body");
    }

    #[test]
    fn the_rate_limit_wait_is_until_the_reset_and_capped() {
        let mut headers = header::HeaderMap::new();
        headers.insert("x-rate-limit-reset", "1003".parse().unwrap());
        assert_eq!(rate_limit_wait(&headers, 1000), Duration::from_secs(4));
        headers.insert("x-rate-limit-reset", "999".parse().unwrap());
        assert_eq!(rate_limit_wait(&headers, 1000), Duration::from_secs(1));
        headers.insert("x-rate-limit-reset", "99999".parse().unwrap());
        assert_eq!(rate_limit_wait(&headers, 1000), MAX_RATE_LIMIT_WAIT);
    }
}
